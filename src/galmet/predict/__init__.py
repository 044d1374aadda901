"""galmet.predict: a model applied to a dataset or to sky positions.

The public API (each name imported on first use)::

    predict_dataset(model, dataset)           # the predictions table (pandas) of a dataset
    predictions_table(dataset, pred, ...)     # that table from predictions made elsewhere
    flag_rows(table, model, images)           # the ``flags`` (and ``ood_score``) columns
    predict_positions(model, coords, out=...) # predictions at sky positions as an astropy QTable (written)
    PositionsSummary                          # what a positions run did (predict_positions(summary=...))
    default_work_dir(out)                     # the resumable work folder of a run writing ``out``
    positions_table(positions, results, ...)  # the positions QTable (units, provenance)
    write_positions_table(table, path)        # such a table written by suffix, units kept

Modules: :mod:`.dataset`, :mod:`.flags`, :mod:`.positions` (the resumable job), :mod:`.output`.
"""

from galmet._lazy import lazy_exports

_NAMES = {
    "predict_dataset": "galmet.predict.dataset",
    "predictions_table": "galmet.predict.dataset",
    "flag_rows": "galmet.predict.flags",
    "predict_positions": "galmet.predict.positions",
    "PositionsSummary": "galmet.predict.positions",
    "default_work_dir": "galmet.predict.positions",
    "positions_table": "galmet.predict.output",
    "write_positions_table": "galmet.predict.output",
}
__all__ = list(_NAMES)
__getattr__, __dir__ = lazy_exports(__name__, _NAMES)
