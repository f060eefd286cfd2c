"""Each method keeps its own colour, dash and marker in every figure (issue 16 item 8): a
policy's style goes by its method, whatever the order of the selected policies."""

import pytest

from explorer.frontier import FrontierApp
from explorer.frontier import figures as frontier_figures


@pytest.fixture(scope="module")
def app():
    return FrontierApp(n_responses=500)


@pytest.mark.parametrize("compare", ["parameter", "equal_kl"])
def test_each_policy_marker_has_its_methods_colour_and_symbol(app, compare):
    app.set(compare=compare)
    expected = {"KL-RL": "kl_rl", "chi-PO": "chi_po", "best-of-n": "bon",
                app.result.curves["f"].name: "f", app.result.curves["infalign"].name: "infalign"}
    traces = {t.name.rsplit(" (", 1)[0]: t for t in app.figures["policy"].data[1:]}
    for name in app.result.policies:
        key = expected[name]
        trace = next(t for label, t in traces.items() if label.startswith(name))
        assert trace.marker.color == frontier_figures.COLOURS[key], (compare, name)
        assert trace.marker.symbol == frontier_figures.POLICY_SYMBOLS[key], (compare, name)
    assert len({t.marker.symbol for t in traces.values()}) == len(traces)


def test_an_unknown_policy_name_is_refused_with_the_known_ones(app):
    with pytest.raises(ValueError, match="the methods are: KL-RL"):
        frontier_figures.policy_method(app.result, "PPO")


def test_every_method_has_a_dash_and_colour_of_its_own():
    assert set(frontier_figures.COLOURS) == set(frontier_figures.DASHES)
    assert len(set(frontier_figures.COLOURS.values())) == len(frontier_figures.COLOURS)
    lines = {k: v for k, v in frontier_figures.DASHES.items() if k != "trained"}
    assert len(set(lines.values())) == len(lines)
