"""galmet.training."""
