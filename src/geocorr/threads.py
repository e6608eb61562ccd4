"""How many threads the numeric libraries under geocorr use: torch, numba, BLAS/OpenMP, OpenCV.

Left alone, each library starts one thread per core and they compete with one
another and with every other job on the machine. On this project's shared
2-core box that made stage-1 refinement 16-30x slower than one thread each
(``benchmarks/threads.py``; figures in ``benchmarks/RESULTS.md``, "Threads"),
so geocorr picks the count itself: :data:`DEFAULT_THREADS` unless the caller
asks for another (``geocorr --threads N``, ``OMP_NUM_THREADS``, or
:func:`set_threads` from Python).

:func:`set_threads` does two things, so that it works whenever it is called:

* it sets the environment variables the libraries read when they load
  (``OMP_NUM_THREADS``, ``OPENBLAS_NUM_THREADS``, ``MKL_NUM_THREADS``,
  ``NUMBA_NUM_THREADS``, ``OPENCV_FOR_THREADS_NUM``); child processes inherit
  them too;
* for the libraries already imported it calls their own setters
  (``torch.set_num_threads``, ``numba.set_num_threads``, ``cv2.setNumThreads``,
  and threadpoolctl's limits for BLAS and OpenMP pools already loaded).

It imports nothing that is not imported yet, so calling it first thing (as
the CLI does) costs nothing. ``NUMBA_NUM_THREADS`` is numba's pool size, fixed
when numba loads: a later call can lower numba's count, not raise it past that.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

__all__ = ["DEFAULT_THREADS", "ThreadReport", "default_threads", "set_threads"]

DEFAULT_THREADS = 1
"""Threads per library when nobody says otherwise.

Measured (``benchmarks/threads.py``, ``benchmarks/RESULTS.md``): on the shared
2-core machine, refinement with one thread per library took a median 5-8 s per
image against 120-155 s with two threads or the libraries' defaults. Not
measured on an idle machine with more cores, where ``--threads`` may pay off.
"""

_ENV_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS",
             "OPENCV_FOR_THREADS_NUM")


@dataclass(frozen=True)
class ThreadReport:
    """What :func:`set_threads` applied.

    Attributes:
        threads: the requested count.
        torch: ``torch.get_num_threads()`` afterwards (``None``: torch not imported
            yet; it will read ``OMP_NUM_THREADS`` when it is).
        numba: ``numba.get_num_threads()`` afterwards (``None``: not imported yet).
        opencv: ``cv2.getNumThreads()`` afterwards (``None``: not imported yet).
        pools: ``(library, threads)`` of the BLAS / OpenMP pools that threadpoolctl
            limited (empty when numpy, scipy and torch are not imported yet).
    """

    threads: int
    torch: int | None
    numba: int | None
    opencv: int | None
    pools: tuple[tuple[str, int], ...]


def default_threads() -> int:
    """``OMP_NUM_THREADS`` when the environment sets it to a positive integer, else
    :data:`DEFAULT_THREADS`."""
    value = os.environ.get("OMP_NUM_THREADS", "").strip()
    return int(value) if value.isdigit() and int(value) > 0 else DEFAULT_THREADS


def set_threads(threads: int | None = None) -> ThreadReport:
    """Use ``threads`` threads in torch, numba, BLAS/OpenMP and OpenCV (module doc).

    Args:
        threads: a positive count; ``None`` = :func:`default_threads`.

    Returns:
        :class:`ThreadReport`.

    Raises:
        ValueError: ``threads`` is not a positive integer.
    """
    n = default_threads() if threads is None else threads
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"threads must be a positive integer, got {threads!r}")
    for var in _ENV_VARS:
        if var == "NUMBA_NUM_THREADS" and "numba" in sys.modules:
            continue  # numba's pool is sized already; numba.set_num_threads below
        os.environ[var] = str(n)

    torch_n = numba_n = opencv_n = None
    if "torch" in sys.modules:
        import torch

        torch.set_num_threads(n)
        torch_n = torch.get_num_threads()
    if "numba" in sys.modules:
        import numba

        numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
        numba_n = numba.get_num_threads()
    if "cv2" in sys.modules:
        import cv2

        cv2.setNumThreads(n)
        opencv_n = cv2.getNumThreads()
    pools: tuple[tuple[str, int], ...] = ()
    if any(m in sys.modules for m in ("numpy", "scipy", "torch")):
        try:
            import threadpoolctl
        except ImportError as exc:
            raise ImportError("geocorr.threads needs threadpoolctl to limit the BLAS/OpenMP "
                              "pools already loaded: pip install threadpoolctl") from exc
        threadpoolctl.threadpool_limits(limits=n)
        pools = tuple((info["internal_api"], int(info["num_threads"]))
                      for info in threadpoolctl.threadpool_info())
    return ThreadReport(n, torch_n, numba_n, opencv_n, pools)
