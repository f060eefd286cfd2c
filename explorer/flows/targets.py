"""Two-dimensional target distributions, each a seeded sampler that also says which mode a
point came from (so mode masses can be compared with the target's weights).

The ``hd_simulation`` target mimics the 2D simulation of "Is There a Better Source Distribution
than Gaussian? Exploring Source Distributions for Image Flow Matching" (2025): a few data modes at random angles with unequal weights, at the
norm real data would have, while a d-dimensional standard Gaussian concentrates on a thin shell
(source ``hd_gaussian``, drawn at twice that radius, as image data have about half the norm of
the noise).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from explorer.checks import check_integer
from explorer.device import check_seed, choose_device

HD_DATA_RADIUS = 1.5  # the data norm in the simulation; the hd_gaussian ring sits at ~2x
HD_WEIGHTS = (0.05, 0.30, 0.65)
HD_LAYOUT_SEED = 3  # fixes the random angles of the modes, so the target never changes


@dataclass(frozen=True)
class Target:
    """A 2D target: ``draw(n, gen) -> (points (n, 2), mode labels (n,))`` and its mode weights."""

    name: str
    label: str
    weights: tuple[float, ...]
    draw: Callable[[int, torch.Generator], tuple[torch.Tensor, torch.Tensor]]

    def sample(self, n: int, gen: torch.Generator) -> torch.Tensor:
        return self.draw(n, gen)[0]

    @property
    def n_modes(self) -> int:
        return len(self.weights)


def _pick_modes(n: int, weights, gen) -> torch.Tensor:
    probs = torch.tensor(weights, dtype=torch.float32, device=gen.device)
    return torch.multinomial(probs, n, replacement=True, generator=gen)


def _normal(n: int, gen: torch.Generator, dim: int = 2) -> torch.Tensor:
    return torch.randn(n, dim, generator=gen, device=gen.device)


def _uniform(n: int, gen: torch.Generator, dim: int = 1) -> torch.Tensor:
    return torch.rand(n, dim, generator=gen, device=gen.device)


def _gaussian_mixture(centres, std: float, weights):
    centres = torch.tensor(centres, dtype=torch.float32)

    def draw(n, gen):
        labels = _pick_modes(n, weights, gen)
        return centres.to(gen.device)[labels] + std * _normal(n, gen), labels

    return draw


def _eight_gaussians():
    angles = [2 * math.pi * k / 8 for k in range(8)]
    centres = [(4.0 * math.cos(a), 4.0 * math.sin(a)) for a in angles]
    return _gaussian_mixture(centres, 0.3, (1 / 8,) * 8)


def _moons(n, gen):
    """Two interleaving half circles (as scikit-learn's make_moons, noise 0.1), x2.5, centred."""
    labels = _pick_modes(n, (0.5, 0.5), gen)
    angle = math.pi * _uniform(n, gen)[:, 0]
    upper = torch.stack([torch.cos(angle), torch.sin(angle)], 1)
    lower = torch.stack([1 - torch.cos(angle), 0.5 - torch.sin(angle)], 1)
    points = torch.where(labels[:, None] == 0, upper, lower) + 0.1 * _normal(n, gen)
    centre = torch.tensor([0.5, 0.25], device=gen.device)
    return 2.5 * (points - centre), labels


def _checkerboard(n, gen):
    """The 8 dark squares of a 4x4 board on [-3, 3]^2 (squares 1.5 wide)."""
    squares = [(i, j) for i in range(4) for j in range(4) if (i + j) % 2 == 0]
    labels = _pick_modes(n, (1 / 8,) * 8, gen)
    corner = torch.tensor(squares, dtype=torch.float32, device=gen.device)[labels] * 1.5 - 3.0
    return corner + 1.5 * _uniform(n, gen, 2), labels


def _spirals(n, gen):
    """Two interleaved Archimedean spiral arms (radius 0.5 to 3.5), noise 0.12."""
    labels = _pick_modes(n, (0.5, 0.5), gen)
    s = _uniform(n, gen)[:, 0]
    radius = 0.5 + 3.0 * torch.sqrt(s)
    angle = 1.6 * math.pi * torch.sqrt(s) + math.pi * labels
    points = torch.stack([radius * torch.cos(angle), radius * torch.sin(angle)], 1)
    return points + 0.12 * _normal(n, gen), labels


def _rings(n, gen):
    """Concentric rings of radius 1.5 and 3.5 (noise 0.1), mass proportional to length."""
    radii = torch.tensor([1.5, 3.5], device=gen.device)
    labels = _pick_modes(n, (0.3, 0.7), gen)
    angle = 2 * math.pi * _uniform(n, gen)[:, 0]
    r = radii[labels]
    points = torch.stack([r * torch.cos(angle), r * torch.sin(angle)], 1)
    return points + 0.1 * _normal(n, gen), labels


def hd_mode_angles() -> np.ndarray:
    """The fixed random angles of the simulation's modes (at least 60 degrees apart)."""
    rng = np.random.default_rng(HD_LAYOUT_SEED)
    while True:
        angles = np.sort(rng.uniform(0, 2 * np.pi, len(HD_WEIGHTS)))
        gaps = np.diff(np.append(angles, angles[0] + 2 * np.pi))
        if gaps.min() > np.pi / 3:
            return rng.permutation(angles)


def _hd_simulation(n, gen):
    """Modes at random angles, weights 5/30/65 %, on the data radius: angular std 0.15 rad,
    radial std 0.06."""
    angles = torch.tensor(hd_mode_angles(), dtype=torch.float32, device=gen.device)
    labels = _pick_modes(n, HD_WEIGHTS, gen)
    noise = _normal(n, gen)
    angle = angles[labels] + 0.15 * noise[:, 0]
    radius = HD_DATA_RADIUS + 0.06 * noise[:, 1]
    return torch.stack([radius * torch.cos(angle), radius * torch.sin(angle)], 1), labels


TARGETS: dict[str, Target] = {
    t.name: t
    for t in [
        Target("moons", "two moons", (0.5, 0.5), _moons),
        Target("8gaussians", "8 Gaussians", (1 / 8,) * 8, _eight_gaussians()),
        Target("checkerboard", "checkerboard", (1 / 8,) * 8, _checkerboard),
        Target("spirals", "two spirals", (0.5, 0.5), _spirals),
        Target("rings", "concentric rings", (0.3, 0.7), _rings),
        Target(
            "imbalanced",
            "imbalanced modes (5/25/70 %)",
            (0.05, 0.25, 0.70),
            _gaussian_mixture([(-3.0, 2.0), (3.0, 2.0), (0.0, -2.5)], 0.4, (0.05, 0.25, 0.70)),
        ),
        Target(
            "hd_simulation",
            "high-dimension simulation (modes 5/30/65 % at the data norm)",
            HD_WEIGHTS,
            _hd_simulation,
        ),
    ]
}


def get_target(name) -> Target:
    """The target called ``name`` (or ``name`` itself when it already is a Target)."""
    if isinstance(name, Target):
        return name
    if name not in TARGETS:
        raise ValueError(f"unknown target {name!r}; choose one of: {', '.join(TARGETS)}")
    return TARGETS[name]


def target(name: str = "moons", n: int = 1000, seed: int = 0, device=None) -> torch.Tensor:
    """``n`` points (n, 2) from the target ``name``, reproducible from ``seed``."""
    gen = torch.Generator(device=choose_device(device)).manual_seed(check_seed(seed))
    return get_target(name).sample(check_integer(n, "n", low=1), gen)


def labelled_target(name, n: int, seed: int, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` target points and the mode each came from."""
    gen = torch.Generator(device=choose_device(device)).manual_seed(check_seed(seed))
    return get_target(name).draw(check_integer(n, "n", low=1), gen)
