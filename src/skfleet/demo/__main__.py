"""``python -m skfleet.demo`` runs the demo."""

import sys

from skfleet.demo.run import main

sys.exit(main())
