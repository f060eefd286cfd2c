"""Training and sampling: batched = separate, divergence is caught, the flow learns, OT is
straighter, solvers agree with closed forms, pruning rejects exactly its cap."""

import numpy as np
import pytest
import torch
from scipy.linalg import expm

from explorer.flows import sample, source, target, train, w2
from explorer.flows.compute import (
    DATA_DIR,
    evaluate,
    load_models,
    model_straightness,
    pair_crossings,
    reference,
    save_models,
)
from explorer.flows.sampling import Pruning, integrate, pruned_draw, pruning_for
from explorer.flows.sources import Source, make_source
from explorer.flows.targets import get_target
from explorer.flows.training import FlowModel, TrainingDiverged, TrainSettings, train_many


def test_a_batched_grid_trains_each_model_exactly_as_if_alone():
    settings = TrainSettings(iters=25, batch_size=64, seed=3)
    slots = [
        (make_source("gaussian", "moons", 3), "independent"),
        (make_source("uniform", "moons", 3), "ot"),
        (make_source("learned", "moons", 3), "independent"),
    ]
    together = train_many("moons", slots, settings)
    for slot, joint in zip(slots, together, strict=True):
        alone = train_many("moons", [slot], settings)[0]
        for a, b in zip(alone.weights + alone.biases, joint.weights + joint.biases, strict=True):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(alone.history, joint.history, rtol=1e-4)


def test_a_diverging_run_is_stopped_with_a_sentence():
    def broken(n, gen):
        x = torch.randn(n, 2, generator=gen)
        x[0, 0] = float("nan")
        return x

    with pytest.raises(TrainingDiverged, match="diverged at iteration 1.*lower the learning rate"):
        train("moons", broken, iters=5, batch_size=32)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"batch_size": 0}, "batch_size must be a positive integer"),
        ({"iters": -1}, "iters must be a positive integer"),
        ({"coupling": "sinkorn"}, "unknown coupling 'sinkorn'"),
        ({"learning_rate": 2.0}, "learning_rate must be between 0 and 1"),
    ],
)
def test_bad_training_settings_are_refused(changes, message):
    kwargs = {"iters": 2, "batch_size": 16, **changes}
    with pytest.raises(ValueError, match=message):
        train("moons", "gaussian", **kwargs)


def test_a_trained_model_is_much_closer_to_the_target_than_its_source():
    model = train("moons", "gaussian", "ot", iters=300, batch_size=128, seed=0)
    ref = reference("moons")
    generated = sample(model, 512, steps=8, solver="midpoint", seed=1)
    source_w2 = w2(source("gaussian", 512, 1), ref.eval_a)
    assert w2(generated, ref.eval_a) < 0.5 * source_w2


def _linear_model(a: np.ndarray) -> FlowModel:
    """v(x, t) = A x: one linear layer, whose flow is x(1) = expm(A) x(0)."""
    w = torch.zeros(3, 2, dtype=torch.float64)
    w[:2] = torch.tensor(a.T)
    return FlowModel(
        [w],
        [torch.zeros(2, dtype=torch.float64)],
        "moons",
        make_source("gaussian"),
        "independent",
        {},
    )


def test_solvers_against_the_exact_linear_flow():
    a = np.array([[-0.5, 1.0], [-1.0, -0.2]])
    model = _linear_model(a)
    x0 = torch.randn(10, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    exact = x0 @ torch.tensor(expm(a).T)
    euler = x0 @ torch.tensor(np.linalg.matrix_power(np.eye(2) + a / 8, 8).T)
    torch.testing.assert_close(integrate(model, x0, 8, "euler").points[-1], euler)
    errors = {
        s: (integrate(model, x0, 8, s).points[-1] - exact).abs().max().item()
        for s in ("euler", "midpoint", "rk4")
    }
    assert errors["rk4"] < 1e-5 < errors["midpoint"] < errors["euler"]
    adaptive = integrate(model, x0, 4, "dopri5")
    assert (adaptive.points[-1] - exact).abs().max() < 1e-4 and adaptive.nfe > 6
    assert integrate(model, x0, 8, "rk4").nfe == 32


def _farthest_from_data(x, target_name):
    """Independent reference: the angle from each point to its nearest data direction, by
    brute force over every data point (float64 cosines)."""
    from explorer.flows.sources import fit_data

    data = fit_data(target_name)[0]
    unit = data / np.linalg.norm(data, axis=1, keepdims=True)
    xs = x.double().numpy()
    cosines = (xs / np.linalg.norm(xs, axis=1, keepdims=True)) @ unit.T
    return np.arccos(np.clip(cosines.max(1), -1, 1))


@pytest.mark.parametrize("tau", [0.7, 0.8, 0.866, 0.95, 0.99])
def test_pruning_rejects_exactly_the_data_sparse_directions(tau):
    pruning = pruning_for("hd_simulation", tau)
    x = make_source("gaussian").sample(20_000, torch.Generator().manual_seed(0))
    angle = _farthest_from_data(x, "hd_simulation")
    rejected = pruning.rejects(x).numpy()
    clear = np.abs(angle - np.arccos(tau)) > 1e-9  # away from the boundary itself
    assert np.array_equal(rejected[clear], angle[clear] > np.arccos(tau))
    kept = pruned_draw(make_source("gaussian"), pruning, 3000, torch.Generator().manual_seed(1))
    assert len(kept) == 3000
    assert _farthest_from_data(kept, "hd_simulation").max() <= np.arccos(tau) + 1e-9
    assert not pruning.rejects(target("hd_simulation", 5000, 0)).any()  # the data stay


@pytest.mark.parametrize("tau", [0.6, 0.8, 0.95, 0.99])
def test_the_pruned_share_is_the_measure_of_the_pruned_directions(tau):
    """Independent reference: the share of a fine uniform grid of directions that lies farther
    than acos(tau) from every data direction (brute force)."""
    from explorer.flows.sampling import pruned_mass

    pruning = pruning_for("hd_simulation", tau)
    grid = np.linspace(-np.pi, np.pi, 200_000, endpoint=False)
    directions = torch.tensor(np.stack([np.cos(grid), np.sin(grid)], 1))
    brute = (_farthest_from_data(directions, "hd_simulation") > np.arccos(tau)).mean()
    assert pruning.pruned_share_of_directions() == pytest.approx(brute, abs=2e-5)
    share, exact = pruned_mass(make_source("gaussian"), pruning)
    assert exact and share == pruning.pruned_share_of_directions()
    estimate, exact = pruned_mass(make_source("uniform"), pruning)  # a box: not symmetric
    uniform = make_source("uniform").sample(400_000, torch.Generator().manual_seed(3))
    assert not exact
    assert estimate == pytest.approx(pruning.rejects(uniform).double().mean().item(), abs=0.015)


def test_pruning_a_source_that_misses_the_pruned_directions_is_refused():
    directional = make_source("directional", "hd_simulation", 0, tau=0.95)
    pruning = pruning_for("hd_simulation", 0.9)
    with pytest.raises(ValueError, match="no mass in the pruned directions"):
        pruned_draw(directional, pruning, 10, torch.Generator().manual_seed(0))
    moons = pruning_for("moons", 0.99)  # the moons' directions leave no gap of 16 degrees
    with pytest.raises(ValueError, match="nothing to prune. The widest gap"):
        pruned_draw(make_source("gaussian"), moons, 10, torch.Generator().manual_seed(0))
    west = Source("uniform", {}, lambda n, gen: torch.tensor([[-1.0, 0.0]]).repeat(n, 1))
    with pytest.raises(ValueError, match="nothing would be left"):
        pruned_draw(west, Pruning(np.array([0.0]), 0.5), 10, torch.Generator().manual_seed(0))


def test_weights_round_trip_through_npz(tmp_path):
    model = train("moons", "learned", "ot", iters=5, batch_size=32)
    loaded = load_models(save_models([model], tmp_path / "m.npz"))[0]
    assert loaded.source.name == "learned" and loaded.coupling == "ot"
    torch.testing.assert_close(loaded.source.learned.radius, model.source.learned.radius)
    x = torch.randn(50, 2)
    torch.testing.assert_close(
        loaded.velocity(x, 0.3), model.velocity(x, 0.3), rtol=2e-2, atol=2e-2
    )  # float16 storage


def _shipped_moons():
    path = DATA_DIR / "grid_moons.npz"
    if not path.exists():
        pytest.skip("the shipped moons grid is not built yet")
    models = {(m.source.name, m.coupling): m for m in load_models(path)}
    return models[("gaussian", "independent")], models[("gaussian", "ot")]


def _ot_beats_independent(independent, ot):
    assert pair_crossings(ot) < 0.5 * pair_crossings(independent)
    assert model_straightness(ot) < model_straightness(independent)
    for steps in (1, 2, 3, 4):
        w_ot = evaluate(ot, steps, "euler").scores.w2
        w_ind = evaluate(independent, steps, "euler").scores.w2
        assert w_ot < w_ind, f"{steps} Euler steps: OT {w_ot:.3f} vs independent {w_ind:.3f}"


def test_ot_coupling_is_straighter_and_better_at_few_steps_shipped_weights():
    _ot_beats_independent(*_shipped_moons())


@pytest.mark.slow
def test_ot_coupling_is_straighter_and_better_at_few_steps_short_retraining():
    models = [
        train("moons", "gaussian", c, iters=400, batch_size=256, seed=1) for c in ("independent", "ot")
    ]
    _ot_beats_independent(*models)


@pytest.mark.slow
def test_the_learned_source_collapses_without_the_variance_regulariser():
    def sigma(var_reg):
        model = train(
            "8gaussians", "learned", iters=800, seed=0, source_options={"var_reg": var_reg}
        )
        return torch.exp(model.source.learned.log_sigma).mean().item()

    assert sigma(0.0) < 0.15 < 0.4 < sigma(1.0)


# ----- the learned source, couplings within conditions, shared data streams (issue 14) --------


def _cluster_means(learned):
    """Independent reference: the mean of the fitted data in each cluster, clusters by nearest
    centroid computed in numpy."""
    from explorer.flows.sources import fit_data

    data = fit_data("moons")[0]
    centroids = learned.centroids.numpy().astype(np.float64)
    labels = ((data[:, None] - centroids[None]) ** 2).sum(-1).argmin(1)
    return np.stack([data[labels == c].mean(0) for c in range(len(centroids))])


def _cosines(a, b):
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


@pytest.mark.parametrize("coupling", ["independent", "ot"])
def test_the_learned_source_turns_each_mean_towards_its_cluster(coupling):
    model = train("moons", "learned", coupling, iters=300, batch_size=128, seed=0)
    learned = model.source.learned
    assert (learned.radius > 0).all()
    cos = _cosines(learned.mu.numpy().astype(np.float64), _cluster_means(learned))
    assert (cos > 0.5).all(), cos


def test_pairs_within_conditions_are_the_optimum_of_each_condition():
    """Independent reference: scipy's assignment of each condition's points on their own."""
    from scipy.optimize import linear_sum_assignment

    from explorer.flows.couplings import ot_permutation, pair_within_conditions

    rng = np.random.default_rng(4)
    x0, x1 = torch.tensor(rng.normal(size=(90, 2))), torch.tensor(rng.normal(size=(90, 2)))
    condition = torch.tensor(rng.integers(0, 3, 90))
    j = pair_within_conditions(ot_permutation, x0, x1, condition)
    assert sorted(j) == list(range(90))
    assert (condition[j] == condition).all()
    for c in range(3):
        members = np.flatnonzero(condition.numpy() == c)
        cost = ((x0.numpy()[members, None] - x1.numpy()[None, members]) ** 2).sum(-1)
        best = cost[np.arange(len(members)), linear_sum_assignment(cost)[1]].sum()
        ours = ((x0.numpy()[members] - x1.numpy()[j[members]]) ** 2).sum()
        assert ours == pytest.approx(best, rel=1e-12)


@pytest.mark.parametrize("coupling", ["ot", "sinkhorn"])
def test_coupled_pairs_of_the_learned_source_keep_their_condition(coupling):
    from explorer.flows.couplings import make_pairing
    from explorer.flows.training import data_stream, draw_pairs, source_stream

    src = make_source("learned", "moons", 0)
    pairing = make_pairing(coupling, np.random.default_rng(0))
    x0, x1, condition = draw_pairs(src, get_target("moons"), 256, data_stream(0, "cpu"),
                                   source_stream(0, "cpu"), pairing)
    assert (src.learned.condition(x1) == condition).all()


@pytest.mark.parametrize("pair_reuse", [1, 2])
def test_every_model_of_a_grid_sees_the_same_data_batches_and_times(pair_reuse):
    """The claim of training.py, checked by recording what each model's data stream gives."""
    seen = []

    def recorded(n, gen):
        x = get_target("moons").sample(n, gen)
        seen.append((x.clone(), gen.get_state().clone()))
        return x

    names = ["gaussian", "hd_gaussian", "directional", "density_approx", "learned", "uniform"]
    slots = [(make_source(name, "moons", 0), coupling)
             for name in names for coupling in ("independent", "ot")]
    settings = TrainSettings(iters=6, batch_size=64, seed=0, pair_reuse=pair_reuse)
    train_many(recorded, slots, settings)
    assert len(seen) == len(slots) * (6 // pair_reuse)
    for start in range(0, len(seen), len(slots)):
        first_x, first_state = seen[start]
        for x, state in seen[start + 1:start + len(slots)]:
            torch.testing.assert_close(x, first_x, rtol=0, atol=0)
            assert torch.equal(state, first_state)


@pytest.mark.parametrize("grid", ["grid_moons.npz", "grid_hd_simulation.npz", "preset_models.npz"])
def test_every_shipped_learned_source_points_its_means_at_their_clusters(grid):
    from explorer.flows.sources import fit_data

    for model in load_models(DATA_DIR / grid):
        learned = model.source.learned
        if learned is None:
            continue
        data = fit_data(model.target)[0]
        centroids = learned.centroids.numpy().astype(np.float64)
        labels = ((data[:, None] - centroids[None]) ** 2).sum(-1).argmin(1)
        means = np.stack([data[labels == c].mean(0) for c in range(len(centroids))])
        assert (learned.radius > 0).all()
        assert (_cosines(learned.mu.numpy().astype(np.float64), means) > 0.8).all(), model.name
