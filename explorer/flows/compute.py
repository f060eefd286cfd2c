"""The flows explorer's experiments: comparison grids of sources x couplings, their shipped
pretrained weights, and the cached evaluations behind every view.

Everything an app view shows comes from here; the science lives in ``targets``, ``sources``,
``couplings``, ``training``, ``sampling`` and ``metrics``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from ..deferred import Deferred
from .couplings import COUPLINGS, make_pairing
from .metrics import (
    Reference,
    Scores,
    crossing_fraction,
    make_reference,
    noise_floor,
    score,
    straightness,
)
from .sampling import (
    SOLVERS,
    Pruning,
    Trajectory,
    draw_source,
    integrate,
    pruned_mass,
    pruning_for,
)
from .sources import DEFAULT_OPTIONS, LEARNED_PARAMETERS, LearnedParams, Source, make_source
from .targets import get_target
from .training import (
    FlowModel,
    TrainSettings,
    data_stream,
    draw_pairs,
    source_stream,
    train_many,
)

DATA_DIR = Path(__file__).parent / "data"
GRID_COUPLINGS = ("independent", "ot")
STEP_CHOICES = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 64)
W2_CURVE_STEPS = (1, 2, 4, 8, 16, 32)
# Every minibatch gets its own exact OT coupling (pair_reuse=1, as in OT-CFM): the solver of
# assignment.py made reusing couplings unnecessary (and reuse costs W2, see train).
DEFAULT_SETTINGS = TrainSettings(iters=2000, batch_size=256, seed=0, learning_rate=3e-3, sigma=0.0,
                                 pair_reuse=1)
EVAL_SEED = 2024
GRID_PROTOCOL = (16, "midpoint", None, 256)  # how the comparison grid is scored: fixed, cached


def grid_sources(target: str) -> list[str]:
    """The sources of the comparison grid for ``target``. In the high-dimension simulation the
    "Gaussian" is the chi ring (hd_gaussian) and the norm-aligned and directional sources start
    from it."""
    if target == "hd_simulation":
        return ["hd_gaussian", "norm_aligned", "gaussian", "density_approx", "directional",
                "learned"]
    return ["gaussian", "norm_aligned", "uniform", "density_approx", "directional", "learned"]


def source_options(name: str, target: str, tau: float = 0.9, components: int = 2,
                   var_reg: float = 1.0, align_reg: float = 0.1) -> dict:
    """The options a grid source is built with, from the app's controls."""
    base = {"base": "hd_gaussian"} if target == "hd_simulation" else {}
    if name == "norm_aligned":
        return base
    if name == "directional":
        return {**base, "tau": float(tau)}
    if name == "density_approx":
        return {"components": int(components)}
    if name == "learned":
        return {"var_reg": float(var_reg), "align_reg": float(align_reg)}
    return {}


def model_key(target: str, source: str, options: dict, coupling: str,
              settings: TrainSettings) -> str:
    """A text key naming one trained model: what it was trained on and how."""
    opts = {**DEFAULT_OPTIONS[source], **options}
    return json.dumps([target, source, opts, coupling, vars(settings)], sort_keys=True)


# ----- a store of trained models (shipped ones plus those trained in this session) ----------

_STORE: dict[str, FlowModel] = {}
_LOADED: set[str] = set()  # the targets whose shipped models are in the store
_STORED = [0]  # how many times models were stored: a view drawn from older ones is stale


def store_generation() -> int:
    """A number that grows whenever trained models are stored (see the app's view cache)."""
    return _STORED[0]


def stored(key: str) -> FlowModel | None:
    hit = _STORE.get(key)
    if hit is None:
        target = json.loads(key)[0]
        if target not in _LOADED:
            _load_shipped(target)
            hit = _STORE.get(key)
    return hit


def remember(models: list[FlowModel]) -> None:
    """Store models trained in this session: views drawn before are stale (see
    :func:`store_generation`)."""
    _STORED[0] += 1
    _store(models)


def _store(models: list[FlowModel]) -> None:
    for m in models:
        _STORE[model_key(m.target, m.source.name, m.source.options, m.coupling,
                         TrainSettings(**m.config))] = m


def _load_shipped(target: str) -> None:
    """Put the shipped models of ``target`` in the store, once. Only this target's: building a
    model fits its source to its target's data, and a learner may never open the others.
    Nothing drawn becomes stale (no view of ``target`` was drawn before its models were here),
    and a model trained in this session is never replaced by a shipped one."""
    _LOADED.add(target)
    for path in sorted(DATA_DIR.glob("*.npz")):
        for m in load_models(path, targets=(target,)):
            key = model_key(m.target, m.source.name, m.source.options, m.coupling,
                            TrainSettings(**m.config))
            _STORE.setdefault(key, m)


def train_grid(
    target: str,
    sources: list[tuple[str, dict]],
    couplings=GRID_COUPLINGS,
    settings: TrainSettings = DEFAULT_SETTINGS,
    progress: Callable | None = None,
    device=None,
) -> list[FlowModel]:
    """Train every source x coupling at once (one stacked model, see ``training``)."""
    slots = [(make_source(name, target, settings.seed, **opts), c)
             for name, opts in sources for c in couplings]
    models = train_many(target, slots, settings, progress, device=device)
    remember(models)
    return models


# ----- saving and loading weights (float16 .npz, read without pickle) -----------------------


def save_models(models: list[FlowModel], path: Path) -> Path:
    arrays, meta = {}, []
    for i, m in enumerate(models):
        for j, (w, b) in enumerate(zip(m.weights, m.biases, strict=True)):
            arrays[f"m{i}_w{j}"] = w.cpu().numpy().astype(np.float16)
            arrays[f"m{i}_b{j}"] = b.cpu().numpy().astype(np.float16)
        if m.source.learned is not None:
            for name in LEARNED_PARAMETERS:
                arrays[f"m{i}_{name}"] = getattr(m.source.learned, name).cpu().numpy()
        arrays[f"m{i}_history"] = m.history.astype(np.float16)
        meta.append({"target": m.target, "source": m.source.name, "options": m.source.options,
                     "coupling": m.coupling, "config": m.config, "layers": len(m.weights)})
    arrays["meta"] = np.array(json.dumps(meta))
    np.savez_compressed(path, **arrays)
    return Path(path)


#: Settings stored under their names before the glossary (docs/GLOSSARY.md): the shipped
#: models' files keep them, and loading reads them under today's names.
RENAMED_SETTINGS = {"batch": "batch_size", "lr": "learning_rate"}


def load_models(path: Path, targets: tuple[str, ...] | None = None) -> list[FlowModel]:
    """The models saved in ``path`` (by :func:`save_models`); only those of ``targets`` when
    given (the others' sources are not fitted)."""
    data = np.load(path, allow_pickle=False)
    meta = json.loads(str(data["meta"]))
    models = []
    for i, info in enumerate(meta):
        if targets is not None and info["target"] not in targets:
            continue
        info["config"] = {RENAMED_SETTINGS.get(k, k): v for k, v in info["config"].items()}
        opts = {k: v for k, v in info["options"].items() if k in DEFAULT_OPTIONS[info["source"]]}
        src = make_source(info["source"], info["target"], info["config"]["seed"], **opts)
        if src.learned is not None:
            from dataclasses import replace

            src.learned = replace(
                src.learned,
                **{n: torch.tensor(data[f"m{i}_{n}"]) for n in LEARNED_PARAMETERS},
            )
        models.append(FlowModel(
            [torch.tensor(data[f"m{i}_w{j}"].astype(np.float32)) for j in range(info["layers"])],
            [torch.tensor(data[f"m{i}_b{j}"].astype(np.float32)) for j in range(info["layers"])],
            info["target"], src, info["coupling"], info["config"],
            data[f"m{i}_history"].astype(np.float64),
        ))
    return models


# ----- evaluations (cached: a slider move recomputes only what changed) ---------------------


@lru_cache(maxsize=16)
def reference(target: str) -> Reference:
    """The target's reference set with its noise floor (five exact W2)."""
    ref = data_reference(target)
    return replace(ref, noise_floor=noise_floor(target, ref.eval_a))


@lru_cache(maxsize=16)
def data_reference(target: str) -> Reference:
    """The target's reference set without the noise floor (no W2: what the samples and their
    landing need)."""
    return make_reference(target, floor_draws=0)


@lru_cache(maxsize=16)
def pruning_cap(target: str, tau: float) -> Pruning:
    return pruning_for(target, tau)


@dataclass
class Evaluation:
    path: Trajectory
    #: the scores, computed when first read (:attr:`scores`); None: not asked for (see
    #: ``explore(scores=False)``)
    scores_later: Deferred | None
    landed: np.ndarray  # True where the generated point is within the failure threshold of data

    @property
    def scores(self) -> Scores | None:
        """The samples' scores (W2 and the rest), computed when first read: on a slider move
        by the score table, the last view drawn, after the trajectories and the velocity field
        have gone to the browser, which draws them meanwhile (see ``ui.App.set``); None where
        they were not asked for."""
        return None if self.scores_later is None else self.scores_later.result()


_CACHE: dict = {}


def cached(kind: str, model: FlowModel, args: tuple, make: Callable):
    """Memoise ``make()`` per model object (by identity: models are not hashable) and args."""
    key = (kind, id(model), args)
    hit = _CACHE.get(key)
    if hit is None or hit[0] is not model:
        if len(_CACHE) > 2048:
            _CACHE.clear()
        hit = _CACHE[key] = (model, make())
    return hit[1]


def evaluate(model: FlowModel, steps: int, solver: str, prune_tau: float | None = None,
             n: int = 512) -> Evaluation:
    """Samples (from a fixed source draw), trajectory and scores of one model, cached (the
    scores are computed when first read: :attr:`Evaluation.scores`)."""

    def make():
        sampled = sample_paths(model, steps, solver, prune_tau, n)
        scores = Deferred(lambda: score(sampled.path.points[-1], reference(model.target),
                                        model_straightness(model)))
        return Evaluation(sampled.path, scores, sampled.landed)

    return cached("eval", model, (steps, solver, prune_tau, n), make)


def sample_paths(model: FlowModel, steps: int, solver: str, prune_tau: float | None = None,
           n: int = 512) -> Evaluation:
    """The samples and trajectory of :func:`evaluate`, and where they land, without the scores
    (no W2), cached."""
    return cached("sample", model, (steps, solver, prune_tau, n),
                  lambda: _sample(model, steps, solver, prune_tau, n))


def _sample(model, steps, solver, prune_tau, n) -> Evaluation:
    from .metrics import nearest_distances

    ref = data_reference(model.target)
    pruning = None if prune_tau is None else pruning_cap(model.target, prune_tau)
    x0 = draw_source(model, n, EVAL_SEED, pruning)
    path = integrate(model, x0, steps, solver)
    generated = path.points[-1]
    landed = np.isfinite(generated.numpy()).all(1)
    if landed.all():
        landed = nearest_distances(generated, ref.pool) <= ref.threshold
    return Evaluation(path, None, landed)


def model_straightness(model: FlowModel) -> float:
    """The energy ratio (:func:`.metrics.straightness`) of 256 trajectories of 32 Euler steps."""

    def make():
        x0 = draw_source(model, 256, EVAL_SEED + 1)
        return straightness(integrate(model, x0, 32, "euler").points)

    return cached("straightness", model, (), make)


def training_pairs(model: FlowModel, batch: int = 256, seed: int = 1):
    """One minibatch of training pairs (x0, x1) as the model's coupling makes them (drawn as in
    training, :func:`.training.draw_pairs`, from streams seeded with ``seed``)."""
    pairing = make_pairing(model.coupling, np.random.default_rng(seed))
    x0, x1, _ = draw_pairs(model.source, get_target(model.target), batch,
                           data_stream(seed, "cpu"), source_stream(seed, "cpu"), pairing)
    return x0.detach(), x1


def pair_crossings(model: FlowModel) -> float:
    """Crossing fraction of one minibatch of the model's training pairs (batch 256)."""
    return cached("crossings", model, (), lambda: crossing_fraction(*training_pairs(model)))


def w2_curve(model: FlowModel, solver: str = "euler", n: int = 256) -> tuple:
    """W2 to the evaluation set after 1, 2, 4, ..., 32 steps of ``solver`` (dopri5 has no
    steps to choose: its curve is Euler's)."""
    from .metrics import w2

    solver = "euler" if solver == "dopri5" else solver

    def make():
        ref = reference(model.target)
        x0 = draw_source(model, n, EVAL_SEED)
        return tuple(w2(integrate(model, x0, s, solver).points[-1], ref.eval_a)
                     for s in W2_CURVE_STEPS)

    return cached("w2curve", model, (solver, n), make)


def velocity_field(model: FlowModel, t: float, extent: float, n: int = 17):
    """v(x, t) on an n x n grid over [-extent, extent]^2: (X, Y, U, V) arrays."""
    axis = torch.linspace(-extent, extent, n)
    xx, yy = torch.meshgrid(axis, axis, indexing="xy")
    points = torch.stack([xx.reshape(-1), yy.reshape(-1)], 1)
    with torch.no_grad():
        v = model.velocity(points, float(t))
    return xx.numpy(), yy.numpy(), v[:, 0].reshape(n, n).numpy(), v[:, 1].reshape(n, n).numpy()


__all__ = [
    "COUPLINGS", "DEFAULT_SETTINGS", "Evaluation", "LearnedParams", "SOLVERS", "Source",
    "evaluate", "grid_sources", "load_models", "model_key", "pair_crossings", "reference",
    "remember", "save_models", "source_options", "stored", "train_grid", "training_pairs",
    "velocity_field", "w2_curve",
]


# ----- one call per view update -------------------------------------------------------------


@dataclass(kw_only=True)
class GridRow:
    source: str
    coupling: str
    model: FlowModel | None
    samples: np.ndarray | None
    scores: Scores | None
    crossings: float
    curve: tuple | None


@dataclass(kw_only=True)
class FlowsResult:
    """Everything the flows views draw, for one setting of the controls."""

    target: str
    source: str
    coupling: str
    solver: str
    steps: int
    time: float
    prune_tau: float | None
    target_points: np.ndarray
    source_points: np.ndarray
    model: FlowModel | None
    evaluation: Evaluation | None
    field: tuple | None
    rows: list[GridRow]
    noise_floor: float | None  # None while the scores are not computed (``complete`` False)
    extent: float
    caps: np.ndarray | None
    tau: float | None
    pruned_arcs: np.ndarray | None  # (k, 2) angles of the pruned directions
    pruned_mass: tuple[float, bool] | None  # share of source draws pruned, and if exact
    notes: list[str]
    complete: bool = True  # False: the W2-based numbers are still being computed

    @property
    def trained(self) -> bool:
        return self.model is not None


def missing_models(target: str, options: dict, settings: TrainSettings) -> list[tuple]:
    """The grid's (source, options) pairs with a coupling not trained yet for these settings."""
    missing = []
    for name in grid_sources(target):
        opts = source_options(name, target, **options)
        if any(stored(model_key(target, name, opts, c, settings)) is None
               for c in GRID_COUPLINGS):
            missing.append((name, opts))
    return missing


def explore(target: str, source: str, coupling: str, options: dict, settings: TrainSettings,
            solver: str, steps: int, time: float, prune_tau: float | None,
            grid_detail: bool = True, preview: list[FlowModel] | None = None,
            scores: bool = True) -> FlowsResult:
    """The result behind every view: the selected model's evaluation, its velocity field at
    ``time``, and the grid of every source x coupling trained with the same settings.
    ``preview``: models still in training, shown instead of stored ones (live preview).
    ``scores=False``: samples, paths and landing only, none of the W2-based numbers (scores,
    W2 curves, noise floor; the result is not ``complete``): what the first view draws while
    the rest is computed (see the app)."""
    ref = reference(target) if scores else data_reference(target)
    live = {(m.source.name, m.coupling): m for m in preview or []}
    notes: list[str] = []
    rows, selected = [], None
    for name in grid_sources(target):
        opts = source_options(name, target, **options)
        for c in GRID_COUPLINGS:
            model = live.get((name, c)) or stored(model_key(target, name, opts, c, settings))
            row = GridRow(source=name, coupling=c, model=model, samples=None, scores=None,
                          crossings=float("nan"), curve=None)
            if model is not None and grid_detail and not scores:
                row.samples = sample_paths(model, *GRID_PROTOCOL).path.points[-1].numpy()
            elif model is not None and grid_detail:
                ev = evaluate(model, *GRID_PROTOCOL)
                row.samples = ev.path.points[-1].numpy()
                row.scores = ev.scores
                row.crossings = pair_crossings(model)
                row.curve = w2_curve(model, solver)
            rows.append(row)
            if name == source and c == coupling:
                selected = model
    if selected is None and coupling not in GRID_COUPLINGS:
        selected = stored(model_key(target, source, source_options(source, target, **options),
                                    coupling, settings))
    src = (selected.source if selected is not None
           else make_source(source, target, settings.seed, **source_options(source, target,
                                                                            **options)))
    gen = torch.Generator().manual_seed(EVAL_SEED)
    source_points = src.sample(512, gen).numpy()
    pruning = None if prune_tau is None else pruning_cap(target, prune_tau)
    evaluation = field = None
    mass = None
    if pruning is not None:
        mass = pruned_mass(src, pruning)
        how = "exactly" if mass[1] else "about (Monte Carlo, 20,000 draws)"
        notes.append(f"pruning rejects {how} {100 * mass[0]:.1f} % of the source's draws: "
                     f"those farther than {np.degrees(pruning.half_width):.1f} degrees from "
                     "every data direction (red arcs).")
    if preview:
        done = len(preview[0].history)
        notes.append(f"preview: models still in training (iteration {done} of "
                     f"{settings.iters}), not kept until training ends.")
    if selected is None:
        notes.append(f"no model is trained yet for '{source}' / '{coupling}' with these settings:"
                     " press 'Train grid' (shown: the source and the target only).")
        if pruning is not None:
            from .sampling import pruned_draw

            pruned_draw(src, pruning, 16, torch.Generator().manual_seed(0))  # checks it
    else:
        evaluation = (evaluate if scores else sample_paths)(selected, steps, solver, prune_tau)
    extent = float(np.abs(np.concatenate([ref.eval_a, source_points])).max() * 1.1)
    if selected is not None:
        field = velocity_field(selected, time, extent)
    if selected is not None and selected.source.learned is not None:
        sigma = torch.exp(selected.source.learned.log_sigma).mean().item()
        if sigma < 0.15:
            notes.append(f"the learned source has collapsed (mean sigma {sigma:.2f}): without the"
                         " variance regulariser its noise shrinks to nothing.")
    return FlowsResult(
        target=target, source=source, coupling=coupling, solver=solver, steps=steps, time=time,
        prune_tau=prune_tau, target_points=ref.eval_a, source_points=source_points,
        model=selected, evaluation=evaluation, field=field, rows=rows,
        noise_floor=ref.noise_floor, extent=extent, caps=src.caps, tau=src.tau,
        pruned_arcs=None if pruning is None else pruning.pruned_arcs(), pruned_mass=mass,
        notes=notes, complete=scores,
    )


def moving_points(path: torch.Tensor, time: float) -> np.ndarray:
    """The samples at ``time`` in [0, 1], linearly interpolated between the path's steps."""
    steps = len(path) - 1
    position = min(max(time, 0.0), 1.0) * steps
    k = min(int(position), steps - 1)
    frac = position - k
    return ((1 - frac) * path[k] + frac * path[k + 1]).numpy()
