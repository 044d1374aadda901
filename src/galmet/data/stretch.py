"""The flux stretch: the explicit, recorded mapping from FITS fluxes to the network's input.

A FITS cutout holds calibrated fluxes, float32 (bands, H, W), bands bluest first
(:mod:`galmet.io.fits_images`). The network (and everything before it: the decode cache, TTA,
embed, explain) takes uint8 RGB (H, W, 3) with R the reddest band, as a survey JPEG is. A
:class:`Stretch` is that mapping, as data: a dataset of FITS cutouts is decoded through one,
a model bundle records the one it was trained with (``imaging.stretch``, :meth:`Stretch.to_dict`),
and prediction applies the model's stretch to the fluxes it is given, so the same fluxes give
the same pixels wherever they are decoded.

``kind="lupton"``: the asinh colour stretch of Lupton et al. (2004), exactly as astropy's
``make_lupton_rgb(R, G, B, minimum, stretch, Q)`` computes it (astropy 6-8), here in numpy
alone (the GPU host has no astropy), for one cube (3, H, W) or a stack (N, 3, H, W)::

    x_b   = scales[b] * flux_b - minimum[b]        (per band; R, G, B = bands 2, 1, 0)
    I     = (x_R + x_G + x_B) / 3
    f(I)  = asinh(Q I / stretch) * 0.1 / asinh(0.1 Q)
    c_b   = max(0, x_b f(I) / I)      (0 where I <= 0)
    c_b  /= max(1, c_R, c_G, c_B)     (a saturated pixel keeps its colour)
    pixel = uint8(255 c_b)            (truncated)

A non-finite flux (NaN, inf: a masked or missing pixel) is taken as 0 before the stretch;
:meth:`Stretch.apply_counted` says how many there were.

The survey defaults (:func:`default_stretch`) are chosen so a typical galaxy of the training
sample (r ~ 16-17.7) fills the range as it does in the survey's JPEG: SDSS's is the calibration
of galmet's synthetic SDSS cutouts against real DR14 JPEGs (:mod:`galmet.synthetic.render`:
scales g 1.6, r 1.2, i 1.0, Q 8, stretch 0.2, in nanomaggies per pixel); the Legacy Surveys'
keeps Q and stretch, scales r to the same surface brightness at its 0.262 arcsec pixels and
weights g and z relative to r as the Legacy viewer's colour images do (g 6.0 : r 3.4 : z 2.2);
PS1's is SDSS's scaled to the same surface brightness at PS1's 0.25 arcsec pixels
((0.296 / 0.25)^2 = 1.40: g 2.24, r 1.68, i 1.40), PS1 fluxes being nanomaggies too (galmet
converts PS1 stack counts, :mod:`galmet.sdss.ps1`). All are per-pixel nanomaggies at the
survey's default pixel scale; decoded, galmet's synthetic sets of the three surveys have about
the same mean pixel value (8 galaxies, 128 px: SDSS 11.8, Legacy 12.8, PS1 13.7 of 255).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from galmet.errors import ConfigError, DataError

#: Stretch kinds galmet knows.
KINDS = ("lupton",)
#: Largest Q (astropy caps it there too).
MAX_Q = 1e10


@dataclass(frozen=True)
class Stretch:
    """A flux -> uint8 RGB mapping (see the module doc).

    Attributes
    ----------
    kind : {"lupton"}
        The stretch: Lupton et al. (2004) asinh, as astropy's ``make_lupton_rgb``.
    scales : tuple of 3 float
        Factor each band's flux is multiplied by first, bluest band first (> 0).
    minimum : tuple of 3 float
        Black level subtracted from each scaled band, bluest first (astropy's ``minimum``).
    stretch : float
        Linear range of the stretch, in scaled flux units (> 0; astropy's ``stretch``).
    Q : float
        Asinh softening (0 < Q <= 1e10; astropy's ``Q``).
    """

    kind: str = "lupton"
    scales: tuple[float, float, float] = (1.0, 1.0, 1.0)
    minimum: tuple[float, float, float] = (0.0, 0.0, 0.0)
    stretch: float = 0.2
    Q: float = 8.0

    def __post_init__(self) -> None:
        checked = _check_fields(
            {"kind": self.kind, "scales": self.scales, "minimum": self.minimum, "stretch": self.stretch, "Q": self.Q},
            "stretch",
        )
        for name, value in checked.items():
            object.__setattr__(self, name, value)

    def to_dict(self) -> dict:
        """The JSON-able form a bundle's ``imaging.stretch`` and a dataset record."""
        return {
            "kind": self.kind,
            "scales": list(self.scales),
            "minimum": list(self.minimum),
            "stretch": self.stretch,
            "Q": self.Q,
        }

    @classmethod
    def from_dict(cls, raw, where: str = "stretch") -> Stretch:
        """The :class:`Stretch` of :meth:`to_dict`'s form; ``minimum`` may be one number for all
        bands and left out (0), ``kind`` left out reads as ``lupton``.

        Raises
        ------
        ConfigError
            One line starting with ``where`` and naming the field, for a value that does not fit.
        """
        if isinstance(raw, Stretch):
            return raw
        if not isinstance(raw, dict):
            raise ConfigError(f"{where} must be a mapping, got {repr(raw)[:60]}")
        unknown = sorted(set(raw) - {"kind", "scales", "minimum", "stretch", "Q"})
        if unknown:
            raise ConfigError(f"{where} has unknown field {unknown[0]!r}")
        missing = [k for k in ("scales", "stretch", "Q") if k not in raw]
        if missing:
            raise ConfigError(f"{where}.{missing[0]} is missing")
        fields = {"kind": "lupton", "minimum": 0.0, **raw}
        return cls(**_check_fields(fields, where))

    def apply(self, cube: np.ndarray) -> np.ndarray:
        """uint8 RGB of fluxes: (3, H, W) -> (H, W, 3), or (N, 3, H, W) -> (N, H, W, 3); R is
        the reddest (last) band. Non-finite fluxes count as 0.

        Raises
        ------
        DataError
            ``cube`` is not (3, H, W) or (N, 3, H, W).
        """
        return self.apply_counted(cube)[0]

    def apply_counted(self, cube: np.ndarray) -> tuple[np.ndarray, int]:
        """:meth:`apply`, and the number of non-finite flux values that were taken as 0."""
        cube = np.asarray(cube)
        if cube.ndim not in (3, 4) or cube.shape[-3] != 3:
            raise DataError(f"a flux cube for a colour stretch is (3, H, W) or (N, 3, H, W), got shape {cube.shape}")
        x = cube.astype(np.float64)  # a copy: the caller's array is never changed
        bad = ~np.isfinite(x)
        n_bad = int(bad.sum())
        if n_bad:
            x[bad] = 0.0
        shape = (3, 1, 1)
        x *= np.asarray(self.scales, dtype=np.float64).reshape(shape)
        x -= np.asarray(self.minimum, dtype=np.float64).reshape(shape)
        rgb = _lupton(np.flip(x, axis=-3), self.stretch, self.Q)  # R, G, B = reddest first
        return np.ascontiguousarray(np.moveaxis(rgb, -3, -1)), n_bad


def _lupton(rgb: np.ndarray, stretch: float, q: float) -> np.ndarray:
    """astropy's ``RGBImageMappingLupton`` on float64 (..., 3, H, W) already shifted by
    ``minimum``: uint8 of the same shape."""
    frac = 0.1
    slope = frac / np.arcsinh(frac * q)
    soften = q / float(stretch)
    intensity = (rgb[..., 0, :, :] + rgb[..., 1, :, :] + rgb[..., 2, :, :]) / 3.0
    f = np.arcsinh(intensity * soften) * slope
    with np.errstate(invalid="ignore", divide="ignore"):
        norm = np.where(intensity <= 0, 0, np.true_divide(f, intensity))
    out = np.clip(rgb * norm[..., None, :, :], 0.0, None)
    top = out.max(axis=-3, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(top > 1.0, np.true_divide(out, top), out)
    out *= 255.0
    return out.astype(np.uint8)


def _check_fields(raw: dict, where: str) -> dict:
    """The fields of a :class:`Stretch`, checked and normalised (tuples of float)."""

    def bad(name: str, want: str) -> ConfigError:
        return ConfigError(f"{where}.{name} must be {want}, got {repr(raw.get(name))[:60]}")

    def number(v) -> float | None:
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
            return None
        v = float(v)
        return v if math.isfinite(v) else None

    if raw["kind"] not in KINDS:
        raise bad("kind", " or ".join(KINDS))
    triples = {}
    for name, positive in (("scales", True), ("minimum", False)):
        v = raw[name]
        v = [v] * 3 if name == "minimum" and number(v) is not None else v
        values = [number(x) for x in v] if isinstance(v, (list, tuple)) else []
        if len(values) != 3 or any(x is None or (positive and x <= 0) for x in values):
            raise bad(name, "three " + ("positive numbers" if positive else "finite numbers") + ", bluest band first")
        triples[name] = tuple(values)
    stretch, q = number(raw["stretch"]), number(raw["Q"])
    if stretch is None or stretch <= 0:
        raise bad("stretch", "a positive number")
    if q is None or not 0 < q <= MAX_Q:
        raise bad("Q", f"a number in (0, {MAX_Q:g}]")
    return {"kind": raw["kind"], **triples, "stretch": stretch, "Q": q}


#: Each survey's default stretch (see the module doc for how they were chosen).
DEFAULT_STRETCHES = {
    "sdss": Stretch(scales=(1.6, 1.2, 1.0), stretch=0.2, Q=8.0),
    "legacy": Stretch(scales=(2.7, 1.5, 1.0), stretch=0.2, Q=8.0),
    "ps1": Stretch(scales=(2.24, 1.68, 1.4), stretch=0.2, Q=8.0),
}


def default_stretch(survey: str | None) -> Stretch:
    """The default :class:`Stretch` of a survey (``sdss``, ``legacy``, ``ps1``); an unknown
    or unrecorded survey gets SDSS's (fluxes in nanomaggies)."""
    return DEFAULT_STRETCHES.get(str(survey).lower() if survey else "sdss", DEFAULT_STRETCHES["sdss"])


def as_stretch(value, where: str = "stretch") -> Stretch | None:
    """``value`` as a :class:`Stretch`: a Stretch, its dict form, or None (None)."""
    return None if value is None else Stretch.from_dict(value, where)
