"""Prediction over a partitioned catalogue, on this machine or a Dask cluster.

:func:`galmet.catalog.run.predict_catalog` (also ``galmet.predict_catalog``) maps one task per
partition of a catalogue (a table file, a parquet dataset, a HATS catalogue, or a table in memory)
onto an embedded local Dask cluster, a running ``dask.distributed`` scheduler, or, without Dask,
the slice ``shard=(I, N)`` of a job array. Modules, top down:

- :mod:`~galmet.catalog.run`: the public function: checks, plan, execution, assembly.
- :mod:`~galmet.catalog.execute`: where the tasks run (in process, local cluster, scheduler).
- :mod:`~galmet.catalog.assemble`: the output table from the finished partitions.
- :mod:`~galmet.catalog.task`: one partition (a resumable positions run of its own).
- :mod:`~galmet.catalog.source`: the input, read and written a partition at a time.
- :mod:`~galmet.catalog.work`: the work folder: names, settings, sidecars.
"""
