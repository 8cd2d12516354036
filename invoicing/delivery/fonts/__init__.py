"""The typeface embedded in invoice PDFs (DejaVu Sans Condensed) and its per-process cache."""
