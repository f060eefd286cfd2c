"""The frontier explorer app: reward against KL for alignment methods, exact and trained."""

from __future__ import annotations

from dataclasses import dataclass

import ipywidgets as widgets

from .. import divergences
from ..ui import App
from ..ui.layout import ReflowingApp
from ..ui.schema import Params, setting
from . import compute, figures
from .exact import divergence_name
from .scenario import REFERENCES, REWARDS
from .trained import train

#: The app keeps a slider move fast (a new 10,000-response scenario takes a few seconds, mostly
#: one root per beta for the f-regularised curves); the compute functions take up to 10^6.
APP_MAX_RESPONSES = 10_000
TRAIN_CHOICES = ("reverse_kl", "forward_kl", "js", "alpha", "chi_po")
#: What the gold-reward menu shows (ids are code, not words).
REWARD_LABELS = {"gaussian": "Gaussian", "heavy_tailed": "heavy-tailed", "verifiable": "verifiable (0/1)"}
#: The views drawn from the selected policies (and the trained ones): every change redraws them.
SELECTED = ("plane", "measures", "policy")
#: The curves of the diversity view: the registry's f among them.
CURVES = (*SELECTED, "diversity")
NOT_TV = "registry divergences other than tv (its f' is not invertible)"


def _regularisers() -> dict[str, str]:
    return {name: divergences.get(name, 0.5 if name == "alpha" else None).title
            for name in divergences.names() if name != "tv"}


@dataclass(kw_only=True)
class FrontierParams(Params):
    # the scenario: every view changes with it
    n_responses: int = setting(2000, "responses", low=10, high=APP_MAX_RESPONSES, control="dropdown",
                               options=(100, 500, 2000, 10_000),
                               why=" in the app (the compute functions take up to 10^6)")
    reference: str = setting("zipf", "π_ref", choices=REFERENCES, control="dropdown")
    reward: str = setting("gaussian", "gold reward", control="dropdown",
                          choices={r: REWARD_LABELS[r] for r in REWARDS})
    correlation: float = setting(0.8, "proxy–gold corr.", low=-1.0, high=1.0, step=0.05)
    n_hackable: int = setting(0, "hackable", low=0, shown=(0, 20),
                              tooltip="rare responses whose proxy reward is inflated")
    seed: int = setting(0, "seed", low=0, control="int_text", shown=(0, 2**32 - 1))
    # the methods
    divergence: str = setting("forward_kl", "divergence", choices=_regularisers, control=None,
                              why=f"; the regulariser is one of the {NOT_TV}", invalidates=CURVES)
    alpha: float = setting(0.5, "α", check=divergences.check_alpha, control=None, invalidates=CURVES)
    beta: float = setting(0.3, "β (selected)", low=0.0, low_open=True, control="log_slider",
                          shown=(-2, 1.4), step=0.05, why=" (the KL penalty strength)",
                          invalidates=SELECTED)
    n: int = setting(16, "n (best-of-n)", low=1, high=10**9, shown=(1, 4096), invalidates=SELECTED)
    k: int = setting(8, "k (pass@k)", low=1, high=10**6, shown=(1, 64), invalidates=CURVES)
    x_axis: str = setting("kl", "x", choices={"kl": "KL", "sqrt_kl": "√KL"}, control="toggle",
                          invalidates=(*CURVES, "two_rewards"))
    y_reward: str = setting("gold", "y", choices=("gold", "proxy"), control="toggle",
                            invalidates=SELECTED)
    delta: float = setting(0.3, "Δ (memoryless)", low=0.0, high=1.2, low_open=True, high_open=True,
                           shown=(0.05, 1.15), step=0.05, invalidates=(*SELECTED, "memoryless"),
                           why=" nats per token (the example's tokens allow at most -log 0.1 = "
                               "2.3, and N = e^(L delta) must stay representable)")
    # training (the button trains with these; they change no view by themselves)
    train_method: str = setting("pg", "method", control="dropdown", invalidates=(),
                                choices={"pg": "policy gradient + KL", "dpo": "DPO family"})
    train_divergence: str = setting("reverse_kl", "DPO divergence", control="dropdown",
                                    choices=lambda: {c: divergence_name(c) for c in TRAIN_CHOICES},
                                    invalidates=())
    train_iters: int = setting(300, "iterations", low=1, high=20_000, shown=(50, 3000), step=50,
                               invalidates=())
    # comparing the methods
    compare: str = setting("parameter", "methods", control="toggle", invalidates=SELECTED,
                           choices={"parameter": "at selected β, n", "equal_kl": "at equal KL"})
    kl_budget: float = setting(1.0, "KL budget [nats]", low=0.0, low_open=True,
                               shown=(0.05, 7.0), step=0.05, invalidates=SELECTED)
    infalign_t_auto: bool = setting(True, "InfAlign t: chosen for n (untick to set it)",
                                    control="checkbox", invalidates=SELECTED)
    infalign_t: float = setting(6.0, "InfAlign t (manual)", low=0.0, high=500.0, low_open=True,
                                control="log_slider", shown=(-1, 2.3), step=0.05,
                                why=" (e^(t c) must stay finite)", invalidates=SELECTED)

    def check_together(self) -> None:
        if self.n_hackable > self.n_responses // 10:
            raise ValueError(f"n_hackable must be from 0 to {self.n_responses // 10}, "
                             f"got {self.n_hackable!r}")

    @property
    def scenario_key(self) -> tuple:
        return (self.n_responses, self.reference, self.reward, float(self.correlation),
                self.n_hackable, self.seed)


class FrontierApp(ReflowingApp, App):
    """Reward vs KL for KL-RL, best-of-n, f-DPO, chi-PO and InfAlign, exact and trained."""

    Params = FrontierParams
    renames = {2: {"train_steps": "train_iters"}}  # iterations are iters (GLOSSARY.md)
    # a fixed description column keeps labels whole inside the narrow control tabs; a fixed
    # width would be wider than the tab at 1440 px, cutting arrows
    control_style = {"description_width": "120px"}
    control_layout = {"width": "96%"}
    title = "Reward–KL frontiers: what each alignment method buys per nat"
    description = (
        "Every curve is an exact optimum on a finite set of responses (float64, no sampling). "
        "Methods optimise the <i>proxy</i> reward; the <i>gold</i> reward shows when that hurts. "
        "The regulariser D is the registry's D(π_ref‖π): the policy is the fitted q, so "
        "reverse KL = KL(π‖π_ref), the usual RL penalty. “Train” runs a tabular policy live."
    )
    presets = {
        "default: Gaussian gold, proxy correlation 0.8": dict(
            reward="gaussian", correlation=0.8, n_hackable=0, divergence="forward_kl",
            x_axis="kl", y_reward="gold", beta=0.3, n=16, compare="parameter"),
        "reward hacking: 3 rare hackable responses": dict(
            reward="gaussian", correlation=0.8, n_hackable=3, divergence="forward_kl",
            x_axis="sqrt_kl", y_reward="gold", beta=0.3, n=16, compare="parameter"),
        "verifiable answers: coverage and pass@k": dict(
            reward="verifiable", correlation=0.9, n_hackable=0, divergence="js",
            x_axis="kl", y_reward="gold", beta=0.1, n=16, k=8, compare="parameter"),
        "plain χ² (neyman here) makes zeros": dict(
            reward="gaussian", correlation=0.8, n_hackable=0, divergence="neyman",
            x_axis="kl", y_reward="gold", beta=0.3, compare="parameter"),
        "heavy-tailed gold, weak proxy": dict(
            reward="heavy_tailed", correlation=0.5, n_hackable=0, divergence="forward_kl",
            x_axis="kl", y_reward="gold", beta=0.3, compare="parameter"),
        "equal KL: every method at 1 nat": dict(
            reward="gaussian", correlation=0.8, n_hackable=0, divergence="forward_kl",
            x_axis="kl", y_reward="gold", compare="equal_kl", kl_budget=1.0, n=16),
    }

    view_pages = {
        "frontier": ["plane", "measures"], "Goodhart": ["overoptimisation"],
        "diversity": ["diversity"], "policy": ["policy"], "two rewards": ["two_rewards"],
        "memoryless": ["memoryless"],
    }

    def __init__(self, **params):
        self._trajectories: dict[tuple, list] = {}
        super().__init__(**params)

    # ----- science ------------------------------------------------------------------------
    def compute(self, params: FrontierParams) -> compute.FrontierResult:
        result = compute.explore(
            n_responses=params.n_responses, reference=params.reference, reward=params.reward,
            correlation=params.correlation, n_hackable=params.n_hackable, seed=params.seed,
            divergence=params.divergence, alpha=params.alpha, beta=params.beta, n=params.n,
            k=params.k, delta=params.delta, x_axis=params.x_axis, y_reward=params.y_reward,
            compare=params.compare, kl_budget=params.kl_budget,
            infalign_t=None if params.infalign_t_auto else params.infalign_t,
        )
        result.trajectories = list(self._trajectories.get(params.scenario_key, []))
        result.targets = [
            compute.population_target(params.scenario_key, run.method, run.divergence, run.alpha, run.beta)
            for run in result.trajectories
        ]
        result.finite_targets = [compute.finite_data_target(params.scenario_key, run) for run in result.trajectories]
        return result

    def notes(self, result) -> list[str]:
        trained = [run.data.sentence() for run in result.trajectories if run.data is not None]
        return list(result.notes) + list(dict.fromkeys(trained))

    def views(self) -> dict:
        return {"plane": figures.frontier_plane, "measures": figures.measures_table,
                "policy": figures.policy_bars, "overoptimisation": figures.overoptimisation,
                "diversity": figures.diversity, "memoryless": figures.memoryless,
                "two_rewards": figures.two_rewards}

    def view_version(self, name: str, params, result) -> tuple:
        """The trained policies drawn on the plane (and in its tables): how far each got."""
        if name not in SELECTED:
            return ()
        return tuple((run.method, run.divergence, run.beta, run.alpha, len(run.iters),
                      run.policy is not None) for run in result.trajectories)

    # ----- training (long work, in the Runner) -----------------------------------------------
    def train(self, wait: bool = False, **overrides) -> None:
        """Train a tabular policy on the proxy at the current beta; its trajectory is drawn live
        on the plane. ``wait=True`` runs in the calling thread (headless use and tests)."""
        params = self.params
        method = overrides.get("method", params.train_method)
        divergence = overrides.get("divergence", params.train_divergence)
        iters = overrides.get("iters", params.train_iters)
        key = params.scenario_key
        s = compute.cached_scenario(*key)
        alpha = params.alpha if divergence == "alpha" else None
        runs = self._trajectories.setdefault(key, [])
        if method == "pg":
            divergence = "reverse_kl"

        def work(report):
            def progress(fraction, message, partial=None):
                if partial is not None and not any(run is partial for run in runs):
                    runs.append(partial)
                report(fraction, message, partial=partial)

            return train(
                s.pi_ref, s.proxy, gold=s.gold, method=method, beta=params.beta,
                divergence=divergence, alpha=alpha, iters=iters,
                learning_rate=overrides.get("learning_rate", 0.05), seed=params.seed,
                report=progress, record_every=max(1, iters // 60),
            )

        def show(_partial_or_final):
            self.show_result(self.compute(self.params))

        self.runner.start(work, on_update=show, on_done=show, wait=wait)

    def clear_training(self) -> None:
        self._trajectories.pop(self.params.scenario_key, None)
        self.show_result(self.compute(self.params))

    # ----- widgets ------------------------------------------------------------------------
    def build_controls(self) -> list[widgets.Widget]:
        scenario = widgets.VBox([
            *map(self.control, ("reference", "reward", "correlation", "n_hackable", "n_responses")),
            self.control("seed", layout=widgets.Layout(width="220px")),
        ])
        methods = widgets.VBox([
            widgets.HTML("<b>f-regularised optimum (f-DPO)</b>"),
            self.divergence_picker(include=list(_regularisers())),
            *map(self.control, ("beta", "n", "k")),
            widgets.HTML("<b>compare</b>"),
            *map(self.control, ("compare", "kl_budget")),
            self.control("infalign_t_auto", layout=widgets.Layout(width="96%")),
            self.control("infalign_t"),
        ])
        view = widgets.VBox([*map(self.control, ("x_axis", "y_reward", "delta"))])
        training = widgets.VBox([
            *map(self.control, ("train_method", "train_divergence", "train_iters")),
            widgets.HBox([self.button("Train", self.train, icon="play"),
                          self.button("Clear", self.clear_training)]),
        ])
        # the column's widest (see ui.app): slider tracks keep about 150 px beside their labels
        tabs = widgets.Tab([scenario, methods, view, training], layout=widgets.Layout(width="360px"))
        for i, name in enumerate(("scenario", "methods", "view", "train")):
            tabs.set_title(i, name)
        return [tabs]

    def layout_views(self, views: dict[str, widgets.Widget]) -> widgets.Widget:
        # beside the controls where a figure fits (1440 px with Lab's file browser open), else
        # under them, filling the line; six one-word titles fit the tab bar at either width.
        # A move redraws the tab shown; the others when chosen (App.view_tabs)
        return self.view_tabs(views, flex="1 1 620px")
