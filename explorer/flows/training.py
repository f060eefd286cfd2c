"""Conditional flow matching with stacked models: S velocity fields trained at once.

The loss is the conditional flow-matching objective of Lipman et al. (2023), "Flow Matching for
Generative Modeling", with the straight (rectified) path and a small Gaussian width sigma as in
Tong et al. (2024), eq. (14)-(15):

    x_t = (1 - t) x0 + t x1 + sigma eps,    u_t = x1 - x0,    L = E |v(x_t, t) - u_t|^2,

where the pairs (x0, x1) come from the chosen coupling. The S models of a comparison grid have
weights of shape (S, in, out) and are evaluated with one batched matrix product per layer; the
total loss is the *sum* of the per-model losses, so each model receives exactly its own
gradient, and Adam, being elementwise, updates each exactly as if it were trained alone (the
tests check this). Each model has two random streams, each seeded alike for every model: one
for the data side (x1 batches, times, path noise) and one for its source draws, so the models
of a grid see the same data batches and times whatever their source consumes: differences
between them come from the source and the coupling (the tests check it).

The learned source (Kim et al. 2026, "Better Source, Better Flow") adds, per model,
``var_reg * KL_var`` with the variance part of KL(N(mu, sigma^2) || N(0, I)),
0.5 (sigma^2 - 1 - log sigma^2), which stops sigma collapsing to zero without pulling the mean,
and ``align_reg * (1 - cos(mu_c, x1))``, which turns each component's mean mu_c (radius kept
positive, see ``LearnedParams``) towards its data. With a coupling, pairs are exchanged only
within a cluster, so every x0 stays paired with data of the cluster it was drawn for.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from explorer.checks import check_integer, is_number
from explorer.device import check_seed, choose_device

from .couplings import check_coupling, make_pairing, pair_within_conditions
from .sources import LEARNED_PARAMETERS, LearnedParams, Source, make_source, mean_from_polar
from .targets import Target, get_target

SOURCE_LR_FACTOR = 10.0
MAX_ITERS = 50_000  # a grid of 12 models at 2,000 iterations takes about half a minute
MAX_BATCH = 4096


class TrainingDiverged(ValueError):
    """The loss became NaN or infinite: training was stopped."""


@dataclass
class FlowModel:
    """A trained velocity field v(x, t) (an MLP with SELU activations, like torchcfm's) with the
    source it was trained from, its coupling, settings and loss curve."""

    weights: list[torch.Tensor]  # (in, out) per layer
    biases: list[torch.Tensor]  # (out,) per layer
    target: str
    source: Source
    coupling: str
    config: dict
    history: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @property
    def name(self) -> str:
        return f"{self.source.name} / {self.coupling}"

    def velocity(self, x: torch.Tensor, t) -> torch.Tensor:
        """v(x, t) for points x (n, 2) at time t (a number or (n,) tensor)."""
        t = torch.as_tensor(t, dtype=x.dtype, device=x.device)
        h = torch.cat([x, t.expand(len(x)).reshape(-1, 1)], 1)
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            h = torch.addmm(b, h, w)
            if i < last:
                h = F.selu(h)
        return h


def init_layers(sizes, gen: torch.Generator, device):
    """PyTorch's default Linear initialisation: U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    weights, biases = [], []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:], strict=False):
        bound = 1 / math.sqrt(fan_in)
        w = (2 * torch.rand(fan_in, fan_out, generator=gen, device=device) - 1) * bound
        b = (2 * torch.rand(fan_out, generator=gen, device=device) - 1) * bound
        weights.append(w)
        biases.append(b)
    return weights, biases


def stacked_forward(weights, biases, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """S MLPs at once: x (S, n, 2), t (S, n, 1), weights (S, in, out) -> (S, n, 2)."""
    h = torch.cat([x, t], 2)
    last = len(weights) - 1
    for i, (w, b) in enumerate(zip(weights, biases, strict=True)):
        h = torch.baddbmm(b, h, w)
        if i < last:
            h = F.selu(h)
    return h


def as_target(target) -> Target:
    """A target given by name, as a Target, or as a sampler ``f(n, generator) -> (n, 2)``."""
    if isinstance(target, (str, Target)):
        return get_target(target)
    if callable(target):
        return Target("custom", "custom sampler", (1.0,),
                      lambda n, gen: (target(n, gen), torch.zeros(n, dtype=torch.long)))
    raise ValueError(f"target must be a name or a sampler f(n, generator), got {target!r}")


def as_source(source, target, seed: int, options: dict | None) -> Source:
    """A source given by name (with options), as a fitted Source, or as a sampler."""
    if isinstance(source, Source):
        return source
    if isinstance(source, str):
        target_name = target if isinstance(target, str) else "moons"
        return make_source(source, target_name, seed, **(options or {}))
    if callable(source):
        return Source("gaussian", {"custom": True}, source)
    raise ValueError(f"source must be a name or a sampler f(n, generator), got {source!r}")


def data_stream(seed: int, device) -> torch.Generator:
    """The random stream of the data side of training (x1 batches, times t, path noise): seeded
    alike for every model of a grid and used alike by all, so they all see the same batches."""
    return torch.Generator(device=device).manual_seed(seed)


def source_stream(seed: int, device) -> torch.Generator:
    """The random stream of a model's source draws, apart from the data stream: sources use
    different numbers of random numbers (rejection sampling, a 64-dimensional draw, a mixture
    component), and sharing one stream would shift every later data batch."""
    return torch.Generator(device=device).manual_seed(
        int(np.random.SeedSequence([seed, 1]).generate_state(1)[0]))


def draw_pairs(src: Source, the_target: Target, batch: int, data_gen: torch.Generator,
               source_gen: torch.Generator, pairing, learned_params=None):
    """One minibatch of training pairs (x0, x1) and the learned source's condition of each pair
    (None for other sources): x1 from the data stream, x0 from the source stream (for the
    learned source, drawn for the cluster of its x1, differentiably in ``learned_params``), then
    coupled by ``pairing`` within each condition (:func:`.couplings.pair_within_conditions`)."""
    x1 = the_target.sample(batch, data_gen)
    condition = None
    if src.learned is not None:
        condition = src.learned.condition(x1)
        eps = torch.randn(batch, 2, generator=source_gen, device=source_gen.device)
        x0 = src.learned.draw_for(condition, eps, *(learned_params or ()))
    else:
        x0 = src.sample(batch, source_gen)
    if pairing is not None:
        j = pair_within_conditions(pairing, x0, x1, condition)
        x1 = x1[torch.as_tensor(j, device=x1.device)]
    return x0, x1, condition


def learned_source_penalty(learned: LearnedParams, params, condition: torch.Tensor,
                           x1: torch.Tensor) -> torch.Tensor:
    """The learned source's regularisers (Kim et al. 2026, "Better Source, Better Flow"):
    ``var_reg`` times the variance part of KL(N(mu, sigma^2) || N(0, I)),
    0.5 sum (sigma^2 - 1 - log sigma^2), averaged over components, plus ``align_reg`` times the
    directional alignment 1 - cos(mu_c, x1) averaged over the batch, which turns each mean
    towards the data of its cluster. ``params`` = (log_radius, angle, log_sigma)."""
    log_radius, angle, log_sigma = params
    variance = 0.5 * (torch.exp(2 * log_sigma) - 1 - 2 * log_sigma).sum(1).mean()
    mu = mean_from_polar(log_radius, angle)
    align = (1 - F.cosine_similarity(mu[condition], x1, dim=1)).mean()
    return learned.var_reg * variance + learned.align_reg * align


@dataclass
class TrainSettings:
    iters: int = 3000
    batch_size: int = 256
    seed: int = 0
    learning_rate: float = 3e-3
    sigma: float = 0.0
    width: int = 64
    depth: int = 3
    pair_reuse: int = 1

    def check(self) -> TrainSettings:
        check_integer(self.iters, "iters", low=1)
        check_integer(self.batch_size, "batch_size", low=1)
        if self.iters > MAX_ITERS:
            raise ValueError(f"iters must be at most {MAX_ITERS:,}, got {self.iters:,} (the "
                             f"default 2,000 iterations train a grid in about half a minute)")
        if self.batch_size > MAX_BATCH:
            raise ValueError(f"batch_size must be at most {MAX_BATCH:,} points, got "
                             f"{self.batch_size:,}")
        check_integer(self.width, "width", low=1)
        check_integer(self.depth, "depth", low=1)
        check_integer(self.pair_reuse, "pair_reuse", low=1)
        check_seed(self.seed)
        if not (is_number(self.learning_rate) and 0 < self.learning_rate < 1):
            raise ValueError(f"learning_rate must be between 0 and 1, got {self.learning_rate!r}")
        if not (isinstance(self.sigma, (int, float)) and 0 <= self.sigma < 5):
            raise ValueError(f"sigma must be between 0 and 5, got {self.sigma!r}")
        return self


def train_many(
    target,
    slots: list[tuple[Source, str]],
    settings: TrainSettings,
    progress: Callable | None = None,
    progress_every: int = 50,
    device=None,
) -> list[FlowModel]:
    """Train one flow per (source, coupling) slot, all at once (see the module docstring).

    ``progress(iteration, losses, snapshot)`` is called every ``progress_every`` iterations,
    where ``snapshot()`` returns the models as they are now (for a live preview); it may raise
    to stop (the app's Cancel does). A NaN or infinite loss raises :class:`TrainingDiverged`."""
    settings.check()
    device = choose_device(device)
    the_target = as_target(target)
    for _, coupling in slots:
        check_coupling(coupling)
    n_slots, batch = len(slots), settings.batch_size
    data_gens = [data_stream(settings.seed, device) for _ in slots]
    source_gens = [source_stream(settings.seed, device) for _ in slots]
    pairings = [make_pairing(coupling, np.random.default_rng(settings.seed))
                for _, coupling in slots]
    sizes = [3] + [settings.width] * settings.depth + [2]
    inits = [init_layers(sizes, torch.Generator(device=device).manual_seed(settings.seed), device)
             for _ in slots]
    weights = [torch.stack([w[0][i] for w in inits]).requires_grad_() for i in range(len(sizes) - 1)]
    biases = [
        torch.stack([w[1][i] for w in inits])[:, None, :].requires_grad_()
        for i in range(len(sizes) - 1)
    ]
    learned = {}
    for s, (src, _) in enumerate(slots):
        if src.learned is not None:
            learned[s] = tuple(getattr(src.learned, name).clone().to(device).requires_grad_()
                               for name in LEARNED_PARAMETERS)
    source_params = [p for pair in learned.values() for p in pair]
    groups = [{"params": weights + biases}]
    if source_params:  # the source has 2K numbers to move far: a larger step (10x)
        groups.append({"params": source_params, "lr": SOURCE_LR_FACTOR * settings.learning_rate})
    optimiser = torch.optim.Adam(groups, lr=settings.learning_rate, fused=True)  # one kernel per step
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(
        optimiser, settings.iters, eta_min=0.05 * settings.learning_rate
    )  # (for the source group, eta_min is relative to the first group; harmless)
    history = np.zeros((settings.iters, n_slots))
    pairs: list = [None] * n_slots
    for it in range(settings.iters):
        x0s, x1s, ts, extra = [], [], [], []
        fresh = it % settings.pair_reuse == 0
        for s, (src, _) in enumerate(slots):
            if fresh:  # a fresh minibatch, coupled
                x0, x1, condition = draw_pairs(src, the_target, batch, data_gens[s],
                                               source_gens[s], pairings[s], learned.get(s))
                pairs[s] = (x0.detach(), x1, condition)
            else:  # reuse the coupled pairs (a learned source redraws its x0 in the same
                x0, x1, condition = pairs[s]  # condition: its parameters have moved)
                if s in learned:
                    eps = torch.randn(batch, 2, generator=source_gens[s], device=device)
                    x0 = src.learned.draw_for(condition, eps, *learned[s])
            if s in learned:
                extra.append(learned_source_penalty(src.learned, learned[s], condition, x1))
            x0s.append(x0)
            x1s.append(x1)
            ts.append(torch.rand(batch, 1, generator=data_gens[s], device=device))
        x0, x1, t = torch.stack(x0s), torch.stack(x1s), torch.stack(ts)
        xt = (1 - t) * x0 + t * x1
        if settings.sigma > 0:
            noise = torch.stack([torch.randn(batch, 2, generator=g, device=device)
                                 for g in data_gens])
            xt = xt + settings.sigma * noise
        per_slot = ((stacked_forward(weights, biases, xt, t) - (x1 - x0)) ** 2).mean((1, 2))
        if not torch.isfinite(per_slot).all():
            bad = [slots[s][0].name + "/" + slots[s][1]
                   for s in range(n_slots) if not torch.isfinite(per_slot[s])]
            raise TrainingDiverged(
                f"training diverged at iteration {it + 1}: the loss of {', '.join(bad)} became "
                f"NaN or infinite (learning rate {settings.learning_rate:g}); lower the learning rate"
            )
        loss = per_slot.sum() + (sum(extra) if extra else 0.0)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        schedule.step()
        history[it] = per_slot.detach().cpu().numpy()
        if progress is not None and ((it + 1) % progress_every == 0 or it + 1 == settings.iters):
            done = it + 1
            progress(done, history[:done], lambda done=done: _unstack(
                weights, biases, learned, slots, the_target, settings, history[:done]))
    return _unstack(weights, biases, learned, slots, the_target, settings, history)


def _unstack(weights, biases, learned, slots, the_target, settings, history) -> list[FlowModel]:
    models = []
    for s, (src, coupling) in enumerate(slots):
        if s in learned:
            src = Source(src.name, src.options, src.draw, learned=_copy_learned(src, *learned[s]))
        models.append(
            FlowModel(
                [w[s].detach().clone() for w in weights],
                [b[s, 0].detach().clone() for b in biases],
                the_target.name,
                src,
                coupling,
                dict(vars(settings)),
                history[:, s].copy(),
            )
        )
    return models


def _copy_learned(src: Source, log_radius, angle, log_sigma):
    from dataclasses import replace

    return replace(src.learned, log_radius=log_radius.detach().clone(),
                   angle=angle.detach().clone(), log_sigma=log_sigma.detach().clone())


def train(
    target="moons",
    source="gaussian",
    coupling: str = "independent",
    iters: int = 3000,
    batch_size: int = 256,
    seed: int = 0,
    learning_rate: float = 3e-3,
    sigma: float = 0.0,
    width: int = 64,
    pair_reuse: int = 1,
    source_options: dict | None = None,
    progress: Callable | None = None,
    device=None,
) -> FlowModel:
    """Train one flow-matching model from ``source`` to ``target`` (names or samplers
    ``f(n, generator) -> (n, 2)``) with the given coupling ('independent', 'ot', 'sinkhorn').

    ``pair_reuse = r`` draws and couples a fresh minibatch every r iterations and trains on it r
    times with fresh times t (default 1: every iteration a fresh batch, as in torchcfm). This is
    *reuse*, not a cheaper solver: the exact OT solve (under a millisecond for 256 points on
    one core, see assignment.py) is paid once per r iterations; the pairs still come from the
    exact minibatch OT plan, but fewer distinct batches are seen. An observation, not a test
    (2026-12-06; moons, Gaussian source, OT, 2000 iterations, exact W2 of dopri5 samples as in
    benchmarks/bench_flows.py, seeds 0-11; mean W2 0.295 at r = 1): r = 2 changes W2 by
    +0.003 +- 0.008 (standard error; better in 4 of 12 seeds), r = 4 by +0.014 +- 0.008
    (better in 3 of 12)."""
    settings = TrainSettings(iters=iters, batch_size=batch_size, seed=seed,
                             learning_rate=learning_rate, sigma=sigma, width=width,
                             pair_reuse=pair_reuse)
    src = as_source(source, target, seed, source_options)
    return train_many(target, [(src, coupling)], settings, progress, device=device)[0]
