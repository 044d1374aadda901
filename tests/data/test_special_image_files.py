"""Red-team 18: a special file under an image name in an image folder (a FIFO, a link to a
device, a dangling or a looping link) is a bad row like a corrupt JPEG: refused in one line naming
it (never opened), or with skip_bad skipped and counted; never silently left out. Every command
that reads an image folder (info, predict, embed, explain) follows the same policy."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from galmet.cli.main import main
from galmet.data.dataset import load_dataset
from galmet.errors import DataError
from galmet.io.images import encode_jpeg


def _fifo(p):
    os.mkfifo(p)


SPECIALS = {
    "fifo": (_fifo, "FIFO"),
    "device link": (lambda p: os.symlink("/dev/zero", p), "character device"),
    "dangling link": (lambda p: os.symlink("nothing-here", p), "dangling or looping"),
    "looping link": (lambda p: os.symlink(p.name, p), "dangling or looping"),
}


def _folder(tmp_path, kind):
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(3):
        (folder / f"g{i}.jpg").write_bytes(encode_jpeg(np.full((16, 16, 3), 40 * i, np.uint8)))
    make, said = SPECIALS[kind]
    make(folder / "odd.jpg")
    return folder, said


@pytest.mark.parametrize("kind", sorted(SPECIALS))
def test_a_special_image_file_is_refused_or_skipped_and_counted(kind, tmp_path):
    folder, said = _folder(tmp_path, kind)
    with pytest.raises(DataError) as err:
        load_dataset(folder, cache=False)
    assert "\n" not in str(err.value) and "odd.jpg" in str(err.value) and said in str(err.value)
    ds = load_dataset(folder, cache=False, on_error="skip")
    assert len(ds) == 3 and len(ds.skipped) == 1 and "odd.jpg" in ds.skipped[0]


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    from galmet.nn.bundle import save_bundle
    from galmet.nn.net import build_model

    torch.manual_seed(0)
    return save_bundle(
        tmp_path_factory.mktemp("m") / "m.pt", build_model("resnet18"), {"targets": ["oh_p50"], "image_size": 16}
    )


COMMANDS = {
    "info": ["info", "{folder}"],
    "predict": ["predict", "{model}", "{folder}", "--out", "{tmp}/p.csv", "--device", "cpu", "--no-tta"],
    "embed": ["embed", "{model}", "{folder}", "--out", "{tmp}/e.parquet", "--device", "cpu"],
    "explain": ["explain", "{model}", "{folder}", "--out", "{tmp}/x", "--device", "cpu"],
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("kind", ["fifo", "looping link"])
def test_every_command_names_the_special_file(command, kind, bundle, tmp_path, capsys):
    folder, said = _folder(tmp_path, kind)
    argv = [a.format(folder=folder, model=bundle, tmp=tmp_path) for a in COMMANDS[command]]
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "odd.jpg" in err and said in err, err
