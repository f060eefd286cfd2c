"""The app headless: presets, bad input keeps the state, training through the runner."""

import numpy as np
import pytest

from explorer.flows import FlowsApp


@pytest.fixture(scope="module")
def app():
    return FlowsApp()


def test_the_default_view_is_trained_and_complete(app):
    assert app.result.trained and app.status.level == "ok"
    assert set(app.figures) == {
        "trajectories",
        "velocity",
        "grid",
        "w2_steps",
        "training",
        "scores",
    }
    assert all(row.model is not None for row in app.result.rows)


@pytest.mark.parametrize("name", list(FlowsApp.presets))
def test_every_preset_shows_a_trained_model(app, name):
    app.use_preset(name)
    assert app.result.trained, f"preset {name!r} has no shipped model"
    assert app.status.level in ("ok", "warning")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"target": "nowhere"}, "unknown target"),
        ({"source": "uniform", "target": "hd_simulation"}, "not in the grid"),
        ({"tau": 1.0}, "tau must be a cosine strictly between -1 and 1"),
        ({"prune_tau": -1.5}, "pruning tau must be a cosine"),
        ({"steps": 0}, "steps must be a positive integer"),
        ({"batch_size": -4}, "batch_size must be a positive integer"),
        ({"solver": "rk45"}, "unknown solver"),
        ({"iters": 10**12}, "iters must be at most 50,000"),  # was a MemoryError of 87.3 TiB
        ({"steps": 4000}, "steps must be at most 64"),  # blocked set() for 1.4 s
        ({"batch_size": 10**9}, "batch_size must be at most 4,096"),
        ({"components": 10**6}, "components must be at most 6"),
    ],
)
def test_bad_input_is_a_sentence_and_changes_nothing(app, changes, message):
    app.set(target="moons", source="gaussian", coupling="ot", steps=3)
    before_params, before_result = app.params, app.result
    with pytest.raises(ValueError, match=message):
        app.set(**changes)
    assert app.params == before_params and app.result is before_result
    assert app.status.level == "error" and message.split()[0] in app.status.text


def test_pruning_a_source_that_misses_the_pruned_directions_is_refused_and_state_kept(app):
    app.set(target="hd_simulation", source="directional", coupling="independent", prune=False)
    before = app.params
    with pytest.raises(ValueError, match="no mass in the pruned directions"):
        app.set(prune=True, prune_tau=0.9)
    assert app.params == before


def test_figures_are_rebuilt_only_when_their_inputs_change():
    app = FlowsApp()
    app.set(target="moons", source="gaussian", coupling="independent", steps=4)
    first = dict(app.figures)
    app.set(steps=6)  # sampling only: new paths, the same grid, W2 and training figures
    assert app.figures["trajectories"] is not first["trajectories"]
    assert all(app.figures[k] is first[k] for k in ("grid", "w2_steps", "training"))
    app.set(coupling="ot")  # another selection: redrawn (its cell is the red one)
    grid_ot = app.figures["grid"]
    assert grid_ot is not first["grid"]
    assert [np.max(t.z) == 3 for t in grid_ot.data].count(True) == 1  # the red layer
    app.set(coupling="independent")  # back again: the earlier figures, unchanged
    assert all(app.figures[k] is first[k] for k in ("grid", "w2_steps", "training"))
    app.set(target="spirals")
    assert app.figures["grid"] is not first["grid"]


@pytest.mark.slow
def test_sampling_controls_need_no_training(app):
    app.set(target="moons", source="gaussian", coupling="independent", prune=False)
    for solver in ("euler", "midpoint", "rk4", "dopri5"):
        app.set(solver=solver, steps=4, time=0.5)
        assert app.result.trained and app.result.evaluation.path.nfe > 0
    app.set(solver="euler")


@pytest.mark.slow
def test_an_untrained_setting_says_so_and_training_fills_it(app):
    app.set(target="moons", source="gaussian", coupling="ot", iters=60, batch_size=64, seed=7)
    assert not app.result.trained and "press 'Train grid'" in app.status.text
    app.train(wait=True)
    assert app.runner.outcome == "done"
    assert app.result.trained and all(row.model is not None for row in app.result.rows)
    assert len(app.result.model.history) == 60


def test_a_diverging_training_is_reported_and_the_state_kept(app, monkeypatch):
    from explorer.flows import compute
    from explorer.flows.training import TrainingDiverged

    def diverging(*args, **kwargs):
        raise TrainingDiverged("training diverged at iteration 3: the loss became NaN")

    app.set(target="moons", source="gaussian", coupling="ot", iters=70, batch_size=64, seed=8)
    before = app.params
    monkeypatch.setattr(compute, "train_grid", diverging)
    app.train(wait=True)
    assert app.runner.outcome == "failed"
    assert app.status.level == "error" and "diverged" in app.status.text
    assert app.params == before


def test_state_round_trips(app, tmp_path):
    app.set(
        target="hd_simulation",
        source="norm_aligned",
        coupling="ot",
        steps=4,
        iters=2000,
        batch_size=256,
        seed=0,
    )
    path = app.save_state(tmp_path / "flows.json")
    other = FlowsApp()
    other.load_state(path)
    assert other.params == app.params and other.result.trained



def test_a_cancelled_training_says_so_and_not_up_to_date(app, monkeypatch):
    """Cancel after the first live preview: the status names the half-trained preview."""
    app.set(target="moons", source="gaussian", coupling="ot", iters=100, batch_size=64, seed=9)
    shown = []
    original = app.show_result

    def show_then_cancel(result):
        original(result)
        shown.append(app.status.text)
        app.runner.cancel()

    monkeypatch.setattr(app, "show_result", show_then_cancel)
    app.train(wait=True)
    assert app.runner.outcome == "cancelled"
    assert shown and "preview" in shown[0] and "up to date" not in shown[0]
    assert app.status.level == "warning" and "cancelled at iteration 100 of 100" in app.status.text
    assert "half-trained preview of iteration 50" in app.status.text


def test_a_state_from_before_the_glossary_loads_and_finds_the_shipped_models():
    """Issue 17 item 3: 'lr' and 'batch' are now learning_rate and batch_size, in the app and
    in the shipped models' stored settings alike."""
    app = FlowsApp().load_state({"app": "FlowsApp", "version": 1,
                                 "params": {"target": "moons", "lr": 3e-3, "batch": 256}})
    assert (app.params.learning_rate, app.params.batch_size) == (3e-3, 256)
    assert app.result.trained and all(row.model is not None for row in app.result.rows)
