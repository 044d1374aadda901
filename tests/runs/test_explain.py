"""galmet explain (captum attribution maps and the controls), galmet systematics, and their report sections."""

from __future__ import annotations

import json
import sys

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import make_tiny_dataset, run_cli
from galmet.nn.bundle import save_bundle
from galmet.nn.net import build_model
from galmet.science.attribution import fibre_masks, galaxy_masks, grayscale, shuffle_within
from galmet.science.systematics import systematics


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("explain")
    ds = make_tiny_dataset(root / "ds", n=40, size=32, split=True)
    torch.manual_seed(0)
    bundle = save_bundle(root / "m.pt", build_model("resnet18"), {"targets": ["oh_p50"], "image_size": 32, "crop": 24})
    return root, ds, bundle


@pytest.mark.parametrize("method", ["gradcam", "integrated-gradients", "occlusion"])
def test_explain_writes_grid_and_arrays(setup, capsys, tmp_path, method):
    _, ds, bundle = setup
    out = tmp_path / "ex"
    code, stdout, err = run_cli(
        capsys, "explain", bundle, ds, "--out", out, "--method", method, "--n", "4", "--device", "cpu"
    )
    assert code == 0, err
    stem = "attribution_" + method.replace("-", "_")
    assert {f"{stem}.png", f"{stem}.pdf", f"{stem}.npz"} <= {p.name for p in out.iterdir()}
    arr = np.load(out / f"{stem}.npz")
    assert arr["images"].shape == (4, 24, 24, 3) and arr["maps"].shape == (4, 24, 24)  # the crop the net sees
    assert np.isfinite(arr["maps"]).all() and np.abs(arr["maps"]).sum() > 0
    assert np.all(np.diff(arr["pred"]) >= 0) and str(arr["method"]) == method
    if method == "gradcam":
        # a 24 px input: layer4 is 1x1, layer3 2x2, layer2 3x3; layer1 (6x6) is the deepest of >= 4x4
        assert (arr["maps"] >= 0).all() and "Grad-CAM on layer1" in stdout


def test_explain_controls(setup, capsys, tmp_path):
    _, ds, bundle = setup
    out = tmp_path / "ex"
    code, stdout, err = run_cli(
        capsys, "explain", bundle, ds, "--out", out, "--n", "2", "--controls", "--device", "cpu"
    )
    assert code == 0, err
    c = json.loads((out / "controls.json").read_text())
    assert c["n"] == 10 and c["split"] == "test"  # every test galaxy, not just the 2 drawn
    for k in ("full", "fibre_occluded", "annulus_occluded", "colour_only", "morphology_only", "fibre_minus_annulus"):
        assert k in c, k
    table = pd.read_csv(out / "controls.csv")
    assert len(table) == 10 and "oh_p50_pred_fibre_occluded" in table.columns
    assert "|shift| fibre - annulus" in stdout


def test_explain_bad_input_is_one_line_exit_2_and_writes_nothing(setup, capsys, tmp_path, monkeypatch):
    root, ds, bundle = setup
    out = tmp_path / "ex"
    folder = tmp_path / "imgs"  # images without a catalogue: no truth to score the controls
    folder.mkdir()
    for p in sorted((ds / "images").iterdir())[:3]:
        (folder / p.name).write_bytes(p.read_bytes())
    cases = [
        ((bundle, folder, "--split", "all", "--controls"), "--controls scores against the truth"),
        ((bundle, ds, "--n", "0"), "argument --n: must be an integer from 1 to 100"),
        ((bundle, ds, "--split", "nosuch"), "no rows with split 'nosuch'"),
        ((bundle, ds, "--layer", "layer9"), "--layer must be auto or one of"),
        ((root / "none.pt", ds), "no such model bundle"),
    ]
    for args, msg in cases:
        code, _, err = run_cli(capsys, "explain", *args, "--out", out, "--device", "cpu")
        assert code == 2 and msg in err and err.count("\n") == 1, (args, err)
        assert not out.exists()
    monkeypatch.setitem(sys.modules, "captum", None)
    monkeypatch.setitem(sys.modules, "captum.attr", None)
    code, _, err = run_cli(capsys, "explain", bundle, ds, "--out", out)
    assert code == 2 and err.count("\n") == 1 and "captum is not installed" in err and "pip install" in err
    assert not out.exists()


def test_control_transforms():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 30, (2, 128, 128, 3), dtype=np.uint8)
    img[:, 54:74, 54:74] = [200, 120, 60]
    img[:, 60:68, 60:68] = [250, 250, 250]
    disc, annulus = fibre_masks(128)
    assert abs(int(disc.sum()) - int(annulus.sum())) <= 0.15 * disc.sum()  # equal areas up to the pixel grid
    assert 70 < disc.sum() < 90  # pi (1.5 / 0.296)^2 = 80.7 pixels
    masks = galaxy_masks(img)
    assert masks[:, 64, 64].all() and not masks[:, 5, 5].any()
    shuffled = shuffle_within(img, masks, seed=1)
    inside = masks[0]
    assert not np.array_equal(shuffled[0][inside], img[0][inside])
    np.testing.assert_array_equal(np.sort(shuffled[0][inside], axis=0), np.sort(img[0][inside], axis=0))
    np.testing.assert_array_equal(shuffled[0][~inside], img[0][~inside])
    gray = grayscale(img)
    assert (gray[..., 0] == gray[..., 1]).all() and (gray[..., 1] == gray[..., 2]).all()


def test_systematics_finds_an_injected_trend_and_not_a_missing_one():
    rng = np.random.default_rng(0)
    n = 3000
    ab = rng.uniform(0.2, 1.0, n)
    z = rng.uniform(0.02, 0.2, n)
    truth = rng.normal(8.9, 0.2, n)
    pred = truth - 0.1 * (1 - ab) + rng.normal(0, 0.05, n)  # edge-on galaxies predicted too low
    df = pd.DataFrame({"oh_p50": truth, "oh_p50_pred": pred, "expAB_r": ab, "z": z, "bptclass": rng.integers(1, 3, n)})
    res = systematics(df, "oh_p50", n_bins=5, n_boot=300)
    t = res.table
    edge_on = t[(t["property"] == "expAB_r") & (t["bin"] == 0)].iloc[0]
    face_on = t[(t["property"] == "expAB_r") & (t["bin"] == 4)].iloc[0]
    assert edge_on["bias_hi"] < -0.05 and face_on["bias_lo"] < 0 < face_on["bias_hi"] + 0.02
    assert res.trends["expAB_r"]["spearman_rho"] > 0.4 and res.trends["expAB_r"]["spearman_p"] < 1e-10
    assert res.trends["z"]["spearman_p"] > 1e-3  # no trend with redshift was put in
    assert set(t[t["property"] == "bptclass"]["x"]) == {1.0, 2.0}
    assert (t["bias_lo"] <= t["bias"]).all() and (t["bias"] <= t["bias_hi"]).all()


def test_systematics_command_and_report(setup, capsys, tmp_path):
    _, ds, bundle = setup
    pred = tmp_path / "run" / "predictions.parquet"
    assert run_cli(capsys, "predict", bundle, ds, "--out", pred, "--device", "cpu")[0] == 0
    out = tmp_path / "run" / "sys"
    code, stdout, err = run_cli(capsys, "systematics", pred, "--dataset", ds, "--out", out, "--split", "all")
    assert code == 0, err
    assert {"systematics.csv", "systematics.json", "systematics.png", "systematics.pdf"} <= {
        p.name for p in out.iterdir()
    }
    summary = json.loads((out / "systematics.json").read_text())
    assert {"oh_p50", "oh_p50_pred", "z", "lgm_tot_p50"} <= set(summary["properties"])
    assert "expAB_r" in summary["not_available"] and "Spearman rho" in stdout
    code, _, err = run_cli(capsys, "systematics", pred, "--dataset", tmp_path / "nope", "--out", tmp_path / "s2")
    assert code == 2 and err.count("\n") == 1 and not (tmp_path / "s2").exists()
    assert run_cli(capsys, "explain", bundle, ds, "--out", tmp_path / "run" / "ex", "--n", "2", "--controls")[0] == 0
    assert run_cli(capsys, "report", tmp_path / "run")[0] == 0
    html = (tmp_path / "run" / "report.html").read_text()
    assert "<h3>Systematics</h3>" in html and "What the network looks at" in html


def test_gradcam_cells_sit_over_the_pixels_they_are_centred_on():
    from galmet.nn.attribution import place_cam
    from galmet.nn.net import build_model

    # in a ResNet, cell j of a stage of stride s is centred on input pixel s j (measured here from
    # the input gradient of one layer3 cell on an image large enough for its receptive field)
    torch.manual_seed(0)
    body = build_model("resnet18").eval().body
    x = torch.randn(1, 3, 256, 256, requires_grad=True)
    f = body.layer3(body.layer2(body.layer1(body.maxpool(body.relu(body.bn1(body.conv1(x)))))))
    f[0, :, 6, 6].sum().backward()
    g = x.grad.abs().sum(1)[0]
    ys = torch.arange(256.0)[:, None].expand(256, 256)
    assert abs(float((g * ys).sum() / g.sum()) - 96) < 2
    cam = torch.zeros(1, 1, 4, 4)
    cam[0, 0, 2, 1] = 1
    out = place_cam(cam, 64, 16)[0, 0]
    assert (out == out.max()).nonzero().tolist() == [[32, 16]]  # row 2 -> y 32, column 1 -> x 16
