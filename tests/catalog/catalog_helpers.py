"""Helpers of the catalogue tests: a HATS catalogue written by LSDB."""

from __future__ import annotations

import warnings

import pandas as pd


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
