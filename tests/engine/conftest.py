"""One local Ray instance per test session (2 CPUs, no dashboard), started on first use."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="session")
def ray_cluster():
    ray = pytest.importorskip("ray")
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # workers inherit it: same maths as local
    started = not ray.is_initialized()
    if started:
        from geocorr.engine.ray_engine import local_temp_dir

        tmp = local_temp_dir()  # a long TMPDIR would overflow Ray's socket paths
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
                 configure_logging=False, **({"_temp_dir": tmp} if tmp else {}))
    yield ray
    if started:
        ray.shutdown()

