"""The App base class: controls -> params -> compute -> result -> figures, one way only.

A subclass names its ``Params`` dataclass (one field per control, defaults = the default view,
a ``validate()`` method that raises ``ValueError`` with a readable sentence) and implements:

* ``compute(params) -> result``: pure science, no widgets;
* ``make_figures(result) -> dict[name, figure]``: plotly / matplotlib figures or ``HTMLView``;
* ``build_controls() -> list[widget]``: widgets tied to fields with ``self.bind(widget, field)``;
* optionally ``notes(result) -> list[str]``: warnings for the status line.

Headless use (tests, command line, benchmarks) is the same object without displaying it::

    app = ModesApp()
    app.set(divergence="reverse_kl", separation=4.0)
    app.result, app.figures, app.status.text

A bad value never half-applies: ``set`` validates and computes first and only then commits, so on
a ``ValueError`` the params, the result and the pictures stay as they were, and the status line
says what was wrong (headless callers also get the exception).
"""

from __future__ import annotations

import dataclasses
import json
import threading
from pathlib import Path
from typing import Any, ClassVar

import ipywidgets as widgets

from ..device import ensure_threads, release_free_memory
from .a11y import APP_CLASS, KeyboardAccess, name_controls
from .picker import DivergencePicker
from .runner import Runner
from .status import StatusLine
from .views import make_view, refresh_view

STATE_VERSION = 1


class App:
    """Base class of every explorer app."""

    Params: ClassVar[type]
    title: ClassVar[str] = ""
    description: ClassVar[str] = ""
    presets: ClassVar[dict[str, dict[str, Any]]] = {}

    def __init__(self, **params: Any) -> None:
        ensure_threads()  # torch/BLAS threads: set when an app starts, never at import
        self.status = StatusLine()
        self.runner = Runner(on_error=self.status.report_exception)
        self._lock = threading.RLock()
        self._controls: dict[str, widgets.Widget] = {}
        self._views: dict[str, widgets.Widget] = {}
        self._shown: dict[str, Any] = {}
        self._widget: widgets.Widget | None = None
        self._syncing = False
        self.last_error: BaseException | None = None
        self.params = self._updated_params(self.Params(), params)
        self.result = self.compute(self.params)
        self.figures = self.make_figures(self.result)
        self._show_notes()
        release_free_memory()  # the first computation's temporaries

    # ----- what subclasses implement ------------------------------------------------------
    def compute(self, params):
        raise NotImplementedError

    def make_figures(self, result) -> dict[str, Any]:
        raise NotImplementedError

    def build_controls(self) -> list[widgets.Widget]:
        return []

    def notes(self, result) -> list[str]:
        """Warnings about a result worth a learner's attention (shown in the status line)."""
        return []

    def layout_views(self, views: dict[str, widgets.Widget]) -> widgets.Widget:
        """Arrange the figure widgets; the default wraps them in rows."""
        return widgets.Box(
            list(views.values()),
            layout=widgets.Layout(display="flex", flex_flow="row wrap", align_items="flex-start"),
        )

    # ----- the headless API ---------------------------------------------------------------
    def set(self, **changes: Any) -> App:
        """Change some params, recompute, and update the figures in place.

        Raises ``ValueError`` (and shows it in the status line) when a change is not allowed;
        nothing is changed then."""
        with self._lock:
            try:
                params = self._updated_params(self.params, changes)
                result = self.compute(params)
                figures = self.make_figures(result)
            except Exception as error:
                self.last_error = error
                self.status.report_exception(error)
                self._sync_controls()
                raise
            self.params, self.result, self.figures = params, result, figures
            self.last_error = None
            self._refresh_views()
            self._sync_controls()
            self._show_notes()
        return self

    def show_result(self, result) -> None:
        """Display a result computed elsewhere (by long work in the runner, say)."""
        with self._lock:
            self.result = result
            self.figures = self.make_figures(result)
            self._refresh_views()
            self._show_notes()

    def apply(self, **changes: Any) -> None:
        """``set`` for widget callbacks: errors go to the status line only."""
        try:
            self.set(**changes)
        except Exception:  # noqa: BLE001 - set() has already reported it in the status line
            pass

    def state(self) -> dict[str, Any]:
        """The app's settings as a JSON-ready dict (hand it out as a starting point)."""
        return {"app": type(self).__name__, "version": STATE_VERSION, "params": self._params_dict()}

    def save_state(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.state(), indent=2))
        return path

    def load_state(self, source: dict | str | Path) -> App:
        """Restore settings from a dict from :meth:`state`, or from a JSON file or string."""
        state = _read_state(source)
        if state.get("app") != type(self).__name__:
            raise ValueError(f"this state is for {state.get('app')!r}, not {type(self).__name__!r}")
        params = state.get("params")
        if not isinstance(params, dict):
            raise ValueError("the state has no 'params' object")
        return self.set(**params)

    def use_preset(self, name: str) -> App:
        if name not in self.presets:
            raise ValueError(f"unknown preset {name!r}; choose one of: {', '.join(self.presets)}")
        return self.set(**self.presets[name])

    # ----- the widget ---------------------------------------------------------------------
    @property
    def widget(self) -> widgets.Widget:
        """The whole app as one widget (built on first use)."""
        if self._widget is None:
            self._widget = self._build_widget()
        return self._widget

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)

    def bind(self, control: widgets.Widget, field: str) -> widgets.Widget:
        """Tie a control's ``value`` to the params field ``field`` (both ways)."""
        if field not in self._field_names():
            raise ValueError(f"{type(self).__name__} has no setting {field!r}")
        self._controls[field] = control
        self._syncing = True
        try:
            control.value = getattr(self.params, field)
        finally:
            self._syncing = False

        def changed(change):
            if not self._syncing:
                self.apply(**{field: change["new"]})

        control.observe(self.status.guard(changed), names="value")
        return control

    def divergence_picker(self, field="divergence", alpha_field="alpha", include=None, **kwargs):
        """The shared divergence dropdown + alpha slider, bound to two params fields."""
        picker = DivergencePicker(include=include, **kwargs)
        self.bind(picker.slider, alpha_field)
        self.bind(picker.dropdown, field)
        picker.refresh()
        return picker.widget

    def button(self, description: str, callback, **kwargs) -> widgets.Button:
        """A button whose callback's errors land in the status line."""
        button = widgets.Button(description=description, **kwargs)
        button.on_click(self.status.guard(lambda _button: callback()))
        return button

    @staticmethod
    def play_button(slider: widgets.IntSlider, **kwargs) -> widgets.Play:
        """A play button that steps ``slider`` through its range in the browser.

        The link is made with the slider as its source, because a browser-side link copies the
        source's value onto the target when it is set up: a Play made first would reset the
        slider (and so the app) to the Play's start whenever the page loads."""
        play = widgets.Play(value=slider.value, min=slider.min, max=slider.max, **kwargs)
        widgets.jslink((slider, "value"), (play, "value"))
        widgets.jslink((slider, "max"), (play, "max"))
        return play

    def _build_widget(self) -> widgets.Widget:
        header = widgets.HTML(f"<h3 style='margin:4px 0'>{self.title}</h3>{self.description}")
        controls = self.build_controls()
        self._views = {name: make_view(figure) for name, figure in self.figures.items()}
        self._shown = dict(self.figures)
        parts: list[widgets.Widget] = [header]
        if self.presets:
            parts.append(self._preset_menu())
        body = widgets.HBox(
            [
                widgets.VBox(controls, layout=widgets.Layout(min_width="320px", max_width="380px")),
                self.layout_views(self._views),
            ]
        )
        parts += [self.status.widget, body, self.runner.widget, self._state_box(), KeyboardAccess()]
        app = widgets.VBox(parts)
        app.add_class(APP_CLASS)  # the scope KeyboardAccess works in
        name_controls(app)
        return app

    def _preset_menu(self) -> widgets.Widget:
        menu = widgets.Dropdown(
            options=["(choose a preset)", *self.presets],
            description="preset",
            tooltip="load a ready-made setting",
        )

        def chosen(change):
            if change["new"] in self.presets:
                try:
                    self.use_preset(change["new"])
                except Exception:  # noqa: BLE001 - reported by set()
                    pass

        menu.observe(self.status.guard(chosen), names="value")
        return menu

    def _state_box(self) -> widgets.Widget:
        text = widgets.Textarea(
            placeholder="paste a saved state (JSON) here and press Load",
            tooltip="the app's settings as JSON: copy them to hand out, paste them to restore",
            layout=widgets.Layout(width="100%", height="80px"),
        )
        show = self.button("Show state", lambda: setattr(text, "value", json.dumps(self.state())))
        load = self.button("Load", lambda: self.load_state(text.value))
        box = widgets.Accordion([widgets.VBox([text, widgets.HBox([show, load])])])
        box.set_title(0, "save / load settings (JSON)")
        box.selected_index = None
        return box

    # ----- internals ----------------------------------------------------------------------
    def _field_names(self) -> list[str]:
        return [f.name for f in dataclasses.fields(self.Params)]

    def _params_dict(self) -> dict[str, Any]:
        return {name: getattr(self.params, name) for name in self._field_names()}

    def _updated_params(self, base, changes: dict[str, Any]):
        unknown = sorted(set(changes) - set(self._field_names()))
        if unknown:
            raise ValueError(
                f"{type(self).__name__} has no setting {', '.join(map(repr, unknown))}; "
                f"its settings are: {', '.join(self._field_names())}"
            )
        params = dataclasses.replace(base, **changes)
        validate = getattr(params, "validate", None)
        if validate is not None:
            validate()
        return params

    def _refresh_views(self) -> None:
        """Redraw each view whose figure changed; an app that returns the very same figure
        object (e.g. from a cache) for a view that a change did not touch skips its redraw."""
        for name, figure in self.figures.items():
            view = self._views.get(name)
            if view is not None and self._shown.get(name) is not figure:
                refresh_view(view, figure)
                self._shown[name] = figure

    def _sync_controls(self) -> None:
        self._syncing = True
        try:
            for field, control in self._controls.items():
                value = getattr(self.params, field)
                if control.value != value:
                    control.value = value
        finally:
            self._syncing = False

    def _show_notes(self) -> None:
        notes = self.notes(self.result)
        if notes:
            self.status.warning(" ".join(notes))
        else:
            self.status.ok()


def _read_state(source: dict | str | Path) -> dict:
    if isinstance(source, dict):
        return source
    text = str(source)
    if isinstance(source, Path) or not text.lstrip().startswith("{"):
        path = Path(source)
        if not path.is_file():
            raise ValueError(
                f"no saved state at {str(path)!r}; give a file path, JSON text or a dict"
            )
        text = path.read_text()
    try:
        state = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(
            f"the state is not valid JSON ({error.msg} at line {error.lineno})"
        ) from None
    if not isinstance(state, dict):
        raise ValueError("the state must be a JSON object with 'app' and 'params'")
    return state
