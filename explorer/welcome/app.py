"""The divergence calculator app of the welcome notebook."""

from __future__ import annotations

from dataclasses import dataclass

import ipywidgets as widgets

from .. import divergences
from ..ui import App
from ..ui.layout import ReflowingApp
from ..ui.schema import Params, setting
from . import compute, figures

DEFAULT_PAIRS = {
    "continuous": ("two_modes", "gaussian"),
    "discrete": ("teacher_two_peaks", "student_one_peak"),
}
KINDS = ("continuous", "discrete")


def _every_preset() -> dict[str, str]:
    return {name: compute.LABELS[name] for kind in KINDS for name in compute.presets(kind)}


@dataclass(kw_only=True)
class CalculatorParams(Params):
    kind: str = setting("continuous", "", choices=KINDS, control="toggle",
                        tooltip="continuous densities or discrete token distributions")
    p: str = setting("two_modes", "p (target)", choices=_every_preset, control="dropdown",
                     tooltip="the distribution to fit")
    q: str = setting("gaussian", "q (model)", choices=_every_preset, control="dropdown",
                     tooltip="the model distribution")
    q_shift: float = setting(0.0, "q shift", low=-10.0, high=10.0, shown=(-5.0, 5.0), step=0.1,
                             tooltip="move q left or right")
    q_scale: float = setting(2.0, "q scale", low=0.05, high=10.0, control="log_slider",
                             shown=(-1, 1), step=0.05, tooltip="stretch q (log scale)")
    divergence: str = setting("reverse_kl", "divergence", choices=divergences.names,
                              control=None)
    alpha: float = setting(0.5, "α", check=divergences.check_alpha, control=None)
    samples: int = setting(1000, "samples", low=2, high=1_000_000, shown=(10, 20000), step=10,
                           tooltip="samples of q for the Monte-Carlo estimators")
    seed: int = setting(0, "seed", low=0, control="int_text", shown=(0, 2**31 - 1),
                        tooltip="same seed, same samples")

    def check_together(self) -> None:
        allowed = compute.presets(self.kind)
        for argument in ("p", "q"):
            if getattr(self, argument) not in allowed:
                raise ValueError(
                    f"{argument} = {getattr(self, argument)!r} is not a {self.kind} preset; "
                    f"choose one of: {', '.join(allowed)}"
                )


class CalculatorApp(ReflowingApp, App):
    """Every f-divergence between two distributions, with the gradient weight h(r)."""

    Params = CalculatorParams
    title = "Divergence calculator"
    first_view_imports = ("torch",)  # see App.first_view_imports
    description = (
        "Pick a target p and a model q. The table gives every registered divergence D(p‖q); "
        "the curve shows how the chosen one weighs regions by the ratio r = p/q."
    )
    presets = {
        "q too narrow: reverse KL is fine, Pearson explodes": dict(
            kind="continuous", p="gaussian", q="gaussian", q_shift=0.0, q_scale=0.5
        ),
        "q wider than p: Neyman explodes": dict(
            kind="continuous", p="gaussian", q="gaussian", q_shift=1.0, q_scale=2.0
        ),
        "q outside p's support: reverse KL is infinite": dict(
            kind="continuous", p="uniform", q="gaussian", q_shift=0.0, q_scale=1.0
        ),
        "student misses teacher's tokens: forward KL is infinite": dict(
            kind="discrete", p="teacher_two_peaks", q="no_last_tokens"
        ),
    }

    def compute(self, params: CalculatorParams) -> compute.CalculatorResult:
        return compute.calculate(
            params.kind,
            params.p,
            params.q,
            params.q_shift,
            params.q_scale,
            params.divergence,
            params.alpha,
            int(params.samples),
            params.seed,
        )

    def views(self) -> dict:
        return {"densities": figures.densities,
                "weight": lambda result: figures.weight_curve(result.chosen, result.alpha),
                "table": figures.table, "estimators": figures.estimator_table}

    def notes(self, result):
        if result.p_outside_q > 0:
            return [f"q is zero where p has {result.p_outside_q:.4g} of its mass: k3 is biased "
                    f"by −{result.p_outside_q:.4g} here (E_q[p/q] = {1 - result.p_outside_q:.4g}"
                    ", not 1)."]
        return []

    def build_controls(self):
        def kind_changed(new):
            p, q = DEFAULT_PAIRS[new]
            self.apply(kind=new, p=p, q=q)

        kind = self.control("kind", on_change=kind_changed,
                            tooltips=["1D densities", "distributions over 8 tokens"])
        self._p_menu, self._q_menu = self.control("p"), self.control("q")
        self._refresh_menus()
        self._continuous_only = widgets.VBox([self.control("q_shift"), self.control("q_scale")])
        return [
            kind, self._p_menu, self._q_menu, self._continuous_only, self.divergence_picker(),
            self.control("samples"), self.control("seed"),
        ]

    def layout_views(self, views):
        # beside the controls where a 520 px figure fits (JupyterLab at 1440 px with its file
        # browser open), the figures one under the other there and side by side on a wide
        # screen; under the controls where it does not fit (the rows wrap: ui.layout.ReflowingApp)
        return widgets.Box(
            list(views.values()),
            layout=widgets.Layout(display="flex", flex_flow="row wrap", align_items="flex-start",
                                  flex="1 1 540px"),
        )

    def _refresh_menus(self) -> None:
        options = [(compute.LABELS[name], name) for name in compute.presets(self.params.kind)]
        for menu in (self._p_menu, self._q_menu):
            if list(menu.options) != options:
                menu.options = options
        descriptions = compute.CONTINUOUS if self.params.kind == "continuous" else {}
        self._p_menu.tooltip = descriptions.get(self.params.p, self._p_menu.tooltip)

    def _sync_controls(self) -> None:
        if hasattr(self, "_p_menu"):
            self._syncing = True
            try:
                self._refresh_menus()
                self._continuous_only.layout.display = (
                    None if self.params.kind == "continuous" else "none"
                )
            finally:
                self._syncing = False
        super()._sync_controls()
