"""Where the per-layer representations come from: synthetic data with a planted divergence,
arrays from a ``.npz`` file, and the pooling shared by the model sources.

Every source returns a :class:`Representations`: one (n_samples, dim) array per layer, in the same
sample order, and a boolean vector ``correct``.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from explorer.checks import is_integer
from explorer.device import check_seed

#: How a sample's hidden states over the generation steps become one vector per layer.
POOLINGS = {
    "mean_generated": "the last position's hidden state at every generation step, averaged "
                      "over the steps (REMA's choice)",
    "last_token": "the last position's hidden state at the final generation step only; its input "
                  "is the token generated one step before the last (the last generated token, "
                  "often the end token, is never fed back to the model)",
    "mean_all": "the hidden states of every prompt and generated token, averaged (no position "
                "singled out)",
}


@dataclass
class Representations:
    """Per-layer hidden states of n samples and which samples were answered correctly."""

    layers: list[np.ndarray]  # n_layers arrays of shape (n_samples, dim)
    correct: np.ndarray  # (n_samples,) bool
    layer_names: list[str]
    final_normalised: bool = False  # the last layer is the model's final (layer-)normalised output
    source: str = ""
    details: dict = field(default_factory=dict)  # ground truth, texts, settings of the source

    def __iter__(self):  # ``layers, correct = synthetic(...)``
        return iter((self.layers, self.correct))

    @property
    def n_samples(self) -> int:
        return int(self.correct.shape[0])


def orthonormal_columns(rng: np.random.Generator, rows: int, cols: int) -> np.ndarray:
    """A random (rows, cols) matrix with orthonormal columns."""
    q, _ = np.linalg.qr(rng.standard_normal((rows, cols)))
    return q


def synthetic(
    n_layers: int = 12,
    dim: int = 128,
    manifold_dim: int = 4,
    n_correct: int = 600,
    n_error: int = 200,
    diverge_at: int = 6,
    seed: int = 0,
    *,
    drift: float = 2.0,
    noise: float = 0.01,
) -> Representations:
    """Synthetic hidden states with a planted divergence layer (ground truth for REMA).

    Every sample has a latent point z ~ N(0, I_m), m = ``manifold_dim``. At layer l it sits on a
    curved m-dimensional manifold in R^dim: x = s_l B_l [z, sin(2z)/2] plus isotropic noise of
    standard deviation ``noise`` s_l per coordinate, where B_l has orthonormal columns that rotate
    a little from layer to layer and s_l grows slowly with depth (like a residual stream). Errors
    follow the same law up to layer ``diverge_at``; from there on they are pushed off the manifold
    along their own direction (half shared by all errors, half individual) by ``drift`` s_l per
    layer since the onset, so they drift further with depth. ``diverge_at = n_layers`` plants no
    divergence at all.
    """
    seed = check_seed(seed)
    for name, value, low in [("n_layers", n_layers, 1), ("dim", dim, 2),
                             ("manifold_dim", manifold_dim, 1), ("n_correct", n_correct, 2),
                             ("n_error", n_error, 0)]:
        if not is_integer(value) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    if 2 * manifold_dim > dim:
        raise ValueError(f"manifold_dim ({manifold_dim}) must be at most dim / 2 ({dim // 2})")
    if not 0 <= diverge_at <= n_layers:
        raise ValueError(f"diverge_at must be a layer from 0 to n_layers ({n_layers}), got {diverge_at}")
    if drift < 0 or noise < 0:
        raise ValueError(f"drift and noise must be >= 0, got drift={drift}, noise={noise}")

    rng = np.random.default_rng(seed)
    n = n_correct + n_error
    z = rng.standard_normal((n, manifold_dim))
    features = np.concatenate([z, 0.5 * np.sin(2.0 * z)], axis=1)
    correct = np.zeros(n, dtype=bool)
    correct[rng.permutation(n)[:n_correct]] = True
    errors = np.flatnonzero(~correct)

    shared = rng.standard_normal(dim)
    own = rng.standard_normal((errors.size, dim))
    directions = shared / np.linalg.norm(shared) + own / np.linalg.norm(own, axis=1, keepdims=True)
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)

    basis = orthonormal_columns(rng, dim, 2 * manifold_dim)
    layers = []
    for layer in range(n_layers):
        scale = 1.0 + 0.1 * layer
        x = scale * features @ basis.T + noise * scale * rng.standard_normal((n, dim))
        if layer >= diverge_at:
            x[errors] += drift * scale * (layer - diverge_at + 1) * directions
        layers.append(x.astype(np.float32))
        basis = np.linalg.qr(basis + 0.15 * rng.standard_normal(basis.shape))[0]
    return Representations(
        layers=layers, correct=correct, layer_names=[f"layer {i}" for i in range(n_layers)],
        source="synthetic",
        details={"diverge_at": diverge_at, "manifold_dim": manifold_dim, "drift": drift,
                 "noise": noise},
    )


def save_npz(path, reps: Representations) -> None:
    """Write representations in the format :func:`load_npz` reads."""
    arrays = {f"layer_{i}": a for i, a in enumerate(reps.layers)}
    np.savez_compressed(
        path, correct=reps.correct, layer_names=np.array(reps.layer_names, dtype=str),
        final_normalised=np.array(reps.final_normalised), **arrays,
    )


def load_npz(path) -> Representations:
    """Representations from a ``.npz`` file, validated (``allow_pickle=False``: no code runs).

    Format: ``correct`` (n,) bool or 0/1; the layers either as ``layer_0``, ``layer_1``, ... each
    (n, dim), or as one array ``hidden_states`` (n_layers, n, dim); optional ``layer_names``
    (n_layers strings) and ``final_normalised`` (a boolean scalar).
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"the file {str(path)!r} does not exist")
    with open(path, "rb") as file:
        start = file.read(6)
    if start == b"\x93NUMPY":
        raise ValueError(f"{path.name} holds a single array; an .npz archive with named arrays is needed")
    if not start.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        raise ValueError(f"{path.name} is not an .npz archive (a zip of named arrays, as written by "
                         f"numpy.savez); it starts with {start!r}")
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile) as error:
        raise ValueError(f"{path.name} is not a readable .npz file ({error})") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise ValueError(f"{path.name} holds a single array; an .npz archive with named arrays is needed")
    with archive:
        try:
            names = set(archive.files)
            if "correct" not in names:
                raise ValueError(f"{path.name} has no array named 'correct' (found: {sorted(names)})")
            correct = archive["correct"]
            layer_keys = sorted((k for k in names if k.startswith("layer_") and k[6:].isdigit()),
                                key=lambda k: int(k[6:]))
            if "hidden_states" in names:
                stacked = archive["hidden_states"]
                if stacked.ndim != 3:
                    raise ValueError(f"{path.name}: 'hidden_states' must be (n_layers, n_samples, dim), "
                                     f"got shape {stacked.shape}")
                layers = list(stacked)
            elif layer_keys:
                expected = [f"layer_{i}" for i in range(len(layer_keys))]
                if layer_keys != expected:
                    raise ValueError(f"{path.name}: layer arrays must be numbered layer_0 .. layer_"
                                     f"{len(layer_keys) - 1} without gaps, found {layer_keys}")
                layers = [archive[k] for k in layer_keys]
            else:
                raise ValueError(f"{path.name} has no layers: store 'layer_0', 'layer_1', ... or "
                                 f"'hidden_states' (found: {sorted(names)})")
            layer_names = ([str(s) for s in archive["layer_names"]] if "layer_names" in names
                           else [f"layer {i}" for i in range(len(layers))])
            final_normalised = (validated_flag(archive["final_normalised"], path.name)
                                if "final_normalised" in names else False)
        except ValueError as error:
            if "allow_pickle" in str(error):
                raise ValueError(f"{path.name} stores Python objects (pickled); only plain numeric "
                                 "and string arrays are accepted") from None
            raise
    return Representations(
        layers=validated_layers(layers, path.name), correct=validated_correct(correct, layers, path.name),
        layer_names=validated_names(layer_names, len(layers), path.name),
        final_normalised=final_normalised, source=f"file {path.name}",
    )


def validated_layers(layers: list, where: str) -> list[np.ndarray]:
    """Numeric, 2-D, finite layers with one sample count."""
    out = []
    for index, layer in enumerate(layers):
        a = np.asarray(layer)
        if not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)):
            raise ValueError(f"{where}: layer {index} holds {a.dtype} values; hidden states must be numbers")
        if a.ndim != 2:
            raise ValueError(f"{where}: layer {index} must be (n_samples, dim), got shape {a.shape}")
        if a.shape[0] != np.asarray(layers[0]).shape[0]:
            raise ValueError(f"{where}: layer {index} has {a.shape[0]} samples but layer 0 has "
                             f"{np.asarray(layers[0]).shape[0]}; all layers need the same samples")
        if not np.isfinite(a).all():
            raise ValueError(f"{where}: layer {index} contains NaN or infinite values")
        out.append(a.astype(np.float32, copy=False))
    return out


def validated_correct(correct: np.ndarray, layers: list, where: str) -> np.ndarray:
    """A boolean vector with one entry per sample."""
    c = np.asarray(correct)
    n = np.asarray(layers[0]).shape[0]
    if c.ndim != 1 or c.shape[0] != n:
        raise ValueError(f"{where}: 'correct' must be a vector of {n} entries (one per sample), "
                         f"got shape {c.shape}")
    if c.dtype != bool:
        if not (np.issubdtype(c.dtype, np.number) and np.isin(c, (0, 1)).all()):
            raise ValueError(f"{where}: 'correct' must hold booleans or 0/1")
        c = c.astype(bool)
    return c


def validated_flag(value: np.ndarray, where: str) -> bool:
    """One boolean (True/False or 0/1), as ``final_normalised`` must be."""
    if value.shape != () or value.dtype.kind not in "bui" or value not in (0, 1):
        raise ValueError(f"{where}: 'final_normalised' must be one boolean (True or False), got "
                         f"{value.dtype} values of shape {value.shape}")
    return bool(value)


def validated_names(names: list[str], n_layers: int, where: str) -> list[str]:
    if len(names) != n_layers:
        raise ValueError(f"{where}: 'layer_names' has {len(names)} names for {n_layers} layers")
    return names


def pool_steps(
    step_states: torch.Tensor, steps_used: torch.Tensor, pooling: str,
    prompt_states: torch.Tensor | None = None, prompt_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """One vector per (layer, sample) from per-step hidden states.

    ``step_states``: (layers, batch, steps, dim), the last position's hidden state at each
    generation step; ``steps_used``: (batch,) how many steps belong to each sample (generation
    stops at end-of-sequence). For ``mean_all``, ``prompt_states`` (layers, batch, prompt_len, dim)
    and ``prompt_mask`` (batch, prompt_len; 1 = real token, 0 = padding) add the prompt tokens.
    Returns (layers, batch, dim).
    """
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {sorted(POOLINGS)}, got {pooling!r}")
    steps = step_states.shape[2]
    mask = (torch.arange(steps)[None, :] < steps_used[:, None]).to(step_states.dtype)  # (batch, steps)
    if pooling == "last_token":
        last = (steps_used - 1).clamp(min=0)
        return step_states[:, torch.arange(step_states.shape[1]), last]
    total = (step_states * mask[None, :, :, None]).sum(dim=2)
    count = mask.sum(dim=1)
    if pooling == "mean_all":
        if prompt_states is None or prompt_mask is None:
            raise ValueError("pooling 'mean_all' needs the prompt's hidden states and mask")
        # the first step's state is the prompt's last token, already among the prompt states
        pm = prompt_mask.to(step_states.dtype)
        total = total - step_states[:, :, 0] + (prompt_states * pm[None, :, :, None]).sum(dim=2)
        count = count - 1 + pm.sum(dim=1)
    return total / count.clamp(min=1)[None, :, None]
