"""One declaration per control: an app's settings as a schema.

Each field of an app's ``Params`` dataclass is declared once with :func:`setting`::

    @dataclass(kw_only=True)
    class FlowsParams(Params):
        steps: int = setting(8, "steps", low=1, high=64, invalidates=("trajectories", "scores"))

and everything else is derived from that declaration:

* **validation**: the field's type (``bool``, ``int``, ``float``, ``str``) and its constraint (a
  range ``low``..``high``, or ``choices``) give :meth:`Params.validate`, with one sentence per
  refusal (:mod:`explorer.checks`); rules that tie two fields together go in
  :meth:`Params.check_together`;
* **the widget**: ``control`` ("slider", "log_slider", "dropdown", "toggle", "checkbox", "text",
  "int_text"; ``None`` when the app builds that control itself), its ``label``, ``tooltip``,
  ``step`` and, where the slider shows less than the headless API accepts, ``shown``;
* **the state**: the field's name and value in the JSON state and in a classroom link, read
  back with the field's type (:func:`parse_value`);
* **the caching**: ``invalidates`` names the views (figures) a change of the field redraws;
  ``None`` (the default) means all of them. :class:`explorer.ui.App` keys each figure on the
  values of exactly those fields.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from explorer.checks import check_choice, check_flag, check_integer, check_number

CONTROLS = ("slider", "log_slider", "dropdown", "toggle", "checkbox", "text", "int_text")
_KEY = "explorer.setting"


@dataclass(frozen=True, kw_only=True)
class Setting:
    """What one field of a Params declares: its constraint, its control, what it invalidates."""

    label: str
    tooltip: str = ""
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    why: str = ""  # appended to a refusal: " (the compute functions take up to 10^6)"
    #: allowed values: a sequence, a {value: label} dict, or a function of no argument
    #: returning either (for menus that depend on a registry)
    choices: Sequence | Mapping | Callable[[], Sequence | Mapping] | None = None
    check: Callable[[Any], Any] | None = None  # a further domain check: raises ValueError
    control: str | None = "slider"
    step: float | None = None
    shown: tuple[float, float] | None = None  # the slider's range if narrower than low..high
    options: Sequence | None = None  # a numeric dropdown's menu (validation: low..high)
    readout_format: str | None = None
    continuous_update: bool = False
    invalidates: tuple[str, ...] | None = None  # views redrawn on a change; None: all
    says: str | None = None  # the setting's name in a refusal, if not the field's ("start std")

    def __post_init__(self) -> None:
        if self.control is not None and self.control not in CONTROLS:
            raise ValueError(f"control must be one of {', '.join(CONTROLS)} or None, "
                             f"got {self.control!r}")

    def allowed(self) -> dict:
        """The allowed values with their labels, in menu order ({} when any value of the type
        is allowed)."""
        choices = self.choices() if callable(self.choices) else self.choices
        if choices is None:
            return {}
        if isinstance(choices, Mapping):
            return dict(choices)
        return {value: str(value) for value in choices}

    def validate(self, name: str, kind: type, value) -> None:
        """Refuse ``value`` for the field ``name`` of type ``kind`` with a sentence."""
        name = self.says or name
        if kind is bool:
            check_flag(value, name)
        elif kind is int:
            check_integer(value, name, self.low, self.high, self.why)
        elif kind is float:
            check_number(value, name, self.low, self.high, low_open=self.low_open,
                         high_open=self.high_open, why=self.why)
        elif not isinstance(value, kind):
            raise ValueError(f"{name} must be a {kind.__name__}, got {value!r}")
        if self.choices is not None:
            check_choice(value, self.allowed(), name, self.why)
        if self.check is not None:
            self.check(value)


def setting(default, label: str, **declaration) -> Any:
    """A Params field with its declaration (see :class:`Setting` for the keywords)."""
    return dataclasses.field(default=default, metadata={_KEY: Setting(label=label, **declaration)})


@functools.cache
def settings(params_type: type) -> dict[str, tuple[type, Setting]]:
    """{field name: (its type, its Setting)} for a Params dataclass, in declaration order
    (read once per class: do not change the dict). A field declared without :func:`setting` is
    an error: every setting needs its declaration."""
    hints = typing.get_type_hints(params_type)
    found = {}
    for field in dataclasses.fields(params_type):
        declared = field.metadata.get(_KEY)
        if declared is None:
            raise TypeError(f"{params_type.__name__}.{field.name} is not declared with setting()")
        found[field.name] = (hints[field.name], declared)
    return found


@functools.cache
def field_types(params_type: type) -> dict[str, type]:
    """{field name: its type} of a Params dataclass, declared with setting() or not."""
    hints = typing.get_type_hints(params_type)
    return {field.name: hints[field.name] for field in dataclasses.fields(params_type)}


@functools.cache
def inputs_of(params_type: type, view: str) -> tuple[str, ...]:
    """The fields of a Params dataclass whose change redraws ``view``."""
    return tuple(name for name, (_, declared) in settings(params_type).items()
                 if declared.invalidates is None or view in declared.invalidates)


class Params:
    """Base of every app's Params dataclass: validation derived from the declarations."""

    def validate(self) -> None:
        """Check every field against its declaration, then the rules that tie fields together."""
        for name, (kind, declared) in settings(type(self)).items():
            declared.validate(name, kind, getattr(self, name))
        self.check_together()

    def check_together(self) -> None:
        """Rules between fields (a source allowed for a target, say); override where needed."""


def parse_value(kind: type, text: str):
    """A field's value from the text of a link (``"true"``, ``"8"``, ``"0.5"``, ``"moons"``).
    Text that is not of the field's type stays text, so validation names it."""
    if kind is bool:
        return {"true": True, "false": False}.get(text.lower(), text)
    try:
        if kind is int:
            return int(text)
        if kind is float:
            value = float(text)
            return value if math.isfinite(value) else text
    except ValueError:
        return text
    return text


def format_value(value) -> str:
    """A field's value as the text of a link (the inverse of :func:`parse_value`)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def make_control(name: str, kind: type, declared: Setting, style: dict, layout: dict):
    """The widget a declaration asks for (its value is set when the App binds it)."""
    import ipywidgets as widgets

    common = {"description": declared.label}
    if declared.tooltip:
        common["tooltip"] = declared.tooltip
    if declared.control == "checkbox":
        return widgets.Checkbox(indent=False, **common)
    common["style"] = dict(style)
    if declared.control in ("dropdown", "toggle"):
        menu = declared.allowed() or {v: str(v) for v in declared.options or ()}
        options = [(label, value) for value, label in menu.items()]
        if declared.control == "toggle":
            return widgets.ToggleButtons(options=options, **common)
        return widgets.Dropdown(options=options, layout=widgets.Layout(**layout), **common)
    common["layout"] = widgets.Layout(**layout)
    if declared.control == "text":
        return widgets.Text(continuous_update=False, **common)
    return _numeric_control(widgets, kind, declared, common)


def _numeric_control(widgets, kind: type, declared: Setting, common: dict):
    """A slider (or a box for whole numbers) over the declared or shown range."""
    low, high = declared.shown or (declared.low, declared.high)
    if declared.control == "int_text":
        return widgets.BoundedIntText(min=low, max=high, step=declared.step or 1, **common)
    common["continuous_update"] = declared.continuous_update
    if declared.readout_format:
        common["readout_format"] = declared.readout_format
    if declared.control == "log_slider":  # shown = (lowest, highest) power of ten
        return widgets.FloatLogSlider(min=low, max=high, step=declared.step, **common)
    if kind is int:
        return widgets.IntSlider(min=low, max=high, step=declared.step or 1, **common)
    return widgets.FloatSlider(min=low, max=high, step=declared.step, **common)
