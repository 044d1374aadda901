"""Checks that keep galmet from ever writing over a user's data.

Every command checks its output paths with these functions *before* it touches the disk:

- :func:`check_output_file` / :func:`check_output_dir`: the path is not a folder (or a file
  where a folder is wanted), does not sit under a file, is writable, is not one of the
  command's inputs (:class:`Input`), and is not a galmet artefact or a file of another kind
  (a model bundle, a catalogue, a JPEG, a NumPy array ...) that the output would replace.
- :func:`file_kind`: what an existing file holds, from its first bytes (and, for a PyTorch
  archive, whether it is a galmet bundle or checkpoint), without importing torch.
- :func:`dataset_inputs`: the files a dataset directory consists of, as inputs to protect.
- :func:`remove_files`: delete the given files that galmet wrote (:mod:`galmet.io.ownership`),
  never a user's file, never a folder tree.

An existing file at an output name is replaced only when galmet wrote it
(:func:`galmet.io.ownership.owned_by_galmet`) or the caller passes ``overwrite=True``; a folder
a command works in (a positions work folder) must hold nothing but galmet's files
(:func:`check_owned_folder`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from galmet.errors import ConfigError
from galmet.io.fits_images import FITS_SUFFIXES
from galmet.io.images import IMAGE_SUFFIXES
from galmet.io.inputs import special_kind
from galmet.io.ownership import (
    LEDGER,
    first_foreign,
    holds_only_bookkeeping,
    is_bookkeeping,
    odd_kind,
    owned_by_galmet,
)
from galmet.layout import (
    BUNDLE,
    BUNDLE_FORMAT,
    CATALOG_JSON,
    CATALOG_NAMES,
    CHECKPOINT,
    CHECKPOINT_FORMAT,
    CONFIG,
    FOLDS,
    IMAGE_CACHE,
    IMAGES_DIR,
    MANIFEST,
    RUN_LOCK,
    SYNTH_CONFIG,
    artefact_kind,
    cache_key_file,
)

log = logging.getLogger(__name__)

#: What an output is written as; each maps to the kinds of existing file it may replace.
FORMATS = {
    "parquet": ("Parquet table",),
    "csv": (None,),
    "fits": ("FITS file",),
    "json": (None,),
    "yaml": (None,),
    "html": (None,),
    "png": ("PNG image",),
    "pdf": ("PDF document",),
    "svg": (None,),
    "bundle": ("galmet model bundle",),
    "npz": ("zip archive",),
}

#: The suffixes an output of each format must have (tables: checked by the table registry,
#: ``galmet.io.tables.require_table_format``, before this).
SUFFIXES = {
    "json": (".json",),
    "yaml": (".yaml", ".yml"),
    "html": (".html", ".htm"),
    "png": (".png",),
    "pdf": (".pdf",),
    "svg": (".svg",),
    "bundle": (".pt",),
    "npz": (".npz",),
}


def check_output_suffix(path: Path, option: str, fmt: str, what: str) -> None:
    """ConfigError (``param=option``) when ``path`` does not end in a suffix of format ``fmt``
    (:data:`SUFFIXES`; case-insensitive): ``--json metrics.txt`` is refused before anything is done."""
    suffixes = SUFFIXES.get(fmt)
    if suffixes and path.suffix.lower() not in suffixes:
        raise ConfigError(f"{option} {path}: a {what} file ends in {' or '.join(suffixes)}", param=option)


@dataclass(frozen=True)
class Input:
    """A path a command reads: a file, or (``tree=True``) a folder whose every file is an input.

    ``what`` names it in messages ("the predictions file", "the dataset's catalogue");
    ``suffixes`` limits a tree to the files with these suffixes (the images of a plain folder).
    """

    path: Path
    what: str
    tree: bool = False
    suffixes: tuple[str, ...] = ()

    def holds(self, path: Path) -> bool:
        """True when writing ``path`` would write over this input."""
        if not self.tree:
            return _same(path, self.path)
        if self.suffixes and path.suffix.lower() not in self.suffixes:
            return False
        return _inside(path, self.path)


def dataset_inputs(root: str | os.PathLike, what: str = "the dataset") -> list[Input]:
    """The files a dataset directory (or image folder) consists of, as inputs to protect:
    its catalogue, catalogue settings, manifest, decode cache, synthesis settings and images."""
    root = Path(root)
    names = [*CATALOG_NAMES, CATALOG_JSON, MANIFEST, IMAGE_CACHE, cache_key_file(IMAGE_CACHE), SYNTH_CONFIG]
    items = [Input(root / n, f"{what}'s {artefact_kind(n) or n}") for n in names]
    items.append(Input(root / IMAGES_DIR, f"{what}'s images", tree=True))
    if not any((root / n).is_file() for n in CATALOG_NAMES):  # a plain folder: its images are the input
        items.append(Input(root, f"{what}'s images", tree=True, suffixes=IMAGE_SUFFIXES + FITS_SUFFIXES))
    return items


def _same(a: Path, b: Path) -> bool:
    """True when ``a`` and ``b`` name the same file (hard links and symlinks included)."""
    with contextlib.suppress(OSError):
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    return _absolute(a) == _absolute(b)


def _absolute(p: Path) -> str:
    return os.path.normcase(os.path.realpath(os.path.abspath(p)))


def _inside(path: Path, folder: Path) -> bool:
    a, f = _absolute(path), _absolute(folder)
    return a == f or a.startswith(f.rstrip(os.sep) + os.sep)


def _nearest_existing(path: Path) -> Path:
    p = Path(os.path.abspath(path))
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def _check_location(folder: Path, shown: Path, option: str) -> None:
    """ConfigError when ``folder`` (where ``shown`` goes) sits under a file or is not writable."""
    anc = _nearest_existing(folder)
    if not anc.is_dir():
        raise ConfigError(f"{option} {shown}: {anc} is a file, not a directory", param=option)
    if not os.access(anc, os.W_OK | os.X_OK):
        raise ConfigError(f"{option} {shown}: cannot write into {anc} (permission denied)", param=option)


def _check_bookkeeping(folder: Path, shown: Path, option: str) -> None:
    """ConfigError when galmet's ledger or lock file in ``folder`` is not a regular file (a
    symlink, a FIFO, a folder): refused before any work, as galmet never follows nor replaces it."""
    for name, what in ((LEDGER, "ledger"), (RUN_LOCK, "lock file")):
        kind = odd_kind(folder / name)
        if kind is not None:
            raise ConfigError(
                f"{option} {shown}: {folder / name} is a {kind}, not galmet's {what}; move it away", param=option
            )


def file_kind(path: str | os.PathLike) -> str | None:
    """What an existing file holds, judged from its content: ``"galmet model bundle"``,
    ``"galmet training checkpoint"``, ``"PyTorch file"``, ``"zip archive"``, ``"NumPy array"``,
    ``"JPEG image"``, ``"PNG image"``, ``"PDF document"``, ``"Parquet table"``, ``"FITS file"``,
    ``"damaged zip archive"``, ``"binary file"``, or what a non-regular file is (``"FIFO (named
    pipe)"``, ``"character device"``, ...: never opened, as opening a FIFO blocks); None for text
    (or an empty or unreadable file)."""
    p = Path(path)
    special = special_kind(p)
    if special is not None and special != "directory":
        return special
    try:
        with open(p, "rb") as fh:
            head = fh.read(4096)
    except OSError:
        return None
    if not head:
        return None
    if head.startswith(b"PK\x03\x04"):
        return _zip_kind(p)
    for magic, kind in (
        (b"\x93NUMPY", "NumPy array"),
        (b"\xff\xd8\xff", "JPEG image"),
        (b"\x89PNG\r\n\x1a\n", "PNG image"),
        (b"%PDF", "PDF document"),
        (b"PAR1", "Parquet table"),
        (b"SIMPLE  =", "FITS file"),
        (b"\x1f\x8b", "gzip file"),
        (b"\x80", "pickle file"),
    ):
        if head.startswith(magic):
            return kind
    if b"\x00" in head:
        return "binary file"
    return None


def _zip_kind(path: Path) -> str:
    """A PyTorch archive (``*/data.pkl``) is a galmet bundle or checkpoint when its pickle says so."""
    try:
        with zipfile.ZipFile(path) as z:
            pkl = [n for n in z.namelist() if n.endswith("/data.pkl") or n == "data.pkl"]
            if not pkl:
                return "zip archive"
            with z.open(pkl[0]) as fh:
                data = fh.read(1 << 22)  # the structure only; tensors are separate entries
    except (OSError, zipfile.BadZipFile, ValueError):
        return "damaged zip archive"
    if BUNDLE_FORMAT.encode() in data:
        return "galmet model bundle"
    if CHECKPOINT_FORMAT.encode() in data:
        return "galmet training checkpoint"
    return "PyTorch file"


def check_output_file(
    path: str | os.PathLike,
    option: str,
    fmt: str,
    what: str,
    inputs: Iterable[Input] = (),
    kind: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Refuse (one-line ConfigError) an output file that would lose data; return it as a Path.

    Parameters
    ----------
    path : path-like
        The file the command will write.
    option : str
        The parameter that named it (``out``, ``json_out``): the message starts with it and the
        error's ``param`` is it, so the command line says the flag instead.
    fmt : str
        Its format, a key of :data:`FORMATS` (an existing file of another format is not replaced).
    what : str
        What the command writes there, e.g. ``"predictions table"`` (for the message).
    inputs : iterable of Input
        The command's inputs; the output must be none of them (nor inside an input tree).
    kind : str, optional
        The artefact kind of the output (see :data:`galmet.layout.ARTEFACT_KINDS`); a name that
        galmet reserves for another kind is refused. Default: ``what``.
    overwrite : bool
        Replace an existing file of the right kind that galmet did not write (a file galmet
        wrote, per its folder's ledger, is replaced without it). The error's ``param`` then
        also names ``overwrite``.
    """
    p = Path(path)
    if not str(path).strip():
        raise ConfigError(f"{option}: empty path", param=option)
    if p.is_dir():
        raise ConfigError(f"{option} {p}: is a directory; give a file name", param=option)
    _check_location(p.parent, p, option)
    _check_bookkeeping(p.parent, p, option)
    for item in inputs:
        if item.holds(p):
            raise ConfigError(
                f"{option} {p}: is {item.what}, an input of this command; choose another file", param=option
            )
    reserved = artefact_kind(p.name)
    if reserved is not None and reserved != (kind or what):
        raise ConfigError(
            f"{option} {p}: galmet keeps its {reserved} under that name; choose another file name", param=option
        )
    if p.exists():
        found = file_kind(p)
        special = special_kind(p)
        if special is not None:  # a device, FIFO or socket: never a file galmet writes
            raise ConfigError(
                f"{option} {p}: is a {special}, not a file to write the {what} in; choose a regular file", param=option
            )
        if found not in FORMATS[fmt]:
            shown = found or "text file"
            raise ConfigError(f"{option} {p}: exists and is a {shown}, not a {what}; choose another file", param=option)
        if not os.access(p, os.W_OK):
            raise ConfigError(f"{option} {p}: exists and is read-only; choose another file", param=option)
    if (p.exists() or p.is_symlink()) and not overwrite and not owned_by_galmet(p):
        raise ConfigError(
            f"{option} {p}: exists and was not written by galmet; choose another file or use overwrite to replace it",
            param=(option, "overwrite"),
        )
    check_output_suffix(p, option, fmt, what)  # (after the checks above: they say more of an existing file)
    return p


def check_output_dir(
    path: str | os.PathLike,
    option: str,
    files: Sequence[tuple[str, str, str]] = (),
    inputs: Iterable[Input] = (),
    overwrite: bool = False,
) -> Path:
    """Refuse an output folder that is a file, sits under a file or is not writable, and check
    each file the command writes into it with :func:`check_output_file`.

    Parameters
    ----------
    files : sequence of (relative name, format, what)
        The files the command will write in the folder.
    overwrite : bool
        Replace files at those names that galmet did not write (see :func:`check_output_file`).
    """
    p = Path(path)
    if not str(path).strip():
        raise ConfigError(f"{option}: empty path", param=option)
    if p.exists() and not p.is_dir():
        raise ConfigError(f"{option} {p}: is a file, not a directory", param=option)
    _check_location(p if p.is_dir() else p.parent, p, option)
    _check_bookkeeping(p, p, option)
    inputs = list(inputs)
    for name, fmt, what in files:
        check_output_file(p / name, option, fmt, what, inputs, overwrite=overwrite)
    return p


def check_owned_folder(path: str | os.PathLike, option: str, what: str = "work folder") -> None:
    """ConfigError when the folder ``path`` (a command's own work folder, which it fills and
    empties) holds anything galmet did not write, in it or below: galmet never adopts a user's
    files as its own, and never deletes them. Nothing to check when it does not exist."""
    foreign = first_foreign(path)
    if foreign is not None:
        raise ConfigError(
            f"{option} {path}: is not empty and {foreign} was not written by galmet; a {what} must be new, "
            "empty or hold only galmet's files (choose another folder)",
            param=option,
        )


def check_not_run_model(path: str | os.PathLike, option: str) -> None:
    """ConfigError when ``path`` is the ``model.pt`` of a training run (a folder with its checkpoint,
    config or folds): an ensemble or a copy written there would no longer match the run."""
    p = Path(path)
    if p.name == BUNDLE and any((p.parent / n).is_file() for n in (CHECKPOINT, CONFIG, FOLDS)):
        raise ConfigError(
            f"{option} {p}: is the model of the training run in {p.parent}; choose another file", param=option
        )


def check_not_inputs(paths: Iterable[str | os.PathLike], option: str, inputs: Iterable[Input]) -> None:
    """ConfigError when one of ``paths`` (files a command will write into the folder ``option``
    names) is one of its inputs or inside an input folder."""
    inputs = list(inputs)
    for p in map(Path, paths):
        for item in inputs:
            if item.holds(p):
                said = f"is inside {item.what} folder {item.path}" if item.tree else f"its {p.name} is {item.what}"
                raise ConfigError(f"{option} {p.parent}: {said}, an input of this command", param=option)


def inputs_of(obj, what: str) -> list[Input]:
    """The inputs a library argument stands for: a dataset directory (or loaded Dataset: its
    ``root``) gives :func:`dataset_inputs`, a file path itself; anything else (a DataFrame, None)
    reads nothing from disk."""
    if isinstance(obj, (str, os.PathLike)):
        p = Path(obj)
        return dataset_inputs(p, what) if p.is_dir() else [Input(p, what)]
    root = getattr(obj, "root", None)
    return dataset_inputs(root, what) if isinstance(root, (str, os.PathLike)) else []


def model_input(path: str | os.PathLike, what: str = "the model bundle") -> Input:
    """A model argument (a bundle file, or a run folder holding ``model.pt``) as an :class:`Input`."""
    from galmet.layout import BUNDLE

    p = Path(path)
    return Input(p / BUNDLE if p.is_dir() else p, what)


def remove_files(paths: Iterable[Path]) -> int:
    """Delete those of the given files that galmet wrote (:func:`galmet.io.ownership.owned_by_galmet`:
    never a user's file, a file edited since, a link or a folder); return how many were removed.
    The others are left as they are (logged at debug level)."""
    n = 0
    for p in map(Path, paths):
        if not owned_by_galmet(p):
            if p.exists() or p.is_symlink():
                log.debug("%s: not written by galmet, left in place", p)
            continue
        with contextlib.suppress(FileNotFoundError):
            p.unlink()
            n += 1
    return n


def remove_empty_dirs(folders: Iterable[Path]) -> None:
    """Remove each folder that is now empty but for galmet's bookkeeping (its ledger, lock files,
    temp files), deepest first; folders holding anything else stay."""
    for d in sorted(set(map(Path, folders)), key=lambda q: len(q.parts), reverse=True):
        if not holds_only_bookkeeping(d):
            continue
        with contextlib.suppress(OSError):
            for p in d.iterdir():
                if is_bookkeeping(p.name) and owned_by_galmet(p):
                    p.unlink(missing_ok=True)
            d.rmdir()
