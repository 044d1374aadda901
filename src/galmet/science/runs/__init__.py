"""galmet.science.runs."""
