"""The model registry: cards, shipped folders, registry files, name resolution and url weights."""

from __future__ import annotations

import hashlib
import json
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

import galmet.registry.entries as entries_mod
from conftest import tiny_card
from galmet.errors import ConfigError, GalmetError
from galmet.registry.card import ModelCard
from galmet.registry.entries import all_entries, file_entries, shipped_entries
from galmet.registry.fetch import MODEL_SETTINGS, cached_path, fetch
from galmet.registry.resolve import resolve_model

SHA = "ab" * 32
U = "https://x/m.pt"


def full_card(name: str = "tiny", sha: str = SHA, size: int = 10) -> dict:
    return {**tiny_card(name), "weights": {"file": "model.pt", "sha256": sha, "size": size}}


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    import torch

    from galmet.nn.bundle import save_bundle
    from galmet.nn.net import build_model

    torch.manual_seed(0)
    meta = {"targets": ["oh_p50"], "image_size": 16, "target_shift": [8.7], "target_scale": [0.1]}
    return save_bundle(tmp_path_factory.mktemp("bundle") / "model.pt", build_model("resnet18"), meta)


def shipped(root: Path, bundle: Path, name: str = "tiny") -> Path:
    """A shipped model folder ROOT/NAME (card.json + model.pt), as galmet models pack writes it."""
    folder = root / name
    folder.mkdir(parents=True)
    shutil.copy(bundle, folder / "model.pt")
    data = bundle.read_bytes()
    card = full_card(name, hashlib.sha256(data).hexdigest(), len(data))
    (folder / "card.json").write_text(json.dumps(card))
    return folder


# --- cards -----------------------------------------------------------------------------------


def test_a_valid_card_reads_back_and_renders():
    card = ModelCard.from_dict(full_card())
    assert ModelCard.from_dict(json.loads(card.to_json())) == card
    text = card.render()
    assert "tiny 0.1" in text and "RMSE 0.2 dex [0.15, 0.25]" in text and "- untrained" in text


@pytest.mark.parametrize(
    "path, value, field",
    [
        (("name",), "a/b", "name"),
        (("version",), "", "version"),
        (("imaging", "pixel_scale"), -1, "imaging.pixel_scale"),
        (("imaging", "crop"), 32, "imaging.crop"),
        (("training", "n_galaxies"), 0, "training.n_galaxies"),
        (("metrics", "rmse"), float("nan"), "metrics.rmse"),
        (("metrics", "rmse_ci"), [0.3, 0.4], "metrics.rmse_ci"),
        (("metrics", "coverage95"), 1.5, "metrics.coverage95"),
        (("calibration", "coverage"), "68%", "calibration.coverage"),
        (("limits",), "none", "limits"),
        (("weights", "sha256"), "xyz", "weights.sha256"),
        (("weights", "size"), True, "weights.size"),
        (("weights", "file"), "../model.pt", "weights.file"),
    ],
)
def test_a_bad_card_field_is_one_line_naming_it(path, value, field):
    data = full_card()
    target = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(ConfigError, match=rf"^card\.json: {field} must be") as err:
        ModelCard.from_dict(data)
    assert "\n" not in str(err.value)


def test_a_missing_or_unknown_card_field_is_named():
    data = full_card()
    del data["metrics"]["nmad"]
    with pytest.raises(ConfigError, match=r"metrics\.nmad is missing"):
        ModelCard.from_dict(data)
    with pytest.raises(ConfigError, match="unknown card field 'colour'"):
        ModelCard.from_dict({**full_card(), "colour": "red"})
    assert ModelCard.from_dict(tiny_card(), weights=False).weights == {}


# --- shipped folders and registry files --------------------------------------------------------


def test_shipped_folders_are_discovered(tmp_path, bundle):
    shipped(tmp_path, bundle, "tiny")
    shipped(tmp_path, bundle, "other")
    found = shipped_entries(tmp_path)
    assert [(e.name, e.kind) for e in found] == [("other", "shipped"), ("tiny", "shipped")]
    assert found[1].location == str(tmp_path / "tiny" / "model.pt") and found[1].card.name == "tiny"
    (tmp_path / "other" / "model.pt").unlink()
    with pytest.raises(ConfigError, match="its weights file model.pt is missing"):
        shipped_entries(tmp_path)


def test_a_shipped_card_must_carry_its_folders_name(tmp_path, bundle):
    folder = shipped(tmp_path, bundle, "tiny")
    folder.rename(tmp_path / "renamed")
    with pytest.raises(ConfigError, match="name 'tiny' differs from its folder's name 'renamed'"):
        shipped_entries(tmp_path)


def test_the_package_ships_a_registry_file_and_no_model_yet():
    root = entries_mod.shipped_root()
    assert all(e.kind == "url" for e in file_entries(root / "registry.json"))  # a list of url entries
    assert all(e.kind == "shipped" for e in all_entries(files=[]))


def test_registry_files_from_the_environment(tmp_path, bundle, monkeypatch):
    reg = tmp_path / "reg.json"
    reg.write_text(json.dumps([{"name": "mine", "path": str(bundle)}, {"name": "web", "url": "https://x.org/m.pt",
                                "sha256": SHA, "size": 10, "version": "2"}]))  # fmt: skip
    monkeypatch.setenv("GALMET_MODEL_REGISTRY", str(reg))
    found = {e.name: e for e in all_entries(root=tmp_path / "none")}
    assert found["mine"].kind == "path" and found["web"].kind == "url" and found["web"].version == "2"


@pytest.mark.parametrize(
    "entry, message",
    [
        ({"name": "a b", "url": U, "sha256": SHA, "size": 1}, r"entry 0: name must be"),
        ({"name": "m", "url": "ftp://x/m.pt", "sha256": SHA, "size": 1}, r"entry 0 \(m\): url must be"),
        ({"name": "m", "url": U, "sha256": "AB", "size": 1}, r"entry 0 \(m\): sha256 must be"),
        ({"name": "m", "url": U, "sha256": SHA, "size": 0}, r"entry 0 \(m\): size must be"),
        ({"name": "m", "url": U, "path": "m.pt"}, r"entry 0 \(m\): give exactly one of url and path"),
        ({"name": "m", "path": "m.pt", "colour": 1}, r"entry 0 \(m\): unknown field 'colour'"),
        ({"name": "m", "url": U, "sha256": SHA, "size": 1, "card": full_card("m")}, r"entry 0 \(m\): card weights"),
        ({"name": "m", "path": "m.pt", "card": {**full_card("m"), "version": 3}}, r"entry 0 \(m\) card: version must"),
    ],
)
def test_a_bad_registry_entry_is_one_line_naming_file_entry_and_field(tmp_path, entry, message):
    reg = tmp_path / "reg.json"
    reg.write_text(json.dumps([entry]))
    with pytest.raises(ConfigError, match=rf"^{reg}: {message}") as err:
        file_entries(reg)
    assert "\n" not in str(err.value)


def test_a_name_given_twice_is_refused(tmp_path, bundle):
    shipped(tmp_path, bundle, "tiny")
    reg = tmp_path / "reg.json"
    reg.write_text(json.dumps([{"name": "tiny", "path": str(bundle)}]))
    with pytest.raises(ConfigError, match="model name 'tiny' is given twice"):
        all_entries(root=tmp_path, files=[reg])


# --- resolution --------------------------------------------------------------------------------


def test_load_model_by_name_knows_its_card_and_a_path_wins(tmp_path, bundle, monkeypatch):
    from galmet import load_model

    root = tmp_path / "models"
    folder = shipped(root, bundle, "tiny")
    monkeypatch.setattr(entries_mod, "shipped_root", lambda: root)
    model = load_model("tiny")
    assert model.name == "tiny" and model.card["metrics"]["rmse"] == 0.2 and model.path == folder / "model.pt"
    assert load_model(folder).card["name"] == "tiny"  # the folder's card names its bundle
    assert load_model(bundle).card is None and load_model(bundle).name is None
    monkeypatch.chdir(tmp_path)
    shutil.copy(bundle, tmp_path / "tiny")  # a file called like the model: the path wins
    assert load_model("tiny").name is None


def test_an_unknown_name_lists_the_known_ones(tmp_path, bundle, monkeypatch):
    from galmet import load_model

    root = tmp_path / "models"
    shipped(root, bundle, "tiny")
    monkeypatch.setattr(entries_mod, "shipped_root", lambda: root)
    with pytest.raises(ConfigError, match=r"^tinny: no such model bundle, .*\(known models: tiny\)$"):
        load_model("tinny")


# --- url entries: a loopback server -------------------------------------------------------------


class _Server:
    """127.0.0.1 only: serves ``files`` (path -> bytes); ``extra`` bytes beyond the announced length."""

    def __init__(self, files: dict[str, bytes]):
        self.files, self.requests, self.extra = files, [], b""
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - the http.server API
                server.requests.append(self.path)
                body = server.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                if not server.extra:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body + server.extra)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    srv = _Server({})
    yield srv
    srv.close()


def _entry(tmp_path, server, data: bytes, sha: str | None = None, size: int | None = None, name: str = "web"):
    server.files["/m.pt"] = data
    reg = tmp_path / "reg.json"
    item = {"name": name, "url": server.url + "/m.pt", "sha256": sha or hashlib.sha256(data).hexdigest(),
            "size": len(data) if size is None else size}  # fmt: skip
    reg.write_text(json.dumps([item]))
    return file_entries(reg)[0]


def _settings():
    from dataclasses import replace

    return replace(MODEL_SETTINGS, retries=0, timeout=10.0)


def test_a_url_model_is_fetched_once_verified_and_cached(tmp_path, server):
    data = b"weights " * 300
    entry = _entry(tmp_path, server, data)
    path = fetch(entry, _settings())
    assert path == cached_path(entry) and path.read_bytes() == data
    assert str(path).startswith(str(tmp_path / "galmet-cache" / "models" / "web"))  # $GALMET_CACHE_DIR/models
    assert fetch(entry, _settings()) == path and len(server.requests) == 1  # a verified cache hit
    path.write_bytes(b"x" * len(data))  # a damaged cache file is never loaded, nor deleted (galmet's no more)
    with pytest.raises(ConfigError, match="does not match model web's sha256 and galmet did not write it; remove it"):
        fetch(entry, _settings())
    assert path.read_bytes() == b"x" * len(data)
    path.unlink()
    assert fetch(entry, _settings()).read_bytes() == data and len(server.requests) == 2


def test_a_sha256_mismatch_is_refused_and_not_kept(tmp_path, server):
    entry = _entry(tmp_path, server, b"weights " * 300, sha=SHA)
    with pytest.raises(ConfigError, match=r"model web downloaded with sha256 \w+, but .* says abab.*; refused") as err:
        fetch(entry, _settings())
    assert "\n" not in str(err.value)
    folder = cached_path(entry).parent
    assert not folder.exists() or [p.name for p in folder.iterdir() if not p.name.startswith(".galmet")] == []


def test_a_body_beyond_the_declared_size_is_cut_off(tmp_path, server):
    data = b"w" * 4096
    entry = _entry(tmp_path, server, data)
    server.extra = b"x" * (1 << 20)  # streamed without a length: the cap (the declared size) stops it
    with pytest.raises(GalmetError, match="over the 4096-byte cap"):
        fetch(entry, _settings())
    assert not cached_path(entry).exists()
    server.extra = b""
    short = _entry(tmp_path, server, data, size=5000)  # fewer bytes than declared: refused too
    with pytest.raises(GalmetError, match="got 4096 bytes"):
        fetch(short, _settings())


def test_load_model_by_name_downloads_a_url_model_once(tmp_path, server, bundle, monkeypatch):
    from galmet import load_model

    entry = _entry(tmp_path, server, bundle.read_bytes(), name="webmodel")
    monkeypatch.setenv("GALMET_MODEL_REGISTRY", entry.source)
    monkeypatch.setattr(entries_mod, "shipped_root", lambda: tmp_path / "none")
    assert resolve_model("webmodel", fetch_weights=False).path == cached_path(entry)  # nothing fetched
    assert server.requests == []
    model = load_model("webmodel")
    assert model.name == "webmodel" and model.path == cached_path(entry)
    load_model("webmodel")
    assert len(server.requests) == 1


def test_shipped_weights_that_are_not_the_cards_are_refused(tmp_path, bundle, monkeypatch):
    """A shipped model.pt replaced by other bytes is not loaded under the card's name and metrics;
    given by path, the card beside it is not attached to it."""
    from galmet import load_model

    root = tmp_path / "models"
    folder = shipped(root, bundle, "tiny")
    monkeypatch.setattr(entries_mod, "shipped_root", lambda: root)
    assert load_model("tiny").name == "tiny"
    data = bytearray((folder / "model.pt").read_bytes())
    data[-1] ^= 0xFF  # same size, other bytes
    (folder / "model.pt").write_bytes(bytes(data))
    with pytest.raises(ConfigError, match="not the ones its card names"):
        resolve_model("tiny")
    shutil.copy(bundle, folder / "model.pt")
    assert resolve_model("tiny").name == "tiny"
    other = tmp_path / "other"
    other.mkdir()
    shutil.copy(folder / "card.json", other / "card.json")  # a card naming model.pt, beside another bundle
    import torch

    from galmet.nn.bundle import save_bundle
    from galmet.nn.net import build_model

    torch.manual_seed(1)
    meta = {"targets": ["oh_p50"], "image_size": 16, "target_shift": [8.7], "target_scale": [0.1]}
    save_bundle(other / "model.pt", build_model("resnet10"), meta)
    assert load_model(other / "model.pt").card is None and load_model(other / "model.pt").name is None


def test_a_path_entry_may_name_a_run_folder(tmp_path, bundle, monkeypatch):
    reg = tmp_path / "reg.json"
    reg.write_text(json.dumps([{"name": "localrun", "path": str(bundle.parent)}]))
    monkeypatch.setenv("GALMET_MODEL_REGISTRY", str(reg))
    monkeypatch.setattr(entries_mod, "shipped_root", lambda: tmp_path / "none")
    assert resolve_model("localrun").path == bundle
