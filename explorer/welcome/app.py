"""The divergence calculator app of the welcome notebook."""

from __future__ import annotations

from dataclasses import dataclass

import ipywidgets as widgets
import numpy as np

from ..device import check_seed
from ..divergences import check_alpha, names
from ..ui import App
from ..ui.layout import ReflowingApp
from . import compute, figures

DEFAULT_PAIRS = {
    "continuous": ("two_modes", "gaussian"),
    "discrete": ("teacher_two_peaks", "student_one_peak"),
}


@dataclass
class CalculatorParams:
    kind: str = "continuous"
    p: str = "two_modes"
    q: str = "gaussian"
    q_shift: float = 0.0
    q_scale: float = 2.0
    divergence: str = "reverse_kl"
    alpha: float = 0.5
    samples: int = 1000
    seed: int = 0

    def validate(self) -> None:
        for name in ("q_shift", "q_scale", "alpha"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float, np.integer,
                                                                  np.floating)):
                raise ValueError(f"{name} must be a number, got {value!r}")
        if isinstance(self.samples, bool) or not isinstance(self.samples, (int, np.integer)):
            raise ValueError(f"samples must be a whole number, got {self.samples!r}")
        if self.kind not in ("continuous", "discrete"):
            raise ValueError(f"kind must be 'continuous' or 'discrete', got {self.kind!r}")
        allowed = compute.presets(self.kind)
        for argument in ("p", "q"):
            if getattr(self, argument) not in allowed:
                raise ValueError(
                    f"{argument} = {getattr(self, argument)!r} is not a {self.kind} preset; "
                    f"choose one of: {', '.join(allowed)}"
                )
        if not 0.05 <= self.q_scale <= 10:
            raise ValueError(f"q_scale must be between 0.05 and 10, got {self.q_scale}")
        if not -10 <= self.q_shift <= 10:
            raise ValueError(f"q_shift must be between -10 and 10, got {self.q_shift}")
        if self.divergence not in names():
            raise ValueError(
                f"unknown divergence {self.divergence!r}; choose one of: {', '.join(names())}"
            )
        check_alpha(self.alpha)
        if not 2 <= int(self.samples) <= 1_000_000:
            raise ValueError(f"samples must be between 2 and 1,000,000, got {self.samples}")
        check_seed(self.seed)


class CalculatorApp(ReflowingApp, App):
    """Every f-divergence between two distributions, with the gradient weight h(r)."""

    Params = CalculatorParams
    title = "Divergence calculator"
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

    def compute(self, params: CalculatorParams) -> compute.Calculation:
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

    def make_figures(self, result):
        return {
            "densities": figures.densities(result),
            "weight": figures.weight_curve(result.chosen, result.alpha),
            "table": figures.table(result),
            "estimators": figures.estimator_table(result),
        }

    def notes(self, result):
        if result.p_outside_q > 0:
            return [f"q is zero where p has {result.p_outside_q:.4g} of its mass: k3 is biased "
                    f"by −{result.p_outside_q:.4g} here (E_q[p/q] = {1 - result.p_outside_q:.4g}"
                    ", not 1)."]
        return []

    def build_controls(self):
        kind = widgets.ToggleButtons(
            options=["continuous", "discrete"],
            value=self.params.kind,
            tooltips=["1D densities", "distributions over 8 tokens"],
            tooltip="continuous densities or discrete token distributions",
        )
        self._p_menu = widgets.Dropdown(description="p (target)", tooltip="the distribution to fit")
        self._q_menu = widgets.Dropdown(description="q (model)", tooltip="the model distribution")
        self._refresh_menus()
        shift = widgets.FloatSlider(
            min=-5,
            max=5,
            step=0.1,
            description="q shift",
            continuous_update=False,
            tooltip="move q left or right",
        )
        scale = widgets.FloatLogSlider(
            min=-1,
            max=1,
            step=0.05,
            description="q scale",
            continuous_update=False,
            tooltip="stretch q (log scale)",
        )
        samples = widgets.IntSlider(
            min=10,
            max=20000,
            step=10,
            description="samples",
            continuous_update=False,
            tooltip="samples of q for the Monte-Carlo estimators",
        )
        seed = widgets.IntText(description="seed", tooltip="same seed, same samples")
        self._continuous_only = widgets.VBox(
            [self.bind(shift, "q_shift"), self.bind(scale, "q_scale")]
        )

        def kind_changed(change):
            if not self._syncing:
                p, q = DEFAULT_PAIRS[change["new"]]
                self.apply(kind=change["new"], p=p, q=q)

        kind.observe(self.status.guard(kind_changed), names="value")
        self._controls["kind"] = kind
        return [
            kind,
            self.bind(self._p_menu, "p"),
            self.bind(self._q_menu, "q"),
            self._continuous_only,
            self.divergence_picker(),
            self.bind(samples, "samples"),
            self.bind(seed, "seed"),
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
