"""The batched BFGS: independent starts, bounds, infinite regions."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import minimize, minimize_scalar, rosen, rosen_der, rosen_hess

from explorer.modes.bfgs import minimise_batch


def rosenbrock_batch(x):
    values = np.array([rosen(row) for row in x])
    gradients = np.array([rosen_der(row) for row in x])
    return values, gradients


def test_matches_scipy_on_rosenbrock_from_several_starts():
    starts = np.array([[-1.2, 1.0], [2.0, -1.0], [0.0, 0.0]])
    result = minimise_batch(
        rosenbrock_batch,
        starts,
        np.full(2, -5.0),
        np.full(2, 5.0),
        max_rounds=500,
        merge_radius=0.0,
    )
    assert result.converged.all()
    for row, start in zip(result.x, starts, strict=True):
        reference = minimize(rosen, start, jac=rosen_der, method="BFGS").x
        assert row == pytest.approx(reference, abs=1e-5)
        assert row == pytest.approx([1.0, 1.0], abs=1e-5)


def test_starts_do_not_influence_each_other():
    """A start with an astronomically scaled objective leaves a gentle one's path unchanged."""

    def batch(x):
        scale = np.array([1.0, 1e40])[: len(x)]
        values = scale * np.sum((x - 3.0) ** 2, axis=1)
        return values, scale[:, None] * 2 * (x - 3.0)

    low, high = np.full(2, -10.0), np.full(2, 10.0)
    alone = minimise_batch(batch, np.array([[0.0, 0.0]]), low, high)
    together = minimise_batch(batch, np.array([[0.0, 0.0], [1.0, 1.0]]), low, high)
    assert np.array_equal(np.array(alone.paths[0]), np.array(together.paths[0]))
    assert together.x == pytest.approx(np.full((2, 2), 3.0), abs=1e-6)


def test_bounds_and_an_infinite_region_are_respected():
    def batch(x):
        values = np.sum((x - 2.0) ** 2, axis=1)
        values = np.where(x[:, 0] > 1.5, np.inf, values)  # a wall before the unconstrained optimum
        return values, 2 * (x - 2.0)

    result = minimise_batch(
        batch, np.array([[0.0, 0.0]]), np.array([-1.0, -1.0]), np.array([5.0, 1.0])
    )
    assert result.x[0, 0] <= 1.5 and result.x[0, 1] == pytest.approx(1.0)
    assert np.isfinite(result.f).all()


def test_an_infinite_start_is_left_alone():
    def batch(x):
        values = np.where(x[:, 0] > 0, np.inf, np.sum(x**2, axis=1))
        return values, 2 * x

    result = minimise_batch(
        batch, np.array([[1.0, 1.0], [-1.0, 1.0]]), np.full(2, -5.0), np.full(2, 5.0)
    )
    assert result.x[0] == pytest.approx([1.0, 1.0]) and np.isinf(result.f[0])
    assert result.x[1] == pytest.approx([0.0, 0.0], abs=1e-6)


def test_a_start_that_runs_into_a_found_optimum_stops():
    # the first start sits on Rosenbrock's optimum; the second has a long way through its valley
    starts = np.array([[1.0, 1.0], [-1.2, 1.0]])
    low, high = np.full(2, -5.0), np.full(2, 5.0)
    result = minimise_batch(rosenbrock_batch, starts, low, high, merge_radius=0.3)
    assert result.merged.tolist() == [-1, 0]
    assert np.max(np.abs(result.x[1] - 1.0)) < 0.3
    alone = minimise_batch(rosenbrock_batch, starts[1:], low, high, merge_radius=0.3)
    assert len(result.paths[1]) < len(alone.paths[0])


def test_exact_hessians_give_newton_steps_that_converge_faster():
    """With Hessians the solver is (modified) Newton: the same optimum, far fewer evaluations."""

    def with_hessians(x):
        values, gradients = rosenbrock_batch(x)
        return values, gradients, np.array([rosen_hess(row) for row in x])

    starts = np.array([[-1.2, 1.0], [2.0, -1.0], [0.0, 0.0]])
    low, high = np.full(2, -5.0), np.full(2, 5.0)
    quasi = minimise_batch(rosenbrock_batch, starts, low, high, max_rounds=500, merge_radius=0.0)
    newton = minimise_batch(with_hessians, starts, low, high, max_rounds=500, merge_radius=0.0)
    assert newton.converged.all()
    assert newton.x == pytest.approx(np.ones((3, 2)), abs=1e-6)
    assert newton.evaluations < quasi.evaluations


def test_modified_newton_leaves_a_saddle_along_negative_curvature():
    """f = x^2 - y^2 + y^4 / 4 from near the saddle at 0: the Hessian is indefinite there, and
    the eigenvalue-modified step goes downhill to a minimum at y = +-sqrt(2)."""

    def saddle(x):
        values = x[:, 0] ** 2 - x[:, 1] ** 2 + x[:, 1] ** 4 / 4
        gradients = np.stack([2 * x[:, 0], -2 * x[:, 1] + x[:, 1] ** 3], axis=1)
        hessians = np.zeros((len(x), 2, 2))
        hessians[:, 0, 0] = 2.0
        hessians[:, 1, 1] = -2.0 + 3 * x[:, 1] ** 2
        return values, gradients, hessians

    result = minimise_batch(saddle, np.array([[0.3, 0.01]]), np.full(2, -5.0), np.full(2, 5.0))
    assert result.converged.all()
    assert result.x[0] == pytest.approx([0.0, np.sqrt(2.0)], abs=1e-6)
    assert result.evaluations < 30


def test_newton_doubles_its_step_where_the_function_falls_faster_than_its_model():
    """f = e^(-3x) + x^2 / 8 + y^2 from x = -2: far left Newton's step is about 1/3 (the model
    of an exponential underestimates its fall), so plain Newton creeps (13 evaluations); where a
    full step gained over 1.2x its model's promise the next one is doubled (10). The optimum is
    stationary and scipy's."""

    def exponential(x):
        values = np.exp(-3 * x[:, 0]) + x[:, 0] ** 2 / 8 + x[:, 1] ** 2
        gradients = np.stack([-3 * np.exp(-3 * x[:, 0]) + x[:, 0] / 4, 2 * x[:, 1]], axis=1)
        hessians = np.zeros((len(x), 2, 2))
        hessians[:, 0, 0] = 9 * np.exp(-3 * x[:, 0]) + 0.25
        hessians[:, 1, 1] = 2.0
        return values, gradients, hessians

    result = minimise_batch(exponential, np.array([[-2.0, 0.5]]), np.full(2, -10.0),
                            np.full(2, 10.0))
    best = minimize_scalar(lambda x: np.exp(-3 * x) + x * x / 8, bracket=(-3, 3),
                           tol=1e-12).x
    assert result.converged.all()
    x = result.x[0, 0]
    assert abs(-3 * np.exp(-3 * x) + x / 4) < 1e-10  # stationary
    assert result.x[0] == pytest.approx([best, 0.0], abs=1e-7)  # Brent's tolerance
    assert result.evaluations <= 10
