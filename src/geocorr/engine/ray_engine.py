"""The Ray engine: chunks of items as Ray tasks, or on actors that keep a loaded model.

``setup`` and ``fn`` travel once per run through Ray's object store; each
worker process builds ``setup()``'s state once and keeps it for every later
chunk of the same run (tasks: a per-process memo; actors: the actor's life),
so a model is loaded once per worker, not per chunk. Actors run the work when
the workers hold GPUs (model stages) or when neighbouring items share inputs
(``locality``: each actor takes a contiguous block of chunks, then helps the
others from the far ends of theirs); tasks otherwise (``EngineSettings.actors``
overrides). Chunks complete out of order; the driver consumes their results as
they come (``ray.wait``).

Fault handling: a task whose worker process dies is rerun by Ray
(``max_retries``); an actor whose process dies is restarted, runs ``setup``
again and retries the chunk (``max_restarts`` / ``max_task_retries``). After
the retries, the run stops with :class:`~geocorr.engine.base.WorkerLostError`
naming the chunk's items. An item error (``errors``) is returned as an
:class:`~geocorr.engine.base.ItemFailure`, exactly as the local engine does.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import uuid
from collections import deque
from collections.abc import Callable, Hashable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from geocorr.engine.base import (
    ITEM_ERRORS,
    EngineSettings,
    WorkerLostError,
    chunk_items,
    default_chunk_size,
    run_chunk,
)

__all__ = ["RayEngine", "import_ray"]

# per worker process: run key -> (state, fn); only the latest run is kept
_WORKER_STATE: dict[str, tuple[Any, Callable[[Any, Any], Any]]] = {}


def import_ray():
    """``import ray`` with an error that says what to install."""
    try:
        import ray
    except ImportError as exc:
        raise ImportError("the Ray engine needs Ray: pip install 'geocorr[ray]' (or "
                          "pip install 'ray>=2.40')", name="ray") from exc
    return ray


# Ray puts Unix sockets under its temp dir (``<tmp>/ray/session_<date>_<pid>/sockets/
# plasma_store``: ~70 characters below ``<tmp>``) and a socket path may not exceed 107
# bytes, so a long ``TMPDIR`` makes a local start fail deep inside Ray.
_RAY_SOCKET_SUFFIX = 75
_AF_UNIX_MAX = 107


def local_temp_dir() -> str | None:
    """Temp dir for a local Ray start: ``None`` (Ray's default) unless ``TMPDIR`` is too long.

    Returns ``/tmp/geocorr-ray-<uid>`` when Ray's default (``<tempdir>/ray``) would make its
    socket paths longer than a Unix socket allows.
    """
    default = os.path.join(tempfile.gettempdir(), "ray")
    if len(default) + _RAY_SOCKET_SUFFIX <= _AF_UNIX_MAX:
        return None
    return f"/tmp/geocorr-ray-{os.getuid()}"


@dataclass(frozen=True)
class _SetupError:
    """``setup()`` raised a user error on a worker: the driver re-raises ``error``."""

    error: BaseException


def _worker_state(payload: list, key: str):
    if key not in _WORKER_STATE:
        import ray

        setup, fn = ray.get(payload[0])
        try:
            state = setup() if setup is not None else None
        except (ValueError, OSError, ImportError) as exc:
            return _SetupError(exc)
        _WORKER_STATE.clear()
        _WORKER_STATE[key] = (state, fn)
    return _WORKER_STATE[key]


def _task_run(payload: list, key: str, chunk: list, errors: tuple) -> Any:
    st = _worker_state(payload, key)
    if isinstance(st, _SetupError):
        return st
    return run_chunk(st[0], st[1], chunk, errors)


class _ChunkActor:
    """Holds one run's state (a loaded model) and runs chunks on it."""

    def __init__(self, payload: list, key: str) -> None:
        self._payload, self._key = payload, key

    def run(self, chunk: list, errors: tuple) -> Any:
        return _task_run(self._payload, self._key, chunk, errors)


def _blocks(chunks: list[list], n: int) -> list[list[list]]:
    """``chunks`` cut into ``n`` contiguous blocks of about equal item counts."""
    total = sum(len(c) for c in chunks)
    blocks: list[list[list]] = [[] for _ in range(n)]
    done = 0
    for c in chunks:
        blocks[min(n - 1, done * n // max(total, 1))].append(c)
        done += len(c)
    return blocks


class RayEngine:
    """Per-item work on a Ray cluster (module doc).

    Args:
        settings: engine settings; connects on construction (``settings.address``,
            else the Ray instance already initialised in this process, else a new
            local one, shut down again by :meth:`close`).

    Raises:
        ImportError: Ray is not installed.
    """

    def __init__(self, settings: EngineSettings | None = None) -> None:
        self.settings = settings or EngineSettings(engine="ray")
        ray = import_ray()
        self._started = False
        if not ray.is_initialized():
            kwargs = {}
            if self.settings.address is None and (tmp := local_temp_dir()) is not None:
                kwargs["_temp_dir"] = tmp
            ray.init(address=self.settings.address, include_dashboard=False,
                     log_to_driver=False, configure_logging=False, **kwargs)
            self._started = True
        self._ray = ray

    # ------------------------------------------------------------ resources
    def workers(self) -> int:
        """Concurrent workers: ``settings.workers`` or what the cluster's resources allow."""
        s = self.settings
        if s.workers is not None:
            return s.workers
        res = self._ray.cluster_resources()
        if s.num_gpus_per_worker > 0:
            return max(1, int(res.get("GPU", 0) / s.num_gpus_per_worker))
        return max(1, int(res.get("CPU", 1) / max(s.num_cpus_per_worker, 1e-9)))

    def _check_resources(self) -> None:
        s = self.settings
        res = self._ray.cluster_resources()
        if s.num_gpus_per_worker > res.get("GPU", 0):
            raise ValueError(f"--num-gpus-per-worker {s.num_gpus_per_worker:g}: the Ray cluster "
                             f"has {res.get('GPU', 0):g} GPU(s)")
        if s.num_cpus_per_worker > res.get("CPU", 0):
            raise ValueError(f"--num-cpus-per-worker {s.num_cpus_per_worker:g}: the Ray cluster "
                             f"has {res.get('CPU', 0):g} CPU(s)")

    # ------------------------------------------------------------------ map
    def map_items(self, fn: Callable[[Any, Any], Any], items: Sequence[Any], *,
                  setup: Callable[[], Any] | None = None, stateful: bool = False,
                  locality: bool = False, group: Callable[[Any], Hashable] | None = None,
                  errors: tuple[type[BaseException], ...] = ITEM_ERRORS,
                  label: Callable[[Any], str] = str) -> Iterator[tuple[Any, Any]]:
        """See :meth:`geocorr.engine.base.Engine.map_items` (arguments there); yields as
        chunks complete; ``label`` names an item in a :class:`WorkerLostError`.

        Raises:
            WorkerLostError: a chunk's worker died more than ``max_retries`` times.
            ValueError: the cluster lacks the per-worker resources asked for.
        """
        if not items:
            return
        ray, s = self._ray, self.settings
        self._check_resources()
        n_workers = self.workers()
        size = default_chunk_size(len(items), n_workers, s.chunk_size)
        chunks = chunk_items(items, size, group)
        n_workers = min(n_workers, len(chunks))
        key = uuid.uuid4().hex
        payload = [ray.put((setup, fn))]  # in a list: workers fetch it only once
        opts = {"num_cpus": s.num_cpus_per_worker, "num_gpus": s.num_gpus_per_worker}
        actors: list[Any] = []
        use_actors = (s.actors if s.actors is not None
                      else locality or (stateful and s.num_gpus_per_worker > 0))
        if use_actors:
            cls = ray.remote(_ChunkActor).options(max_restarts=s.max_retries,
                                                  max_task_retries=s.max_retries, **opts)
            actors = [cls.remote(payload, key) for _ in range(n_workers)]
            depth = 2  # one chunk queued behind the running one hides the round trip
            # each actor takes a contiguous block of chunks (neighbours share inputs: a
            # category's images stay with one worker), then helps the others from their ends
            queues = [deque(b) for b in _blocks(chunks, n_workers)]
        else:
            task = ray.remote(_task_run).options(max_retries=s.max_retries, **opts)
            depth = 1
            queues = [deque(chunks)] + [deque() for _ in range(n_workers - 1)]
        inflight: dict[Any, tuple[int, list]] = {}

        def submit(w: int) -> bool:
            if queues[w]:
                chunk = queues[w].popleft()
            else:
                other = max(range(len(queues)), key=lambda i: len(queues[i]))
                if not queues[other]:
                    return False
                chunk = queues[other].pop() if use_actors else queues[other].popleft()
            ref = (actors[w].run.remote(chunk, errors) if use_actors
                   else task.remote(payload, key, chunk, errors))
            inflight[ref] = (w, chunk)
            return True

        try:
            for w in range(n_workers):
                for _ in range(depth):
                    submit(w)
            while inflight:
                ready, _ = ray.wait(list(inflight), num_returns=1)
                w, chunk = inflight.pop(ready[0])
                try:
                    res = ray.get(ready[0])
                except (ray.exceptions.WorkerCrashedError, ray.exceptions.RayActorError,
                        ray.exceptions.ObjectLostError, ray.exceptions.NodeDiedError) as exc:
                    names = ", ".join(label(x) for x in chunk[:3])
                    more = f" and {len(chunk) - 3} more" if len(chunk) > 3 else ""
                    raise WorkerLostError(
                        f"items {names}{more}: the Ray worker running them died "
                        f"{s.max_retries + 1} times ({type(exc).__name__}); see the Ray logs "
                        f"(/tmp/ray/session_latest/logs)") from None
                if isinstance(res, _SetupError):
                    raise res.error
                submit(w)
                yield from zip(chunk, res, strict=True)
        finally:
            for ref in inflight:
                # Best effort: the actors are killed below whatever cancel does.
                with contextlib.suppress(Exception):
                    ray.cancel(ref)
            for a in actors:
                ray.kill(a)

    def close(self) -> None:
        """Shut Ray down if this engine started it."""
        if self._started and self._ray.is_initialized():
            self._ray.shutdown()
            self._started = False

    def __enter__(self) -> RayEngine:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
