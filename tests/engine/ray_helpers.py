"""Finding Ray worker processes by their title (for the fault tests)."""

from __future__ import annotations

import os


def worker_pids(name: str) -> list[int]:
    """Pids of Ray worker processes whose title is ``ray::<name>`` (Linux /proc)."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/cmdline", "rb") as f:
                cmd = f.read().split(b"\0")[0].decode(errors="replace")
        except OSError:
            continue
        if cmd.startswith(f"ray::{name}"):
            out.append(int(d))
    return out
