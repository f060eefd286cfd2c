"""The App base class: controls -> params -> compute -> result -> figures, one way only.

A subclass names its ``Params`` dataclass, one field per control declared once with
:func:`explorer.ui.schema.setting` (type, range or choices, control, label, tooltip, and the views
a change invalidates; defaults = the default view), and implements:

* ``compute(params) -> result``: pure science, no widgets (it calls the explorer's compute.py);
* ``views() -> dict[name, draw]``: one function ``result -> figure`` per view (plotly /
  matplotlib figures or ``HTMLView``). The App draws them and keeps each figure until a field
  that invalidates it changes value (one cache, keyed on parameter values, see
  :meth:`App.make_figures`); an app may instead override ``make_figures(result)`` itself;
* ``build_controls() -> list[widget]``: ``self.control(field)`` makes a field's declared widget
  and binds it; ``self.bind(widget, field)`` ties a hand-made one;
* optionally ``notes(result) -> list[str]``: warnings for the status line.

The state (JSON, :meth:`App.state`) and the classroom link (:meth:`App.link`,
:meth:`App.from_link`) carry the fields by name, with a version: a field renamed since is read
under its new name (:attr:`App.renames`), so saved states and old links keep working.

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
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlencode, urlsplit

import ipywidgets as widgets

from explorer.checks import check_integer

from ..device import ensure_threads, release_free_memory
from .a11y import APP_CLASS, KeyboardAccess, name_controls
from .picker import DivergencePicker
from .plotly_widget import preload_bundle
from .runner import Runner
from .schema import field_types, format_value, inputs_of, make_control, parse_value, settings
from .status import StatusLine
from .views import make_view, placeholder_for, refresh_view

#: Version 2: the glossary's renames (docs/GLOSSARY.md); each app lists its own in ``renames``.
STATE_VERSION = 2


class App:
    """Base class of every explorer app."""

    Params: ClassVar[type]
    title: ClassVar[str] = ""
    description: ClassVar[str] = ""
    presets: ClassVar[dict[str, dict[str, Any]]] = {}
    #: {state version: {old field name: new name}}: the renames that version made
    renames: ClassVar[dict[int, dict[str, str]]] = {}
    #: how the declared controls look: the description column and the control's box
    control_style: ClassVar[dict[str, str]] = {"description_width": "initial"}
    control_layout: ClassVar[dict[str, str]] = {}
    figure_cache_size: ClassVar[int] = 16  # figures kept per view (see make_figures)
    #: {tab title: the views on it} for an app whose views sit on tabs (see view_tabs); the
    #: first tab is shown first, the others' views are drawn when their tab is chosen
    view_pages: ClassVar[dict[str, list[str]]] = {}
    #: the heavy modules that making the app and its first view imports beyond its own package
    #: (e.g. torch, where the package defers it): a kernel imports them in the background
    #: while it waits for its first cell (``explorer.warm``); tests check each is imported
    first_view_imports: ClassVar[tuple[str, ...]] = ()

    def __init__(self, **params: Any) -> None:
        ensure_threads()  # torch/BLAS threads: set when an app starts, never at import
        preload_bundle()  # in a notebook, the browser loads plotly while the app computes
        self.status = StatusLine()
        self.runner = Runner(on_error=self.status.report_exception)
        self._lock = threading.RLock()
        self._controls: dict[str, widgets.Widget] = {}
        self._views: dict[str, widgets.Widget] = {}
        self._shown: dict[str, Any] = {}
        self._widget: widgets.Widget | None = None
        self._syncing = False
        self._figure_cache: dict[str, OrderedDict[tuple, Any]] = {}
        self.hidden: set[str] = set()
        self.locked: set[str] = set()
        self.hidden_views: set[str] = set()  # on tabs not shown (view_tabs): redrawn when shown
        self._marks: dict[str, set[str]] = {}
        self.last_error: BaseException | None = None
        self.params = self._updated_params(self.Params(), params)
        self.result = self.compute(self.params)
        self.figures = self.make_figures(self.result)
        self._show_notes()
        self._open_voila_link()
        release_free_memory()  # the first computation's temporaries

    # ----- what subclasses implement ------------------------------------------------------
    def compute(self, params):
        raise NotImplementedError

    def views(self) -> dict[str, Callable[[Any], Any]]:
        """{view name: draw(result) -> figure}, in display order."""
        raise NotImplementedError

    def view_version(self, name: str, params, result) -> Any:
        """What a view depends on beyond the params' values (models trained since, a file
        rewritten, say); by default nothing. Its value joins the view's cache key."""
        return None

    def make_figures(self, result, params=None) -> Figures:
        """Every view's figure for ``result`` (computed from ``params``, by default the current
        ones), each drawn when first asked for (:class:`Figures`): a view on a tab that is not
        shown costs nothing until its tab is chosen (:meth:`view_tabs`). A view's figure is
        kept, the very same object, for the values of the fields that invalidate it (their
        declaration's ``invalidates``) and its :meth:`view_version`: when they come back (a
        learner toggling back and forth), so does the figure, and the base class leaves its
        widget alone. The last ``figure_cache_size`` figures of each view are kept."""
        params = self.params if params is None else params
        draws = self.views()

        def draw_one(name: str):
            key = (tuple(getattr(params, field) for field in self.inputs_of(name)),
                   self.view_version(name, params, result))
            kept = self._figure_cache.setdefault(name, OrderedDict())
            if key in kept:
                kept.move_to_end(key)
            else:
                kept[key] = draws[name](result)
                while len(kept) > self.figure_cache_size:
                    kept.popitem(last=False)
            return kept[key]

        return Figures(list(draws), draw_one)

    def inputs_of(self, view: str) -> tuple[str, ...]:
        """The fields whose change redraws ``view``."""
        return inputs_of(self.Params, view)

    def build_controls(self) -> list[widgets.Widget]:
        return []

    def notes(self, result) -> list[str]:
        """Warnings about a result worth a learner's attention (shown in the status line)."""
        return []

    def view_tabs(self, views: dict[str, widgets.Widget], **layout: Any) -> widgets.Tab:
        """A tab per title in :attr:`view_pages`, showing its views (one under the other); for
        :meth:`layout_views`. The views of the pages not shown are drawn only when their page
        is chosen: the page starts with them empty, a slider move makes no figure and sends
        nothing for them, and the browser draws nothing hidden (notebook 02: one tab of six
        drawn per move, and one at the start)."""
        pages = self.view_pages
        children = [views[names[0]] if len(names) == 1 else widgets.VBox([views[n] for n in names])
                    for names in pages.values()]
        tabs = widgets.Tab(children, titles=list(pages), layout=widgets.Layout(**layout))
        pages_of_views = [list(names) for names in pages.values()]

        def chosen(change) -> None:
            shown = set(pages_of_views[change["new"]]) if change["new"] is not None else set()
            with self._lock:
                self.hidden_views = {n for names in pages_of_views for n in names} - shown
                self._refresh_views()

        tabs.observe(self.status.guard(chosen), names="selected_index")
        chosen({"new": tabs.selected_index})
        return tabs

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
                figures = self._figures_for(result, params)
            except Exception as error:
                self._refuse(error)
                raise
            before = self.params, self.result, self.figures
            self.params, self.result, self.figures = params, result, figures
            try:
                # each view's figure is drawn and sent in turn: the browser draws the first
                # while the kernel draws the next (a part of a result that only a later figure
                # needs can be computed then); should one fail, the views go back
                self._refresh_views()
            except Exception as error:
                self.params, self.result, self.figures = before
                self._refresh_views()
                self._refuse(error)
                raise
            self.last_error = None
            self._sync_controls()
            self._show_notes()
        return self

    def _refuse(self, error: Exception) -> None:
        """A change that failed: the status line says why; the controls show the app's state."""
        self.last_error = error
        self.status.report_exception(error)
        self._sync_controls()

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

    @classmethod
    def migrate(cls, params: dict[str, Any], version: int) -> dict[str, Any]:
        """Settings saved at state ``version``, under today's field names."""
        check_integer(version, "state version", 1, STATE_VERSION)
        params = dict(params)
        for step in range(version + 1, STATE_VERSION + 1):
            for old, new in cls.renames.get(step, {}).items():
                if old in params:
                    params[new] = params.pop(old)
        return params

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
        return self.set(**self.migrate(params, state.get("version", 1)))

    # ----- classroom mode: the state as a link ----------------------------------------------
    def link(self, base: str = "") -> str:
        """The app's state as a short link: ``base`` (a Voila page's URL, say) and a query with
        the settings that differ from the defaults and the hidden and locked controls. Opened
        in Voila, or read by :meth:`from_link`, it gives exactly this app."""
        defaults = self.Params()
        query = {"app": type(self).__name__, "v": STATE_VERSION}
        query.update({name: format_value(value) for name, value in self._params_dict().items()
                      if value != getattr(defaults, name)})
        for word, fields in (("hide", self.hidden), ("lock", self.locked)):
            if fields:
                query[word] = ",".join(sorted(fields))
        return f"{base.split('?')[0]}?{urlencode(query)}"

    @classmethod
    def from_link(cls, text: str, **params: Any) -> App:
        """The app a link from :meth:`link` describes (a whole URL or only its query); the
        settings the link does not name are ``params``, else their defaults."""
        app = cls(**params)
        app.open_link(text, base=params)
        return app

    def open_link(self, text: str, base: dict[str, Any] | None = None) -> App:
        """Put this app in the state a link describes: its settings (the rest as in ``base``,
        else at their defaults) and its hidden and locked controls."""
        query = urlsplit(text).query if "?" in text else text.lstrip("?")
        pairs = dict(parse_qsl(query, keep_blank_values=True))
        if pairs.pop("app", type(self).__name__) != type(self).__name__:
            raise ValueError(f"this link is for another app, not {type(self).__name__!r}")
        version = parse_value(int, pairs.pop("v", "1"))
        marks = {word: [f for f in pairs.pop(word, "").split(",") if f] for word in ("hide", "lock")}
        kinds = field_types(self.Params)
        changes = self.migrate(pairs, version)
        self._check_fields(changes)
        values = {name: parse_value(kinds[name], text) for name, text in changes.items()}
        hidden = list(self.migrate(dict.fromkeys(marks["hide"]), version))
        locked = list(self.migrate(dict.fromkeys(marks["lock"]), version))
        self._check_fields([*hidden, *locked], "to hide or lock")  # before anything changes
        self.set(**{**self._params_dict_of(self.Params()), **(base or {}), **values})
        return self.classroom(hidden=hidden, locked=locked)

    def classroom(self, hidden=(), locked=()) -> App:
        """Hide some controls and lock others (shown but not movable) for a workshop step; the
        choice travels in :meth:`link`. Headless ``set`` still changes every field."""
        self._check_fields([*hidden, *locked], "to hide or lock")
        self.hidden, self.locked = set(hidden), set(locked)
        for field, control in self._controls.items():
            self._mark(field, control)
        return self

    def _check_fields(self, names, purpose: str = "") -> None:
        """Refuse names that are not settings of this app, naming those that are."""
        unknown = sorted(set(names) - set(self._field_names()))
        if unknown:
            raise ValueError(
                f"{type(self).__name__} has no setting {', '.join(map(repr, unknown))}"
                f"{' ' + purpose if purpose else ''}; its settings are: "
                f"{', '.join(self._field_names())}")

    def _mark(self, field: str, control: widgets.Widget) -> None:
        """Hide or lock ``control`` as classroom mode says; undo only what it did before (an
        app may hide or disable a control for its own reasons)."""
        marks = self._marks.setdefault(field, set())
        for mark, wanted, apply in (
            ("hidden", field in self.hidden, lambda on: setattr(control.layout, "display",
                                                                "none" if on else None)),
            ("locked", field in self.locked, lambda on: setattr(control, "disabled", on)),
        ):
            if wanted or mark in marks:
                apply(wanted)
                if wanted:
                    marks.add(mark)
                else:
                    marks.discard(mark)

    def _open_voila_link(self) -> None:
        """In a Voila page whose URL carries this app's state (``?app=...``), open that state;
        a link that cannot be read leaves the default view and says why."""
        if not os.environ.get("SERVER_SOFTWARE", "").startswith("voila"):
            return
        query = os.environ.get("QUERY_STRING", "")
        if dict(parse_qsl(query)).get("app") != type(self).__name__:
            return
        try:
            self.open_link(query)
        except ValueError as error:  # the page opens with the default view, and says why
            self.status.report_exception(error)

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
        """Show the app's widget, and a line of text for a front-end without widgets.

        ipywidgets' own display writes that line as ``repr(widget)`` cut to 110 characters:
        the repr of every child widget, each plotly figure's data included (measured: about
        0.1 s of notebook 03's first cell on this project's 2-core machine, an observation),
        for a line that no browser shows. The widget view's mimebundle is the same as ipywidgets' own."""
        from IPython.display import display

        widget = self.widget
        display({
            "application/vnd.jupyter.widget-view+json": {
                "version_major": 2, "version_minor": 0, "model_id": widget.model_id},
            "text/plain": f"{type(self).__name__}: {self.title} (an interactive widget)",
        }, raw=True)

    def control(self, field: str, on_change=None, **overrides: Any) -> widgets.Widget:
        """The widget ``field`` declares (see :mod:`explorer.ui.schema`), bound to it;
        ``overrides`` set further widget attributes, ``on_change`` is as in :meth:`bind`."""
        kind, declared = settings(self.Params)[field]
        control = make_control(field, kind, declared, self.control_style, self.control_layout)
        for name, value in overrides.items():
            setattr(control, name, value)
        return self.bind(control, field, on_change)

    def bind(self, control: widgets.Widget, field: str, on_change=None) -> widgets.Widget:
        """Tie a control's ``value`` to the params field ``field`` (both ways). ``on_change``
        (the new value -> None) replaces the plain ``apply(field=value)`` on a move."""
        self.register(control, field)
        self._syncing = True
        try:
            control.value = getattr(self.params, field)
        finally:
            self._syncing = False

        def changed(change):
            if not self._syncing:
                if on_change is None:
                    self.apply(**{field: change["new"]})
                else:
                    on_change(change["new"])

        control.observe(self.status.guard(changed), names="value")
        return control

    def register(self, control: widgets.Widget, field: str) -> widgets.Widget:
        """Note ``control`` as the one showing ``field`` (it follows the params, and classroom
        mode hides or locks it)."""
        if field not in self._field_names():
            raise ValueError(f"{type(self).__name__} has no setting {field!r}")
        self._controls[field] = control
        self._mark(field, control)
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
        later = {name for names in list(self.view_pages.values())[1:] for name in names}
        self._views, self._shown = {}, {}
        for name in self.figures:
            if name in later:  # on a tab not shown: drawn when its tab is chosen
                self._views[name] = make_view(placeholder_for(self.figures[name]))
            else:
                self._views[name] = make_view(self.figures[name])
                self._shown[name] = self.figures[name]
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
        load = self.button("Load", lambda: self._load_text(text.value))
        link = self.button(  # the kernel cannot write the browser's clipboard: the box holds it
            "Show link", lambda: setattr(text, "value", self.link()),
            tooltip="the settings as a short link, to copy from the box: add it to a Voila "
                    "page's URL, or paste it here and press Load")
        box = widgets.Accordion([widgets.VBox([text, widgets.HBox([show, link, load])])])
        box.set_title(0, "save / load settings (JSON or link)")
        box.selected_index = None
        return box

    def _load_text(self, text: str) -> App:
        """The state box's Load: a JSON state, or a link."""
        stripped = text.strip()
        if stripped.startswith("{"):
            return self.load_state(stripped)
        return self.open_link(stripped)

    # ----- internals ----------------------------------------------------------------------
    def _figures_for(self, result, params):
        """The figures of a result computed from ``params`` (not yet the app's)."""
        if type(self).views is App.views:
            return self.make_figures(result)  # an app that draws its figures itself
        return self.make_figures(result, params)

    def _field_names(self) -> list[str]:
        return [f.name for f in dataclasses.fields(self.Params)]

    def _params_dict(self) -> dict[str, Any]:
        return self._params_dict_of(self.params)

    def _params_dict_of(self, params) -> dict[str, Any]:
        return {name: getattr(params, name) for name in self._field_names()}

    def _updated_params(self, base, changes: dict[str, Any]):
        self._check_fields(changes)
        params = dataclasses.replace(base, **changes)
        validate = getattr(params, "validate", None)
        if validate is not None:
            validate()
        return params

    def _shown_views(self, figures) -> list[str]:
        """The views a learner can see now: all but those on tabs not shown (:meth:`view_tabs`)."""
        return [name for name in figures if name not in self.hidden_views]

    def _refresh_views(self) -> None:
        """Redraw each view shown whose figure changed; an app that returns the very same figure
        object (e.g. from a cache) for a view that a change did not touch skips its redraw. A
        hidden view keeps its last figure until its tab is chosen (:meth:`view_tabs`)."""
        for name in self._shown_views(self.figures):
            figure = self.figures[name]
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


class Figures(Mapping):
    """Every view's figure for one result, each drawn the first time it is asked for (and then
    kept): a read-only mapping {view name: figure} in display order."""

    def __init__(self, names: list[str], draw_one: Callable[[str], Any]) -> None:
        self._names = names
        self._draw_one = draw_one
        self._drawn: dict[str, Any] = {}

    def __getitem__(self, name: str):
        if name not in self._drawn:
            if name not in self._names:
                raise KeyError(name)
            self._drawn[name] = self._draw_one(name)
        return self._drawn[name]

    def __iter__(self):
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def drawn(self) -> list[str]:
        """The views drawn so far."""
        return list(self._drawn)


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
