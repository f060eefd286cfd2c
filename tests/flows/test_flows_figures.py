"""The figures' drawing helpers against independent references (numpy's histogram2d, geometry),
and the figures' node budget: point clouds that do not move are images, not markers."""

import numpy as np
import plotly.graph_objects as go
import pytest

from explorer.flows import FlowsApp, figures


def test_a_point_image_marks_exactly_the_histogram_bins_that_hold_points():
    rng = np.random.default_rng(0)
    extent, bins = 3.0, 40
    data = rng.normal(size=(500, 2))
    samples = rng.normal(1.0, 0.5, size=(200, 2))
    samples[0] = [np.inf, 0.0]  # a diverged sample is not drawn
    samples[1] = [10.0, 10.0]  # nor one outside the plot
    trace = figures._point_image([(data, 0), (samples, 1)], extent, bins, ["grey", "blue"])
    edges = np.linspace(-extent, extent, bins + 1)
    finite = samples[np.isfinite(samples).all(1)]
    has_data = np.histogram2d(data[:, 1], data[:, 0], [edges, edges])[0] > 0
    has_sample = np.histogram2d(finite[:, 1], finite[:, 0], [edges, edges])[0] > 0
    z = trace["z"]
    assert np.array_equal(z == 0, ~(has_data | has_sample))  # empty: transparent
    assert np.array_equal(z == 2, has_sample)  # the later layer on top
    assert np.array_equal(z == 1, has_data & ~has_sample)
    assert trace["colorscale"][0][1] == "rgba(0, 0, 0, 0)" and trace["zmax"] == 2
    # bin centres where histogram2d's bins are
    assert trace["x0"] == pytest.approx((edges[0] + edges[1]) / 2)
    assert trace["dx"] == pytest.approx(edges[1] - edges[0])
    go.Figure(data=[trace])  # a valid plotly trace


def test_arrows_end_at_their_tips_with_two_symmetric_barbs():
    starts = np.array([[0.0, 0.0], [1.0, 1.0]])
    ends = np.array([[1.0, 0.0], [1.0, 3.0]])
    xs, ys = figures._arrows(starts, ends, head=0.3, angle=0.45)
    path = np.stack([xs, ys], 1).reshape(2, 6, 2)
    assert np.array_equal(path[:, 0], starts) and np.array_equal(path[:, 1], ends)
    assert np.array_equal(path[:, 3], ends) and np.isnan(path[:, 5]).all()
    for k in range(2):
        shaft = ends[k] - starts[k]
        for barb in (path[k, 2], path[k, 4]):
            back = barb - ends[k]
            assert np.linalg.norm(back) == pytest.approx(0.3 * np.linalg.norm(shaft))
            cosine = -back @ shaft / (np.linalg.norm(back) * np.linalg.norm(shaft))
            assert cosine == pytest.approx(np.cos(0.45))
        # one barb on each side of the shaft
        sides = [
            shaft[0] * (b - starts[k])[1] - shaft[1] * (b - starts[k])[0]
            for b in (path[k, 2], path[k, 4])
        ]
        assert sides[0] * sides[1] < 0


@pytest.fixture(scope="module")
def app():
    return FlowsApp()


def test_point_clouds_are_images_and_no_markers_are_left(app):
    """The browser draws each marker as an SVG node and restyles every one on every redraw
    (issue 16): the data, the samples and the comparison grid are images, the path starts x0
    crosses drawn as one path: no markers left."""
    markers = {}
    for name in ("trajectories", "velocity", "grid"):
        figure = app.figures[name]
        markers[name] = sum(
            len(t.x)
            for t in figure.data
            if t.type == "scatter" and "markers" in (t.mode or "") and t.x[0] is not None
        )
        go.Figure(figure.to_dict())  # valid
    assert markers == {"trajectories": 0, "velocity": 0, "grid": 0}
    crosses = polylines(app.figures["trajectories"].layout.shapes[-1].path)
    starts = app.result.evaluation.path.points[0, : figures.N_PATHS].numpy()
    centres = np.array(crosses).reshape(-1, 2, 2, 2)[:, 0].mean(1)  # each cross: two strokes
    np.testing.assert_allclose(centres, starts, rtol=1e-5, atol=1e-5)  # one x per path start
    assert len(app.figures["grid"].data) == 12  # one image per cell


def test_the_image_shows_the_samples_coloured_by_landing_over_the_data(app):
    r = app.result
    image = next(t for t in app.figures["trajectories"].data if t.type == "heatmap")
    samples, landed = r.evaluation.path.points[-1].numpy(), r.evaluation.landed
    edges = np.linspace(-r.extent, r.extent, image.z.shape[0] + 1)

    def bins_of(points):
        return np.histogram2d(points[:, 1], points[:, 0], [edges, edges])[0] > 0

    z = np.asarray(image.z)
    assert np.array_equal(z == 3, bins_of(samples[~landed]))  # misses on top
    assert np.array_equal(z == 2, bins_of(samples[landed]) & ~bins_of(samples[~landed]))
    assert np.array_equal(z == 0, ~(bins_of(samples) | bins_of(r.target_points)))
    legend = [t.name for t in app.figures["trajectories"].data if t.type == "scatter"]
    assert legend[:3] == ["data", "samples", "samples (missing)"]


def _json_part(value):
    """What a figure widget sends as JSON (plotly's serializer sends 1-D numeric arrays as
    binary buffers, everything else as JSON)."""
    if isinstance(value, dict):
        return {k: _json_part(v) for k, v in value.items() if k != "buffer"}
    if isinstance(value, (list, tuple)):
        return [_json_part(v) for v in value]
    return value


@pytest.mark.parametrize("view", ["trajectories", "velocity", "grid"])
def test_what_the_widget_sends_is_json_without_nan(app, view):
    """NaN is not JSON: the kernel's message packer would fail and fall back with a warning."""
    import json

    from plotly.serializers import _py_to_js

    figure = app.figures[view]
    sent = _py_to_js({"data": [t.to_plotly_json() for t in figure.data]}, None)
    json.dumps(_json_part(sent), allow_nan=False)


@pytest.mark.parametrize("rows, cols", [(2, 6), (3, 4), (1, 1), (2, 5)])
def test_the_grid_layout_is_make_subplots_without_its_validation(rows, cols):
    """The comparison grid's axes and title annotations, made by hand, are plotly's
    make_subplots' (the reference) to rounding."""
    from plotly.subplots import make_subplots

    from explorer.flows.figures import _figure, _grid_layout

    reference = make_subplots(rows, cols, subplot_titles=["."] * (rows * cols),
                              horizontal_spacing=0.02, vertical_spacing=0.12,
                              figure=_figure()).layout.to_plotly_json()
    mine = _grid_layout(rows, cols)
    assert set(mine) == set(reference)

    def same(a, b):
        if isinstance(a, dict):
            return isinstance(b, dict) and set(a) == set(b) and all(same(a[k], b[k]) for k in a)
        if isinstance(a, list):
            return isinstance(b, list) and len(a) == len(b) and all(map(same, a, b))
        if isinstance(a, float):
            return abs(a - b) <= 1e-12
        return a == b

    for name, value in reference.items():
        if name != "template":
            assert same(mine[name], value), name


def polylines(path: str) -> list[np.ndarray]:
    """An SVG path of M and L commands (``figures.svg_path``) read back: its polylines, each
    an (n, 2) array; an independent parser (a regular expression)."""
    import re

    pieces = []
    for command, x, y in re.findall(r"([ML])([-+0-9.eE]+),([-+0-9.eE]+)", path):
        if command == "M":
            pieces.append([])
        pieces[-1].append((float(x), float(y)))
    assert "".join(re.findall(r"[ML][-+0-9.eE]+,[-+0-9.eE]+", path)) == path  # nothing else
    return [np.array(piece) for piece in pieces]


def test_the_trajectories_and_the_velocity_field_are_one_svg_path_per_line_collection(app):
    """plotly draws a line trace as one SVG node per NaN-separated piece (482 nodes in the
    trajectories, 289 in the velocity field, restyled on every slider move): the paths, the
    crosses and the arrows are layout shapes, one path each, that read back to the very
    polylines (to 6 significant digits), with a legend entry for each kind of line."""
    r = app.result
    trajectories, velocity = app.figures["trajectories"], app.figures["velocity"]
    for figure in (trajectories, velocity):
        assert not [t for t in figure.data if t.type == "scatter" and t.x is not None
                    and len(t.x) > 20]  # no line trace of many pieces is left
        go.Figure(figure.to_dict())  # valid
    path = r.evaluation.path.points[:, : figures.N_PATHS].numpy()
    landed = r.evaluation.landed[: figures.N_PATHS]
    shapes = trajectories.layout.shapes
    drawn = {shape.line.color: polylines(shape.path) for shape in shapes[:-1]}
    for mask, colour in ((landed, figures.LANDED), (~landed, figures.MISSED)):
        expected = [path[:, i] for i in np.flatnonzero(mask)]
        assert len(drawn.get(colour, [])) == len(expected)
        for mine, theirs in zip(drawn.get(colour, []), expected, strict=True):
            np.testing.assert_allclose(mine, theirs, rtol=1e-5, atol=1e-5)
    legend = [t.name for t in trajectories.data if t.type == "scatter" and t.mode == "lines"]
    assert legend == [name for name, mask in (("lands on data", landed), ("misses", ~landed))
                      if mask.any()]
    [arrows] = velocity.layout.shapes
    xx, yy, u, v = (a.ravel() for a in r.field)
    starts = np.stack([xx, yy], 1)
    speed = np.hypot(u, v)
    scale = 0.9 * (2 * r.extent / 17) / max(np.quantile(speed, 0.95), 1e-9)
    xs, ys = figures._arrows(starts, starts + scale * np.stack([u, v], 1))
    expected = np.stack([xs, ys], 1).reshape(-1, 6, 2)[:, :5]  # tail, tip, barb, tip, barb
    np.testing.assert_allclose(np.array(polylines(arrows.path)), expected, rtol=1e-5, atol=1e-5)
    # the pieces each shape stands for (the docstring of figures._lines): N_PATHS paths, two
    # strokes per cross, 17 x 17 arrows
    assert sum(len(polylines(shape.path)) for shape in shapes[:-1]) == figures.N_PATHS == 160
    assert len(polylines(shapes[-1].path)) == 2 * figures.N_PATHS
    assert len(polylines(arrows.path)) == 17 * 17
    assert [t.name for t in velocity.data if t.type == "scatter" and t.mode == "lines"] == [
        "v(x, t)"]
