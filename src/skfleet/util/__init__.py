"""Small pieces every layer uses: password masking, progress reporting, atomic writes."""
