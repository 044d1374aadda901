"""The out-of-domain score taken in the prediction's own forward pass equals the old separate
embedding pass (:meth:`GalmetModel.embed` + :func:`ood_ratio`): same layer, same (un-augmented)
view, every member, with and without TTA; and the flags of ``predict_dataset`` do not change."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import make_tiny_dataset
from galmet.data.dataset import load_dataset
from galmet.nn import inference
from galmet.nn.embedding import EmbeddingReference, ood_ratio
from galmet.nn.inference import GalmetModel
from galmet.nn.net import build_model
from galmet.predict.dataset import predict_dataset
from galmet.predict.flags import flag_rows, ood_scores


def _model(n_members: int = 2) -> GalmetModel:
    """An ensemble of random 16 px resnet18s with embedding statistics fitted on random images."""
    torch.manual_seed(0)
    nets = [build_model("resnet18", n_targets=1) for _ in range(n_members)]
    for net in nets:  # trained-looking BatchNorms: a fresh one is the identity and hides a layer off by one
        for bn in (m for m in net.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)):
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 2.0)
            torch.nn.init.uniform_(bn.weight, 0.5, 1.5)
            torch.nn.init.uniform_(bn.bias, -0.5, 0.5)
    member = {"targets": ["oh_p50"], "image_size": 16, "arch": "resnet18"}
    meta = {**member, "members": [dict(member) for _ in nets]}
    model = GalmetModel(nets, meta)
    train = np.random.default_rng(1).integers(0, 256, (30, 16, 16, 3), dtype=np.uint8)
    emb = model.embed(train, device="cpu")
    for m, e in zip(meta["members"], emb, strict=True):
        m["embedding_stats"] = EmbeddingReference.fit(e, max_points=20).to_dict()
    return model


def _images(n: int = 12) -> np.ndarray:
    rng = np.random.default_rng(2)
    images = rng.integers(0, 256, (n, 16, 16, 3), dtype=np.uint8)
    images[: n // 2] //= 4  # darker half: a spread of scores
    return images


@pytest.mark.parametrize(("tta", "mode"), [(False, "dihedral"), (True, "dihedral"), (True, "fastai")])
def test_one_pass_score_equals_the_separate_embedding_pass(tta, mode):
    model, images = _model(), _images()
    refs = model.embedding_references()
    assert refs is not None
    kw = {"tta": tta, "tta_mode": mode, "batch_size": 5, "device": "cpu"}
    res = model.predict_uncertainty(images, ood=True, **kw)
    two_pass = ood_ratio(refs, model.embed(images, batch_size=5, device="cpu"))
    assert res.ood_score is not None and res.ood_score.shape == (len(images),)
    np.testing.assert_allclose(res.ood_score, two_pass, rtol=1e-6, atol=1e-9)
    np.testing.assert_array_equal((res.ood_score > 1), (two_pass > 1))
    np.testing.assert_allclose(res.pred[:, 0], model.predict(images, **kw), rtol=1e-12, atol=0)
    # the test can fail: another view, or one member only, gives other scores
    turned = ood_ratio(refs, model.embed(np.ascontiguousarray(np.rot90(images, 1, (1, 2))), device="cpu"))
    assert not np.allclose(turned, two_pass, rtol=1e-3)
    one = ood_ratio(refs[:1], model.embed(images, device="cpu")[:1])
    assert not np.allclose(one, two_pass, rtol=1e-3)
    assert model.predict_uncertainty(images, **kw).ood_score is None  # only when asked


def test_no_score_without_statistics_or_on_cuda(monkeypatch):
    model, images = _model(1), _images(4)
    assert model._one_pass_references("cpu") is not None
    monkeypatch.setattr(inference, "resolve_device", lambda device: torch.device("cuda"))
    assert model._one_pass_references("cuda") is None  # bf16 there: the embedding keeps its own pass
    monkeypatch.undo()
    del model.meta["members"][0]["embedding_stats"]
    assert model.predict_uncertainty(images, ood=True, device="cpu").ood_score is None


def test_predict_dataset_flags_match_the_two_pass_flags(tmp_path):
    model = _model()
    ds = load_dataset(make_tiny_dataset(tmp_path / "ds", n=10, size=16), targets=[])
    table = predict_dataset(model, ds, tta=True, batch_size=4, device="cpu")
    images = np.asarray(ds.images())
    old = ood_scores(model, images, batch_size=4, device="cpu")
    assert old is not None
    np.testing.assert_allclose(table["ood_score"], old, rtol=1e-6, atol=1e-9)
    again = flag_rows(table.drop(columns=["ood_score", "flags"]), model, images, ds.catalog, 4, "cpu")
    np.testing.assert_array_equal(table["flags"], again["flags"])
    assert "EMBEDDING_OUT_OF_DOMAIN" in table.attrs["flag_checks"]


def test_predict_positions_scores_match_the_two_pass_scores(monkeypatch):
    pytest.importorskip("astropy")
    import galmet
    from faulty_server import FaultyServer

    model = _model()
    ra = np.array([10.0, 150.5, 150.5, 200.25, 10.0])  # repeated positions: rows that share a cutout
    dec = np.array([1.0, -3.0, -3.0, 45.0, 1.0])
    fast = dict(device="cpu", rate=0, retries=1, backoff_base=0.01, timeout=5.0, tta=True, batch_size=2)
    with FaultyServer() as srv:
        one = galmet.predict_positions(model, pd.DataFrame({"ra": ra, "dec": dec}), base_url=srv.url, **fast)
        monkeypatch.setattr(GalmetModel, "_one_pass_references", lambda self, device: None)
        two = galmet.predict_positions(model, pd.DataFrame({"ra": ra, "dec": dec}), base_url=srv.url, **fast)
    assert (np.asarray(one["status"]) == "ok").all()
    np.testing.assert_allclose(np.asarray(one["ood_score"]), np.asarray(two["ood_score"]), rtol=1e-6, atol=1e-9)
    np.testing.assert_array_equal(np.asarray(one["flags"]), np.asarray(two["flags"]))
    assert np.ptp(np.asarray(one["ood_score"])) > 0
