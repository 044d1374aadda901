"""galmet.sdss: SkyServer catalogues and cutouts over one bounded HTTP transport.

The public API (each name imported on first use)::

    fetch_cutout(ra, dec)     # one cutout as uint8 (size, size, 3); get_query_payload=True: the request only
    SkyServerClient           # SQL queries and cutouts (retries, rate limit, deadline, body cap)
    query_catalog, Cuts       # the paper's catalogue query and its cuts
    download_cutouts          # resumable concurrent download into a dataset directory
    DownloadOptions           # the one owner of download defaults (workers, rate, retries, ...)
    sky_positions, Positions  # positions from SkyCoord, Tables, DataFrames, sexagesimal text
    HttpClient                # the service-neutral transport a new service builds on

Modules: :mod:`.transport`, :mod:`.skyserver`, :mod:`.catalog`, :mod:`.download`, :mod:`.coords`,
:mod:`.at_positions`.
"""

from galmet._lazy import lazy_exports

_NAMES = {
    "fetch_cutout": "galmet.sdss.skyserver",
    "SkyServerClient": "galmet.sdss.skyserver",
    "query_catalog": "galmet.sdss.catalog",
    "Cuts": "galmet.sdss.catalog",
    "download_cutouts": "galmet.sdss.download",
    "DownloadOptions": "galmet.sdss.download",
    "sky_positions": "galmet.sdss.coords",
    "Positions": "galmet.sdss.coords",
    "HttpClient": "galmet.sdss.transport",
}
__all__ = list(_NAMES)
__getattr__, __dir__ = lazy_exports(__name__, _NAMES)
