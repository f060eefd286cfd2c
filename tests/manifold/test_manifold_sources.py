"""Synthetic source, the .npz loader and its validation, pooling over generation steps."""

import numpy as np
import pytest
import torch

from explorer.manifold import Representations, load_npz, save_npz, synthetic
from explorer.manifold.sources import pool_steps


def test_synthetic_shapes_labels_and_seed():
    reps = synthetic(n_layers=5, dim=20, manifold_dim=3, n_correct=30, n_error=10, diverge_at=2)
    layers, correct = reps
    assert len(layers) == 5 and all(x.shape == (40, 20) and x.dtype == np.float32 for x in layers)
    assert correct.sum() == 30 and (~correct).sum() == 10
    again = synthetic(n_layers=5, dim=20, manifold_dim=3, n_correct=30, n_error=10, diverge_at=2)
    np.testing.assert_array_equal(again.layers[3], reps.layers[3])
    other = synthetic(
        n_layers=5, dim=20, manifold_dim=3, n_correct=30, n_error=10, diverge_at=2, seed=1
    )
    assert not np.allclose(other.layers[3], reps.layers[3])


def test_synthetic_errors_move_only_from_the_onset():
    a = synthetic(n_layers=6, diverge_at=3, drift=2.0, seed=7)
    b = synthetic(n_layers=6, diverge_at=3, drift=0.0, seed=7)
    err = ~a.correct
    for layer in range(6):
        moved = np.linalg.norm(a.layers[layer][err] - b.layers[layer][err], axis=1)
        if layer < 3:
            assert moved.max() == 0
        else:
            assert moved.min() == pytest.approx(2.0 * (1 + 0.1 * layer) * (layer - 2), rel=1e-4)
        np.testing.assert_array_equal(a.layers[layer][~err], b.layers[layer][~err])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"n_layers": 0}, "n_layers"),
        ({"manifold_dim": 100, "dim": 50}, "manifold_dim"),
        ({"diverge_at": 20}, "diverge_at"),
        ({"seed": -1}, "seed"),
        ({"drift": -1.0}, "drift"),
    ],
)
def test_synthetic_bad_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        synthetic(**kwargs)


def test_npz_round_trip(tmp_path):
    reps = synthetic(n_layers=3, dim=8, n_correct=20, n_error=5, diverge_at=1)
    reps.final_normalised = True
    save_npz(tmp_path / "h.npz", reps)
    back = load_npz(tmp_path / "h.npz")
    assert back.layer_names == reps.layer_names and back.final_normalised
    np.testing.assert_array_equal(back.correct, reps.correct)
    for x, y in zip(back.layers, reps.layers, strict=True):
        np.testing.assert_array_equal(x, y)


def test_npz_stacked_hidden_states_and_integer_labels(tmp_path):
    stacked = np.random.default_rng(0).standard_normal((4, 10, 3))
    np.savez(tmp_path / "s.npz", hidden_states=stacked, correct=np.arange(10) % 2)
    back = load_npz(tmp_path / "s.npz")
    assert isinstance(back, Representations) and len(back.layers) == 4
    assert back.correct.dtype == bool and back.correct.sum() == 5


@pytest.mark.parametrize(
    "arrays, message",
    [
        ({"layer_0": np.zeros((4, 2))}, "no array named 'correct'"),
        ({"correct": np.ones(4, bool)}, "has no layers"),
        ({"correct": np.ones(3, bool), "layer_0": np.zeros((4, 2))}, "vector of 4 entries"),
        (
            {"correct": np.ones(4, bool), "layer_0": np.zeros((4, 2)), "layer_1": np.zeros((5, 2))},
            "layer 1 has 5 samples but layer 0 has 4",
        ),
        (
            {"correct": np.ones(4, bool), "layer_0": np.zeros((4, 2)), "layer_2": np.zeros((4, 2))},
            "without gaps",
        ),
        ({"correct": np.ones(4, bool), "layer_0": np.full((4, 2), np.nan)}, "NaN or infinite"),
        ({"correct": np.array([0, 1, 2, 1]), "layer_0": np.zeros((4, 2))}, "booleans or 0/1"),
        (
            {"correct": np.ones(4, bool), "layer_0": np.zeros((4, 2, 2))},
            "must be \\(n_samples, dim\\)",
        ),
        ({"correct": np.ones(4, bool), "layer_0": np.array([["a", "b"]] * 4)}, "must be numbers"),
        (
            {"correct": np.ones(4, bool), "hidden_states": np.zeros((4, 2))},
            "n_layers, n_samples, dim",
        ),
        (
            {
                "correct": np.ones(2, bool),
                "layer_0": np.zeros((2, 2)),
                "layer_names": np.array(["a", "b"]),
            },
            "2 names for 1 layers",
        ),
    ],
)
def test_npz_validation_errors_are_clear(tmp_path, arrays, message):
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(ValueError, match=message):
        load_npz(tmp_path / "bad.npz")


def test_npz_pickled_objects_missing_and_broken_files(tmp_path):
    np.savez(
        tmp_path / "obj.npz",
        correct=np.ones(2, bool),
        layer_0=np.array([{"a": 1}, {"b": 2}], dtype=object),
    )
    with pytest.raises(ValueError, match="Python objects"):
        load_npz(tmp_path / "obj.npz")
    with pytest.raises(ValueError, match="does not exist"):
        load_npz(tmp_path / "nothing.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not an .npz archive"):
        load_npz(tmp_path / "junk.npz")
    np.save(tmp_path / "single.npy", np.zeros(3))
    with pytest.raises(ValueError, match="single array"):
        load_npz(tmp_path / "single.npy")


def test_pooling_by_hand():
    # 1 layer, 2 samples, 3 steps, dim 1; sample 0 used 3 steps, sample 1 stopped after 2
    steps = torch.tensor([[[[1.0], [2.0], [3.0]], [[10.0], [20.0], [99.0]]]])
    used = torch.tensor([3, 2])
    assert pool_steps(steps, used, "mean_generated")[0, :, 0].tolist() == [2.0, 15.0]
    assert pool_steps(steps, used, "last_token")[0, :, 0].tolist() == [3.0, 20.0]
    # prompts of length 2 (sample 1 left-padded: one real token); the first step repeats the
    # prompt's last token, so it is not counted twice
    prompt = torch.tensor([[[[5.0], [1.0]], [[77.0], [10.0]]]])
    mask = torch.tensor([[1, 1], [0, 1]])
    got = pool_steps(steps, used, "mean_all", prompt, mask)[0, :, 0].tolist()
    assert got == pytest.approx([(5 + 1 + 2 + 3) / 4, (10 + 20) / 2])
    with pytest.raises(ValueError, match="pooling"):
        pool_steps(steps, used, "max")


def test_npz_text_file_and_non_scalar_flag_are_named(tmp_path):
    """Issue 15 item 7: a text file was "pickled (object) data"; a non-scalar final_normalised
    raised numpy's "truth value ... is ambiguous"."""
    (tmp_path / "notes.npz").write_text("layer_0,correct\n1,2\n")
    with pytest.raises(ValueError, match=r"notes.npz is not an .npz archive .*starts with b'layer_'"):
        load_npz(tmp_path / "notes.npz")
    layers = dict(correct=np.ones(4, bool), layer_0=np.zeros((4, 3)))
    for flag in (np.array([True, False]), np.array("yes"), np.array(2)):
        np.savez(tmp_path / "flag.npz", final_normalised=flag, **layers)
        with pytest.raises(ValueError, match="'final_normalised' must be one boolean"):
            load_npz(tmp_path / "flag.npz")
    np.savez(tmp_path / "flag.npz", final_normalised=np.array(1), **layers)
    assert load_npz(tmp_path / "flag.npz").final_normalised is True
