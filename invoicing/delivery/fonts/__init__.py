"""The typefaces embedded in invoice PDFs (DejaVu Sans Condensed, Noto fallbacks) and their per-process cache."""
