"""galmet.sdss: the web services of every imaging survey galmet reads, over one bounded HTTP transport.

SDSS SkyServer (catalogues and JPEG cutouts), the DESI Legacy Surveys viewer (JPEG and FITS
cutouts) and the Pan-STARRS1 cutout service (JPEG and FITS); the package keeps its name from the
first of them. The public API (each name imported on first use)::

    fetch_cutout(ra, dec)     # one SDSS cutout as uint8 (size, size, 3); get_query_payload=True: the request only
                              # survey="legacy"/"ps1", layer=, format="fits": float32 (bands, size, size)
    cutout_source(survey)     # a survey's cutout source (sdss, legacy, ps1): get_cutout -> (bytes, image, attempts)
    OutsideFootprint          # the survey has no imaging at a position (blank sky, no PS1 image): permanent
    SkyServerClient           # SQL queries and cutouts (retries, rate limit, deadline, body cap)
    LegacySurveyClient        # the Legacy Survey viewer's cutout.jpg / cutout.fits
    PS1Client                 # PS1's ps1filenames.py then fitscut.cgi
    query_catalog, Cuts       # the paper's catalogue query and its cuts
    query_objids, query_cone  # the paper's columns for your own objIDs / galaxies in a cone
    download_cutouts          # resumable concurrent download into a dataset directory
    DownloadOptions           # the one owner of download defaults (workers, rate, retries, ...)
    sky_positions, Positions  # positions from SkyCoord, Tables, DataFrames, sexagesimal text
    HttpClient                # the service-neutral transport a new service builds on

Modules: :mod:`.transport`, :mod:`.answers`, :mod:`.skyserver`, :mod:`.legacy`, :mod:`.ps1`,
:mod:`.sources`, :mod:`.catalog`, :mod:`.download`, :mod:`.coords`, :mod:`.at_positions`,
:mod:`.by_objid`, :mod:`.cone`.
"""

from galmet._lazy import lazy_exports

_NAMES = {
    "fetch_cutout": "galmet.sdss.sources",
    "SkyServerClient": "galmet.sdss.skyserver",
    "cutout_source": "galmet.sdss.sources",
    "OutsideFootprint": "galmet.sdss.sources",
    "LegacySurveyClient": "galmet.sdss.legacy",
    "PS1Client": "galmet.sdss.ps1",
    "query_catalog": "galmet.sdss.catalog",
    "Cuts": "galmet.sdss.catalog",
    "query_objids": "galmet.sdss.by_objid",
    "query_cone": "galmet.sdss.cone",
    "download_cutouts": "galmet.sdss.download",
    "DownloadOptions": "galmet.sdss.download",
    "sky_positions": "galmet.sdss.coords",
    "Positions": "galmet.sdss.coords",
    "HttpClient": "galmet.sdss.transport",
}
__all__ = list(_NAMES)
__getattr__, __dir__ = lazy_exports(__name__, _NAMES)
