"""How good is a flow: distances between point clouds, failures, modes, straightness.

* ``w2``: the exact 2-Wasserstein distance between two empirical measures (uniform weights),
  sqrt(min_P <P, C>) with C the squared distances. For two sets of one size the optimal plan is
  a permutation (Birkhoff), found by the exact assignment solver of :mod:`.assignment` (about
  15x faster than POT on 1000 points); otherwise by POT's network simplex ``ot.emd2``
  (Bonneel et al. 2011), which the tests also use as the independent check. Its "noise floor"
  is w2 between fresh draws of the target and the evaluation set: a perfect model scores about
  that, not zero.
* normalised W2: W2 to the target resampled with the *generated* mode weights, which removes
  the part of W2 due to wrong mode masses and leaves the shape error.
* nearest-data distance and failure rate: the mean distance of generated points to the nearest
  data point, and the share farther than the 99th percentile of that distance for real data.
* coverage (Naeem et al. 2020, "Reliable Fidelity and Diversity Metrics for Generative Models",
  eq. 5): the share of real points whose k-nearest-neighbour ball holds a generated point.
* straightness: the energy ratio E int_0^1 |dx/dt|^2 dt / E |x1 - x0|^2 over trajectories (1
  when every path is straight at constant speed, larger for curved ones; 1 + Liu et al.'s 2023
  straightness over the mean squared displacement, "Flow straight and fast").
* crossing fraction: the share of pairs of training segments x0_i -> x1_i that intersect.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .._deferred import deferred_import

# numba compiles (or loads from its disk cache) the assignment solver's kernels: imported at the
# first W2, not with the package, so a notebook's first view (which shows no W2, see the app's
# two-stage start) is made before numba and llvmlite are loaded (measured: about 0.2 s of a
# kernel's start, an observation)
assignment = deferred_import("explorer.flows.assignment", globals())


def _array(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or len(x) == 0:
        raise ValueError(f"expected a non-empty (n, d) array of points, got shape {x.shape}")
    return x


def w2(x, y) -> float:
    """Exact W2 between the empirical measures of x (n, d) and y (m, d).

    Computed in units of a power of two s that makes every coordinate at most 1 in size
    (W2(x, y) = s W2(x / s, y / s), exact in float64), so that squared distances of points as
    large as 1e155 do not overflow; infinite only where a point is."""
    x, y = _array(x), _array(y)
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        return float("inf")
    scale = assignment.power_of_two_scale(max(float(np.abs(x).max()), float(np.abs(y).max())))
    return float(scale * _w2_of_moderate_points(x / scale, y / scale))


def _w2_of_moderate_points(x: np.ndarray, y: np.ndarray) -> float:
    """Exact W2 of two finite point sets whose squared distances cannot overflow.

    Uniform weights on n and on m points: when one size divides the other (m = k n), the measure
    of x is also that of x repeated k times, and between two uniform measures on m points each
    the optimal plan is a permutation (Birkhoff), so the fast exact assignment solver applies.
    Other sizes go to POT's network simplex."""
    if len(y) % len(x) == 0 or len(x) % len(y) == 0:
        x = np.repeat(x, max(len(y) // len(x), 1), axis=0)
        y = np.repeat(y, max(len(x) // len(y), 1), axis=0)
        partner = assignment.solve_inner_product_assignment(x, y).permutation
        return float(np.sqrt(((x - y[partner]) ** 2).sum(1).mean()))
    import ot  # POT pulls in scikit-learn and scipy.stats: loaded only when used

    cost = ((x[:, None, :] - y[None, :, :]) ** 2).sum(-1)  # exact, and no BLAS threads
    value = ot.emd2(np.full(len(x), 1 / len(x)), np.full(len(y), 1 / len(y)), cost,
                    numItermax=1_000_000)
    return float(np.sqrt(max(value, 0.0)))


def pairwise_distances(a, b) -> torch.Tensor:
    """|a_i - b_j| for every pair, in float64. torch.cdist computes large sets through
    |a|^2 + |b|^2 - 2 <a, b>, which cancels catastrophically when both sets sit far from the
    origin (at an offset of 1e7 the rounding of |a|^2 is about 1e-2): both are first centred on
    b's mean, which changes no distance."""
    a = torch.as_tensor(_array(a))
    b = torch.as_tensor(_array(b))
    centre = b.mean(0)
    return torch.cdist(a - centre, b - centre)


def nearest_distances(points, reference) -> np.ndarray:
    """Distance of every point to its nearest reference point."""
    return pairwise_distances(points, reference).min(1).values.numpy()


@dataclass(frozen=True)
class Reference:
    """A fixed evaluation set of the target: ``pool`` (for nearest data and modes, with labels),
    ``eval_a`` (n_eval points with exactly the target's mode proportions, the set W2 is
    measured against), the failure threshold and the noise floor: the median W2 between
    ``eval_a`` and fresh independent draws of the same size from the target itself, which is
    what a perfect model would score."""

    pool: np.ndarray
    labels: np.ndarray
    weights: np.ndarray
    eval_a: np.ndarray
    threshold: float
    noise_floor: float | None  # None: not computed (``make_reference(floor_draws=0)``)
    knn_radius: np.ndarray


def _seed(*keys: int) -> int:
    return int(np.random.SeedSequence(list(keys)).generate_state(1)[0])


def stratified(points: np.ndarray, labels: np.ndarray, weights, n: int) -> np.ndarray:
    """n of ``points`` with the mode shares ``weights`` (largest remainders rounding)."""
    exact = np.asarray(weights) * n
    counts = np.floor(exact).astype(int)
    counts[np.argsort(counts - exact)[: n - counts.sum()]] += 1
    return np.concatenate([points[labels == k][:c] for k, c in enumerate(counts)])


def make_reference(target: str, n_eval: int = 512, n_pool: int = 2000, seed: int = 777,
                   k: int = 5, floor_draws: int = 5) -> Reference:
    """The target's reference; ``floor_draws=0`` leaves the noise floor out (None): everything
    else needs no W2 (see :func:`noise_floor`)."""
    from .targets import get_target, labelled_target

    weights = np.array(get_target(target).weights)
    pool, labels = (a.numpy() for a in labelled_target(target, n_pool, _seed(seed, 0)))
    held_out = labelled_target(target, n_pool, _seed(seed, 1))[0].numpy()
    big, big_labels = (a.numpy() for a in labelled_target(target, 4 * n_eval, _seed(seed, 2)))
    eval_a = stratified(big, big_labels, weights, n_eval).astype(np.float64)
    floor = noise_floor(target, eval_a, seed, floor_draws) if floor_draws else None
    threshold = float(np.quantile(nearest_distances(held_out, pool), 0.99))
    within = pairwise_distances(eval_a, eval_a)
    knn_radius = within.topk(k + 1, largest=False).values[:, -1].numpy()
    return Reference(pool.astype(np.float64), labels, weights, eval_a, threshold, floor,
                     knn_radius)


def noise_floor(target: str, eval_a: np.ndarray, seed: int = 777, draws: int = 5) -> float:
    """The median W2 between ``eval_a`` and ``draws`` fresh draws of its size from the target
    (what a perfect model scores; the draws are seeded, so it is a fixed number)."""
    from .targets import labelled_target

    return float(np.median([w2(labelled_target(target, len(eval_a), _seed(seed, 3, i))[0],
                                eval_a) for i in range(draws)]))


def mode_masses(points, ref: Reference) -> np.ndarray:
    """The share of points nearest to each mode's data."""
    nearest = pairwise_distances(points, ref.pool).argmin(1)
    labels = ref.labels[nearest.numpy()]
    return np.bincount(labels, minlength=len(ref.weights)) / len(labels)


def coverage(points, ref: Reference) -> float:
    """Naeem et al. (2020) coverage on ``ref.eval_a`` with its k-NN radii."""
    d = pairwise_distances(ref.eval_a, points).min(1).values
    return float((d.numpy() < ref.knn_radius).mean())


def normalised_w2(points, ref: Reference, seed: int = 0, masses=None) -> float:
    """W2 to ``ref.pool`` resampled with the generated points' mode weights (``masses``, which
    are computed when not given)."""
    points = _array(points)
    masses = mode_masses(points, ref) if masses is None else masses
    counts = np.floor(masses * len(points)).astype(int)
    counts[np.argmax(masses)] += len(points) - counts.sum()
    rng = np.random.default_rng(seed)
    parts = [ref.pool[rng.choice(np.flatnonzero(ref.labels == k), size=c, replace=True)]
             for k, c in enumerate(counts) if c > 0]
    return w2(points, np.concatenate(parts))


def path_energy(points: torch.Tensor) -> np.ndarray:
    """The kinetic energy int_0^1 |dx/dt|^2 dt of each trajectory (points: (steps + 1, n, 2),
    equal time steps; the velocity of a step is its displacement times the number of steps)."""
    steps = len(points) - 1
    speed2 = ((points[1:] - points[:-1]) * steps).double().pow(2).sum(-1)  # |dx/dt|^2 per step
    return speed2.mean(0).cpu().numpy()


def straightness(points: torch.Tensor) -> float:
    """The energy ratio E[int_0^1 |dx/dt|^2 dt] / E|x1 - x0|^2 over the trajectories: 1 when
    every path is straight at constant speed (the energy of a path is at least its squared
    displacement, Cauchy-Schwarz), larger when they bend. It equals 1 + S / E|x1 - x0|^2 with
    S = int_0^1 E|(x1 - x0) - dx/dt|^2 dt the straightness of Liu, Gong & Liu (2023, "Flow
    straight and fast", Definition 3.2). A ratio of means, not a mean of ratios: a path that
    barely moves (|x1 - x0| near 0) cannot inflate it. Infinite when the paths move and come
    back to where they started; 1 when nothing moves."""
    energy = float(path_energy(points).sum())
    displacement = float((points[-1] - points[0]).double().pow(2).sum())
    if displacement == 0.0:
        return 1.0 if energy == 0.0 else float("inf")
    return energy / displacement


def crossing_fraction(x0, x1) -> float:
    """Share of pairs (i < j) whose segments x0_i -> x1_i and x0_j -> x1_j properly intersect
    (orientation test, Cormen et al., "Introduction to Algorithms", Sec. 33.1)."""
    a, b = _array(x0), _array(x1)
    n = len(a)
    if n < 2:
        return 0.0

    def orient(p, q, r):  # sign of the cross product (q - p) x (r - p), for all pairs
        return np.sign((q[:, None, 0] - p[:, None, 0]) * (r[None, :, 1] - p[:, None, 1])
                       - (q[:, None, 1] - p[:, None, 1]) * (r[None, :, 0] - p[:, None, 0]))

    d1 = orient(a, b, a)  # side of a_j relative to segment i
    d2 = orient(a, b, b)  # side of b_j relative to segment i
    crosses = (d1 * d2 < 0) & (d1.T * d2.T < 0)
    upper = np.triu(np.ones((n, n), dtype=bool), 1)
    return float(crosses[upper].mean())


@dataclass
class Scores:
    w2: float
    normalised_w2: float
    noise_floor: float
    nearest: float
    failure_rate: float
    coverage: float
    mode_masses: np.ndarray
    target_weights: np.ndarray
    straightness: float


def score(generated, ref: Reference, straightness_value: float = float("nan")) -> Scores:
    gen = _array(generated)
    finite = np.isfinite(gen).all(1)
    if not finite.all():
        nan = float("inf")
        return Scores(nan, nan, ref.noise_floor, nan, 1.0, 0.0, np.zeros(len(ref.weights)),
                      ref.weights, straightness_value)
    distances = pairwise_distances(gen, ref.pool).min(1)
    nearest = distances.values.numpy()  # one distance matrix for nearest data and modes
    labels = ref.labels[distances.indices.numpy()]
    masses = np.bincount(labels, minlength=len(ref.weights)) / len(labels)
    return Scores(
        w2(gen, ref.eval_a), normalised_w2(gen, ref, masses=masses), ref.noise_floor,
        float(nearest.mean()), float((nearest > ref.threshold).mean()), coverage(gen, ref),
        masses, ref.weights, straightness_value,
    )
