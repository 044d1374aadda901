"""Regression tests for every example of issue 12 ("never lose a user's data"), by item.

Each test states the example it guards; the data-safety sweep over all commands is
tests/package/test_data_safety.py, the download limits tests/sdss/test_download_limits.py, the generated
bad inputs tests/package/test_properties.py.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import threading

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import SDSS_SAMPLE, changed_files, make_tiny_dataset, snapshot
from galmet.cli.main import main
from galmet.data.dataset import load_dataset
from galmet.errors import ConfigError, DataError
from galmet.io.images import encode_jpeg
from galmet.nn.bundle import save_bundle
from galmet.nn.net import build_model

TINY = ["--arch", "resnet18", "--weights", "none", "--batch-size", "8", "--no-progress"]


def _cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err.strip()


def _one_line_error(code, err, text=""):
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and " error: " in lines[0], err
    assert text in lines[0], err


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return make_tiny_dataset(tmp_path_factory.mktemp("tiny") / "ds", n=32, size=16, split=True)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    torch.manual_seed(0)
    run = tmp_path_factory.mktemp("run") / "run"
    return save_bundle(run / "model.pt", build_model("resnet18"), {"targets": ["oh_p50"], "image_size": 16})


def _copy(src, dst):
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("images.npy", "images.json"))
    return dst


# --- 1. validate everything before touching anything -----------------------------------------


def test_1_demo_checks_its_options_before_touching_a_previous_demo(tmp_path, capsys):
    out = tmp_path / "demo"
    out.mkdir()
    (out / "galmet-demo.json").write_text("{}")  # the marker of a previous demo
    (out / "thesis.tex").write_text("keep me")
    before = snapshot(out)
    for bad in (["--size", "7"], ["--size", "48"], ["--epochs", "0"], ["--arch", "vit"], ["--seed", "-1"]):
        code, _, err = _cli(capsys, "demo", "--out", out, "--n", "60", *bad)
        _one_line_error(code, err)
        assert changed_files(before, out) == [] and sorted(p.name for p in out.iterdir()) == sorted(before)


def test_1_demo_out_dot_never_wipes_the_working_directory(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data.csv").write_text("1,2\n")
    code, _, err = _cli(capsys, "demo", "--out", ".", "--n", "60", "--size", "32", "--epochs", "1")
    _one_line_error(code, err, "not a previous galmet demo")
    assert (tmp_path / "data.csv").read_text() == "1,2\n"


def test_1_synth_overwrite_checks_options_first_and_deletes_only_its_own_files(tmp_path, capsys):
    from galmet.synthetic.render import synthesize

    out = synthesize(tmp_path / "s", 6, seed=3, size=16, workers=1, progress=False)
    (out / "images" / "1237663716556341422.jpg").write_bytes(b"a real cutout")  # not the synthesis's
    before = snapshot(out)
    for bad in (["--test", "nan"], ["--valid-fraction", "inf"], ["--size", "7"], ["--seed", str(2**40)]):
        code, _, err = _cli(capsys, "synth", "--n", "4", "--out", out, "--overwrite", *bad, "--no-progress")
        _one_line_error(code, err)
        assert changed_files(before, out) == []
    with pytest.raises(ConfigError):
        synthesize(out, 4, seed=4, size=16, workers=1, progress=False, test=float("nan"), overwrite=True)
    assert changed_files(before, out) == []
    synthesize(out, 4, seed=4, size=16, workers=1, progress=False, overwrite=True)
    assert (out / "images" / "1237663716556341422.jpg").read_bytes() == b"a real cutout"
    assert len(load_dataset(out)) == 4


@pytest.mark.skipif(not (SDSS_SAMPLE / "catalog.csv").is_file(), reason="real SDSS sample not present")
def test_1_synth_overwrite_refuses_a_real_dataset(tmp_path, capsys):
    real = tmp_path / "real"
    shutil.copytree(SDSS_SAMPLE, real)
    before = snapshot(real)
    code, _, err = _cli(capsys, "synth", "--n", "4", "--out", real, "--overwrite", "--size", "16", "--no-progress")
    _one_line_error(code, err, "not a galmet synthesis")
    assert changed_files(before, real) == [] and len(before) == 502  # 500 cutouts, catalog, README


def test_1_a_users_images_json_beside_a_galmet_catalogue_is_left_alone(tiny, tmp_path, capsys):
    ds = _copy(tiny, tmp_path / "ds")
    (ds / "images.json").write_text('{"camera": "my notes about these images"}')
    before = snapshot(ds)
    code, out, err = _cli(capsys, "info", ds)
    assert code == 0, err
    assert changed_files(before, ds) == [] and not (ds / "images.npy").exists()  # the cache went elsewhere


def test_1_catalog_does_not_shadow_an_existing_catalogue(tiny, tmp_path, capsys):
    ds = _copy(tiny, tmp_path / "ds")
    pd.read_parquet(ds / "catalog.parquet").to_csv(ds / "catalog.csv", index=False)
    (ds / "catalog.parquet").unlink()
    code, _, err = _cli(capsys, "catalog", "--from-table", ds / "catalog.csv", "--out", ds)
    _one_line_error(code, err, "catalog.csv already exists (use --overwrite")


# --- 2. outputs are never inputs -------------------------------------------------------------


def test_2_predict_refuses_to_write_over_the_dataset_catalogue(tiny, bundle, tmp_path, capsys):
    ds = _copy(tiny, tmp_path / "ds")
    before = snapshot(ds)
    for out in (ds / "catalog.parquet", ds / "images" / "x.csv", bundle):
        code, _, err = _cli(capsys, "predict", bundle, ds, "--out", out, "--device", "cpu")
        _one_line_error(code, err)
    assert changed_files(before, ds) == []


def test_2_evaluate_refuses_to_replace_a_model_with_json(tiny, bundle, tmp_path, capsys):
    pred = tmp_path / "p.parquet"
    assert main(["predict", str(bundle), str(tiny), "--out", str(pred), "--no-tta", "--device", "cpu"]) == 0
    model_bytes = bundle.read_bytes()
    for target, text in (
        (bundle, "model bundle"),
        (bundle.parent / "checkpoint.pt", "training checkpoint"),
        (pred, "an input of this command"),
    ):
        code, _, err = _cli(capsys, "evaluate", pred, "--split", "all", "--json", target)
        _one_line_error(code, err, text)
    assert bundle.read_bytes() == model_bytes
    # a user's own PyTorch file under any name is not replaced by JSON either
    torch.save({"w": torch.zeros(2)}, tmp_path / "mine.pth")
    code, _, err = _cli(capsys, "evaluate", pred, "--split", "all", "--json", tmp_path / "mine.pth")
    _one_line_error(code, err, "PyTorch file")


def test_2_ensemble_never_replaces_a_training_runs_model(tiny, tmp_path, capsys):
    run = tmp_path / "run"
    _train(tiny, run)
    other = tmp_path / "other.pt"
    shutil.copy(run / "model.pt", other)
    before = snapshot(run)
    code, _, err = _cli(capsys, "ensemble", other, other, "--out", run / "model.pt")
    _one_line_error(code, err, "is the model of the training run")
    assert changed_files(before, run) == []


# --- 3. runs are exclusive and replaced only on success ---------------------------------------


def _train(ds, run, *extra, **kw):
    from galmet.training.config import TrainConfig
    from galmet.training.loop import train

    config = TrainConfig(arch="resnet18", weights="none", batch_size=8, progress=False, recipe="onecycle", epochs=2)
    return train(ds, run, config, **kw)


def test_3_a_second_train_into_the_same_folder_fails_at_once(tiny, tmp_path, capsys):
    from galmet.training.loop import StepInfo

    run = tmp_path / "run"
    started, release, result = threading.Event(), threading.Event(), {}

    def hold(info: StepInfo):
        started.set()
        release.wait(60)

    def first():
        result["first"] = _train(tiny, run, on_step=hold)

    t = threading.Thread(target=first)
    t.start()
    try:
        assert started.wait(60)
        code, _, err = _cli(capsys, "train", tiny, "--out", run, *TINY, "--recipe", "onecycle", "--epochs", "1")
        _one_line_error(code, err, "is in use by another galmet run")
        code, _, err = _cli(capsys, "train", tiny, "--out", run, *TINY, "--overwrite")
        _one_line_error(code, err, "is in use by another galmet run")
    finally:
        release.set()
        t.join()
    assert result["first"].bundle_path.is_file()


class _Stop(Exception):
    pass


def test_3_overwrite_replaces_the_old_run_only_when_the_new_one_has_finished(tiny, tmp_path):
    run = tmp_path / "run"
    _train(tiny, run)
    (run / "notes.md").write_text("mine")
    old = snapshot(run)

    def stop(info):
        if info.epoch == 1 and info.step == 1:
            raise _Stop

    with pytest.raises(_Stop):  # a retrain killed in its second epoch
        _train(tiny, run, overwrite=True, on_step=stop)
    assert changed_files(old, run) == []  # model, config, history, checkpoint: all the old run's
    assert (run / ".galmet-staging" / "checkpoint.pt").is_file()

    resumed = _train(tiny, run, resume=True)  # continues the new run, then swaps it in
    assert not (run / ".galmet-staging").exists() and (run / "notes.md").read_text() == "mine"
    fresh = _train(tiny, tmp_path / "fresh")
    a = torch.load(resumed.bundle_path, weights_only=True)["state_dict"]
    b = torch.load(fresh.bundle_path, weights_only=True)["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)  # bit-exact, as an uninterrupted run


def test_3_a_diverged_retrain_leaves_the_old_model(tiny, tmp_path, capsys):
    run = tmp_path / "run"
    _train(tiny, run)
    old = snapshot(run)

    def poison(info):
        with torch.no_grad():
            next(info.model.head.parameters()).fill_(float("nan"))

    with pytest.raises(ConfigError, match="diverged"):
        _train(tiny, run, overwrite=True, on_step=poison)
    assert changed_files(old, run) == []
    code, _, err = _cli(capsys, "train", tiny, "--out", tmp_path / "r2", *TINY, "--lr", "inf")
    _one_line_error(code, err, "finite")


def test_3_a_commit_cut_short_is_completed_by_the_next_train(tiny, tmp_path, monkeypatch):
    from galmet.training import rundir

    run = tmp_path / "run"
    _train(tiny, run)
    real_replace = os.replace

    def flaky(src, dst):  # the commit's second move (history.csv, out of the staging folder) fails
        if ".galmet-staging" in str(src) and os.path.basename(src) == "history.csv":
            raise OSError(errno.EIO, "disk went away", str(dst))
        return real_replace(src, dst)

    monkeypatch.setattr(rundir.os, "replace", flaky)
    with pytest.raises(OSError):
        _train(tiny, run, overwrite=True)
    monkeypatch.setattr(rundir.os, "replace", real_replace)
    assert not (run / "model.pt").exists()  # never a finished-looking mixture of two runs
    assert rundir.finish_commit(run)
    assert (run / "model.pt").is_file() and not (run / ".galmet-staging").exists()


def test_3_a_users_own_model_is_never_replaced(tiny, tmp_path, capsys):
    run = tmp_path / "mine"
    run.mkdir()
    torch.save({"my": torch.ones(3)}, run / "model.pt")
    (run / "config.yaml").write_text("learning_rate: 3\n")
    before = snapshot(run)
    for extra in ([], ["--overwrite"]):
        code, _, err = _cli(capsys, "train", tiny, "--out", run, *TINY, *extra)
        _one_line_error(code, err)
    assert changed_files(before, run) == []


# --- 4. objIDs are exact 64-bit integers or an error ----------------------------------------


def _csv_dataset(tiny, dst, first_id_text):
    ds = _copy(tiny, dst)
    cat = pd.read_parquet(ds / "catalog.parquet")
    (ds / "catalog.parquet").unlink()
    lines = cat.to_csv(index=False).splitlines()
    oid = str(cat["objID"].iloc[0])
    lines[1] = lines[1].replace(oid, first_id_text, 1)
    (ds / "catalog.csv").write_text("\n".join(lines) + "\n")
    return ds, cat


def test_4_a_float_written_objid_keeps_every_id_exact(tiny, tmp_path, capsys):
    ds, cat = _csv_dataset(tiny, tmp_path / "ds", f"{int(pd.read_parquet(tiny / 'catalog.parquet').objID[0])}.0")
    code, out, err = _cli(capsys, "info", ds, "--skip-bad")
    assert code == 0 and "32 galaxies" in out and "skipped" not in out + err, (out, err)
    got = load_dataset(ds, load_images=False).catalog["objID"]
    assert got.dtype == np.int64 and set(got) == set(cat["objID"])


@pytest.mark.parametrize(
    "text, why",
    [("1.237648700000000e18", "scientific notation"), ("99999999999999999999", "64-bit"), ("12.5", "not an integer")],
)
def test_4_an_inexact_objid_is_a_one_line_error_naming_the_row(tiny, tmp_path, capsys, text, why):
    ds, _ = _csv_dataset(tiny, tmp_path / "ds", text)
    code, _, err = _cli(capsys, "info", ds, "--skip-bad")
    _one_line_error(code, err, f"row 0: objID '{text}'")
    assert why in err


def test_4_catalog_from_table_keeps_all_40_rows(tmp_path, capsys):
    from galmet.sdss.catalog import COLUMNS

    rng = np.random.default_rng(0)
    n = 40
    ids = 1237663716556341422 + np.arange(n, dtype=np.int64)  # 19 digits, a float64 would merge them
    table = pd.DataFrame({name: rng.uniform(14, 17, n) for _, name in COLUMNS})
    table["objID"], table["specObjID"] = ids, ids + 10
    table["rChi2"], table["oh_p50"], table["z"], table["zErr"] = 1.0, 8.9, 0.1, 0.001
    table["modelMag_u"], table["petroMag_r"] = 17.0, 16.0
    lines = table.to_csv(index=False).splitlines()
    lines[1] = lines[1].replace(str(ids[0]), f"{ids[0]}.0", 1)  # one ID written as a float
    (tmp_path / "t.csv").write_text("\n".join(lines) + "\n")
    code, out, err = _cli(capsys, "catalog", "--out", tmp_path / "c", "--from-table", tmp_path / "t.csv")
    assert code == 0, err
    got = pd.read_parquet(tmp_path / "c" / "catalog.parquet")
    assert len(got) == 40 and sorted(got["objID"]) == sorted(ids) and "repeated" not in err


def test_4_ids_in_parquet_fits_and_positions_tables(tmp_path):
    from galmet.io.tables import read_table, write_table

    ids = np.array([1237663716556341422, 1237663716556341423], dtype=np.int64)
    pd.DataFrame({"objID": ids.astype(np.float64)}).to_parquet(tmp_path / "f.parquet")
    with pytest.raises(DataError, match="row 0: objID .* floating-point"):
        read_table(tmp_path / "f.parquet")
    pd.DataFrame({"objID": np.array([2**63 + 5], dtype=np.uint64)}).to_parquet(tmp_path / "u.parquet")
    with pytest.raises(DataError, match="64-bit"):
        read_table(tmp_path / "u.parquet")
    write_table(pd.DataFrame({"objID": ids, "ra": [1.0, 2.0], "dec": [0.0, 1.0]}), tmp_path / "p.fits")
    assert read_table(tmp_path / "p.fits")["objID"].tolist() == ids.tolist()
    (tmp_path / "p.csv").write_text(f"objID,ra,dec\n{ids[0]}.0,1,0\n{ids[1]},2,1\n")
    assert read_table(tmp_path / "p.csv")["objID"].tolist() == ids.tolist()


# --- 5. image size from the data; a cache bound to content -----------------------------------


def test_5_one_odd_first_image_is_the_bad_row(tiny, tmp_path):
    ds = _copy(tiny, tmp_path / "ds")
    first = load_dataset(ds, load_images=False).paths[0]
    first.write_bytes(encode_jpeg(np.zeros((24, 24, 3), np.uint8)))
    with pytest.raises(DataError, match=f"{first.stem}.*image is 24x24 pixels, expected 16x16"):
        load_dataset(ds)
    kept = load_dataset(ds, on_error="skip")
    assert len(kept) == 31 and kept.image_size == 16 and first not in kept.paths


def _png_dataset(root, seed):
    """Six 8x8 random-noise PNGs stored without compression: every file has the same length."""
    from PIL import Image

    from galmet.data.dataset import write_catalog

    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True)
    ids = np.arange(6, dtype=np.int64) + 1237648700000000000
    for oid in ids:
        img = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
        Image.fromarray(img).save(root / "images" / f"{oid}.png", compress_level=0)
    write_catalog(root, pd.DataFrame({"objID": ids, "oh_p50": 9.0}))
    return root


def test_5_a_foreign_cache_with_matching_names_sizes_and_mtimes_is_not_used(tmp_path):
    a = _png_dataset(tmp_path / "a", seed=1)
    b = _png_dataset(tmp_path / "b", seed=2)  # other pixels ...
    for pa in sorted((a / "images").iterdir()):  # ... in files of the same names, sizes and mtimes
        pb = b / "images" / pa.name
        assert pb.stat().st_size == pa.stat().st_size
        os.utime(pb, ns=(pa.stat().st_atime_ns, pa.stat().st_mtime_ns))
    images_a = np.asarray(load_dataset(a).images())
    truth_b = np.asarray(load_dataset(b, cache=False).images())
    assert not np.array_equal(images_a, truth_b)
    for name in ("images.npy", "images.json"):
        shutil.copy2(a / name, b / name)  # a copied dataset with a foreign cache, key included
    np.testing.assert_array_equal(np.asarray(load_dataset(b).images()), truth_b)
    shutil.copy2(a / "images.npy", b / "images.npy")  # a foreign array beside b's own key
    np.testing.assert_array_equal(np.asarray(load_dataset(b).images()), truth_b)


# --- 8. header first; Pillow's bomb warning is galmet's one-line error -----------------------


def test_8_a_decompression_bomb_in_a_dataset_is_never_decoded(tiny, tmp_path, capsys):
    from faulty_server import bomb_jpeg

    ds = _copy(tiny, tmp_path / "ds")
    victim = load_dataset(ds, load_images=False).paths[3]
    victim.write_bytes(bomb_jpeg(victim.read_bytes()))
    code, _, err = _cli(capsys, "info", ds)
    _one_line_error(code, err, "image is 12000x12000 pixels, expected 16x16")
    alone = tmp_path / "alone"
    alone.mkdir()
    (alone / "x.jpg").write_bytes(victim.read_bytes())
    code, _, err = _cli(capsys, "info", alone)
    _one_line_error(code, err, "decompression bomb")


def test_8_pillows_bomb_warning_becomes_a_one_line_error(tiny, tmp_path, capsys, monkeypatch):
    from PIL import Image

    import galmet.io.images as images

    monkeypatch.setattr(images, "MAX_PIXELS", 10**12)  # past galmet's own header check ...
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 200)  # ... Pillow warns about 256 (errors beyond 400)
    code, _, err = _cli(capsys, "info", tiny, "--no-cache")
    _one_line_error(code, err, "DecompressionBombWarning")


# --- 9, 10, 11. one line, exit 2, for every bad input ---------------------------------------


@pytest.mark.parametrize(
    "yaml_text, text",
    [
        ("cycles: 5", "cycles must be a list of integers"),
        ("lr: abc", "lr must be a list of numbers"),
        ("batch_size: 8.5", "batch_size must be an integer"),
        ("lr: [.inf]", "finite"),
        ("seed: 100000000000000000000", "seed must be an integer"),
        ("recipe: [paper", "not valid YAML"),
        ("max_zoom: .nan", "max_zoom must be a finite number"),
    ],
)
def test_9_config_types_are_checked(tiny, tmp_path, capsys, yaml_text, text):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml_text + "\n")
    code, _, err = _cli(capsys, "train", tiny, "--out", tmp_path / "run", "--config", cfg, *TINY)
    _one_line_error(code, err, text)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "argv, text",
    [
        (["predict", "{bundle}", "{ds}", "--out", "{dir}"], "is a directory"),
        (["predict", "{bundle}", "{ds}", "--out", "{file}/p.csv"], "is a file, not a directory"),
        (["evaluate", "{pred}", "--json", "{dir}"], "is a directory"),
        (["evaluate", "{pred}", "--json", "{file}/m.json"], "is a file, not a directory"),
        (["ensemble", "{bundle}", "{bundle}", "--out", "{dir}"], "is a directory"),
        (["ensemble", "{bundle}", "{bundle}", "--out", "{file}/e.pt"], "is a file, not a directory"),
        (["report", "{dir}", "--out", "{file}/r.html"], "is a file, not a directory"),
        (["baseline", "{ds}", "--out", "{file}"], "is a file, not a directory"),
        (["figures", "{pred}", "--out", "{file}/f"], "is a file, not a directory"),
        (["mzr", "--metallicity", "{pred}", "--mass", "{pred}", "--out", "{file}"], "is a file, not a directory"),
        (["train", "{ds}", "--out", "{file}", *TINY], "is a file, not a directory"),
        (["lr-find", "{ds}", "--out", "{file}/x", *TINY[:-1]], "is a file, not a directory"),
        (["resolution-study", "{ds}", "--out", "{file}", *TINY], "is a file, not a directory"),
        (["synth", "--n", "4", "--out", "{file}"], "is a file, not a directory"),
        (["catalog", "--from-table", "{pred}", "--out", "{file}/c"], "is a file, not a directory"),
        (["demo", "--out", "{file}/d"], "is a file, not a directory"),
    ],
)
def test_9_output_paths_that_are_folders_or_under_a_file(tiny, bundle, tmp_path, capsys, argv, text):
    pred = tmp_path / "p.parquet"
    pd.DataFrame({"objID": [1], "oh_p50_pred": [9.0], "oh_p50": [9.0]}).to_parquet(pred)
    (tmp_path / "dir").mkdir()
    (tmp_path / "afile").write_text("mine")
    names = {"bundle": bundle, "ds": tiny, "pred": pred, "dir": tmp_path / "dir", "file": tmp_path / "afile"}
    code, _, err = _cli(capsys, *[a.format(**names) for a in argv])
    _one_line_error(code, err, text)
    assert (tmp_path / "afile").read_text() == "mine" and not any((tmp_path / "dir").iterdir())


@pytest.mark.parametrize(
    "argv, text",
    [
        (["synth", "--n", "4", "--out", "{tmp}/s", "--seed", str(2**64)], "--seed"),
        (["synth", "--n", "4", "--out", "{tmp}/s", "--test", "nan"], "--test"),
        (["baseline", "{ds}", "--out", "{tmp}/b", "--jobs", "0"], "--jobs"),
        (["train", "{ds}", "--out", "{tmp}/r", "--seed", str(2**70), *TINY], "--seed"),
        (["download", "{ds}", "--rate", "nan"], "--rate"),
        (["download", "{ds}", "--backoff-base", "-1"], "--backoff-base"),
        (["catalog", "--dry-run", "--rchi2-max", "nan"], "--rchi2-max"),
        (["predict", "{bundle}", "--ra", "inf", "--dec", "0", "--out", "{tmp}/p.csv"], "--ra"),
        (["lr-find", "{ds}", "--out", "{tmp}/l", "--end-lr", "inf", *TINY[:-1]], "--end-lr"),
        (["mzr", "--metallicity", "{ds}", "--mass", "{ds}", "--out", "{tmp}/m", "--bin-width", "inf"], "--bin-width"),
    ],
)
def test_10_numbers_are_finite_and_in_range(tiny, bundle, tmp_path, capsys, argv, text):
    code, _, err = _cli(capsys, *[a.format(ds=tiny, bundle=bundle, tmp=tmp_path) for a in argv])
    _one_line_error(code, err, text)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_10_lr_find_never_suggests_inf():
    from galmet.training.lr_find import lr_find

    with pytest.raises(ConfigError, match="finite"):
        lr_find("unused", start_lr=1e-7, end_lr=float("inf"))


def test_9_non_numeric_columns_and_bad_bundle_meta(tiny, bundle, tmp_path, capsys):
    pred = tmp_path / "p.csv"
    pd.DataFrame({"objID": [1, 2], "oh_p50_pred": [9.0, "high"], "oh_p50": [9.0, 9.1]}).to_csv(pred, index=False)
    code, _, err = _cli(capsys, "evaluate", pred, "--split", "all")
    _one_line_error(code, err, "row 1: oh_p50_pred 'high' is not a number")
    saved = torch.load(bundle, weights_only=True)
    torch.save({**saved, "meta": {**saved["meta"], "image_size": "128"}}, tmp_path / "m.pt")
    code, _, err = _cli(capsys, "predict", tmp_path / "m.pt", tiny, "--out", tmp_path / "o.csv")
    _one_line_error(code, err, "bundle meta image_size")


def test_9_a_disk_that_fills_up_mid_write_is_one_line_and_keeps_the_old_file(
    tiny, bundle, tmp_path, capsys, monkeypatch
):
    import galmet.io.atomic as atomic

    out = tmp_path / "p.parquet"
    assert main(["predict", str(bundle), str(tiny), "--out", str(out), "--no-tta", "--device", "cpu"]) == 0
    old = out.read_bytes()

    def full(path):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(atomic, "_fsync_file", full)
    code, _, err = _cli(capsys, "predict", bundle, tiny, "--out", out, "--no-tta", "--device", "cpu")
    _one_line_error(code, err, "No space left on device")
    assert out.read_bytes() == old and [p.name for p in tmp_path.iterdir() if p.name != ".galmet-written"] == [
        "p.parquet"
    ]


def test_11_messages_say_what_is_wrong(tiny, tmp_path, capsys):
    (tmp_path / "random.pt").write_bytes(np.random.default_rng(1).bytes(5000))
    code, _, err = _cli(capsys, "predict", tmp_path / "random.pt", tiny, "--out", tmp_path / "o.csv")
    _one_line_error(code, err, "not a PyTorch file")
    assert "refusing to unpickle" not in err
    ds = _copy(tiny, tmp_path / "ds")
    cat = pd.read_parquet(ds / "catalog.parquet")
    cat["oh_p50"] = cat["oh_p50"].astype(object)
    cat.loc[0, "oh_p50"], cat.loc[1, "oh_p50"] = np.inf, "high"
    cat.to_csv(ds / "catalog.csv", index=False)
    (ds / "catalog.parquet").unlink()
    ok = load_dataset(ds, on_error="skip", load_images=False)
    assert any("label oh_p50 is infinite" in s for s in ok.skipped)
    assert any("label oh_p50 'high' is not a number" in s for s in ok.skipped)
    folder = _copy(tiny, tmp_path / "ds2")
    victim = load_dataset(folder, load_images=False).paths[2]
    victim.unlink()
    victim.mkdir()
    code, _, err = _cli(capsys, "info", folder)
    _one_line_error(code, err, "is a folder, not an image file")
    code, _, err = _cli(capsys, "train", tiny, "--out", tmp_path / "r", "--lr", "abc")
    _one_line_error(code, err, "argument --lr")


def test_11_no_library_warning_leaks_on_a_normal_run(tiny, bundle, tmp_path, capsys):
    for argv in (
        ["info", tiny],
        ["predict", bundle, tiny, "--out", tmp_path / "p.parquet", "--device", "cpu"],
        ["evaluate", tmp_path / "p.parquet"],
        ["baseline", tiny, "--out", tmp_path / "b", "--n-estimators", "5", "--jobs", "1"],
    ):
        code, _, err = _cli(capsys, *argv)
        assert code == 0 and "Warning" not in err and "warn" not in err.lower(), (argv, err)


# --- 12. plain image folders ----------------------------------------------------------------


def test_12_split_on_an_unlabelled_folder_is_refused(tiny, bundle, tmp_path, capsys):
    folder = tmp_path / "pics"
    folder.mkdir()
    for p in sorted((tiny / "images").iterdir())[:4]:
        shutil.copy(p, folder / p.name)
    code, _, err = _cli(capsys, "predict", bundle, folder, "--out", tmp_path / "p.csv", "--split", "test")
    _one_line_error(code, err, "plain image folder")
    assert not (tmp_path / "p.csv").exists()


def test_12_x_jpg_beside_x_png_keeps_the_file_column(tiny, bundle, tmp_path, capsys):
    from PIL import Image

    folder = tmp_path / "pics"
    folder.mkdir()
    src = sorted((tiny / "images").iterdir())
    shutil.copy(src[0], folder / "123.jpg")
    Image.open(src[1]).save(folder / "123.png")
    shutil.copy(src[2], folder / "124.jpg")
    code, _, err = _cli(capsys, "predict", bundle, folder, "--out", tmp_path / "p.csv", "--no-tta", "--device", "cpu")
    assert code == 0, err
    df = pd.read_csv(tmp_path / "p.csv")
    assert df["file"].tolist() == ["123.jpg", "123.png", "124.jpg"] and "objID" not in df.columns
    # distinct numeric names: objID and file both
    (folder / "123.png").unlink()
    assert main(["predict", str(bundle), str(folder), "--out", str(tmp_path / "q.csv"), "--no-tta"]) == 0
    q = pd.read_csv(tmp_path / "q.csv")
    assert q["objID"].tolist() == [123, 124] and q["file"].tolist() == ["123.jpg", "124.jpg"]


def test_12_non_utf8_and_odd_file_names(tiny, tmp_path, capsys):
    folder = tmp_path / "pics"
    folder.mkdir()
    src = sorted((tiny / "images").iterdir())
    shutil.copy(src[0], folder / os.fsdecode(b"bad\xffname.jpg"))
    shutil.copy(src[1], folder / "new\nline.jpg")
    shutil.copy(src[2], folder / "ok.jpg")
    code, _, err = _cli(capsys, "info", folder)
    _one_line_error(code, err, "is not valid UTF-8")
    code, out, err = _cli(capsys, "info", folder, "--skip-bad")
    assert code == 0 and "2 galaxies" in out and "splits: none" in out, (out, err)


def test_json_and_yaml_artefacts_round_trip(tmp_path):
    # the demo marker and synth settings stay readable (the files galmet recognises itself by)
    from galmet.synthetic.render import previous_synthesis, synthesize

    out = synthesize(tmp_path / "s", 3, seed=1, size=8, workers=1, progress=False)
    assert previous_synthesis(out)["n"] == 3 and json.loads(json.dumps(previous_synthesis(out)))
