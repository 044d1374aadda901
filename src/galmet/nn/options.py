"""How a model is run over images: :class:`InferenceOptions`, torch-free so that the command line
takes its choices and defaults from it without importing torch (:mod:`galmet.nn.inference` uses it).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from galmet.errors import ConfigError

#: Test-time augmentation modes: the 8 fixed dihedral views (galmet's default), or fastai 0.7's
#: ``learn.TTA()``: the image as it is plus randomly augmented copies.
TTA_MODES = ("dihedral", "fastai")
#: Largest batch size accepted (images per forward pass; 8192 images of 128 px with 8 TTA views
#: already take ~3 GB of float32 input).
MAX_BATCH_SIZE = 1 << 13
#: How the networks run on a CPU (:mod:`galmet.nn.cpu_engine`): ``auto`` (the fastest this machine
#: supports), ``eager`` (plain PyTorch float32), ``bf16`` (PyTorch under bfloat16 autocast),
#: ``openvino`` (the networks converted to OpenVINO, its default precision). CUDA ignores it.
ENGINES = ("auto", "eager", "bf16", "openvino")


@dataclass(frozen=True)
class InferenceOptions:
    """How a model is run over images: the one place these settings and their defaults live.

    Every prediction entry point (:meth:`GalmetModel.predict`, ``predict_dataset``,
    ``predict_positions``, ...) takes one of these as ``options``; its fields may also be given
    as keywords, which override it (:meth:`with_overrides`).

    Attributes
    ----------
    tta : bool
        Average the outputs over test-time-augmented views instead of using the image as is.
    tta_mode : {"dihedral", "fastai"}
        ``dihedral``: the 8 fixed views (rotations by 90 degrees and flips), exact symmetries of
        a sky image. ``fastai``: fastai 0.7's ``TTA()`` as the paper used it: the image as it is
        plus 4 copies with the training augmentation.
    tta_seed : int
        Seed of the fastai-style views (the same seed, batch size and device give the same
        predictions).
    batch_size : int
        Images per forward pass (each TTA view is its own pass of this size), >= 1.
    device : str
        ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
    progress : bool or None
        Progress over batches; None: when there are more than 20 batches.
    engine : {"auto", "eager", "bf16", "openvino"}
        How the networks run on a CPU (:data:`ENGINES`, :mod:`galmet.nn.cpu_engine`): ``auto``
        takes OpenVINO when installed, else bfloat16 autocast on a CPU with native bfloat16,
        else ``eager`` (float32, the reference); a failing fast path falls back to the next.
        Ignored on CUDA (bf16 autocast there, as always).
    """

    tta: bool = True
    tta_mode: str = "dihedral"
    tta_seed: int = 0
    batch_size: int = 256
    device: str = "auto"
    progress: bool | None = None
    engine: str = "auto"

    def __post_init__(self) -> None:
        size = self.batch_size
        if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= MAX_BATCH_SIZE:
            raise ConfigError(
                f"batch_size must be an integer from 1 to {MAX_BATCH_SIZE}, got {size!r}", param="batch_size"
            )
        if self.tta_mode not in TTA_MODES:
            raise ConfigError(
                f"tta_mode must be one of {', '.join(TTA_MODES)}, got {self.tta_mode!r}", param="tta_mode"
            )
        if self.engine not in ENGINES:
            raise ConfigError(f"engine must be one of {', '.join(ENGINES)}, got {self.engine!r}", param="engine")

    def with_overrides(self, **overrides) -> InferenceOptions:
        """A copy with the given fields replaced (None values are ignored); unknown names raise TypeError."""
        names = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(overrides) - names)
        if unknown:
            raise TypeError(f"unknown inference option(s): {', '.join(unknown)}")
        given = {k: v for k, v in overrides.items() if v is not None}
        return dataclasses.replace(self, **given) if given else self


def inference_options(options: InferenceOptions | bool | None = None, **overrides) -> InferenceOptions:
    """``options`` (default: :class:`InferenceOptions()`) with keyword ``overrides`` applied.

    A bool in place of ``options`` is the ``tta`` argument of earlier versions, which came first
    (``model.predict(images, False)``); the other settings must be given by name."""
    if isinstance(options, bool):
        overrides.setdefault("tta", options)
        options = None
    elif options is not None and not isinstance(options, InferenceOptions):
        raise TypeError(f"options must be an InferenceOptions, got {type(options).__name__}")
    return (options or InferenceOptions()).with_overrides(**overrides)
