from skfleet.cli import main

main()
