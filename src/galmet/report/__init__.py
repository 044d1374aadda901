"""galmet.report: the one self-contained HTML report (``galmet report``).

:func:`~galmet.report.build.write_report` reads runs and prediction folders; :mod:`.facts`
gathers what each section shows, :mod:`.sections` writes the sections, :mod:`.html` the page.
"""

from galmet._lazy import lazy_exports

__all__ = ["write_report"]
__getattr__, __dir__ = lazy_exports(__name__, {"write_report": "galmet.report.build"})
