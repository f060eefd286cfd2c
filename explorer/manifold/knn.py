r"""Exact k-nearest-neighbour distances in torch: the engine under every REMA number.

The squared Euclidean distance is expanded as

    ||q - r||^2 = ||q||^2 + ||r||^2 - 2 q.r,

so the heavy work is one float32 matrix product per chunk of queries (BLAS on the CPU, cuBLAS on a
GPU), the physical limit of the method. The float32 product only *proposes* neighbours; the answer
is the exact one, equal to a float64 brute force:

1. **Centring.** Everything is shifted by the references' mean before the float32 product. Hidden
   states of language models carry large shared offsets ("massive activations"); centring keeps
   ||q||^2 and 2 q.r small, so the expansion keeps its digits and the exact path below is rare.
2. **A proven choice.** Every computed squared distance of query q is within
   E = c (||q||^2 + max ||r||^2) of the exact one (:func:`expansion_error_factor`, a probabilistic
   rounding bound). The k + 1 best candidates are kept; when the gap between the k-th and the
   (k+1)-th computed value exceeds 2E, no other reference can belong to the k nearest and the
   choice is certain. Otherwise (near ties, or neighbours that are close compared with the cloud's
   spread) every reference within the band "k-th value + 2E" is recomputed exactly and the k
   smallest are taken (:func:`exact_k_smallest_in_band`).
3. **Exact values.** A chosen pair that is close compared with the two points' norms (where the
   expansion cancels most of its digits) is recomputed directly as ||q - r||^2 from the original
   data in float64 (:func:`exact_squared`), so duplicates get distance 0 exactly.
4. **Leave-one-out by index.** When queries and references are the same set, the pair (i, i) is
   made the farthest possible before the selection, so a point never counts itself but does count
   an exact duplicate of itself (dropping "the first neighbour" would drop the duplicate instead).

Memory stays bounded: queries are processed in chunks sized so that one chunk's distance block and
its exact recomputation stay under ``memory_mb``. :func:`nearest_distances_in_subsets` answers
several queries-by-references tables that are blocks of one product (REMA's null splits) from a
single GEMM.

Speed (budget: at most 1.15x a bare float32 GEMM ``q @ r.T`` of the same shape). Profiled at
2000 x 5000, one core, CPU time on a loaded shared machine, d = 896: the GEMM ~207 ms; the
selection 11 ms (a numba kernel adds the bias while it selects, :func:`largest_with_bias`; it was
3 ms of in-place bias plus 19-22 ms of block maxima and ``torch.topk``); centring the references
2 ms and the queries 1 ms (10.8 and 2.8 ms before: fresh memory from torch's allocator page-faults
on every 4 KiB, :func:`scratch` takes huge pages from numpy); norms ~2 ms; near ties and exact
pairs 2-3 ms. At d = 4096 the exact pairs of isotropic data took 69 ms as torch gathers, 8 ms in
the numba kernel (:func:`exact_squared`). The GEMM writes into a cache-line-aligned huge-page
block, which saves the page faults the bare GEMM pays on its fresh output (about a tenth of it
here): ``python -m benchmarks.bench_manifold --knn-only`` shows the ratios to the bare GEMM and to
a GEMM into a reused output (the arithmetic alone); on a shared 2-core machine they move by
+-0.1 between runs.
"""

from __future__ import annotations

import numpy as np
import torch

from explorer.checks import check_integer
from explorer.device import choose_device

ArrayLike = np.ndarray | torch.Tensor


def as_matrix(x: ArrayLike, name: str) -> torch.Tensor:
    """A 2-D tensor (float32 or float64 kept as given; other dtypes become float32)."""
    t = x if isinstance(x, torch.Tensor) else torch.from_numpy(np.asarray(x))
    if t.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (samples x features), got shape {tuple(t.shape)}")
    if t.shape[0] == 0 or t.shape[1] == 0:
        raise ValueError(f"{name} is empty (shape {tuple(t.shape)}); it needs samples and features")
    if t.dtype not in (torch.float32, torch.float64):
        t = t.to(torch.float32)
    return t


def shift_to_float32(x: torch.Tensor, offset: torch.Tensor | None, dev: torch.device) -> torch.Tensor:
    """``x - offset`` as float32 on ``dev``; the subtraction is done in x's own precision. A new
    float32 array on the CPU comes from :func:`scratch` (no page-fault storm)."""
    x = x.to(dev)
    if offset is None:
        return x.to(torch.float32).contiguous()
    if x.dtype != torch.float32:
        return (x - offset.to(dev, x.dtype)).to(torch.float32).contiguous()
    return torch.sub(x, offset.to(dev, x.dtype), out=scratch(tuple(x.shape), dev))


#: Arrays from this many bytes up are taken from numpy on the CPU (see :func:`scratch`).
SCRATCH_BYTES = 1 << 22

#: Alignment of :func:`scratch` arrays in bytes (a cache line): numpy's own is 16, and a GEMM
#: writing its output 16 bytes off a cache line ran 1.45x slower here (AVX stores split in two).
SCRATCH_ALIGN = 64


def scratch(shape: tuple[int, ...], dev: torch.device) -> torch.Tensor:
    """An uninitialised float32 array. On the CPU a large one comes from numpy, which asks Linux
    for transparent huge pages (``madvise``, numpy >= 1.22): the first write into fresh memory
    then costs one page fault per 2 MiB instead of per 4 KiB. Measured here (CPU time, one
    core): a fresh 2000 x 5000 float32 block first written in 24 ms from torch's allocator, 5 ms
    from numpy's, 3 ms reused; a GEMM into it 228 ms (fresh from torch), 202 ms (fresh from
    numpy, aligned), 199 ms (reused). The array starts on a cache line (:data:`SCRATCH_ALIGN`)."""
    size = int(np.prod(shape))
    if dev.type != "cpu" or 4 * size < SCRATCH_BYTES:
        return torch.empty(shape, dtype=torch.float32, device=dev)
    raw = np.empty(size + SCRATCH_ALIGN // 4, dtype=np.float32)
    start = (-raw.ctypes.data % SCRATCH_ALIGN) // 4
    return torch.from_numpy(raw[start : start + size].reshape(shape))


#: The centre is the mean of at most this many references.
OFFSET_SAMPLE = 1024

#: At most this many queries per chunk.
MAX_CHUNK_ROWS = 2048

#: Candidates kept beyond the k asked for: near ties at the k-th neighbour are settled among them
#: without another pass over the row.
EXTRA_CANDIDATES = 4


def useful_offset(r: torch.Tensor) -> torch.Tensor | None:
    """The centre to shift by, or None where shifting would not pay: when the mean is small next
    to the spread, centring shrinks ||q||^2 + ||r||^2 (and so the error bound E) by under 2 %."""
    sample = r[:OFFSET_SAMPLE]
    offset = sample.mean(dim=0)
    if not bool(torch.isfinite(offset).all()):
        raise ValueError(NOT_FINITE.format(name="references"))
    mean_square = float(torch.linalg.vector_norm(sample, dim=1).double().square().mean())
    offset_square = float(torch.linalg.vector_norm(offset, dtype=torch.float64)) ** 2
    return offset if 64.0 * offset_square > mean_square else None


def chunk_rows(n_references: int, memory_mb: float) -> int:
    """Queries per chunk so that the distance block and a float64 copy of its rows fit
    ``memory_mb``; the larger the chunk, the fewer times BLAS re-packs the references."""
    per_row_bytes = 12 * n_references
    return max(1, min(MAX_CHUNK_ROWS, int(memory_mb * 2**20 // per_row_bytes)))


def checked_k(k, available: int, leave_one_out: bool) -> None:
    """k must be a positive integer no larger than the references available."""
    check_integer(k, "k", low=1)
    if k > available:
        raise ValueError(
            f"k = {k} neighbours were asked for but only {available} references are available"
            + (" (leave-one-out excludes each point itself)" if leave_one_out else "")
            + "; lower k or add references"
        )


def matching_matrices(queries: ArrayLike, references: ArrayLike) -> tuple[torch.Tensor, torch.Tensor]:
    q = as_matrix(queries, "queries")
    r = as_matrix(references, "references")
    if q.shape[1] != r.shape[1]:
        raise ValueError(
            f"queries have {q.shape[1]} features but references have {r.shape[1]}; they must match"
        )
    return q, r


def centred_float32_references(r: torch.Tensor, centre: bool, dev: torch.device):
    """The references shifted by their centre (or not, see :func:`useful_offset`) as float32, their
    squared norms (checked finite: every later float32 value is then finite) and the offset."""
    # Any shift leaves distances unchanged; the mean only has to remove the bulk, so the mean of
    # the first references does (and its own rounding does not matter).
    offset = useful_offset(r) if centre else None
    r32 = shift_to_float32(r, offset, dev)
    ref_sq = squared_norms(r32)
    if not bool(torch.isfinite(ref_sq).all()):
        raise ValueError(NOT_FINITE.format(name="references"))
    return r32, ref_sq, offset


def finite_squared_norms(block: torch.Tensor) -> torch.Tensor:
    """|q|^2 of each (shifted, float32) query as a column, checked finite."""
    block_sq = squared_norms(block).unsqueeze(1)
    if not bool(torch.isfinite(block_sq).all()):
        raise ValueError(NOT_FINITE.format(name="queries"))
    return block_sq


def nearest_distances(
    queries: ArrayLike,
    references: ArrayLike,
    k: int,
    *,
    leave_one_out: bool = False,
    centre: bool = True,
    memory_mb: float = 64.0,
    device: str | torch.device | None = None,
) -> np.ndarray:
    """Distances from each query to its k nearest references, sorted ascending: shape (n_q, k).

    ``leave_one_out=True`` means queries *are* the references (same rows, same order) and query i
    must not count reference i; any other point, even an identical one, still counts.
    The neighbours are the exact ones (see the module docstring), whatever the data's shape.
    """
    q, r = matching_matrices(queries, references)
    checked_k(k, r.shape[0] - (1 if leave_one_out else 0), leave_one_out)
    if leave_one_out and q.shape[0] != r.shape[0]:
        raise ValueError("leave_one_out=True needs queries and references to be the same rows")

    dev = choose_device(device)
    q, r = q.to(dev), r.to(dev)
    r32, ref_sq, offset = centred_float32_references(r, centre, dev)
    rows = chunk_rows(r.shape[0], memory_mb)
    out = torch.empty((q.shape[0], k), dtype=torch.float64, device=dev)
    score_space = scratch((min(rows, q.shape[0]), r.shape[0]), dev)
    for start in range(0, q.shape[0], rows):
        # queries are shifted chunk by chunk: no second full-size copy
        block = r32[start : start + rows] if leave_one_out else \
            shift_to_float32(q[start : start + rows], offset, dev)
        block_sq = finite_squared_norms(block)
        # q.r, one BLAS GEMM into a reused block
        score = torch.mm(block, r32.T, out=score_space[: block.shape[0]])
        out[start : start + rows] = k_nearest_from_scores(
            score, block_sq, ref_sq, q[start : start + rows], r, k,
            start if leave_one_out else None, memory_mb)
    return finite_result(out)


def nearest_distances_in_subsets(
    queries: ArrayLike,
    references: ArrayLike,
    k: int,
    tasks,
    *,
    centre: bool = True,
    memory_mb: float = 64.0,
    device: str | torch.device | None = None,
) -> list[np.ndarray]:
    """Several :func:`nearest_distances` among subsets of the same points from one GEMM.

    ``tasks``: (query_rows, reference_columns, leave_one_out) triples; each answer equals
    ``nearest_distances(queries[query_rows], references[reference_columns], k, leave_one_out=...)``
    (leave-one-out: the i-th query is the i-th reference of its subset). REMA's null control asks
    for five random halvings of the correct samples, each half against the other and against
    itself: all are blocks of one correct-by-correct product, computed once here instead of
    ten times (it was ~40 % of a whole analysis). Where the product would exceed ``memory_mb``
    the tasks are run one by one.
    """
    q, r = matching_matrices(queries, references)
    tasks = [(torch.as_tensor(np.asarray(rows, dtype=np.int64)),
              torch.as_tensor(np.asarray(columns, dtype=np.int64)), bool(leave_one_out))
             for rows, columns, leave_one_out in tasks]
    for rows, columns, leave_one_out in tasks:
        checked_k(k, columns.shape[0] - (1 if leave_one_out else 0), leave_one_out)
        if leave_one_out and rows.shape[0] != columns.shape[0]:
            raise ValueError("a leave-one-out task needs as many query rows as reference columns")
    if 4 * q.shape[0] * r.shape[0] > memory_mb * 2**20:
        return [nearest_distances(q[rows], r[columns], k, leave_one_out=leave_one_out,
                                  centre=centre, memory_mb=memory_mb, device=device)
                for rows, columns, leave_one_out in tasks]
    dev = choose_device(device)
    q, r = q.to(dev), r.to(dev)
    r32, ref_sq, offset = centred_float32_references(r, centre, dev)
    q32 = shift_to_float32(q, offset, dev)
    q_sq = finite_squared_norms(q32)
    score = torch.mm(q32, r32.T)
    results = []
    for rows, columns, leave_one_out in tasks:
        rows, columns = rows.to(dev), columns.to(dev)
        distances = k_nearest_from_scores(
            score[rows][:, columns], q_sq[rows], ref_sq[columns], q[rows], r[columns], k,
            0 if leave_one_out else None, memory_mb)
        results.append(finite_result(distances))
    return results


def finite_result(distances: torch.Tensor) -> np.ndarray:
    result = distances.cpu().numpy()
    if not np.isfinite(result).all():  # a NaN or inf anywhere in the inputs ends up here
        raise ValueError(NOT_FINITE.format(name="queries or references"))
    return result


def k_nearest_from_scores(score, block_sq, ref_sq, queries, references, k: int,
                          skip_from: int | None, memory_mb: float) -> torch.Tensor:
    """The exact k smallest distances of each query, sorted (float64, rows x k), from the float32
    products ``score`` = q.r of the shifted points (steps 2-4 of the module docstring).

    ``block_sq``/``ref_sq``: squared norms of the shifted queries (a column) and references;
    ``queries``/``references``: the original rows, for exact recomputation; ``skip_from``: with
    leave-one-out, query i is reference ``skip_from + i``.
    """
    available = references.shape[0] - (0 if skip_from is None else 1)
    # q.r - |r|^2 / 2 is larger for nearer references (|q|^2 is constant per row); a few more
    # candidates than asked: the gap to them shows whether the choice is certain
    bias = -0.5 * ref_sq
    n_candidates = min(k + EXTRA_CANDIDATES, available)
    best, nearest = largest_with_bias(score, bias, n_candidates, skip_from)
    squared, order = torch.sort((block_sq - 2.0 * best).clamp_(min=0.0).double(), dim=1)
    nearest = torch.gather(nearest, 1, order)
    # E: how far any computed squared distance of the row can be from the exact one
    error = expansion_error_factor(references.shape[1]) * (
        block_sq[:, 0].double() + float(ref_sq.max()))
    exact, beyond = settle_near_ties(squared, nearest, error, k, queries, references, memory_mb)
    squared, nearest = squared[:, :k], nearest[:, :k]
    cancelled = (block_sq + ref_sq[nearest]).double() > CANCELLATION_RATIO * squared
    # rows settled beyond the candidates are recomputed whole below, from their computed c_k
    pair_rows, pair_cols = torch.nonzero(cancelled & ~exact & ~beyond.unsqueeze(1), as_tuple=True)
    squared[pair_rows, pair_cols] = exact_squared(
        queries, references, pair_rows, nearest[pair_rows, pair_cols], memory_mb)
    if n_candidates < available and bool(beyond.any()):
        rows_left = torch.nonzero(beyond).squeeze(1)
        approx = block_sq[rows_left] - 2.0 * (score[rows_left] + bias)
        if skip_from is not None:  # a point is never its own neighbour
            approx[torch.arange(rows_left.shape[0], device=approx.device),
                   skip_from + rows_left] = float("inf")
        squared[rows_left] = exact_k_smallest_in_band(
            queries[rows_left], references, approx,
            squared[rows_left, k - 1] + 2.0 * error[rows_left], k, memory_mb)
    return torch.sort(squared, dim=1).values.sqrt_()


#: The selection kernel needs at least this many groups per kept value (otherwise torch.topk).
KERNEL_MIN_GROUPS = 4

#: Columns per group of the selection kernel (:data:`explorer.manifold.knn_kernels.GROUP`).
GROUP = 16


def largest_with_bias(score: torch.Tensor, bias: torch.Tensor, k: int, skip_from: int | None):
    """The k largest of ``score[i, j] + bias[j]`` in each row and their columns (unordered), column
    ``skip_from + i`` left out of row i when ``skip_from`` is given (leave-one-out).

    On the CPU one pass of a numba kernel (:func:`explorer.manifold.knn_kernels.largest_with_bias`)
    adds the bias while it selects: the GEMM's output is read once and never written again (adding
    the bias in place and ``torch.topk`` read it three times and wrote it once, 22 ms of 2000 x
    5000 against 10 ms now, CPU time under load). On a GPU ``torch.topk`` is fast, and so it is
    on the CPU for rows too short to cut into :data:`KERNEL_MIN_GROUPS` k groups (there the
    kernel's threshold would let most entries through).
    """
    if score.device.type != "cpu" or score.shape[1] < KERNEL_MIN_GROUPS * GROUP * k:
        biased = score + bias
        if skip_from is not None:
            rows = torch.arange(min(score.shape[0], score.shape[1] - skip_from), device=score.device)
            biased[rows, skip_from + rows] = -float("inf")
        return torch.topk(biased, k, dim=1, largest=True, sorted=False)
    from .knn_kernels import largest_with_bias as kernel  # numba loads at the first kNN

    values = np.empty((score.shape[0], k), dtype=np.float32)
    columns = np.empty((score.shape[0], k), dtype=np.int64)
    kernel(score.numpy(), bias.numpy(), -1 if skip_from is None else skip_from, values, columns)
    return torch.from_numpy(values), torch.from_numpy(columns)


NOT_FINITE = "{name} contain NaN or infinite values; clean or drop those samples first"

#: A chosen pair's distance is recomputed directly when |q|^2 + |r|^2 exceeds this many times its
#: squared distance: there the expanded form has cancelled most of its float32 digits. Below it the
#: distances from the expansion stay within 1e-6 relative of float64, about 2e-7 measured at
#: d = 64, 896 and 4096 (tests/manifold/test_manifold_knn.py asserts 1e-6).
CANCELLATION_RATIO = 16.0

#: lambda of the probabilistic rounding-error bound (Higham & Mary 2019, Theorem 3.1): a float32 dot
#: product of length d errs by more than lambda sqrt(d) u sum |x_i y_i| with probability at most
#: 2 d exp(-lambda^2 / 2) (3e-18 at d = 8192 for lambda = 10).
ROUNDING_LAMBDA = 10.0

#: Unit roundoff of a float32 matrix product at each of torch's float32 matmul precisions: IEEE
#: single, TensorFloat-32 ("high", GPUs) and bfloat16 ("medium").
MATMUL_UNIT_ROUNDOFF = {"highest": 2.0**-24, "high": 2.0**-11, "medium": 2.0**-8}


def expansion_error_factor(dim: int) -> float:
    """c such that a squared distance from the float32 expansion of centred points is within
    c (|q|^2 + |r|^2) of the exact one.

    |q|^2, |r|^2 and 2 q.r each err by at most lambda sqrt(d) u times their terms (Higham & Mary
    2019, "A new approach to probabilistic rounding error analysis", SIAM J. Sci. Comput. 41(5)),
    together 2 lambda sqrt(d) u (|q|^2 + |r|^2); rounding the centred points to float32 moves a
    squared distance by at most 4u (|q|^2 + |r|^2), and the final sums add 4u more.
    """
    u = MATMUL_UNIT_ROUNDOFF.get(torch.get_float32_matmul_precision(), 2.0**-8)
    return (2.0 * ROUNDING_LAMBDA * dim**0.5 + 8.0) * u


def settle_near_ties(squared, nearest, error, k: int, queries, references, memory_mb: float):
    """Make the first k columns the exact k nearest where the candidates decide it.

    ``squared``/``nearest``: each row's candidates, sorted by computed squared distance c, and
    ``error`` E per row. With c_k the k-th value, a candidate with c < c_k - 2E is surely among the
    k nearest (its exact value is below that of every reference with c >= c_k, and fewer than k
    have c < c_k); one with c > c_k + 2E surely is not. The ambiguous ones in between are computed
    exactly and the k nearest completed with the smallest of them. Rows whose ambiguous band may
    reach past the last candidate are left to the caller (``beyond``). Returns ``exact`` (rows x k,
    True where the column now holds an exact value) and ``beyond``.
    """
    n_rows, n_candidates = squared.shape
    exact = torch.zeros((n_rows, k), dtype=torch.bool, device=squared.device)
    if n_candidates == k:  # every reference is a neighbour: nothing to decide
        return exact, torch.zeros(n_rows, dtype=torch.bool, device=squared.device)
    low = (squared[:, k - 1] - 2.0 * error).unsqueeze(1)
    high = (squared[:, k - 1] + 2.0 * error).unsqueeze(1)
    beyond = squared[:, -1] <= high[:, 0]
    tied = (squared[:, k] <= high[:, 0]) & ~beyond
    if not bool(tied.any()):
        return exact, beyond
    rows = torch.nonzero(tied).squeeze(1)
    band = (squared[rows] >= low[rows]) & (squared[rows] <= high[rows])
    at_row, at_col = torch.nonzero(band, as_tuple=True)
    exact_values = torch.full((rows.shape[0], n_candidates), float("inf"), dtype=torch.float64,
                              device=squared.device)
    exact_values[at_row, at_col] = exact_squared(
        queries[rows], references, at_row, nearest[rows][at_row, at_col], memory_mb)
    sure = (squared[rows] < low[rows]).sum(dim=1, keepdim=True)  # a prefix: the rows are sorted
    column = torch.arange(k, device=squared.device).unsqueeze(0)
    smallest = torch.sort(exact_values, dim=1).values
    completed = torch.gather(smallest, 1, (column - sure).clamp(min=0))
    squared[rows, :k] = torch.where(column < sure, squared[rows, :k], completed)
    exact[rows] = column >= sure
    return exact, beyond


#: Largest temporary of :func:`exact_squared` in bytes (GPU path).
EXACT_STEP_BYTES = 1 << 21


#: Below this many coordinates in all (pairs x dim) :func:`exact_squared` gathers the pairs in
#: NumPy (2 MB temporaries, about a millisecond): loading numba (0.6-0.9 s, once per kernel) pays
#: only above it. The default synthetic analysis stays under it (at most ~97,000 per call).
KERNEL_MIN_ENTRIES = 1 << 18


def few_exact_squared(queries: np.ndarray, references: np.ndarray, rows: np.ndarray,
                      cols: np.ndarray) -> torch.Tensor:
    """:func:`exact_squared` for a few pairs, in NumPy: each coordinate's difference taken in
    float64 (exact for float32 data and for close float64 points), the squares summed in float64
    (the same values as the numba kernel's up to the order of that sum, ~d 1e-16 relative)."""
    difference = queries[rows].astype(np.float64) - references[cols].astype(np.float64)
    return torch.from_numpy(np.einsum("ij,ij->i", difference, difference))


def exact_squared(queries, references, rows, cols, memory_mb: float = 64.0) -> torch.Tensor:
    """||queries[rows] - references[cols]||^2 in float64 from the original (uncentred) data.

    The difference is exact for close points (Sterbenz), so no digit is lost however far the pair
    sits from the origin; the squares add up in float64. On the CPU a numba kernel reads the two
    rows of each pair once (:func:`explorer.manifold.knn_kernels.pair_squared_distances`; at
    d = 4096, 1234 pairs took 69 ms CPU as torch gathers in 64 MB steps, whose fresh blocks
    page-faulted); fewer than :data:`KERNEL_MIN_ENTRIES` coordinates in all are gathered in
    NumPy instead (:func:`few_exact_squared`), sparing numba's load. Elsewhere the difference is taken in the data's own precision, in steps
    of at most :data:`EXACT_STEP_BYTES` of temporaries.
    """
    if queries.device.type == "cpu" and rows.shape[0] * queries.shape[1] < KERNEL_MIN_ENTRIES:
        return few_exact_squared(queries.numpy(), references.numpy(), rows.numpy(), cols.numpy())
    if queries.device.type == "cpu":
        from .knn_kernels import pair_squared_distances

        out = np.empty(rows.shape[0], dtype=np.float64)
        pair_squared_distances(queries.numpy(), references.numpy(),
                               rows.contiguous().numpy(), cols.contiguous().numpy(), out)
        return torch.from_numpy(out)
    out = torch.empty(rows.shape[0], dtype=torch.float64, device=queries.device)
    row_bytes = 8 * queries.shape[1]
    step = max(1, int(min(memory_mb * 2**20 / 1.5, EXACT_STEP_BYTES) // row_bytes))
    for at in range(0, rows.shape[0], step):
        diff = (queries[rows[at : at + step]] - references[cols[at : at + step]]).double()
        out[at : at + step] = (diff * diff).sum(dim=1)
    return out


def exact_k_smallest_in_band(queries, references, approx, upper, k: int, memory_mb: float):
    """The k smallest exact squared distances of each query, for rows whose float32 choice was
    uncertain (a near tie at the k-th neighbour).

    ``approx``: the float32 expansion's squared distances to every reference (rows x references);
    ``upper``: per row, the k-th computed value plus twice the error bound E. Every true k nearest
    reference has a computed value <= the k-th exact distance + E <= ``upper``, so the band
    approx <= upper holds them all; only the band is recomputed exactly.
    """
    rows, cols = torch.nonzero(approx <= upper.to(approx.dtype).unsqueeze(1), as_tuple=True)
    exact = exact_squared(queries, references, rows, cols, memory_mb)
    width = int(torch.bincount(rows, minlength=queries.shape[0]).max())
    table = torch.full((queries.shape[0], width), float("inf"), dtype=torch.float64,
                       device=queries.device)
    first_of_row = torch.searchsorted(rows, rows, right=False)  # rows come sorted from nonzero
    table[rows, torch.arange(rows.shape[0], device=rows.device) - first_of_row] = exact
    return torch.topk(table, k, dim=1, largest=False, sorted=False).values


def squared_norms(x: torch.Tensor) -> torch.Tensor:
    """|x_i|^2 for each row, without an x-sized temporary (relative error ~3e-7 in float32)."""
    return torch.linalg.vector_norm(x, dim=1).square_()


def knn_distances(
    queries: ArrayLike,
    references: ArrayLike,
    k: int = 5,
    *,
    leave_one_out: bool = False,
    centre: bool = True,
    memory_mb: float = 64.0,
    device: str | torch.device | None = None,
) -> np.ndarray:
    """Each query's mean Euclidean distance to its k nearest references: shape (n_queries,).

    This is REMA's deviation score (Li et al. 2025, "REMA: A Unified Reasoning Manifold Framework
    for Interpreting Large Language Model", arXiv:2509.22518, the kNN deviation D_j): with ``leave_one_out=True`` and
    the correct samples as both queries and references, it is the baseline "internal fluctuation".
    """
    distances = nearest_distances(
        queries, references, k, leave_one_out=leave_one_out, centre=centre,
        memory_mb=memory_mb, device=device,
    )
    return distances.astype(np.float64).mean(axis=1)
