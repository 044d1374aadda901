"""Helpers of the catalogue tests: fast job settings, a tiny bundle (the ``bundle`` fixture: import
``bundle_fixture``), and a HATS catalogue written by LSDB. (Not a conftest.py: ``from conftest
import ...`` must keep finding the suite's own.)"""

from __future__ import annotations

import warnings

import pandas as pd
import pytest
import torch

from galmet.nn.bundle import save_bundle
from galmet.nn.net import build_model

#: Settings of a quick catalogue job against a loopback server: no rate limit, one quick retry, no TTA.
FAST = dict(rate=0, retries=1, backoff_base=0.01, timeout=5.0, tta=False, device="cpu")


def hats_input(frame: pd.DataFrame, folder, partition_rows: int = 8):
    """A HATS catalogue of ``frame`` (ra/dec columns) written by LSDB, without a margin cache."""
    import lsdb

    cat = lsdb.from_dataframe(
        frame,
        ra_column="ra",
        dec_column="dec",
        catalog_name="targets",
        partition_rows=partition_rows,
        margin_threshold=None,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cat.write_catalog(folder, progress_bar=False)
    return folder


@pytest.fixture(name="bundle")
def bundle_fixture(tmp_path):
    """A tiny untrained bundle of 16 px cutouts."""
    torch.manual_seed(0)
    net = build_model("resnet18", n_targets=1)
    return save_bundle(tmp_path / "run" / "model.pt", net, {"targets": ["oh_p50"], "image_size": 16})
