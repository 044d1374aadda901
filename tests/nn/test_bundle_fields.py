"""Issue 21, classes C and D: every field of a bundle's meta is validated when the bundle is read.
A corrupt value is one line naming the bundle and the field, and is never used nor copied into a
new bundle (galmet calibrate: update_bundle; galmet ensemble: save_ensemble). Ensembles refuse a
member given twice (or a copy of one)."""

from __future__ import annotations

import math
import shutil

import pytest
import torch

from galmet.cli.main import main
from galmet.errors import ConfigError
from galmet.nn.bundle import load_model, save_bundle, save_ensemble, update_bundle
from galmet.nn.net import build_model

#: field -> (corrupt values, a word of the one-line message)
CORRUPT = {
    "label_range": (
        ["8-9", {"oh_p50": [-9999, 1e30]}, {"oh_p50": [9.1, 8.5]}, {"oh_p50": [math.nan, 9]}, {"z": [0, 1]}]
        + [{"oh_p50": "8-9"}, {"oh_p50": [8.5]}],
        "label_range",
    ),
    "valid_rmse": (["0.1", {"oh_p50": -1.0}, {"oh_p50": "x"}], "valid_rmse"),
    "epochs": ([-1, "ten", True, 2.5], "epochs"),
    "config": (["lr=1", [1, 2]], "config"),
    "recipe": ([5, "x" * 5000], "recipe"),
    "dataset": ([["a"], 3.5], "dataset"),
    "head": ([3], "head"),
    "galmet_version": ([{}], "galmet_version"),
    "derived_from": (["abc", ["zz"], [1]], "derived_from"),
    "image_size": ([0, 10**6, "16", True], "image_size"),
    "crop": ([0, 100, "8"], "crop"),
    "targets": ([[], ["oh_p50", "oh_p50"], [""], "oh_p50"], "targets"),
    "n_targets": ([0, "1", 17], "n_targets"),
    "arch": (["resnet9", None], "architecture"),
    "loss": (["mse"], "loss"),
    "norm_mean": ([[1, 2], [math.nan, 0, 0], "rgb"], "norm_mean"),
    "norm_std": ([[0, 1, 1], [-1, 1, 1]], "norm_std"),
    "target_shift": ([[math.nan], ["a"], [1, 2]], "target_shift"),
    "target_scale": ([[0.0], [math.inf]], "target_scale"),
    "calibration": (["x", {"oh_p50": "bad"}, {"oh_p50": {"target": "oh_p50"}}], "calibration"),
    "imaging": (["x", {"pixel_scale": -1}, {"image_size": 0}], "imaging"),
    "embedding_stats": (["x", {"version": 1}], "embedding statistics"),
}
CASES = [(f, i) for f, (values, _) in CORRUPT.items() for i in range(len(values))]


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    root = tmp_path_factory.mktemp("fields")
    torch.manual_seed(0)
    meta = {"targets": ["oh_p50"], "image_size": 16, "label_range": {"oh_p50": [8.4, 9.2]}}
    first = save_bundle(root / "a.pt", build_model("resnet18"), dict(meta))
    second = save_bundle(root / "b.pt", build_model("resnet18"), dict(meta))
    return first, second


@pytest.mark.parametrize(("field", "index"), CASES)
def test_a_corrupt_field_is_one_line_and_never_copied(good, field, index, tmp_path):
    values, word = CORRUPT[field]
    obj = torch.load(good[0], weights_only=True)
    obj["meta"][field] = values[index]
    bad = tmp_path / "bad.pt"
    torch.save(obj, bad)
    with pytest.raises(ConfigError) as info:
        load_model(bad)
    msg = str(info.value)
    assert str(bad) in msg and word in msg and "\n" not in msg, msg
    for write in (lambda out: update_bundle(bad, out, {}), lambda out: save_ensemble(out, [bad, good[1]])):
        out = tmp_path / "new.pt"
        with pytest.raises(ConfigError):
            write(out)
        assert not out.exists()


def test_label_range_inside_the_label_rules_loads(good, tmp_path):
    assert load_model(good[0]).label_range == {"oh_p50": (8.4, 9.2)}


@pytest.mark.parametrize("how", ["same path", "run folder and its file", "a copy", "a calibrated copy", "a member"])
def test_ensemble_refuses_a_member_given_twice(good, how, tmp_path, capsys):
    a, b = good
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(a, run / "model.pt")
    first = run / "model.pt"
    if how == "same path":
        second = first
    elif how == "run folder and its file":
        second = run
    elif how == "a copy":
        second = shutil.copy(a, tmp_path / "copy.pt")
    elif how == "a calibrated copy":
        second = update_bundle(first, tmp_path / "cal.pt", {"recipe": "calibrated"})
    else:
        second = save_ensemble(tmp_path / "ens.pt", [b, first])  # already holds first's network
    out = tmp_path / "out.pt"
    code = main(["ensemble", str(first), str(second), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and "has the same weights as" in err and err.count("\n") == 1, err
    assert not out.exists()
    assert main(["ensemble", str(first), str(b), "--out", str(out)]) == 0  # distinct models: fine
