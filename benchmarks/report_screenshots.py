"""Screenshots of a galmet HTML report in headless Chromium at desktop (1280x900) and phone (390x844) widths.

    python benchmarks/report_screenshots.py REPORT.html OUT_DIR

Needs a ``chromium`` executable (Debian: ``apt-get install chromium``); not part of the test suite
(the tests parse the HTML instead). A view "at" a heading shows the page from that heading on:
everything above it is hidden, because this headless mode paints nothing in a scrolled viewport.
The layout depends on the width only, so the view is what a reader scrolled there sees.
Used for docs/results/report_screenshots/ (issue 11).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

DESKTOP, PHONE = (1280, 900), (390, 844)
#: name, (width, height), (heading tag, heading text prefix, occurrence) or None for the top of the page.
VIEWS = [
    ("desktop_1_top", DESKTOP, None),
    ("phone_1_top", PHONE, None),
    ("desktop_2_dataset_paper", DESKTOP, ("h3", "Dataset", 0)),
    ("phone_2_dataset", PHONE, ("h3", "Dataset", 0)),
    ("desktop_3_outliers", DESKTOP, ("h3", "Largest residuals", 0)),
    ("phone_3_outliers", PHONE, ("h3", "Largest residuals", 0)),
    ("desktop_4_synthetic_headline", DESKTOP, ("h2", "synthetic", 0)),
    ("phone_4_synthetic_headline", PHONE, ("h2", "synthetic", 0)),
]
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]
HIDE_ABOVE = (
    "<script>document.addEventListener('DOMContentLoaded',()=>{{"
    "const t=[...document.querySelectorAll({tag})].filter(e=>e.textContent.startsWith({prefix}))[{k}];"
    "let e=t;while(e&&e!==document.body){{let s=e.previousElementSibling;"
    "while(s){{s.style.display='none';s=s.previousElementSibling;}}e=e.parentElement;}}}});</script>"
)


def main() -> None:
    report, out = Path(sys.argv[1]), Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    html = report.read_text()
    for name, (width, height), at in VIEWS:
        page = html
        if at:
            tag, prefix, k = at
            script = HIDE_ABOVE.format(tag=json.dumps(tag), prefix=json.dumps(prefix), k=k)
            page = html.replace("</body>", script + "</body>")
        view = report.parent / f".screenshot_{name}.html"  # beside the report: its relative links still resolve
        view.write_text(page)
        profile = tempfile.mkdtemp()
        png = out / f"{name}.png"
        try:
            subprocess.run(
                ["chromium", *FLAGS, f"--user-data-dir={profile}", f"--screenshot={png}"]
                + [f"--window-size={width},{height}", view.resolve().as_uri()],
                check=True,
                capture_output=True,
                timeout=120,
            )
        finally:
            shutil.rmtree(profile, ignore_errors=True)
            view.unlink()
        print(f"{png} {png.stat().st_size / 1e3:.0f} kB")


if __name__ == "__main__":
    main()
