"""Which files galmet wrote (galmet.io.ownership): the ledger, and the checks and deletions built on it."""

from __future__ import annotations

import os
import shutil
import threading

import pytest

from galmet.errors import ConfigError, DataError
from galmet.io.atomic import atomic_path, atomic_write_bytes, atomic_write_text, remove_stale_temp_files
from galmet.io.ownership import LEDGER, first_foreign, owned_by_galmet, record, record_temp
from galmet.io.safety import check_output_dir, check_output_file, check_owned_folder, remove_empty_dirs, remove_files


def test_a_file_galmet_wrote_is_its_own_and_a_users_or_an_edited_one_is_not(tmp_path):
    atomic_write_text(tmp_path / "ours.csv", "a,b\n1,2\n")
    (tmp_path / "theirs.csv").write_text("a,b\n1,2\n")  # the same bytes, but not written by galmet
    assert owned_by_galmet(tmp_path / "ours.csv") and not owned_by_galmet(tmp_path / "theirs.csv")
    with open(tmp_path / "ours.csv", "a") as fh:  # edited by the user since
        fh.write("3,4\n")
    assert not owned_by_galmet(tmp_path / "ours.csv")
    os.symlink(tmp_path / "ours.csv", tmp_path / "link.csv")
    assert not owned_by_galmet(tmp_path / "link.csv") and not owned_by_galmet(tmp_path / "missing.csv")


def test_a_copied_folder_keeps_its_files_galmets_by_content(tmp_path):
    atomic_write_bytes(tmp_path / "a" / "x.bin", b"\x00\x01" * 100)
    shutil.copytree(tmp_path / "a", tmp_path / "b", copy_function=shutil.copy)  # new mtimes
    os.utime(tmp_path / "b" / "x.bin", ns=(1, 1))
    assert owned_by_galmet(tmp_path / "b" / "x.bin")
    (tmp_path / "b" / "x.bin").write_bytes(b"\x00\x02" * 100)  # same size, other bytes
    assert not owned_by_galmet(tmp_path / "b" / "x.bin")


def test_a_write_killed_between_its_note_and_its_rename_leaves_both_versions_galmets(tmp_path):
    target = tmp_path / "t.json"
    atomic_write_text(target, "{}")
    tmp = tmp_path / ".t.json.abc.galmet.tmp"
    tmp.write_text('{"a": 1}')
    record(target, content=tmp)  # noted, then killed before the rename
    assert owned_by_galmet(target)
    os.replace(tmp, target)
    assert owned_by_galmet(target)


def test_a_failed_write_notes_nothing(tmp_path):
    with pytest.raises(RuntimeError), atomic_path(tmp_path / "f.txt") as tmp:
        tmp.write_text("half")
        raise RuntimeError
    (tmp_path / "f.txt").write_text("half")
    assert not owned_by_galmet(tmp_path / "f.txt")


def test_threads_appending_to_one_ledger_lose_no_line(tmp_path):
    def write(k):
        for i in range(50):
            atomic_write_bytes(tmp_path / f"{k}-{i}.bin", f"{k} {i}".encode(), durable=False)

    threads = [threading.Thread(target=write, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lines = (tmp_path / LEDGER).read_text().splitlines()
    assert len(lines) == 400  # each write: its temporary file when created, then the file
    assert sum('"temp": true' not in line for line in lines) == 200
    assert first_foreign(tmp_path) is None


@pytest.mark.parametrize(
    "fmt,name,data",
    [("csv", "data.csv", b"a,b\n1,2\n"), ("json", "m.json", b"{}"), ("html", "index.html", b"<html></html>")],
)
def test_an_output_galmet_did_not_write_needs_overwrite(tmp_path, fmt, name, data):
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(ConfigError, match="was not written by galmet") as exc:
        check_output_file(path, "out", fmt, "output")
    assert exc.value.param == ("out", "overwrite") and "\n" not in str(exc.value)
    with pytest.raises(ConfigError, match="was not written by galmet"):
        check_output_dir(tmp_path, "out_dir", [(name, fmt, "output")])
    assert check_output_file(path, "out", fmt, "output", overwrite=True) == path
    assert path.read_bytes() == data
    atomic_write_bytes(path, data)  # galmet's own earlier output: replaced without overwrite
    assert check_output_file(path, "out", fmt, "output") == path


def test_remove_files_deletes_only_galmets_files_and_never_a_folder(tmp_path):
    atomic_write_text(tmp_path / "ours.txt", "x")
    (tmp_path / "theirs.txt").write_text("x")
    (tmp_path / "dir").mkdir()
    (tmp_path / ".ours.txt.abc.galmet.tmp").write_text("a temp file an interrupted write left")
    record_temp(tmp_path / ".ours.txt.abc.galmet.tmp")  # (as atomic_path notes it when created)
    (tmp_path / ".theirs.txt.bak1.galmet.tmp").write_text("a user's file with a temp file's name")
    names = ["ours.txt", "theirs.txt", "dir", "missing.txt", ".ours.txt.abc.galmet.tmp", ".theirs.txt.bak1.galmet.tmp"]
    assert remove_files(tmp_path / n for n in names) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == [LEDGER, ".theirs.txt.bak1.galmet.tmp", "dir", "theirs.txt"]


def test_remove_empty_dirs_takes_a_folder_holding_only_galmets_bookkeeping(tmp_path):
    atomic_write_text(tmp_path / "a" / "f.txt", "x")
    atomic_write_text(tmp_path / "b" / "f.txt", "x")
    (tmp_path / "b" / "mine.txt").write_text("mine")
    remove_files([tmp_path / "a" / "f.txt", tmp_path / "b" / "f.txt"])
    remove_empty_dirs([tmp_path / "a", tmp_path / "b"])
    assert not (tmp_path / "a").exists() and sorted(p.name for p in (tmp_path / "b").iterdir()) == [LEDGER, "mine.txt"]


def test_a_work_folder_holding_a_users_file_anywhere_is_refused(tmp_path):
    work = tmp_path / "w"
    atomic_write_text(work / "shards" / "s.json", "{}")
    check_owned_folder(work, "work_dir")  # galmet's files only
    check_owned_folder(tmp_path / "new", "work_dir")  # not there yet
    (work / "cutouts" / "images").mkdir(parents=True)
    (work / "cutouts" / "images" / "m31.jpg").write_bytes(b"\xff\xd8\xff")
    with pytest.raises(ConfigError, match="m31.jpg was not written by galmet") as exc:
        check_owned_folder(work, "work_dir")
    assert exc.value.param == "work_dir"


def test_a_large_file_is_noted_without_its_hash_and_is_galmets_while_size_and_time_match(tmp_path, monkeypatch):
    import galmet.io.ownership as ownership

    monkeypatch.setattr(ownership, "HASH_LIMIT", 4)
    with atomic_path(tmp_path / "big.npy") as tmp:  # written by any means: galmet would have to read it back
        tmp.write_bytes(b"0123456789")
    assert '"sha256": null' in (tmp_path / LEDGER).read_text() and owned_by_galmet(tmp_path / "big.npy")
    os.utime(tmp_path / "big.npy", ns=(1, 1))  # a copy: same bytes, another time
    assert not owned_by_galmet(tmp_path / "big.npy")


#: galmet's bookkeeping names: the ledger, the lock file, an atomic write's temporary file.
BOOKKEEPING = [LEDGER, ".galmet.lock", ".out.txt.k3x9q.galmet.tmp"]


def _special(path, kind: str, target) -> None:
    """Put a ``kind`` of non-regular file at ``path``: a symlink to the user's file ``target``,
    a FIFO or a directory."""
    if kind == "symlink":
        path.symlink_to(target)
    elif kind == "fifo":
        os.mkfifo(path)
    else:
        path.mkdir()


@pytest.mark.parametrize("kind", ["symlink", "fifo", "directory"])
@pytest.mark.parametrize("name", BOOKKEEPING)
def test_a_special_file_at_a_bookkeeping_name_is_never_galmets_nor_deleted(tmp_path, name, kind):
    user = tmp_path / "notes.txt"
    user.write_text("my notes")
    work = tmp_path / "w"
    work.mkdir()
    _special(work / name, kind, user)
    assert not owned_by_galmet(work / name)
    assert remove_files([work / name]) == 0
    remove_empty_dirs([work])
    assert os.path.lexists(work / name) and user.read_text() == "my notes"
    with pytest.raises(ConfigError, match="not written by galmet"):
        check_owned_folder(work, "work_dir")


@pytest.mark.parametrize("kind", ["symlink", "fifo", "directory"])
def test_a_ledger_that_is_not_a_regular_file_is_refused_never_followed_nor_blocked_on(tmp_path, kind):
    user = tmp_path / "notes.txt"
    user.write_text("my notes")
    work = tmp_path / "w"
    work.mkdir()
    _special(work / LEDGER, kind, user)
    with pytest.raises(DataError, match=rf"{LEDGER}: is a .*move it away"):
        atomic_write_text(work / "out.txt", "x")
    assert user.read_text() == "my notes" and not (work / "out.txt").exists()
    assert [p.name for p in work.iterdir()] == [LEDGER]  # no temporary file left either
    assert not owned_by_galmet(work / "out.txt")


@pytest.mark.parametrize("name", [".galmet.lock", ".thesis.tex.bak1.galmet.tmp", ".out.txt.k3x9q.galmet.tmp"])
def test_a_users_file_with_a_bookkeeping_name_survives_every_cleanup(tmp_path, name):
    work = tmp_path / "w"
    atomic_write_text(work / "out.txt", "x")
    (work / name).write_text("the user's own text")
    assert not owned_by_galmet(work / name)
    assert remove_stale_temp_files(work) == 0
    remove_files([work / "out.txt", work / name])
    remove_empty_dirs([work])
    assert (work / name).read_text() == "the user's own text"


def test_galmets_own_bookkeeping_files_are_still_cleaned_up(tmp_path):
    work = tmp_path / "w"
    with atomic_path(work / "out.txt") as tmp:
        tmp.write_text("half")
        stale = tmp.with_name(tmp.name.replace("out", "old"))
        shutil.copy(tmp, stale)
    record_temp(stale)
    (work / ".galmet.lock").write_text("123 'galmet synth'\n")
    assert owned_by_galmet(stale) and owned_by_galmet(work / ".galmet.lock")
    assert remove_stale_temp_files(work) == 1
    remove_files([work / "out.txt"])
    remove_empty_dirs([work])
    assert not work.exists()


@pytest.mark.parametrize(
    "line",
    [
        '{"name": "p.csv", "size": 1e999, "mtime_ns": "x"}',
        '{"name": "p.csv", "size": 1, "mtime_ns": 1e999, "sha256": null}',
        '{"name": "p.csv", "size": 100000000000000000000000000000, "mtime_ns": 1, "sha256": null}',
        '{"name": "p.csv", "size": true, "mtime_ns": 1, "sha256": null}',
        '{"name": ["p.csv"], "size": 1, "mtime_ns": 1, "sha256": null}',
        '{"name": "p.csv", "size": 1, "mtime_ns": 1, "sha256": 5}',
        "[1, 2, 3]",
        '"p.csv"',
        "not json at all",
        "\xff\xfe binary",
        "[" * 100000,
    ],
)
def test_a_corrupt_ledger_line_of_any_kind_is_ignored(tmp_path, line):
    atomic_write_text(tmp_path / "a.csv", "a")
    with open(tmp_path / LEDGER, "a", encoding="utf-8", errors="surrogateescape") as fh:
        fh.write(line + "\n")
    atomic_write_text(tmp_path / "p.csv", "p")  # later writes work, and the lines after it count
    assert owned_by_galmet(tmp_path / "a.csv") and owned_by_galmet(tmp_path / "p.csv")
