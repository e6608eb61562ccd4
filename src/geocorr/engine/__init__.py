"""Run a stage's per-item work on this process or a Ray cluster, identically.

Every per-item stage (stage 1 per image, feature encoding per image,
pseudo-labelling per pair, prediction per pair) is a pure function
``fn(state, item) -> result``, where ``state`` is built once per worker by a
``setup()`` (a model, a backbone, an estimator). An :class:`Engine` maps it
over items and yields ``(item, result or ItemFailure)`` as items complete (out
of order on Ray); the driver alone writes what must have one writer (the label
store) and the result equals a local run's.

- :class:`~geocorr.engine.local.LocalEngine`: in this process, in order.
- :class:`~geocorr.engine.ray_engine.RayEngine`: Ray tasks over chunks of items
  (CPU stages), or actors that run ``setup`` once and take chunks (model
  stages); a worker that dies is retried by Ray, a bounded number of times.
"""

from geocorr.engine.base import (
    Engine,
    EngineSettings,
    ItemFailure,
    WorkerLostError,
    chunk_items,
    make_engine,
    ready_state,
    run_chunk,
)

__all__ = ["Engine", "EngineSettings", "ItemFailure", "WorkerLostError", "chunk_items",
           "ready_state",
           "make_engine", "run_chunk"]
