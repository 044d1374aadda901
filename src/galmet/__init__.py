"""galmet: gas-phase metallicity of galaxies from three-colour SDSS images.

A reproduction, as installable software, of Wu & Boada (2019, MNRAS 484, 4683): a ResNet
regresses Z = 12 + log(O/H) from 128x128 gri JPEG cutouts.

The public API::

    galmet.load_dataset(path)              # a validated dataset directory or image folder
    galmet.load_dataset(coords, cutouts=DIR) # or one fetched at sky positions (SkyCoord, Table, DataFrame)
    galmet.train(dataset, out_dir, config)  # train a model (the paper's recipe by default)
    galmet.load_model("RUN/model.pt")      # a trained model bundle; .predict(images)
    galmet.predict_dataset(model, dataset) # the predictions table
    galmet.fetch_cutout(ra, dec)           # one SDSS cutout as uint8 (128, 128, 3); or fetch_cutout(skycoord)
    galmet.fetch_cutout(ra, dec, survey="legacy", format="fits") # float32 (3, 128, 128) grz nanomaggies
    galmet.predict_positions(model, coords) # predictions at sky positions (SkyCoord, Table, DataFrame) as a QTable
    galmet.predict_positions(model, coords, out="pred.fits") # ... written (units, provenance), then cleaned up
    galmet.write_positions_table(table, "pred.ecsv") # such a table written by suffix
    galmet.predict_catalog(model, "big.parquet", "pred.parquet") # a catalogue of any size, on Dask (or shard=(I, N))
    galmet.TrainConfig(epochs=5)           # the training settings train() takes
    galmet.synthesize("data/s", n=1000, survey="legacy") # synthetic galaxies as a survey images them

Each name is imported on first use, so ``import galmet`` stays cheap and pulls in neither torch
nor astropy; everything else lives in the stage packages (see docs/architecture.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from galmet._lazy import lazy_exports
from galmet._version import __version__
from galmet.errors import ConfigError, DataError, GalmetError

if TYPE_CHECKING:
    from galmet.catalog.run import predict_catalog as predict_catalog
    from galmet.nn.bundle import load_model as load_model
    from galmet.predict.dataset import predict_dataset as predict_dataset
    from galmet.predict.output import write_positions_table as write_positions_table
    from galmet.predict.positions import predict_positions as predict_positions
    from galmet.sdss.at_positions import load_dataset as load_dataset
    from galmet.sdss.sources import fetch_cutout as fetch_cutout
    from galmet.synthetic.render import synthesize as synthesize
    from galmet.training.config import TrainConfig as TrainConfig
    from galmet.training.loop import train as train

#: Public name -> module that defines it.
_LAZY = {
    "load_dataset": "galmet.sdss.at_positions",
    "load_model": "galmet.nn.bundle",
    "predict_dataset": "galmet.predict.dataset",
    "predict_positions": "galmet.predict.positions",
    "predict_catalog": "galmet.catalog.run",
    "write_positions_table": "galmet.predict.output",
    "train": "galmet.training.loop",
    "TrainConfig": "galmet.training.config",
    "fetch_cutout": "galmet.sdss.sources",
    "synthesize": "galmet.synthetic.render",
}

__all__ = ["ConfigError", "DataError", "GalmetError", "__version__", *_LAZY]
__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
