"""The truth's bit lives in ``truth_flags``, apart from the prediction-time ``flags``: selecting
unflagged rows never selects on the truth (issue 19)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd

from galmet.columns import FLAGS, TRUTH_FLAGS, Flag, TruthFlag, check_value, describe_flags
from galmet.predict.flags import flag_rows, range_bits, truth_bits
from galmet.science.predictions import load_predictions, upgrade_columns


def _model(label_range=None):
    return SimpleNamespace(
        label_range={"oh_p50": (8.4, 9.2)} if label_range is None else label_range,
        embedding_references=lambda: None,
        image_domain_reference=lambda: None,
    )


def _galaxies(n: int, size: int = 32) -> np.ndarray:
    """uint8 (n, size, size, 3): a centred Gaussian blob on a noisy sky (raises no image bit)."""
    yy, xx = np.mgrid[:size, :size] - (size - 1) / 2
    blob = 200 * np.exp(-(xx**2 + yy**2) / (2 * 3.0**2))
    rng = np.random.default_rng(0)
    imgs = blob[None, :, :, None] + 10 + rng.normal(0, 2, (n, size, size, 3))
    return np.clip(imgs, 0, 255).astype(np.uint8)


def test_truth_bit_is_not_a_prediction_flag():
    assert "LABEL_OUT_OF_RANGE" not in Flag.__members__
    assert TruthFlag.LABEL_OUT_OF_RANGE == 2
    assert not any(int(f) & int(TruthFlag.LABEL_OUT_OF_RANGE) for f in Flag)
    assert check_value("PRED_OUT_OF_RANGE") < check_value("LABEL_OUT_OF_RANGE") < check_value("PHOTOMETRIC_CUTS")
    assert describe_flags(2, TruthFlag) == "LABEL_OUT_OF_RANGE" and describe_flags(2) == ""


def test_flag_rows_puts_the_truth_check_in_its_own_column():
    table = pd.DataFrame({"oh_p50_pred": [8.8, 8.8, 9.5, 8.8]})
    catalog = pd.DataFrame({"oh_p50": [8.8, 9.9, 8.8, np.nan]})
    out = flag_rows(table, _model(), _galaxies(4), catalog)
    assert out[FLAGS].tolist() == [0, 0, int(Flag.PRED_OUT_OF_RANGE), 0]
    assert out[TRUTH_FLAGS].tolist() == [0, int(TruthFlag.LABEL_OUT_OF_RANGE), 0, 0]
    checks = out.attrs["flag_checks"]
    assert checks[:2] == ["PRED_OUT_OF_RANGE", "LABEL_OUT_OF_RANGE"]
    assert checks == sorted(checks, key=check_value)
    no_truth = flag_rows(table, _model(), _galaxies(4), pd.DataFrame(index=range(4)))
    assert TRUTH_FLAGS not in no_truth.columns and "LABEL_OUT_OF_RANGE" not in no_truth.attrs["flag_checks"]


def test_range_bits_do_not_read_the_catalogue():
    table = pd.DataFrame({"oh_p50_pred": [8.0, 8.8]})
    bits, checks = range_bits(table, _model())
    assert bits.tolist() == [int(Flag.PRED_OUT_OF_RANGE), 0] and checks == ["PRED_OUT_OF_RANGE"]
    assert truth_bits(table, _model(), pd.DataFrame({"z": [0.1, 0.1]})) is None
    assert truth_bits(table, _model({}), pd.DataFrame({"oh_p50": [8.8, 9.9]})) is None


def test_unflagged_selection_does_not_depend_on_the_truth():
    """The same images and predictions with any truths give the same ``flags``."""
    table = pd.DataFrame({"oh_p50_pred": np.linspace(8.3, 9.3, 6)})
    imgs = _galaxies(6)
    a = flag_rows(table, _model(), imgs, pd.DataFrame({"oh_p50": np.full(6, 8.8)}))
    b = flag_rows(table, _model(), imgs, pd.DataFrame({"oh_p50": np.linspace(7.1, 9.9, 6)}))
    assert a[FLAGS].tolist() == b[FLAGS].tolist()
    assert not a[TRUTH_FLAGS].any() and b[TRUTH_FLAGS].any()


def test_old_tables_are_upgraded(tmp_path):
    old = pd.DataFrame(
        {
            "objID": [1, 2, 3],
            "oh_p50_pred": [8.8, 8.9, 9.0],
            "oh_p50": [8.8, 9.95, 9.0],
            "flags": [0, int(Flag.IMAGE_EMPTY) | 2, int(Flag.PRED_OUT_OF_RANGE)],
        }
    )
    new = upgrade_columns(old)
    assert new[FLAGS].tolist() == [0, int(Flag.IMAGE_EMPTY), int(Flag.PRED_OUT_OF_RANGE)]
    assert new[TRUTH_FLAGS].tolist() == [0, 2, 0]
    assert old[FLAGS].tolist()[1] == int(Flag.IMAGE_EMPTY) | 2  # the input is not changed
    path = tmp_path / "old.parquet"
    old.to_parquet(path)
    df, _ = load_predictions(path)
    assert df[TRUTH_FLAGS].tolist() == [0, 2, 0] and not (df[FLAGS] & 2).any()
    # a table without the bit and without the check listed gains no truth column
    clean = upgrade_columns(old.assign(flags=[0, 8, 1]))
    assert TRUTH_FLAGS not in clean.columns
    listed = old.assign(flags=[0, 8, 1])
    listed.attrs["flag_checks"] = ["LABEL_OUT_OF_RANGE", "PRED_OUT_OF_RANGE"]
    up = upgrade_columns(listed)
    assert up[TRUTH_FLAGS].tolist() == [0, 0, 0]
    assert up.attrs["flag_checks"] == ["PRED_OUT_OF_RANGE", "LABEL_OUT_OF_RANGE"]
