"""The ``--engine`` options shared by reconstruct, features, pseudolabel and eval.

Commands declare the options with these defaults and turn them into an
:class:`~geocorr.engine.EngineSettings` with :func:`engine_settings`; the
library never sees the flags.
"""

from __future__ import annotations

import typer
from rich.text import Text

from geocorr.cli._common import check_device, console, given
from geocorr.engine import EngineSettings

__all__ = ["ENGINE", "RAY_ADDRESS", "NUM_WORKERS", "CPUS_PER_WORKER", "GPUS_PER_WORKER",
           "CHUNK_SIZE", "engine_settings", "report_failures"]

ENGINE = typer.Option("local", "--engine",
                      help="local (this process) | ray (a Ray cluster; pip install "
                           "'geocorr[ray]'). Outputs are the same.")
RAY_ADDRESS = typer.Option(None, "--ray-address",
                           help="Ray cluster to join (auto, HOST:6379, ray://HOST:10001); "
                                "default: start a local one on this machine.")
NUM_WORKERS = typer.Option(None, "--num-workers",
                           help="Ray workers at once (default: as many as the cluster's "
                                "CPUs, or GPUs with --num-gpus-per-worker, allow).")
_DEFAULT = EngineSettings()
CPUS_PER_WORKER = typer.Option(
    None, "--num-cpus-per-worker",
    help=f"CPUs per Ray worker (default {_DEFAULT.num_cpus_per_worker:g}).")
GPUS_PER_WORKER = typer.Option(
    None, "--num-gpus-per-worker",
    help=f"GPUs per Ray worker (e.g. 1, or 0.5 to share one; default "
         f"{_DEFAULT.num_gpus_per_worker:g}).")
CHUNK_SIZE = typer.Option(None, "--chunk-size",
                          help="Items per Ray task (default: ~4 chunks per worker).")


def engine_settings(engine: str, ray_address: str | None, num_workers: int | None,
                    num_cpus_per_worker: float | None, num_gpus_per_worker: float | None,
                    chunk_size: int | None, device: str | None = None) -> EngineSettings:
    """:class:`~geocorr.engine.EngineSettings` from the flags (errors name the flag).

    ``None``: not given, the setting's default. ``device`` (``--device``) is
    checked here when the engine is local; on Ray the workers' devices count,
    not the driver's.
    """
    if engine not in ("local", "ray"):
        raise ValueError(f"--engine must be local or ray, got {engine!r}")
    if engine == "local" and ray_address is not None:
        raise ValueError("--ray-address needs --engine ray")
    for flag, value in (("--num-workers", num_workers), ("--chunk-size", chunk_size)):
        if value is not None and value < 1:
            raise ValueError(f"{flag} must be >= 1, got {value}")
    for flag, value in (("--num-cpus-per-worker", num_cpus_per_worker),
                        ("--num-gpus-per-worker", num_gpus_per_worker)):
        if value is not None and value < 0:
            raise ValueError(f"{flag} must be >= 0, got {value}")
    if device is not None and engine == "local":
        check_device(device)
    return EngineSettings(engine=engine, address=ray_address, workers=num_workers,
                          chunk_size=chunk_size,
                          **given(num_cpus_per_worker=num_cpus_per_worker,
                                  num_gpus_per_worker=num_gpus_per_worker))


def report_failures(failures, what: str, label=str) -> None:
    """One stderr line per failed item (at most 5, then a count)."""
    if not failures:
        return
    console.print(Text(f"warning: {len(failures)} {what} failed (not written; a rerun "
                       "retries them):", style="yellow"))
    for f in failures[:5]:
        console.print(Text(f"  {label(f.item)}: {f.message}"))
    if len(failures) > 5:
        console.print(Text(f"  ... and {len(failures) - 5} more"))
