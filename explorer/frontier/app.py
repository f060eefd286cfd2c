"""The frontier explorer app: reward against KL for alignment methods, exact and trained."""

from __future__ import annotations

import math
from dataclasses import dataclass

import ipywidgets as widgets

from .. import divergences
from ..device import check_seed
from ..ui import App
from ..ui.layout import ReflowingApp
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


@dataclass
class FrontierParams:
    n_responses: int = 2000
    reference: str = "zipf"
    reward: str = "gaussian"
    correlation: float = 0.8
    n_hackable: int = 0
    seed: int = 0
    divergence: str = "forward_kl"
    alpha: float = 0.5
    beta: float = 0.3
    n: int = 16
    k: int = 8
    x_axis: str = "kl"
    y_reward: str = "gold"
    delta: float = 0.3
    train_method: str = "pg"
    train_divergence: str = "reverse_kl"
    train_steps: int = 300
    compare: str = "parameter"
    kl_budget: float = 1.0
    infalign_t_auto: bool = True
    infalign_t: float = 6.0

    def validate(self) -> None:
        if not (isinstance(self.n_responses, int) and 10 <= self.n_responses <= APP_MAX_RESPONSES):
            raise ValueError(
                f"n_responses must be a whole number from 10 to {APP_MAX_RESPONSES:,} in the app "
                f"(the compute functions take up to 10^6); got {self.n_responses!r}"
            )
        for field, allowed in (("reference", REFERENCES), ("reward", REWARDS),
                               ("x_axis", ("kl", "sqrt_kl")), ("y_reward", ("gold", "proxy")),
                               ("train_method", ("pg", "dpo")), ("train_divergence", TRAIN_CHOICES)):
            if getattr(self, field) not in allowed:
                raise ValueError(f"{field} must be one of: {', '.join(allowed)}; got {getattr(self, field)!r}")
        if not -1.0 <= self.correlation <= 1.0:
            raise ValueError(f"correlation must be between -1 and 1, got {self.correlation}")
        if not (isinstance(self.n_hackable, int) and 0 <= self.n_hackable <= self.n_responses // 10):
            raise ValueError(f"n_hackable must be from 0 to {self.n_responses // 10}, got {self.n_hackable!r}")
        check_seed(self.seed)
        if self.divergence == "tv" or self.divergence not in divergences.names():
            raise ValueError(
                f"divergence must be a registry divergence other than tv (its f' is not invertible); "
                f"got {self.divergence!r}"
            )
        divergences.check_alpha(self.alpha)
        if not (isinstance(self.beta, (int, float)) and math.isfinite(self.beta) and self.beta > 0):
            raise ValueError(f"beta must be > 0 (the KL penalty strength), got {self.beta!r}")
        for field, low, high in (("n", 1, 10**9), ("k", 1, 10**6), ("train_steps", 1, 20_000)):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise ValueError(f"{field} must be a whole number from {low} to {high:,}, got {value!r}")
        if self.compare not in compute.COMPARE:
            raise ValueError(f"compare must be one of: {', '.join(compute.COMPARE)}; got {self.compare!r}")
        if not isinstance(self.infalign_t_auto, bool):
            raise ValueError(f"infalign_t_auto must be True or False, got {self.infalign_t_auto!r}")
        if isinstance(self.infalign_t, bool) or not (
                isinstance(self.infalign_t, (int, float)) and 0 < self.infalign_t <= 500):
            raise ValueError(f"infalign_t must be a number in (0, 500] (e^(t c) must stay finite), got {self.infalign_t!r}")
        if isinstance(self.kl_budget, bool) or not (
                isinstance(self.kl_budget, (int, float)) and math.isfinite(self.kl_budget) and self.kl_budget > 0):
            raise ValueError(f"kl_budget must be a positive number of nats, got {self.kl_budget!r}")
        if not (isinstance(self.delta, (int, float)) and 0 < self.delta < 1.2):
            raise ValueError(
                f"delta must be between 0 and 1.2 nats per token (the example's tokens allow at "
                f"most -log 0.1 = 2.3, and N = e^(L delta) must stay representable); got {self.delta!r}"
            )

    @property
    def scenario_key(self) -> tuple:
        return (self.n_responses, self.reference, self.reward, float(self.correlation),
                self.n_hackable, self.seed)


class FrontierApp(ReflowingApp, App):
    """Reward vs KL for KL-RL, best-of-n, f-DPO, chi-PO and InfAlign, exact and trained."""

    Params = FrontierParams
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

    def __init__(self, **params):
        self._trajectories: dict[tuple, list] = {}
        self._figure_cache: dict[str, tuple] = {}
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

    def make_figures(self, result: compute.FrontierResult) -> dict:
        """Figures that depend only on cached curves are reused when a slider leaves them alone."""
        x_axis, k = result.settings["x_axis"], result.settings["k"]
        curves = result.curves
        return {
            "plane": figures.frontier_plane(result),
            "measures": figures.measures_table(result),
            "policy": figures.policy_bars(result),
            "overoptimisation": self._cached(
                "overoptimisation", (id(curves["kl_rl"]), id(curves["bon"])),
                figures.overoptimisation, result),
            "diversity": self._cached(
                "diversity", (*(id(curves[key]) for key in figures.DIVERSITY_CURVES), x_axis, k),
                figures.diversity, result),
            "memoryless": self._cached("memoryless", (id(result.memoryless),), figures.memoryless, result),
            "two_rewards": self._cached(
                "two_rewards", (id(result.two_rewards), x_axis), figures.two_rewards, result),
        }

    def _cached(self, name, key, draw, result):
        cached = self._figure_cache.get(name)
        if cached is not None and cached[0] == key:
            return cached[1]
        figure = draw(result)
        self._figure_cache[name] = (key, figure)
        return figure

    # ----- training (long work, in the Runner) -----------------------------------------------
    def train(self, wait: bool = False, **overrides) -> None:
        """Train a tabular policy on the proxy at the current beta; its trajectory is drawn live
        on the plane. ``wait=True`` runs in the calling thread (headless use and tests)."""
        params = self.params
        method = overrides.get("method", params.train_method)
        divergence = overrides.get("divergence", params.train_divergence)
        steps = overrides.get("steps", params.train_steps)
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
                divergence=divergence, alpha=alpha, steps=steps,
                learning_rate=overrides.get("learning_rate", 0.05), seed=params.seed,
                report=progress, record_every=max(1, steps // 60),
            )

        def show(_partial_or_final):
            self.show_result(self.compute(self.params))

        self.runner.start(work, on_update=show, on_done=show, wait=wait)

    def clear_training(self) -> None:
        self._trajectories.pop(self.params.scenario_key, None)
        self.show_result(self.compute(self.params))

    # ----- widgets ------------------------------------------------------------------------
    def build_controls(self) -> list[widgets.Widget]:
        # a fixed description column keeps labels whole inside the narrow control tabs
        style = {"description_width": "120px"}
        fill = {"width": "96%"}  # a fixed width would be wider than the tab at 1440 px, cutting arrows
        slider = dict(continuous_update=False, style=style, layout=fill)
        log_beta = widgets.FloatLogSlider(min=-2, max=1.4, step=0.05, description="β (selected)", **slider)
        scenario = widgets.VBox([
            self.bind(widgets.Dropdown(options=REFERENCES, description="π_ref", style=style, layout=fill), "reference"),
            self.bind(widgets.Dropdown(options=[(REWARD_LABELS[r], r) for r in REWARDS], description="gold reward", style=style, layout=fill), "reward"),
            self.bind(widgets.FloatSlider(min=-1, max=1, step=0.05, description="proxy–gold corr.", **slider), "correlation"),
            self.bind(widgets.IntSlider(min=0, max=20, description="hackable", tooltip="rare responses whose proxy reward is inflated", **slider), "n_hackable"),
            self.bind(widgets.Dropdown(options=[100, 500, 2000, 10_000], description="responses", style=style, layout=fill), "n_responses"),
            self.bind(widgets.IntText(description="seed", style=style, layout={"width": "220px"}), "seed"),
        ])
        methods = widgets.VBox([
            widgets.HTML("<b>f-regularised optimum (f-DPO)</b>"),
            self.divergence_picker(include=[n for n in divergences.names() if n != "tv"]),
            self.bind(log_beta, "beta"),
            self.bind(widgets.IntSlider(min=1, max=4096, description="n (best-of-n)", **slider), "n"),
            self.bind(widgets.IntSlider(min=1, max=64, description="k (pass@k)", **slider), "k"),
            widgets.HTML("<b>compare</b>"),
            self.bind(widgets.ToggleButtons(options=[("at selected β, n", "parameter"), ("at equal KL", "equal_kl")],
                                            description="methods", style=style), "compare"),
            self.bind(widgets.FloatSlider(min=0.05, max=7.0, step=0.05, description="KL budget [nats]", **slider), "kl_budget"),
            self.bind(widgets.Checkbox(description="InfAlign t: chosen for n (untick to set it)", indent=False,
                                       layout={"width": "96%"}), "infalign_t_auto"),
            self.bind(widgets.FloatLogSlider(min=-1, max=2.3, step=0.05, description="InfAlign t (manual)", **slider), "infalign_t"),
        ])
        view = widgets.VBox([
            self.bind(widgets.ToggleButtons(options=[("KL", "kl"), ("√KL", "sqrt_kl")], description="x", style=style), "x_axis"),
            self.bind(widgets.ToggleButtons(options=["gold", "proxy"], description="y", style=style), "y_reward"),
            self.bind(widgets.FloatSlider(min=0.05, max=1.15, step=0.05, description="Δ (memoryless)", **slider), "delta"),
        ])
        training = widgets.VBox([
            self.bind(widgets.Dropdown(options=[("policy gradient + KL", "pg"), ("DPO family", "dpo")], description="method", style=style, layout=fill), "train_method"),
            self.bind(widgets.Dropdown(options=[(divergence_name(c), c) for c in TRAIN_CHOICES], description="DPO divergence", style=style, layout=fill), "train_divergence"),
            self.bind(widgets.IntSlider(min=50, max=3000, step=50, description="steps", **slider), "train_steps"),
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
        # under them, filling the line; six one-word titles fit the tab bar at either width
        tabs = widgets.Tab([
            widgets.VBox([views["plane"], views["measures"]]),
            views["overoptimisation"], views["diversity"], views["policy"], views["two_rewards"],
            views["memoryless"],
        ], layout=widgets.Layout(flex="1 1 620px"))
        names = ("frontier", "Goodhart", "diversity", "policy", "two rewards", "memoryless")
        for i, name in enumerate(names):
            tabs.set_title(i, name)
        return tabs
