"""The shared divergence picker: a dropdown of the registry, an alpha slider that appears only for
the alpha family, and a line that states the convention, the formula and the behaviour."""

from __future__ import annotations

import html
import math
import re

import ipywidgets as widgets

from .. import divergences


def divergence_options(include: list[str] | None = None) -> list[tuple[str, str]]:
    """(label, name) pairs for a dropdown, in registry order."""
    chosen = divergences.names() if include is None else include
    options = []
    for name in chosen:
        member = divergences.get(name, 0.5 if name == "alpha" else None)
        options.append((member.title, name))
    return options


def short_label(name: str) -> str:
    """The words a reader sees for the registered divergence ``name``: "forward KL", never the
    id "forward_kl" (the ids are the API: ``app.set(divergence="forward_kl")``)."""
    return divergences.get(name, 0.5 if name == "alpha" else None).label.split("  ")[0]


def readable(text: str) -> str:
    """``text`` with every registered divergence id replaced by its :func:`short_label`."""
    for name in divergences.names():
        text = re.sub(rf"\b{name}\b", short_label(name), text)
    return text


def describe(name: str, alpha: float | None) -> str:
    """HTML: formula, f(0), lim f(t)/t and the behaviour they imply."""
    member = divergences.get(name, alpha if name == "alpha" else None)

    def show(value: float) -> str:
        return "∞" if math.isinf(value) else f"{value:.4g}"

    return (
        f"<div style='font-size:12px;line-height:1.4'>"
        f"$${member.latex}$$"
        f"f(0) = {show(member.f_at_zero)}, lim f(t)/t = {show(member.slope_at_infinity)} "
        f"→ <b>{html.escape(member.behaviour)}</b><br>"
        f"<span style='color:#666'>{html.escape(readable(divergences.CONVENTION))}</span></div>"
    )


class DivergencePicker:
    """Dropdown + alpha slider + description. ``dropdown`` and ``slider`` are bound by the App."""

    def __init__(self, include: list[str] | None = None, alpha_range=(-1.0, 2.0)):
        self.dropdown = widgets.Dropdown(
            options=divergence_options(include),
            description="divergence",
            tooltip="which f-divergence D(p‖q) the model q minimises",
            style={"description_width": "initial"},
        )
        self.slider = widgets.FloatSlider(
            value=0.5,
            min=alpha_range[0],
            max=alpha_range[1],
            step=0.05,
            description="α",
            continuous_update=False,
            tooltip="alpha family: α→1 is forward KL, α→0 is reverse KL",
        )
        self.text = widgets.HTMLMath()
        self.widget = widgets.VBox([self.dropdown, self.slider, self.text])
        self.dropdown.observe(lambda _change: self.refresh(), names="value")
        self.slider.observe(lambda _change: self.refresh(), names="value")
        self.refresh()

    def refresh(self) -> None:
        is_alpha = self.dropdown.value == "alpha"
        self.slider.layout.display = None if is_alpha else "none"
        self.text.value = describe(self.dropdown.value, self.slider.value if is_alpha else None)
