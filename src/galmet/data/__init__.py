"""galmet.data.dataset."""
