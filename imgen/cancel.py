"""Stopping work nobody waits for any more (issue #19).

Long tasks call :func:`checkpoint` between units of work (tiles, crops, projection steps, frames). Whoever
runs a task for someone (the web app, for a request) wraps the call in :func:`watching` with a function that
says whether that someone has gone: the request was cancelled, or its client disconnected. At the next
checkpoint the task then raises :class:`Cancelled`, which unwinds it and frees its buffers. Outside
:func:`watching` (the CLI, tests, scripts) a checkpoint costs one lookup and never stops anything.
"""
from __future__ import annotations

import threading
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Callable, Iterator

_GONE: ContextVar[Callable[[], str | None] | None] = ContextVar("imgen_cancel_check", default=None)
_LOCK = threading.Lock()
stopped = 0          # how many watched runs stopped at a checkpoint (for tests and the load report)


class Cancelled(Exception):
    """The work was stopped because its request was cancelled or its client went away."""


@contextmanager
def watching(gone: Callable[[], str | None]) -> Iterator[None]:
    """Within the block, :func:`checkpoint` raises :class:`Cancelled` once ``gone()`` returns a reason."""
    token = _GONE.set(gone)
    try:
        yield
    finally:
        _GONE.reset(token)


def checkpoint() -> None:
    """Raise :class:`Cancelled` if the run being watched is no longer wanted; otherwise return at once."""
    gone = _GONE.get()
    if gone is None:
        return
    reason = gone()
    if reason:
        global stopped
        with _LOCK:
            stopped += 1
        raise Cancelled(reason)
