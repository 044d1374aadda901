"""galmet.runs: one module per command that crosses stages (read inputs, compute, draw, write files).

A run joins the stages below it -- data, nn, training, predict, science -- into what one command
does (``galmet demo``, ``figures``, ``resolution-study``, ``train --folds`` through
:mod:`galmet.runs.crossval`, ...). The CLI parses arguments and calls one function here.
"""
