"""``galmet embed``: the penultimate-layer embeddings of a dataset's images, as a table.

One row per image (and per member with ``member="all"``): the row identity, ``split``, the
truth and pass-through columns, ``ood_score`` (when the bundle has embedding statistics),
``flags`` (:class:`galmet.columns.Flag` bits, as in a predictions table: ``EMBEDDING_OUT_OF_DOMAIN``
where ``ood_score`` > 1, ``OTHER_SURVEY`` on every row of a transfer run, ``allow_other_survey``)
and ``emb_000`` ... ``emb_511`` (float32), the 512 features the head's last linear layer reads.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from galmet.columns import FILE, FLAGS, OBJID, OOD_SCORE, PASSTHROUGH, SPLIT, check_value
from galmet.data.dataset import load_dataset
from galmet.errors import ConfigError, DataError
from galmet.io.safety import check_output_file, inputs_of
from galmet.io.tables import check_fits_out, require_table_format, table_provenance, write_table
from galmet.nn.bundle import load_model
from galmet.nn.embedding import ood_ratio
from galmet.predict.flags import embedding_bits, other_survey_bits
from galmet.registry.resolve import model_input


def embedding_table(
    model_path,
    dataset,
    out: str | os.PathLike | None = None,
    member: int | str = 0,
    split: list[str] | None = None,
    batch_size: int = 256,
    device: str = "auto",
    skip_bad: bool = False,
    overwrite: bool = False,
    allow_other_survey: bool = False,
) -> pd.DataFrame:
    """Embed every image of ``dataset`` (optionally only ``split`` rows) and return (and write) the table.

    Parameters
    ----------
    member : int or "all"
        Which member of an ensemble (embeddings of different members live in different spaces);
        ``"all"`` stacks every member with a ``member`` column.
    out : path-like, optional
        .parquet, .csv or .fits (written atomically).
    overwrite : bool
        Replace an existing ``out`` that galmet did not write.
    allow_other_survey : bool
        Embed another survey's images (a transfer experiment; refused by default:
        :meth:`galmet.nn.inference.GalmetModel.check_survey`): one warning, every row's ``flags``
        has ``OTHER_SURVEY`` (in every table format), and the table's ``attrs["other_survey"]``
        (and its provenance) says what differs.
    """
    kind = require_table_format(out, param="out").kind if out is not None else None
    if batch_size < 1:
        raise ConfigError(f"batch_size must be at least 1, got {batch_size}", param="batch_size")
    if out is not None:
        inputs = [model_input(model_path), *inputs_of(dataset, "the dataset")]
        check_output_file(out, "out", kind or "csv", "embeddings table", inputs, overwrite=overwrite)
    model = load_model(model_path)
    members = list(range(len(model.nets)))
    if member != "all":
        try:
            k = int(member)
        except ValueError:
            raise ConfigError(f"member must be an integer or 'all', got {member!r}", param="member") from None
        if not 0 <= k < len(members):
            raise ConfigError(
                f"member {k}: the model has {len(members)} member(s) (0 to {len(members) - 1})", param="member"
            )
        members = [k]
    other = model.check_dataset_imaging(dataset, allow_other_survey=allow_other_survey)
    ds = load_dataset(
        dataset,
        targets=[],
        on_error="skip" if skip_bad else "raise",
        size=model.image_size,
        stretch=model.imaging.stretch,  # FITS fluxes: the model's own stretch
    )
    if split:
        rows = ds.split_indices(split)
        if len(rows) == 0:
            raise DataError(f"{dataset}: no rows in split {', '.join(split)}")
        ds = ds.subset(rows)
    carried = [c for c in (FILE, SPLIT) if c in ds.catalog.columns and (c != FILE or OBJID not in ds.catalog.columns)]
    check_fits_out(out, {c: ds.catalog[c].astype(str).to_numpy() for c in carried}, f"{dataset}")
    emb = model.embed(ds.images(), batch_size=batch_size, device=device)
    refs = model.embedding_references()
    score = ood_ratio(refs, emb) if refs is not None else None
    cat = ds.catalog
    base = pd.DataFrame(index=range(len(cat)))
    if OBJID in cat.columns:
        base[OBJID] = cat[OBJID].to_numpy(dtype=np.int64)
    else:
        base[FILE] = [str(p.relative_to(ds.root)) if p.is_relative_to(ds.root) else str(p) for p in ds.paths]
    if SPLIT in cat.columns:
        base[SPLIT] = cat[SPLIT].astype(str).to_numpy()
    for col in (*model.targets, *PASSTHROUGH):
        if col in cat.columns and col not in base.columns:
            base[col] = cat[col].to_numpy()
    if score is not None:
        base[OOD_SCORE] = score
    base[FLAGS], checks = row_flags(len(base), score, other)
    parts = []
    for k in members:
        feats = pd.DataFrame(emb[k], columns=[f"emb_{i:03d}" for i in range(emb.shape[2])])
        part = pd.concat([base, feats], axis=1)
        if member == "all":
            part.insert(1, "member", k)
        parts.append(part)
    table = pd.concat(parts, ignore_index=True)
    table.attrs["flag_checks"] = checks
    if other is not None:
        table.attrs["other_survey"] = other
    if out is not None:
        provenance = table_provenance(model=model.path) if model.path else None
        if provenance is not None:
            provenance.update({"flag_checks": ",".join(checks), **({"other_survey": other} if other else {})})
        write_table(table, out, provenance=provenance)
    return table


def row_flags(n: int, score: np.ndarray | None, other: str | None) -> tuple[np.ndarray, list[str]]:
    """(int64 (n,) :class:`galmet.columns.Flag` bits, names of the checks that ran) of an embeddings
    table: ``EMBEDDING_OUT_OF_DOMAIN`` where ``score`` (``ood_score``) > 1, ``OTHER_SURVEY`` on
    every row when ``other`` (the transfer run's description, :meth:`GalmetModel.check_survey`)."""
    ood, ood_checks = embedding_bits(n, score)
    survey, survey_checks = other_survey_bits(n, True if other is not None else None)
    return ood | survey, sorted(ood_checks + survey_checks, key=check_value)
