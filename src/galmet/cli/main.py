"""The ``galmet`` command line: a thin layer that parses arguments and calls the library.

Each subcommand is a module in :mod:`galmet.cli.commands` that defines ``NAME``, ``HELP``,
``ORDER`` (position in ``--help``), ``add_arguments(parser)`` and ``run(args) -> int``.
Errors the user can cause (:class:`galmet.errors.GalmetError`) print one line and exit 2.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys

from galmet._version import __version__
from galmet.errors import GalmetError

EXIT_USER_ERROR = 2


def _command_modules():
    import galmet.cli.commands as pkg

    mods = [importlib.import_module(f"{pkg.__name__}.{m.name}") for m in pkgutil.iter_modules(pkg.__path__)]
    mods = [m for m in mods if hasattr(m, "NAME") and hasattr(m, "run")]
    return sorted(mods, key=lambda m: (getattr(m, "ORDER", 100), m.NAME))


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser, with one subparser per command module."""
    parser = argparse.ArgumentParser(
        prog="galmet",
        description="Predict gas-phase metallicity, Z = 12 + log(O/H), of galaxies from SDSS gri "
        "images with a deep CNN (Wu & Boada 2019, MNRAS 484, 4683).",
        epilog="Run 'galmet COMMAND --help' for the options of a command. Start with 'galmet demo'.",
    )
    parser.add_argument("--version", action="version", version=f"galmet {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more detail to stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
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


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``galmet`` console script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s: %(message)s" if args.verbose else "%(message)s",
        stream=sys.stderr,
    )
    if not getattr(args, "_run", None):
        parser.print_help()
        return EXIT_USER_ERROR
    try:
        return int(args._run(args) or 0)
    except GalmetError as exc:
        print(f"galmet {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print(f"galmet {args.command}: interrupted", file=sys.stderr)
        return 130
