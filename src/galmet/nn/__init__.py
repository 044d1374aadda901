"""galmet.nn."""
