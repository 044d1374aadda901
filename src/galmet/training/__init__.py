"""galmet.training: the paper's CNN trained on a dataset directory.

The public API (each name imported on first use, so ``import galmet.training.config`` stays
cheap and does not import torch)::

    TrainConfig(recipe="paper", ...)       # every setting of a run, with the paper's defaults
    load_config(path) / save_config(c, p)  # a config as YAML
    train(dataset, out, config)            # train and write the run folder -> TrainResult
    TrainResult                            # the bundle path, history and valid RMSEs of a run
    LRFindResult                           # what galmet.training.lr_find.lr_find returns

(The learning-rate range test itself is :func:`galmet.training.lr_find.lr_find`: its name is
its module's, so it is not exported here, where it would hide the module.)

Modules: :mod:`.config` (and its schema :mod:`.config_schema`), :mod:`.loop`, :mod:`.recipes`,
:mod:`.data`, :mod:`.lr_find`, :mod:`.rundir`, :mod:`.checkpoint`, :mod:`.distributed`,
:mod:`.losses`.
"""

from galmet._lazy import lazy_exports

_NAMES = {
    "TrainConfig": "galmet.training.config",
    "load_config": "galmet.training.config",
    "save_config": "galmet.training.config",
    "train": "galmet.training.loop",
    "TrainResult": "galmet.training.loop",
    "LRFindResult": "galmet.training.lr_find",
}
__all__ = list(_NAMES)
__getattr__, __dir__ = lazy_exports(__name__, _NAMES)
