"""The image-domain reference end to end: training records it, predictions carry
``image_ood_score`` and bit ``IMAGE_OUT_OF_DOMAIN``, and ``galmet calibrate --reference`` refits it
for a bundle trained before galmet stored it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import TINY_TRAIN, make_tiny_dataset, run_cli
from galmet.columns import IMAGE_OOD_SCORE, Flag
from galmet.data.dataset import load_dataset
from galmet.io.images import encode_jpeg
from galmet.nn.bundle import load_model, update_bundle


@pytest.mark.slow  # trains a network: about a minute on a busy 2-core box
def test_training_records_it_predictions_carry_it_and_calibrate_refits_it(tmp_path, capsys):
    ds = make_tiny_dataset(tmp_path / "ds", n=40, size=16, split=True)
    code, _, err = run_cli(capsys, "train", ds, "--out", tmp_path / "run", "--epochs", "1", *TINY_TRAIN)
    assert code == 0, err
    model = load_model(tmp_path / "run")
    ref = model.image_domain_reference()
    assert ref is not None and ref.n_train > 0
    # greyscale copies of two galaxies are out of the image domain
    cat = pd.read_parquet(ds / "catalog.parquet")
    images = np.asarray(load_dataset(ds).images())
    for i in (0, 1):
        grey = np.repeat(images[i].mean(axis=2, keepdims=True), 3, axis=2).astype(np.uint8)
        (ds / "images" / f"{cat['objID'][i]}.jpg").write_bytes(encode_jpeg(grey, 95))
    pred = tmp_path / "pred.csv"
    code, _, err = run_cli(capsys, "predict", tmp_path / "run", ds, "--out", pred, "--device", "cpu")
    assert code == 0, err
    df = pd.read_csv(pred)
    assert (df[IMAGE_OOD_SCORE].iloc[:2] > 1).all()
    assert (df["flags"].iloc[:2] & int(Flag.IMAGE_OUT_OF_DOMAIN)).all()
    # an older bundle without the reference: no column; --reference fits it again
    old = update_bundle(tmp_path / "run", tmp_path / "old.pt", {"image_stats": None})
    assert load_model(old).image_domain_reference() is None
    assert run_cli(capsys, "predict", old, ds, "--out", tmp_path / "p2.csv", "--device", "cpu")[0] == 0
    assert IMAGE_OOD_SCORE not in pd.read_csv(tmp_path / "p2.csv").columns
    valid = tmp_path / "valid.csv"
    df[df["split"] == "test"].to_csv(valid, index=False)
    code, _, err = run_cli(
        capsys,
        "calibrate",
        old,
        valid,
        "--out",
        tmp_path / "new.pt",
        "--reference",
        ds,
        "--split",
        "test",
        "--allow-test-rows",
    )
    assert code == 0, err
    refit = load_model(tmp_path / "new.pt").image_domain_reference()
    assert refit is not None and refit.n_train == int((cat["split"] != "test").sum())
