"""Generating: integrate dx/dt = v(x, t) from t = 0 (a source draw) to t = 1.

Fixed-step solvers (Euler, explicit midpoint, classical Runge-Kutta 4; Hairer, Norsett & Wanner,
"Solving Ordinary Differential Equations I", Sec. II.1) and the adaptive Dormand-Prince 5(4)
method (Dormand & Prince 1980) from torchdiffeq, which reports how many times it evaluated v.

Directional pruning ("Is There a Better Source Distribution than Gaussian?", 2025, pruned
sampling): source draws in data-sparse directions, farther than acos(tau) from every data
direction, are rejected before integration, so no trajectory starts where there is no data to
go to; :func:`pruned_mass` says how much of the source that removes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from explorer.checks import check_integer
from explorer.device import check_seed

from .sources import Source, check_tau, fit_data
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
    steps = check_integer(steps, "steps", low=1)
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

# Sources whose law is the same in every direction: the share of their draws that pruning
# rejects is exactly the share of directions it prunes.
ROTATION_INVARIANT = ("gaussian", "hd_gaussian", "norm_aligned")


@dataclass(frozen=True)
class Pruning:
    """Directional pruning: reject a source draw x0 whose direction is farther than the angle
    acos(tau) from every data direction, i.e. max_i cos(x0, x1_i) < tau over the data: every
    data-sparse direction is pruned, however many there are. ``data_angles``: the data's
    directions as sorted angles in [-pi, pi)."""

    data_angles: np.ndarray
    tau: float

    @property
    def half_width(self) -> float:
        """acos(tau): how far (radians) a kept direction may be from its nearest data direction."""
        return float(np.arccos(self.tau))

    def distance_to_data(self, x: torch.Tensor) -> torch.Tensor:
        """The angle between each x and its nearest data direction (radians, in [0, pi])."""
        angles = torch.atan2(x[:, 1], x[:, 0]).double().cpu().numpy()
        data = self.data_angles
        slot = np.searchsorted(data, angles) % len(data)  # the neighbours on either side
        gaps = [np.abs(angles - data[slot]), np.abs(angles - data[slot - 1])]
        nearest = np.minimum(*[np.minimum(g, 2 * np.pi - g) for g in gaps])
        return torch.as_tensor(nearest, device=x.device)

    def rejects(self, x: torch.Tensor) -> torch.Tensor:
        return self.distance_to_data(x) > self.half_width

    def pruned_arcs(self) -> np.ndarray:
        """The pruned directions as arcs (start, end) of angles, counter-clockwise: in each gap
        between consecutive data directions wider than 2 acos(tau), the part farther than
        acos(tau) from both ends."""
        data = self.data_angles
        following = np.append(data[1:], data[0] + 2 * np.pi)
        wide = following - data > 2 * self.half_width
        return np.stack([data[wide] + self.half_width, following[wide] - self.half_width], 1)

    def pruned_share_of_directions(self) -> float:
        """The share of all directions that is pruned: the arcs' total length / 2 pi (for a
        source that is the same in every direction, the share of its draws rejected)."""
        arcs = self.pruned_arcs()
        return float((arcs[:, 1] - arcs[:, 0]).sum() / (2 * np.pi))


def data_angles(data: np.ndarray) -> np.ndarray:
    """The directions of the data points as sorted angles."""
    return np.sort(np.arctan2(data[:, 1], data[:, 0]))


def pruning_for(target: str, tau: float) -> Pruning:
    """The pruning of ``target``: every direction farther than acos(tau) from all directions
    of its fitted data sample."""
    return Pruning(data_angles(fit_data(target)[0]), check_tau(tau, "pruning tau"))


def pruned_mass(source: Source, pruning: Pruning, probes: int = 20_000) -> tuple[float, bool]:
    """The share of ``source``'s draws that pruning rejects, and whether it is exact: the pruned
    share of directions for a source the same in every direction, else a Monte-Carlo estimate
    from ``probes`` draws (standard error at most 0.5 / sqrt(probes))."""
    if source.name in ROTATION_INVARIANT and source.learned is None:
        return pruning.pruned_share_of_directions(), True
    probe = source.sample(probes, torch.Generator().manual_seed(0))
    return float(pruning.rejects(probe).double().mean()), False


def pruned_draw(source: Source, pruning: Pruning, n: int, gen: torch.Generator) -> torch.Tensor:
    """``n`` source draws outside the pruned directions (rejection sampling). Raises when the
    source puts no mass in them (pruning would do nothing) or all of it (nothing would be
    left)."""
    if not len(pruning.pruned_arcs()):
        gaps = np.diff(np.append(pruning.data_angles, pruning.data_angles[0] + 2 * np.pi))
        widest = float(gaps.max())
        raise ValueError(
            f"no direction is farther than {np.degrees(pruning.half_width):.1f} degrees (cos < "
            f"{pruning.tau:g}) from every data direction of this target: nothing to prune. The "
            f"widest gap between data directions is {np.degrees(widest):.1f} degrees, so only a "
            f"pruning tau above {np.cos(widest / 2):.4f} prunes anything; or switch pruning off")
    probe = source.sample(4096, gen)
    share = pruning.rejects(probe).float().mean().item()
    if share == 0.0:
        raise ValueError(
            f"the source '{source.name}' has no mass in the pruned directions (farther than "
            f"{np.degrees(pruning.half_width):.1f} degrees, cos < {pruning.tau:g}, from every data "
            "direction): pruning would reject nothing; raise the pruning tau or switch pruning off"
        )
    if share == 1.0:
        raise ValueError(
            f"every draw of the source '{source.name}' lies in the pruned directions: nothing "
            "would be left; lower the pruning tau"
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
        return model.source.sample(check_integer(n, "n", low=1), gen)
    return pruned_draw(model.source, pruning, check_integer(n, "n", low=1), gen)


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
