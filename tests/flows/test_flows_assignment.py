"""The exact assignment solver against scipy, POT, brute force and LP duality."""

import itertools

import numpy as np
import ot
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import linear_sum_assignment

from explorer.flows import target
from explorer.flows.assignment import (
    HILBERT_BITS,
    _c_transform,
    _hilbert_index,
    _hilbert_order,
    multiscale_potential,
    solve_assignment,
    solve_inner_product_assignment,
)
from explorer.flows.couplings import ot_permutation, squared_distances


def total(cost, permutation):
    return cost[np.arange(len(cost)), permutation].sum()


def assert_optimal_with_certificate(cost, result, tol=1e-9):
    """A permutation, of scipy's optimal cost, with potentials that prove it (LP duality)."""
    n = len(cost)
    assert sorted(result.permutation) == list(range(n))
    best = total(cost, linear_sum_assignment(cost)[1])
    scale = 1.0 + np.abs(cost).max()
    assert total(cost, result.permutation) == pytest.approx(best, abs=tol * scale * n)
    reduced = cost - result.row_potential[:, None] - result.column_potential[None, :]
    assert reduced.min() >= -tol * scale
    assert np.abs(reduced[np.arange(n), result.permutation]).max() <= tol * scale
    dual = result.row_potential.sum() + result.column_potential.sum()
    assert dual == pytest.approx(best, abs=tol * scale * n)


@given(st.integers(1, 40), st.integers(0, 2**31 - 1), st.sampled_from(["real", "ties", "wide"]))
@settings(max_examples=120, deadline=None)
def test_random_matrices_match_scipy_with_a_duality_certificate(n, seed, kind):
    rng = np.random.default_rng(seed)
    if kind == "real":
        cost = rng.normal(size=(n, n))
    elif kind == "ties":  # small integers: many optimal assignments, many tied keys
        cost = rng.integers(0, 3, size=(n, n)).astype(float)
    else:
        cost = rng.normal(size=(n, n)) * 10.0 ** rng.uniform(-3, 6)
    assert_optimal_with_certificate(cost, solve_assignment(cost))


@given(st.integers(1, 30), st.integers(0, 2**31 - 1))
@settings(max_examples=60, deadline=None)
def test_any_warm_start_gives_the_same_optimum(n, seed):
    rng = np.random.default_rng(seed)
    cost = rng.normal(size=(n, n))
    guess = rng.normal(size=n) * rng.choice([0.01, 1.0, 100.0])
    assert_optimal_with_certificate(cost, solve_assignment(cost, guess))


@given(st.integers(0, 10_000))
@settings(max_examples=40, deadline=None)
def test_points_are_the_brute_force_optimum_of_the_squared_distance(seed):
    g = torch.Generator().manual_seed(seed)
    x, y = torch.randn(7, 2, generator=g), torch.randn(7, 2, generator=g) * 2 + 1
    cost = squared_distances(x, y)
    best = min(total(cost, list(p)) for p in itertools.permutations(range(7)))
    p = solve_inner_product_assignment(x.double().numpy(), y.double().numpy()).permutation
    assert total(cost, p) == pytest.approx(best, rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("dim", [1, 2, 3])
def test_inner_product_cost_of_points_matches_scipy(dim):
    rng = np.random.default_rng(dim)
    x, y = rng.normal(size=(200, dim)), rng.normal(size=(200, dim)) * 1.5 + 0.5
    assert_optimal_with_certificate(-(x @ y.T), solve_inner_product_assignment(x, y))


def test_a_minibatch_of_the_flows_matches_pots_network_simplex():
    g = torch.Generator().manual_seed(5)
    x0, x1 = torch.randn(256, 2, generator=g), target("moons", 256, 5)
    cost = squared_distances(x0, x1)
    ours = ot_permutation(x0, x1)
    plan = ot.emd(np.full(256, 1 / 256), np.full(256, 1 / 256), cost)
    assert total(cost, ours) == pytest.approx(256 * (plan * cost).sum(), rel=1e-12)


def test_degenerate_inputs():
    same = np.zeros((5, 2))  # every permutation is optimal
    result = solve_inner_product_assignment(same, same)
    assert sorted(result.permutation) == list(range(5))
    assert solve_assignment([[3.0]]).permutation.tolist() == [0]
    duplicated = np.repeat(np.random.default_rng(0).normal(size=(4, 2)), 3, axis=0)
    assert_optimal_with_certificate(-(duplicated @ duplicated.T),
                                    solve_inner_product_assignment(duplicated, duplicated))


def test_clear_errors():
    with pytest.raises(ValueError, match="square"):
        solve_assignment(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="finite"):
        solve_assignment([[0.0, np.nan], [1.0, 2.0]])
    with pytest.raises(ValueError, match="column_potential"):
        solve_assignment(np.zeros((3, 3)), np.zeros(2))
    with pytest.raises(ValueError, match="one shape"):
        solve_inner_product_assignment(np.zeros((3, 2)), np.zeros((4, 2)))
    with pytest.raises(ValueError, match="equal batches"):
        ot_permutation(torch.zeros(3, 2), torch.zeros(4, 2))
    with pytest.raises(ValueError, match="2D point sets"):
        multiscale_potential(np.zeros((4, 3)), np.zeros((4, 3)))


def test_c_transform_is_the_tightest_feasible_column_potential():
    rng = np.random.default_rng(1)
    x, u, y = rng.normal(size=(30, 2)), rng.normal(size=30), rng.normal(size=(20, 2))
    v = _c_transform(x, u, np.ascontiguousarray(y.T))
    reduced = -(x @ y.T) - u[:, None] - v[None, :]
    assert reduced.min() >= -1e-12  # feasible
    assert np.allclose(reduced.min(0), 0.0, atol=1e-12)  # and no column potential can be larger


def test_hilbert_order_cuts_the_points_into_compact_cells():
    rng = np.random.default_rng(2)
    points = rng.normal(size=(256, 2))
    order = _hilbert_order(points)
    assert sorted(order) == list(range(256))

    def mean_cell_spread(o):
        cells = points[o].reshape(32, 8, 2)
        return np.mean(((cells - cells.mean(1, keepdims=True)) ** 2).sum(-1))

    assert mean_cell_spread(order) < 0.2 * mean_cell_spread(rng.permutation(256))


def hilbert_index_reference(x, y, bits):
    """The textbook xy2d (branches and all), an independent check of the branch-free one."""
    side = 1 << bits
    d, s = 0, side // 2
    while s > 0:
        rx, ry = int(x & s > 0), int(y & s > 0)
        d += s * s * ((3 * rx) ^ ry)
        if ry == 0:
            if rx == 1:
                x, y = side - 1 - x, side - 1 - y
            x, y = y, x
        s //= 2
    return d


def test_hilbert_index_is_the_textbook_curve_and_visits_neighbours_in_turn():
    bits = 4
    side = 1 << bits
    index = {(x, y): _hilbert_index(x, y, bits) for x in range(side) for y in range(side)}
    assert all(d == hilbert_index_reference(x, y, bits) for (x, y), d in index.items())
    cell_at = {d: cell for cell, d in index.items()}
    assert sorted(cell_at) == list(range(side * side))  # a bijection onto 0 .. side^2 - 1
    steps = [abs(cell_at[d + 1][0] - cell_at[d][0]) + abs(cell_at[d + 1][1] - cell_at[d][1])
             for d in range(side * side - 1)]
    assert steps == [1] * (side * side - 1)  # each step of the curve goes to a neighbouring cell


@given(st.integers(1, 300), st.integers(0, 2**32 - 1))
@settings(max_examples=40, deadline=None)
def test_hilbert_order_is_a_stable_sort_by_curve_position(n, seed):
    points = np.random.default_rng(seed).normal(size=(n, 2)).round(1)  # rounding makes ties
    lo, hi = points.min(0), points.max(0)
    side = 1 << HILBERT_BITS
    span = np.where(hi > lo, hi - lo, 1.0)
    cells = ((points - lo) * ((side - 1) / span)).astype(int)
    curve = [hilbert_index_reference(int(x), int(y), HILBERT_BITS) for x, y in cells]
    assert list(_hilbert_order(points)) == list(np.argsort(curve, kind="stable"))


def dual_value(cost, v):
    """The dual objective with u from the row reduction: a lower bound on the optimal cost."""
    return (cost - v[None, :]).min(1).sum() + v.sum()


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("n", [256, 200])
def test_multiscale_start_closes_most_of_the_duality_gap(seed, n):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 2, generator=g).double().numpy()
    y = target("moons", n, seed).double().numpy()
    cost = -(x @ y.T)
    best = total(cost, linear_sum_assignment(cost)[1])
    gap_from_zero = best - dual_value(cost, np.zeros(n))
    gap_multiscale = best - dual_value(cost, multiscale_potential(x, y))
    assert 0 <= gap_multiscale < 0.05 * gap_from_zero


@pytest.mark.parametrize("n", [1, 2, 7, 15, 16, 17, 96])
def test_every_batch_size_is_solved_exactly(n):
    rng = np.random.default_rng(n)
    x, y = rng.normal(size=(n, 2)), rng.normal(size=(n, 2)) + 1
    assert_optimal_with_certificate(-(x @ y.T), solve_inner_product_assignment(x, y))


# ----- extreme inputs: huge magnitudes and large common offsets (issue 14, items 1 and 2) -----


def squared_distance_optimum(x, y):
    """Independent reference: scipy's assignment on the squared distances computed from the
    differences x_i - y_j (no inner product, so no cancellation against a common offset)."""
    cost = ((x[:, None, :] - y[None, :, :]) ** 2).sum(-1)
    rows, columns = linear_sum_assignment(cost)
    return cost, columns


def test_huge_finite_points_are_solved_in_a_child_process_that_survives():
    """Points of size 1e155 make -<x, y> overflow: the solver must not crash the kernel."""
    import subprocess
    import sys

    script = (
        "import numpy as np\n"
        "from explorer.flows.assignment import solve_inner_product_assignment\n"
        "from explorer.flows.metrics import w2\n"
        "r = np.random.default_rng(0)\n"
        "x, y = r.normal(size=(16, 2)) * 1e155, r.normal(size=(16, 2)) * 1e155\n"
        "print(sorted(solve_inner_product_assignment(x, y).permutation) == list(range(16)))\n"
        "print(w2(x, y))\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[0] == "True"
    assert np.isfinite(float(done.stdout.split()[1]))


@pytest.mark.parametrize("scale", [1e-300, 1e-150, 1e100, 1e155, 1e300])
def test_the_optimum_does_not_depend_on_the_units(scale):
    """Scaling every point by any positive factor keeps the optimal permutation; W2 scales."""
    from explorer.flows.metrics import w2

    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(40, 2)), rng.normal(size=(40, 2))
    cost, best = squared_distance_optimum(x, y)
    ours = solve_inner_product_assignment(x * scale, y * scale).permutation
    assert total(cost, ours) == pytest.approx(total(cost, best), rel=1e-12)
    assert w2(x * scale, y * scale) / scale == pytest.approx(np.sqrt(total(cost, best) / 40),
                                                             rel=1e-12)


@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("offset", [1e6, 1e7, 1e9])
def test_a_common_offset_changes_nothing(offset, dim):
    """Translating both sets by the same vector keeps the optimum and W2 (translation
    invariance of the squared distance), whatever the size of the offset."""
    from explorer.flows.metrics import w2

    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(1000, dim)), 0.9 * rng.normal(size=(1000, dim)) + 0.1
    cost, best = squared_distance_optimum(x, y)
    exact = np.sqrt(total(cost, best) / 1000)
    ours = solve_inner_product_assignment(x + offset, y + offset).permutation
    assert total(cost, ours) == pytest.approx(total(cost, best), rel=1e-9)
    assert w2(x + offset, y + offset) == pytest.approx(exact, rel=1e-6)


@pytest.mark.parametrize("scale", [1e-300, 1e150, 1e300])
def test_huge_or_tiny_cost_matrices_match_scipy(scale):
    rng = np.random.default_rng(7)
    cost = rng.normal(size=(30, 30))
    ours = solve_assignment(cost * scale).permutation
    assert total(cost, ours) == pytest.approx(total(cost, linear_sum_assignment(cost)[1]),
                                              rel=1e-12)
