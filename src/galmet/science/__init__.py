"""galmet.science."""
