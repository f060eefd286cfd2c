"""Notebook 03 (flows): every number its "What to try" answers state, asserted at the precision
stated, with the app in the answer's preset and the shipped weights. A number written "0.25" is
checked to +-0.005, "1.8" to +-0.05, "2.8 %" to +-0.05 %: the rounding the text uses."""

from decimal import Decimal

import numpy as np
import pytest

from explorer.flows import FlowsApp
from explorer.flows.compute import pair_crossings


def stated(value: float, text: str) -> None:
    """``value`` rounds to the number ``text`` states (half a unit of its last digit)."""
    tolerance = float(Decimal(1).scaleb(Decimal(text).as_tuple().exponent)) / 2
    assert abs(value - float(text)) <= tolerance + 1e-12, f"{value} is not {text}"


@pytest.fixture(scope="module")
def app():
    return FlowsApp()


def scores(app, preset=None, **changes):
    if preset is not None:
        app.use_preset(preset)
    if changes:
        app.set(**changes)
    return app.result.evaluation.scores


# ----- 1. two moons, 2 Euler steps ----------------------------------------------------------

INDEPENDENT = "two moons: independent coupling, 2 steps"
OT = "two moons: OT coupling, 2 steps"


@pytest.mark.parametrize(("preset", "numbers"), [
    (INDEPENDENT, {"crossings": "0.25", "straightness": "1.8", "w2": "1.43",
                   "failure_rate": "0.27", "coverage": "0.40"}),
    (OT, {"crossings": "0.01", "straightness": "1.01", "w2": "0.38", "noise_floor": "0.30"}),
])
def test_answer_1_crossings_straightness_and_two_step_scores(app, preset, numbers):
    s = scores(app, preset)
    for name, text in numbers.items():
        stated(pair_crossings(app.result.model) if name == "crossings" else getattr(s, name),
               text)


def test_answer_1_independent_samples_mostly_land_and_ot_needs_one_or_two_steps(app):
    assert scores(app, INDEPENDENT).failure_rate < 0.5  # "most land near data"
    stated(scores(app, OT, steps=1).w2, "0.41")
    stated(scores(app, OT, steps=32).w2, "0.38")


# ----- 2. norm misalignment -----------------------------------------------------------------

RING = "simulation: the high-dim Gaussian ring (wrong norm)"
ALIGNED = "simulation: norm-aligned ring"


def test_answer_2_the_norm_aligned_ring_misses_less_at_few_steps(app):
    stated(scores(app, RING, steps=2).failure_rate, "0.84")
    stated(scores(app, RING, steps=4).failure_rate, "0.43")
    stated(scores(app, ALIGNED, steps=2).failure_rate, "0.70")
    stated(scores(app, ALIGNED, steps=4).failure_rate, "0.28")
    for steps, ring_w2, aligned_w2 in ((2, "0.73", "0.62"), (4, "0.59", "0.42"),
                                       (16, "0.33", "0.24")):
        stated(scores(app, RING, steps=steps).w2, ring_w2)
        stated(scores(app, ALIGNED, steps=steps).w2, aligned_w2)
    stated(scores(app, ALIGNED).straightness, "1.8")


def test_answer_2_with_ot_the_coupling_matters_more_than_the_norm(app):
    for preset in (RING, ALIGNED):
        stated(scores(app, preset, coupling="ot", steps=16).w2, "0.23")
        stated(scores(app, preset, coupling="ot", steps=2).w2, "0.28")


# ----- 3. narrow caps -----------------------------------------------------------------------

CAPS = "simulation: narrow caps (tau 0.99)"


def test_answer_3_caps_give_each_direction_a_third_and_misplace_mass(app):
    s99 = scores(app, CAPS, steps=16)
    stated(s99.w2, "0.34")
    s90 = scores(app, CAPS, steps=16, tau=0.9)
    stated(s90.w2, "0.50")
    stated(s99.mode_masses[0], "0.055")
    stated(s90.mode_masses[0], "0.08")
    stated(s99.mode_masses[2], "0.63")
    stated(s90.mode_masses[2], "0.59")


# ----- 4. density approximation -------------------------------------------------------------

DENSITY = "simulation: density approximation (2 components)"


def test_answer_4_the_density_approximation_inherits_its_missing_mode(app):
    for steps, share in ((2, "1.2"), (4, "2.0"), (16, "3.3")):
        stated(100 * scores(app, DENSITY, steps=steps).mode_masses[0], share)
    straightness = {(row.source, row.coupling): row.scores.straightness
                    for row in app.result.rows}
    stated(straightness[("density_approx", "independent")], "2.3")
    assert straightness[("density_approx", "independent")] == max(straightness.values())


# ----- 5. pruned sampling -------------------------------------------------------------------

PRUNED = "simulation: pruned sampling"


def test_answer_5_pruning_removes_a_stated_mass_and_shifts_mass_to_the_middle_mode(app):
    scores(app, PRUNED)
    share, exact = app.result.pruned_mass
    assert exact
    stated(100 * share, "13.8")
    stated(float(np.degrees(np.arccos(0.9))), "25.8")
    for tau, text in ((0.95, "23.9"), (0.99, "40.8")):
        scores(app, PRUNED, prune_tau=tau)
        share, exact = app.result.pruned_mass
        assert exact
        stated(100 * share, text)
    pruned, unpruned = scores(app, PRUNED, steps=16), scores(app, PRUNED, steps=16, prune=False)
    for mass, text in zip(pruned.mode_masses, ("0.04", "0.38", "0.58"), strict=True):
        stated(mass, text)
    for mass, text in zip(unpruned.mode_masses, ("0.05", "0.27", "0.68"), strict=True):
        stated(mass, text)
    stated(pruned.w2, "0.57")
    stated(unpruned.w2, "0.33")
    stated(pruned.failure_rate, "0.17")
    stated(unpruned.failure_rate, "0.24")
    stated(scores(app, PRUNED, steps=4).w2, "0.42")
    stated(scores(app, PRUNED, steps=4, prune=False).w2, "0.59")


# ----- 6. the learned source ----------------------------------------------------------------

COLLAPSE = "learned source without variance regulariser"


def test_answer_6_without_the_variance_regulariser_the_source_collapses(app):
    import torch

    s = scores(app, COLLAPSE)
    sigma = torch.exp(app.result.model.source.learned.log_sigma).mean().item()
    stated(sigma, "0.01")
    assert "collapsed" in app.status.text
    stated(s.w2, "1.13")
    stated(scores(app, COLLAPSE, var_reg=1.0).w2, "0.46")
    learned = app.result.model.source.learned
    assert (learned.radius > 0).all()
