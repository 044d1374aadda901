"""Prediction at sky positions from a local cutout archive (``archive=``, ``--archive``): matched
rows are predicted from the archive's own files without a server, the rest fetched from a given
server or marked ``not in archive``; the archive is an input that is never written."""

from __future__ import annotations

import hashlib
import os

import numpy as np
import pandas as pd
import pytest
import torch

from faulty_server import FaultyServer, fake_image, key_of
from galmet.cli.main import main
from galmet.errors import ConfigError, DataError
from galmet.io.images import encode_jpeg
from galmet.nn.bundle import load_model, save_bundle
from galmet.nn.net import build_model
from galmet.predict.positions import PositionsSummary, predict_positions

SIZE = 16
N = 12
#: Archived galaxies: one every 0.01 deg along dec = 2 (the first N have an image; one more is catalogued without).
RA = 150.0 + np.arange(N + 1) * 0.01
DEC = np.full(N + 1, 2.0)
OBJID = 1237648702973083820 + np.arange(N + 1, dtype=np.int64)
FAST = dict(device="cpu", tta=False, rate=0, retries=1, backoff_base=0.01, timeout=2.0, flags=False, progress=False)


@pytest.fixture
def bundle(tmp_path):
    torch.manual_seed(0)
    net = build_model("resnet18", n_targets=1)
    return save_bundle(tmp_path / "run" / "model.pt", net, {"targets": ["oh_p50"], "image_size": SIZE})


def make_archive(root, size: int = SIZE, fmt: str = "parquet"):
    """A dataset directory of N + 1 catalogued cutouts, the last one missing its image."""
    (root / "images").mkdir(parents=True)
    for oid, ra, dec in zip(OBJID[:N], RA, DEC, strict=False):
        (root / "images" / f"{oid}.jpg").write_bytes(encode_jpeg(fake_image(key_of(ra, dec), size, size)))
    cat = pd.DataFrame({"objID": OBJID, "ra": RA, "dec": DEC, "oh_p50": 8.9})
    if fmt == "csv":
        cat.to_csv(root / "catalog.csv", index=False)
    else:
        cat.to_parquet(root / "catalog.parquet")
    return root


def snapshot(root) -> dict:
    """Every file under ``root``: its bytes' SHA-256 and modification time."""
    out = {}
    for dirpath, _, files in os.walk(root):
        for name in files:
            p = os.path.join(dirpath, name)
            out[p] = (hashlib.sha256(open(p, "rb").read()).hexdigest(), os.stat(p).st_mtime_ns)
    return out


def positions(offset_arcsec: float = 0.5) -> pd.DataFrame:
    """The N archived positions offset by ``offset_arcsec`` in dec, the image-less entry, and one far away."""
    ra = np.append(RA, 200.0)
    dec = np.append(DEC + offset_arcsec / 3600, -5.0)
    return pd.DataFrame({"ra": ra, "dec": dec})


@pytest.fixture
def no_network(monkeypatch):
    """Any request is a test failure: the archive alone must do."""
    from galmet.sdss.transport import HttpClient

    def refuse(self, url, timeout):
        raise AssertionError(f"a request was sent: {url}")

    monkeypatch.setattr(HttpClient, "_request", refuse)


def test_archived_rows_are_predicted_from_its_files_without_a_server(tmp_path, bundle, no_network):
    archive = make_archive(tmp_path / "mirror")
    before = snapshot(archive)
    summary = PositionsSummary()
    table = predict_positions(bundle, positions(), archive=archive, summary=summary, shard_size=5, **FAST)
    status = np.asarray(table["status"])
    assert (status[:N] == "ok").all() and list(status[N:]) == ["not in archive", "not in archive"]
    error = np.asarray(table["error"])
    assert f"the archive lists objID {OBJID[N]} here but has no image of it" == error[N]
    assert error[N + 1] == f"no cutout in the archive {archive} within 1 arcsec"
    # the same predictions as the model gives the archive's images directly
    model = load_model(bundle, device="cpu")
    from galmet.io.images import read_image

    images = np.stack([read_image(archive / "images" / f"{oid}.jpg", SIZE) for oid in OBJID[:N]])
    want = np.asarray(model.predict(images, tta=False, progress=False)).reshape(N, -1)[:, 0]
    np.testing.assert_allclose(np.asarray(table["oh_p50_pred"])[:N], want, rtol=1e-5, atol=1e-6)
    assert summary.archived == N and summary.fetched == 0 and summary.predicted == N
    assert summary.reasons == {"not in archive": 2} and "12 rows from the cutout archive" in summary.line()
    assert table.meta["archive"] == str(archive) and table.meta["match_radius"] == 1.0 and table.meta["base_url"] == ""
    assert snapshot(archive) == before  # nothing in the archive was written, moved or deleted


def test_the_rows_not_in_the_archive_are_fetched_from_a_given_server(tmp_path, bundle):
    archive = make_archive(tmp_path / "mirror", fmt="csv")
    before = snapshot(archive)
    pos = positions()
    with FaultyServer() as srv:
        summary = PositionsSummary()
        table = predict_positions(bundle, pos, archive=archive, base_url=srv.url, summary=summary, **FAST)
        fetched = dict(srv.counts)
    assert (np.asarray(table["status"]) == "ok").all()
    # only the image-less entry and the far position were asked of the server
    assert set(fetched) == {key_of(pos["ra"][i], pos["dec"][i]) for i in (N, N + 1)}
    assert summary.archived == N and summary.fetched == 2
    assert snapshot(archive) == before


def test_a_kept_cutouts_folder_is_an_archive_with_the_same_predictions(tmp_path, bundle, monkeypatch):
    from galmet.sdss.transport import HttpClient

    pos = pd.DataFrame({"ra": RA[:N], "dec": DEC[:N]})
    kept = tmp_path / "kept"
    with FaultyServer() as srv:
        first = predict_positions(bundle, pos, base_url=srv.url, keep_cutouts=kept, **FAST)
    before = snapshot(kept)

    def refuse(self, url, timeout):
        raise AssertionError(f"a request was sent: {url}")

    monkeypatch.setattr(HttpClient, "_request", refuse)
    summary = PositionsSummary()
    again = predict_positions(bundle, pos, archive=kept, summary=summary, match_radius=0.01, **FAST)
    assert (np.asarray(again["status"]) == "ok").all() and summary.archived == N and summary.fetched == 0
    np.testing.assert_array_equal(np.asarray(again["oh_p50_pred"]), np.asarray(first["oh_p50_pred"]))
    assert snapshot(kept) == before


def test_the_match_radius_decides_and_is_checked(tmp_path, bundle, no_network):
    archive = make_archive(tmp_path / "mirror")
    pos = positions(offset_arcsec=1.5).iloc[:N]
    near = predict_positions(bundle, pos, archive=archive, **FAST)
    assert (np.asarray(near["status"]) == "not in archive").all()  # 1.5" is beyond the default 1"
    wide = predict_positions(bundle, pos, archive=archive, match_radius=2.0, **FAST)
    assert (np.asarray(wide["status"]) == "ok").all()
    for bad in (0, -1.0, 61.0, float("nan"), True, "1"):
        with pytest.raises(ConfigError) as info:
            predict_positions(bundle, pos, archive=archive, match_radius=bad, **FAST)
        assert info.value.param == "match_radius"


def test_matching_is_on_the_sphere_at_the_poles_and_across_ra_zero(tmp_path):
    from galmet.data.archive import open_archive

    root = tmp_path / "sky"
    root.mkdir()
    ra, dec = np.array([359.9999, 10.0, 0.0]), np.array([0.0, 89.9999, -30.0])
    pd.DataFrame({"objID": [1, 2, 3], "ra": ra, "dec": dec}).to_parquet(root / "catalog.parquet")
    archive = open_archive(root)
    # across ra = 0: 0.36"; beside the pole, 170 deg of ra apart: 0.54"; NaN, and 2" in dec: none
    query_ra, query_dec = np.array([0.0000001, 180.0, np.nan, 0.0]), np.array([0.0, 89.99995, 0.0, -30 + 2 / 3600])
    assert archive.match(query_ra, query_dec).tolist() == [0, 1, -1, -1]
    assert archive.match(query_ra, query_dec, radius=0.5).tolist() == [0, -1, -1, -1]
    assert archive.match(query_ra, query_dec, radius=2.01).tolist() == [0, 1, -1, 2]


def test_an_archive_of_other_cutouts_is_refused_before_anything_is_written(tmp_path, bundle, no_network):
    archive = make_archive(tmp_path / "mirror", size=2 * SIZE)
    work = tmp_path / "work"
    with pytest.raises(DataError) as info:
        predict_positions(bundle, positions(), archive=archive, work_dir=work, **FAST)
    assert info.value.param == "archive" and "32x32 px" in str(info.value) and "16x16 px" in str(info.value)
    assert not work.exists()


@pytest.mark.parametrize(
    "where, param",
    [("work_dir", "work_dir"), ("keep_cutouts", "keep_cutouts"), ("out", "out"), ("holds", "work_dir")],
)
def test_nothing_is_written_inside_the_archive(tmp_path, bundle, no_network, where, param):
    archive = make_archive(tmp_path / "mirror")
    before = snapshot(archive)
    inside = archive / "sub" / ("pred.csv" if where == "out" else "folder")
    kwargs = {where: inside} if where != "holds" else {"work_dir": tmp_path}
    with pytest.raises(ConfigError) as info:
        predict_positions(bundle, positions(), archive=archive, **FAST, **kwargs)
    assert info.value.param == param and "archive" in str(info.value), str(info.value)
    assert snapshot(archive) == before and not (archive / "sub").exists()


@pytest.mark.parametrize("broken", ["missing", "file", "no catalogue", "no ra"])
def test_an_unusable_archive_is_one_line_naming_the_parameter(tmp_path, bundle, broken):
    root = tmp_path / "mirror"
    if broken == "file":
        root.write_text("x")
    elif broken != "missing":
        root.mkdir()
        if broken == "no ra":
            pd.DataFrame({"objID": [1], "dec": [2.0]}).to_parquet(root / "catalog.parquet")
    with pytest.raises(ConfigError) as info:
        predict_positions(bundle, positions(), archive=root, **FAST)
    assert info.value.param == "archive" and "\n" not in str(info.value)


def test_an_interrupted_archive_and_server_run_resumes_without_predicting_again(tmp_path, bundle):
    """Run 1: the archived rows are predicted, then the server for the rest is unreachable (the
    failure budget stops it). Run 2 resumes: the archived rows come from the shards, not again."""
    archive = make_archive(tmp_path / "mirror")
    pos = positions()
    work = tmp_path / "work"
    with FaultyServer(default_plan=["reset"]) as srv:
        with pytest.raises(DataError, match="got no answer"):
            predict_positions(
                bundle, pos, archive=archive, base_url=srv.url, work_dir=work, failure_budget=2, shard_size=4, **FAST
            )
        srv.default_plan = ["ok"]
        summary = PositionsSummary()
        again = dict(archive=archive, base_url=srv.url, work_dir=work, summary=summary)
        table = predict_positions(bundle, pos, **again, **FAST)
    assert (np.asarray(table["status"]) == "ok").all()
    assert summary.resumed == N and summary.archived == 0 and summary.fetched == 2 and summary.predicted == 2
    assert not work.exists()


def test_the_command_line_predicts_from_an_archive(tmp_path, bundle, capsys, no_network):
    archive = make_archive(tmp_path / "mirror")
    pos = tmp_path / "targets.csv"
    positions().to_csv(pos, index=False)
    out = tmp_path / "pred.csv"
    base = ["predict", str(bundle), "--positions", str(pos), "--out", str(out), "--device", "cpu", "--no-tta"]
    assert main([*base, "--archive", str(archive), "--no-progress"]) == 0
    df = pd.read_csv(out)
    assert (df["status"] == "ok").sum() == N and (df["status"] == "not in archive").sum() == 2
    assert "12 rows from the cutout archive" in capsys.readouterr().out
    for bad, flag in (
        (["--match-radius", "0"], "--match-radius"),
        (["--work-dir", str(archive / "w")], "--work-dir"),
        (["--out", str(archive / "p.csv")], "--out"),
    ):
        assert main([*base, "--archive", str(archive), *bad]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and flag in err, err
    ds_args = ["predict", str(bundle), str(archive), "--out", str(tmp_path / "d.csv"), "--archive", str(archive)]
    assert main(ds_args) == 2 and "--archive applies to sky positions only" in capsys.readouterr().err


def test_an_archive_may_name_its_files_and_hold_png_images(tmp_path, bundle, no_network):
    from PIL import Image

    root = tmp_path / "mirror"
    (root / "cutouts").mkdir(parents=True)
    files = []
    for i, (ra, dec) in enumerate(zip(RA[:3], DEC[:3], strict=True)):
        name = f"cutouts/galaxy_{i}.png"
        Image.fromarray(fake_image(key_of(ra, dec), SIZE, SIZE)).save(root / name)
        files.append(name)
    pd.DataFrame({"file": files, "RA": RA[:3], "Dec": DEC[:3]}).to_csv(root / "catalog.csv", index=False)
    table = predict_positions(bundle, pd.DataFrame({"ra": RA[:4], "dec": DEC[:4]}), archive=root, **FAST)
    assert list(np.asarray(table["status"])) == ["ok", "ok", "ok", "not in archive"]


def test_a_catalogue_job_predicts_from_the_archive_partition_by_partition(tmp_path, bundle, no_network):
    import galmet

    archive = make_archive(tmp_path / "mirror")
    before = snapshot(archive)
    pos = positions()
    path, out = tmp_path / "targets.parquet", tmp_path / "pred.parquet"
    pos.to_parquet(path)
    quick = {k: v for k, v in FAST.items() if k != "progress"}
    summary = galmet.predict_catalog(bundle, path, out, archive=archive, shard=(0, 1), partition_rows=4, **quick)
    assert summary.partitions == summary.done == 4 and summary.out == out
    direct = predict_positions(bundle, pos, archive=archive, **FAST)
    table = pd.read_parquet(out)
    assert table["status"].tolist() == list(np.asarray(direct["status"]))
    np.testing.assert_allclose(table["oh_p50_pred"], np.asarray(direct["oh_p50_pred"]), rtol=1e-6, equal_nan=True)
    assert snapshot(archive) == before
