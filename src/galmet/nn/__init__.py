"""galmet.nn: the network, its bundle file and its use.

The public API (each name imported on first use; torch is imported with the first)::

    load_model(path)          # a GalmetModel from a model bundle (weights_only loading)
    GalmetModel               # .predict(images, options), .predict_uncertainty, .embed, .imaging
    InferenceOptions          # TTA, batch size, device, progress: the one owner of these settings
    save_bundle, save_ensemble, update_bundle   # write bundles
    build_model               # a GalmetNet (ResNet body + fastai head)
    Calibration               # the split-conformal error-bar calibration a bundle stores
    MetaKey                   # the names of a bundle's meta entries

Modules: :mod:`.net`, :mod:`.weights`, :mod:`.bundle`, :mod:`.bundle_meta`, :mod:`.inference`,
:mod:`.uncertainty`, :mod:`.embedding`, :mod:`.attribution`, :mod:`.augment`, :mod:`.device`.
"""

from galmet._lazy import lazy_exports

_NAMES = {
    "load_model": "galmet.nn.bundle",
    "save_bundle": "galmet.nn.bundle",
    "save_ensemble": "galmet.nn.bundle",
    "update_bundle": "galmet.nn.bundle",
    "GalmetModel": "galmet.nn.inference",
    "InferenceOptions": "galmet.nn.options",
    "build_model": "galmet.nn.net",
    "Calibration": "galmet.nn.uncertainty",
    "MetaKey": "galmet.nn.bundle_meta",
}
__all__ = list(_NAMES)
__getattr__, __dir__ = lazy_exports(__name__, _NAMES)
