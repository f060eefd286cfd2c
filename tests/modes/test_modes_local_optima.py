"""Issue 12 (fix the class): every local optimum a fit reports is a local minimum.

Before: Neyman on three modes at separation 4 reported "local optima" at means +-0.084 on the
closed tail boundary (value 0.753), where the whole-line value still falls towards mean 0: the
solver had stopped there, its step pointing out of the box. The reference is independent of the
package: the whole-line value D(p || q) = ∫ q f(p/q) from each f written out here in log space,
by the trapezoid rule on a wide uniform grid (checked to have negligible mass at its ends), and
a dense float64 grid search of it in a neighbourhood of each reported optimum, inside the
closed region where D is finite (sigma^2 <= (1 - a) / (-a) s^2 for a < 0, >= (a - 1) / a s^2 for
a > 1, s the widest std of p: Cichocki & Amari 2010, eq. 3), and over the whole region for the
global optimum."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.special import logsumexp

from explorer import modes

#: Points of the reference trapezoid rule and its reach beyond p's modes, in widest stds.
NODES, REACH = 6001, 30.0


def _log_normal(x, mean, std):
    return -0.5 * ((x - mean) / std) ** 2 - np.log(std) - 0.5 * math.log(2 * math.pi)


def _integrand(name, alpha, lp, lq):
    """q f(p/q) in log space, for f as the registry defines it (divergences.py docstrings)."""
    p, q = np.exp(lp), np.exp(lq)
    if name == "reverse_kl":
        return q * (lq - lp)
    if name == "forward_kl":
        return p * (lp - lq)
    if name == "pearson":
        return np.exp(2 * lp - lq) - 2 * p + q
    if name == "neyman":
        return np.exp(2 * lq - lp) - 2 * q + p
    if name == "hellinger":
        return p + q - 2 * np.exp(0.5 * (lp + lq))
    if name == "jeffreys":
        return (p - q) * (lp - lq)
    if name == "tv":
        return 0.5 * np.abs(p - q)
    if name == "js":
        lm = np.logaddexp(lp, lq) - math.log(2)
        return 0.5 * (p * (lp - lm) + q * (lq - lm))
    a = alpha  # Amari's alpha family: q f(p/q) = [p^a q^(1-a) - q - a (p - q)] / (a (a - 1))
    return (np.exp(a * lp + (1 - a) * lq) - q - a * (p - q)) / (a * (a - 1))


def reference_values(name, alpha, target, thetas, nodes=NODES):
    """The whole-line value at each (mean, log std) row, by the trapezoid rule (numpy): its
    error falls exponentially for the smooth integrands, like h^2 at TV's kinks (where p = q)."""
    spread = max(float(np.max(target.stds)), float(np.max(np.exp(thetas[:, 1]))))
    x = np.linspace(target.means.min() - REACH * spread, target.means.max() + REACH * spread,
                    nodes)
    z = (x[:, None] - target.means) / target.stds
    lp = logsumexp(-0.5 * z * z - np.log(target.stds) - 0.5 * math.log(2 * math.pi)
                   + np.log(target.weights), axis=1)
    values = []
    for chunk in np.array_split(thetas, max(1, len(thetas) * nodes // 1_200_000)):
        lq = _log_normal(x[None, :], chunk[:, :1], np.exp(chunk[:, 1:]))
        with np.errstate(over="ignore", invalid="ignore"):
            terms = _integrand(name, alpha, lp[None, :], lq)
        ends = np.abs(terms[:, [0, -1]]).max(1) * (x[-1] - x[0])
        value = np.trapezoid(terms, x, axis=1)
        values.append(np.where(np.isfinite(value) & (ends < 1e-9), value, np.inf))
    return np.concatenate(values)


def tail_exponent(name, alpha):
    return {"neyman": -1.0, "pearson": 2.0}.get(name, alpha if name == "alpha" else None)


def feasible(name, alpha, target, thetas):
    """Inside the closed region where the Gaussian tails keep D finite (boundary included)."""
    a = tail_exponent(name, alpha)
    ok = np.ones(len(thetas), dtype=bool)
    if a is not None and (a < 0 or a > 1):
        limit = math.log(float(np.max(target.stds))) + 0.5 * math.log(
            (1 - a) / -a if a < 0 else (a - 1) / a)
        ok = thetas[:, 1] <= limit + 1e-12 if a < 0 else thetas[:, 1] >= limit - 1e-12
    return ok


def _neighbourhood(theta, radius=0.05, points=11):
    steps = np.linspace(-radius, radius, points)
    return np.stack(np.meshgrid(theta[0] + steps, theta[1] + steps, indexing="ij"),
                    -1).reshape(-1, 2)


def _snap_to_boundary(name, alpha, target, thetas):
    """Add the boundary line itself to a search (the optimum may lie exactly on it)."""
    a = tail_exponent(name, alpha)
    if a is None or 0 <= a <= 1:
        return thetas
    limit = math.log(float(np.max(target.stds))) + 0.5 * math.log(
        (1 - a) / -a if a < 0 else (a - 1) / a)
    return np.concatenate([thetas, np.column_stack([thetas[:, 0], np.full(len(thetas), limit)])])


def check_fit(name, alpha, target):
    """Each reported optimum: its value is the whole-line value there, and no feasible point
    within 0.05 in (mean, log std) is lower; the global one: no point of a coarse grid over the
    whole feasible region is lower. TV's kinks need ten times the nodes, and a looser global
    check (the coarse grid's values are then off by up to 1e-5)."""
    nodes, tolerance, coarse_tolerance = (
        (10 * NODES, 1e-6, 1e-4) if name == "tv" else (NODES, 1e-7, 1e-7))
    result = modes.fit(target, divergence=name, alpha=alpha)
    reported = [o for o in result.optima if math.isfinite(o.value)]
    assert reported, "a finite optimum exists in every case searched here"
    for optimum in reported:
        theta = np.array([optimum.theta[0], optimum.theta[1]])
        own = reference_values(name, alpha, target, theta[None], nodes)[0]
        assert optimum.value == pytest.approx(own, rel=1e-6, abs=1e-9)
        around = _snap_to_boundary(name, alpha, target, _neighbourhood(theta))
        around = around[feasible(name, alpha, target, around)]
        values = reference_values(name, alpha, target, around, nodes)
        lowest = int(np.argmin(values))
        assert values[lowest] >= own - tolerance * (1 + own), (
            f"reported optimum mean {theta[0]:.4f} std {math.exp(theta[1]):.4f} "
            f"(D = {own:.6f}) is not a local minimum: mean {around[lowest, 0]:.4f} "
            f"std {math.exp(around[lowest, 1]):.4f} nearby has D = {values[lowest]:.6f}")
    # the global optimum: no point of a coarse grid over the whole region is lower
    spread = float(np.max(target.stds))
    means = np.arange(target.means.min() - spread, target.means.max() + spread + 1e-9, 0.1)
    log_stds = np.arange(math.log(0.4 * float(np.min(target.stds))),
                         math.log(2.0 * target.std), 0.1)
    grid = np.stack(np.meshgrid(means, log_stds, indexing="ij"), -1).reshape(-1, 2)
    grid = _snap_to_boundary(name, alpha, target, grid)
    grid = grid[feasible(name, alpha, target, grid)]
    lowest = reference_values(name, alpha, target, grid).min()
    assert result.value <= lowest + coarse_tolerance * (1 + lowest)
    return result


TAIL_CASES = [(name, alpha, preset, separation)
              for name, alpha in (("neyman", None), ("alpha", -0.5), ("alpha", -2.0))
              for preset in modes.PRESETS_1D for separation in (2.0, 4.0, 6.0, 8.0)]
SMOOTH_CASES = [(name, alpha, preset, separation)
                for name, alpha in (("reverse_kl", None), ("forward_kl", None), ("js", None),
                                    ("hellinger", None), ("jeffreys", None), ("pearson", None),
                                    ("alpha", 0.5), ("alpha", 2.0), ("tv", None))
                for preset in modes.PRESETS_1D for separation in (3.0, 6.0)]


def test_neyman_three_modes_reports_no_false_boundary_optima():
    """Before: extra optima at means +-0.084 (D = 0.753) on the tail boundary."""
    result = check_fit("neyman", None, modes.preset_1d("three modes", 4.0))
    assert result.value == pytest.approx(0.734032, abs=5e-7)
    assert result.std == pytest.approx(1 / math.sqrt(2), abs=1e-9)


@pytest.mark.parametrize("name,alpha,preset,separation", TAIL_CASES)
def test_tail_limited_fits_report_true_local_optima(name, alpha, preset, separation):
    check_fit(name, alpha, modes.preset_1d(preset, separation))


@pytest.mark.parametrize("name,alpha,preset,separation", SMOOTH_CASES)
def test_smooth_and_tv_fits_report_true_local_optima(name, alpha, preset, separation):
    check_fit(name, alpha, modes.preset_1d(preset, separation))


def test_certificate_rejects_the_old_false_optima_and_accepts_the_true_ones():
    """``certify``: the stall on the tail boundary (Neyman, three modes, mean -0.084) and the
    saddle on it (two equal modes, mean 0, where the whole-line value falls either way, as the
    reference above shows) fail; the global optima pass."""
    from explorer.modes.fitting import bounds, certify, make_objective

    for preset, bad in (("three modes", -0.08406656), ("two equal modes", 0.0)):
        objective = make_objective(modes.preset_1d(preset, 4.0), divergence="neyman")
        box = np.array(bounds(objective.family, objective.grid, objective.divergence,
                              objective.target))
        on_boundary = np.array([[bad, box[1, 1]]])
        best = modes.fit(objective.target, divergence="neyman").theta
        certified, _ = certify(objective, np.concatenate([on_boundary, best[None]]),
                               box[:, 0], box[:, 1])
        assert certified.tolist() == [False, True]


def _mixture_reference(name, alpha, target, models):
    """Whole-line values for Gaussian-mixture q's (numpy trapezoid, as ``reference_values``)."""
    spread = max(float(np.max(target.stds)), max(float(np.max(m.stds)) for m in models))
    x = np.linspace(target.means.min() - REACH * spread, target.means.max() + REACH * spread,
                    NODES)
    z = (x[:, None] - target.means) / target.stds
    lp = logsumexp(-0.5 * z * z - np.log(target.stds) - 0.5 * math.log(2 * math.pi)
                   + np.log(target.weights), axis=1)
    out = []
    for m in models:
        zq = (x[:, None] - m.means) / m.stds
        lq = logsumexp(-0.5 * zq * zq - np.log(m.stds) - 0.5 * math.log(2 * math.pi)
                       + np.log(m.weights), axis=1)
        with np.errstate(over="ignore", invalid="ignore"):
            terms = _integrand(name, alpha, lp, lq)
        ends = np.abs(terms[[0, -1]]).max() * (x[-1] - x[0])
        value = np.trapezoid(terms, x)
        out.append(value if np.isfinite(value) and ends < 1e-9 else np.inf)
    return np.array(out)


@pytest.mark.parametrize("name,alpha", [("reverse_kl", None), ("js", None), ("pearson", None),
                                        ("hellinger", None), ("alpha", -0.5)])
@pytest.mark.parametrize("separation", [4.0, 8.0])
def test_mixture_fits_report_true_local_optima(name, alpha, separation):
    """K = 2 on three modes: each reported optimum's value is its whole-line value, and it
    beats its neighbourhood. This probe does not catch the shallow saddles main reported (D =
    0.161961 for reverse KL at separation 4, curvature -5e-3 along a mix of all parameters): those
    are caught by ``certify`` (``test_mixture_saddle_is_not_certified``). Each reported optimum must beat every feasible point one or two parameters away
    by +-0.005 to 0.04, and 200 random ones within 0.03, by the independent whole-line values."""
    target = modes.preset_1d("three modes", separation)
    result = modes.fit(target, family="mixture", components=2, divergence=name, alpha=alpha)
    rng = np.random.default_rng(0)
    a = tail_exponent(name, alpha)
    for optimum in result.optima:
        if not math.isfinite(optimum.value):
            continue
        own = _mixture_reference(name, alpha, target, [optimum.model])[0]
        assert optimum.value == pytest.approx(own, rel=1e-6, abs=1e-9)
        size = optimum.theta.size
        pairs = [np.eye(size)[i] * si + np.eye(size)[j] * sj for i in range(size)
                 for j in range(i, size) for si in (-1, 1) for sj in (-1, 1)]
        moves = np.concatenate([np.array(pairs)[None] * np.array([0.005, 0.01, 0.02, 0.04])[
            :, None, None]]).reshape(-1, size)
        thetas = optimum.theta + np.concatenate([moves, rng.uniform(-0.03, 0.03, (200, size))])
        stds = result.family.components
        if a is not None and a < 0:
            limit = math.log(float(np.max(target.stds))) + 0.5 * math.log((1 - a) / -a)
            thetas[:, stds : 2 * stds] = np.minimum(thetas[:, stds : 2 * stds], limit)
        models = [result.family.to_model(t, result.grid.points) for t in thetas]
        assert _mixture_reference(name, alpha, target, models).min() >= own - 1e-7 * (1 + own)


def test_mixture_saddle_is_not_certified():
    """Main reported a third 'local optimum' for K = 2, reverse KL, three modes at separation 4:
    the two components mirrored about 0 (D = 0.161961, theta below). ``certify`` rejects it
    (its autograd Hessian has a negative eigenvalue), and the fit reports the two true optima
    (0.111373) only."""
    from explorer.modes.fitting import bounds, certify, make_objective

    target = modes.preset_1d("three modes", 4.0)
    result = modes.fit(target, family="mixture", components=2, divergence="reverse_kl")
    assert [round(o.value, 6) for o in result.optima] == [0.111373, 0.111373]
    objective = make_objective(target, "mixture", "reverse_kl", None, 2)
    box = np.array(bounds(objective.family, objective.grid, objective.divergence, target))
    main_saddle = np.array([-0.9954799721581328, 0.9954799721581331, 0.019200889324541916,
                            0.019200889324541913, 0.0])
    certified, escape = certify(objective, np.array([main_saddle, result.theta]), box[:, 0],
                                box[:, 1])
    assert certified.tolist() == [False, True]
    assert np.any(escape[0] != 0.0)
