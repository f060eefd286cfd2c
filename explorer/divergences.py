r"""The f-divergence registry: the one place every explorer gets its divergences from.

Convention (stated once, shown in every app)
--------------------------------------------
For a convex f with f(1) = 0,

    D_f(P || Q) = E_Q[ f(P/Q) ] = sum_x q(x) f(p(x) / q(x)),

and "fit q to p" means: minimise D(p || q_theta) for the chosen name. With that convention

* ``forward_kl``  f(t) = t log t   gives KL(p || q): mass-covering,
* ``reverse_kl``  f(t) = -log t    gives KL(q || p): mode-seeking.

Two numbers decide the behaviour of a fit (Minka 2005, "Divergence measures and message passing"):
``f(0)``, the price q pays per unit of mass where p has none, and ``lim f(t)/t``, the price per
unit of p's mass that q misses. Infinite f(0) forbids q to leave p's support (zero-forcing, so it
picks a mode); an infinite slope forbids q to miss any of p (mass-covering).

Numerics
--------
Everything is evaluated from *log* densities. The term q f(p/q) is computed as
``q * f(t)`` when t = p/q <= 1 and, by the identity q f(p/q) = p f~(q/p) with the swapped
generator f~(u) = u f(1/u) (the "dual", which is again a registry member), as ``p * f~(1/t)``
when t > 1. Either way f is only ever evaluated on [0, 1], where nothing overflows. Zeros are
exact: a term with p = 0 is q f(0), one with q = 0 is p lim f(t)/t, and an infinite divergence is
returned as ``inf``, never as a large finite number and never as NaN. There is no epsilon inside
any logarithm.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ._deferred import deferred_import

if TYPE_CHECKING:
    from torch import Tensor

torch = deferred_import("torch", globals())  # imported by the first evaluation, not by the names

#: The convention, in one line, for display in the apps.
CONVENTION = (
    "D_f(P‖Q) = E_Q[f(P/Q)]; fitting q to p minimises D(p‖q). "
    "forward_kl = KL(p‖q) (mass-covering), reverse_kl = KL(q‖p) (mode-seeking)."
)

#: The alpha family accepts any alpha in this closed interval (the limits 0 and 1 included).
ALPHA_RANGE = (-10.0, 10.0)

_INF = math.inf


def _as_float64(x) -> Tensor:
    if isinstance(x, torch.Tensor):
        return x if x.dtype == torch.float64 else x.to(torch.float64)
    return torch.as_tensor(np.asarray(x, dtype=np.float64))


def _expm1_over(x: Tensor, c: float) -> Tensor:
    """expm1(c x) / c, continued by its limit x at c = 0 (exact near the limit, no 0/0)."""
    if c == 0.0:
        return x
    return torch.expm1(c * x) / c


def _log1p_over(u: Tensor, c: float) -> Tensor:
    """log1p(c u) / c, continued by its limit u at c = 0."""
    if c == 0.0:
        return u
    return torch.log1p(c * u) / c


def wright_omega(x) -> Tensor:
    """The Wright omega function: the w with w + log w = x, i.e. w = W(e^x) (Lambert W), as a
    float64 tensor on x's device.

    W(e^x) instead of W(y) keeps huge arguments (y = e^800) representable, which is what
    Jeffreys' (f')^-1 needs. The one implementation is scipy.special.wrightomega (Lawrence,
    Corless & Jeffrey 2012), also used by explorer.frontier; tests/test_divergences.py checks it
    against mpmath from x = -1e300 (where it is an exact 0) to 1.7e308, and at +-inf."""
    from scipy.special import wrightomega  # here: importing the registry stays free of scipy

    x = _as_float64(x)
    return torch.from_numpy(wrightomega(x.detach().cpu().numpy())).to(x.device)


@dataclass(frozen=True)
class Divergence:
    """One member of the registry. Subclasses give f and its derivatives in closed form.

    Attributes
    ----------
    name : registry name, e.g. ``"reverse_kl"``.
    alpha : the parameter of the alpha family (``None`` for the other members).
    """

    name: str = ""
    alpha: float | None = None

    # ----- what each member defines -------------------------------------------------------
    title = ""
    latex = ""
    #: f(0) = lim_{t->0} f(t): the cost, per unit of q, of putting mass where p has none.
    f_at_zero = 0.0
    #: lim_{t->inf} f(t)/t: the cost, per unit of p, of q missing mass where p has some.
    slope_at_infinity = 0.0
    #: f'(1), where p = q: 0 for every member written with f'(1) = 0 (adding c (t - 1) to f
    #: changes no divergence); the two KLs keep their textbook f, t log t and -log t.
    f_prime_at_one = 0.0

    def f_log(self, s: Tensor) -> Tensor:
        """f(e^s), accurate for every s in [-inf, 0] (and finite s > 0)."""
        raise NotImplementedError

    def f_prime(self, t: Tensor) -> Tensor:
        raise NotImplementedError

    def f_second(self, t: Tensor) -> Tensor:
        raise NotImplementedError

    def f_prime_inverse(self, u: Tensor) -> Tensor:
        """The t with f'(t) = u. Below the range of f' (u <= f'(0+)) it returns 0, the maximiser
        of t u - f(t) over t >= 0, which is what regularised optima need (e.g. Pearson's zeros)."""
        raise NotImplementedError

    def dual(self) -> Divergence:
        """The member with generator f~(u) = u f(1/u), so that D_f(P||Q) = D_f~(Q||P)."""
        raise NotImplementedError

    # ----- derived, shared by all members -------------------------------------------------
    def _by_side(self, s: Tensor, low, dual_low) -> Tensor:
        """f(e^s) from a formula ``low`` that is exact for s <= 0 and the dual's ``dual_low``:
        f(t) = t f~(1/t), so for s > 0, f(e^s) = e^s f~(e^-s) with f~ again evaluated at a ratio
        below one. Huge s then overflows to +inf (the true value is beyond float64) instead of
        giving inf - inf = NaN. Each side gets a safe argument, so autograd never sees the other
        side's infinities; s = -inf (t = 0) gives f(0). For members with f >= 0."""
        high, at_zero = s > 0, torch.isneginf(s)
        one = torch.ones_like(s)  # safe stand-ins: f~(e^-1) > 0, so its log has a gradient
        s_low = torch.where(high | at_zero, -one, s)
        s_high = torch.where(high, s, one)
        # f >= 0 here, so e^s f~(e^-s) = exp(s + log f~): finite wherever the product is
        scaled = torch.exp(s_high + torch.log(dual_low(-s_high)))
        value = torch.where(high, scaled, low(s_low))
        return torch.where(at_zero, torch.full_like(s, self.f_at_zero), value)

    def f(self, t) -> Tensor:
        """The generator f(t) for t >= 0 (t = 0 gives f(0), possibly +inf)."""
        t = _as_float64(t)
        with np.errstate(divide="ignore"):
            return self.f_log(torch.log(t))

    def h(self, r) -> Tensor:
        """The f-distill weight h(r) = f''(r) r^2 (Y. Xu, W. Nie, A. Vahdat 2025, "One-step
        Diffusion Models with f-Divergence Distribution Matching"): how strongly the gradient
        of D_f weighs a region where the density ratio is r = p/q."""
        r = _as_float64(r)
        return self.f_second(r) * r * r

    def h_log(self, s) -> Tensor:
        """h(e^s) from the log ratio s, for every finite s (no clamping of s): each member's
        h is a power of r or close to one (r, 1, r/(2(1+r)), sqrt(r)/2, 2r², 2/r, 0, r + 1,
        r^a), written in s. +inf only where the true value is beyond float64."""
        s = _as_float64(s)
        return self._h_of_log(s)

    def _h_of_log(self, s: Tensor) -> Tensor:
        return self.h(torch.exp(s))

    def conjugate(self, u) -> Tensor:
        """The convex conjugate f*(u) = sup_{t >= 0} (t u - f(t)).

        Attained at t = (f')^{-1}(u) inside the range of f'; equal to -f(0) below it and +inf
        above sup f' = lim f(t)/t."""
        u = _as_float64(u)
        t = self.f_prime_inverse(u)
        value = t * u - self.f(t)
        above = u > self.slope_at_infinity
        return torch.where(above, torch.full_like(u, _INF), value)

    @property
    def behaviour(self) -> str:
        """'mode-seeking', 'mass-covering', both (Jeffreys: f(0) = ∞ and an infinite slope, so
        q may neither leave p's support nor miss any of p's mass) or 'depends on separation',
        read off the two limits."""
        zero_forcing = math.isinf(self.f_at_zero)
        covering = math.isinf(self.slope_at_infinity)
        if covering and zero_forcing:
            return "zero-forcing and mass-covering"
        if covering:
            return "mass-covering"
        if zero_forcing:
            return "mode-seeking"
        return "depends on separation"

    @property
    def label(self) -> str:
        """Display name, including alpha for the alpha family."""
        return self.title if self.alpha is None else f"{self.title} (α = {self.alpha:g})"

    def weighted_f(self, log_q: Tensor, s: Tensor) -> Tensor:
        """q f(e^s) for s <= 0 finite. Members whose f blows up at 0 override this to combine
        q and f in log space."""
        return torch.exp(log_q) * self.f_log(s)

    def terms(self, log_p: Tensor, log_q: Tensor) -> Tensor:
        """The pointwise terms q(x) f(p(x)/q(x)), exact at zeros, gradient-safe (no NaN)."""
        p_empty = torch.isneginf(log_p)
        q_empty = torch.isneginf(log_q)
        both = p_empty & q_empty
        only_q = p_empty & ~q_empty  # q puts mass where p has none: q f(0)
        only_p = q_empty & ~p_empty  # p has mass q misses: p lim f(t)/t
        inner = ~(p_empty | q_empty)
        s = torch.where(inner, log_p - log_q, torch.zeros_like(log_p))
        low = inner & (s <= 0)
        high = inner & (s > 0)
        zero = torch.zeros_like(log_p)
        safe_lq = torch.where(low, log_q, zero)
        safe_lp = torch.where(high, log_p, zero)
        low_terms = self.weighted_f(safe_lq, torch.where(low, s, zero))
        high_terms = self.dual().weighted_f(safe_lp, torch.where(high, -s, zero))
        q_mass = torch.exp(torch.where(only_q, log_q, zero))
        p_mass = torch.exp(torch.where(only_p, log_p, zero))
        out = torch.where(low, low_terms, torch.where(high, high_terms, zero))
        out = torch.where(only_q, q_mass * self.f_at_zero, out)
        out = torch.where(only_p, p_mass * self.slope_at_infinity, out)
        return torch.where(both, zero, out)


# --------------------------------------------------------------------------------------------
# The members
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ForwardKL(Divergence):
    """KL(p||q) = sum p log(p/q); f(t) = t log t."""

    title = "forward KL  KL(p‖q)"
    latex = r"f(t) = t\log t"
    f_at_zero = 0.0
    slope_at_infinity = _INF
    f_prime_at_one = 1.0  # log 1 + 1

    def f_log(self, s):
        return torch.where(torch.isneginf(s), torch.zeros_like(s), s * torch.exp(s))

    def f_prime(self, t):
        return torch.log(_as_float64(t)) + 1.0

    def f_second(self, t):
        return 1.0 / _as_float64(t)

    def f_prime_inverse(self, u):
        return torch.exp(_as_float64(u) - 1.0)

    def _h_of_log(self, s):
        return torch.exp(s)

    def dual(self):
        return ReverseKL("reverse_kl")


@dataclass(frozen=True)
class ReverseKL(Divergence):
    """KL(q||p) = sum q log(q/p); f(t) = -log t."""

    title = "reverse KL  KL(q‖p)"
    latex = r"f(t) = -\log t"
    f_at_zero = _INF
    slope_at_infinity = 0.0
    f_prime_at_one = -1.0  # -1/1

    def f_log(self, s):
        return -s

    def f_prime(self, t):
        return -1.0 / _as_float64(t)

    def f_second(self, t):
        return _as_float64(t) ** -2

    def f_prime_inverse(self, u):
        u = _as_float64(u)
        return torch.where(u < 0, -1.0 / torch.where(u < 0, u, -torch.ones_like(u)), _INF)

    def _h_of_log(self, s):
        return torch.ones_like(s)

    def dual(self):
        return ForwardKL("forward_kl")


@dataclass(frozen=True)
class JensenShannon(Divergence):
    """JS = 1/2 KL(p||m) + 1/2 KL(q||m), m = (p+q)/2; at most log 2."""

    title = "Jensen-Shannon"
    latex = r"f(t) = \tfrac12\left[t\log t - (1+t)\log\tfrac{1+t}{2}\right]"
    f_at_zero = 0.5 * math.log(2.0)
    slope_at_infinity = 0.5 * math.log(2.0)

    def f_log(self, s):
        # JS is its own dual: f(t) = t f(1/t) for t > 1 (no inf - inf for huge t)
        return self._by_side(s, self._f_log_low, self._f_log_low)

    @staticmethod
    def _f_log_low(s):
        """f(e^s) for finite s <= 0. With m = (1 + t)/2 and u = (t - 1)/(t + 1) = tanh(s/2),
        f = [t log(t/m) + log(1/m)] / 2 = [(1+u) log(1+u) + (1-u) log(1-u)] / (2 (1 - u)), and
        (1+u) log(1+u) + (1-u) log(1-u) = sum_k u^(2k) / (k (2k - 1)): a series of positive
        terms, used near t = 1 where the direct form cancels to its last digits (and below zero)."""
        t = torch.exp(s)
        log_m = torch.log1p(t) - math.log(2.0)
        direct = 0.5 * (t * (s - log_m) - log_m)
        u = torch.tanh(0.5 * s)
        near = u.abs() < 0.5
        u2 = torch.where(near, u * u, torch.zeros_like(u))
        series = torch.zeros_like(u)
        for k in range(30, 0, -1):  # Horner, |u| < 1/2: 30 terms reach 1e-18 relative
            series = (series + 1.0 / (k * (2 * k - 1))) * u2
        return torch.where(near, series / (2.0 * (1.0 - u)), direct)

    def f_prime(self, t):
        t = _as_float64(t)
        return 0.5 * (math.log(2.0) + torch.log(t) - torch.log1p(t))

    def f_second(self, t):
        t = _as_float64(t)
        return 0.5 / (t * (1.0 + t))

    def f_prime_inverse(self, u):
        u = _as_float64(u)
        e = torch.exp(2.0 * u)
        inside = e < 2.0
        return torch.where(inside, e / torch.where(inside, 2.0 - e, torch.ones_like(e)), _INF)

    def _h_of_log(self, s):
        return 0.5 * torch.sigmoid(s)

    def dual(self):
        return self


@dataclass(frozen=True)
class SquaredHellinger(Divergence):
    """Squared Hellinger sum (sqrt p - sqrt q)^2; f(t) = (sqrt t - 1)^2, at most 2."""

    title = "squared Hellinger"
    latex = r"f(t) = (\sqrt t - 1)^2"
    f_at_zero = 1.0
    slope_at_infinity = 1.0

    def f_log(self, s):
        return torch.expm1(0.5 * s) ** 2

    def f_prime(self, t):
        return 1.0 - torch.rsqrt(_as_float64(t))

    def f_second(self, t):
        return 0.5 * _as_float64(t) ** -1.5

    def f_prime_inverse(self, u):
        u = _as_float64(u)
        inside = u < 1.0
        return torch.where(inside, (1.0 - torch.where(inside, u, torch.zeros_like(u))) ** -2, _INF)

    def _h_of_log(self, s):
        return 0.5 * torch.exp(0.5 * s)

    def dual(self):
        return self


@dataclass(frozen=True)
class Pearson(Divergence):
    """Pearson chi-squared sum (p - q)^2 / q; f(t) = (t - 1)^2."""

    title = "Pearson χ²"
    latex = r"f(t) = (t-1)^2"
    f_at_zero = 1.0
    slope_at_infinity = _INF

    def f_log(self, s):
        return torch.expm1(s) ** 2

    def f_prime(self, t):
        return 2.0 * (_as_float64(t) - 1.0)

    def f_second(self, t):
        return 2.0 * torch.ones_like(_as_float64(t))

    def f_prime_inverse(self, u):
        return (1.0 + 0.5 * _as_float64(u)).clamp(min=0.0)

    def _h_of_log(self, s):
        return 2.0 * torch.exp(2.0 * s)

    def dual(self):
        return Neyman("neyman")


@dataclass(frozen=True)
class Neyman(Divergence):
    """Neyman chi-squared sum (p - q)^2 / p; f(t) = (1 - t)^2 / t."""

    title = "Neyman χ²"
    latex = r"f(t) = \frac{(1-t)^2}{t}"
    f_at_zero = _INF
    slope_at_infinity = 1.0

    def f_log(self, s):
        # (1 - t)^2 / t = (t^(1/2) - t^(-1/2))^2 = 4 sinh(s/2)^2: one formula, exact for every s
        # (the product expm1(s)^2 e^-s is inf x 0 = NaN beyond s = 709)
        return 4.0 * torch.sinh(0.5 * s) ** 2

    def weighted_f(self, log_q, s):
        # q (1-t)^2 / t = exp(log q - s) (1-t)^2: one exponential, no overflow of 1/t alone
        return torch.exp(log_q - s) * torch.expm1(s) ** 2

    def f_prime(self, t):
        return 1.0 - _as_float64(t) ** -2

    def f_second(self, t):
        return 2.0 * _as_float64(t) ** -3

    def f_prime_inverse(self, u):
        u = _as_float64(u)
        inside = u < 1.0
        return torch.where(
            inside, torch.rsqrt(1.0 - torch.where(inside, u, torch.zeros_like(u))), _INF
        )

    def _h_of_log(self, s):
        return 2.0 * torch.exp(-s)

    def dual(self):
        return Pearson("pearson")


@dataclass(frozen=True)
class TotalVariation(Divergence):
    """Total variation 1/2 sum |p - q|; f(t) = |t - 1| / 2, at most 1."""

    title = "total variation"
    latex = r"f(t) = \tfrac12|t-1|"
    f_at_zero = 0.5
    slope_at_infinity = 0.5

    def f_log(self, s):
        return self._by_side(s, self._f_log_low, self._f_log_low)  # its own dual

    @staticmethod
    def _f_log_low(s):
        return 0.5 * torch.abs(torch.expm1(s))

    def f_prime(self, t):
        return 0.5 * torch.sign(_as_float64(t) - 1.0)

    def f_second(self, t):
        # zero away from t = 1, where f has a kink (a point mass of curvature)
        return torch.zeros_like(_as_float64(t))

    def f_prime_inverse(self, u):
        raise ValueError(
            "total variation has no inverse derivative: f'(t) = sign(t - 1)/2 is not invertible"
        )

    def conjugate(self, u):
        u = _as_float64(u)
        inside = torch.where(u < -0.5, torch.full_like(u, -0.5), u)
        return torch.where(u > 0.5, torch.full_like(u, _INF), inside)

    def _h_of_log(self, s):
        return torch.zeros_like(s)

    def dual(self):
        return self


@dataclass(frozen=True)
class Jeffreys(Divergence):
    """Jeffreys KL(p||q) + KL(q||p); f(t) = (t - 1) log t."""

    title = "Jeffreys"
    latex = r"f(t) = (t-1)\log t"
    f_at_zero = _INF
    slope_at_infinity = _INF

    def f_log(self, s):
        return torch.where(torch.isneginf(s), torch.full_like(s, _INF), torch.expm1(s) * s)

    def f_prime(self, t):
        t = _as_float64(t)
        return torch.log(t) + 1.0 - 1.0 / t

    def f_second(self, t):
        t = _as_float64(t)
        return 1.0 / t + t**-2

    def f_prime_inverse(self, u):
        # log t + 1 - 1/t = u  <=>  w e^w = e^(1-u) with w = 1/t
        return 1.0 / wright_omega(1.0 - _as_float64(u))

    def _h_of_log(self, s):
        return torch.exp(s) + 1.0

    def dual(self):
        return self


@dataclass(frozen=True)
class Alpha(Divergence):
    """Amari's alpha family f_a(t) = [t^a - 1 - a (t - 1)] / (a (a - 1)).

    a = 1 is KL(p||q) and a = 0 is KL(q||p) (as limits, evaluated exactly through expm1(c x)/c
    continued at c = 0); a = 1/2 is 2 x squared Hellinger, a = 2 is Pearson / 2, a = -1 is
    Neyman / 2. Cichocki & Amari (2010), "Families of alpha- beta- and gamma-divergences", eq. 3.
    """

    title = "alpha family"
    latex = r"f_\alpha(t) = \frac{t^\alpha - 1 - \alpha(t-1)}{\alpha(\alpha-1)}"

    @property
    def a(self) -> float:
        return float(self.alpha)

    @property
    def f_at_zero(self):  # noqa: D401 - a value, read as an attribute
        return 1.0 / self.a if self.a > 0 else _INF

    @property
    def slope_at_infinity(self):
        return 1.0 / (1.0 - self.a) if self.a < 1 else _INF

    def f_log(self, s):
        # f_a(t) = t f_(1-a)(1/t) for t > 1: both sides evaluated at ratios below one
        return self._by_side(s, self._f_log_low, self.dual()._f_log_low)

    #: Below this |s| the power series is used (it has no cancellation near t = 1).
    _SERIES_BELOW = 0.1

    def _f_log_low(self, s):
        """f_a(e^s) for finite s <= 0: the series near t = 1, else the closed form."""
        near = s.abs() < self._SERIES_BELOW
        zero = torch.zeros_like(s)
        return torch.where(near, self._series(torch.where(near, s, zero)),
                           self._closed(torch.where(near, -torch.ones_like(s), s)))

    def _series(self, s):
        """f_a(e^s) = sum_{n>=2} (1 + a + ... + a^(n-2)) s^n / n!: from
        e^(as) - 1 - a(e^s - 1) = sum_n (a^n - a) s^n / n!, divided by a(a-1) term by term,
        so no 0/0 at a = 0 or 1 and no cancellation near s = 0 (|a s| <= 1 here: 28 terms)."""
        a = self.a
        total, power, coefficient = torch.zeros_like(s), s * s / 2.0, 1.0
        for n in range(2, 30):
            total = total + coefficient * power
            coefficient = coefficient * a + 1.0
            power = power * s / (n + 1)
        return total

    def _closed(self, s):
        a = self.a
        # t^a - 1 - a(t-1) = expm1(a s) - a expm1(s); two exact rearrangements of the division
        # by a(a-1), one continued at a = 0 and one at a = 1.
        if abs(a - 1.0) < 0.5:
            eps = a - 1.0
            # t (t^eps - 1)/eps, as (t^a - t)/eps once t^eps is large (no 0 x inf for t -> 0)
            if eps == 0.0:
                return s * torch.exp(s) - torch.expm1(s)  # a = 1: t log t - (t - 1)
            large = eps * s > 1.0
            moderate = torch.where(large, torch.zeros_like(s), s)
            power = torch.where(large, (torch.exp(a * s) - torch.exp(s)) / eps,
                                torch.exp(s) * _expm1_over(moderate, eps))
            return (power - torch.expm1(s)) / a
        return (_expm1_over(s, a) - torch.expm1(s)) / (a - 1.0)

    def weighted_f(self, log_q, s):
        a = self.a
        if a >= 0:
            return torch.exp(log_q) * self.f_log(s)
        # q (t^a - 1)/a: as q expm1(a s)/a while a s is moderate (exact near a = 0), and as
        # (exp(log q + a s) - q)/a once t^a is huge, where t^a alone could overflow but q t^a not
        q = torch.exp(log_q)
        huge = a * s > 30.0
        moderate_s = torch.where(huge, torch.full_like(s, 30.0 / a), s)
        power_part = torch.where(
            huge,
            (torch.exp(log_q + a * torch.where(huge, s, torch.zeros_like(s))) - q) / a,
            q * _expm1_over(moderate_s, a),
        )
        return (power_part - q * torch.expm1(s)) / (a - 1.0)

    def f_prime(self, t):
        return _expm1_over(torch.log(_as_float64(t)), self.a - 1.0)

    def f_second(self, t):
        return _as_float64(t) ** (self.a - 2.0)

    def f_prime_inverse(self, u):
        u = _as_float64(u)
        c = self.a - 1.0
        inside = 1.0 + c * u > 0 if c != 0.0 else torch.ones_like(u, dtype=torch.bool)
        safe_u = torch.where(inside, u, torch.zeros_like(u))
        t = torch.exp(_log1p_over(safe_u, c))
        # outside the range of f': below it (c > 0) the maximiser is t = 0, above it (c < 0) +inf
        outside = torch.zeros_like(u) if c > 0 else torch.full_like(u, _INF)
        return torch.where(inside, t, outside)

    def _h_of_log(self, s):
        return torch.exp(self.a * s)

    def dual(self):
        return Alpha("alpha", 1.0 - self.a)


# --------------------------------------------------------------------------------------------
# The registry
# --------------------------------------------------------------------------------------------

_MEMBERS: dict[str, type[Divergence]] = {
    "forward_kl": ForwardKL,
    "reverse_kl": ReverseKL,
    "js": JensenShannon,
    "hellinger": SquaredHellinger,
    "pearson": Pearson,
    "neyman": Neyman,
    "tv": TotalVariation,
    "jeffreys": Jeffreys,
    "alpha": Alpha,
}


def names() -> list[str]:
    """The registered divergence names, in display order."""
    return list(_MEMBERS)


def check_alpha(alpha) -> float:
    """Validate an alpha for the alpha family and return it as a float."""
    try:
        value = float(alpha)
    except (TypeError, ValueError):
        raise ValueError(f"alpha must be a number, got {alpha!r}") from None
    low, high = ALPHA_RANGE
    if not (math.isfinite(value) and low <= value <= high):
        raise ValueError(
            f"alpha must be a finite number between {low:g} and {high:g} (the limits 0 and 1 "
            f"are allowed and mean reverse and forward KL); got {alpha!r}"
        )
    return value


def get(name: str, alpha: float | None = None) -> Divergence:
    """The registry member ``name``; ``alpha`` is required by, and only allowed for, ``"alpha"``."""
    if name not in _MEMBERS:
        raise ValueError(f"unknown divergence {name!r}; choose one of: {', '.join(_MEMBERS)}")
    if name == "alpha":
        if alpha is None:
            raise ValueError("the 'alpha' divergence needs a value of alpha (e.g. alpha=0.5)")
        return Alpha(name, check_alpha(alpha))
    if alpha is not None:
        raise ValueError(
            f"alpha is only used by the 'alpha' divergence, not by {name!r}; leave it as None"
        )
    return _MEMBERS[name](name)


# --------------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------------


def _check_distribution(x, argument: str, atol: float = 1e-6) -> Tensor:
    t = _as_float64(x)
    if t.ndim == 0 or t.numel() == 0:
        raise ValueError(f"{argument} must be a non-empty array of probabilities")
    if not bool(torch.all(torch.isfinite(t))):
        raise ValueError(
            f"{argument} contains NaN or infinite entries; probabilities must be finite"
        )
    if bool(torch.any(t < 0)):
        raise ValueError(f"{argument} has negative entries; probabilities must be >= 0")
    total = float(t.detach().sum())
    if abs(total - 1.0) > atol:
        raise ValueError(f"{argument} must sum to 1 (within {atol:g}), but it sums to {total:.6g}")
    return t


def _result(value: Tensor, keep_tensor: bool):
    return value if keep_tensor else float(value.detach())


def between(name: str, p, q, alpha: float | None = None):
    """D_name(p || q) for two discrete distributions (zeros allowed, +inf when infinite).

    Arrays of the same shape that each sum to one. Returns a float, or a differentiable
    0-dim float64 tensor when p or q is a tensor.
    """
    divergence = get(name, alpha)
    keep_tensor = isinstance(p, torch.Tensor) or isinstance(q, torch.Tensor)
    p_t = _check_distribution(p, "p")
    q_t = _check_distribution(q, "q")
    if p_t.shape != q_t.shape:
        raise ValueError(
            f"p and q must have the same shape, got {tuple(p_t.shape)} and {tuple(q_t.shape)}"
        )
    return _result(divergence.terms(torch.log(p_t), torch.log(q_t)).sum(), keep_tensor)


def on_grid(name: str, log_p, log_q, cell: float, alpha: float | None = None):
    """D_name(p || q) for densities given as log-densities on a regular grid (quadrature).

    ``cell`` is the grid spacing (1D) or cell area (2D); -inf marks zero density.
    Returns a float, or a differentiable tensor when log_p or log_q is a tensor.
    """
    divergence = get(name, alpha)
    keep_tensor = isinstance(log_p, torch.Tensor) or isinstance(log_q, torch.Tensor)
    lp, lq = _as_float64(log_p), _as_float64(log_q)
    if lp.shape != lq.shape:
        raise ValueError(
            f"log_p and log_q must have the same shape, got {tuple(lp.shape)} and {tuple(lq.shape)}"
        )
    if bool(torch.any(torch.isnan(lp))) or bool(torch.any(torch.isnan(lq))):
        raise ValueError("log-densities contain NaN; use -inf for zero density")
    if bool(torch.any(lp == _INF)) or bool(torch.any(lq == _INF)):
        raise ValueError("log-densities contain +inf; densities must be finite")
    if not (math.isfinite(cell) and cell > 0):
        raise ValueError(f"cell must be a positive grid spacing or area, got {cell!r}")
    return _result(divergence.terms(lp + math.log(cell), lq + math.log(cell)).sum(), keep_tensor)


def monte_carlo(name: str, log_p_at_samples, log_q_at_samples, alpha: float | None = None):
    """Monte-Carlo estimate of D_name(p || q) = E_q[f(p/q)] from samples x ~ q.

    Returns (estimate, standard error) as floats, never NaN: (inf, inf) when a sample's term
    f(p/q) exceeds float64 (p/q beyond about e^709 for most members), with that reason.
    """
    divergence = get(name, alpha)
    lp, lq = _as_float64(log_p_at_samples), _as_float64(log_q_at_samples)
    if lp.shape != lq.shape or lp.ndim != 1 or lp.numel() < 2:
        raise ValueError("give log p and log q at the same (at least two) samples, as 1D arrays")
    if bool(torch.any(torch.isneginf(lq))) or bool(torch.any(torch.isnan(lq))):
        raise ValueError("log q at samples drawn from q must be finite")
    values = divergence.f_log(lp - lq)
    return _mean_and_error(values)


def _mean_and_error(values: Tensor) -> tuple[float, float]:
    mean = float(values.mean())
    if not math.isfinite(mean):
        return mean, _INF
    return mean, float(values.std(unbiased=True) / math.sqrt(values.numel()))


#: Schulman's three estimators of KL(q||p) from x ~ q, with log r = log p(x) - log q(x).
KL_ESTIMATORS = {
    "k1": "−log r  (unbiased, high variance, can be negative)",
    "k2": "½ (log r)²  (biased, low variance, never negative)",
    "k3": "(r − 1) − log r  (unbiased only if q covers p's support: E_q[r] = 1; low variance, "
          "never negative)",
}


def kl_estimator_values(log_p_at_samples, log_q_at_samples, estimator: str = "k3") -> Tensor:
    """Per-sample values of Schulman's k1, k2 or k3 estimator of KL(q||p), samples x ~ q.

    J. Schulman (2020), "Approximating KL divergence": with log r = log p(x) - log q(x),
    k1 = -log r, k2 = (log r)^2 / 2, k3 = (r - 1) - log r. k1 is unbiased; k3 adds r - 1, whose
    mean E_q[r] - 1 = -p(q = 0) is zero only when q covers p's support, so k3 is unbiased only
    then (its mean is KL(q||p) minus the mass of p that q misses); k2 is biased.
    """
    if estimator not in KL_ESTIMATORS:
        raise ValueError(f"unknown KL estimator {estimator!r}; choose one of: k1, k2, k3")
    log_r = _as_float64(log_p_at_samples) - _as_float64(log_q_at_samples)
    if estimator == "k1":
        return -log_r
    if estimator == "k2":
        return 0.5 * log_r**2
    return torch.expm1(log_r) - log_r


def kl_estimate(log_p_at_samples, log_q_at_samples, estimator: str = "k3") -> tuple[float, float]:
    """(estimate, standard error) of KL(q||p) by Schulman's k1, k2 or k3 from samples x ~ q."""
    return _mean_and_error(kl_estimator_values(log_p_at_samples, log_q_at_samples, estimator))


def infinity_reason(name: str, p, q, alpha: float | None = None) -> str | None:
    """Why D_name(p||q) is infinite for these discrete distributions, or None if it is finite
    because of support alone (overflow aside)."""
    divergence = get(name, alpha)
    p_t, q_t = _as_float64(p), _as_float64(q)
    q_outside = bool(torch.any((p_t == 0) & (q_t > 0)))
    p_missed = bool(torch.any((q_t == 0) & (p_t > 0)))
    return support_reason(divergence, q_outside=q_outside, p_missed=p_missed)


def support_reason(divergence: Divergence, *, q_outside: bool, p_missed: bool) -> str | None:
    """The sentence that explains an infinite divergence from the two support conditions."""
    if q_outside and math.isinf(divergence.f_at_zero):
        return "q puts mass where p has none, and f(0) = ∞ for this divergence"
    if p_missed and math.isinf(divergence.slope_at_infinity):
        return "p has mass where q has none, and f(t)/t → ∞ as t → ∞ for this divergence"
    return None
