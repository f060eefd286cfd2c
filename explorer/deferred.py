"""A value computed later, at most once: in a background thread once asked to start, or by its
first reader.

The manifold app draws its first figures before the slowest column of the analysis (the RBF-SVM
probe: scikit-learn's import and twelve cross-validated fits, about 1.5 s) is known; the app
starts that column in the background once the widget is shown and redraws when it arrives.
The modes app scores its fit under every divergence only when the score table is drawn, after
the figures a slider move shows first have gone to the browser (see ``ui.App.set``).
Headless code never sees a gap: reading the value waits for it, or computes it right there if
nothing started it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from .device import release_free_memory, threads_for_this_thread


class Deferred:
    """``compute()``'s value, computed once: by :meth:`start` in a background thread, or by the first
    :meth:`result` (which waits while another thread is computing it). A failure is kept and
    raised to every reader. ``on_done`` callbacks run once it is settled."""

    def __init__(self, compute: Callable[[], Any]) -> None:
        self._compute: Callable[[], Any] | None = compute
        self._computing = threading.Lock()  # held while compute() runs
        self._lock = threading.Lock()  # guards the flags and the callbacks
        self._started = False
        self._done = False  # the value (or the failure) is known
        self._settled = threading.Event()  # ... and the callbacks have run
        self._callbacks: list[Callable[[Deferred], None]] = []
        self._value: Any = None
        self.error: BaseException | None = None

    @property
    def done(self) -> bool:
        """Whether the value (or its failure) is known: reading it no longer waits."""
        return self._done

    def start(self) -> bool:
        """Compute in a background thread; True if this call started it (False: it was already
        started, read, or done)."""
        with self._lock:
            if self._started or self._done:
                return False
            self._started = True
        # not a daemon: Python waits for it at exit (a daemon thread stopped inside torch or
        # libsvm at interpreter shutdown aborted the process: "terminate called without an
        # active exception", exit status 134)
        threading.Thread(target=self._settle_in_background, daemon=False,
                         name="explorer-deferred").start()
        return True

    def _settle_in_background(self) -> None:
        threads_for_this_thread()  # a new thread starts with torch's default count
        self._settle()
        release_free_memory()  # the SVM's kernel matrices: back to the system, not kept

    def result(self) -> Any:
        """The value: computed here if nothing has started it, waited for if a thread is at it."""
        self._settle()
        if self.error is not None:
            raise self.error
        return self._value

    def wait(self, timeout: float | None = None) -> bool:
        """Wait (without computing it here) until it is done and its callbacks have run; True if
        they have."""
        return self._settled.wait(timeout)

    def on_done(self, callback: Callable[[Deferred], None]) -> None:
        """Call ``callback(self)`` once done: now, in this thread, if it already is."""
        with self._lock:
            if not self._done:
                self._callbacks.append(callback)
                return
        callback(self)

    def _settle(self) -> None:
        with self._computing:
            if self._done:
                return
            with self._lock:
                self._started = True
            try:
                value, error = self._compute(), None
            except BaseException as failure:  # noqa: BLE001 - kept, raised to every reader
                value, error = None, failure
            with self._lock:
                self._value, self.error, self._done = value, error, True
                self._compute = None  # its inputs (whole layers) are no longer held
                callbacks, self._callbacks = self._callbacks, []
        try:  # outside the compute lock: a callback may take locks that a reader holds
            for callback in callbacks:
                callback(self)
        finally:
            self._settled.set()
