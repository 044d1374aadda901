"""``galmet models``: the named models (list, show a card, pack a bundle as a model folder)."""

from __future__ import annotations

NAME = "models"
ORDER = 48
HELP = "list the named models, show a model card, or pack a bundle and its card as a model folder"
DESCRIPTION = """\
A model's name can stand wherever a bundle path is accepted (predict, embed, explain,
calibrate, ensemble, galmet.load_model): an existing path wins, else the name is looked up.
Named models are the folders shipped in the package, and the entries of registry files
(GALMET_MODEL_REGISTRY, and the package's own): a local path, or a URL downloaded once into
the cache and checked against its sha256. See docs/models.md.

  galmet models                    a table: name, version, kind, survey/bands, test RMSE, where
  galmet models --json             the same as a JSON list (each with its card)
  galmet models show NAME          the model card (NAME: a model name, or a model folder)
  galmet models pack BUNDLE --card CARD.json --out DIR [--half]
                                   DIR/model.pt + DIR/card.json (weights' sha256 and size filled
                                   in) + DIR/entry.json (the registry entry to publish the
                                   weights at a URL; its url a placeholder)

Example:
  galmet models pack runs/sdss/model.pt --card card.json --out models/sdss400 --half
  galmet predict sdss400 --ra 150.1 --dec 2.2 --out pred.csv
"""


def add_arguments(p) -> None:
    p.add_argument("action", nargs="?", choices=("list", "show", "pack"), default="list", help="default: list")
    p.add_argument("target", nargs="?", metavar="NAME|BUNDLE", help="show: a model name or folder; pack: the bundle")
    p.add_argument("--json", action="store_true", help="list: print JSON instead of a table")
    p.add_argument("--card", help="pack: the model card (JSON) to fill in")
    p.add_argument("--out", help="pack: the model folder to write (model.pt, card.json)")
    p.add_argument("--half", action="store_true", help="pack: store the weights as float16 (half the bytes)")
    from galmet.cli.options import add_overwrite_option

    add_overwrite_option(p)


def _check_options(args) -> None:
    from galmet.errors import ConfigError

    pack = {"--card": args.card is not None, "--out": args.out is not None, "--half": args.half}
    pack["--overwrite"] = args.overwrite
    if args.action != "pack":
        given = [flag for flag, on in pack.items() if on]
        if given:
            raise ConfigError(f"{given[0]} applies to 'galmet models pack' only")
    if args.action != "list" and args.json:
        raise ConfigError("--json applies to 'galmet models' (the list) only")
    if args.action == "list" and args.target is not None:
        raise ConfigError(f"{args.target}: 'galmet models' takes no argument (did you mean 'galmet models show'?)")
    if args.action in ("show", "pack") and args.target is None:
        raise ConfigError(
            f"galmet models {args.action}: give the {'model name' if args.action == 'show' else 'bundle'}"
        )
    if args.action == "pack" and (args.card is None or args.out is None):
        raise ConfigError("galmet models pack: give --card CARD.json and --out DIR")


def run(args) -> int:
    _check_options(args)
    if args.action == "list":
        return _list(args.json)
    if args.action == "show":
        return _show(args.target)
    return _pack(args)


def _row(entry) -> list[str]:
    card = entry.card
    survey = f"{card.survey} {card.imaging['bands']}" if card else "-"
    rmse = f"{card.metrics['rmse']:.3f}" if card else "-"
    return [entry.name, entry.version or "-", entry.kind, survey, rmse, entry.location]


def _list(as_json: bool) -> int:
    import json

    from galmet.registry.entries import all_entries
    from galmet.registry.fetch import cached_path, is_cached

    found = all_entries()
    if as_json:
        rows = [e.describe() | ({"cached": str(cached_path(e)) if is_cached(e) else None} if e.kind == "url" else {})
                for e in found]  # fmt: skip
        print(json.dumps(rows, indent=2))
        return 0
    if not found:
        print("no named models (see docs/models.md to add one)")
        return 0
    table = [["name", "version", "kind", "survey/bands", "test RMSE", "where"], *map(_row, found)]
    widths = [max(len(r[i]) for r in table) for i in range(5)]
    for r in table:
        print("  ".join(c.ljust(w) for c, w in zip(r[:5], widths, strict=True)) + "  " + r[5])
    return 0


def _show(name: str) -> int:
    from pathlib import Path

    from galmet.registry.entries import ModelEntry, card_at
    from galmet.registry.resolve import find_entry, unknown_model

    entry: ModelEntry | None = find_entry(name)
    if entry is None and Path(name).exists():  # a model folder, a card file, or a bundle beside its card
        card = card_at(name)
        print(card.render() if card else f"{name}: no model card (a card.json naming it)\n", end="")
        return 0
    if entry is None:
        raise unknown_model(name)
    if entry.card is None:
        print(f"{entry.name} {entry.version or ''}: no model card ({entry.kind}: {entry.location})")
        return 0
    print(entry.card.render(), end="")
    print(f"  where         {entry.kind}: {entry.location}")
    return 0


def _pack(args) -> int:
    import json

    from galmet.runs.pack import pack_model, url_entry

    packed = pack_model(args.target, args.card, args.out, half=args.half, overwrite=args.overwrite)
    weights = packed.card.weights
    dtype = "float16" if args.half else "as trained"
    print(f"wrote {packed.folder}: {weights['file']} ({weights['size']} bytes, {dtype}, sha256 {weights['sha256']})")
    print(f"{packed.folder / 'entry.json'}: the registry entry to publish it (put model.pt at a URL, set url,")
    print("add the entry to a registry file's list):")
    print(json.dumps(url_entry(packed.card), indent=2))
    return 0
