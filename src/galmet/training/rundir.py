"""The run directory of ``galmet train``: checked before anything, exclusive, replaced only on success.

- :func:`check_run_output` (touches nothing): the folder is not a file, does not sit under a
  file, is writable; ``--resume`` has a checkpoint, a finished or unfinished run is not
  replaced without ``--overwrite``, and the run files there (``model.pt``, ``checkpoint.pt``,
  ``config.yaml``, ``history.csv``) belong to a galmet run: a user's own ``model.pt`` or
  ``config.yaml`` is never replaced, not even with ``--overwrite``.
- :func:`open_run_dir`: holds the folder's lock (``.galmet.lock``, :mod:`galmet.io.locks`) for
  the whole run, so a second ``galmet train`` into the same folder fails at once. A run that
  would replace another (``--overwrite``) is built in the hidden ``RUN/.galmet-staging/`` and
  moved into place by :meth:`RunDir.commit` only when it has finished: a killed or diverged
  retrain leaves the old run whole (and ``--resume`` continues the new one in the staging
  folder). The move is journalled (``.galmet-commit.json``): if it is itself cut short, the next
  ``galmet train`` on the folder completes it first.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from galmet.errors import ConfigError
from galmet.io.atomic import atomic_write_text, remove_stale_temp_files
from galmet.io.inputs import special_kind
from galmet.io.locks import exclusive, held_elsewhere, holder
from galmet.io.ownership import owned_by_galmet, record
from galmet.io.safety import check_output_dir, file_kind, remove_empty_dirs, remove_files
from galmet.layout import BUNDLE, CHECKPOINT, CONFIG, HISTORY, RUN_FILES, RUN_LOCK, STAGING

log = logging.getLogger(__name__)

#: The journal of a commit in progress: the relative names being moved, in order.
COMMIT_JOURNAL = ".galmet-commit.json"


def _is_galmet_config(path: Path) -> bool:
    """A config.yaml written by galmet: a YAML mapping with a ``recipe`` and a ``run:`` section."""
    import yaml

    if special_kind(path) is not None:  # a FIFO is never opened
        return False
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, yaml.YAMLError):
        return False
    return isinstance(data, dict) and "recipe" in data and isinstance(data.get("run"), dict)


def _is_galmet_history(path: Path) -> bool:
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.readline().startswith("epoch,phase,")
    except (OSError, ValueError):
        return False


def foreign_run_file(folder: Path, skip: Sequence[str] = ()) -> str | None:
    """The first run-file name in ``folder`` (but ``skip``) whose content galmet did not write, or None."""
    checks = {
        BUNDLE: lambda p: file_kind(p) == "galmet model bundle",
        CHECKPOINT: lambda p: file_kind(p) == "galmet training checkpoint",
        CONFIG: _is_galmet_config,
        HISTORY: _is_galmet_history,
    }
    for name, ours in checks.items():
        if name in skip:
            continue
        p = folder / name
        if (p.exists() or p.is_symlink()) and not (p.is_file() and ours(p)):
            return name
    return None


def holds_run(folder: Path) -> bool:
    """True when ``folder`` holds any file of a galmet training run."""
    return any((folder / n).is_file() for n in RUN_FILES)


def check_not_running(run: Path) -> None:
    """ConfigError when another galmet process holds the run directory's lock now."""
    if held_elsewhere(run, RUN_LOCK):
        raise ConfigError(f"{run} is in use by another galmet run ({holder(run)}); wait for it to finish")


def staging_dir(run: Path) -> Path:
    """Where ``--overwrite`` builds the new run in ``run``."""
    return run / STAGING


def check_run_output(
    run: str | os.PathLike, resume: bool, overwrite: bool, option: str = "out_dir", under_lock: bool = False
) -> Path:
    """Refuse (ConfigError, one line) a run directory that does not fit the request; touch nothing.

    Raises for: a path that is a file or sits under one or is not writable; ``resume`` with
    ``overwrite``; ``resume`` without a checkpoint (in the folder or its staging folder); a
    finished or unfinished run without ``overwrite`` (or ``resume``); a run file
    (``model.pt``, ``checkpoint.pt``, ``config.yaml``, ``history.csv``) that galmet did not write;
    another process holding the folder's lock (unless ``under_lock``: this process holds it).
    ``option`` is the parameter that names ``run`` (the errors' ``param``, with ``resume`` and
    ``overwrite``).
    """
    run = Path(run)
    check_output_dir(run, option)
    if resume and overwrite:
        raise ConfigError("resume and overwrite exclude each other", param=("resume", "overwrite"))
    if not under_lock:
        check_not_running(run)
    foreign = None
    if run.is_dir():
        # what this request would replace: --resume rewrites config and history (it reads the
        # checkpoint itself, and says when that is unreadable), --overwrite every run file
        skip = (CHECKPOINT,) if resume else () if overwrite else (CHECKPOINT, BUNDLE)
        foreign = foreign_run_file(run, skip=skip)
    bundle, ckpt = run / BUNDLE, run / CHECKPOINT
    if not (resume or overwrite) and (bundle.exists() or ckpt.exists()):
        foreign = None  # nothing will be replaced: say what the folder holds (below)
    if foreign is not None:
        raise ConfigError(
            f"{run}: its {foreign} was not written by galmet train (or is damaged); galmet never replaces it, "
            f"not even with overwrite: move it away or choose another {option}",
            param=("overwrite", option),
        )
    if resume:
        if not (ckpt.is_file() or (staging_dir(run) / CHECKPOINT).is_file() or bundle.is_file()):
            # (a finished run drops its checkpoint: train() then has nothing to do)
            raise ConfigError(f"{run}: no {CHECKPOINT} to resume from")
        return run
    if overwrite:
        return run
    if bundle.exists():
        raise ConfigError(
            f"{run}: already holds a finished run ({BUNDLE}); use overwrite to replace it", param="overwrite"
        )
    if ckpt.exists():
        raise ConfigError(
            f"{run}: holds an unfinished run ({CHECKPOINT}); use resume to continue it or overwrite",
            param=("resume", "overwrite"),
        )
    if holds_run(run):
        raise ConfigError(
            f"{run}: holds the start of a run with no checkpoint yet; use overwrite to replace it", param="overwrite"
        )
    return run


@dataclass
class RunDir:
    """A locked run directory and the folder this run writes into.

    Attributes
    ----------
    run : Path
        The run directory the user named.
    work : Path
        Where this run writes its files: ``run`` itself, or ``run/.galmet-staging`` when it
        replaces another run (``staged``).
    """

    run: Path
    work: Path

    @property
    def staged(self) -> bool:
        return self.work != self.run

    def commit(self, names: Sequence[str] = RUN_FILES, obsolete: Sequence[str] = ()) -> None:
        """Move the finished run from the staging folder into place (nothing to do when not staged).

        ``names`` are the run's files relative to the run, the completion marker (``model.pt``)
        last; ``obsolete`` are files of the old run that the new one does not have (e.g. the
        folds beyond the new ``--folds``), deleted by name.
        """
        if not self.staged:
            return
        journal = {"names": list(names), "obsolete": list(obsolete)}
        atomic_write_text(self.work / COMMIT_JOURNAL, json.dumps(journal))
        finish_commit(self.run)


def finish_commit(run: Path) -> bool:
    """Complete a commit whose journal is in the staging folder; return whether there was one.

    Idempotent: the old marker (the last name) goes first, so the run directory is never a
    "finished" mixture of two runs; each file is then moved with ``os.replace``.
    """
    stage = staging_dir(run)
    path = stage / COMMIT_JOURNAL
    if not path.is_file():
        return False
    try:
        journal = json.loads(path.read_text())
        names, obsolete = list(journal["names"]), list(journal["obsolete"])
    except (OSError, ValueError, KeyError, TypeError):
        log.warning("%s: unreadable commit journal; the staged run stays in %s", run, stage)
        return False
    if (stage / names[-1]).is_file():
        remove_files([run / names[-1]])
    remove_files(run / n for n in obsolete)
    for name in names:
        src = stage / name
        if src.is_file():
            (run / name).parent.mkdir(parents=True, exist_ok=True)
            if owned_by_galmet(src):  # the run's own ledger learns of it before the move
                record(run / name, content=src)
            os.replace(src, run / name)
    remove_empty_dirs({(run / n).parent for n in obsolete if (run / n).parent != run})
    path.unlink(missing_ok=True)
    _clear(stage, names)
    remove_empty_dirs([stage / n for n in {Path(n).parent.as_posix() for n in names} if n != "."] + [stage])
    return True


def _clear(folder: Path, names: Sequence[str]) -> None:
    """Delete the named run files (and galmet temp files, locks) from ``folder``, nothing else."""
    remove_files(folder / n for n in names)
    for d in {folder / Path(n).parent for n in names}:
        remove_stale_temp_files(d)
        remove_files([d / RUN_LOCK])


@contextlib.contextmanager
def open_run_dir(
    run: str | os.PathLike,
    resume: bool,
    overwrite: bool,
    names: Sequence[str] = RUN_FILES,
    check: Callable[..., object] = check_run_output,
    progress: str = CHECKPOINT,
) -> Iterator[RunDir]:
    """Lock ``run`` for the block and decide where this run writes (see the module docstring).

    The folder is created if needed (and removed again if the block fails before writing
    anything into it). Under the lock: a commit cut short is completed, the request is checked
    again (:func:`check_run_output`: another process may have written a run meanwhile), and a
    run that replaces another gets a fresh staging folder, while ``--resume`` continues the
    staged run when there is one.

    Parameters
    ----------
    names : sequence of str
        The files of a finished run, relative to ``run``, its completion marker last.
    check : callable
        ``check(run, resume, overwrite, under_lock=True)`` raises ConfigError for a request that
        does not fit the folder (default: :func:`check_run_output`, a training run's rules).
    progress : str
        The file whose presence in the staging folder means a staged run ``--resume`` can continue.
    """
    run = Path(run)
    created = not run.exists()
    run.mkdir(parents=True, exist_ok=True)
    try:
        with exclusive(run, RUN_LOCK, "'galmet train'"):
            finish_commit(run)
            check(run, resume, overwrite, under_lock=True)
            stage = staging_dir(run)
            if resume:
                work = stage if (stage / progress).is_file() else run
            elif overwrite and (holds_run(run) or any((run / n).is_file() for n in names)):
                _clear(stage, names)  # a staged run killed earlier: start it again
                stage.mkdir(exist_ok=True)
                work = stage
            else:
                work = run
            remove_stale_temp_files(work)
            yield RunDir(run, work)
    except BaseException:
        if created:
            with contextlib.suppress(OSError):
                remove_files([run / RUN_LOCK])
                run.rmdir()  # only when the failed run left nothing behind
        raise
