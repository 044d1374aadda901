"""galmet: gas-phase metallicity of galaxies from three-colour SDSS images.

A reproduction, as installable software, of Wu & Boada (2019, MNRAS 484, 4683): a ResNet
regresses Z = 12 + log(O/H) from 128x128 gri JPEG cutouts.

Heavy dependencies (torch, astropy, galsim, matplotlib) are imported lazily, inside the
functions that need them, so ``import galmet`` stays cheap.
"""

__version__ = "0.1.0"

from galmet.errors import GalmetError  # noqa: E402

__all__ = ["GalmetError", "__version__", "load_dataset", "load_model"]


def load_dataset(*args, **kwargs):
    """Load a dataset directory; see :func:`galmet.data.dataset.load_dataset`."""
    from galmet.data.dataset import load_dataset as _load

    return _load(*args, **kwargs)


def load_model(*args, **kwargs):
    """Load a trained model bundle; see :func:`galmet.nn.bundle.load_model`."""
    from galmet.nn.bundle import load_model as _load

    return _load(*args, **kwargs)
