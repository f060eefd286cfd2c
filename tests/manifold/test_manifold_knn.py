"""The kNN engine against a float64 brute force, leave-one-out with duplicates, and bad input."""

import numpy as np
import pytest
from hypothesis import given, settings
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


@pytest.mark.parametrize("engine", ["auto", "torch"])
@pytest.mark.parametrize("offset", [0.0, 1e3])
@pytest.mark.parametrize("dim", [3, 64, 300])
def test_equals_float64_brute_force(engine, offset, dim):
    rng = np.random.default_rng(dim)
    q = (rng.standard_normal((150, dim)) + offset).astype(np.float32)
    r = (rng.standard_normal((220, dim)) * 2 + offset).astype(np.float32)
    for k in (1, 5, 17):
        got = knn_distances(q, r, k, engine=engine)
        want = brute_force(q, r, k).mean(axis=1)
        np.testing.assert_allclose(got, want, rtol=1e-5)


def test_large_offsets_need_centring():
    """Activations with a huge shared offset: centring keeps float32 exact, no centring does not."""
    rng = np.random.default_rng(1)
    offset = 3e4
    q = (rng.standard_normal((60, 200)) + offset).astype(np.float32)
    r = (rng.standard_normal((80, 200)) + offset).astype(np.float32)
    want = brute_force(q, r, 5).mean(axis=1)
    np.testing.assert_allclose(knn_distances(q, r, 5), want, rtol=1e-5)
    raw = knn_distances(q, r, 5, centre=False, engine="torch")
    assert np.abs(raw / want - 1).max() > 1e-5  # the reason centring is the default


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
    np.testing.assert_allclose(got[3], [5.0, 5.0])
    np.testing.assert_allclose(got[4], [5.0, 10.0])
    # dropping "the first neighbour" instead would have given the copies a distance 0 and 5
    np.testing.assert_allclose(knn_distances(x, x, 2, leave_one_out=True), [0, 0, 0, 5, 7.5])


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
        (np.zeros((3, 4)), np.zeros((5, 4)), 1, {"engine": "fast"}, "engine"),
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


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 6), groups=st.integers(1, 30), group=st.integers(1, 9),
    tail=st.integers(0, 8), k=st.integers(1, 6), ties=st.booleans(), seed=st.integers(0, 2**16),
)
def test_property_block_max_selection_equals_topk(n, groups, group, tail, k, ties, seed):
    import torch

    from explorer.manifold.knn import largest_k

    m = groups * group + tail
    if k > m:
        k = m
    rng = np.random.default_rng(seed)
    values = rng.integers(0, 4, (n, m)) if ties else rng.standard_normal((n, m))
    score = torch.from_numpy(values.astype(np.float32))
    got, columns = largest_k(score, k, group=group)
    want = torch.topk(score, k, dim=1).values
    assert torch.equal(got.sort(dim=1).values, want.sort(dim=1).values)
    assert torch.equal(score.gather(1, columns), got)  # the columns hold those values
    assert all(len(set(row.tolist())) == k for row in columns)  # no column twice


@pytest.mark.parametrize("leave_one_out", [False, True])
def test_many_references_take_the_prefilter_and_equal_brute_force(leave_one_out):
    # >= 40 groups of 100 references plus a 37-column tail: the block-max prefilter is used
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


def test_onednn_failure_falls_back_to_the_same_numbers(monkeypatch):
    import torch

    rng = np.random.default_rng(8)
    q = rng.standard_normal((40, 12)).astype(np.float32)
    r = rng.standard_normal((90, 12)).astype(np.float32)
    want = brute_force(q, r, 4)
    if torch.backends.mkldnn.is_available():  # the dense-in/dense-out oneDNN linear itself
        np.testing.assert_allclose(nearest_distances(q, r, 4, engine="onednn"), want, rtol=1e-5)

    def unsupported(*args):
        raise RuntimeError("no oneDNN kernel for this build")

    monkeypatch.setattr(torch.ops.mkldnn, "_linear_pointwise", unsupported)
    np.testing.assert_allclose(nearest_distances(q, r, 4, memory_mb=0.01), want, rtol=1e-5)
    with pytest.raises(RuntimeError, match="no oneDNN kernel"):
        nearest_distances(q, r, 4, engine="onednn")
