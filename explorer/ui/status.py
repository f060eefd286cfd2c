"""The status line: one place where an app says what it did, what it warns about, or what was wrong.

Exceptions raised inside widget callbacks vanish silently in JupyterLab by default; every callback
of an App goes through :meth:`StatusLine.guard`, so a learner always sees a sentence instead.
"""

from __future__ import annotations

import html
import traceback
from collections.abc import Callable
from functools import wraps

import ipywidgets as widgets

_COLOURS = {"ok": "#1b5e20", "info": "#333333", "warning": "#8a5a00", "error": "#b00020"}
_ICONS = {"ok": "✓", "info": "•", "warning": "⚠", "error": "✗"}


class StatusLine:
    """A one-line message with a level: ok, info, warning or error."""

    def __init__(self) -> None:
        self.level = "ok"
        self.text = "ready"
        self.details = ""
        self.widget = widgets.HTML(layout=widgets.Layout(min_height="1.6em"))
        self._render()

    def show(self, level: str, text: str, details: str = "") -> None:
        if level not in _COLOURS:
            raise ValueError(f"unknown status level {level!r}; use one of {sorted(_COLOURS)}")
        self.level, self.text, self.details = level, text, details
        self._render()

    def ok(self, text: str = "up to date") -> None:
        self.show("ok", text)

    def info(self, text: str) -> None:
        self.show("info", text)

    def warning(self, text: str) -> None:
        self.show("warning", text)

    def error(self, text: str, details: str = "") -> None:
        self.show("error", text, details)

    def report_exception(self, error: BaseException) -> None:
        """Show an exception as a sentence: a ValueError is the learner's input; anything else is
        a fault of ours, shown with its type and a traceback to copy into a bug report."""
        if isinstance(error, ValueError):
            self.error(f"{error} — nothing was changed.")
            return
        details = "".join(traceback.format_exception(type(error), error, error.__traceback__))
        self.error(
            f"Something went wrong inside the app ({type(error).__name__}: {error}). "
            "The last good picture is kept.",
            details,
        )

    def guard(self, callback: Callable) -> Callable:
        """Wrap a widget callback so that any exception it raises is shown here, not lost."""

        @wraps(callback)
        def guarded(*args, **kwargs):
            try:
                return callback(*args, **kwargs)
            except Exception as error:  # noqa: BLE001 - shown to the user, never swallowed
                self.report_exception(error)
                return None

        return guarded

    def _render(self) -> None:
        colour = _COLOURS[self.level]
        body = f"<b>{_ICONS[self.level]}</b> {html.escape(self.text)}"
        if self.details:
            body += (
                "<details><summary>details</summary><pre style='font-size:11px'>"
                f"{html.escape(self.details)}</pre></details>"
            )
        self.widget.value = f"<div class='explorer-status' style='color:{colour}'>{body}</div>"

    def __repr__(self) -> str:
        return f"StatusLine({self.level}: {self.text})"
