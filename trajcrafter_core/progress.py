"""The one progress-and-cancel protocol of the pack (torch-free).

Every long-running core function (depth estimation, rendering, sampling, downloads) takes:

- ``progress(done, total)``: called with integer work units after each unit (a frame, a
  denoising step, a file); ``done`` reaches ``total`` at the end. Raising in it stops the work
  with that exception — this is how a front-end cancels (ComfyUI's interrupt, the CLI's Ctrl-C).
- ``cancel()``: polled between units where a function offers it; returning ``True`` stops the
  work with :class:`Cancelled`.

:class:`WorkTracker` implements both for a function that counts its own units.
"""

from __future__ import annotations

from typing import Callable, Optional

from .errors import TrajCrafterError

__all__ = ["ProgressFn", "CancelFn", "Cancelled", "WorkTracker"]

ProgressFn = Callable[[int, int], None]
CancelFn = Callable[[], bool]


class Cancelled(TrajCrafterError):
    """The work stopped because ``cancel()`` asked for it; nothing half-done was kept."""


class WorkTracker:
    """Counts work units, reports them to ``progress`` and honours ``cancel``."""

    def __init__(self, total: int, progress: Optional[ProgressFn] = None, cancel: Optional[CancelFn] = None,
                 what: str = "work"):
        self.total = max(int(total), 1)
        self.done = 0
        self.what = what
        self._progress = progress
        self._cancel = cancel

    def check(self) -> None:
        """Raise :class:`Cancelled` if ``cancel()`` says so."""
        if self._cancel is not None and self._cancel():
            raise Cancelled(f"{self.what} cancelled after {self.done}/{self.total} steps")

    def advance(self, units: int = 1) -> None:
        """Record ``units`` finished units, report progress, then check for cancellation."""
        self.done = min(self.done + units, self.total)
        if self._progress is not None:
            self._progress(self.done, self.total)
        self.check()

    def finish(self) -> None:
        if self.done < self.total:
            self.done = self.total
            if self._progress is not None:
                self._progress(self.done, self.total)
