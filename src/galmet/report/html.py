"""HTML building blocks of the report: escaping, numbers, tables that scroll on a phone, embedded
figures, and paths written relative to the report file."""

from __future__ import annotations

import base64
import html
import logging
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

log = logging.getLogger("galmet.report.build")

#: Inline style sheet: readable from a 390-pixel phone to a desktop (tables scroll sideways inside
#: their own box instead of widening the page; images never exceed the column).
CSS = """
*{box-sizing:border-box}html{-webkit-text-size-adjust:100%;text-size-adjust:100%}
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:1100px;margin:0 auto;
padding:1em 1.2em 3em;color:#222;line-height:1.45;font-size:16px}
h1{font-size:1.6em;border-bottom:2px solid #ccc;padding-bottom:.2em;overflow-wrap:anywhere}
h2{font-size:1.35em;margin-top:2.2em;padding:.3em .5em;background:#eef3f8;border-left:5px solid #3b6ea5}
h3{font-size:1.1em;margin-top:1.6em;border-bottom:1px solid #e3e3e3}
a{color:#1f5f9e}p,li{overflow-wrap:anywhere}
.scroll{overflow-x:auto;-webkit-overflow-scrolling:touch;margin:.6em 0;max-width:100%}
table{border-collapse:collapse;font-size:.92em}th,td{border:1px solid #ccc;padding:.25em .6em;text-align:right;
white-space:nowrap}th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}
td.wrap{white-space:normal;min-width:12em;text-align:left}table.text td,table.text th{text-align:left}
figure{margin:1.2em 0}figure img{display:block;max-width:100%;height:auto;margin:0 auto;border:1px solid #eee}
figcaption{font-size:.9em;color:#444;margin-top:.3em}
.note{color:#666;font-size:.9em}.better{color:#17702a}.worse{color:#a32020}
.kind{display:inline-block;padding:.1em .6em;border-radius:1em;font-size:.85em;font-weight:600;color:#fff}
.kind-sdss{background:#3b6ea5}.kind-synthetic{background:#8a5a00}.kind-unknown{background:#777}
.lead{font-size:1.05em;background:#fafafa;border:1px solid #e5e5e5;border-radius:6px;padding:.6em .9em}
nav.toc ol{padding-left:1.4em}
@media (max-width:600px){body{padding:.6em .7em 2em;font-size:15px}h1{font-size:1.3em}h2{font-size:1.15em}
table{font-size:.85em}th,td{padding:.2em .4em}td:first-child{white-space:normal;min-width:7em}}
"""


def esc(x) -> str:
    """``x`` as escaped HTML text."""
    return html.escape(str(x))


def num(v, fmt: str = "{:.4f}") -> str:
    """``v`` formatted, or "-" when it is None or not finite."""
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "-"
    return fmt.format(v)


def table(header: list[str], rows: list[list[str]], wrap_last: bool = False, text: bool = False) -> str:
    """A table (cells are HTML already) in a box that scrolls sideways on a narrow screen.

    ``wrap_last`` lets the last column wrap (notes, paths); ``text`` aligns every column left (a
    table of settings or names rather than numbers).
    """
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="wrap">{c}</td>' if wrap_last and i == len(r) - 1 else f"<td>{c}</td>" for i, c in enumerate(r)
        )
        + "</tr>"
        for r in rows
    )
    cls = ' class="text"' if text else ""
    return f'<div class="scroll"><table{cls}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def png_figure(data: bytes, alt: str, caption_html: str) -> str:
    """A PNG embedded as a ``data:`` URI (the report stays one file) with its caption."""
    b64 = base64.b64encode(data).decode("ascii")
    return (
        f'<figure><img alt="{esc(alt)}" loading="lazy" src="data:image/png;base64,{b64}">'
        f"<figcaption>{caption_html}</figcaption></figure>"
    )


#: Largest figure file a report embeds (bytes); a larger one is left out with a warning naming it.
MAX_FIGURE_BYTES = 20 << 20
#: Largest total of the figure files one report embeds (bytes); figures past it are left out.
MAX_EMBED_BYTES = 200 << 20


@dataclass
class EmbedBudget:
    """The figure files one report embeds, each at most ``per_file`` bytes and ``total`` together
    (default: :data:`MAX_FIGURE_BYTES` and :data:`MAX_EMBED_BYTES` as they are when it is made)."""

    per_file: int = 0
    total: int = 0
    used: int = 0

    def __post_init__(self) -> None:
        self.per_file = self.per_file or MAX_FIGURE_BYTES
        self.total = self.total or MAX_EMBED_BYTES

    def read(self, path) -> bytes | None:
        """The bytes of figure ``path``, or None (with one warning line naming it) when it is not a
        regular file, is over ``per_file`` or would take the report over ``total``."""
        p = Path(path)
        try:
            st = p.stat()
        except OSError as exc:
            log.warning("report: skipping %s (%s)", p, exc.strerror or exc)
            return None
        if not stat.S_ISREG(st.st_mode):
            log.warning("report: skipping %s (not a regular file)", p)
            return None
        if st.st_size > self.per_file:
            log.warning(
                "report: skipping %s (%.1f MB; a figure may be at most %.0f MB)",
                p,
                st.st_size / 1e6,
                self.per_file / 1e6,
            )
            return None
        if self.used + st.st_size > self.total:
            log.warning("report: skipping %s (the report's figures would pass %.0f MB)", p, self.total / 1e6)
            return None
        try:
            with open(p, "rb") as fh:
                data = fh.read(self.per_file + 1)
        except OSError as exc:
            log.warning("report: skipping %s (%s)", p, exc.strerror or exc)
            return None
        if len(data) > self.per_file or self.used + len(data) > self.total:  # it grew since stat
            log.warning("report: skipping %s (grew past the figure limit while read)", p)
            return None
        self.used += len(data)
        return data


@dataclass
class Paths:
    """Writes paths relative to the report file, so the report and the runs can move together.

    ``report_dir`` is the folder of the report; ``roots`` the run folders it covers. A file under
    the report's folder or a run folder is written as a relative POSIX path (and linked); any other
    file (a dataset elsewhere, the absolute path a JSON recorded) only by its name: the report never
    shows an absolute path of the machine it was made on.
    """

    report_dir: Path
    roots: list[Path] = field(default_factory=list)
    #: What the report's figures may take (every embedded file goes through it).
    budget: EmbedBudget = field(default_factory=EmbedBudget)

    def rel(self, path) -> str | None:
        """``path`` relative to the report's folder, or None when it lies outside it and every run."""
        p = Path(path)
        try:
            p = p.resolve()
        except OSError:
            return None
        for base in [self.report_dir, *self.roots]:
            try:
                p.relative_to(Path(base).resolve())
            except ValueError:
                continue
            return Path(os.path.relpath(p, self.report_dir.resolve())).as_posix()
        return None

    def show(self, path) -> str:
        """HTML naming ``path``: a relative link when it is reachable from the report, else its name."""
        rel = self.rel(path)
        if rel is not None:
            return f'<a href="{esc(rel)}">{esc(rel)}</a>'
        return f'{esc(Path(str(path)).name)} <span class="note">(outside the report\'s folder)</span>'
