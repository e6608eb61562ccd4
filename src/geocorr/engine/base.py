"""The engine interface, its settings, and the per-chunk loop both engines share."""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal, Protocol

__all__ = ["EngineSettings", "ItemFailure", "WorkerLostError", "Engine", "run_chunk", "ready_state",
           "chunk_items", "make_engine", "ITEM_ERRORS"]

ITEM_ERRORS: tuple[type[BaseException], ...] = (ValueError, FileNotFoundError)
"""Errors that fail one item, not the run: bad input of that item (a malformed mesh
or mask, a missing image). Other errors (a full disk, a bug) stop the run."""


@dataclass(frozen=True)
class EngineSettings:
    """Where and how per-item work runs.

    Attributes:
        engine: ``"local"`` (this process, in order) or ``"ray"``.
        address: Ray cluster to connect to (``"auto"``, ``"ray://host:10001"``,
            ``"host:6379"``); ``None`` connects to the Ray instance this process
            already initialised, else starts a local one with every core.
        workers: concurrent workers (Ray tasks in flight, or actors); ``None``:
            as many as the cluster's CPUs (GPUs when ``num_gpus_per_worker > 0``)
            allow.
        num_cpus_per_worker: CPUs Ray reserves per task or actor.
        num_gpus_per_worker: GPUs Ray reserves per task or actor (fractions share one).
        chunk_size: items per Ray task / actor call; ``None``: the items split in
            about 4 chunks per worker (fewer round trips than one item per task,
            and the stragglers at the end stay short).
        max_retries: times Ray reruns a task or restarts an actor whose worker
            process died before the run fails with :class:`WorkerLostError`.
        actors: where stateful work (a loaded model) runs on Ray: ``True`` actors,
            ``False`` tasks (each worker process keeps the state for the run's
            later chunks, as an actor would), ``None`` (default) actors exactly
            when workers hold GPUs. On CPUs tasks reuse Ray's already started
            worker processes, while actors start new ones for every run
            (``benchmarks/results/scale.md``).
    """

    engine: Literal["local", "ray"] = "local"
    address: str | None = None
    workers: int | None = None
    num_cpus_per_worker: float = 1.0
    num_gpus_per_worker: float = 0.0
    chunk_size: int | None = None
    max_retries: int = 3
    actors: bool | None = None

    def __post_init__(self) -> None:
        if self.engine not in ("local", "ray"):
            raise ValueError(f"engine must be local or ray, got {self.engine!r}")
        if self.workers is not None and self.workers < 1:
            raise ValueError(f"workers must be >= 1, got {self.workers}")
        if self.num_cpus_per_worker < 0 or self.num_gpus_per_worker < 0:
            raise ValueError("num_cpus_per_worker and num_gpus_per_worker must be >= 0")
        if self.chunk_size is not None and self.chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {self.chunk_size}")
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {self.max_retries}")


@dataclass(frozen=True, eq=False)
class ItemFailure:
    """An item whose function raised one of the item errors (:data:`ITEM_ERRORS`).

    Attributes:
        item: the item.
        error: the exception it raised (re-raisable by the driver).
    """

    item: Any
    error: BaseException

    @property
    def message(self) -> str:
        """``ExceptionType: message`` on one line."""
        return f"{type(self.error).__name__}: {' '.join(str(self.error).splitlines())}"


class WorkerLostError(OSError):
    """A worker process died on the same items more often than the retries allow."""


class Engine(Protocol):
    """Maps a per-item function over items (see the package doc)."""

    settings: EngineSettings

    def map_items(self, fn: Callable[[Any, Any], Any], items: Sequence[Any], *,
                  setup: Callable[[], Any] | None = None, stateful: bool = False,
                  locality: bool = False, group: Callable[[Any], Hashable] | None = None,
                  errors: tuple[type[BaseException], ...] = ITEM_ERRORS,
                  label: Callable[[Any], str] = str) -> Iterator[tuple[Any, Any]]:
        """Yield ``(item, fn(state, item) or ItemFailure)`` for every item, as they complete.

        Args:
            fn: ``fn(state, item) -> result``; pure apart from atomic per-item files.
            items: the items (picklable for Ray).
            setup: ``() -> state``, run once per worker (``None``: state is ``None``).
            stateful: ``state`` is a loaded model: on Ray, run in actors that keep
                it (see ``EngineSettings.actors``).
            locality: neighbouring items share expensive inputs (a category's
                images): on Ray, each worker takes a contiguous block of chunks
                (actors, unless ``EngineSettings.actors`` is ``False``).
            group: items with different ``group(item)`` never share a chunk
                (e.g. the category, so a chunk reuses its images' inputs).
            errors: exception types recorded as :class:`ItemFailure` instead of
                stopping the run.
            label: names an item in errors (Ray: a worker lost on it).
        """
        ...

    def close(self) -> None:
        """Release the engine's resources."""
        ...


def run_chunk(state: Any, fn: Callable[[Any, Any], Any], chunk: Sequence[Any],
              errors: tuple[type[BaseException], ...]) -> list[Any]:
    """``fn(state, item)`` for each item of a chunk, item errors as :class:`ItemFailure`."""
    out = []
    for item in chunk:
        try:
            out.append(fn(state, item))
        except errors as exc:
            out.append(ItemFailure(item, exc))
    return out


def chunk_items(items: Sequence[Any], size: int,
                group: Callable[[Any], Hashable] | None = None) -> list[list[Any]]:
    """Consecutive chunks of at most ``size`` items, never mixing two groups.

    Example: ``chunk_items([a1, a2, a3, b1], 2, group=first letter)`` ->
    ``[[a1, a2], [a3], [b1]]``.
    """
    if size < 1:
        raise ValueError(f"chunk size must be >= 1, got {size}")
    chunks: list[list[Any]] = []
    last: Any = object()
    for item in items:
        g = group(item) if group is not None else None
        if not chunks or len(chunks[-1]) >= size or g != last:
            chunks.append([])
        chunks[-1].append(item)
        last = g
    return chunks


def default_chunk_size(n_items: int, workers: int, chunk_size: int | None) -> int:
    """``chunk_size`` or about 4 chunks per worker."""
    if chunk_size is not None:
        return chunk_size
    return max(1, math.ceil(n_items / (4 * max(1, workers))))


def make_engine(settings: EngineSettings | None = None) -> Engine:
    """The engine ``settings.engine`` names (Ray is imported here, on first use).

    Raises:
        ImportError: ``engine="ray"`` without Ray installed (says what to install).
    """
    settings = settings or EngineSettings()
    if settings.engine == "local":
        from geocorr.engine.local import LocalEngine

        return LocalEngine(settings)
    from geocorr.engine.ray_engine import RayEngine

    return RayEngine(settings)


def _identity(x: Any) -> Any:
    return x


def ready_state(state: Any) -> Callable[[], Any]:
    """A ``setup`` for :meth:`Engine.map_items` that returns ``state``, already built.

    Picklable (a ``partial`` of a module-level function), so Ray ships ``state``
    to each worker once.
    """
    return partial(_identity, state)
