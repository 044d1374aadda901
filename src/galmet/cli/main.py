"""The ``galmet`` command line: a thin layer that parses arguments and calls the library.

Each subcommand is a module in :mod:`galmet.cli.commands` that defines ``NAME``, ``HELP``,
``ORDER`` (position in ``--help``), ``add_arguments(parser)`` and ``run(args) -> int``.

Every way a user can get it wrong ends in one line on stderr and exit code 2: a bad option
(argparse), a :class:`galmet.errors.GalmetError` from the library, and, as a last line of
defence, an ``OSError`` (a full disk, a permission) or ``ValueError`` that reached this
boundary, named with its file, and running out of memory or threads (MemoryError, ``can't start
new thread``, an mmap or allocation failing with ENOMEM): one line naming what ran out.
Library warnings are logged at debug level (``-v`` shows them); Pillow's decompression-bomb
warning is an error.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys
import warnings

from galmet._version import __version__
from galmet.errors import (
    GalmetError,
    address_space_nearly_full,
    for_flags,
    one_line,
    out_of_resources,
    resource_message,
    single_line,
)

EXIT_USER_ERROR = 2
log = logging.getLogger("galmet")


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (no usage block) and exit with code 2."""

    def error(self, message: str):
        self.exit(EXIT_USER_ERROR, f"{self.prog}: error: {single_line(message)} (see '{self.prog} --help')\n")


def _command_modules():
    import galmet.cli.commands as pkg

    mods = [importlib.import_module(f"{pkg.__name__}.{m.name}") for m in pkgutil.iter_modules(pkg.__path__)]
    mods = [m for m in mods if hasattr(m, "NAME") and hasattr(m, "run")]
    return sorted(mods, key=lambda m: (getattr(m, "ORDER", 100), m.NAME))


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser, with one subparser per command module."""
    parser = OneLineParser(
        prog="galmet",
        description="Predict gas-phase metallicity, Z = 12 + log(O/H), of galaxies from SDSS gri "
        "images with a deep CNN (Wu & Boada 2019, MNRAS 484, 4683).",
        epilog="Run 'galmet COMMAND --help' for the options of a command. Start with 'galmet demo'.",
    )
    parser.add_argument("--version", action="version", version=f"galmet {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more detail to stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands", parser_class=OneLineParser)
    for mod in _command_modules():
        p = sub.add_parser(
            mod.NAME,
            help=mod.HELP,
            description=getattr(mod, "DESCRIPTION", mod.HELP),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def _quiet_library_warnings(verbose: bool) -> None:
    """Route ``warnings`` to the log (shown with -v only); Pillow's bomb warning raises instead."""
    logging.captureWarnings(True)
    logging.getLogger("py.warnings").setLevel(logging.DEBUG if verbose else logging.CRITICAL)
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - Pillow is a dependency
        return
    warnings.simplefilter("error", Image.DecompressionBombWarning)


def _os_error(exc: OSError) -> str:
    """``PATH: reason`` of an OSError (a full disk, a permission, a missing folder)."""
    where = exc.filename if exc.filename is not None else ""
    reason = exc.strerror or one_line(exc)
    return f"{where}: {reason}" if where else reason


def _out_of_resources_exit(command: str, exc: BaseException) -> int | None:
    """Exit code 2 after one line naming what ran out (memory, threads) and what to lower, when
    ``exc`` means that (a MemoryError, ``can't start new thread``, a memory map or allocation
    that failed with ENOMEM, a library that could not be mapped); None for any other failure."""
    what = out_of_resources(exc)
    if what is None and address_space_nearly_full():  # a C extension failing oddly at the limit
        what = "memory"
    if what is None:
        return None
    log.debug("out of %s at the command-line boundary", what, exc_info=exc)
    print(f"{command}: error: {resource_message(exc, what)} (run with -v for details)", file=sys.stderr)
    return EXIT_USER_ERROR


def flags_of(parser: argparse.ArgumentParser, command: str | None) -> dict[str, str]:
    """API parameter name -> the flag that sets it, for ``command``'s options (its argparse dests,
    plus the command module's ``PARAM_FLAGS`` where a library parameter has another name)."""
    flags: dict[str, str] = {}
    sub = next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)
    chosen = sub.choices.get(command) if sub is not None and command else None
    for p in (parser, chosen):
        for action in p._actions if p is not None else []:
            long = [o for o in action.option_strings if o.startswith("--")]
            if long:
                flags.setdefault(action.dest, long[0])
            elif not action.option_strings and action.dest not in ("command", "help"):
                metavar = action.metavar if isinstance(action.metavar, str) else None  # (not a tuple of names)
                flags.setdefault(action.dest, metavar or action.dest.upper())
    run = getattr(chosen, "_defaults", {}).get("_run") if chosen is not None else None
    module = sys.modules.get(getattr(run, "__module__", "") or "")
    flags.update(getattr(module, "PARAM_FLAGS", {}))
    return flags


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``galmet`` console script; returns the exit code."""
    command = "galmet"
    verbose = False
    parser = None
    args = None
    try:
        parser = build_parser()
        try:
            from galmet.cli.options import attach_signed_values

            args = parser.parse_args(attach_signed_values(list(sys.argv[1:] if argv is None else argv)))
        except SystemExit as exc:  # --help, --version, or a bad option (already printed, one line)
            return exc.code if isinstance(exc.code, int) else EXIT_USER_ERROR
        command = f"galmet {args.command}" if getattr(args, "command", None) else "galmet"
        verbose = bool(args.verbose)
        logging.basicConfig(
            level=logging.DEBUG if verbose else logging.INFO,
            format="%(levelname)s: %(message)s" if verbose else "%(message)s",
            stream=sys.stderr,
        )
        _quiet_library_warnings(verbose)
        if not getattr(args, "_run", None):
            parser.print_help()
            return EXIT_USER_ERROR
        from galmet.io.progress import progress_disabled

        with progress_disabled(bool(getattr(args, "no_progress", False))):  # --no-progress reaches every bar
            return int(args._run(args) or 0)
    except GalmetError as exc:
        flags = flags_of(parser, getattr(args, "command", None)) if parser is not None else {}
        print(f"{command}: error: {for_flags(exc, flags)}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print(f"{command}: interrupted", file=sys.stderr)
        return 130
    except (MemoryError, RuntimeError, ImportError, SystemError) as exc:
        code = _out_of_resources_exit(command, exc)
        if code is None:
            raise
        return code
    except OSError as exc:
        if (code := _out_of_resources_exit(command, exc)) is not None:
            return code
        # Whatever the library did not turn into a GalmetError: a disk that filled up mid-write,
        # a permission, a vanished folder. Atomic writes have already removed their temp files.
        log.debug("OSError at the command-line boundary", exc_info=True)
        print(f"{command}: error: {single_line(_os_error(exc))}", file=sys.stderr)
        return EXIT_USER_ERROR
    except (ValueError, OverflowError) as exc:
        log.debug("%s at the command-line boundary", type(exc).__name__, exc_info=True)
        print(f"{command}: error: {single_line(one_line(exc))} (run with -v for details)", file=sys.stderr)
        return EXIT_USER_ERROR
