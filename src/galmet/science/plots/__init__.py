"""galmet.science.plots."""
