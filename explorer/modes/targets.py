"""Targets p (and fitted models q): 1D and 2D Gaussian mixtures, discrete token distributions.

A fitted model is an object of the same kinds (a single Gaussian is a one-component mixture),
so scoring, mode coverage and plotting treat p and q alike.

Every density is evaluated in log space (``torch.logsumexp`` over the components); there is no
epsilon anywhere.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from .._deferred import deferred_import

# imported by the first density, not with the app: a notebook's kernel then makes its app (and
# tells the browser to load plotly, explorer.ui.plotly_widget.preload_bundle) before it
torch = deferred_import("torch", globals())

if TYPE_CHECKING:
    from torch import Tensor

_LOG_2PI = math.log(2.0 * math.pi)

#: How much of p's mass a grid may cut off before the fit warns about it.
MAX_LOST_MASS = 1e-4


def _vector(values, argument: str) -> np.ndarray:
    array = np.atleast_1d(np.asarray(values, dtype=np.float64))
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"{argument} must be a non-empty list of numbers, got {values!r}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{argument} must contain finite numbers only, got {values!r}")
    return array


def check_weights(weights, count: int, argument: str = "weights") -> np.ndarray:
    """Mixture weights: ``count`` non-negative numbers that sum to one (within 1e-6)."""
    if weights is None:
        return np.full(count, 1.0 / count)
    w = _vector(weights, argument)
    if w.size != count:
        raise ValueError(f"{argument} must have one entry per component ({count}), got {w.size}")
    if np.any(w < 0):
        raise ValueError(f"{argument} must be non-negative, got {list(w)}")
    if abs(w.sum() - 1.0) > 1e-6:
        raise ValueError(
            f"{argument} must sum to 1 (within 1e-6), but they sum to {w.sum():.6g}; "
            "divide them by their total"
        )
    return w / w.sum()


@dataclass(frozen=True)
class Grid:
    """A regular quadrature grid: ``points`` (N,) in 1D and for tokens, (N, 2) in 2D, float64; the ``cell`` length/area, the
    ``shape`` of the grid (for 2D images) and the mass of the target that falls outside it."""

    points: Tensor
    cell: float
    shape: tuple[int, ...]
    lost_mass: float = 0.0
    axes: tuple[np.ndarray, ...] = field(default=(), compare=False)

    @property
    def x(self) -> np.ndarray:
        """The 1D grid as a numpy array (first axis)."""
        return self.axes[0]


# ---------------------------------------------------------------------------------------------
# 1D Gaussian mixtures
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Mixture1D:
    """p(x) = sum_k w_k N(x; mu_k, sigma_k^2) on the real line."""

    means: np.ndarray
    stds: np.ndarray
    weights: np.ndarray
    dim = 1
    kind = "1d"

    @property
    def components(self) -> int:
        return int(self.means.size)

    @property
    def mean(self) -> float:
        return float(np.dot(self.weights, self.means))

    @property
    def variance(self) -> float:
        second = np.dot(self.weights, self.stds**2 + self.means**2)
        return float(second - self.mean**2)

    @property
    def std(self) -> float:
        return math.sqrt(self.variance)

    @property
    def modes(self) -> np.ndarray:
        """Where to measure coverage: the component means (the bumps of the mixture)."""
        return self.means.copy()

    def log_prob(self, x) -> Tensor:
        """log p(x) for x of any shape, in float64 (logsumexp over components)."""
        x = torch.as_tensor(x, dtype=torch.float64)
        mu = torch.as_tensor(self.means, device=x.device)
        sigma = torch.as_tensor(self.stds, device=x.device)
        log_w = torch.log(torch.as_tensor(self.weights, device=x.device))
        z = (x[..., None] - mu) / sigma
        return torch.logsumexp(log_w - 0.5 * z * z - torch.log(sigma) - 0.5 * _LOG_2PI, dim=-1)

    def cdf(self, x) -> np.ndarray:
        from scipy.special import ndtr

        x = np.asarray(x, dtype=np.float64)
        return np.sum(self.weights * ndtr((x[..., None] - self.means) / self.stds), axis=-1)

    def mass_between(self, low: float, high: float) -> float:
        return float(self.cdf(high) - self.cdf(low))

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        which = torch.multinomial(torch.as_tensor(self.weights), n, True, generator=generator)
        noise = torch.randn(n, dtype=torch.float64, generator=generator)
        return torch.as_tensor(self.means)[which] + torch.as_tensor(self.stds)[which] * noise

    def range(self, width: float = 4.0) -> tuple[float, float]:
        """An interval holding all components to ``width`` standard deviations."""
        return (float(np.min(self.means - width * self.stds)), float(np.max(self.means + width * self.stds)))

    def grid(self, points: int = 2048, low: float | None = None, high: float | None = None) -> Grid:
        """A regular grid over the target's range (+- 6 component stds and +- 6 overall stds)."""
        if points < 16:
            raise ValueError(f"grid points must be at least 16, got {points}")
        lo, hi = self.range(6.0)
        # wide enough for a mass-covering q too: the moment-matched Gaussian's +- 6 stds
        lo, hi = min(lo, self.mean - 6 * self.std), max(hi, self.mean + 6 * self.std)
        low = lo if low is None else float(low)
        high = hi if high is None else float(high)
        if not high > low:
            raise ValueError(f"the grid needs low < high, got low={low:g}, high={high:g}")
        x = np.linspace(low, high, points)
        cell = float(x[1] - x[0])
        # the rectangle rule over the grid covers [low - cell/2, high + cell/2]
        lost = 1.0 - self.mass_between(low - cell / 2, high + cell / 2)
        return Grid(torch.as_tensor(x), cell, (points,), max(lost, 0.0), (x,))

    def describe(self) -> str:
        parts = [
            f"{w:.2g}·N({m:.3g}, {s:.3g}²)"
            for w, m, s in zip(self.weights, self.means, self.stds, strict=True)
        ]
        return " + ".join(parts)


def mixture(means, stds, weights=None) -> Mixture1D:
    """A 1D Gaussian mixture p = sum_k w_k N(mu_k, sigma_k^2) (equal weights when omitted)."""
    mu = _vector(means, "means")
    sigma = _vector(stds, "stds")
    if sigma.size == 1 and mu.size > 1:
        sigma = np.full(mu.size, sigma[0])
    if sigma.size != mu.size:
        raise ValueError(f"stds must have one entry per mean ({mu.size}), got {sigma.size}")
    if np.any(sigma <= 0):
        raise ValueError(f"stds must be positive (a standard deviation), got {list(sigma)}")
    w = check_weights(weights, mu.size)
    return Mixture1D(mu, sigma, w)


#: 1D target presets; ``separation`` is the distance between the outer modes.
PRESETS_1D = ("two equal modes", "unequal weights", "three modes", "wide and narrow")


def preset_1d(name: str = "two equal modes", separation: float = 4.0, weight: float = 0.5,
              std: float = 0.5) -> Mixture1D:
    """The named 1D target; ``weight`` is the weight of the left mode where that makes sense."""
    if name not in PRESETS_1D:
        raise ValueError(f"unknown 1D target preset {name!r}; choose one of: {', '.join(PRESETS_1D)}")
    if not separation > 0:
        raise ValueError(f"separation must be positive, got {separation!r}")
    if not 0 < weight < 1:
        raise ValueError(f"weight must be strictly between 0 and 1, got {weight!r}")
    d = separation / 2
    if name == "two equal modes":
        return mixture([-d, d], [std, std], [0.5, 0.5])
    if name == "unequal weights":
        return mixture([-d, d], [std, std], [weight, 1 - weight])
    if name == "three modes":
        return mixture([-d, 0.0, d], [std] * 3, [weight / 2, 1 - weight, weight / 2])
    return mixture([-d, d], [3 * std, std / 2], [weight, 1 - weight])


# ---------------------------------------------------------------------------------------------
# 2D Gaussian mixtures
# ---------------------------------------------------------------------------------------------


def _check_covariances(covs, count: int) -> np.ndarray:
    c = np.asarray(covs, dtype=np.float64)
    if c.shape == (2, 2):
        c = np.broadcast_to(c, (count, 2, 2)).copy()
    if c.shape != (count, 2, 2):
        raise ValueError(f"covs must be one 2x2 matrix per component ({count}), got shape {c.shape}")
    if not np.all(np.isfinite(c)) or not np.allclose(c, np.swapaxes(c, 1, 2)):
        raise ValueError("covs must be finite symmetric 2x2 matrices")
    if np.any(np.linalg.eigvalsh(c) <= 0):
        raise ValueError("covs must be positive definite (both eigenvalues > 0)")
    return c


@dataclass(frozen=True, eq=False)
class Mixture2D:
    """p(x) = sum_k w_k N(x; mu_k, Sigma_k) in the plane."""

    means: np.ndarray  # (K, 2)
    covs: np.ndarray  # (K, 2, 2)
    weights: np.ndarray
    dim = 2
    kind = "2d"

    @property
    def components(self) -> int:
        return int(self.weights.size)

    @property
    def mean(self) -> np.ndarray:
        return self.weights @ self.means

    @property
    def covariance(self) -> np.ndarray:
        centred = self.means - self.mean
        return np.einsum("k,kij->ij", self.weights, self.covs) + np.einsum(
            "k,ki,kj->ij", self.weights, centred, centred
        )

    @property
    def modes(self) -> np.ndarray:
        return self.means.copy()

    def log_prob(self, x) -> Tensor:
        x = torch.as_tensor(x, dtype=torch.float64)
        mu = torch.as_tensor(self.means, device=x.device)
        chol = torch.linalg.cholesky(torch.as_tensor(self.covs, device=x.device))
        return log_prob_2d(x, mu, chol, torch.log(torch.as_tensor(self.weights, device=x.device)))

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        which = torch.multinomial(torch.as_tensor(self.weights), n, True, generator=generator)
        noise = torch.randn(n, 2, dtype=torch.float64, generator=generator)
        chol = torch.linalg.cholesky(torch.as_tensor(self.covs))
        return torch.as_tensor(self.means)[which] + torch.einsum("nij,nj->ni", chol[which], noise)

    def range(self, width: float = 4.0) -> tuple[float, float]:
        spread = np.sqrt(np.max(np.linalg.eigvalsh(self.covs), axis=1))
        low = np.min(self.means - width * spread[:, None])
        high = np.max(self.means + width * spread[:, None])
        return float(low), float(high)

    def grid(self, points: int = 256, low: float | None = None, high: float | None = None) -> Grid:
        """A square points x points grid over the target (+- 5 stds unless given)."""
        if points < 16:
            raise ValueError(f"grid points must be at least 16 per axis, got {points}")
        lo, hi = self.range(5.0)
        spread = 5 * math.sqrt(float(np.max(np.linalg.eigvalsh(self.covariance))))
        lo = min(lo, float(np.min(self.mean)) - spread)
        hi = max(hi, float(np.max(self.mean)) + spread)
        low = lo if low is None else float(low)
        high = hi if high is None else float(high)
        axis = np.linspace(low, high, points)
        step = float(axis[1] - axis[0])
        xx, yy = np.meshgrid(axis, axis, indexing="xy")
        pts = torch.as_tensor(np.stack([xx.ravel(), yy.ravel()], axis=1))
        cell = step * step
        inside = float(torch.exp(self.log_prob(pts)).sum()) * cell
        return Grid(pts, cell, (points, points), max(1.0 - inside, 0.0), (axis, axis))

    def describe(self) -> str:
        return f"{self.components}-component 2D Gaussian mixture"


def log_prob_2d(x: Tensor, mu: Tensor, chol: Tensor, log_w: Tensor) -> Tensor:
    """log sum_k w_k N(x; mu_k, L_k L_k^T) for x (..., 2), mu (K, 2), chol (K, 2, 2)."""
    diff = x[..., None, :] - mu  # (..., K, 2)
    a, c, b = chol[:, 0, 0], chol[:, 1, 1], chol[:, 1, 0]
    # solve L z = diff for the lower-triangular 2x2 L in closed form (cheap and differentiable)
    z0 = diff[..., 0] / a
    z1 = (diff[..., 1] - b * z0) / c
    log_det = torch.log(a) + torch.log(c)
    return torch.logsumexp(log_w - 0.5 * (z0 * z0 + z1 * z1) - log_det - _LOG_2PI, dim=-1)


def mixture2d(means, covs, weights=None) -> Mixture2D:
    """A 2D Gaussian mixture; ``covs`` is one 2x2 matrix per component (or one shared)."""
    mu = np.asarray(means, dtype=np.float64)
    if mu.ndim != 2 or mu.shape[1] != 2 or mu.shape[0] == 0 or not np.all(np.isfinite(mu)):
        raise ValueError(f"means must be a list of finite (x, y) pairs, got shape {mu.shape}")
    c = _check_covariances(covs, mu.shape[0])
    w = check_weights(weights, mu.shape[0])
    return Mixture2D(mu, c, w)


PRESETS_2D = ("ring of 8", "2x2 grid", "two unequal blobs")


def preset_2d(name: str = "ring of 8", separation: float = 4.0, std: float = 0.4) -> Mixture2D:
    """The named 2D target; ``separation`` is the ring diameter / grid spacing / blob distance."""
    if name not in PRESETS_2D:
        raise ValueError(f"unknown 2D target preset {name!r}; choose one of: {', '.join(PRESETS_2D)}")
    if not separation > 0:
        raise ValueError(f"separation must be positive, got {separation!r}")
    if name == "ring of 8":
        angles = np.arange(8) * 2 * np.pi / 8
        means = separation / 2 * np.stack([np.cos(angles), np.sin(angles)], axis=1)
        return mixture2d(means, std**2 * np.eye(2))
    if name == "2x2 grid":
        h = separation / 2
        return mixture2d([[-h, -h], [-h, h], [h, -h], [h, h]], std**2 * np.eye(2))
    h = separation / 2
    covs = [np.diag([4 * std**2, std**2]), (std / 1.5) ** 2 * np.eye(2)]
    return mixture2d([[-h, 0.0], [h, 0.5 * h]], covs, [0.7, 0.3])


# ---------------------------------------------------------------------------------------------
# Discrete distributions over a vocabulary (knowledge distillation)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Discrete:
    """A distribution over tokens 0 .. V-1 (zeros allowed)."""

    probs: np.ndarray
    dim = 0
    kind = "discrete"

    @property
    def vocabulary(self) -> int:
        return int(self.probs.size)

    @property
    def modes(self) -> np.ndarray:
        """Local maxima of the token probabilities (the teacher's peaks), ignoring bumps below
        a tenth of the highest (a flat floor has no peaks)."""
        p = self.probs
        left = np.concatenate([[-np.inf], p[:-1]])
        right = np.concatenate([p[1:], [-np.inf]])
        peaks = np.flatnonzero((p > left) & (p >= right) & (p >= 0.1 * p.max()))
        return peaks.astype(np.float64)

    @property
    def mean(self) -> float:
        return float(np.dot(self.probs, np.arange(self.vocabulary)))

    def log_prob(self, tokens) -> Tensor:
        """log p(token) for integer-valued tokens of any shape (-inf for zero probability)."""
        index = torch.as_tensor(tokens).round().long()
        table = torch.log(torch.as_tensor(self.probs, device=index.device))
        return table[index]

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        return torch.multinomial(torch.as_tensor(self.probs), n, True, generator=generator).double()

    def grid(self, points: int | None = None, low=None, high=None) -> Grid:
        tokens = np.arange(self.vocabulary, dtype=np.float64)
        return Grid(torch.as_tensor(tokens), 1.0, (self.vocabulary,), 0.0, (tokens,))

    def describe(self) -> str:
        return f"distribution over {self.vocabulary} tokens"


def discrete(probs) -> Discrete:
    """A token distribution from probabilities that sum to one (zeros allowed)."""
    p = _vector(probs, "probs")
    if p.size < 2:
        raise ValueError("probs needs at least two tokens")
    if np.any(p < 0):
        raise ValueError("probs must be non-negative")
    if abs(p.sum() - 1.0) > 1e-6:
        raise ValueError(f"probs must sum to 1 (within 1e-6), but they sum to {p.sum():.6g}")
    return Discrete(p / p.sum())


def teacher(vocabulary: int = 40, peaks=(10, 28), heights=(0.5, 0.5), width: float = 2.0,
            floor: float = 1e-3) -> Discrete:
    """A multi-peaked "teacher" next-token distribution, as in knowledge distillation: a
    mixture of discretised bumps at ``peaks`` (each cut off at 3 ``width``) plus a small ``floor``
    spread over every token. ``floor=0`` leaves tokens of probability zero, which makes the
    zero-forcing divergences (reverse KL, Neyman) infinite for any full-support student."""
    if vocabulary < 4:
        raise ValueError(f"vocabulary must be at least 4 tokens, got {vocabulary}")
    peaks = _vector(peaks, "peaks")
    heights = check_weights(heights, peaks.size, "heights")
    if np.any((peaks < 0) | (peaks > vocabulary - 1)):
        raise ValueError(f"peaks must be token positions between 0 and {vocabulary - 1}")
    if not width > 0:
        raise ValueError(f"width must be positive, got {width!r}")
    if not 0 <= floor < 1:
        raise ValueError(f"floor must be in [0, 1), got {floor!r}")
    tokens = np.arange(vocabulary)
    distance = (tokens[:, None] - peaks) / width
    # each bump is cut off at 3 widths, so that floor = 0 leaves tokens the teacher never says
    bumps = np.where(np.abs(distance) <= 3.0, np.exp(-0.5 * distance**2), 0.0)
    bumps /= bumps.sum(axis=0)
    probs = (1 - floor) * bumps @ heights + floor / vocabulary
    return Discrete(probs / probs.sum())
