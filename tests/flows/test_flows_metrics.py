"""W2 against brute force and closed forms; crossings, path energy, coverage, couplings."""

import itertools

import numpy as np
import ot
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.optimize import linear_sum_assignment

from explorer.flows import target, w2
from explorer.flows.couplings import ot_permutation, sinkhorn_partners, squared_distances
from explorer.flows.metrics import (
    coverage,
    crossing_fraction,
    make_reference,
    mode_masses,
    nearest_distances,
    normalised_w2,
    path_energy,
    straightness,
)

points = arrays(
    np.float64,
    st.tuples(st.integers(2, 6), st.just(2)),
    elements=st.floats(-5, 5, allow_nan=False, width=32),
)


@settings(max_examples=40, deadline=None)
@given(x=points, data=st.data())
def test_w2_and_pot_match_brute_force_over_all_matchings(x, data):
    y = data.draw(arrays(np.float64, x.shape, elements=st.floats(-5, 5, width=32)))
    best = min(((x - y[list(p)]) ** 2).sum(1).mean() for p in itertools.permutations(range(len(x))))
    assert w2(x, y) == pytest.approx(np.sqrt(best), rel=1e-6, abs=1e-6)
    uniform = np.full(len(x), 1 / len(x))
    pot = ot.emd2(uniform, uniform, ((x[:, None] - y[None]) ** 2).sum(-1))
    assert np.sqrt(max(pot, 0.0)) == pytest.approx(np.sqrt(best), rel=1e-6, abs=1e-6)


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 120), st.integers(1, 120), st.sampled_from([1, 2, 3]),
       st.integers(0, 2**32 - 1))
def test_w2_equals_pot_network_simplex(n, m, d, seed):
    """Sizes of which one divides the other go through the assignment solver, the others
    through POT: both must give POT's exact optimum."""
    rng = np.random.default_rng(seed)
    x, y = rng.normal(size=(n, d)), rng.normal(size=(m, d)) * 2 + 1
    for b in (y, x[rng.permutation(n)] + rng.normal(size=(n, d)) * 0.3):
        cost = ((x[:, None] - b[None]) ** 2).sum(-1)
        pot = ot.emd2(np.full(n, 1 / n), np.full(len(b), 1 / len(b)), cost, numItermax=10**6)
        assert w2(x, b) == pytest.approx(np.sqrt(max(pot, 0.0)), rel=1e-9, abs=1e-9)


@pytest.mark.parametrize(("n", "m", "d"), [(256, 512, 2), (512, 256, 2), (40, 120, 5), (1, 9, 2)])
def test_w2_when_one_size_divides_the_other_equals_pot(n, m, d):
    """The W2 curves compare n = 256 samples with the 512-point evaluation set: the measure of
    x repeated m / n times is the same measure, so the assignment solver must give POT's LP
    optimum to rounding."""
    rng = np.random.default_rng(n + m + d)
    x, y = rng.normal(size=(n, d)), rng.normal(size=(m, d)) * 1.5 + 0.5
    cost = ((x[:, None] - y[None]) ** 2).sum(-1)
    pot = ot.emd2(np.full(n, 1 / n), np.full(m, 1 / m), cost, numItermax=10**7)
    assert w2(x, y) == pytest.approx(np.sqrt(pot), rel=1e-12)


def test_w2_matches_the_assignment_solver_on_a_larger_set():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(60, 2)), rng.normal(size=(60, 2)) + 1
    cost = ((x[:, None] - y[None]) ** 2).sum(-1)
    rows, cols = linear_sum_assignment(cost)
    assert w2(x, y) == pytest.approx(np.sqrt(cost[rows, cols].mean()), rel=1e-9)


def test_w2_of_a_translate_is_the_shift_and_unequal_sizes_work():
    x = np.random.default_rng(1).normal(size=(50, 2))
    assert w2(x, x + [3.0, 4.0]) == pytest.approx(5.0, rel=1e-9)
    assert w2(x, x) == pytest.approx(0.0, abs=1e-9)
    assert w2(x[:1], x[:1] + [0, 2]) == pytest.approx(2.0)
    assert w2(np.zeros((3, 2)), np.ones((7, 2))) == pytest.approx(np.sqrt(2))
    assert w2(np.array([[np.nan, 0.0]]), x) == float("inf")


def test_exact_couplings_agree_and_beat_random_pairings():
    g = torch.Generator().manual_seed(0)
    x0, x1 = torch.randn(128, 2, generator=g), target("moons", 128, 1)
    cost = lambda p: ((x0 - x1[torch.as_tensor(p)]) ** 2).sum(1).mean().item()  # noqa: E731
    ours, emd = ot_permutation(x0, x1), ot_permutation(x0, x1, "emd")
    lsa = ot_permutation(x0, x1, "assignment")
    assert sorted(ours) == sorted(emd) == list(range(128))
    assert cost(ours) == pytest.approx(cost(lsa), rel=1e-6)
    assert cost(emd) == pytest.approx(cost(lsa), rel=1e-6)
    assert cost(ours) < cost(np.arange(128))


def test_sinkhorn_pairs_approach_the_exact_plan_as_the_blur_shrinks():
    g = torch.Generator().manual_seed(0)
    x0, x1 = torch.randn(64, 2, generator=g), target("moons", 64, 1)
    cost = lambda p: ((x0 - x1[torch.as_tensor(p)]) ** 2).sum(1).mean().item()  # noqa: E731
    rng = np.random.default_rng(0)
    exact = cost(ot_permutation(x0, x1))
    sharp = np.mean([cost(sinkhorn_partners(x0, x1, 0.03, rng)) for _ in range(5)])
    blurred = np.mean([cost(sinkhorn_partners(x0, x1, 1.0, rng)) for _ in range(5)])
    assert exact <= sharp < blurred


def test_crossing_fraction_on_planted_segments():
    assert crossing_fraction([[0, 0], [0, 1]], [[1, 1], [1, 0]]) == 1.0  # an X
    assert crossing_fraction([[0, 0], [0, 1]], [[1, 0], [1, 1]]) == 0.0  # parallel
    assert crossing_fraction([[0, 0], [0, 1], [5, 5]], [[1, 1], [1, 0], [6, 6]]) == 1 / 3


def _crosses(p1, p2, q1, q2):
    def ccw(a, b, c):
        return (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])

    return ccw(p1, p2, q1) * ccw(p1, p2, q2) < 0 and ccw(q1, q2, p1) * ccw(q1, q2, p2) < 0


def test_crossing_fraction_matches_a_plain_loop():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(30, 2)), rng.normal(size=(30, 2))
    pairs = list(itertools.combinations(range(30), 2))
    loop = np.mean([_crosses(a[i], b[i], a[j], b[j]) for i, j in pairs])
    assert crossing_fraction(a, b) == pytest.approx(loop)


def test_path_energy_is_one_for_straight_paths_and_known_for_a_detour():
    t = torch.linspace(0, 1, 33)[:, None, None]
    straight = t * torch.tensor([[3.0, 4.0]])
    assert path_energy(straight)[0] == pytest.approx(25.0, rel=1e-5)
    assert straightness(straight) == pytest.approx(1.0, rel=1e-5)
    # out along x to (1, 0) then up to (1, 1), equal time: energy 2 * (1/0.5)^2 * 0.5 = 4, |d|^2=2
    half = torch.linspace(0, 1, 17)
    legs = torch.cat(
        [torch.stack([half, 0 * half], 1), torch.stack([1 + 0 * half[1:], half[1:]], 1)]
    )
    assert path_energy(legs[:, None, :])[0] == pytest.approx(4.0, rel=1e-5)
    assert straightness(legs[:, None, :]) == pytest.approx(2.0, rel=1e-5)


def test_straightness_is_a_ratio_of_means_that_tiny_displacements_cannot_inflate():
    """Independent reference: Liu et al.'s straightness S = int E|(x1 - x0) - v|^2 dt by a
    plain loop, and the identity ratio = 1 + S / E|x1 - x0|^2; a nearly closed loop among
    straight paths changes the ratio by its share of energy only."""
    rng = np.random.default_rng(0)
    steps, n = 32, 200
    x = np.cumsum(rng.normal(size=(steps + 1, n, 2)) * 0.1, axis=0)
    displacement = x[-1] - x[0]
    liu = np.mean([[((displacement[i] - (x[k + 1, i] - x[k, i]) * steps) ** 2).sum()
                    for k in range(steps)] for i in range(n)])
    ratio = straightness(torch.tensor(x))
    assert ratio == pytest.approx(1 + liu / (displacement**2).sum(1).mean(), rel=1e-10)
    t = np.linspace(0, 1, steps + 1)[:, None, None]
    straight = t * rng.normal(size=(1, 99, 2))
    loop = 0.1 * np.stack([np.cos(2 * np.pi * t[:, 0, 0]), np.sin(2 * np.pi * t[:, 0, 0])], 1)
    loop = (loop - loop[0] + 1e-6 * t[:, 0])[:, None, :]  # back to (almost) where it began
    both = torch.tensor(np.concatenate([straight, loop], 1))
    energies = path_energy(both)
    expected = energies.sum() / ((both[-1] - both[0]) ** 2).sum().item()
    assert straightness(both) == pytest.approx(expected, rel=1e-10)
    assert straightness(both) < 1.1  # the per-path ratio of the loop alone is about 1e11
    assert straightness(torch.zeros(5, 3, 2)) == 1.0


def test_reference_metrics_on_real_data():
    ref = make_reference("imbalanced")
    fresh = target("imbalanced", 512, 99)
    assert np.allclose(mode_masses(fresh, ref), ref.weights, atol=0.04)
    assert coverage(fresh, ref) > 0.8
    shifted = fresh + torch.tensor([1.5, 0.0])
    assert coverage(shifted, ref) < 0.3
    assert w2(fresh, ref.eval_a) < 2 * ref.noise_floor
    # all mass in the big mode: W2 is large, normalised W2 (reweighted target) is small
    big = target("imbalanced", 4000, 5)
    big = big[big[:, 1] < -1][:512]
    assert normalised_w2(big, ref) < 0.5 * w2(big, ref.eval_a)


def test_squared_distances_match_the_definition():
    g = torch.Generator().manual_seed(3)
    x0, x1 = torch.randn(40, 2, generator=g), torch.randn(30, 2, generator=g) * 3
    naive = ((x0.double()[:, None] - x1.double()[None]) ** 2).sum(-1).numpy()
    assert np.allclose(squared_distances(x0, x1), naive, rtol=1e-12, atol=1e-12)


@given(st.integers(0, 10_000))
@settings(max_examples=25, deadline=None)
def test_exact_coupling_is_the_brute_force_optimum_of_the_squared_distance(seed):
    # ot_permutation solves the inner-product cost; on every permutation it differs from the
    # squared distance by a constant, so the optimum must be the same: check by enumeration.
    g = torch.Generator().manual_seed(seed)
    x0, x1 = torch.randn(6, 2, generator=g), torch.randn(6, 2, generator=g) + 1
    cost = squared_distances(x0, x1)
    best = min(cost[range(6), list(p)].sum() for p in itertools.permutations(range(6)))
    for solver in ("shortest_path", "emd", "assignment"):
        p = ot_permutation(x0, x1, solver)
        assert sorted(p) == list(range(6))
        assert cost[range(6), p].sum() == pytest.approx(best, rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("solver", ["shortest_path", "emd", "assignment"])
def test_every_exact_coupling_is_optimal_at_a_large_common_offset(solver):
    """Independent reference: scipy's assignment on squared distances from differences."""
    from scipy.optimize import linear_sum_assignment

    rng = np.random.default_rng(11)
    x0, x1 = rng.normal(size=(256, 2)), rng.normal(size=(256, 2)) + 0.5
    cost = ((x0[:, None] - x1[None]) ** 2).sum(-1)
    best = cost[np.arange(256), linear_sum_assignment(cost)[1]].sum()
    offset = 1e6
    p = ot_permutation(torch.tensor(x0 + offset), torch.tensor(x1 + offset), solver)
    assert cost[np.arange(256), p].sum() == pytest.approx(best, rel=1e-9)


def test_distances_are_exact_at_a_large_common_offset():
    rng = np.random.default_rng(12)
    a, b = rng.normal(size=(300, 2)), rng.normal(size=(400, 2))
    exact = np.sqrt(((a[:, None] - b[None]) ** 2).sum(-1))
    assert np.abs(squared_distances(torch.tensor(a + 1e7), torch.tensor(b + 1e7))
                  - exact**2).max() < 1e-6
    assert np.abs(nearest_distances(a + 1e7, b + 1e7) - exact.min(1)).max() < 1e-6
