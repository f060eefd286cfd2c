"""The divergence calculator: every registered divergence between two distributions.

Two kinds of pair:
* continuous: 1D densities on a fine grid, evaluated by quadrature from log-densities
  (``divergences.on_grid``), with closed forms beside them where they exist (two Gaussians) and
  Monte-Carlo estimates of KL(q||p) from samples of q (Schulman's k1, k2, k3);
* discrete: distributions over a small vocabulary of tokens (``divergences.between``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from scipy import special, stats

from .. import divergences

GRID = np.linspace(-20.0, 20.0, 8001)
CELL = float(GRID[1] - GRID[0])
TOKENS = 8

#: name -> (description, frozen scipy distribution or mixture spec)
CONTINUOUS = {
    "gaussian": "standard Gaussian N(0, 1)",
    "two_modes": "two modes ½N(−2, 0.5²) + ½N(2, 0.5²)",
    "laplace": "Laplace(0, 1): heavier tails",
    "student_t": "Student t, 3 degrees of freedom: much heavier tails",
    "uniform": "uniform on [−1.5, 1.5]: zero density outside",
}

DISCRETE = {
    "uniform": np.full(TOKENS, 1.0 / TOKENS),
    "teacher_two_peaks": np.array([0.02, 0.40, 0.05, 0.02, 0.02, 0.40, 0.05, 0.04]),
    "student_one_peak": np.array([0.05, 0.70, 0.10, 0.03, 0.03, 0.03, 0.03, 0.03]),
    "no_last_tokens": np.array([0.20, 0.20, 0.20, 0.15, 0.15, 0.10, 0.0, 0.0]),
    "point_mass": np.eye(TOKENS)[1],
}


def presets(kind: str) -> list[str]:
    """The preset names for a kind of pair."""
    if kind == "continuous":
        return list(CONTINUOUS)
    if kind == "discrete":
        return list(DISCRETE)
    raise ValueError(f"kind must be 'continuous' or 'discrete', got {kind!r}")


def _base_distribution(name: str):
    if name == "gaussian":
        return stats.norm(0.0, 1.0)
    if name == "laplace":
        return stats.laplace(0.0, 1.0)
    if name == "student_t":
        return stats.t(3.0)
    if name == "uniform":
        return stats.uniform(-1.5, 3.0)
    raise ValueError(f"unknown continuous preset {name!r}; choose one of: {', '.join(CONTINUOUS)}")


def log_density(name: str, x: np.ndarray, shift: float = 0.0, scale: float = 1.0) -> np.ndarray:
    """log density of preset ``name`` moved to ``shift`` and stretched by ``scale`` (-inf off support)."""
    z = (np.asarray(x, dtype=np.float64) - shift) / scale
    if name == "two_modes":
        parts = np.stack([stats.norm.logpdf(z, -2.0, 0.5), stats.norm.logpdf(z, 2.0, 0.5)])
        base = special.logsumexp(parts, axis=0, b=0.5)
    else:
        base = _base_distribution(name).logpdf(z)
    return base - math.log(scale)


def draw(name: str, n: int, rng: np.random.Generator, shift: float = 0.0, scale: float = 1.0):
    """n samples of preset ``name`` moved and stretched like :func:`log_density`."""
    if name == "two_modes":
        centres = rng.choice([-2.0, 2.0], size=n)
        z = centres + 0.5 * rng.standard_normal(n)
    else:
        z = _base_distribution(name).rvs(size=n, random_state=rng)
    return shift + scale * z


def gaussian_closed_form(name: str, mean_p, sd_p, mean_q, sd_q) -> float | None:
    """D_name(N(mean_p, sd_p^2) || N(mean_q, sd_q^2)) in closed form, where one is known.

    KL: the textbook formula; squared Hellinger: 2 (1 - Bhattacharyya coefficient);
    Pearson: integral p^2/q - 1, finite only when 2 sd_q^2 > sd_p^2; Jeffreys: the sum of both KLs.
    """

    def kl(m1, s1, m2, s2):
        return math.log(s2 / s1) + (s1**2 + (m1 - m2) ** 2) / (2 * s2**2) - 0.5

    if name == "forward_kl":
        return kl(mean_p, sd_p, mean_q, sd_q)
    if name == "reverse_kl":
        return kl(mean_q, sd_q, mean_p, sd_p)
    if name == "jeffreys":
        return kl(mean_p, sd_p, mean_q, sd_q) + kl(mean_q, sd_q, mean_p, sd_p)
    if name == "hellinger":
        total = sd_p**2 + sd_q**2
        bc = math.sqrt(2 * sd_p * sd_q / total) * math.exp(-((mean_p - mean_q) ** 2) / (4 * total))
        return 2.0 * (1.0 - bc)
    if name == "pearson":
        spread = 2 * sd_q**2 - sd_p**2
        if spread <= 0:
            return math.inf
        return (
            sd_q**2 / (sd_p * math.sqrt(spread)) * math.exp((mean_p - mean_q) ** 2 / spread) - 1.0
        )
    return None


@dataclass
class Row:
    """One line of the calculator's table."""

    name: str
    label: str
    value: float
    behaviour: str
    reason: str | None = None
    exact: float | None = None


@dataclass
class Calculation:
    kind: str
    support: np.ndarray
    p: np.ndarray
    q: np.ndarray
    rows: list[Row]
    chosen: str
    alpha: float
    estimates: dict[str, tuple[float, float]] = field(default_factory=dict)
    reverse_kl: float = math.nan
    samples: int = 0
    mass_lost: float = 0.0


def calculate(
    kind,
    p_name,
    q_name,
    q_shift=0.0,
    q_scale=1.0,
    divergence="reverse_kl",
    alpha=0.5,
    samples=1000,
    seed=0,
) -> Calculation:
    """Every registered divergence D(p||q) for the pair, and Monte-Carlo estimates of KL(q||p)."""
    if kind == "continuous":
        log_p = log_density(p_name, GRID)
        log_q = log_density(q_name, GRID, q_shift, q_scale)
        rows = _rows(log_p, log_q, alpha, lambda member: _grid_value(member, log_p, log_q))
        _attach_closed_forms(rows, p_name, q_name, q_shift, q_scale)
        p, q = np.exp(log_p), np.exp(log_q)
        mass_lost = max(1.0 - p.sum() * CELL, 1.0 - q.sum() * CELL, 0.0)
        rng = np.random.default_rng(seed)
        x = draw(q_name, samples, rng, q_shift, q_scale)
        log_p_s, log_q_s = log_density(p_name, x), log_density(q_name, x, q_shift, q_scale)
        support = GRID
    else:
        p, q = _discrete(p_name), _discrete(q_name)
        with np.errstate(divide="ignore"):
            log_p, log_q = np.log(p), np.log(q)
        rows = _rows(
            log_p,
            log_q,
            alpha,
            lambda member: (divergences.between(member.name, p, q, member.alpha), None),
        )
        mass_lost = 0.0
        rng = np.random.default_rng(seed)
        tokens = rng.choice(TOKENS, size=samples, p=q)
        log_p_s, log_q_s = log_p[tokens], log_q[tokens]
        support = np.arange(TOKENS)
    estimates = {k: divergences.kl_estimate(log_p_s, log_q_s, k) for k in divergences.KL_ESTIMATORS}
    reverse = next(r.value for r in rows if r.name == "reverse_kl")
    return Calculation(
        kind, support, p, q, rows, divergence, alpha, estimates, reverse, samples, mass_lost
    )


def _discrete(name: str) -> np.ndarray:
    if name not in DISCRETE:
        raise ValueError(f"unknown discrete preset {name!r}; choose one of: {', '.join(DISCRETE)}")
    return DISCRETE[name]


def _rows(log_p, log_q, alpha, evaluate) -> list[Row]:
    q_outside = bool(np.any(np.isneginf(log_p) & np.isfinite(log_q)))
    p_missed = bool(np.any(np.isneginf(log_q) & np.isfinite(log_p)))
    rows = []
    for name in divergences.names():
        a = alpha if name == "alpha" else None
        member = divergences.get(name, a)
        value, tail_reason = evaluate(member)
        reason = divergences.support_reason(member, q_outside=q_outside, p_missed=p_missed)
        if tail_reason is not None:
            value, reason = math.inf, reason or tail_reason
        rows.append(
            Row(name, member.label, value, member.behaviour, reason if math.isinf(value) else None)
        )
    return rows


def _grid_value(member, log_p, log_q) -> tuple[float, str | None]:
    """Quadrature on the grid, and a reason when the integrand still grows at the grid's edges
    (then the integral over the whole line diverges, e.g. Pearson with q's tails lighter than p's)."""
    terms = member.terms(
        torch.as_tensor(log_p + math.log(CELL)), torch.as_tensor(log_q + math.log(CELL))
    )
    value = float(terms.sum())
    edge = 200  # compare the outermost term with one 1 unit further in, on both sides
    left, right = terms[0], terms[-1]
    growing = (left > terms[edge] and left > 1e-12) or (right > terms[-1 - edge] and right > 1e-12)
    if math.isfinite(value) and growing:
        return value, "the integrand grows in the tails: q's tails are too light for p's"
    return value, None


def _attach_closed_forms(rows, p_name, q_name, q_shift, q_scale) -> None:
    if p_name == "gaussian" and q_name == "gaussian":
        for row in rows:
            row.exact = gaussian_closed_form(row.name, 0.0, 1.0, q_shift, q_scale)
