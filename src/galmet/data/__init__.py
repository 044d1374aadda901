"""galmet.data: dataset directories and image folders, as numpy.

The public API (each name imported on first use)::

    load_dataset(path)        # a validated Dataset (catalog + uint8 images, decode cache)
    Dataset                   # .catalog (pandas), .images() uint8 (N, H, W, 3), .imaging
    as_dataset(x)             # a Dataset from a path or a Dataset
    Imaging                   # what images were made with: bands, pixel scale, size, crop, release
    assign_splits, split_counts  # seeded train / valid / test splits

Modules: :mod:`.dataset`, :mod:`.imaging`, :mod:`.cache`, :mod:`.splits`, :mod:`.transforms`,
:mod:`.summary`, :mod:`.quality`, :mod:`.labels` (the label rules and the one truth reader).
"""

from galmet._lazy import lazy_exports

_NAMES = {
    "load_dataset": "galmet.data.dataset",
    "Dataset": "galmet.data.dataset",
    "as_dataset": "galmet.data.dataset",
    "Imaging": "galmet.data.imaging",
    "assign_splits": "galmet.data.splits",
    "split_counts": "galmet.data.splits",
}
__all__ = list(_NAMES)
__getattr__, __dir__ = lazy_exports(__name__, _NAMES)
