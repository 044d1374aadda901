"""The imaging surveys galmet reads: what each one is, as data (no network, no torch).

One :class:`Survey` per imaging source, in :data:`SURVEYS` by name (``sdss``, ``legacy``,
``ps1``): its bands, native pixel scale, cutout formats and layers, the seeing and depth a
synthetic image of it is rendered with, the service root its cutouts come from and the
acknowledgement its users must print. Everything that must know "which survey" (the imaging
record of a dataset or model bundle, ``galmet synth``, the cutout sources, the CLI's
``--survey``) takes it from here, so a survey is described once.

Bands are named bluest first (``"gri"``, ``"grz"``); a colour image shows them reddest first as
R, G, B (``gri``: i -> R, r -> G, g -> B), as the SDSS cutout service does.
"""

from __future__ import annotations

from dataclasses import dataclass

from galmet.errors import ConfigError
from galmet.paper import BANDS, IMAGE_SIZE, PIXEL_SCALE_ARCSEC, SDSS_NATIVE_PIXEL_ARCSEC

#: Image formats a survey's cutouts may come in: an 8-bit colour JPEG, or float fluxes in FITS.
FORMATS = ("jpeg", "fits")


@dataclass(frozen=True)
class Survey:
    """One imaging survey's description.

    Attributes
    ----------
    name : str
        The name ``--survey`` takes (``sdss``, ``legacy``, ``ps1``).
    title : str
        For people, e.g. ``"DESI Legacy Imaging Surveys"``.
    bands : str
        The three bands of a colour cutout, bluest first (``"gri"``); the image shows them
        reddest first as R, G, B.
    all_bands : str
        Every band the survey images (``"ugriz"``), bluest first.
    native_pixel_scale : float
        Arcsec per pixel of the survey's own images (the cutout services' default scale).
    default_pixel_scale : float
        Arcsec per pixel galmet fetches at by default (SDSS: the paper's 0.296; the others: native).
    default_size : int
        Pixels per side galmet fetches by default.
    formats : tuple of str
        Cutout formats its service gives (a subset of :data:`FORMATS`), the default first.
    layers : tuple of str
        The service's image layers (the viewer's ``layer``), the default first; () when it has none.
    base_url : str
        The service root ``--base-url`` replaces (its paths are appended unchanged).
    seeing_fwhm : dict of str to float
        Typical seeing per band, arcsec FWHM (what ``galmet synth --survey`` convolves with).
    depth_mag : dict of str to float
        Typical 5-sigma point-source depth per band, AB magnitudes (sets a synthetic image's sky noise).
    flux_unit : str
        Unit of its FITS cutouts' pixels once decoded (``"nanomaggy"``).
    acknowledgement : str
        The text the survey asks publications that use its data to print, verbatim from the survey's
        page: all of it where it is short (PS1), else its first paragraph and a note in parentheses
        that the rest, at ``acknowledgement_url``, must be printed too (SDSS-IV, Legacy Surveys).
    acknowledgement_url : str
        Where the survey publishes its acknowledgement.
    """

    name: str
    title: str
    bands: str
    all_bands: str
    native_pixel_scale: float
    default_pixel_scale: float
    default_size: int
    formats: tuple[str, ...]
    layers: tuple[str, ...]
    base_url: str
    seeing_fwhm: dict[str, float]
    depth_mag: dict[str, float]
    flux_unit: str
    acknowledgement: str
    acknowledgement_url: str

    @property
    def default_format(self) -> str:
        """The format galmet fetches when none is asked for."""
        return self.formats[0]

    @property
    def default_layer(self) -> str | None:
        """The layer galmet fetches when none is asked for (None: the survey has no layers)."""
        return self.layers[0] if self.layers else None

    def check_format(self, fmt: str | None, param: str = "format") -> str:
        """``fmt`` (None: the default) if this survey's service gives it, else a one-line ConfigError."""
        fmt = self.default_format if fmt is None else str(fmt).lower().replace("jpg", "jpeg")
        if fmt not in self.formats:
            raise ConfigError(
                f"{param}: {self.name} cutouts come as {' or '.join(self.formats)}, not {fmt!r}", param=param
            )
        return fmt

    def check_layer(self, layer: str | None, param: str = "layer") -> str | None:
        """``layer`` (None: the default) if this survey has it, else a one-line ConfigError."""
        if layer is None:
            return self.default_layer
        if not self.layers:
            raise ConfigError(f"{param}: {self.name} has no image layers (got {layer!r})", param=param)
        if layer not in self.layers:
            raise ConfigError(
                f"{param}: {self.name} layer must be one of {', '.join(self.layers)}, got {layer!r}", param=param
            )
        return layer

    def check_bands(self, bands: str, param: str = "bands") -> str:
        """``bands``: three distinct bands this survey images, else a one-line ConfigError."""
        ok = isinstance(bands, str) and len(bands) == 3 and len(set(bands)) == 3
        if not (ok and set(bands) <= set(self.all_bands)):
            raise ConfigError(
                f"{param}: must be three distinct {self.name} bands from {self.all_bands!r}, got {bands!r}", param=param
            )
        return "".join(sorted(bands, key=self.all_bands.index))


SDSS = Survey(
    name="sdss",
    title="Sloan Digital Sky Survey (SkyServer ImgCutout)",
    bands=BANDS,
    all_bands="ugriz",
    native_pixel_scale=SDSS_NATIVE_PIXEL_ARCSEC,
    default_pixel_scale=PIXEL_SCALE_ARCSEC,
    default_size=IMAGE_SIZE,
    formats=("jpeg",),
    layers=(),
    base_url="https://skyserver.sdss.org/dr14",
    seeing_fwhm={"g": 1.5, "r": 1.4, "i": 1.3},
    depth_mag={"u": 22.0, "g": 22.2, "r": 22.2, "i": 21.3, "z": 20.5},
    flux_unit="nanomaggy",
    acknowledgement=(
        "Funding for the Sloan Digital Sky Survey IV has been provided by the Alfred P. Sloan Foundation, "
        "the U.S. Department of Energy Office of Science, and the Participating Institutions. SDSS-IV "
        "acknowledges support and resources from the Center for High Performance Computing at the "
        "University of Utah. The SDSS website is www.sdss4.org. (The first of the acknowledgement's "
        "paragraphs; the page at the acknowledgement URL continues with the Participating Institutions, "
        "which publications must print too.)"
    ),
    acknowledgement_url="https://www.sdss4.org/collaboration/citing-sdss/",
)

LEGACY = Survey(
    name="legacy",
    title="DESI Legacy Imaging Surveys (Legacy Survey viewer cutouts)",
    bands="grz",
    all_bands="grz",
    native_pixel_scale=0.262,
    default_pixel_scale=0.262,
    default_size=128,
    formats=("jpeg", "fits"),
    layers=("ls-dr10", "ls-dr9-north", "ls-dr9-south"),
    base_url="https://www.legacysurvey.org",
    seeing_fwhm={"g": 1.5, "r": 1.3, "z": 1.2},
    depth_mag={"g": 24.7, "r": 24.2, "z": 23.3},
    flux_unit="nanomaggy",
    acknowledgement=(
        "The Legacy Surveys consist of three individual and complementary projects: the Dark Energy "
        "Camera Legacy Survey (DECaLS; Proposal ID #2014B-0404; PIs: David Schlegel and Arjun Dey), the "
        "Beijing-Arizona Sky Survey (BASS; NOAO Prop. ID #2015A-0801; PIs: Zhou Xu and Xiaohui Fan), and "
        "the Mayall z-band Legacy Survey (MzLS; Prop. ID #2016A-0453; PI: Arjun Dey). DECaLS, BASS and "
        "MzLS together include data obtained, respectively, at the Blanco telescope, Cerro Tololo "
        "Inter-American Observatory, NSF\u2019s NOIRLab; the Bok telescope, Steward Observatory, University "
        "of Arizona; and the Mayall telescope, Kitt Peak National Observatory, NOIRLab. Pipeline processing "
        "and analyses of the data were supported by NOIRLab and the Lawrence Berkeley National Laboratory "
        "(LBNL). The Legacy Surveys project is honored to be permitted to conduct astronomical research on "
        "Iolkam Du\u2019ag (Kitt Peak), a mountain with particular significance to the Tohono O\u2019odham "
        "Nation. (The first of the acknowledgement's paragraphs; the page at the acknowledgement URL has "
        "the rest -- NOIRLab and LBNL, DECam and the DES, BASS, NEOWISE, DOE and NSF funding -- which "
        "publications must print too.)"
    ),
    acknowledgement_url="https://www.legacysurvey.org/acknowledgment/",
)

PS1 = Survey(
    name="ps1",
    title="Pan-STARRS1 3pi survey stacks (PS1 image cutout service)",
    bands="gri",
    all_bands="grizy",
    native_pixel_scale=0.25,
    default_pixel_scale=0.25,
    default_size=128,
    formats=("fits", "jpeg"),
    layers=(),
    base_url="https://ps1images.stsci.edu",
    seeing_fwhm={"g": 1.31, "r": 1.19, "i": 1.11},
    depth_mag={"g": 23.3, "r": 23.2, "i": 23.1, "z": 22.3, "y": 21.4},
    flux_unit="nanomaggy",
    acknowledgement=(
        "The Pan-STARRS1 Surveys (PS1) and the PS1 public science archive have been made possible through "
        "contributions by the Institute for Astronomy, the University of Hawaii, the Pan-STARRS Project "
        "Office, the Max-Planck Society and its participating institutes, the Max Planck Institute for "
        "Astronomy, Heidelberg and the Max Planck Institute for Extraterrestrial Physics, Garching, The "
        "Johns Hopkins University, Durham University, the University of Edinburgh, the Queen's University "
        "Belfast, the Harvard-Smithsonian Center for Astrophysics, the Las Cumbres Observatory Global "
        "Telescope Network Incorporated, the National Central University of Taiwan, the Space Telescope "
        "Science Institute, the National Aeronautics and Space Administration under Grant No. NNX08AR22G "
        "issued through the Planetary Science Division of the NASA Science Mission Directorate, the "
        "National Science Foundation Grant No. AST-1238877, the University of Maryland, Eotvos Lorand "
        "University (ELTE), the Los Alamos National Laboratory, and the Gordon and Betty Moore Foundation."
    ),
    acknowledgement_url="https://panstarrs.stsci.edu/",
)

#: Every survey galmet reads, by name; the first is the default.
SURVEYS: dict[str, Survey] = {s.name: s for s in (SDSS, LEGACY, PS1)}
#: The survey of the paper and of everything galmet made before it knew surveys.
DEFAULT_SURVEY = SDSS.name


def get_survey(name: str | Survey | None, param: str = "survey") -> Survey:
    """The :class:`Survey` named ``name`` (None: SDSS; a Survey is returned as is).

    Raises
    ------
    ConfigError
        One line naming ``param`` and the surveys there are, for any other name.
    """
    if isinstance(name, Survey):
        return name
    key = DEFAULT_SURVEY if name is None else str(name).strip().lower()
    if key not in SURVEYS:
        raise ConfigError(f"{param}: unknown survey {name!r}; galmet reads {', '.join(SURVEYS)}", param=param)
    return SURVEYS[key]
