"""Source distributions for flow matching: the standard Gaussian and the alternatives studied in

* "Is There a Better Source Distribution than Gaussian? Exploring Source Distributions for Image
  Flow Matching" (2025): a high-dimensional Gaussian seen in 2D (a thin ring), norm alignment,
  density approximations of the data (mode discrepancy), directional sources restricted to
  caps around the data's directions (spherical k-means), and directional pruning;
* "Better Source, Better Flow: Learning Condition-Dependent Source Distribution for Flow
  Matching" (Kim, Park, Jeon, Kim, 2026): a learned source x0 = mu_c + sigma_c * eps trained with
  the flow, with a variance regulariser and a directional alignment loss that turns each mean
  mu_c towards its cluster's data.

Data-dependent sources (norm alignment, density approximation, caps, the learned source's
clusters) are fitted once, from ``FIT_SIZE`` target points drawn with a fixed seed.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from explorer.checks import check_integer
from explorer.device import check_seed, choose_device

from .targets import get_target, labelled_target

FIT_SIZE = 4000
FIT_SEED = 12345

SOURCE_LABELS = {
    "gaussian": "standard Gaussian",
    "hd_gaussian": "high-dim Gaussian (a ring at the chi radius)",
    "norm_aligned": "norm-aligned Gaussian",
    "uniform": "uniform box",
    "8gaussians": "8 Gaussians",
    "density_approx": "density approximation (Gaussian mixture fit)",
    "directional": "directional caps",
    "learned": "learned source (mu + sigma eps)",
}

DEFAULT_OPTIONS: dict[str, dict] = {
    "gaussian": {},
    "hd_gaussian": {"dim": 64},
    "norm_aligned": {"base": "gaussian", "dim": 64},
    "uniform": {"half_width": 3.0},
    "8gaussians": {},
    "density_approx": {"components": 2, "fit_points": 200},
    "directional": {"tau": 0.9, "caps": 3, "base": "gaussian", "dim": 64},
    "learned": {"components": None, "var_reg": 1.0, "align_reg": 0.1},
}


LEARNED_PARAMETERS = ("log_radius", "angle", "log_sigma")  # what training moves and weights keep
INITIAL_RADIUS = 1e-2  # the learned source starts as N(0, I) up to means of this size


@dataclass
class LearnedParams:
    """The trainable part of the learned source, one component per data cluster (the
    "condition" c of Better Source, Better Flow): x0 = mu_c + sigma_c * eps with the mean in
    polar form mu_c = r_c (cos phi_c, sin phi_c) and the radius r_c = exp(log_radius_c) > 0.
    A positive radius makes the direction of mu_c the direction of the angle phi_c, so the
    alignment loss 1 - cos(mu_c, x1) turns mu_c itself towards its cluster (a radius free to
    turn negative would let mu_c point away from the data while the angle points at it); the
    polar form keeps that loss's gradient in the angle finite however small |mu_c| is."""

    centroids: torch.Tensor  # (K, 2) k-means centres of the data, to give each x1 its condition
    weights: torch.Tensor  # (K,) the clusters' shares of the data
    log_radius: torch.Tensor  # (K,)
    angle: torch.Tensor  # (K,)
    log_sigma: torch.Tensor  # (K, 2)
    var_reg: float
    align_reg: float

    @property
    def radius(self) -> torch.Tensor:
        return torch.exp(self.log_radius)

    @property
    def mu(self) -> torch.Tensor:
        return mean_from_polar(self.log_radius, self.angle)

    def condition(self, x1: torch.Tensor) -> torch.Tensor:
        return torch.cdist(x1, self.centroids.to(x1.device)).argmin(1)

    def draw_for(self, condition, eps, log_radius=None, angle=None, log_sigma=None):
        """x0 = mu_c + sigma_c * eps (reparameterised: differentiable in the parameters)."""
        log_radius = self.log_radius if log_radius is None else log_radius
        angle = self.angle if angle is None else angle
        log_sigma = self.log_sigma if log_sigma is None else log_sigma
        mu = mean_from_polar(log_radius, angle)
        return mu[condition] + torch.exp(log_sigma[condition]) * eps


def mean_from_polar(log_radius: torch.Tensor, angle: torch.Tensor) -> torch.Tensor:
    """mu = exp(log_radius) (cos angle, sin angle), one row per component."""
    return torch.exp(log_radius)[:, None] * torch.stack([torch.cos(angle), torch.sin(angle)], 1)


@dataclass
class Source:
    """A fitted source: ``sample(n, gen)`` draws (n, 2) points.

    ``caps`` (unit directions, (k, 2)) and ``tau`` are set for the directional source; ``learned``
    for the learned source (whose parameters a trained model carries)."""

    name: str
    options: dict
    draw: Callable[[int, torch.Generator], torch.Tensor]
    caps: np.ndarray | None = None
    tau: float | None = None
    learned: LearnedParams | None = None
    notes: dict = field(default_factory=dict)

    @property
    def label(self) -> str:
        return SOURCE_LABELS[self.name]

    def sample(self, n: int, gen: torch.Generator) -> torch.Tensor:
        if self.learned is not None:
            with torch.no_grad():
                k = torch.multinomial(self.learned.weights.to(gen.device), n, True, generator=gen)
                eps = torch.randn(n, 2, generator=gen, device=gen.device)
                return self.learned.draw_for(k, eps)
        return self.draw(n, gen)


# ----- the samplers ------------------------------------------------------------------------


def _gaussian(n, gen):
    return torch.randn(n, 2, generator=gen, device=gen.device)


def chi_mean(dim: int) -> float:
    """E|z| for z ~ N(0, I_dim): sqrt(2) Gamma((d+1)/2) / Gamma(d/2)."""
    return math.sqrt(2) * math.exp(math.lgamma((dim + 1) / 2) - math.lgamma(dim / 2))


def hd_scale(dim: int) -> float:
    """Scale that puts the ring of a dim-dimensional Gaussian at radius 2x the data norm."""
    from .targets import HD_DATA_RADIUS

    return 2 * HD_DATA_RADIUS / math.sqrt(dim)


def _hd_gaussian(dim: int):
    """A d-dimensional N(0, I) seen in 2D: a uniform direction and the norm |z| ~ chi_d."""

    def draw(n, gen):
        z = torch.randn(n, dim, generator=gen, device=gen.device)
        radius = z.norm(dim=1, keepdim=True) * hd_scale(dim)
        angle = 2 * math.pi * torch.rand(n, 1, generator=gen, device=gen.device)
        return radius * torch.cat([torch.cos(angle), torch.sin(angle)], 1)

    return draw


def _base(options: dict):
    """The base sampler a norm-aligned or directional source starts from, with its mean norm."""
    base = options.get("base", "gaussian")
    if base == "gaussian":
        return _gaussian, math.sqrt(math.pi / 2)
    if base == "hd_gaussian":
        dim = check_integer(options.get("dim", 64), "dim", low=1)
        return _hd_gaussian(dim), chi_mean(dim) * hd_scale(dim)
    raise ValueError(f"base must be 'gaussian' or 'hd_gaussian', got {base!r}")


def _uniform_box(half_width: float):
    def draw(n, gen):
        return half_width * (2 * torch.rand(n, 2, generator=gen, device=gen.device) - 1)

    return draw


def fit_data(target, device=None) -> tuple[np.ndarray, np.ndarray]:
    """The fixed data sample every data-dependent source is fitted to (points, mode labels)."""
    x, labels = labelled_target(target, FIT_SIZE, FIT_SEED, device="cpu")
    return x.numpy().astype(np.float64), labels.numpy()


def spherical_kmeans(x: np.ndarray, k: int, seed: int = 0, iters: int = 50):
    """Spherical k-means (Dhillon & Modha 2001): cluster the directions x/|x| by cosine
    similarity; returns unit centroids (k, 2) and the clusters' shares of the data."""
    u = x / np.linalg.norm(x, axis=1, keepdims=True).clip(min=1e-12)
    rng = np.random.default_rng(seed)
    centres = u[rng.choice(len(u), size=1)]
    while len(centres) < k:  # k-means++ seeding with the cosine distance 1 - cos
        distance = (1 - u @ centres.T).min(1).clip(min=0)
        probs = distance / distance.sum() if distance.sum() > 0 else None
        centres = np.vstack([centres, u[rng.choice(len(u), p=probs)]])
    for _ in range(iters):
        assign = (u @ centres.T).argmax(1)
        for j in range(k):
            members = u[assign == j]
            if len(members):
                mean = members.sum(0)
                centres[j] = mean / max(np.linalg.norm(mean), 1e-12)
    assign = (u @ centres.T).argmax(1)
    return centres, np.bincount(assign, minlength=k) / len(u)


def kmeans(x: np.ndarray, k: int, seed: int = 0, iters: int = 50):
    """Lloyd's k-means with k-means++ seeding; returns centres (k, 2) and cluster shares."""
    rng = np.random.default_rng(seed)
    centres = x[rng.choice(len(x), size=1)]
    while len(centres) < k:
        distance = ((x[:, None] - centres[None]) ** 2).sum(-1).min(1)
        centres = np.vstack([centres, x[rng.choice(len(x), p=distance / distance.sum())]])
    for _ in range(iters):
        assign = ((x[:, None] - centres[None]) ** 2).sum(-1).argmin(1)
        for j in range(k):
            if (assign == j).any():
                centres[j] = x[assign == j].mean(0)
    assign = ((x[:, None] - centres[None]) ** 2).sum(-1).argmin(1)
    return centres, np.bincount(assign, minlength=k) / len(x)


@dataclass
class GaussianMixture:
    weights: np.ndarray  # (k,)
    means: np.ndarray  # (k, 2)
    covariances: np.ndarray  # (k, 2, 2)

    def log_prob_components(self, x: np.ndarray) -> np.ndarray:
        """log w_j + log N(x | m_j, C_j), shape (n, k)."""
        out = []
        for w, m, c in zip(self.weights, self.means, self.covariances, strict=True):
            chol = np.linalg.cholesky(c)
            z = np.linalg.solve(chol, (x - m).T)
            log_det = 2 * np.log(np.diag(chol)).sum()
            out.append(np.log(w) - 0.5 * (z**2).sum(0) - 0.5 * log_det - np.log(2 * np.pi))
        return np.stack(out, 1)


def fit_gaussian_mixture(x: np.ndarray, k: int, seed: int = 0, iters: int = 200):
    """Expectation-maximisation for a full-covariance Gaussian mixture (Dempster, Laird & Rubin
    1977), started from k-means; a 1e-6 ridge keeps covariances invertible."""
    centres, _ = kmeans(x, k, seed)
    gmm = GaussianMixture(
        np.full(k, 1 / k), centres, np.stack([np.cov(x.T) + 1e-6 * np.eye(2)] * k)
    )
    for _ in range(iters):
        log_joint = gmm.log_prob_components(x)
        resp = np.exp(log_joint - np.logaddexp.reduce(log_joint, axis=1, keepdims=True))
        mass = resp.sum(0).clip(min=1e-12)
        means = (resp.T @ x) / mass[:, None]
        covs = np.stack(
            [
                ((resp[:, j, None] * (x - means[j])).T @ (x - means[j])) / mass[j]
                + 1e-6 * np.eye(2)
                for j in range(k)
            ]
        )
        gmm = GaussianMixture(mass / len(x), means, covs)
    return gmm


def _mixture_sampler(gmm: GaussianMixture):
    weights = torch.tensor(gmm.weights, dtype=torch.float32)
    means = torch.tensor(gmm.means, dtype=torch.float32)
    chols = torch.tensor(np.linalg.cholesky(gmm.covariances), dtype=torch.float32)

    def draw(n, gen):
        k = torch.multinomial(weights.to(gen.device), n, True, generator=gen)
        eps = torch.randn(n, 2, 1, generator=gen, device=gen.device)
        return means.to(gen.device)[k] + (chols.to(gen.device)[k] @ eps)[..., 0]

    return draw


def in_caps(x: torch.Tensor, caps: np.ndarray, tau: float) -> torch.Tensor:
    """True where cos(x, mu_k) >= tau for some cap direction mu_k."""
    unit = x / x.norm(dim=1, keepdim=True).clamp_min(1e-12)
    cosines = unit @ torch.as_tensor(caps, dtype=x.dtype, device=x.device).T
    return (cosines >= tau).any(1)


def check_tau(tau, name: str = "tau") -> float:
    if not isinstance(tau, (int, float)) or not -1 < float(tau) < 1:
        raise ValueError(
            f"{name} must be a cosine strictly between -1 and 1 (1 would leave only a line), "
            f"got {tau!r}"
        )
    return float(tau)


def restricted(base_draw, keep, what: str):
    """Rejection sampling: draw from ``base_draw`` and keep the points where ``keep`` holds."""

    def draw(n, gen):
        kept, total, tries = [], 0, 0
        while total < n:
            candidates = base_draw(max(2 * (n - total), 256), gen)
            ok = candidates[keep(candidates)]
            kept.append(ok)
            total += len(ok)
            tries += 1
            if tries > 200 and total == 0:
                raise ValueError(f"{what}: no draw of the base source falls in the allowed region")
        return torch.cat(kept)[:n]

    return draw


@functools.lru_cache(maxsize=64)
def _fitted(what: str, target, k: int = 0, seed: int = 0, fit_points: int = 0):
    """A source's fit to the target's data (:func:`fit_data`), made once per target and
    arguments: a pure function of them, shared by every model built from that source (a
    comparison grid builds each twice, one per coupling).

    ``mean_norm``: E|x1| of the data; ``mixture``: the Gaussian mixture of ``k`` components on
    ``fit_points`` data drawn with ``seed``; ``caps``: ``k`` spherical k-means directions and
    their shares; ``centres``: ``k`` k-means centres and shares."""
    data, _ = fit_data(target)
    if what == "mean_norm":
        return float(np.linalg.norm(data, axis=1).mean())
    if what == "mixture":
        rng = np.random.default_rng(seed)
        subset = data[rng.choice(len(data), size=min(fit_points, len(data)), replace=False)]
        return fit_gaussian_mixture(subset, k, seed)
    if what == "caps":
        return spherical_kmeans(data, k, seed)
    return kmeans(data, k, seed)


def make_source(name: str, target="moons", seed: int = 0, **options) -> Source:
    """Build (and fit, where it needs data) the source ``name`` for ``target``."""
    if name not in SOURCE_LABELS:
        raise ValueError(f"unknown source {name!r}; choose one of: {', '.join(SOURCE_LABELS)}")
    unknown = set(options) - set(DEFAULT_OPTIONS[name])
    if unknown:
        allowed = ", ".join(DEFAULT_OPTIONS[name]) or "none"
        raise ValueError(
            f"source {name!r} has no option {', '.join(sorted(unknown))}; its options: {allowed}"
        )
    opts = {**DEFAULT_OPTIONS[name], **options}
    get_target(target)
    if name == "gaussian":
        return Source(name, opts, _gaussian)
    if name == "hd_gaussian":
        return Source(name, opts, _hd_gaussian(check_integer(opts["dim"], "dim", low=1)))
    if name == "8gaussians":
        return Source(name, opts, get_target("8gaussians").sample)
    if name == "uniform":
        half = float(opts["half_width"])
        if not half > 0:
            raise ValueError(f"half_width must be positive, got {half!r}")
        return Source(name, opts, _uniform_box(half))
    fitted = _fitted if isinstance(target, str) else _fitted.__wrapped__
    if name == "norm_aligned":
        base, base_norm = _base(opts)
        scale = fitted("mean_norm", target) / base_norm
        return Source(name, opts, lambda n, gen: scale * base(n, gen), notes={"scale": scale})
    if name == "density_approx":
        k = check_integer(opts["components"], "components", low=1)
        fit_points = check_integer(opts["fit_points"], "fit_points", low=1)
        gmm = fitted("mixture", target, k, check_seed(seed), fit_points)
        return Source(name, opts, _mixture_sampler(gmm), notes={"mixture": gmm})
    if name == "directional":
        tau = check_tau(opts["tau"])
        k = check_integer(opts["caps"], "caps", low=1)
        caps, shares = (a.copy() for a in fitted("caps", target, k, check_seed(seed)))
        base, _ = _base(opts)
        draw = restricted(base, lambda x: in_caps(x, caps, tau), "directional source")
        return Source(name, opts, draw, caps=caps, tau=tau, notes={"shares": shares})
    # learned: one component per target mode unless told otherwise
    k = opts["components"] or get_target(target).n_modes
    k = check_integer(k, "components", low=1)
    for reg in ("var_reg", "align_reg"):
        if not float(opts[reg]) >= 0:
            raise ValueError(f"{reg} must be zero or positive, got {opts[reg]!r}")
    centres, shares = fitted("centres", target, k, check_seed(seed))
    learned = LearnedParams(  # starts as N(0, I): tiny means at evenly spread angles, sigma 1
        torch.tensor(centres, dtype=torch.float32),
        torch.tensor(shares, dtype=torch.float32),
        torch.full((k,), math.log(INITIAL_RADIUS)),
        torch.arange(k, dtype=torch.float32) * (2 * math.pi / k),
        torch.zeros(k, 2),
        float(opts["var_reg"]),
        float(opts["align_reg"]),
    )
    return Source(name, opts, _gaussian, learned=learned)


def source(
    name: str = "gaussian", n: int = 1000, seed: int = 0, target="moons", device=None, **options
) -> torch.Tensor:
    """``n`` points (n, 2) from the source ``name`` (fitted to ``target`` where it needs data).

    Options (defaults in ``DEFAULT_OPTIONS``): ``hd_gaussian(dim)``, ``norm_aligned(base, dim)``
    scaled so that E|x0| = E|x1|, ``uniform(half_width)``, ``density_approx(components,
    fit_points)``, ``directional(tau, caps, base, dim)`` with cos(x0, mu_k) >= tau, and
    ``learned(components, var_reg, align_reg)``, which before training is N(0, I) up to
    means of size INITIAL_RADIUS = 0.01 (components default: one per target mode)."""
    gen = torch.Generator(device=choose_device(device)).manual_seed(check_seed(seed))
    return make_source(name, target, seed, **options).sample(check_integer(n, "n", low=1), gen)
