"""The manifold explorer: where, layer by layer, does wrong reasoning leave the manifold of
correct reasoning? A re-implementation of REMA (Li et al. 2025) with a null control, intrinsic
dimension (TwoNN), separability and a 2-D view, on synthetic data, a tiny transformer trained by
the project, any local Hugging Face causal LM, or arrays from a file.

Public API: ``synthetic``, ``rema``, ``two_nn``, ``knn_distances``, ``ManifoldApp`` (and the
source loaders ``load_npz``, ``save_npz``, ``tiny_model_representations``, ``hf_representations``).
"""

from .geometry import pca_dimension, two_nn
from .hf import hf_representations
from .knn import knn_distances
from .rema import NEVER, RemaResult, rema
from .sources import Representations, load_npz, save_npz, synthetic
from .tiny_model import tiny_model_representations

__all__ = [
    "NEVER",
    "ManifoldApp",
    "RemaResult",
    "Representations",
    "hf_representations",
    "knn_distances",
    "load_npz",
    "pca_dimension",
    "rema",
    "save_npz",
    "synthetic",
    "tiny_model_representations",
    "two_nn",
]


def __getattr__(name):
    if name == "ManifoldApp":  # the app loads ipywidgets and plotly: imported only when asked for
        from .app import ManifoldApp

        return ManifoldApp
    raise AttributeError(f"module 'explorer.manifold' has no attribute {name!r}")
