"""Stopping training cleanly on SIGTERM and Ctrl-C (SIGINT).

SLURM and Kubernetes send SIGTERM before they preempt a job; a user presses Ctrl-C. Either
way the work since the last checkpoint (possibly thousands of steps) should not be lost.
While training, :class:`StopRequests` replaces both handlers with one that only records
the signal; the loop looks at :attr:`StopRequests.signal` after each step and evaluation,
saves ``last`` and returns it, and the command line exits 128 + the signal's number (143
for SIGTERM, 130 for Ctrl-C), the shell's convention. A second Ctrl-C raises
KeyboardInterrupt at once (exit 130): the write in progress is abandoned, and since every
write is atomic (:mod:`rnnlab.atomic`, whose temp files are removed on the way out) the
checkpoint is whole, old or new.

>>> import os, signal
>>> with StopRequests() as stop:
...     os.kill(os.getpid(), signal.SIGTERM)
...     stop.signal == signal.SIGTERM
True
"""

from __future__ import annotations

import signal
import threading
from types import FrameType, TracebackType
from typing import Any

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopRequests:
    """A context in which SIGINT and SIGTERM are recorded, not acted on (main thread only:
    elsewhere Python cannot set handlers, and the context changes nothing)."""

    def __init__(self) -> None:
        self.signal: int | None = None
        self._old: dict[int, Any] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if signum == signal.SIGINT and self.signal == signal.SIGINT:
            raise KeyboardInterrupt  # the second Ctrl-C: stop now
        if self.signal is None:
            self.signal = signum

    def __enter__(self) -> StopRequests:
        if threading.current_thread() is threading.main_thread() and not self._old:
            for s in SIGNALS:
                self._old[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        for s, handler in self._old.items():
            signal.signal(s, handler)
        self._old.clear()
