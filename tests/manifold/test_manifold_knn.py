"""The kNN engine against a float64 brute force, leave-one-out with duplicates, and bad input."""

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from explorer.manifold import knn_distances
from explorer.manifold.knn import nearest_distances


def brute_force(queries, references, k, leave_one_out=False):
    """All pairwise distances in float64, a full sort, the mean of the first k."""
    q = np.asarray(queries, dtype=np.float64)
    r = np.asarray(references, dtype=np.float64)
    d = np.sqrt(((q[:, None, :] - r[None, :, :]) ** 2).sum(axis=2))
    if leave_one_out:
        np.fill_diagonal(d, np.inf)
    return np.sort(d, axis=1)[:, :k]


@pytest.mark.parametrize("offset", [0.0, 1e3])
@pytest.mark.parametrize("dim", [3, 64, 300])
def test_equals_float64_brute_force(offset, dim):
    rng = np.random.default_rng(dim)
    q = (rng.standard_normal((150, dim)) + offset).astype(np.float32)
    r = (rng.standard_normal((220, dim)) * 2 + offset).astype(np.float32)
    for k in (1, 5, 17):
        got = knn_distances(q, r, k)
        want = brute_force(q, r, k).mean(axis=1)
        np.testing.assert_allclose(got, want, rtol=1e-5)


def test_large_offsets_exact_with_and_without_centring():
    """Activations with a huge shared offset: without centring the float32 expansion loses every
    digit, the error bound sees it and the exact path takes over (slower, same numbers)."""
    rng = np.random.default_rng(1)
    offset = 3e4
    q = (rng.standard_normal((60, 200)) + offset).astype(np.float32)
    r = (rng.standard_normal((80, 200)) + offset).astype(np.float32)
    want = brute_force(q, r, 5).mean(axis=1)
    np.testing.assert_allclose(knn_distances(q, r, 5), want, rtol=1e-5)
    np.testing.assert_allclose(knn_distances(q, r, 5, centre=False), want,
                               rtol=1e-5)


def test_sorted_distances_and_chunking():
    rng = np.random.default_rng(2)
    q = rng.standard_normal((301, 40)).astype(np.float32)
    r = rng.standard_normal((120, 40)).astype(np.float32)
    small_chunks = nearest_distances(q, r, 7, memory_mb=0.01)  # a few rows per chunk
    np.testing.assert_allclose(small_chunks, brute_force(q, r, 7), rtol=1e-5)
    assert (np.diff(small_chunks, axis=1) >= 0).all()


def test_leave_one_out_excludes_self_by_index_not_duplicates():
    # three copies of one point: each copy's nearest *other* point is at distance 0
    x = np.array([[0.0, 0.0], [0.0, 0.0], [0.0, 0.0], [3.0, 4.0], [6.0, 8.0]], dtype=np.float32)
    got = nearest_distances(x, x, 2, leave_one_out=True)
    np.testing.assert_array_equal(got[:3], np.zeros((3, 2)))
    # well-separated pairs keep the float32 product's value: within a few float32 roundings
    np.testing.assert_allclose(got[3], [5.0, 5.0], rtol=4 * 2.0**-24)
    np.testing.assert_allclose(got[4], [5.0, 10.0], rtol=4 * 2.0**-24)
    # dropping "the first neighbour" instead would have given the copies a distance 0 and 5
    np.testing.assert_allclose(knn_distances(x, x, 2, leave_one_out=True), [0, 0, 0, 5, 7.5],
                               rtol=4 * 2.0**-24)


def test_leave_one_out_with_duplicates_matches_brute_force():
    rng = np.random.default_rng(3)
    base = (rng.standard_normal((100, 30)) * 5 + 100).astype(np.float32)
    x = np.concatenate([base, base[:40], base[:10]])
    for k in (1, 3, 6):
        got = nearest_distances(x, x, k, leave_one_out=True)
        np.testing.assert_allclose(
            got, brute_force(x, x, k, leave_one_out=True), rtol=1e-5, atol=1e-6
        )


@settings(max_examples=40, deadline=None)
@given(
    n_q=st.integers(1, 30),
    n_r=st.integers(2, 40),
    dim=st.integers(1, 20),
    k=st.integers(1, 5),
    scale=st.floats(1e-3, 1e3),
    seed=st.integers(0, 2**16),
)
def test_property_matches_brute_force(n_q, n_r, dim, k, scale, seed):
    k = min(k, n_r)
    rng = np.random.default_rng(seed)
    q = (rng.standard_normal((n_q, dim)) * scale).astype(np.float32)
    r = (rng.standard_normal((n_r, dim)) * scale).astype(np.float32)
    got = nearest_distances(q, r, k)
    np.testing.assert_allclose(got, brute_force(q, r, k), rtol=1e-5, atol=1e-6 * scale)


def test_torch_and_float64_inputs():
    import torch

    rng = np.random.default_rng(4)
    q, r = rng.standard_normal((20, 8)), rng.standard_normal((30, 8))
    want = brute_force(q, r, 3).mean(axis=1)
    np.testing.assert_allclose(
        knn_distances(torch.from_numpy(q), torch.from_numpy(r), 3), want, rtol=1e-5
    )
    np.testing.assert_allclose(knn_distances(q, r, 3), want, rtol=1e-5)


@pytest.mark.parametrize(
    "queries, references, k, kwargs, message",
    [
        (np.zeros((3, 4)), np.zeros((5, 3)), 2, {}, "features"),
        (np.zeros((3, 4)), np.zeros((5, 4)), 6, {}, "only 5 references"),
        (np.zeros((5, 4)), np.zeros((5, 4)), 5, {"leave_one_out": True}, "leave-one-out"),
        (np.zeros((3, 4)), np.zeros((5, 4)), 0, {}, "positive integer"),
        (np.zeros(4), np.zeros((5, 4)), 1, {}, "2-D"),
        (np.zeros((3, 4)), np.zeros((4, 4)), 1, {"leave_one_out": True}, "same rows"),
    ],
)
def test_bad_input_is_a_clear_error(queries, references, k, kwargs, message):
    with pytest.raises(ValueError, match=message):
        knn_distances(queries, references, k, **kwargs)


@pytest.mark.parametrize("where", ["queries", "references"])
def test_nan_is_a_clear_error(where):
    q, r = np.zeros((3, 4), np.float32), np.ones((5, 4), np.float32)
    (q if where == "queries" else r)[1, 2] = np.nan
    with pytest.raises(ValueError, match="NaN or infinite"):
        knn_distances(q, r, 2)


@settings(max_examples=80, deadline=None)
@given(
    n=st.integers(1, 6), groups=st.integers(0, 80), tail=st.integers(0, 20), k=st.integers(1, 16),
    ties=st.booleans(), leave_one_out=st.booleans(), seed=st.integers(0, 2**16),
)
def test_property_selection_kernel_equals_topk(n, groups, tail, k, ties, leave_one_out, seed):
    """The numba selection (group maxima, a threshold, a scan of the groups that reach it) against
    torch.topk on the biased scores: the same values, each column once, the left-out one never."""
    import torch

    from explorer.manifold.knn import GROUP, largest_with_bias

    m = groups * GROUP + tail
    skip_from = int(np.random.default_rng(seed).integers(0, m)) if leave_one_out and m else None
    k = min(k, m - (0 if skip_from is None else 1))
    assume(k >= 1)
    rng = np.random.default_rng(seed)
    draw = (lambda *shape: rng.integers(0, 4, shape)) if ties else (lambda *shape: rng.standard_normal(shape))
    score = torch.from_numpy(draw(n, m).astype(np.float32))
    bias = torch.from_numpy(draw(m).astype(np.float32))
    biased = score + bias
    if skip_from is not None:  # (rows of 64 k columns or more take the kernel, shorter topk)
        rows = torch.arange(n)
        inside = skip_from + rows < m
        biased[rows[inside], skip_from + rows[inside]] = -float("inf")
    got, columns = largest_with_bias(score, bias, k, skip_from)
    want = torch.topk(biased, k, dim=1).values
    assert torch.equal(got.sort(dim=1).values, want.sort(dim=1).values)
    assert torch.equal(biased.gather(1, columns), got)  # the columns hold those values
    assert all(len(set(row.tolist())) == k for row in columns)  # no column twice


@pytest.mark.parametrize("leave_one_out", [False, True])
def test_many_references_take_the_prefilter_and_equal_brute_force(leave_one_out):
    # 64 groups of 64 references plus a 41-column tail: the block-max prefilter is used
    rng = np.random.default_rng(7)
    r = (rng.standard_normal((4137, 6)) + 50.0).astype(np.float32)
    r[4136] = r[5]  # an exact duplicate in the tail
    q = r if leave_one_out else np.concatenate([r[:20], rng.standard_normal((60, 6)) + 50.0])
    q = q.astype(np.float32)
    got = nearest_distances(q, r, 10, leave_one_out=leave_one_out)
    want = np.concatenate([  # float64 brute force in slices of queries (bounded memory)
        np.sort(np.where(
            (np.arange(start, start + len(part))[:, None] == np.arange(len(r))) & leave_one_out,
            np.inf, np.sqrt(((part[:, None, :].astype(np.float64) - r) ** 2).sum(axis=2)),
        ), axis=1)[:, :10]
        for start, part in ((s, q[s : s + 256]) for s in range(0, len(q), 256))
    ])
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def clusters(n_clusters, size, dim, centre_std, spread, seed):
    """Tight clusters far from each other and from the origin: neighbours are close compared
    with the cloud's spread (the case where float32 selection after global centring fails)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_clusters, dim)) * centre_std
    points = centres.repeat(size, axis=0) + spread * rng.standard_normal((n_clusters * size, dim))
    return points.astype(np.float32)


@pytest.mark.parametrize("spread", [1e-2, 1e-3, 1e-4])
def test_close_neighbours_in_a_wide_cloud_are_chosen_exactly(spread):
    """Issue 15 item 1: 50 clusters of 10 points, centres N(0, 100 I_64): before the fix 27 % of
    the first neighbours were wrong at spread 0.01 and the mean 5-NN distance was 16 % off at
    1e-3. Every point, every rank, equal to float64 brute force."""
    x = clusters(50, 10, 64, 10.0, spread, seed=0)
    want = brute_force(x, x, 5, leave_one_out=True)
    got = nearest_distances(x, x, 5, leave_one_out=True)
    np.testing.assert_allclose(got, want, rtol=1e-5)
    queries = clusters(50, 10, 64, 10.0, spread, seed=0)[::7] + np.float32(spread / 3)
    np.testing.assert_allclose(nearest_distances(queries, x, 5), brute_force(queries, x, 5),
                               rtol=1e-5)


def test_two_nn_on_tight_clusters_equals_float64_brute_force():
    """Issue 15 item 1: TwoNN gave 13.6 against 20.5 (float64 brute force, skdim) at spread 0.01."""
    from explorer.manifold.geometry import two_nn, two_nn_from_distances

    x = clusters(50, 10, 64, 10.0, 1e-2, seed=0)
    exact = brute_force(x, x, 2, leave_one_out=True)
    want = two_nn_from_distances(exact[:, 0], exact[:, 1])
    assert two_nn(x) == pytest.approx(want, rel=1e-5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_near_ties_at_the_kth_neighbour_are_resolved_exactly(dtype):
    """References on a sphere around each query with radii that differ in the 7th digit: the
    float32 expansion cannot order them, the exact re-rank must."""
    rng = np.random.default_rng(11)
    dim, n = 48, 300
    q = rng.standard_normal((20, dim)) * 50 + 1000
    directions = rng.standard_normal((20, n, dim))
    directions /= np.linalg.norm(directions, axis=2, keepdims=True)
    radii = 1.0 + 1e-6 * rng.permutation(n)[None, :, None]
    r = (q[:, None, :] + radii * directions).reshape(-1, dim).astype(dtype)
    q = q.astype(dtype)
    np.testing.assert_allclose(nearest_distances(q, r, 7), brute_force(q, r, 7), rtol=2e-7)


@pytest.mark.parametrize("dim", [64, 896, 4096])
@pytest.mark.parametrize("offset", [0.0, 20.0])
def test_well_separated_values_within_1e_6_of_float64(dim, offset):
    """The module's stated precision for pairs the float32 expansion keeps (no recomputation)."""
    rng = np.random.default_rng(dim)
    q = (rng.standard_normal((40, dim)) + offset).astype(np.float32)
    r = (rng.standard_normal((400, dim)) + offset).astype(np.float32)
    r64 = r.astype(np.float64)
    want = np.stack([np.sort(np.sqrt(((row - r64) ** 2).sum(axis=1)))[:10] for row in q])
    np.testing.assert_allclose(nearest_distances(q, r, 10), want, rtol=1e-6)


@pytest.mark.parametrize("dim", [3, 40])
def test_leave_one_out_rows_settled_from_the_whole_row_never_count_themselves(dim):
    """A centre with 60 references at radii equal to the 7th digit: its near tie reaches past
    every kept candidate, so the row is settled from all its references; with leave-one-out the
    centre itself (distance 0) must stay out of that band too."""
    rng = np.random.default_rng(dim)
    centres = rng.standard_normal((3, dim)) * 100
    directions = rng.standard_normal((3, 60, dim))
    directions /= np.linalg.norm(directions, axis=2, keepdims=True)
    radii = 1.0 + 1e-7 * rng.permutation(60)[None, :, None]
    x = np.concatenate([centres, (centres[:, None, :] + radii * directions).reshape(-1, dim)])
    x = x.astype(np.float32)
    got = nearest_distances(x, x, 10, leave_one_out=True)
    np.testing.assert_allclose(got, brute_force(x, x, 10, leave_one_out=True), rtol=1e-6)
    assert got[:3].min() > 0.99  # the centres' own zero distance never counted


def test_selection_group_size_matches_the_kernel():
    from explorer.manifold import knn, knn_kernels

    assert knn.GROUP == knn_kernels.GROUP


@pytest.mark.parametrize("memory_mb", [64.0, 1e-3])  # one product, or task by task
def test_subsets_from_one_product_equal_float64_brute_force(memory_mb):
    """nearest_distances_in_subsets (REMA's null splits from one product) against a float64
    brute force on each subset, with exact duplicates across and inside the halves."""
    from explorer.manifold.knn import nearest_distances_in_subsets

    rng = np.random.default_rng(5)
    points = (rng.standard_normal((90, 12)) + 30.0).astype(np.float32)
    points[40] = points[3]  # duplicates: one pair likely split across halves, one inside
    points[41] = points[3]
    correct = np.ones(90, bool)
    correct[::4] = False
    good = points[correct]
    order = rng.permutation(len(good))
    half, rest = np.sort(order[: len(good) // 2]), np.sort(order[len(good) // 2 :])
    good_rows, bad_rows = np.flatnonzero(correct), np.flatnonzero(~correct)
    tasks = [(bad_rows, np.arange(len(good)), False), (good_rows, np.arange(len(good)), True),
             (good_rows[rest], half, False), (good_rows[half], half, True)]
    got = nearest_distances_in_subsets(points, good, 6, tasks, memory_mb=memory_mb)
    for (rows, columns, leave_one_out), table in zip(tasks, got, strict=True):
        want = brute_force(points[rows], good[columns], 6, leave_one_out=leave_one_out)
        np.testing.assert_allclose(table, want, rtol=1e-5, atol=1e-6)


def test_subsets_refuse_a_leave_one_out_task_of_unequal_sizes():
    from explorer.manifold.knn import nearest_distances_in_subsets

    x = np.zeros((10, 3), np.float32)
    with pytest.raises(ValueError, match="as many query rows as reference columns"):
        nearest_distances_in_subsets(x, x, 2, [(np.arange(4), np.arange(5), True)])
    with pytest.raises(ValueError, match="only 3 references"):
        nearest_distances_in_subsets(x, x, 4, [(np.arange(4), np.arange(3), False)])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("pairs, dim", [(40, 7), (300, 1000)])  # under and over the threshold
def test_exact_squared_numpy_and_numba_paths_equal_float64(dtype, pairs, dim):
    """Few pairs are gathered in NumPy (numba's 0.6-0.9 s load is spared), many go to the numba
    kernel: both give the float64 squared distances of the original, uncentred data (far from
    the origin, with an exact duplicate: 0 exactly)."""
    import torch

    from explorer.manifold.knn import KERNEL_MIN_ENTRIES, exact_squared, few_exact_squared
    from explorer.manifold.knn_kernels import pair_squared_distances

    rng = np.random.default_rng(pairs)
    q = (rng.standard_normal((50, dim)) + 1e3).astype(dtype)
    r = (rng.standard_normal((60, dim)) + 1e3).astype(dtype)
    r[3] = q[2]
    rows, cols = rng.integers(0, 50, pairs), rng.integers(0, 60, pairs)
    rows[0], cols[0] = 2, 3
    want = ((q[rows].astype(np.float64) - r[cols].astype(np.float64)) ** 2).sum(axis=1)
    got = exact_squared(torch.from_numpy(q), torch.from_numpy(r), torch.from_numpy(rows),
                        torch.from_numpy(cols)).numpy()
    assert (pairs * dim < KERNEL_MIN_ENTRIES) == (pairs == 40)
    np.testing.assert_allclose(got, want, rtol=1e-13)
    assert got[0] == 0.0
    kernel = np.empty(pairs)
    pair_squared_distances(q, r, rows, cols, kernel)
    np.testing.assert_allclose(few_exact_squared(q, r, rows, cols).numpy(), kernel, rtol=1e-13)
