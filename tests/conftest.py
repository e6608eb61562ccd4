"""Suite-wide setup: the thread counts geocorr's CLI would choose (``geocorr.threads``).

Without this, tests calling the library directly would run torch, numba and BLAS
with one thread per core, as a bare ``python`` does; the CLI and the tests
should see the same setting, whatever the Makefile or the shell exports.
"""

from __future__ import annotations


def pytest_configure(config) -> None:
    from geocorr.threads import set_threads

    set_threads()
