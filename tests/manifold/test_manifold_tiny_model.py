"""The shipped tiny transformer: the task, loading, causal hidden states, and its REMA picture."""

import numpy as np
import pytest
import torch

from explorer.manifold import rema, tiny_model_representations
from explorer.manifold.tiny_model import ChainTask, held_out_problems, load_model


@pytest.fixture(scope="module")
def shipped():
    return load_model()


def test_chain_task_by_hand():
    task = ChainTask(modulus=13)
    digits = np.array([[3, 5, 2, 12]])
    ops = np.array([[0, 2, 1]])  # 3 + 5 = 8; 8 * 2 = 16 = 3; 3 - 12 = -9 = 4  (mod 13)
    assert task.running_values(digits, ops).tolist() == [[8, 3, 4]]
    assert task.text(task.sequences(digits, ops)[0]) == "^ 3 + 5 * 2 - 12 = 8 3 4 ;"


def test_held_out_problems_are_never_trained_on():
    task = ChainTask()
    digits, ops = held_out_problems(task, 300, seed=0)
    assert task.held_out(digits, ops).all()
    assert len({tuple(r) for r in np.concatenate([digits, ops], axis=1)}) == 300
    from importlib import util
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "scripts" / "train_manifold_model.py"
    spec = util.spec_from_file_location("train_manifold_model", script)
    module = util.module_from_spec(spec)
    spec.loader.exec_module(module)
    batch = module.training_batch(task, 512, np.random.default_rng(0))
    prompts = batch[:, : task.prompt_length].numpy()
    d, o = prompts[:, 1::2], prompts[:, 2:-1:2] - task.plus
    assert not task.held_out(d[:, :4], o).any()


def test_shipped_model_is_good_but_not_perfect(shipped):
    model, task, info = shipped
    assert sum(p.numel() for p in model.parameters()) < 400_000  # weights well under 2 MB
    digits, ops = held_out_problems(task, 1000, seed=3)
    answers = model.generate(task.prompts(digits, ops), task.answer_length).numpy()
    accuracy = (answers[:, task.n_ops - 1] == task.running_values(digits, ops)[:, -1]).mean()
    assert 0.8 < accuracy < 0.99
    assert info["held_out_final_accuracy"] == pytest.approx(0.95, abs=0.03)


def test_one_pass_over_the_sequence_equals_step_by_step_states(shipped):
    model, task, _ = shipped
    digits, ops = held_out_problems(task, 5, seed=1)
    prompts = task.prompts(digits, ops)
    full = torch.cat([prompts, model.generate(prompts, task.answer_length)], dim=1)
    with torch.no_grad():
        _, states = model(full, hidden=True)
        for step in range(task.answer_length):
            end = prompts.shape[1] + step
            _, prefix_states = model(full[:, :end], hidden=True)
            for layer in range(len(states)):
                torch.testing.assert_close(
                    states[layer][:, end - 1], prefix_states[layer][:, -1], rtol=1e-5, atol=1e-5
                )


def test_representations_and_the_picture(shipped):
    reps = tiny_model_representations(1000, model=shipped)
    assert reps.layer_names[0] == "embedding" and reps.layer_names[-1] == "final norm"
    assert reps.final_normalised and len(reps.layers) == 8
    assert 20 < (~reps.correct).sum() < 200
    result = rema(
        reps.layers, reps.correct, layer_names=reps.layer_names, final_normalised=True, svm=False
    )
    # errors look like correct chains at the embedding layer and drift away in the upper blocks
    assert abs(result.auroc[0] - 0.5) < 0.1
    assert result.auroc[6] > 0.65 and result.relative_deviation[6] > 0.08
    # errors are mostly chains with the rarely trained multiplication
    has_product = (reps.details["ops"] == 2).any(axis=1)
    assert has_product[~reps.correct].mean() > 2 * has_product[reps.correct].mean()


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        load_model(tmp_path / "none.safetensors", tmp_path / "none.json")
    with pytest.raises(ValueError, match="n_problems"):
        tiny_model_representations(3)
