"""Long work (training, collecting hidden states) without freezing the notebook.

The work runs in a background thread, so the kernel keeps answering widget messages: the cancel
button is heard, sliders still move. The work reports its progress through a callback; that
callback is also where a cancel request is noticed (it raises :class:`Cancelled`), and where a
partial result is handed over so the figures can update as the work goes.

    def work(report):
        for step in range(steps):
            ...
            report((step + 1) / steps, f"step {step + 1}/{steps}", partial=current_result)
        return final_result

    runner.start(work, on_update=show, on_done=show)          # in the notebook
    runner.start(work, on_update=show, on_done=show, wait=True)  # headless: same thread
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import ipywidgets as widgets

from ..device import release_free_memory, threads_for_this_thread


class Cancelled(Exception):
    """Raised inside the work when the user pressed Cancel."""


class Runner:
    """Runs one piece of long work at a time, with a progress bar and a cancel button."""

    def __init__(self, on_error: Callable[[BaseException], None], update_every: float = 0.3):
        self.on_error = on_error
        self.update_every = update_every
        self.bar = widgets.FloatProgress(value=0.0, min=0.0, max=1.0, layout={"width": "240px"})
        self.label = widgets.Label("")
        self.cancel_button = widgets.Button(
            description="Cancel", icon="stop", disabled=True, tooltip="stop the running work"
        )
        self.cancel_button.on_click(lambda _button: self.cancel())
        self.widget = widgets.HBox([self.bar, self.cancel_button, self.label])
        self._cancel = threading.Event()
        self._thread: threading.Thread | None = None
        self.outcome = "idle"  # idle | running | done | cancelled | failed

    @property
    def busy(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def cancel(self) -> None:
        """Ask the running work to stop at its next progress report."""
        self._cancel.set()
        self.label.value = "cancelling…"

    def join(self, timeout: float | None = None) -> None:
        """Wait for the background work to finish (tests and scripts)."""
        if self._thread is not None:
            self._thread.join(timeout)

    def start(
        self,
        work: Callable[[Callable], object],
        *,
        on_update: Callable[[object], None] | None = None,
        on_done: Callable[[object], None] | None = None,
        wait: bool = False,
    ) -> None:
        """Run ``work(report)``; ``wait=True`` runs it in the calling thread (headless use)."""
        if self.busy:
            raise ValueError("a computation is already running; wait for it or press Cancel")
        self._cancel.clear()
        self.outcome = "running"
        self.bar.value = 0.0
        self.bar.bar_style = "info"
        self.cancel_button.disabled = False
        body = lambda: self._run(work, on_update, on_done)  # noqa: E731
        if wait:
            body()
        else:
            self._thread = threading.Thread(target=body, daemon=True, name="explorer-runner")
            self._thread.start()

    def _run(self, work, on_update, on_done) -> None:
        threads_for_this_thread()  # a new thread starts with torch's default count
        last_update = [0.0]

        def report(fraction: float, message: str = "", partial=None) -> None:
            if self._cancel.is_set():
                raise Cancelled
            self.bar.value = min(max(float(fraction), 0.0), 1.0)
            self.label.value = message
            now = time.monotonic()
            if (
                partial is not None
                and on_update is not None
                and now - last_update[0] >= self.update_every
            ):
                last_update[0] = now
                on_update(partial)

        try:
            result = work(report)
        except Cancelled:
            self.outcome = "cancelled"
            self.bar.bar_style = "warning"
            self.label.value = "cancelled: the figures show the last update"
        except Exception as error:  # noqa: BLE001 - reported, never lost
            self.outcome = "failed"
            self.bar.bar_style = "danger"
            self.label.value = "failed"
            self.on_error(error)
        else:
            self.outcome = "done"
            self.bar.value = 1.0
            self.bar.bar_style = "success"
            self.label.value = "done"
            if on_done is not None:
                try:
                    on_done(result)
                except Exception as error:  # noqa: BLE001
                    self.outcome = "failed"
                    self.on_error(error)
        finally:
            self.cancel_button.disabled = True
            release_free_memory()  # the work's temporaries: back to the system, not kept
