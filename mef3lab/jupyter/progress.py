"""A progress bar for long dask computes in a notebook (``.load()``, ``.compute()``).

A dask local-scheduler callback (`dask.callbacks.Callback`) drives a `tqdm.auto` bar (a widget
in JupyterLab, text elsewhere) with tqdm's own ``delay``: computes shorter than `delay` seconds
show nothing. ``%mef3 progress off`` (or `disable`) turns it off. dask.distributed computes
have their own progress (its dashboard or `distributed.progress`) and are not covered.
"""

from __future__ import annotations

import contextlib
from typing import Any

from dask.callbacks import Callback

__all__ = ["ProgressBar", "disable", "enable", "enabled"]


class ProgressBar(Callback):
    """One bar per outermost compute, counting finished tasks (chunks and their reductions)."""

    def __init__(self, delay: float = 1.0) -> None:
        super().__init__()
        self.delay = delay
        self._bar: Any = None
        self._depth = 0  # a compute inside a task gets no bar of its own

    def _start_state(self, dsk: Any, state: dict) -> None:
        self._depth += 1
        if self._depth > 1:
            return
        from tqdm.auto import tqdm

        total = sum(len(state[k]) for k in ("ready", "waiting", "running", "finished"))
        self._bar = tqdm(total=total, delay=self.delay, desc="mef3lab", unit="task")

    def _posttask(self, key: Any, result: Any, dsk: Any, state: dict, worker_id: Any) -> None:
        if self._depth == 1 and self._bar is not None:
            self._bar.update(1)

    def _finish(self, dsk: Any, state: dict, errored: bool) -> None:
        self._depth -= 1
        if self._depth == 0 and self._bar is not None:
            self._bar.close()
            self._bar = None


_active: ProgressBar | None = None


def enable(delay: float = 1.0) -> None:
    """Show a bar for every local dask compute of this process that lasts more than `delay` s."""
    global _active
    disable()
    _active = ProgressBar(delay)
    _active.register()


def disable() -> None:
    """No more bars."""
    global _active
    if _active is not None:
        with contextlib.suppress(KeyError):  # gone already if a compute swapped dask's set
            _active.unregister()
        _active = None


def enabled() -> bool:
    """Whether bars are shown."""
    return _active is not None
