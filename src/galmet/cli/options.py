"""Option groups shared by several commands, so each option is defined (and validated) once.

- :func:`add_server_options` / :func:`server_client`: SkyServer root, timeout, retries, rate and
  backoff (``catalog``, ``download``, ``predict``).
- :func:`add_training_options` / :func:`config_from_args`: the :class:`~galmet.training.config.TrainConfig`
  options (``train``, ``lr-find``, ``resolution-study``); unset options keep the config's value.
- :func:`add_device_option`, :func:`add_progress_option`.
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass


@dataclass(frozen=True)
class ServerDefaults:
    """Per-command defaults of the server options (a catalogue query is slower than a cutout)."""

    timeout: float = 30.0
    retries: int = 5
    rate: float | None = 5.0
    backoff_base: float = 1.0


def add_server_options(p: argparse.ArgumentParser, defaults: ServerDefaults = ServerDefaults()):
    """The ``server`` option group: --base-url, --timeout, --retries, --rate, --backoff-base."""
    from galmet.sdss.skyserver import DEFAULT_BASE_URL

    g = p.add_argument_group("server")
    g.add_argument("--base-url", default=DEFAULT_BASE_URL, help="SkyServer root (default: %(default)s)")
    g.add_argument("--timeout", type=float, default=defaults.timeout, help="seconds per request (default: %(default)s)")
    g.add_argument(
        "--retries",
        type=int,
        default=defaults.retries,
        help="retries per request after the first try (default: %(default)s)",
    )
    g.add_argument(
        "--rate",
        type=float,
        default=defaults.rate,
        help="at most this many requests per second, 0 = no limit (default: %(default)s)",
    )
    g.add_argument(
        "--backoff-base",
        type=float,
        default=defaults.backoff_base,
        help="seconds before the first retry, doubling (default: %(default)s)",
    )
    return g


def check_server_options(args) -> None:
    """ConfigError naming the first bad server option."""
    from galmet.errors import ConfigError

    if not args.timeout > 0:
        raise ConfigError(f"--timeout must be positive, got {args.timeout}")
    if args.retries < 0:
        raise ConfigError(f"--retries must be 0 or more, got {args.retries}")
    if args.rate is not None and not args.rate >= 0:
        raise ConfigError(f"--rate must be 0 (no limit) or positive, got {args.rate}")
    if not args.backoff_base >= 0:
        raise ConfigError(f"--backoff-base must be 0 or more, got {args.backoff_base}")


def server_client(args):
    """The :class:`~galmet.sdss.skyserver.SkyServerClient` the server options describe."""
    from galmet.sdss.skyserver import RetryPolicy, SkyServerClient

    check_server_options(args)
    return SkyServerClient(
        args.base_url,
        args.timeout,
        RetryPolicy(retries=args.retries, backoff_base=args.backoff_base),
        rate=args.rate or None,
    )


def add_device_option(p, default: str | None = "auto", help: str = "where to run") -> None:
    from galmet.training.config import DEVICES

    shown = default or "auto"
    p.add_argument("--device", choices=DEVICES, default=default, help=f"{help} (default: {shown})")


def add_progress_option(p) -> None:
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


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
    g.add_argument("--batch-size", type=int, help="global batch size (default 256)")
    g.add_argument("--weight-decay", type=float, help="AdamW decoupled weight decay (default 0.01)")
    g.add_argument("--size", type=int, help="required image size in pixels (default: the dataset's)")
    g.add_argument(
        "--crop", type=int, metavar="N", help="train and predict on the central N x N pixels (default: the whole image)"
    )
    g.add_argument("--seed", type=int, help="random seed (default 0)")
    g.add_argument("--skip-bad", action="store_true", default=None, help="drop bad rows instead of failing")
    add_device_option(g, None, "where to train")
    add_progress_option(g)
    if not schedule:
        return
    from galmet.training.config import LOSSES, RECIPES

    s = p.add_argument_group("recipe")
    s.add_argument("--recipe", choices=RECIPES, help="learning-rate recipe (default: paper)")
    s.add_argument(
        "--epochs", type=int, help="total epochs (paper: fixed by --frozen-epochs/--cycles = 10; onecycle: 30)"
    )
    s.add_argument("--frozen-epochs", type=int, help="paper: epochs with the body frozen (default 2)")
    s.add_argument(
        "--cycles", type=int, nargs="+", metavar="N", help="paper: SGDR cycle lengths in epochs (default 1 1 2 4)"
    )
    s.add_argument(
        "--lr",
        type=float,
        nargs="+",
        metavar="LR",
        help="max lr: 1 value for every layer group or 3 (paper default 1e-3 1e-2 1e-2; onecycle 3e-3)",
    )
    s.add_argument("--frozen-lr", type=float, help="paper: lr of the frozen epochs (default 0.1)")
    s.add_argument("--max-zoom", type=float, help="random zoom up to this factor, then crop (default 1.1; 1 = off)")
    s.add_argument("--no-dihedral", action="store_true", help="no random rotations/flips")
    s.add_argument("--no-standardize", action="store_true", help="train on raw target values (not (y-mean)/std)")
    s.add_argument(
        "--loss",
        choices=LOSSES,
        help="rmse (the paper's head, default) or gaussian (a mean and a log-variance per target, beta-NLL)",
    )
    s.add_argument("--beta", type=float, help="gaussian loss: the beta of beta-NLL, 0 to 1 (default 0.5)")
    s.add_argument(
        "--valid-fraction", type=float, help="fraction of train rows made 'valid' when the catalog has none (0.2)"
    )
    s.add_argument("--split-seed", type=int, help="seed of that split (default 0)")
    s.add_argument(
        "--workers", type=int, help="DataLoader workers when images are read from the memory map (default 0)"
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
