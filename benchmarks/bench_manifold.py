"""The manifold explorer: the kNN engine against scikit-learn and faiss, a whole REMA analysis,
a slider move, and (when a GPU is present) the GPU path.

Issue 6 budgets: mean distance to the 10 nearest of 5000 references for 2000 queries at d = 896
and d = 4096 at least 3x faster than scikit-learn's NearestNeighbors and no slower than faiss-cpu's
exact IndexFlatL2 (all on one thread, same run); a whole analysis (24 layers x 1000 samples x 896
dims, all views) <= 5 s on one core; a slider move <= 100 ms.

    python -m benchmarks.bench_manifold            # or: python -m explorer bench --only manifold
"""

from __future__ import annotations

import numpy as np
import torch

from benchmarks.run import median_time, print_table
from explorer.manifold import ManifoldApp, knn_distances, rema, synthetic
from explorer.manifold.figures import all_figures


def sklearn_knn(queries, references, k):
    from sklearn.neighbors import NearestNeighbors

    distances, _ = NearestNeighbors(n_neighbors=k, algorithm="brute", n_jobs=1).fit(
        references).kneighbors(queries)
    return distances.mean(axis=1)


def faiss_knn(queries, references, k):
    import faiss

    index = faiss.IndexFlatL2(references.shape[1])
    index.add(references)
    squared, _ = index.search(queries, k)
    return np.sqrt(np.maximum(squared, 0)).mean(axis=1)


def one_thread_everywhere():
    """torch, BLAS (numpy, scikit-learn) and faiss all on one thread, as the budget says."""
    torch.set_num_threads(1)
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    except ImportError:
        pass
    try:
        import faiss

        faiss.omp_set_num_threads(1)
    except ImportError:
        pass


def knn_rows(dim: int, repeats: int) -> list[dict]:
    rng = np.random.default_rng(dim)
    queries = rng.standard_normal((2000, dim), dtype=np.float32)
    references = rng.standard_normal((5000, dim), dtype=np.float32)
    ours = median_time(lambda: knn_distances(queries, references, 10, device="cpu"),
                       repeats=repeats)
    name = f"kNN mean distance, 2000 x 5000, k = 10, d = {dim} (cpu)"
    peer = median_time(lambda: sklearn_knn(queries, references, 10), repeats=repeats)
    rows = [{"benchmark": name, "ours_s": ours, "peer": "scikit-learn NearestNeighbors",
             "peer_s": peer, "budget": ">= 3x faster than scikit-learn"}]
    try:
        faiss_s = median_time(lambda: faiss_knn(queries, references, 10), repeats=repeats)
        rows.append({"benchmark": name, "ours_s": ours, "peer": "faiss-cpu IndexFlatL2",
                     "peer_s": faiss_s, "budget": "no slower than faiss"})
    except ImportError:
        rows.append({"benchmark": name + " (faiss-cpu not installed: pip install .[bench])",
                     "ours_s": ours, "peer": "", "peer_s": None, "budget": ""})
    if torch.cuda.is_available():
        q_gpu, r_gpu = torch.from_numpy(queries).cuda(), torch.from_numpy(references).cuda()

        def on_gpu():
            knn_distances(q_gpu, r_gpu, 10, device="cuda")
            torch.cuda.synchronize()

        rows.append({"benchmark": f"kNN, d = {dim}, GPU vs our CPU path",
                     "ours_s": median_time(on_gpu, repeats=repeats), "peer": "ours on cpu",
                     "peer_s": ours, "budget": "GPU faster than CPU"})
    return rows


def analysis_rows(repeats: int) -> list[dict]:
    reps = synthetic(n_layers=24, dim=896, manifold_dim=8, n_correct=700, n_error=300,
                     diverge_at=12)

    def whole():
        result = rema(reps.layers, reps.correct, layer_names=reps.layer_names, device="cpu")
        all_figures(result, 12)

    def without_svm():
        result = rema(reps.layers, reps.correct, svm=False, device="cpu")
        all_figures(result, 12)

    app = ManifoldApp()
    app.widget  # noqa: B018 - built, so every move also refreshes the displayed figure widgets
    alphas = iter(np.tile(np.linspace(1.0, 3.0, 9), 20))
    slider = median_time(lambda: app.set(alpha=float(next(alphas))), repeats=max(repeats, 7))
    layers = iter(np.tile(np.arange(12), 20))
    layer = median_time(lambda: app.set(layer=int(next(layers))), repeats=max(repeats, 7))
    ks = iter(np.tile(np.arange(3, 12), 20))
    k_move = median_time(lambda: app.set(k=int(next(ks))), repeats=max(repeats, 7))
    return [
        {"benchmark": "whole analysis, 24 layers x 1000 x 896, all views", "ours_s":
            median_time(whole, repeats=repeats, warmup=0), "budget": "<= 5 s"},
        {"benchmark": "  the same without the RBF-SVM", "ours_s":
            median_time(without_svm, repeats=repeats, warmup=0), "budget": ""},
        {"benchmark": "app: alpha slider move (statistics + 4 figures)", "ours_s": slider,
         "budget": "<= 100 ms"},
        {"benchmark": "app: layer slider move (2-D view only)", "ours_s": layer,
         "budget": "<= 100 ms"},
        {"benchmark": "app: k slider move (5 figures)", "ours_s": k_move, "budget": "<= 100 ms"},
    ]


def run(quick: bool = False) -> list[dict]:
    one_thread_everywhere()
    repeats = 3 if quick else 5
    return knn_rows(896, repeats) + knn_rows(4096, repeats) + analysis_rows(repeats)


if __name__ == "__main__":
    import sys

    print_table(run(quick="--quick" in sys.argv))
