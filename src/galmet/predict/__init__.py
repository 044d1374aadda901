"""galmet.predict: a model applied to a dataset or to sky positions.

The public API (each name imported on first use)::

    predict_dataset(model, dataset)           # the predictions table (pandas) of a dataset
    predictions_table(dataset, pred, ...)     # that table from predictions made elsewhere
    flag_rows(model, images, table)           # the ``flags`` (and ``ood_score``) columns
    predict_positions(model, coords, out=...) # predictions at sky positions as an astropy QTable
    write_positions_table(table, path)        # such a table written by suffix, units kept

Modules: :mod:`.dataset`, :mod:`.positions`.
"""

from galmet._lazy import lazy_exports

_NAMES = {
    "predict_dataset": "galmet.predict.dataset",
    "predictions_table": "galmet.predict.dataset",
    "flag_rows": "galmet.predict.dataset",
    "predict_positions": "galmet.predict.positions",
    "write_positions_table": "galmet.predict.positions",
}
__all__ = list(_NAMES)
__getattr__, __dir__ = lazy_exports(__name__, _NAMES)
