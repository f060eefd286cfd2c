"""kl_frontier's binned Taylor transform (from ``exact._BINNED_FROM`` responses on) against the
direct float64 sums over every response and, on a small case, against mpmath at 40 digits."""

import mpmath
import numpy as np
import pytest

from explorer.frontier import exact, kl_frontier
from explorer.frontier.compute import _extra_rewards
from explorer.frontier.scenario import make_scenario


def _binned_calls(monkeypatch) -> list[int]:
    """Record how many betas each call of the binned transform takes."""
    calls = []
    binned = exact._binned_moments
    monkeypatch.setattr(exact, "_binned_moments", lambda p, s, inv, w: calls.append(inv.size) or binned(p, s, inv, w))
    return calls


def _problem(kind: str, size: int):
    """(pi_ref, reward, extra rewards): the app's scenarios, and rewards with heavier tails and ties."""
    rng = np.random.default_rng(size)
    if kind in ("gaussian", "heavy_tailed"):
        s = make_scenario(size, reward=kind, n_hackable=size // 100, seed=1)
        return s.pi_ref, s.proxy, _extra_rewards(s)
    p = rng.dirichlet(np.full(size, 0.3))
    r = rng.standard_t(1.5, size) if kind == "student_t_1.5" else np.round(rng.standard_normal(size), 1)
    return p, r, [rng.standard_normal(size), np.log(p)]


@pytest.mark.parametrize("size", [exact._BINNED_FROM, 10_000])  # where the app takes the binned path
@pytest.mark.parametrize("kind", ["gaussian", "heavy_tailed", "student_t_1.5", "ties"])
def test_binned_transform_equals_the_direct_sums(kind, size, monkeypatch):
    p, r, extra = _problem(kind, size)
    spread = float(np.ptp(r))
    betas = spread * np.geomspace(1e-5, 1e4, 46)  # from a near-greedy policy to nearly pi_ref
    calls = _binned_calls(monkeypatch)
    kls, rewards, means = kl_frontier(p, r, betas, extra=extra)
    assert calls and calls[0] >= 20  # most betas took the binned path (the rest: near the top)
    monkeypatch.setattr(exact, "_BINNED_FROM", 10**9)
    direct_kls, direct_rewards, direct_means = kl_frontier(p, r, betas, extra=extra)
    assert len(calls) == 1
    # KL to 1e-12 relative; where it is below 1e-3 both paths carry the same ~1e-16 absolute
    # rounding of log Z (see the mpmath test below), hence the absolute floor
    np.testing.assert_allclose(kls, direct_kls, rtol=1e-12, atol=2e-15)
    np.testing.assert_allclose(rewards, direct_rewards, rtol=1e-12, atol=1e-14 * np.abs(r).max())
    for i, g in enumerate(extra):
        np.testing.assert_allclose(means[:, i], direct_means[:, i], rtol=1e-12, atol=1e-14 * np.abs(g).max())


def _mp_frontier(p, r, beta):
    """KL(pi_beta || p) and E_beta[r] at 40 digits."""
    with mpmath.workdps(40):
        r = [mpmath.mpf(float(x)) for x in r]
        beta = mpmath.mpf(float(beta))
        top = max(r)
        w = [mpmath.mpf(float(q)) * mpmath.exp((x - top) / beta) for q, x in zip(p, r, strict=True)]
        z = mpmath.fsum(w)
        pi = [x / z for x in w]
        kl = mpmath.fsum(a * mpmath.log(a / mpmath.mpf(float(q))) for a, q in zip(pi, p, strict=True) if a > 0)
        return float(kl), float(mpmath.fsum(a * x for a, x in zip(pi, r, strict=True)))


@pytest.mark.parametrize("heavy", [False, True])
def test_binned_transform_matches_mpmath(heavy, monkeypatch):
    rng = np.random.default_rng(5)
    size = 300
    p = rng.dirichlet(np.ones(size))
    r = rng.standard_t(1.5, size) if heavy else rng.standard_normal(size)
    betas = np.ptp(r) * np.geomspace(1e-4, 1e3, 15)
    monkeypatch.setattr(exact, "_BINNED_FROM", 0)
    calls = _binned_calls(monkeypatch)
    kls, rewards = kl_frontier(p, r, betas)
    assert calls
    reference = np.array([_mp_frontier(p, r, b) for b in betas])
    big = reference[:, 0] > 1e-3
    np.testing.assert_allclose(kls[big], reference[big, 0], rtol=1e-12)
    np.testing.assert_allclose(kls[~big], reference[~big, 0], rtol=0, atol=1e-15)
    np.testing.assert_allclose(rewards, reference[:, 1], rtol=1e-13, atol=1e-14 * np.abs(r).max())


def test_the_binned_path_starts_at_its_threshold(monkeypatch):
    calls = _binned_calls(monkeypatch)
    for size in (exact._BINNED_FROM - 1, exact._BINNED_FROM):
        p, r, _ = _problem("gaussian", size)
        kl_frontier(p, r, np.geomspace(0.01, 30.0, 60))
    assert len(calls) == 1  # only the second size
