"""Generating: integrate dx/dt = v(x, t) from t = 0 (a source draw) to t = 1.

Fixed-step solvers (Euler, explicit midpoint, classical Runge-Kutta 4; Hairer, Norsett & Wanner,
"Solving Ordinary Differential Equations I", Sec. II.1) and the adaptive Dormand-Prince 5(4)
method (Dormand & Prince 1980) from torchdiffeq, which reports how many times it evaluated v.

Directional pruning ("Is There a Better Source Distribution than Gaussian?", 2025, pruned
sampling): source draws whose direction falls in a data-sparse cap cos(x0, u) >= tau are
rejected before integration, so no trajectory starts where there is no data to go to.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from explorer.device import check_seed

from .sources import Source, check_tau, fit_data
from .targets import check_count
from .training import FlowModel

SOLVERS = {"euler": 1, "midpoint": 2, "rk4": 4, "dopri5": None}  # evaluations per step


@dataclass
class Trajectory:
    points: torch.Tensor  # (steps + 1, n, 2), points[0] = x0, points[-1] = generated samples
    times: torch.Tensor  # (steps + 1,)
    nfe: int  # evaluations of the velocity field


def check_solver(solver: str) -> str:
    if solver not in SOLVERS:
        raise ValueError(f"unknown solver {solver!r}; choose one of: {', '.join(SOLVERS)}")
    return solver


def _step(model: FlowModel, x, t, h, solver):
    v = model.velocity
    if solver == "euler":
        return x + h * v(x, t)
    if solver == "midpoint":
        return x + h * v(x + 0.5 * h * v(x, t), t + 0.5 * h)
    k1 = v(x, t)
    k2 = v(x + 0.5 * h * k1, t + 0.5 * h)
    k3 = v(x + 0.5 * h * k2, t + 0.5 * h)
    k4 = v(x + h * k3, t + h)
    return x + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)


@torch.no_grad()
def integrate(
    model: FlowModel, x0: torch.Tensor, steps: int = 8, solver: str = "euler",
    rtol: float = 1e-5, atol: float = 1e-5,
) -> Trajectory:
    """Carry x0 along the flow; fixed solvers take ``steps`` equal steps, dopri5 chooses its own
    and its path is reported at ``steps + 1`` equally spaced times."""
    steps = check_count(steps, "steps")
    check_solver(solver)
    times = torch.linspace(0, 1, steps + 1, dtype=x0.dtype, device=x0.device)
    if solver == "dopri5":
        from torchdiffeq import odeint

        calls = [0]

        def field(t, x):
            calls[0] += 1
            return model.velocity(x, t)

        points = odeint(field, x0, times, method="dopri5", rtol=rtol, atol=atol)
        return Trajectory(points, times, calls[0])
    points = [x0]
    h = 1.0 / steps
    for k in range(steps):
        points.append(_step(model, points[-1], k * h, h, solver))
    return Trajectory(torch.stack(points), times, steps * SOLVERS[solver])


# ----- pruning ------------------------------------------------------------------------------


def sparse_direction(data: np.ndarray, grid: int = 720) -> np.ndarray:
    """The unit direction farthest (in angle) from every data point's direction: the middle of
    the widest empty angular gap of the data."""
    angles = np.linspace(0, 2 * np.pi, grid, endpoint=False)
    candidates = np.stack([np.cos(angles), np.sin(angles)], 1)
    unit = data / np.linalg.norm(data, axis=1, keepdims=True).clip(min=1e-12)
    nearest_cos = (candidates @ unit.T).max(1)
    return candidates[nearest_cos.argmin()]


@dataclass(frozen=True)
class Pruning:
    """Reject source draws x0 with cos(x0, direction) >= tau."""

    direction: np.ndarray
    tau: float

    def rejects(self, x: torch.Tensor) -> torch.Tensor:
        u = torch.as_tensor(self.direction, dtype=x.dtype, device=x.device)
        cosine = (x @ u) / x.norm(dim=1).clamp_min(1e-12)
        return cosine >= self.tau


def pruning_for(target: str, tau: float) -> Pruning:
    """The pruning cap of ``target``: around its data-sparsest direction, cos >= tau."""
    return Pruning(sparse_direction(fit_data(target)[0]), check_tau(tau, "pruning tau"))


def pruned_draw(source: Source, pruning: Pruning, n: int, gen: torch.Generator) -> torch.Tensor:
    """``n`` source draws outside the pruning cap (rejection sampling). Raises when the source
    puts no mass in the cap (pruning would do nothing) or all of it (nothing would be left)."""
    probe = source.sample(4096, gen)
    share = pruning.rejects(probe).float().mean().item()
    if share == 0.0:
        raise ValueError(
            f"the source '{source.name}' has no mass in the pruning cap (cos >= {pruning.tau:g} "
            "around the data-sparse direction): pruning would reject nothing; lower the pruning "
            "tau or switch pruning off"
        )
    if share == 1.0:
        raise ValueError(
            f"every draw of the source '{source.name}' lies in the pruning cap: nothing would "
            "be left; raise the pruning tau"
        )
    kept, total = [], 0
    while total < n:
        x = source.sample(int(2 * (n - total) / (1 - share)) + 64, gen)
        x = x[~pruning.rejects(x)]
        kept.append(x)
        total += len(x)
    return torch.cat(kept)[:n]


def draw_source(model: FlowModel, n: int, seed: int, pruning: Pruning | None = None,
                device=None) -> torch.Tensor:
    gen = torch.Generator(device=model.weights[0].device).manual_seed(check_seed(seed))
    if pruning is None:
        return model.source.sample(check_count(n), gen)
    return pruned_draw(model.source, pruning, check_count(n), gen)


def sample(
    model: FlowModel, n: int = 1000, steps: int = 8, solver: str = "euler", seed: int = 0,
    prune_tau: float | None = None, trajectory: bool = False,
):
    """``n`` generated points (n, 2) from a trained model: draw x0 from the model's source (with
    directional pruning when ``prune_tau`` is given) and integrate with ``solver``.
    With ``trajectory=True`` the whole :class:`Trajectory` is returned."""
    pruning = None if prune_tau is None else pruning_for(model.target, prune_tau)
    x0 = draw_source(model, n, seed, pruning)
    path = integrate(model, x0, steps, solver)
    return path if trajectory else path.points[-1]
