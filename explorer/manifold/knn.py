r"""Exact k-nearest-neighbour distances in torch: the engine under every REMA number.

The squared Euclidean distance is expanded as

    ||q - r||^2 = ||q||^2 + ||r||^2 - 2 q.r,

so the heavy work is one matrix product per chunk of queries (BLAS on the CPU, cuBLAS on a GPU).
Three details keep it exact enough to agree with a float64 brute force to 1e-5 relative:

1. **Centring.** Everything is shifted by the references' mean (computed in float64) before the
   float32 product. Hidden states of language models carry large shared offsets ("massive
   activations"); without centring, ||q||^2 and 2 q.r are huge numbers whose float32 difference
   loses the small distance that matters.
2. **Refinement.** The product *selects* the k candidates. A selected pair that is close compared
   with the two points' norms (where the expansion cancels most of its digits) is recomputed
   directly as ||q - r|| (a subtraction, no cancellation), so duplicate points get distance 0
   exactly instead of sqrt(rounding noise).
3. **Leave-one-out by index.** When queries and references are the same set, the pair (i, i) is
   made the farthest possible before the selection, so a point never counts itself but does count
   an exact duplicate of itself (dropping "the first neighbour" would drop the duplicate instead).

Memory stays bounded: queries are processed in chunks sized so that one chunk's distance block and
its refinement gather stay under ``memory_mb``.
"""

from __future__ import annotations

import numpy as np
import torch

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
    """``x - offset`` as float32 on ``dev``; the subtraction is done in x's own precision."""
    x = x.to(dev)
    if offset is not None:
        x = x - offset.to(dev, x.dtype)
    return x.to(torch.float32).contiguous()


#: At most this many queries per chunk: a 256 x 5000 block stays in cache between the product, the
#: conversion and the selection (measured fastest of 64 .. 2000 rows at d = 896 and 4096).
MAX_CHUNK_ROWS = 256


def chunk_rows(n_references: int, k: int, dim: int, memory_mb: float) -> int:
    """Queries per chunk so that the distance block and the refinement gather fit ``memory_mb``."""
    per_row_bytes = 4 * (n_references + k * dim)
    return max(1, min(MAX_CHUNK_ROWS, int(memory_mb * 2**20 // per_row_bytes)))


def nearest_distances(
    queries: ArrayLike,
    references: ArrayLike,
    k: int,
    *,
    leave_one_out: bool = False,
    centre: bool = True,
    memory_mb: float = 64.0,
    engine: str = "auto",
    device: str | torch.device | None = None,
) -> np.ndarray:
    """Distances from each query to its k nearest references, sorted ascending: shape (n_q, k).

    ``leave_one_out=True`` means queries *are* the references (same rows, same order) and query i
    must not count reference i; any other point, even an identical one, still counts.
    """
    q = as_matrix(queries, "queries")
    r = as_matrix(references, "references")
    if q.shape[1] != r.shape[1]:
        raise ValueError(
            f"queries have {q.shape[1]} features but references have {r.shape[1]}; they must match"
        )
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    available = r.shape[0] - (1 if leave_one_out else 0)
    if k > available:
        raise ValueError(
            f"k = {k} neighbours were asked for but only {available} references are available"
            + (" (leave-one-out excludes each point itself)" if leave_one_out else "")
            + "; lower k or add references"
        )
    if leave_one_out and q.shape[0] != r.shape[0]:
        raise ValueError("leave_one_out=True needs queries and references to be the same rows")

    dev = choose_device(device)
    # Any shift leaves distances unchanged; the mean only has to remove the bulk, so its own
    # rounding does not matter.
    offset = r.mean(dim=0) if centre else None
    if offset is not None and not bool(torch.isfinite(offset).all()):
        raise ValueError(NOT_FINITE.format(name="references"))
    r = shift_to_float32(r, offset, dev)
    ref_sq = squared_norms(r)
    closeness = closeness_engine(r, engine, ref_sq)
    rows = chunk_rows(r.shape[0], k, r.shape[1], memory_mb)
    out = torch.empty((q.shape[0], k), dtype=torch.float32, device=dev)
    for start in range(0, q.shape[0], rows):
        # queries are shifted chunk by chunk: no second full-size copy, and the chunk is in cache
        block = r[start : start + rows] if leave_one_out else \
            shift_to_float32(q[start : start + rows], offset, dev)
        score = closeness(block)  # q.r - |r|^2 / 2: larger is nearer (|q|^2 is constant per row)
        if leave_one_out:
            idx = torch.arange(block.shape[0], device=dev)
            score[idx, start + idx] = -float("inf")
        best, nearest = largest_k(score, k)
        block_sq = squared_norms(block).unsqueeze(1)
        squared = (block_sq - 2.0 * best).clamp_(min=0.0)
        refine_close_pairs(squared, block, block_sq, r, ref_sq, nearest)
        out[start : start + rows] = torch.sort(squared.sqrt_(), dim=1).values
    result = out.cpu().numpy()
    if not np.isfinite(result).all():  # a NaN or inf anywhere in the inputs ends up here
        raise ValueError(NOT_FINITE.format(name="queries or references"))
    return result


#: Columns per group in :func:`largest_k`'s first pass.
SELECTION_GROUP = 100


def largest_k(score: torch.Tensor, k: int, group: int = SELECTION_GROUP):
    """The k largest entries of each row and their columns (unordered), like ``torch.topk``.

    ``torch.topk`` pays per element for a copy of each row into its selection buffer; a block-max
    prefilter (the bucket idea of GPU top-k selection, e.g. Johnson, Douze & Jegou 2019,
    "Billion-scale similarity search with GPUs", section 4) lets it see a fifth of the row:
    cut each row into groups of ``group`` columns and keep the k groups with the largest maxima.
    Every other entry is at most its own group's maximum, which is at most each of the k kept
    maxima, so the row's k largest values all lie in the kept groups, plus the tail columns that
    do not fill a group, which are always kept. ``torch.topk`` then runs on those candidates.
    Ties may pick other columns than ``torch.topk`` on the whole row, never other values.
    """
    n, m = score.shape
    full = (m // group) * group
    # too few groups for the prefilter to pay off; on a GPU torch.topk is fast and was not beaten
    if full // group < 4 * k or score.device.type != "cpu":
        return torch.topk(score, k, dim=1, largest=True, sorted=False)
    groups = score[:, :full].view(n, full // group, group)
    kept = torch.topk(groups.amax(dim=2), k, dim=1, sorted=False).indices
    row = torch.arange(n, device=score.device).unsqueeze(1)
    candidates = groups[row, kept].view(n, k * group)
    if full < m:
        candidates = torch.cat([candidates, score[:, full:]], dim=1)
    values, at = torch.topk(candidates, k, dim=1, largest=True, sorted=False)
    in_group = at < k * group
    from_group = torch.gather(kept, 1, torch.where(in_group, at // group, 0)) * group + at % group
    return values, torch.where(in_group, from_group, at - k * group + full)


NOT_FINITE = "{name} contain NaN or infinite values; clean or drop those samples first"

#: A selected pair is recomputed directly when |q|^2 + |r|^2 exceeds this many times its squared
#: distance: there the expanded form has cancelled most of its float32 digits. Below it the
#: expansion keeps a relative error of about 1e-7 (measured against float64 up to d = 4096).
CANCELLATION_RATIO = 16.0


def refine_close_pairs(squared, block, block_sq, r, ref_sq, nearest) -> None:
    """Recompute, as ||q - r||^2 (no cancellation), the selected pairs that are close relative to
    their norms, e.g. duplicates, which the expansion would put at sqrt(rounding noise) > 0."""
    norms = block_sq + ref_sq[nearest]
    rows, cols = torch.nonzero(norms > CANCELLATION_RATIO * squared, as_tuple=True)
    if rows.numel():
        diff = block[rows] - r[nearest[rows, cols]]
        squared[rows, cols] = (diff * diff).sum(dim=1)


def squared_norms(x: torch.Tensor) -> torch.Tensor:
    """|x_i|^2 for each row, without an x-sized temporary (relative error ~3e-7 in float32)."""
    return torch.linalg.vector_norm(x, dim=1).square_()


def closeness_engine(r: torch.Tensor, engine: str, ref_sq: torch.Tensor | None = None):
    """A function block -> block @ r.T - |r|^2 / 2, by oneDNN or by torch.addmm.

    On the CPU, oneDNN's float32 GEMM (the kernel behind torch.utils.mkldnn, here through the
    dense-in/dense-out ``mkldnn::_linear_pointwise`` that torch.compile uses) measured about twice as fast on one core as the default BLAS route of
    ``torch.mm``; same IEEE float32 arithmetic. All tensors stay dense: packing the references
    into oneDNN's blocked layout first (``to_mkldnn``) cost a full extra copy and measured no faster,
    and a dense result needs no conversion copy of the (chunk x references) block.
    ``engine="torch"`` forces the plain route (also used on GPUs and when oneDNN is absent).
    """
    if engine not in ("auto", "onednn", "torch"):
        raise ValueError(f"engine must be 'auto', 'onednn' or 'torch', got {engine!r}")
    half_sq = -0.5 * (squared_norms(r) if ref_sq is None else ref_sq)
    use_onednn = engine == "onednn" or (
        engine == "auto" and r.device.type == "cpu" and torch.backends.mkldnn.is_available()
    )
    plain = lambda block: torch.addmm(half_sq.unsqueeze(0), block, r.T)  # noqa: E731
    if not use_onednn:
        return plain
    try:
        linear = torch.ops.mkldnn._linear_pointwise
    except (AttributeError, RuntimeError):
        if engine == "onednn":
            raise
        return plain

    def onednn(block: torch.Tensor) -> torch.Tensor:
        nonlocal linear
        if linear is None:
            return plain(block)
        try:
            return linear(block, r, half_sq, "none", [], "")
        except RuntimeError:  # an unsupported build: fall back for good, same numbers
            if engine == "onednn":
                raise
            linear = None
            return plain(block)

    return onednn


def knn_distances(
    queries: ArrayLike,
    references: ArrayLike,
    k: int = 5,
    *,
    leave_one_out: bool = False,
    centre: bool = True,
    memory_mb: float = 64.0,
    engine: str = "auto",
    device: str | torch.device | None = None,
) -> np.ndarray:
    """Each query's mean Euclidean distance to its k nearest references: shape (n_queries,).

    This is REMA's deviation score (Li et al. 2025, "A Unified Reasoning Manifold Framework for
    Interpreting Large Language Models", the kNN deviation D_j): with ``leave_one_out=True`` and
    the correct samples as both queries and references, it is the baseline "internal fluctuation".
    """
    distances = nearest_distances(
        queries, references, k, leave_one_out=leave_one_out, centre=centre,
        memory_mb=memory_mb, engine=engine, device=device,
    )
    return distances.astype(np.float64).mean(axis=1)
