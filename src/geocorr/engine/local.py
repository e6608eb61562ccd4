"""The local engine: every item in this process, in order."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator, Sequence
from typing import Any

from geocorr.engine.base import ITEM_ERRORS, EngineSettings, run_chunk

__all__ = ["LocalEngine"]


class LocalEngine:
    """Runs ``setup`` once, then ``fn`` on each item in order (no chunking needed).

    Args:
        settings: engine settings (only ``engine == "local"`` matters here).
    """

    def __init__(self, settings: EngineSettings | None = None) -> None:
        self.settings = settings or EngineSettings()

    def map_items(self, fn: Callable[[Any, Any], Any], items: Sequence[Any], *,
                  setup: Callable[[], Any] | None = None, stateful: bool = False,
                  locality: bool = False, group: Callable[[Any], Hashable] | None = None,
                  errors: tuple[type[BaseException], ...] = ITEM_ERRORS,
                  label: Callable[[Any], str] = str) -> Iterator[tuple[Any, Any]]:
        """See :meth:`geocorr.engine.base.Engine.map_items`; yields in item order."""
        if not items:
            return
        state = setup() if setup is not None else None
        for item in items:
            yield item, run_chunk(state, fn, [item], errors)[0]

    def close(self) -> None:
        """Nothing to release."""

    def __enter__(self) -> LocalEngine:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
