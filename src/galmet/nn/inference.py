"""A trained model in use: :class:`GalmetModel` predicts targets from uint8 images, with TTA.

Built by :func:`galmet.nn.bundle.load_model` from a model bundle (one network or an ensemble).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import cast

import numpy as np
import torch

from galmet.data.imaging import Imaging
from galmet.errors import ConfigError, DataError
from galmet.io.progress import progress_bar
from galmet.nn.augment import IMAGENET_MEAN, IMAGENET_STD, augment_batch, center_crop, dihedral_view, to_model_input
from galmet.nn.bundle_meta import MetaKey, imaging_from_meta, member_metas
from galmet.nn.device import resolve_device, suggest_smaller_batch, to_channels_last, to_device
from galmet.nn.net import GAUSSIAN, GalmetNet, gaussian_split, outputs_per_target
from galmet.nn.options import TTA_MODES, InferenceOptions, inference_options  # noqa: F401 (re-exported)
from galmet.nn.uncertainty import Calibration, UncertainPrediction, read_calibrations
from galmet.paper import MAX_ZOOM

#: Three numbers, one per channel (R, G, B).
log = logging.getLogger(__name__)

RGB = tuple[float, float, float]
#: How many randomly augmented copies fastai-style TTA adds to the image as it is.
FASTAI_TTA_VIEWS = 4
#: The augmentation of fastai-style TTA when a bundle does not record its training config:
#: fastai 0.7's transforms_top_down with the paper's max zoom.
PAPER_AUGMENTATION = {"dihedral": True, "max_zoom": MAX_ZOOM, "rotate": 10.0, "lighting": 0.05}


def named_model(model: GalmetModel) -> str:
    """``"NAME VERSION"`` of a registered model (its registry name and card version), for provenance;
    ``""`` for a plain bundle."""
    if not model.name:
        return ""
    version = (model.card or {}).get("version")
    return f"{model.name} {version}" if version else model.name


class GalmetModel:
    """A trained network (or an ensemble of them) with everything needed to use it: targets,
    normalisation, image size, crop.

    Attributes
    ----------
    nets : list of GalmetNet
        In eval mode: one for a single model, the members of an ensemble.
    meta : dict
        The bundle's description (see :func:`save_bundle`; an ensemble's per-member target
        standardisation is in ``meta["members"]``).
    path : Path or None
        Where it was loaded from.
    name : str or None
        Its registry name, when it was loaded by name (``galmet.load_model("sdss400")``).
    card : dict or None
        Its model card (:class:`galmet.registry.ModelCard` as a dict): the registry's, or the
        ``card.json`` beside the bundle file that names it; None for a plain bundle.
    """

    def __init__(self, net: GalmetNet | list[GalmetNet], meta: dict, path: Path | None = None) -> None:
        self.nets = [n.eval() for n in (net if isinstance(net, list) else [net])]
        self.meta = meta
        self.path = path
        self.name: str | None = None
        self.card: dict | None = None
        #: The engine the last prediction ran on (``eager``, ``bf16``, ``openvino``), for provenance.
        self.engine_used: str | None = None
        self._engines: dict = {}  # compiled CPU engines (galmet.nn.cpu_engine.cpu_engine's cache)
        self._warned_other_survey: set[str] = set()  # where check_survey warned already

    def __getstate__(self) -> dict:
        """Pickled (sent to a worker process) without its compiled engines: they are rebuilt there."""
        state = dict(self.__dict__)
        state["_engines"] = {}
        return state

    def __repr__(self) -> str:
        members = f", members={len(self.nets)}" if len(self.nets) > 1 else ""
        return (
            f"GalmetModel({self.arch}, targets={self.targets}, image_size={self.image_size}, "
            f"crop={self.crop}{members}, path={self.path})"
        )

    @property
    def net(self) -> GalmetNet:
        """The network (an ensemble's first member)."""
        return self.nets[0]

    @property
    def members(self) -> list[dict]:
        """Each member's description (an ensemble's ``meta["members"]``; for one network, the meta)."""
        return member_metas(self.meta)

    def _member_scaling(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """(target_scale, target_shift) of each member: prediction = raw output * scale + shift."""
        t = len(self.targets)
        return [
            (
                np.asarray(m.get(MetaKey.TARGET_SCALE) or [1.0] * t, dtype=np.float64),
                np.asarray(m.get(MetaKey.TARGET_SHIFT) or [0.0] * t, dtype=np.float64),
            )
            for m in self.members
        ]

    def _to_target_units(self, raw: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
        """A member's raw output in target units: the means (N, T) -- and, for a gaussian head,
        the variances next to them (N, 2T)."""
        if self.loss != GAUSSIAN:
            return raw.double() * scale + shift
        mu, logvar = gaussian_split(raw.double(), len(self.targets))
        return torch.cat([mu * scale + shift, logvar.exp() * scale**2], 1)

    @property
    def arch(self) -> str:
        return self.meta[MetaKey.ARCH]

    @property
    def loss(self) -> str:
        """``rmse`` (the paper's head: one output per target) or ``gaussian`` (mean and log-variance)."""
        return self.meta.get(MetaKey.LOSS) or "rmse"

    @property
    def norm(self) -> tuple[RGB, RGB]:
        """(mean, std) per channel of the input normalisation (ImageNet's when the bundle has none)."""
        mean = tuple(self.meta.get(MetaKey.NORM_MEAN, IMAGENET_MEAN))
        std = tuple(self.meta.get(MetaKey.NORM_STD, IMAGENET_STD))
        return cast(RGB, mean), cast(RGB, std)  # check_bundle_meta: 3 numbers each

    @property
    def n_outputs(self) -> int:
        """Outputs of each network: one per target, two for a gaussian head."""
        return len(self.targets) * outputs_per_target(self.loss)

    @property
    def calibrations(self) -> dict[str, Calibration]:
        """The calibrations stored in the bundle (target -> Calibration; empty when uncalibrated)."""
        return read_calibrations(self.meta, self.targets, str(self.path or "model"))

    @property
    def label_range(self) -> dict[str, tuple[float, float]]:
        """Per target, the (min, max) of the labels the model was trained on (empty when unknown)."""
        raw = self.meta.get(MetaKey.LABEL_RANGE) or {}
        return {t: (float(v[0]), float(v[1])) for t, v in raw.items() if t in self.targets}

    @property
    def targets(self) -> list[str]:
        return list(self.meta[MetaKey.TARGETS])

    @property
    def image_size(self) -> int | None:
        size = self.meta.get(MetaKey.IMAGE_SIZE)
        return None if size is None else int(size)

    @property
    def crop(self) -> int | None:
        """The central crop (pixels) the network sees, or None for the whole image."""
        crop = self.meta.get(MetaKey.CROP)
        return None if crop is None else int(crop)

    @property
    def imaging(self) -> Imaging:
        """How the training images were made (:class:`galmet.data.imaging.Imaging`: pixel scale,
        scale mode, sizes, crop, data release, bands); the paper's imaging for bundles written
        before galmet recorded it."""
        return imaging_from_meta(self.meta, self.path or "model")

    @property
    def display_name(self) -> str:
        """``the model NAME`` (a registered model), ``the model PATH``, or ``the model``: how
        messages name it."""
        return f"the model {self.name or self.path}" if (self.name or self.path) else "the model"

    def check_survey(
        self, imaging: Imaging, where: str = "images", allow_other_survey: bool = False, instead: str | None = None
    ) -> str | None:
        """Refuse another survey's images (survey, layer, bands or format that differ from the
        model's :attr:`imaging`; unknown fields are not compared).

        Parameters
        ----------
        imaging : Imaging
            What the images record (:attr:`galmet.data.dataset.Dataset.imaging`).
        where : str
            Names the images in the message.
        allow_other_survey : bool
            Go on with another survey's images (a transfer experiment): one warning (once per
            ``where`` for this model), and the caller flags every row ``OTHER_SURVEY``.
        instead : str, optional
            What the refusal suggests doing instead (default: use a model trained on such images).

        Returns
        -------
        str or None
            None for the model's own survey (or when it cannot be told); with
            ``allow_other_survey``, the one-line description of the difference
            (:func:`galmet.nn.survey_check.other_survey_description`) the run records.

        Raises
        ------
        DataError
            Another survey's images without ``allow_other_survey``: one line naming both
            (``param`` = ``allow_other_survey``).
        """
        from galmet.nn.survey_check import other_survey_advice, other_survey_description, survey_differences

        mine = self.imaging
        differences = survey_differences(mine, imaging)
        if not differences:
            return None
        said = other_survey_description(mine, imaging, self.display_name)
        if not allow_other_survey:
            advice = other_survey_advice(imaging, differences, instead)
            raise DataError(f"{where}: {said}; {advice}", param="allow_other_survey")
        if where not in self._warned_other_survey:
            self._warned_other_survey.add(where)
            log.warning("%s: %s; going on (other survey allowed): every row is flagged OTHER_SURVEY", where, said)
        return said

    def check_imaging(
        self,
        image_size: int,
        pixel_scale: float | None = None,
        where: str = "images",
        *,
        imaging: Imaging | None = None,
        allow_other_survey: bool = False,
    ) -> str | None:
        """Refuse (one-line DataError naming both) images this model was not trained on.

        Parameters
        ----------
        image_size : int
            Pixels per side of the images to predict (before the model's crop).
        pixel_scale : float, optional
            Their arcsec per pixel, when known; compared with the bundle's when it records one
            (relative tolerance 0.1%).
        where : str
            Names the images in the message (a dataset directory, a file).
        imaging : Imaging, optional
            What the images record: their survey, layer, bands and format are checked first
            (:meth:`check_survey`).
        allow_other_survey : bool
            Accept another survey's images (:meth:`check_survey`); size and scale are checked
            all the same.

        Returns
        -------
        str or None
            :meth:`check_survey`'s answer: the description of another survey's images that were
            allowed (flag every row), else None.
        """
        other = None if imaging is None else self.check_survey(imaging, where, allow_other_survey)
        self._check_size_and_scale(image_size, pixel_scale, where)
        return other

    def _check_size_and_scale(self, image_size: int, pixel_scale: float | None, where: str) -> None:
        """:meth:`check_imaging`'s size and pixel-scale comparison."""
        im = self.imaging
        which = self.display_name
        want_size = self.image_size
        size_ok = want_size is None or image_size == want_size
        scale_ok = (
            pixel_scale is None or im.pixel_scale is None or math.isclose(pixel_scale, im.pixel_scale, rel_tol=1e-3)
        )
        if size_ok and scale_ok:
            return
        crop = f", of which the network sees the central {im.crop}" if im.crop is not None else ""
        found = f"{image_size}x{image_size} px" + (f" at {pixel_scale:.4g} arcsec/px" if pixel_scale else "")
        want = f"{want_size}x{want_size} px{crop}" if want_size is not None else "images of any size"
        want += f" at {im.pixel_scale:.4g} arcsec/px" if im.pixel_scale else ""
        options = (f"--size {want_size}" if want_size is not None else "") + (
            f" --scale {im.pixel_scale:.4g}" if im.pixel_scale else ""
        )
        how = f"galmet download {options.strip()}"
        if im.data_release is None and want_size is not None:  # synthetic, or a source not recorded
            how += f", or galmet synth --size {want_size}"
        raise DataError(
            f"{where}: images are {found}, {which} was trained on {want}; predict images made like its "
            f"training set (e.g. {how})"
        )

    def check_dataset_imaging(self, dataset, *, allow_other_survey: bool = False) -> str | None:
        """:meth:`check_imaging` for a dataset directory or image folder (or a loaded Dataset),
        before its images are decoded: the survey, layer, bands and format it records, the size
        most of its images have (read from a sample of headers) and the pixel scale it records
        (:attr:`galmet.data.dataset.Dataset.imaging`).

        A dataset made otherwise is refused with one line naming both, instead of every row
        failing on its own as a bad row. Returns :meth:`check_imaging`'s answer (another
        survey's images allowed by ``allow_other_survey``: their description; else None).
        """
        import logging

        from galmet.data.dataset import Dataset, load_dataset

        if isinstance(dataset, Dataset):
            probe = dataset
        else:
            quiet = logging.getLogger("galmet.data.dataset")
            level = quiet.level
            quiet.setLevel(logging.ERROR)  # the load that follows reports skipped rows, once
            try:
                probe = load_dataset(dataset, targets=[], on_error="skip", load_images=False)
            finally:
                quiet.setLevel(level)
        recorded = probe.imaging
        return self.check_imaging(
            probe.image_size,
            recorded.pixel_scale,
            str(probe.root),
            imaging=recorded,
            allow_other_survey=allow_other_survey,
        )

    @property
    def augmentation(self) -> dict:
        """The training augmentation (``dihedral``, ``max_zoom``, ``rotate``, ``lighting``) that
        fastai-style TTA repeats: the bundle's training config, else :data:`PAPER_AUGMENTATION`."""
        config = self.meta.get(MetaKey.CONFIG) or {}
        out = dict(PAPER_AUGMENTATION)
        for k in out:
            if config.get(k) is not None:
                out[k] = config[k]
        return out

    def to(self, device: str | torch.device) -> GalmetModel:
        self._engines.clear()
        for net in self.nets:
            net.to(resolve_device(device))
        return self

    def _check_images(self, images) -> None:
        where = f"{self.path or 'model'}"
        if isinstance(images, torch.Tensor):
            dtype_ok, shape = images.dtype == torch.uint8, tuple(images.shape)
        elif isinstance(images, np.ndarray):
            dtype_ok, shape = images.dtype == np.uint8, images.shape
        else:
            raise DataError(f"{where}: images must be a uint8 numpy array (N, H, W, 3), got {type(images).__name__}")
        if not dtype_ok:
            raise DataError(f"{where}: images must be uint8 (N, H, W, 3), got dtype {images.dtype}")
        s = self.image_size
        if len(shape) != 4 or shape[3] != 3 or (s is not None and shape[1:3] != (s, s)):
            want = f"(N, {s}, {s}, 3)" if s is not None else "(N, H, W, 3)"
            raise DataError(f"{where}: images have shape {shape}, this model expects {want}")

    def predict(
        self,
        images,
        options: InferenceOptions | bool | None = None,
        *,
        return_std: bool = False,
        return_sigma: bool = False,
        tta: bool | None = None,
        batch_size: int | None = None,
        device: str | None = None,
        progress: bool | None = None,
        tta_mode: str | None = None,
        tta_seed: int | None = None,
        engine: str | None = None,
    ):
        """Predict the targets of uint8 images.

        Parameters
        ----------
        images : numpy.ndarray or torch.Tensor
            uint8 (N, H, W, 3), H = W = the bundle's image size. A numpy memmap works (read
            batch by batch); a uint8 tensor already on the device avoids the host copy.
        options : InferenceOptions, optional
            TTA, batch size, device and progress (defaults: :class:`InferenceOptions`); the
            keywords below, when given, override its fields. A bool here is the ``tta`` of earlier
            versions (the other settings are keyword-only).
        tta : bool
            Average the outputs over test-time-augmented views instead of using the image as is.
        tta_mode : {"dihedral", "fastai"}
            ``dihedral`` (default): the 8 fixed views (rotations by 90 degrees and flips), exact
            symmetries of a sky image, no interpolation, no randomness. ``fastai``: fastai 0.7's
            ``TTA()`` as the paper used it: the image as it is plus 4 copies with the training
            augmentation (:attr:`augmentation`: random dihedral, zoom, rotation, lighting).
        tta_seed : int
            Seed of the fastai-style views (the same seed, batch size and device give the same
            predictions).
        batch_size : int
            Images per forward pass (each TTA view is its own pass of this size).
        device : {"auto", "cpu", "cuda"}
            Where to run; channels_last everywhere, and bf16 autocast on CUDA.
        engine : {"auto", "eager", "bf16", "openvino"}
            How the networks run on a CPU (:mod:`galmet.nn.cpu_engine`; the one that ran is
            :attr:`engine_used`).
        return_std : bool
            Also return the population standard deviation over the views (and, for an
            ensemble, over its members), in target units; NaN for one model without TTA.
        progress : bool, optional
            Progress over batches (:func:`galmet.io.progress.progress_bar`: a bar on a terminal,
            plain log lines elsewhere); default: when there are more than 20 batches.
        return_sigma : bool
            Also return the heteroscedastic head's 1-sigma (``--loss gaussian`` models: the
            square root of the variance averaged over views and members), in target units;
            None for the paper's RMSE head. Not calibrated: see :meth:`predict_uncertainty`.

        Returns
        -------
        numpy.ndarray or tuple
            float64 (N,) for a one-target model, else (N, T); with ``return_std`` and/or
            ``return_sigma`` a tuple (prediction, std, sigma) of the arrays asked for.
        """
        opts = inference_options(
            options,
            tta=tta,
            batch_size=batch_size,
            device=device,
            progress=progress,
            tta_mode=tta_mode,
            tta_seed=tta_seed,
            engine=engine,
        )
        self._check_images(images)
        mean_out, std_out, _, _ = self._predict_batches(images, opts)
        pred, std, sigma = self._split_outputs(mean_out, std_out)
        if not (return_std or return_sigma):
            return pred
        return (pred,) + ((std,) if return_std else ()) + ((sigma,) if return_sigma else ())

    def _predict_batches(
        self, images, opts: InferenceOptions, members: bool = False, references: list | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, np.ndarray | None]:
        """The mean and population spread over members x views of every image, in target units:
        float64 (N, width) tensors on the device (width: the targets, then a gaussian head's
        variances; the spread is NaN with a single view of a single member); with ``members``
        also each member's mean over its views, float64 (M, N, width) (their mean is the first), else None;
        with ``references`` (one :class:`~galmet.nn.embedding.EmbeddingReference` per member) also
        each image's :func:`~galmet.nn.embedding.ood_ratio`, float64 (N,), from the embedding of
        the un-augmented view taken in the same forward pass (the first view is always the image
        as it is), else None."""
        dev = resolve_device(opts.device)
        generator = torch.Generator(device=dev)
        generator.manual_seed(int(opts.tta_seed))
        # channels_last helps on CPU (oneDNN) as much as on CUDA (tensor cores)
        nets = [to_channels_last(net, dev).eval() for net in self.nets]
        n = len(images)
        # Each member's raw outputs go to target units with its own standardisation (float64: the
        # shift is ~9 dex, the spread ~1e-3); then mean and spread over members x views.
        scaling = [tuple(torch.as_tensor(a, device=dev) for a in pair) for pair in self._member_scaling()]
        width = self.n_outputs  # a gaussian head's variances ride along after the means
        mean_out = torch.empty((n, width), dtype=torch.float64, device=dev)
        std_out = torch.full((n, width), float("nan"), dtype=torch.float64, device=dev)
        member_out = torch.empty((len(nets), n, width), dtype=torch.float64, device=dev) if members else None
        ood = np.empty(n) if references is not None else None
        engine = self._engine(nets, opts, dev)
        starts = range(0, n, opts.batch_size)
        show = opts.progress if opts.progress is not None else len(starts) > 20
        batches = progress_bar(iterable=starts, desc="predicting", unit="batch", enabled=show)
        with (
            suggest_smaller_batch(opts.batch_size, "predicting"),
            torch.inference_mode(),
            torch.autocast("cuda", dtype=torch.bfloat16, enabled=dev.type == "cuda"),
        ):
            for start in batches:
                inputs = self._views(to_device(images[start : start + opts.batch_size], dev), opts, generator)
                engine = self._vetted(engine, nets, inputs[0], scaling)
                with engine.context():
                    raw, emb = engine.forward(inputs, ood is not None)
                outputs = [self._to_target_units(r, *scaling[i // len(inputs)]) for i, r in enumerate(raw)]
                views = torch.stack(outputs)  # (members x views, B, T or 2T), target units
                if ood is not None and emb is not None and references is not None:
                    from galmet.nn.embedding import ood_ratio

                    ood[start : start + views.shape[1]] = ood_ratio(references, emb)
                mean_out[start : start + views.shape[1]] = views.mean(0)
                if len(views) > 1:
                    std_out[start : start + views.shape[1]] = views.std(0, correction=0)
                if member_out is not None:
                    member_out[:, start : start + views.shape[1]] = views.reshape(len(nets), -1, *views.shape[1:]).mean(
                        1
                    )
        return mean_out, std_out, member_out, ood

    def _engine(self, nets: list, opts: InferenceOptions, dev: torch.device):
        """The :class:`~galmet.nn.cpu_engine.Engine` that runs ``nets`` for ``opts.engine`` on
        ``dev`` (eager on CUDA), cached on this model; sets :attr:`engine_used`."""
        from galmet.nn.cpu_engine import Engine, cpu_engine

        if dev.type != "cpu":
            engine = Engine(nets)
        else:
            size = self.crop or self.image_size or -1  # -1: images of any size
            engine = cpu_engine(opts.engine, nets, (3, size, size), self._engines)
            if self._engines.get(("agrees", engine.name)) is False:  # failed its check on this model before
                engine = cpu_engine("eager", nets, (3, size, size), self._engines)
        self.engine_used = engine.name
        return engine

    def _vetted(self, engine, nets: list, x: torch.Tensor, scaling: list):
        """``engine``, or eager when it is a fast CPU engine whose predictions for this model differ
        from eager float32 by more than :data:`~galmet.nn.cpu_engine.FAST_TOLERANCE_DEX` RMS. Checked
        once per model and engine, on the first :data:`~galmet.nn.cpu_engine.VET_IMAGES` images of
        the first batch as they are (``x``: (B, 3, S, S) network input), in every member's target
        units (``nets``: the eager networks); a failure is logged in one line and remembered."""
        from galmet.nn.cpu_engine import FAST_TOLERANCE_DEX, VET_IMAGES, Engine, agreement_rms, cpu_engine

        key = ("agrees", engine.name)
        if engine.name == "eager" or key in self._engines:
            return engine
        probe = [x[:VET_IMAGES]]
        with engine.context():
            fast, _ = engine.forward(probe, False)
        exact, _ = Engine(nets).forward(probe, False)
        t = len(self.targets)
        rms = agreement_rms(
            [self._to_target_units(r, *scaling[i])[:, :t] for i, r in enumerate(fast)],
            [self._to_target_units(r, *scaling[i])[:, :t] for i, r in enumerate(exact)],
        )
        self._engines[key] = ok = rms <= FAST_TOLERANCE_DEX
        if ok:
            return engine
        log.warning(
            "engine %s changes this model's predictions by %.4f dex RMS on the first %d images "
            "(more than %.3f): using eager float32",
            engine.name,
            rms,
            len(x[:VET_IMAGES]),
            FAST_TOLERANCE_DEX,
        )
        self.engine_used = "eager"
        return cpu_engine("eager", nets, (3, x.shape[-1], x.shape[-1]), self._engines)

    def _views(self, xb: torch.Tensor, opts: InferenceOptions, generator: torch.Generator) -> list[torch.Tensor]:
        """The network inputs of a uint8 batch ``xb`` (B, H, W, 3) on the device: the image as it
        is, its 8 dihedral views (``tta``), or it and :data:`FASTAI_TTA_VIEWS` randomly augmented
        copies (``tta_mode="fastai"``, drawn from ``generator``); each normalised (B, 3, S, S)."""
        norm = self.norm
        x = to_model_input(center_crop(xb, self.crop), *norm)
        if not opts.tta:
            return [x]
        if opts.tta_mode != "fastai":
            return [dihedral_view(x, i) for i in range(8)]
        aug = self.augmentation  # the same 4 random views for every member of an ensemble
        return [x] + [
            augment_batch(
                xb,
                generator,
                crop=self.crop,
                dihedral=bool(aug["dihedral"]),
                max_zoom=float(aug["max_zoom"]),
                rotate_deg=float(aug["rotate"]),
                lighting_change=float(aug["lighting"]),
                mean=norm[0],
                std=norm[1],
            )
            for _ in range(FASTAI_TTA_VIEWS)
        ]

    def _split_outputs(
        self, mean_out: torch.Tensor, std_out: torch.Tensor
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """(prediction, spread, sigma) as float64 numpy arrays: (N,) each for one target, else
        (N, T); sigma (the square root of the mean variance of a gaussian head) None for an RMSE head."""
        t = len(self.targets)
        pred = mean_out.cpu().numpy()
        std = std_out.cpu().numpy()[:, :t]
        sigma = np.sqrt(pred[:, t:]) if self.loss == GAUSSIAN else None
        pred = pred[:, :t]
        if t == 1:
            pred, std = pred[:, 0], std[:, 0]
            sigma = None if sigma is None else sigma[:, 0]
        return pred, std, sigma

    def predict_uncertainty(
        self, images, options: InferenceOptions | bool | None = None, *, ood: bool = False, **overrides
    ) -> UncertainPrediction:
        """Predict with the spread, the head's sigma and the calibrated error bars and intervals.

        ``images`` and ``options`` are those of :meth:`predict`; keyword ``overrides`` (``tta``,
        ``batch_size``, ``device``, ...) replace fields of ``options``. Targets without a calibration in the bundle
        (``galmet calibrate``, or automatically after ``galmet train --folds``) get none: their
        ``err`` is NaN and :meth:`UncertainPrediction.columns` leaves the interval columns out.
        With ``ood`` the result's ``ood_score`` is each image's embedding out-of-domain ratio
        (:func:`galmet.nn.embedding.ood_ratio` of :meth:`embed`), taken in the prediction's own
        forward pass, when the bundle has embedding statistics and the device is not CUDA (there
        the prediction runs in bf16 and the embedding must not: ``ood_score`` stays None).

        Returns
        -------
        galmet.nn.uncertainty.UncertainPrediction
        """
        opts = inference_options(options, **overrides)
        self._check_images(images)
        cals = self.calibrations
        cv_plus = any(c.cv_plus for c in cals.values())  # CV+ needs each member's own prediction
        refs = self._one_pass_references(opts.device) if ood else None
        mean_out, std_out, member_out, score = self._predict_batches(images, opts, members=cv_plus, references=refs)
        pred, std, sigma = self._split_outputs(mean_out, std_out)
        t = len(self.targets)
        members = None if member_out is None else member_out.cpu().numpy()[:, :, :t]
        pred, std = pred.reshape(len(pred), t), std.reshape(len(pred), t)
        sigma = None if sigma is None else sigma.reshape(len(pred), t)
        calibrated = {}
        for j, target in enumerate(self.targets):
            cal = cals.get(target)
            if cal is not None:
                mu = None if members is None else members[:, :, j]
                calibrated[target] = cal.apply(pred[:, j], std[:, j], None if sigma is None else sigma[:, j], mu)
        return UncertainPrediction(self.targets, pred, std, sigma, calibrated, ood_score=score)

    def _one_pass_references(self, device: str) -> list | None:
        """The members' embedding references when the out-of-domain score can come from the
        prediction pass: None for bundles without them, and on CUDA (bf16 autocast there, while
        :meth:`embed` runs in float32)."""
        if resolve_device(device).type == "cuda":
            return None
        return self.embedding_references()

    def predict_members(self, images, options: InferenceOptions | None = None, **overrides):
        """:meth:`predict` with the spread and sigma, plus each member's own prediction (its mean
        over the TTA views): a tuple (pred, std, sigma, members) with members float64 (M, N, T),
        whose mean over members is ``pred``."""
        opts = inference_options(options, **overrides)
        self._check_images(images)
        mean_out, std_out, member_out, _ = self._predict_batches(images, opts, members=True)
        pred, std, sigma = self._split_outputs(mean_out, std_out)
        assert member_out is not None
        members = member_out.cpu().numpy()[:, :, : len(self.targets)]
        return pred, std, sigma, members

    def embed(self, images, batch_size: int = 256, device: str = "auto", progress: bool | None = None) -> np.ndarray:
        """Penultimate-layer embeddings of uint8 images (N, H, W, 3), no TTA: float32 (M, N, 512),
        one slice per member (see :mod:`galmet.nn.embedding`)."""
        from galmet.nn.embedding import embed

        self._check_images(images)
        if batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1, got {batch_size}", param="batch_size")
        with suggest_smaller_batch(batch_size, "embedding"):
            return embed(self.nets, images, self.crop, self.norm, batch_size, resolve_device(device), progress)

    def image_domain_reference(self):
        """The training images' :class:`~galmet.data.image_domain.ImageDomainReference` (of the
        first member that has one: the members of an ensemble trained on one dataset share its
        images' domain), or None for bundles without one (see ``galmet calibrate --reference``)."""
        from galmet.data.image_domain import ImageDomainReference

        for m in [self.meta, *self.members]:
            if m.get(MetaKey.IMAGE_STATS) is not None:
                where = f"{self.path or 'model'}: image statistics"
                return ImageDomainReference.from_dict(m[MetaKey.IMAGE_STATS], where)
        return None

    def embedding_references(self):
        """Each member's :class:`~galmet.nn.embedding.EmbeddingReference` from the bundle, or None
        when the bundle has none (trained before galmet stored them: see ``galmet calibrate --reference``)."""
        from galmet.nn.embedding import EmbeddingReference

        raw = [m.get(MetaKey.EMBEDDING_STATS) for m in self.members]
        if any(r is None for r in raw):
            return None
        where = f"{self.path or 'model'}: embedding statistics"
        return [EmbeddingReference.from_dict(r, where) for r in raw]
