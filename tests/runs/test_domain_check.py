"""``galmet domain-check``: AUC near 0.5 for two draws of one distribution, near 1 for a shifted
set, the per-galaxy weights table, and one-line exit-2 errors for bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import make_tiny_dataset, run_cli
from galmet.io.images import decode_image, encode_jpeg

pytest.importorskip("sklearn")

AUC = "domain classifier AUC"


def _auc(out: str) -> tuple[float, float, float]:
    """(AUC, interval low, interval high) from the command's report line."""
    line = next(s for s in out.splitlines() if s.startswith(AUC))
    auc = float(line.split()[3])
    lo, hi = line.split("interval ")[1].split(")")[0].split("-")
    return auc, float(lo), float(hi)


@pytest.fixture(scope="module")
def sets(tmp_path_factory):
    """Two 40-galaxy draws of the tiny-dataset distribution (32 px) and a greyscale copy of the second."""
    root = tmp_path_factory.mktemp("domain")
    a = make_tiny_dataset(root / "a", n=40, size=32, seed=0)
    b = make_tiny_dataset(root / "b", n=40, size=32, seed=1)
    grey = make_tiny_dataset(root / "grey", n=40, size=32, seed=1)
    for f in (grey / "images").glob("*.jpg"):
        img = decode_image(f.read_bytes()).astype(float)
        f.write_bytes(encode_jpeg(np.repeat(img.mean(axis=2, keepdims=True), 3, axis=2).astype(np.uint8), 95))
    return root, a, b, grey


def test_same_distribution_is_indistinguishable_and_a_shift_is_not(sets, capsys, tmp_path):
    _, a, b, grey = sets
    code, out, err = run_cli(capsys, "domain-check", a, b, "--bootstrap", "200")
    assert code == 0, err
    auc, lo, hi = _auc(out)
    assert lo <= 0.5 + 0.05 and auc < 0.75  # within its interval of chance
    code, out, err = run_cli(capsys, "domain-check", a, grey, "--bootstrap", "200", "--out", tmp_path / "w.csv")
    assert code == 0, err
    auc, lo, hi = _auc(out)
    assert auc > 0.9 and lo > 0.8 and lo <= auc <= hi
    table = pd.read_csv(tmp_path / "w.csv")
    assert {"objID", "set", "p_target", "importance_weight"} <= set(table.columns)
    n_train, n_target = (table["set"] == "train").sum(), (table["set"] == "target").sum()
    assert n_target == 40 and 30 <= n_train < 40  # TRAIN's train and valid rows; its test rows are left out
    assert table["importance_weight"].between(0.01, 100).all() and table["p_target"].between(0, 1).all()
    p = table["p_target"].clip(1e-6, 1 - 1e-6)
    expected = (p / (1 - p) * n_train / n_target).clip(0.01, 100)
    np.testing.assert_allclose(table["importance_weight"], expected, rtol=1e-6)


def test_bad_input_is_one_line_exit_2_and_writes_nothing(sets, capsys, tmp_path):
    _, a, b, _ = sets
    for argv in (
        [a, tmp_path / "missing"],
        [a, a],  # the same dataset without splits to compare
        [a, b, "--out", tmp_path / "w.xyz"],
        [a, b, "--out", a / "catalog.parquet"],  # over an input
        [a, b, "--bootstrap", "-1"],
    ):
        code, _, err = run_cli(capsys, "domain-check", *argv)
        assert code == 2, (argv, err)
        assert err.strip() and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "w.xyz").exists()
    assert pd.read_parquet(a / "catalog.parquet").shape[0] == 40
