"""Stopping a run cleanly. The first SIGINT (Ctrl-C) or SIGTERM (sent by torchrun, schedulers,
`kill`) asks the loop to stop once the step in progress is done, so that the checkpoint it then
writes is the state between two steps: a resumed run repeats nothing and skips nothing. A second
signal stops at once, leaving the last checkpoint as it was.
"""

from __future__ import annotations

import signal
import threading
import time
from types import FrameType, TracebackType
from typing import Any

# torchrun passes a Ctrl-C on to its workers, which had it from the terminal already: a signal
# this soon after the first is the same request
SAME_REQUEST_S = 1.0


class TrainingStopped(KeyboardInterrupt):
    """The run stopped on a signal after saving its state (the message says where and how to go on)."""


class StopSignals:
    """While entered (in the main thread), SIGINT and SIGTERM set `requested` instead of stopping."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.requested: str | None = None  # the name of the first signal
        self._first = 0.0
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():  # only it may handle signals
            self._previous = {number: signal.signal(number, self._handle) for number in self.SIGNALS}
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)

    def _handle(self, number: int, frame: FrameType | None) -> None:
        if self.requested is None:
            self.requested, self._first = signal.Signals(number).name, time.monotonic()
        elif time.monotonic() - self._first > SAME_REQUEST_S:
            raise KeyboardInterrupt(f"a second {signal.Signals(number).name}: stopped at once")
