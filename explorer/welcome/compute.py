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
from scipy import optimize, special

from .. import divergences
from .._deferred import deferred_import
from ..device import ensure_threads

# imported by the first calculation, not with the app: a notebook's kernel then makes its app
# (and tells the browser to load plotly, explorer.ui.plotly_widget.preload_bundle) before it
torch = deferred_import("torch", globals())

GRID = np.linspace(-20.0, 20.0, 8001)  # for drawing the densities
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


#: name -> the words a menu shows for it (the names stay the API: ``app.set(p="two_modes")``)
LABELS = {
    "gaussian": "Gaussian",
    "two_modes": "two modes",
    "laplace": "Laplace",
    "student_t": "Student t",
    "uniform": "uniform",
    "teacher_two_peaks": "teacher: two peaks",
    "student_one_peak": "student: one peak",
    "no_last_tokens": "no last tokens",
    "point_mass": "point mass",
}


def presets(kind: str) -> list[str]:
    """The preset names for a kind of pair."""
    if kind == "continuous":
        return list(CONTINUOUS)
    if kind == "discrete":
        return list(DISCRETE)
    raise ValueError(f"kind must be 'continuous' or 'discrete', got {kind!r}")


def _unknown_preset(name: str) -> ValueError:
    return ValueError(f"unknown continuous preset {name!r}; choose one of: {', '.join(CONTINUOUS)}")


def _base_draw(name: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """n samples of a one-mode preset at shift 0, scale 1: NumPy's samplers, drawn exactly as
    scipy.stats' ``rvs(size=n, random_state=rng)`` draws them (same numbers), without loading
    scipy.stats (about 20 MB and half a second per kernel)."""
    if name == "gaussian":
        return rng.standard_normal(n)
    if name == "laplace":
        return rng.laplace(0.0, 1.0, size=n)
    if name == "student_t":  # 3 degrees of freedom
        return rng.standard_t(3.0, size=n)
    if name == "uniform":  # on [-1.5, 1.5]
        return rng.uniform(0.0, 1.0, n) * 3.0 - 1.5
    raise _unknown_preset(name)


def _base_cdf(name: str, x: float) -> float:
    """The CDF of a one-mode preset at shift 0, scale 1, from scipy.special."""
    if name == "gaussian":
        return float(special.ndtr(x))
    if name == "laplace":
        return float(1.0 - 0.5 * math.exp(-x) if x > 0 else 0.5 * math.exp(x))
    if name == "student_t":
        return float(special.stdtr(3.0, x))
    if name == "uniform":
        return min(max((x + 1.5) / 3.0, 0.0), 1.0)
    raise _unknown_preset(name)


def log_density(name: str, x: np.ndarray, shift: float = 0.0, scale: float = 1.0) -> np.ndarray:
    """log density of preset ``name`` moved to ``shift`` and stretched by ``scale`` (-inf off support)."""
    z = (np.asarray(x, dtype=np.float64) - shift) / scale
    if name == "two_modes":
        parts = np.stack([_log_normal((z + 2.0) / 0.5), _log_normal((z - 2.0) / 0.5)])
        base = special.logsumexp(parts, axis=0, b=0.5) - math.log(0.5)
    elif name == "gaussian":
        base = _log_normal(z)
    elif name == "laplace":  # written out: scipy's logpdf underflows to -inf beyond |z| ~ 745
        base = -np.abs(z) - math.log(2.0)
    elif name == "student_t":  # 3 degrees of freedom
        base = (special.gammaln(2.0) - special.gammaln(1.5) - 0.5 * math.log(3.0 * math.pi)
                - 2.0 * np.log1p(z * z / 3.0))
    elif name == "uniform":
        base = np.where(np.abs(z) <= 1.5, -math.log(3.0), -np.inf)
    else:
        raise _unknown_preset(name)
    return base - math.log(scale)


def _log_normal(z: np.ndarray) -> np.ndarray:
    return -0.5 * z * z - 0.5 * math.log(2.0 * math.pi)


def draw(name: str, n: int, rng: np.random.Generator, shift: float = 0.0, scale: float = 1.0):
    """n samples of preset ``name`` moved and stretched like :func:`log_density`."""
    if name == "two_modes":
        centres = rng.choice([-2.0, 2.0], size=n)
        z = centres + 0.5 * rng.standard_normal(n)
    else:
        z = _base_draw(name, n, rng)
    return shift + scale * z


def _log_power_integral(a: float, mean_p, sd_p, mean_q, sd_q) -> float:
    """log ∫ N(mean_p, sd_p²)^a N(mean_q, sd_q²)^(1-a) dx, +inf where it diverges.

    With v = a sd_q² + (1 - a) sd_p² (finite iff v > 0),
    log I = (1-a) log sd_p + a log sd_q - ½ log v - a(1-a)(mean_p - mean_q)² / (2v).
    Written so that every term is O(a) near a = 0 and O(1 - a) near a = 1 (log1p, no
    cancellation), which keeps the alpha family exact next to its KL limits."""
    delta2 = (mean_p - mean_q) ** 2
    v = a * sd_q**2 + (1 - a) * sd_p**2
    if v <= 1e-12 * (abs(a) * sd_q**2 + abs(1 - a) * sd_p**2):
        return math.inf  # on the boundary too: the quadratic terms cancel, a linear or
        # constant one is left in the exponent, and the integral diverges
    if a < 0.5:
        log_v_ratio = math.log1p(a * (sd_q**2 / sd_p**2 - 1.0))  # log(v / sd_p²)
        return a * math.log(sd_q / sd_p) - 0.5 * log_v_ratio - a * (1 - a) * delta2 / (2 * v)
    log_v_ratio = math.log1p((1 - a) * (sd_p**2 / sd_q**2 - 1.0))  # log(v / sd_q²)
    return (1 - a) * math.log(sd_p / sd_q) - 0.5 * log_v_ratio - a * (1 - a) * delta2 / (2 * v)


def _gaussian_kl(m1, s1, m2, s2) -> float:
    """KL(N(m1, s1²) || N(m2, s2²)), the textbook formula."""
    return math.log(s2 / s1) + (s1**2 + (m1 - m2) ** 2) / (2 * s2**2) - 0.5


def _gaussian_alpha(a: float, mean_p, sd_p, mean_q, sd_q) -> float:
    """Amari's D_a(p||q) = (∫ p^a q^(1-a) - 1) / (a (a - 1)) (its KL limits at a = 0 and 1)."""
    if a == 1.0:
        return _gaussian_kl(mean_p, sd_p, mean_q, sd_q)
    if a == 0.0:
        return _gaussian_kl(mean_q, sd_q, mean_p, sd_p)
    log_integral = _log_power_integral(a, mean_p, sd_p, mean_q, sd_q)
    if math.isinf(log_integral):
        return math.inf
    return math.expm1(log_integral) / (a * (a - 1.0))


def _gaussian_tv(mean_p, sd_p, mean_q, sd_q) -> float:
    """½ ∫ |p - q| between two Gaussians: the densities cross where their log densities are
    equal (one point for equal stds, two otherwise), and between crossings the integral of
    p - q is a difference of normal CDFs."""
    if sd_p == sd_q:
        if mean_p == mean_q:
            return 0.0
        return float(2.0 * special.ndtr(abs(mean_p - mean_q) / (2.0 * sd_p)) - 1.0)
    # log p = log q  <=>  A x² + B x + C = 0
    a2 = 0.5 / sd_q**2 - 0.5 / sd_p**2
    b1 = mean_p / sd_p**2 - mean_q / sd_q**2
    c0 = (0.5 * mean_q**2 / sd_q**2 - 0.5 * mean_p**2 / sd_p**2 + math.log(sd_q / sd_p))
    roots = np.sort(np.roots([a2, b1, c0]).real)
    edges = [-math.inf, *roots.tolist(), math.inf]
    total = 0.0
    for low, high in zip(edges[:-1], edges[1:], strict=True):
        difference = ((special.ndtr((high - mean_p) / sd_p) - special.ndtr((low - mean_p) / sd_p))
                      - (special.ndtr((high - mean_q) / sd_q) - special.ndtr((low - mean_q) / sd_q)))
        total += abs(difference)
    return 0.5 * total


def gaussian_closed_form(name: str, mean_p, sd_p, mean_q, sd_q, alpha: float = 0.5):
    """D_name(N(mean_p, sd_p^2) || N(mean_q, sd_q^2)) in closed form, where one is known.

    The KLs and Jeffreys (their sum): the textbook formula. The power family through
    ∫ p^a q^(1-a) (``_log_power_integral``): alpha at its a, Pearson = 2 D_2 (finite iff
    2 sd_q² > sd_p²), Neyman = 2 D_(-1) (finite iff 2 sd_p² > sd_q²), squared Hellinger =
    D_(1/2) / 2 = 2 (1 - Bhattacharyya coefficient). Total variation from the crossing points.
    Jensen-Shannon has none (None)."""
    if name == "forward_kl":
        return _gaussian_kl(mean_p, sd_p, mean_q, sd_q)
    if name == "reverse_kl":
        return _gaussian_kl(mean_q, sd_q, mean_p, sd_p)
    if name == "jeffreys":
        return _gaussian_kl(mean_p, sd_p, mean_q, sd_q) + _gaussian_kl(mean_q, sd_q, mean_p, sd_p)
    if name == "hellinger":
        return 0.5 * _gaussian_alpha(0.5, mean_p, sd_p, mean_q, sd_q)
    if name == "pearson":
        return 2.0 * _gaussian_alpha(2.0, mean_p, sd_p, mean_q, sd_q)
    if name == "neyman":
        return 2.0 * _gaussian_alpha(-1.0, mean_p, sd_p, mean_q, sd_q)
    if name == "alpha":
        return _gaussian_alpha(float(alpha), mean_p, sd_p, mean_q, sd_q)
    if name == "tv":
        return _gaussian_tv(mean_p, sd_p, mean_q, sd_q)
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


@dataclass(kw_only=True)
class CalculatorResult:
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
    #: p's mass where q is zero: the bias of k3 (``p_mass_outside_q``)
    p_outside_q: float = 0.0

    @property
    def expected(self) -> dict[str, float]:
        """What each estimator's mean converges to: k1 -> KL(q||p) always (unbiased); k3 ->
        KL(q||p) - p(q = 0), since E_q[r - 1] = ∫_(q>0) p - 1 (unbiased only when q covers p's
        support); k2 -> E_q[(log r)²]/2, another quantity (biased), not computed here."""
        return {"k1": self.reverse_kl, "k3": self.reverse_kl - self.p_outside_q}


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
) -> CalculatorResult:
    """Every registered divergence D(p||q) for the pair, and Monte-Carlo estimates of KL(q||p).

    Continuous pairs: the closed form for two Gaussians, else a whole-line quadrature with
    exact tail tests (``_continuous_values``); discrete pairs: exact sums."""
    ensure_threads()
    if kind == "continuous":
        rows = _continuous_values(p_name, q_name, q_shift, q_scale, alpha)
        p = np.exp(log_density(p_name, GRID))
        q = np.exp(log_density(q_name, GRID, q_shift, q_scale))
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
            (bool(np.any((p == 0) & (q > 0))), bool(np.any((q == 0) & (p > 0)))),
        )
        rng = np.random.default_rng(seed)
        tokens = rng.choice(TOKENS, size=samples, p=q)
        log_p_s, log_q_s = log_p[tokens], log_q[tokens]
        support = np.arange(TOKENS)
    estimates = {k: divergences.kl_estimate(log_p_s, log_q_s, k) for k in divergences.KL_ESTIMATORS}
    reverse = next(r.value for r in rows if r.name == "reverse_kl")
    return CalculatorResult(
        kind=kind, support=support, p=p, q=q, rows=rows, chosen=divergence, alpha=alpha,
        estimates=estimates, reverse_kl=reverse, samples=samples,
        p_outside_q=p_mass_outside_q(kind, p_name, q_name, q_shift, q_scale),
    )


def _discrete(name: str) -> np.ndarray:
    if name not in DISCRETE:
        raise ValueError(f"unknown discrete preset {name!r}; choose one of: {', '.join(DISCRETE)}")
    return DISCRETE[name]


def _rows(log_p, log_q, alpha, evaluate, support) -> list[Row]:
    """One row per registered divergence. ``evaluate(member)`` gives (value, reason for an
    infinite value beyond support, or None); ``support`` = (q_outside, p_missed)."""
    q_outside, p_missed = support
    rows = []
    for name in divergences.names():
        a = alpha if name == "alpha" else None
        member = divergences.get(name, a)
        value, tail_reason = evaluate(member)
        reason = divergences.support_reason(member, q_outside=q_outside, p_missed=p_missed)
        if tail_reason is not None:
            value, reason = math.inf, reason or tail_reason
        if math.isnan(value):
            value, reason = math.inf, reason or "the integrand overflows float64"
        rows.append(
            Row(name, member.label, value, member.behaviour, reason if math.isinf(value) else None)
        )
    return rows


# ---------------------------------------------------------------------------------------------
# Continuous pairs: the whole line, exactly where possible
# ---------------------------------------------------------------------------------------------


def _tail(name: str, shift: float, scale: float, sign: float) -> tuple[float, float, float] | None:
    """(A, B, C) with log density = -A y² + B y - C log y + O(1) as y = sign x -> +inf, or
    None for bounded support. Read off each preset's formula."""
    if name == "gaussian":
        return 0.5 / scale**2, sign * shift / scale**2, 0.0
    if name == "two_modes":  # the outer component rules each tail
        outer, sd = shift + sign * 2.0 * scale, 0.5 * scale
        return 0.5 / sd**2, sign * outer / sd**2, 0.0
    if name == "laplace":
        return 0.0, -1.0 / scale, 0.0
    if name == "student_t":  # 3 degrees of freedom: (1 + z²/3)^-2
        return 0.0, 0.0, 4.0
    return None


def tail_reason(member, p_name: str, q_name: str, q_shift: float, q_scale: float) -> str | None:
    """Why ∫ p^a q^(1-a) diverges in a tail (the power family with a > 1 or a < 0: Pearson,
    Neyman, alpha), decided exactly from the tail forms (``_tail``): the exponent
    -(a A_p + (1-a) A_q) y² + (a B_p + (1-a) B_q) y - (a C_p + (1-a) C_q) log y must go to -inf
    faster than -log y. Coefficients that vanish to rounding count as zero (the boundary)."""
    a = {"pearson": 2.0, "neyman": -1.0}.get(member.name, member.alpha)
    if a is None or 0.0 <= a <= 1.0:
        return None
    for sign in (1.0, -1.0):
        p_tail, q_tail = _tail(p_name, 0.0, 1.0, sign), _tail(q_name, q_shift, q_scale, sign)
        if p_tail is None or q_tail is None:
            continue  # bounded support on this side: nothing to integrate far out
        exponent = []
        for p_part, q_part in zip(p_tail, q_tail, strict=True):
            value = a * p_part + (1 - a) * q_part
            scale = abs(a * p_part) + abs((1 - a) * q_part)
            exponent.append(0.0 if abs(value) <= 1e-12 * scale else value)
        quadratic, linear, logarithmic = exponent
        if quadratic > 0 or (quadratic == 0 and linear < 0) or (
                quadratic == 0 and linear == 0 and logarithmic > 1):
            continue
        if a > 1:
            return ("q's tails are too light for p's: ∫ p^a q^(1−a) diverges "
                    f"(a = {a:g}), so this divergence is infinite")
        return (f"q's tails are too heavy for p's: ∫ p^a q^(1−a) diverges (a = {a:g}), so this "
                "divergence is infinite")
    return None


def _breakpoints(name: str, shift: float, scale: float) -> list[float]:
    """Where a preset's density has a peak, an edge or a kink: segments end there."""
    if name == "two_modes":
        return [shift - 2.0 * scale, shift + 2.0 * scale]
    if name == "uniform":
        return [shift - 1.5 * scale, shift + 1.5 * scale]
    return [shift]


#: Double-exponential quadrature: step h in t and its range (Takahasi & Mori 1974).
_DE_STEP, _DE_FINITE, _DE_TAIL = 1.0 / 48.0, 3.3, (-4.2, 3.6)


def whole_line_nodes(breaks: list[float], width: float) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and log weights that integrate a function over the real line, piecewise smooth
    between ``breaks``: tanh-sinh on each finite segment, exp-sinh on the two tails (scaled by
    ``width``). Double-exponential rules converge exponentially for integrands analytic inside
    each segment, whatever happens at its ends (Takahasi & Mori 1974; Mori 2005)."""
    edges = sorted(set(breaks))
    xs, log_ws = [], []
    t = np.arange(-_DE_FINITE, _DE_FINITE + _DE_STEP / 2, _DE_STEP)
    inner = 0.5 * np.pi * np.sinh(t)
    for low, high in zip(edges[:-1], edges[1:], strict=True):
        half, middle = 0.5 * (high - low), 0.5 * (high + low)
        xs.append(middle + half * np.tanh(inner))
        log_ws.append(math.log(half * _DE_STEP * 0.5 * np.pi) + np.log(np.cosh(t))
                      - 2.0 * np.logaddexp(inner, -inner) + 2.0 * math.log(2.0))
    t = np.arange(_DE_TAIL[0], _DE_TAIL[1] + _DE_STEP / 2, _DE_STEP)
    inner = 0.5 * np.pi * np.sinh(t)
    for sign, edge in ((-1.0, edges[0]), (1.0, edges[-1])):
        xs.append(edge + sign * width * np.exp(inner))
        log_ws.append(math.log(width * _DE_STEP * 0.5 * np.pi) + np.log(np.cosh(t)) + inner)
    return np.concatenate(xs), np.concatenate(log_ws)


def _continuous_values(p_name, q_name, q_shift, q_scale, alpha):
    """Every divergence of a continuous pair: the closed form for two Gaussians, otherwise the
    whole-line quadrature (``whole_line_nodes``) with exact tail tests (``tail_reason``)."""
    gaussians = p_name == "gaussian" and q_name == "gaussian"
    breaks = _breakpoints(p_name, 0.0, 1.0) + _breakpoints(q_name, q_shift, q_scale)
    x, log_w = whole_line_nodes(breaks, min(1.0, q_scale))
    log_p = torch.as_tensor(log_density(p_name, x) + log_w)
    log_q = torch.as_tensor(log_density(q_name, x, q_shift, q_scale) + log_w)
    kinked = None  # total variation's |p - q| has kinks where p and q cross: segments end there

    def masses(member):
        nonlocal kinked
        if member.name != "tv":
            return log_p, log_q
        if kinked is None:
            crossings = _crossings(p_name, q_name, q_shift, q_scale, x)
            xk, log_wk = whole_line_nodes(breaks + crossings, min(1.0, q_scale))
            kinked = (torch.as_tensor(log_density(p_name, xk) + log_wk),
                      torch.as_tensor(log_density(q_name, xk, q_shift, q_scale) + log_wk))
        return kinked

    def evaluate(member):
        reason = tail_reason(member, p_name, q_name, q_shift, q_scale)
        exact = (gaussian_closed_form(member.name, 0.0, 1.0, q_shift, q_scale, member.alpha)
                 if gaussians else None)
        if exact is not None:
            return exact, reason if math.isinf(exact) else None
        if reason is not None:
            return math.inf, reason
        with torch.no_grad():
            return float(member.terms(*masses(member)).sum()), None

    support = (bool(torch.any(torch.isneginf(log_p) & torch.isfinite(log_q))),
               bool(torch.any(torch.isneginf(log_q) & torch.isfinite(log_p))))
    rows = _rows(log_p, log_q, alpha, evaluate, support)
    if gaussians:
        for row in rows:  # the value shown is the closed form: say so in its own column too
            row.exact = row.value if row.name != "js" else None
    return rows


def _crossings(p_name, q_name, q_shift, q_scale, x: np.ndarray) -> list[float]:
    """The points where p = q (both positive), bracketed by sign changes of log p - log q on
    the sorted nodes ``x`` and refined by Brent's method."""
    x = np.unique(x)
    with np.errstate(invalid="ignore"):
        gap = log_density(p_name, x) - log_density(q_name, x, q_shift, q_scale)
    ok = np.isfinite(gap)
    found = []
    for i in np.flatnonzero(ok[:-1] & ok[1:] & (np.sign(gap[:-1]) * np.sign(gap[1:]) < 0)):
        found.append(optimize.brentq(
            lambda t: float(log_density(p_name, np.array([t]))[0]
                            - log_density(q_name, np.array([t]), q_shift, q_scale)[0]),
            x[i], x[i + 1], xtol=1e-14, rtol=1e-15))
    return found


def p_mass_outside_q(kind, p_name, q_name, q_shift=0.0, q_scale=1.0) -> float:
    """The mass of p where q is zero: E_q[p/q] = 1 - this, so it is the bias of k3."""
    if kind == "discrete":
        return float(np.sum(_discrete(p_name)[_discrete(q_name) == 0]))
    if q_name != "uniform":
        return 0.0
    low, high = q_shift - 1.5 * q_scale, q_shift + 1.5 * q_scale
    if p_name == "two_modes":
        inside = 0.5 * sum(special.ndtr((high - c) / 0.5) - special.ndtr((low - c) / 0.5)
                           for c in (-2.0, 2.0))
    else:
        inside = _base_cdf(p_name, high) - _base_cdf(p_name, low)
    return float(1.0 - inside)
