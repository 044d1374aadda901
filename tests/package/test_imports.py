"""The GPU machines have no astropy or galsim: training and prediction must not need them."""

from __future__ import annotations

import subprocess
import sys

BLOCKER = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('astropy', 'galsim'):
            raise ImportError('blocked ' + name)
sys.meta_path.insert(0, Block())
"""


def test_train_predict_and_metrics_import_without_astropy_or_galsim():
    code = BLOCKER + (
        "import galmet.cli.main, galmet.training.loop, galmet.predict, galmet.nn.bundle, galmet.data.dataset, "
        "galmet.science.metrics, galmet.training.lr_find, galmet.sdss.download, galmet.sdss.catalog\n"
        "galmet.cli.main.build_parser()\n"
        "assert not any(m.split('.')[0] in ('astropy', 'galsim') for m in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def test_metrics_and_plotting_do_not_import_torch():
    code = (
        "import sys, galmet.science.metrics, galmet.science.baseline, galmet.report.build\n"
        "import galmet.science.plots.style, galmet.science.plots.image_grid, galmet.science.plots.histograms\n"
        "import galmet.science.plots.pred_vs_true, galmet.science.plots.resolution, galmet.science.plots.mass\n"
        "import galmet.science.plots.mzr, galmet.science.plots.lr_find, galmet.science.plots.mosaic\n"
        "import galmet.science.plots.history, galmet.science.plots.uncertainty, galmet.science.plots.systematics\n"
        "import galmet.science.plots.attribution, galmet.science.calibration, galmet.science.systematics\n"
        "import galmet.science.attribution, galmet.data.quality, galmet.nn.uncertainty\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
