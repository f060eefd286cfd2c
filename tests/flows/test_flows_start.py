"""The app's start in two stages (inside a kernel): the first view without the W2-based numbers,
then those, exact, with no action from the learner."""

import threading

import numpy as np
import plotly.graph_objects as go

from explorer.flows import FlowsApp, compute


class HeldStart(FlowsApp):
    """A staged start whose second stage waits for ``release`` (so the test sees stage one)."""

    staged_start = True
    release = threading.Event()

    def _complete_first_view(self, report):
        assert self.release.wait(120)
        super()._complete_first_view(report)


def test_the_first_view_comes_without_w2_and_the_complete_one_follows_by_itself():
    full = FlowsApp()  # headless: complete at once
    assert full.result.complete and full.status.level == "ok"
    HeldStart.release.clear()
    app = HeldStart()
    first = app.result
    # nothing computes beside the first view while its widgets are made and sent: the second
    # stage starts once the widget is built
    assert not app.runner.busy and "computing" in app.status.text
    app.widget  # noqa: B018 - builds it
    assert not first.complete and first.noise_floor is None
    assert first.evaluation.scores is None and all(row.scores is None for row in first.rows)
    assert all(row.curve is None for row in first.rows)
    # what it does show is exactly the complete result's
    np.testing.assert_array_equal(first.evaluation.landed, full.result.evaluation.landed)
    for mine, theirs in zip(first.rows, full.result.rows, strict=True):
        np.testing.assert_array_equal(mine.samples, theirs.samples)
    first_grid = app.figures["grid"]
    grid_titles = [a.text for a in first_grid.layout.annotations]
    assert all("W2 …" in t for t in grid_titles)
    assert app.runner.busy and "computing" in app.status.text
    assert "computing" in app.figures["scores"].html
    assert "computing" in app.figures["w2_steps"].layout.title.text
    for name in ("trajectories", "velocity", "grid", "w2_steps", "training"):
        go.Figure(app.figures[name].to_dict())  # the first stage's figures are valid too
    HeldStart.release.set()
    assert app.wait_until_complete(120)
    done = app.result
    assert done.noise_floor == full.result.noise_floor
    assert done.evaluation.scores.w2 == full.result.evaluation.scores.w2
    assert [row.curve for row in done.rows] == [row.curve for row in full.result.rows]
    assert app.figures["grid"] is not first_grid  # redrawn with the W2 in every title
    assert [a.text for a in app.figures["grid"].layout.annotations] == [
        a.text for a in full.figures["grid"].layout.annotations
    ]
    assert app.figures["scores"].html == full.figures["scores"].html
    assert app.status.level == "ok"


def test_a_move_during_the_second_stage_gets_the_complete_result():
    HeldStart.release.clear()
    app = HeldStart()
    app.set(steps=4)  # the learner moves before the second stage ran: complete at once
    assert app.result.complete and app.result.evaluation.scores is not None
    HeldStart.release.set()
    assert app.wait_until_complete(120)
    assert app.params.steps == 4 and app.result.complete


def test_the_scores_without_w2_are_the_same_samples_as_the_evaluation():
    model = FlowsApp().result.model
    sampled = compute.sample_paths(model, 3, "midpoint")
    evaluated = compute.evaluate(model, 3, "midpoint")
    assert sampled.scores is None and evaluated.scores is not None
    assert np.array_equal(sampled.path.points.numpy(), evaluated.path.points.numpy())
    assert np.array_equal(sampled.landed, evaluated.landed)


def test_background_work_runs_with_the_apps_torch_threads(monkeypatch):
    """torch's thread count is per thread: a new thread starts with one per core (on busy
    shared cores 7x slower training, 20x slower scores, measured) unless it is given the app's.
    Each piece of the app's background work sets it in its own thread before computing."""
    import threading

    import torch

    calls = []
    set_threads = torch.set_num_threads

    def recording(n):
        calls.append((threading.current_thread() is threading.main_thread(), n))
        set_threads(n)

    monkeypatch.setattr(torch, "set_num_threads", recording)
    app = FlowsApp(iters=60, batch_size=64, seed=11)  # nothing trained for these settings
    count = torch.get_num_threads()

    class Staged(FlowsApp):
        staged_start = True

    calls.clear()
    assert Staged().wait_until_complete(120)
    assert (False, count) in calls  # in the runner's thread, before computing
    monkeypatch.setattr(compute, "train_grid", lambda *args, **kwargs: [])
    calls.clear()
    app.train()
    app.runner.join(120)
    assert calls[:1] == [(False, count)]


def test_a_slider_move_sends_the_trajectories_before_it_scores_the_samples(monkeypatch):
    """The selected model's scores (W2 and the rest, about a third of a steps move's compute)
    are computed when the score table, the last view, is drawn: the trajectories and the
    velocity field have gone to the browser by then. The scores are those of a direct call."""
    import explorer.ui.app as ui_app

    order = []
    real_score, real_refresh = compute.score, ui_app.refresh_view

    def recorded_score(*args, **kwargs):
        order.append("score")
        return real_score(*args, **kwargs)

    app = FlowsApp()
    app.widget  # noqa: B018 - makes the views
    names = {id(view): name for name, view in app._views.items()}

    def recorded_refresh(view, figure):
        order.append(names[id(view)])
        real_refresh(view, figure)

    monkeypatch.setattr(compute, "score", recorded_score)
    monkeypatch.setattr(ui_app, "refresh_view", recorded_refresh)
    app.set(steps=app.params.steps + 3)
    assert order.index("trajectories") < order.index("velocity") < order.index("score")
    assert order.index("score") < order.index("scores")
    evaluation, model = app.result.evaluation, app.result.model
    direct = real_score(evaluation.path.points[-1], compute.reference(model.target),
                        compute.model_straightness(model))
    assert evaluation.scores.w2 == direct.w2 and evaluation.scores.nearest == direct.nearest
