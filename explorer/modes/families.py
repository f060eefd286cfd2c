"""Model families q_theta: a Gaussian or a K-component Gaussian mixture (1D, 2D), and for tokens
a low-capacity "student": the softmax of a quadratic logit, i.e. a discretised Gaussian
(K > 1: a mixture of such students).

A family maps an unconstrained parameter vector theta to log q on a grid (differentiably, in
float64 torch) and to a model object of the same kind as the targets. Layout of theta:

* 1D and tokens: means (K), log stds (K), K - 1 free logits (the last component's logit is 0).
* 2D: per component mean (2) and Cholesky factor (log L00, L10, log L11), then K - 1 logits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .._deferred import deferred_import
from .targets import Discrete, Mixture1D, Mixture2D

# imported by the first fit, not with the app: a notebook's kernel then makes its app (and tells
# the browser to load plotly, explorer.ui.plotly_widget.preload_bundle) before it
torch = deferred_import("torch", globals())

if TYPE_CHECKING:
    from torch import Tensor

_LOG_2PI = math.log(2.0 * math.pi)

#: The largest number of components a model may have.
MAX_COMPONENTS = 8

FAMILIES = ("gaussian", "mixture")


def check_family(family: str, components: int) -> int:
    if family not in FAMILIES:
        raise ValueError(f"unknown model family {family!r}; choose 'gaussian' or 'mixture'")
    if isinstance(components, bool) or int(components) != components:
        raise ValueError(f"components must be a whole number, got {components!r}")
    components = int(components)
    if family == "gaussian":
        if components != 1:
            raise ValueError("the 'gaussian' family has one component; use family='mixture' for K > 1")
        return 1
    if not 1 <= components <= MAX_COMPONENTS:
        raise ValueError(
            f"components (K) must be between 1 and {MAX_COMPONENTS}, got {components}"
        )
    return components


def _log_weights(logits: Tensor) -> Tensor:
    """log softmax of (logits, 0): K - 1 free logits give K log weights."""
    full = torch.cat([logits, torch.zeros(1, dtype=logits.dtype, device=logits.device)])
    return torch.log_softmax(full, dim=0)


@dataclass(frozen=True)
class Family:
    """K Gaussian components over the target's space (``kind`` '1d', '2d' or 'discrete')."""

    kind: str
    components: int = 1

    # ----- layout --------------------------------------------------------------------------
    @property
    def per_component(self) -> int:
        return 5 if self.kind == "2d" else 2

    @property
    def size(self) -> int:
        return self.per_component * self.components + self.components - 1

    def split(self, theta):
        """(component parameters (K, per_component), free logits (K - 1,))."""
        k = self.components
        if self.kind == "2d":
            comp = theta[: 5 * k].reshape(k, 5)
        else:
            comp = np.stack([theta[:k], theta[k : 2 * k]], axis=1) if isinstance(
                theta, np.ndarray
            ) else torch.stack([theta[:k], theta[k : 2 * k]], dim=1)
        return comp, theta[self.per_component * k :]

    # ----- densities -----------------------------------------------------------------------
    def log_prob(self, theta: Tensor, points: Tensor) -> Tensor:
        """log q_theta at the grid points (differentiable in theta).

        ``theta`` is one parameter vector (P,) -> (N,), or a batch (R, P) -> (R, N): the solver
        runs all its starts as one batch, as the cost of a small tensor is mostly overhead."""
        batched = theta.ndim == 2
        th = theta if batched else theta[None]
        r, k = th.shape[0], self.components
        if self.kind == "2d":
            comp, logits = th[:, : 5 * k].reshape(r, k, 5), th[:, 5 * k :]
        else:
            comp, logits = torch.stack([th[:, :k], th[:, k : 2 * k]], dim=-1), th[:, 2 * k :]
        if self.kind == "2d":
            a, b, c = torch.exp(comp[..., 2]), comp[..., 3], torch.exp(comp[..., 4])  # (R, K)
            diff = points[None, :, None, :] - comp[:, None, :, :2]  # (R, N, K, 2)
            z0 = diff[..., 0] / a[:, None]
            z1 = (diff[..., 1] - b[:, None] * z0) / c[:, None]
            per_component = (-0.5 * (z0 * z0 + z1 * z1) - (comp[..., 2] + comp[..., 4])[:, None]
                             - _LOG_2PI)
        else:
            mu, log_sigma = comp[..., 0][:, None, :], comp[..., 1][:, None, :]
            z = (points[None, :, None] - mu) / torch.exp(log_sigma)  # (R, N, K)
            if self.kind == "discrete":
                # softmax over the vocabulary of a quadratic logit, one per component
                per_component = torch.log_softmax(-0.5 * z * z, dim=1)
            else:
                per_component = -0.5 * z * z - log_sigma - 0.5 * _LOG_2PI
        if k == 1:  # one component: no weights to mix (and no work spent on them)
            out = per_component[..., 0]
        else:
            log_w = torch.log_softmax(torch.cat([logits, torch.zeros_like(th[:, :1])], dim=1), 1)
            out = torch.logsumexp(log_w[:, None, :] + per_component, dim=-1)
        return out if batched else out[0]

    # ----- conversions ---------------------------------------------------------------------
    def to_model(self, theta, points: Tensor | None = None):
        """The distribution object for theta (a target of the same kind)."""
        theta = np.asarray(theta, dtype=np.float64)
        comp, logits = self.split(theta)
        weights = np.exp(_log_weights(torch.as_tensor(logits)).numpy())
        if self.kind == "1d":
            return Mixture1D(comp[:, 0].copy(), np.exp(comp[:, 1]), weights)
        if self.kind == "2d":
            chol = np.zeros((self.components, 2, 2))
            chol[:, 0, 0] = np.exp(comp[:, 2])
            chol[:, 1, 0] = comp[:, 3]
            chol[:, 1, 1] = np.exp(comp[:, 4])
            return Mixture2D(comp[:, :2].copy(), chol @ np.swapaxes(chol, 1, 2), weights)
        if points is None:
            raise ValueError("a token model needs the vocabulary grid")
        probs = torch.exp(self.log_prob(torch.as_tensor(theta), points)).numpy()
        return Student(probs / probs.sum(), comp[:, 0].copy(), np.exp(comp[:, 1]), weights)

    def from_components(self, means, spreads, weights) -> np.ndarray:
        """theta from component means, spreads (1D/tokens: stds; 2D: covariances) and weights."""
        weights = np.asarray(weights, dtype=np.float64)
        logits = np.log(np.maximum(weights[:-1], 1e-300)) - np.log(max(weights[-1], 1e-300))
        if self.kind == "2d":
            chol = np.linalg.cholesky(np.asarray(spreads, dtype=np.float64))
            comp = np.concatenate(
                [np.asarray(means, dtype=np.float64),
                 np.log(chol[:, 0, 0])[:, None], chol[:, 1, 0][:, None],
                 np.log(chol[:, 1, 1])[:, None]], axis=1)
            return np.concatenate([comp.ravel(), logits])
        means = np.asarray(means, dtype=np.float64)
        return np.concatenate([means, np.log(np.asarray(spreads, dtype=np.float64)), logits])

    def canonical(self, theta) -> np.ndarray:
        """theta with components sorted by their first mean coordinate (labels are arbitrary)."""
        model = self.to_model(theta) if self.kind != "discrete" else None
        if model is None:
            comp, logits = self.split(np.asarray(theta))
            weights = np.exp(_log_weights(torch.as_tensor(logits)).numpy())
            order = np.argsort(comp[:, 0])
            return np.concatenate([comp[order].ravel(), weights[order]])
        order = np.argsort(model.means if model.means.ndim == 1 else model.means[:, 0])
        if self.kind == "2d":
            return np.concatenate(
                [model.means[order].ravel(), model.covs[order].ravel(), model.weights[order]])
        return np.concatenate(
            [model.means[order], np.log(model.stds[order]), model.weights[order]])


@dataclass(frozen=True, eq=False)
class Student(Discrete):
    """A fitted token model: its probabilities and the (center, width, weight) of its bumps."""

    centers: np.ndarray = None
    widths: np.ndarray = None
    weights: np.ndarray = None

    @property
    def means(self) -> np.ndarray:
        return self.centers

    @property
    def stds(self) -> np.ndarray:
        return self.widths
