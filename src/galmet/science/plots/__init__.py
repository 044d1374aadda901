r"""The paper's figures, one module each: tables/arrays in, a matplotlib Figure out.

Each figure is a Display class in the style of scikit-learn's ``PredictionErrorDisplay``: a
classmethod (``from_predictions``, ``from_table``, ...) computes what is drawn with the compute
layer (:mod:`galmet.science.stats`, :mod:`galmet.science.metrics`, :mod:`galmet.science.mzr`)
and returns the Display, which stores it; ``plot(ax=None)`` (``fig=None`` for multi-panel
figures) draws it, sets ``ax_`` / ``axes_`` and ``figure_`` and returns the Display. The
``plot_*`` functions are one-line wrappers that return the Figure. matplotlib is imported only
when something is drawn; figures are :class:`matplotlib.figure.Figure` objects (no pyplot).

=====  =============================  ===========================  ==================================================
Fig    module                         Display                      shows
=====  =============================  ===========================  ==================================================
1      :mod:`.image_grid`             :class:`ImageGridDisplay`    thumbnails: lowest/highest predicted and true,
                                                                   most under/over-predicted, random
2      :mod:`.histograms`             :class:`HistogramsDisplay`   Z_true and Z_pred histograms, Freedman-Diaconis bins
3      :mod:`.pred_vs_true`           :class:`PredVsTrueDisplay`   2D histogram, running median, RMSE/NMAD bands,
                                                                   residual inset, binned RMSE/NMAD panel
4      :mod:`.resolution`             :class:`ResolutionDisplay`   RMSE, NMAD against image size; baselines
5      :mod:`.mass`                   :class:`MassDisplay`         predicted vs true mass; Z_MZR vs Z_true
6      :mod:`.mzr`                    :class:`MZRDisplay`          Z_pred vs true mass against Tremonti's MZR
\-     :mod:`.lr_find`                :class:`LRFindDisplay`       loss against learning rate (``galmet lr-find``)
\-     :mod:`.mosaic`                 :class:`MosaicDisplay`       labelled thumbnails (``galmet demo``)
\-     :mod:`.history`                :class:`HistoryDisplay`      train / valid RMSE per epoch (``galmet report``)
=====  =============================  ===========================  ==================================================

The shared look, the drawing helpers and :func:`~galmet.science.plots.style.save_figure` are
in :mod:`.style`; where legends and insets go (where the galaxies are not) and axis limits from
the data's own range in :mod:`.placement`.
"""
