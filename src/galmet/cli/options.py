"""Option groups shared by several commands, so each option is defined (and validated) once.

- :func:`add_server_options` / :func:`server_client`: SkyServer root, timeout, retries, rate and
  backoff (``catalog``, ``download``, ``predict``).
- :func:`add_training_options` / :func:`config_from_args`: the :class:`~galmet.training.config.TrainConfig`
  options (``train``, ``lr-find``, ``resolution-study``); unset options keep the config's value.
  Their number types, ranges, choices and the defaults their help shows come from the training
  schema (:mod:`galmet.training.config_schema`) and ``TrainConfig`` (:func:`schema_type`): none is
  written here.
- :func:`add_device_option`, :func:`add_progress_option`, :func:`add_overwrite_option`.
- :func:`attach_signed_values`: ``--dec -34:19:43`` read as ``--dec=-34:19:43`` (before argparse).
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
from dataclasses import dataclass
from typing import Any

from galmet.training.config_schema import MAX_SEED


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


def add_server_options(p: argparse.ArgumentParser, defaults=None, survey_root: bool = True):
    """The ``server`` option group: --data-release, --base-url, --timeout, --retries, --rate, --backoff-base,
    --max-bytes.

    ``defaults`` is the command's :class:`~galmet.sdss.transport.ClientSettings` (default: the
    cutouts', :data:`galmet.sdss.skyserver.CUTOUT_SETTINGS`); the accepted values are the library's
    (:data:`galmet.sdss.transport.SETTING_RANGES`). ``survey_root``: the command has ``--survey``,
    and ``--base-url``'s help says it names that survey's service root.
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
        help=f"SkyServer root, e.g. a mirror (default: the --data-release's, {DATA_RELEASES[DEFAULT_DATA_RELEASE]})"
        + ("; with --survey legacy or ps1, that survey's service root (default: its own)" if survey_root else ""),
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


def survey_name(text: str) -> str:
    """A ``--survey`` or ``--layer`` value as galmet names it: lower case (``Legacy`` -> ``legacy``)."""
    return text.strip().lower()


def format_name(text: str) -> str:
    """A ``--format`` value as galmet names it: lower case, ``jpg`` read as ``jpeg``."""
    name = text.strip().lower()
    return "jpeg" if name == "jpg" else name


def add_survey_options(p) -> None:
    """``--survey``, ``--layer``, ``--format``: which survey's cutouts, of which layer, as JPEG or
    FITS (checked against the survey by the library, before anything is written)."""
    from galmet.data.surveys import DEFAULT_SURVEY, FORMATS, SURVEYS

    p.add_argument(
        "--survey",
        type=survey_name,
        choices=tuple(SURVEYS),
        default=DEFAULT_SURVEY,
        help=f"imaging survey: {', '.join(SURVEYS)} (default: %(default)s)",
    )
    layers = ", ".join(f"{s.name}: {' '.join(s.layers)}" for s in SURVEYS.values() if s.layers)
    p.add_argument("--layer", type=survey_name, help=f"the survey's image layer, the first by default ({layers})")
    p.add_argument(
        "--format",
        type=format_name,
        choices=FORMATS,
        help="cutout format: jpeg (8-bit colour) or fits (float fluxes, bands x H x W); default: the "
        + "survey's ("
        + ", ".join(f"{s.name} {s.default_format}" for s in SURVEYS.values())
        + ")",
    )


def survey_base_url(args) -> str | None:
    """The service root of ``--survey``: for sdss, :func:`base_url` (``--base-url`` or the
    ``--data-release``'s SkyServer); for another survey ``--base-url``, or None (its own root).

    Raises
    ------
    ConfigError
        ``--data-release`` with another survey than sdss (an SDSS release names a SkyServer).
    """
    from galmet.errors import ConfigError

    survey = getattr(args, "survey", None) or "sdss"
    if survey == "sdss":
        return base_url(args)
    if getattr(args, "data_release", None):
        raise ConfigError(
            f"data_release names an SDSS SkyServer; not with --survey {survey} (use --base-url for its root)",
            param="data_release",
        )
    return getattr(args, "base_url", None)


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


def add_engine_option(p) -> None:
    """``--engine`` (dest ``engine``): how the networks run on a CPU (:mod:`galmet.nn.cpu_engine`)."""
    from galmet.nn.options import ENGINES, InferenceOptions

    p.add_argument(
        "--engine",
        choices=ENGINES,
        default=InferenceOptions().engine,
        help="how the networks run on a CPU: auto (default: openvino when installed, else bf16 on a CPU with "
        "native bfloat16, else eager; GALMET_ENGINE overrides), eager (PyTorch float32, the reference), bf16 "
        "(bfloat16 autocast), openvino (galmet[fast]); a fast path that fails falls back; ignored on CUDA",
    )


def inference_options(args, device):
    """The :class:`~galmet.nn.inference.InferenceOptions` of ``predict``'s parsed options
    (``--no-tta``, ``--tta-mode``, ``--tta-seed``, ``--batch-size``, ``--no-progress``, ``--engine``)
    on ``device``."""
    from galmet.nn.options import InferenceOptions

    return InferenceOptions(
        tta=args.tta,
        tta_mode=args.tta_mode,
        tta_seed=args.tta_seed,
        batch_size=args.batch_size,
        device=str(device),
        progress=False if args.no_progress else None,
        engine=getattr(args, "engine", "auto"),
    )


#: What ``--overwrite`` means on a command that writes files at names it chooses (the default help).
OVERWRITE_HELP = (
    "replace files at the output names that galmet did not write (by default such a file is refused; "
    "galmet's own earlier outputs are replaced without it); nothing else is ever deleted"
)


def add_overwrite_option(p, help: str = OVERWRITE_HELP) -> None:
    """``--overwrite`` (dest ``overwrite``): the one flag by which a user lets a command replace a
    file galmet did not write (see :mod:`galmet.io.ownership`)."""
    p.add_argument("--overwrite", action="store_true", help=help)


def add_other_survey_option(p) -> None:
    """``--allow-other-survey`` (dest ``allow_other_survey``): run a model on another survey's
    images (a transfer experiment); refused by default
    (:meth:`galmet.nn.inference.GalmetModel.check_survey`)."""
    p.add_argument(
        "--allow-other-survey",
        action="store_true",
        help="accept images of another survey, layer, bands or format than the model was trained on "
        "(a transfer experiment): one warning, and every row is flagged OTHER_SURVEY",
    )


#: Options whose value may start with a minus sign that argparse takes for an option (``--dec -34:19:43``).
SIGNED_VALUE_OPTIONS = ("--ra", "--dec")
_SIGNED_VALUE = re.compile(r"-\d")


def attach_signed_values(argv: list[str], options=SIGNED_VALUE_OPTIONS) -> list[str]:
    """``argv`` with ``--dec -34:19:43`` written as ``--dec=-34:19:43`` for each option of ``options``.

    argparse reads a value that starts with ``-`` and is not a plain number as the next option
    ("expected one argument"); a minus sign followed by a digit never starts a galmet option, so
    such a value after one of ``options`` is joined to it (``--`` ends the options, as in argparse).
    """
    out: list[str] = []
    i = 0
    while i < len(argv):
        token = argv[i]
        if token == "--":
            return out + argv[i:]
        nxt = argv[i + 1] if i + 1 < len(argv) else None
        if token in options and nxt is not None and _SIGNED_VALUE.match(nxt):
            out.append(f"{token}={nxt}")
            i += 2
            continue
        out.append(token)
        i += 1
    return out


def add_progress_option(p) -> None:
    p.add_argument(
        "--no-progress",
        action="store_true",
        help="no progress bars (nor the periodic progress lines written when stderr is not a terminal)",
    )


def schema_type(name: str) -> Callable[[str], Any] | None:
    """The argparse ``type`` of the :class:`~galmet.training.config.TrainConfig` field ``name``:
    :func:`integer` or :func:`number` over its range in the schema (``RANGES``); None for a
    field that is not a number (text, choices, booleans)."""
    from galmet.training.config import TrainConfig
    from galmet.training.config_schema import RANGES, Range, field_type

    scalar, _ = field_type(TrainConfig, name)
    rng = RANGES.get(name, Range())
    if scalar is int:
        return integer(
            None if rng.lo is None else int(rng.lo),
            None if rng.hi is None else int(rng.hi),
        )
    if scalar is float:
        return number(rng.lo, rng.hi, open_low=rng.open_low, open_high=rng.open_high)
    return None


@dataclass(frozen=True)
class _TrainingOption:
    """One TrainConfig option: its flag, help (a :meth:`str.format` template over
    :func:`_help_values`) and the field it sets (default: the flag's name); ``negate``: a
    ``--no-X`` switch that sets the boolean field to False. Type, range, choices and ``nargs``
    come from the schema."""

    flag: str
    help: str
    field: str | None = None
    negate: bool = False
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def dest(self) -> str:
        return self.flag[2:].replace("-", "_")

    @property
    def sets(self) -> str:
        return self.field or self.dest


_MODEL_OPTIONS = (
    _TrainingOption(
        "--target",
        "catalog column to regress; repeat for several (default: {d[targets]})",
        field="targets",
        extra={"action": "append", "metavar": "COLUMN"},
    ),
    _TrainingOption("--arch", "ResNet body (default: {d[arch]})"),
    _TrainingOption(
        "--weights", "initial body weights (default: {d[weights]})", extra={"metavar": "imagenet|none|PATH"}
    ),
    _TrainingOption("--batch-size", "global batch size (default {paper[batch_size]}; notebook {notebook[batch_size]})"),
    _TrainingOption(
        "--weight-decay",
        "weight decay, decoupled for AdamW (default {paper[weight_decay]}; notebook {notebook[weight_decay]})",
    ),
    _TrainingOption("--size", "required image size in pixels (default: the dataset's)"),
    _TrainingOption(
        "--crop",
        "train and predict on the central N x N pixels (default: the whole image)",
        extra={"metavar": "N"},
    ),
    _TrainingOption("--seed", "random seed, 0 to 2**32-1 (default {d[seed]})"),
    _TrainingOption("--skip-bad", "drop bad rows instead of failing", extra={"action": "store_true", "default": None}),
)

_RECIPE_OPTIONS = (
    _TrainingOption(
        "--recipe",
        "paper (default: the paper's text), notebook (the authors' released code) or onecycle (from scratch)",
    ),
    _TrainingOption(
        "--epochs",
        "total epochs (paper: fixed by --frozen-epochs/--cycles = {paper_epochs}; onecycle: {onecycle_epochs})",
    ),
    _TrainingOption("--frozen-epochs", "paper: epochs with the body frozen (default {d[frozen_epochs]})"),
    _TrainingOption("--cycles", "paper: SGDR cycle lengths in epochs (default {d[cycles]})", extra={"metavar": "N"}),
    _TrainingOption(
        "--lr",
        "max lr: 1 value for every layer group or 3 (paper default {paper_lr}; onecycle {onecycle_lr})",
        extra={"metavar": "LR"},
    ),
    _TrainingOption("--frozen-lr", "paper, notebook: lr of the frozen epochs (default {d[frozen_lr]})"),
    _TrainingOption(
        "--optimizer",
        "optimizer (default: {paper[optimizer]}; notebook: {notebook[optimizer]}, momentum {d[momentum]})",
    ),
    _TrainingOption("--momentum", "SGD momentum (default {d[momentum]}, fastai 0.7's)"),
    _TrainingOption(
        "--sgdr-warmup",
        "hold lr/100 for this fraction of a fit's first SGDR cycle, as fastai 0.7 "
        "(default {paper[sgdr_warmup]}; notebook {notebook[sgdr_warmup]})",
        extra={"metavar": "FRACTION"},
    ),
    _TrainingOption("--max-zoom", "random zoom up to this factor, then crop (default {d[max_zoom]}; 1 = off)"),
    _TrainingOption(
        "--no-dihedral", "no random rotations/flips", field="dihedral", negate=True, extra={"action": "store_true"}
    ),
    _TrainingOption(
        "--rotate",
        "random rotation up to DEG degrees, p 0.75 (fastai 0.7; default {paper[rotate]}, onecycle "
        "{onecycle[rotate]}; 0 = off)",
        extra={"metavar": "DEG"},
    ),
    _TrainingOption(
        "--lighting",
        "random brightness and contrast change up to X (fastai 0.7; default {paper[lighting]}, onecycle "
        "{onecycle[lighting]}; 0 = off)",
        extra={"metavar": "X"},
    ),
    _TrainingOption(
        "--no-standardize",
        "train on raw target values (not (y-mean)/std)",
        field="standardize_targets",
        negate=True,
        extra={"action": "store_true"},
    ),
    _TrainingOption(
        "--loss",
        "rmse (the paper's head, default) or gaussian (a mean and a log-variance per target, beta-NLL)",
    ),
    _TrainingOption("--beta", "gaussian loss: the beta of beta-NLL, {beta_range} (default {d[beta]})"),
    _TrainingOption(
        "--valid-fraction", "fraction of train rows made 'valid' when the catalog has none ({d[valid_fraction]})"
    ),
    _TrainingOption("--split-seed", "seed of that split (default {d[split_seed]})"),
    _TrainingOption("--workers", "DataLoader workers when images are read from the memory map (default {d[workers]})"),
    _TrainingOption("--compile", "torch.compile the model", extra={"action": "store_true", "default": None}),
    _TrainingOption("--no-amp", "no bf16 autocast on CUDA", field="amp", negate=True, extra={"action": "store_true"}),
)

#: CLI option (argparse dest) -> TrainConfig field, for options whose value is copied as is.
TRAINING_FIELDS = {o.dest: o.sets for o in (*_MODEL_OPTIONS, *_RECIPE_OPTIONS) if not o.negate} | {"device": "device"}
#: ``--no-X`` switches (argparse dest) -> the TrainConfig field they turn off.
NEGATED_FIELDS = {o.dest: o.sets for o in (*_MODEL_OPTIONS, *_RECIPE_OPTIONS) if o.negate} | {"no_progress": "progress"}


def _shown(value: Any) -> str:
    """A default as --help shows it: lists space-separated, floats as ``%g``."""
    if isinstance(value, (list, tuple)):
        return " ".join(_shown(v) for v in value)
    return f"{value:g}" if isinstance(value, float) else str(value)


def _lr_shown(value: float) -> str:
    """A learning rate as --help shows it: ``1e-3``, ``3e-3`` (one digit times a power of ten
    below 0.1), else ``%g``."""
    exponent = math.floor(math.log10(value))
    digit = value / 10.0**exponent
    if value < 0.1 and math.isclose(digit, round(digit)):
        return f"{round(digit)}e{exponent}"
    return f"{value:g}"


def _help_values() -> dict[str, Any]:
    """What the training options' help templates name: ``d`` (TrainConfig's defaults), the
    recipes' values (``paper``, ``notebook``, ``onecycle``) and a few derived ones."""
    from galmet.training import config as cfg
    from galmet.training.config_schema import RANGES

    d = cfg.TrainConfig()
    beta = RANGES["beta"]
    return {
        "d": {f.name: _shown(getattr(d, f.name)) for f in dataclasses.fields(d)},
        **{name: {k: _shown(v) for k, v in values.items()} for name, values in cfg.RECIPE_DEFAULTS.items()},
        "paper_epochs": d.frozen_epochs + sum(d.cycles),
        "onecycle_epochs": cfg.ONECYCLE_EPOCHS,
        "paper_lr": " ".join(map(_lr_shown, cfg.PAPER_LRS)),
        "onecycle_lr": _lr_shown(cfg.ONECYCLE_LR),
        "beta_range": f"{_shown(beta.lo)} to {_shown(beta.hi)}",
    }


def _add_training_option(group, option: _TrainingOption, shown: dict[str, Any]) -> None:
    """Declare ``option`` in ``group``: choices, number type and ``nargs`` from the schema."""
    from galmet.training.config import TrainConfig
    from galmet.training.config_schema import CHOICES, field_type

    kwargs = dict(option.extra)
    if not option.negate:
        scalar, is_list = field_type(TrainConfig, option.sets)
        if option.sets in CHOICES:
            kwargs.setdefault("choices", CHOICES[option.sets])
        elif schema_type(option.sets) is not None:
            kwargs.setdefault("type", schema_type(option.sets))
            if is_list:
                kwargs.setdefault("nargs", "+")
    group.add_argument(option.flag, help=option.help.format(**shown), **kwargs)


def add_training_options(p, schedule: bool = True) -> None:
    """TrainConfig options, all defaulting to "keep the config's value" (None).

    Parameters
    ----------
    schedule : bool
        Also the recipe and schedule options (recipe, epochs, cycles, lrs, augmentation, split,
        runtime): ``train`` and ``resolution-study`` want them, ``lr-find`` does not.
    """
    shown = _help_values()
    p.add_argument("--config", metavar="YAML", help="start from a saved config.yaml (options below override it)")
    g = p.add_argument_group("model and data")
    for option in _MODEL_OPTIONS:
        _add_training_option(g, option, shown)
    add_device_option(g, None, "where to train")
    add_progress_option(g)
    if schedule:
        s = p.add_argument_group("recipe")
        for option in _RECIPE_OPTIONS:
            _add_training_option(s, option, shown)


def config_from_args(args, base=None):
    """(TrainConfig, changes): ``base`` (default: ``--config`` or the paper's defaults) with the
    options that were given; ``changes`` maps the changed fields to their values."""
    from galmet.training.config import TrainConfig, load_config

    if base is None:
        base = load_config(args.config) if getattr(args, "config", None) else TrainConfig()
    changes = {
        field: getattr(args, opt) for opt, field in TRAINING_FIELDS.items() if getattr(args, opt, None) is not None
    }
    for flag, field in NEGATED_FIELDS.items():
        if getattr(args, flag, False):
            changes[field] = False
    return dataclasses.replace(base, **changes), changes
