"""Ctrl-C as a request to stop at the next safe point, not an exception anywhere."""

from __future__ import annotations

import signal
import threading


class StopRequest:
    """Context manager: while active, the first SIGINT only sets ``requested``.

    A KeyboardInterrupt in the middle of an update could leave half the
    weights stepped; the trainer instead checks ``requested`` between steps.
    A second Ctrl-C gets the previous handler (normally KeyboardInterrupt at
    once). Inactive outside the main thread, where Python allows no handlers.
    """

    def __init__(self, enabled: bool = True):
        self.enabled = enabled and threading.current_thread() is threading.main_thread()
        self.requested = False
        self._previous = None

    def __enter__(self) -> StopRequest:
        if self.enabled:
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        self.requested = True
        signal.signal(signal.SIGINT, self._restorable())

    def _restorable(self):
        # None means a handler installed from C; the default one is the best stand-in.
        return (
            self._previous if self._previous is not None else signal.default_int_handler
        )

    def __exit__(self, *exc) -> None:
        if self.enabled:
            signal.signal(signal.SIGINT, self._restorable())
