"""galmet.sdss."""
