"""Option groups shared by several commands, so each option is defined (and validated) once.

- :func:`add_server_options` / :func:`server_client`: SkyServer root, timeout, retries, rate and
  backoff (``catalog``, ``download``, ``predict``).
- :func:`add_training_options` / :func:`config_from_args`: the :class:`~galmet.training.config.TrainConfig`
  options (``train``, ``lr-find``, ``resolution-study``); unset options keep the config's value.
- :func:`add_device_option`, :func:`add_progress_option`.
- argparse types that check a number where it is parsed (:func:`number`, :func:`integer`,
  :func:`byte_size`, :data:`SEED`): every float option is finite and in its range, every
  integer option in its range, and a bad value is one line naming the option.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import re
from collections.abc import Callable

#: Largest seed galmet accepts (numpy, torch and scikit-learn all take 32-bit seeds).
MAX_SEED = 2**32 - 1


def number(
    lo: float | None = None,
    hi: float | None = None,
    *,
    open_low: bool = False,
    open_high: bool = False,
    what: str = "a number",
) -> Callable[[str], float]:
    """An argparse ``type``: a finite float in [lo, hi] (open ends when asked); nan, inf and
    values out of range are refused with a one-line message."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
        low_bad = lo is not None and (value <= lo if open_low else value < lo)
        high_bad = hi is not None and (value >= hi if open_high else value > hi)
        if low_bad or high_bad:
            raise argparse.ArgumentTypeError(f"must be {_interval(lo, hi, open_low, open_high)}, got {text!r}")
        return value

    parse.__name__ = "number"
    return parse


def _interval(lo, hi, open_low: bool, open_high: bool) -> str:
    if lo is not None and hi is not None:
        return f"in {'(' if open_low else '['}{lo:g}, {hi:g}{')' if open_high else ']'}"
    if lo is not None:
        return f"{'above' if open_low else 'at least'} {lo:g}"
    return f"{'below' if open_high else 'at most'} {hi:g}"


def integer(lo: int | None = None, hi: int | None = None, *, allow: tuple[int, ...] = ()) -> Callable[[str], int]:
    """An argparse ``type``: an integer in [lo, hi] (or one of ``allow``, e.g. -1 = "all cores")."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value in allow:
            return value
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            extra = f" (or {', '.join(map(str, allow))})" if allow else ""
            span = f"from {lo} to {hi}" if lo is not None and hi is not None else _interval(lo, hi, False, False)
            raise argparse.ArgumentTypeError(f"must be an integer {span}{extra}, got {text!r}")
        return value

    parse.__name__ = "integer"
    return parse


#: A seed option: 0 to 2**32 - 1.
SEED = integer(0, MAX_SEED)

_BYTE_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}


def byte_size(lo: int = 1024, hi: int = 1 << 40) -> Callable[[str], int]:
    """An argparse ``type``: a number of bytes, optionally with a K, M or G suffix (binary)."""

    def parse(text: str) -> int:
        m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([kKmMgG]?)(?:i?[bB])?\s*", text)
        if not m:
            raise argparse.ArgumentTypeError(f"expected a number of bytes such as 4M or 65536, got {text!r}")
        value = int(float(m.group(1)) * _BYTE_UNITS[m.group(2).lower()])
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"must be from {lo} to {hi} bytes, got {text!r}")
        return value

    parse.__name__ = "byte_size"
    return parse


def option_type(accepted) -> Callable[[str], float] | Callable[[str], int]:
    """The argparse ``type`` of an option whose values the library defines as a
    :class:`~galmet.sdss.transport.Range` (so the command line and the library accept the same)."""
    if accepted.integer:
        return integer(int(accepted.lo), int(accepted.hi))
    return number(accepted.lo, accepted.hi, open_low=accepted.open_low, what=accepted.noun)


def add_server_options(p: argparse.ArgumentParser, defaults=None):
    """The ``server`` option group: --data-release, --base-url, --timeout, --retries, --rate, --backoff-base,
    --max-bytes.

    ``defaults`` is the command's :class:`~galmet.sdss.transport.ClientSettings` (default: the
    cutouts', :data:`galmet.sdss.skyserver.CUTOUT_SETTINGS`); the accepted values are the library's
    (:data:`galmet.sdss.transport.SETTING_RANGES`).
    """
    from galmet.sdss.skyserver import CUTOUT_SETTINGS, DATA_RELEASES, DEFAULT_DATA_RELEASE
    from galmet.sdss.transport import SETTING_RANGES

    defaults = defaults or CUTOUT_SETTINGS
    max_bytes = SETTING_RANGES["max_bytes"]
    g = p.add_argument_group("server")
    g.add_argument(
        "--data-release",
        type=str.upper,
        choices=tuple(DATA_RELEASES),
        metavar="DR",
        help=f"SDSS data release whose SkyServer to use: {', '.join(DATA_RELEASES)} (default: "
        f"{DEFAULT_DATA_RELEASE}, the paper's); catalog checks that the paper's tables exist there",
    )
    g.add_argument(
        "--base-url",
        help=f"SkyServer root, e.g. a mirror (default: the --data-release's, {DATA_RELEASES[DEFAULT_DATA_RELEASE]})",
    )
    g.add_argument(
        "--timeout",
        type=option_type(SETTING_RANGES["timeout"]),
        default=defaults.timeout,
        help="deadline of each request in seconds: connection, headers and the whole body (default: %(default)s)",
    )
    g.add_argument(
        "--retries",
        type=option_type(SETTING_RANGES["retries"]),
        default=defaults.retries,
        help="retries per request after the first try (default: %(default)s)",
    )
    g.add_argument(
        "--rate",
        type=option_type(SETTING_RANGES["rate"]),
        default=defaults.rate,
        help="at most this many requests per second, 0 = no limit (default: %(default)s)",
    )
    g.add_argument(
        "--backoff-base",
        type=option_type(SETTING_RANGES["backoff_base"]),
        default=defaults.backoff_base,
        help="seconds before the first retry, doubling (default: %(default)s)",
    )
    g.add_argument(
        "--max-bytes",
        type=byte_size(int(max_bytes.lo), int(max_bytes.hi)),
        default=defaults.max_bytes,
        metavar="N",
        help=f"largest response body accepted, bytes (K, M, G suffixes; default: {defaults.max_bytes >> 20}M)",
    )
    return g


def server_settings(args):
    """The :class:`~galmet.sdss.transport.ClientSettings` the server options give, checked by the
    library (a ConfigError names the parameter; the command line shows its flag)."""
    from galmet.sdss.skyserver import CUTOUT_SETTINGS
    from galmet.sdss.transport import ClientSettings

    settings = ClientSettings(
        timeout=args.timeout,
        retries=args.retries,
        rate=args.rate,
        backoff_base=args.backoff_base,
        max_bytes=getattr(args, "max_bytes", CUTOUT_SETTINGS.max_bytes),
    )
    settings.check()
    return settings


def check_server_options(args) -> None:
    """ConfigError naming the first bad server option (for callers that skip argparse's types)."""
    server_settings(args)


def base_url(args) -> str:
    """The SkyServer root the server options name: ``--base-url``, else the ``--data-release``'s."""
    from galmet.sdss.skyserver import DATA_RELEASES, DEFAULT_DATA_RELEASE

    given = getattr(args, "base_url", None)
    if given is not None:  # (even an empty one: the client refuses it in one line)
        return given
    return DATA_RELEASES[getattr(args, "data_release", None) or DEFAULT_DATA_RELEASE]


def data_release(args) -> str | None:
    """The data release the server options name (``--data-release``, else the one the URL says)."""
    from galmet.sdss.skyserver import release_of

    return getattr(args, "data_release", None) or release_of(base_url(args))


def server_client(args):
    """The :class:`~galmet.sdss.skyserver.SkyServerClient` the server options describe."""
    from galmet.sdss.skyserver import SkyServerClient

    return SkyServerClient(base_url(args), **server_settings(args).client_kwargs())


def add_device_option(p, default: str | None = "auto", help: str = "where to run") -> None:
    from galmet.training.config import DEVICES

    shown = default or "auto"
    p.add_argument("--device", choices=DEVICES, default=default, help=f"{help} (default: {shown})")


def add_progress_option(p) -> None:
    p.add_argument(
        "--no-progress",
        action="store_true",
        help="no progress bars (nor the periodic progress lines written when stderr is not a terminal)",
    )


#: CLI option (argparse dest) -> TrainConfig field, for options whose value is copied as is.
TRAINING_FIELDS = {
    "recipe": "recipe",
    "target": "targets",
    "arch": "arch",
    "weights": "weights",
    "epochs": "epochs",
    "frozen_epochs": "frozen_epochs",
    "cycles": "cycles",
    "lr": "lr",
    "frozen_lr": "frozen_lr",
    "weight_decay": "weight_decay",
    "batch_size": "batch_size",
    "size": "size",
    "crop": "crop",
    "max_zoom": "max_zoom",
    "rotate": "rotate",
    "lighting": "lighting",
    "optimizer": "optimizer",
    "momentum": "momentum",
    "sgdr_warmup": "sgdr_warmup",
    "seed": "seed",
    "valid_fraction": "valid_fraction",
    "split_seed": "split_seed",
    "device": "device",
    "workers": "workers",
    "compile": "compile",
    "skip_bad": "skip_bad",
    "loss": "loss",
    "beta": "beta",
}


def add_training_options(p, schedule: bool = True) -> None:
    """TrainConfig options, all defaulting to "keep the config's value" (None).

    Parameters
    ----------
    schedule : bool
        Also the recipe and schedule options (recipe, epochs, cycles, lrs, augmentation, split,
        runtime): ``train`` and ``resolution-study`` want them, ``lr-find`` does not.
    """
    from galmet.columns import ARCHS

    # A long function on purpose: one flat declaration per option, in the order --help shows them;
    # splitting it would only scatter the options and their help texts.
    p.add_argument("--config", metavar="YAML", help="start from a saved config.yaml (options below override it)")
    g = p.add_argument_group("model and data")
    g.add_argument(
        "--target",
        action="append",
        metavar="COLUMN",
        help="catalog column to regress; repeat for several (default: oh_p50)",
    )
    g.add_argument("--arch", choices=ARCHS, help="ResNet body (default: resnet34)")
    g.add_argument("--weights", metavar="imagenet|none|PATH", help="initial body weights (default: imagenet)")
    g.add_argument("--batch-size", type=integer(2, 1 << 16), help="global batch size (default 256; notebook 128)")
    g.add_argument(
        "--weight-decay", type=number(0, 1), help="weight decay, decoupled for AdamW (default 0.01; notebook 0)"
    )
    g.add_argument("--size", type=integer(1, 4096), help="required image size in pixels (default: the dataset's)")
    g.add_argument(
        "--crop",
        type=integer(1, 4096),
        metavar="N",
        help="train and predict on the central N x N pixels (default: the whole image)",
    )
    g.add_argument("--seed", type=SEED, help="random seed, 0 to 2**32-1 (default 0)")
    g.add_argument("--skip-bad", action="store_true", default=None, help="drop bad rows instead of failing")
    add_device_option(g, None, "where to train")
    add_progress_option(g)
    if not schedule:
        return
    from galmet.training.config import LOSSES, RECIPES

    s = p.add_argument_group("recipe")
    s.add_argument(
        "--recipe",
        choices=RECIPES,
        help="paper (default: the paper's text), notebook (the authors' released code) or onecycle (from scratch)",
    )
    s.add_argument(
        "--epochs",
        type=integer(1, 100000),
        help="total epochs (paper: fixed by --frozen-epochs/--cycles = 10; onecycle: 30)",
    )
    s.add_argument("--frozen-epochs", type=integer(0, 100000), help="paper: epochs with the body frozen (default 2)")
    s.add_argument(
        "--cycles",
        type=integer(1, 100000),
        nargs="+",
        metavar="N",
        help="paper: SGDR cycle lengths in epochs (default 1 1 2 4)",
    )
    s.add_argument(
        "--lr",
        type=number(0, 10, open_low=True),
        nargs="+",
        metavar="LR",
        help="max lr: 1 value for every layer group or 3 (paper default 1e-3 1e-2 1e-2; onecycle 3e-3)",
    )
    s.add_argument(
        "--frozen-lr", type=number(0, 10, open_low=True), help="paper, notebook: lr of the frozen epochs (default 0.1)"
    )
    s.add_argument(
        "--optimizer", choices=("adamw", "sgd"), help="optimizer (default: adamw; notebook: sgd, momentum 0.9)"
    )
    s.add_argument("--momentum", type=number(0, 1, open_high=True), help="SGD momentum (default 0.9, fastai 0.7's)")
    s.add_argument(
        "--sgdr-warmup",
        type=number(0, 1, open_high=True),
        metavar="FRACTION",
        help="hold lr/100 for this fraction of a fit's first SGDR cycle, as fastai 0.7 (default 0; notebook 0.05)",
    )
    s.add_argument(
        "--max-zoom", type=number(1, 4), help="random zoom up to this factor, then crop (default 1.1; 1 = off)"
    )
    s.add_argument("--no-dihedral", action="store_true", help="no random rotations/flips")
    s.add_argument(
        "--rotate",
        type=number(0, 180),
        metavar="DEG",
        help="random rotation up to DEG degrees, p 0.75 (fastai 0.7; default 10, onecycle 0; 0 = off)",
    )
    s.add_argument(
        "--lighting",
        type=number(0, 1, open_high=True),
        metavar="X",
        help="random brightness and contrast change up to X (fastai 0.7; default 0.05, onecycle 0; 0 = off)",
    )
    s.add_argument("--no-standardize", action="store_true", help="train on raw target values (not (y-mean)/std)")
    s.add_argument(
        "--loss",
        choices=LOSSES,
        help="rmse (the paper's head, default) or gaussian (a mean and a log-variance per target, beta-NLL)",
    )
    s.add_argument("--beta", type=number(0, 1), help="gaussian loss: the beta of beta-NLL, 0 to 1 (default 0.5)")
    s.add_argument(
        "--valid-fraction",
        type=number(0, 1, open_high=True),
        help="fraction of train rows made 'valid' when the catalog has none (0.2)",
    )
    s.add_argument("--split-seed", type=SEED, help="seed of that split (default 0)")
    s.add_argument(
        "--workers",
        type=integer(0, 256),
        help="DataLoader workers when images are read from the memory map (default 0)",
    )
    s.add_argument("--compile", action="store_true", default=None, help="torch.compile the model")
    s.add_argument("--no-amp", action="store_true", help="no bf16 autocast on CUDA")


def config_from_args(args, base=None):
    """(TrainConfig, changes): ``base`` (default: ``--config`` or the paper's defaults) with the
    options that were given; ``changes`` maps the changed fields to their values."""
    from galmet.training.config import TrainConfig, load_config

    if base is None:
        base = load_config(args.config) if getattr(args, "config", None) else TrainConfig()
    changes = {
        field: getattr(args, opt) for opt, field in TRAINING_FIELDS.items() if getattr(args, opt, None) is not None
    }
    for flag, field in (
        ("no_dihedral", "dihedral"),
        ("no_standardize", "standardize_targets"),
        ("no_amp", "amp"),
        ("no_progress", "progress"),
    ):
        if getattr(args, flag, False):
            changes[field] = False
    return dataclasses.replace(base, **changes), changes
