"""galmet.io."""
