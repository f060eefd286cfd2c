"""One declaration per control (issue 17 items 1, 3, 6): a field declared once gets its widget,
its validation, its place in the state and the link, and its cache invalidation."""

from __future__ import annotations

import json
from dataclasses import dataclass

import ipywidgets as widgets
import numpy as np
import pytest

from explorer.checks import check_choice, check_flag, check_integer, check_number
from explorer.ui import App, HTMLView
from explorer.ui.schema import Params, parse_value, setting, settings


@dataclass(kw_only=True)
class ToyParams(Params):
    shape: str = setting("circle", "shape", choices={"circle": "a circle", "square": "a square"},
                         control="dropdown")
    size: float = setting(1.0, "size", low=0.0, high=5.0, step=0.5, invalidates=("picture",))
    colour: str = setting("red", "colour", choices=("red", "blue"), control="toggle",
                          invalidates=("legend",))


DRAWN: list[str] = []


class ToyApp(App):
    Params = ToyParams
    renames = {2: {"old_size": "size"}}

    def compute(self, params):
        return dict(vars(params))

    def views(self):
        def draw(name):
            def drawer(result):
                DRAWN.append(name)
                return HTMLView(f"{name}: {sorted(result.items())}")
            return drawer
        return {"picture": draw("picture"), "legend": draw("legend")}

    def build_controls(self):
        return [self.control(name) for name in settings(self.Params)]


def with_one_more_field():
    """The toy app with one field added by one declaration, nothing else."""

    @dataclass(kw_only=True)
    class MoreParams(ToyParams):
        count: int = setting(3, "count", low=1, high=9, tooltip="how many", invalidates=("legend",))

    class MoreApp(ToyApp):
        Params = MoreParams

    return MoreApp


def test_a_new_field_gets_its_widget_validation_state_and_cache_invalidation():
    MoreApp = with_one_more_field()
    app = MoreApp()
    app.widget  # noqa: B018 - builds the controls
    slider = app._controls["count"]
    assert isinstance(slider, widgets.IntSlider)
    assert (slider.min, slider.max, slider.value, slider.description, slider.tooltip) == \
        (1, 9, 3, "count", "how many")
    with pytest.raises(ValueError, match="count must be at most 9, a whole number from 1 to 9; got 12"):
        app.set(count=12)
    with pytest.raises(ValueError, match="count must be a whole number from 1 to 9, got True"):
        app.set(count=True)
    assert app.params.count == 3
    slider.value = 5  # the widget drives the field
    assert app.params.count == 5 and app.result["count"] == 5
    assert json.loads(json.dumps(app.state()))["params"]["count"] == 5
    assert MoreApp().load_state(app.state()).params.count == 5
    DRAWN.clear()
    picture = app.figures["picture"]
    app.set(count=6)  # invalidates the legend only
    assert DRAWN == ["legend"] and app.figures["picture"] is picture
    app.set(size=2.0)  # invalidates the picture only
    assert DRAWN == ["legend", "picture"]
    assert MoreApp.from_link(app.link()).params == app.params


def test_widgets_follow_the_declarations():
    app = ToyApp()
    app.widget  # noqa: B018
    shape, size, colour = (app._controls[name] for name in ("shape", "size", "colour"))
    assert isinstance(shape, widgets.Dropdown)
    assert shape.options == (("a circle", "circle"), ("a square", "square"))
    assert isinstance(size, widgets.FloatSlider) and (size.min, size.max, size.step) == (0, 5, 0.5)
    assert isinstance(colour, widgets.ToggleButtons)


@pytest.mark.parametrize(("change", "message"), [
    ({"shape": "hexagon"}, "unknown shape 'hexagon'; shape must be one of: circle, square"),
    ({"size": -1.0}, "size must be between 0 and 5, got -1.0"),
    ({"size": float("nan")}, "size must be a finite number between 0 and 5"),
    ({"size": True}, "size must be a number between 0 and 5, got True"),
    ({"colour": 3}, "colour must be a str, got 3"),
])
def test_validation_is_derived_and_keeps_state(change, message):
    app = ToyApp()
    with pytest.raises(ValueError, match=message):
        app.set(**change)
    assert app.params == ToyParams()


def test_every_field_must_be_declared():
    @dataclass(kw_only=True)
    class Bare(Params):
        x: int = 1

    with pytest.raises(TypeError, match="Bare.x is not declared with setting"):
        Bare().validate()


def test_checks_refuse_bools_and_name_what_is_allowed():
    assert check_integer(np.int64(4), "n", 1, 9) == 4
    for bad in (True, 2.0, "3"):
        with pytest.raises(ValueError, match="n must be a whole number from 1 to 9, got"):
            check_integer(bad, "n", 1, 9)
    with pytest.raises(ValueError, match="n must be a positive integer \\(at most 9\\), got 0"):
        check_integer(0, "n", 1, 9)
    with pytest.raises(ValueError, match="n must be a whole number from 2 to 9, got 1"):
        check_integer(1, "n", 2, 9)
    with pytest.raises(ValueError, match="t must be in \\(0, 500\\]"):
        check_number(0.0, "t", 0, 500, low_open=True)
    assert check_number(500, "t", 0, 500, low_open=True) == 500.0
    with pytest.raises(ValueError, match="beta must be a finite number > 0"):
        check_number(float("inf"), "beta", 0, low_open=True)
    with pytest.raises(ValueError, match="flag must be True or False, got 1"):
        check_flag(1, "flag")
    with pytest.raises(ValueError, match="unknown solver 'rk45'; solver must be one of: euler"):
        check_choice("rk45", ("euler",), "solver")


def test_link_round_trip_with_hidden_and_locked_controls():
    app = ToyApp().set(shape="square", size=2.5)
    app.classroom(hidden=["colour"], locked=["shape"])
    link = app.link("http://host/voila/render/toy.ipynb?old=1")
    assert link == ("http://host/voila/render/toy.ipynb?app=ToyApp&v=2&shape=square&size=2.5"
                    "&hide=colour&lock=shape")
    opened = ToyApp().set(colour="blue")  # what the link does not name goes back to its default
    opened.open_link(link)
    assert opened.params == app.params and opened.params.colour == "red"
    assert (opened.hidden, opened.locked) == ({"colour"}, {"shape"})
    opened.widget  # noqa: B018
    assert opened._controls["colour"].layout.display == "none"
    assert opened._controls["shape"].disabled and not opened._controls["size"].disabled
    opened.classroom()  # the instructor frees them again
    assert opened._controls["colour"].layout.display is None
    assert not opened._controls["shape"].disabled
    with pytest.raises(ValueError, match="this link is for another app"):
        ToyApp.from_link("?app=FlowsApp")
    with pytest.raises(ValueError, match="has no setting 'weight'"):
        ToyApp.from_link("?app=ToyApp&weight=3")
    with pytest.raises(ValueError, match="size must be a number between 0 and 5, got 'big'"):
        ToyApp.from_link("app=ToyApp&size=big")


def test_old_states_and_links_are_read_under_new_names():
    """A version-1 state or link names the field as it was called then."""
    assert ToyApp().load_state({"app": "ToyApp", "version": 1,
                                "params": {"old_size": 4.0}}).params.size == 4.0
    app = ToyApp.from_link("?app=ToyApp&v=1&old_size=3.5&hide=old_size")
    assert app.params.size == 3.5 and app.hidden == {"size"}
    assert ToyApp().load_state({"app": "ToyApp", "params": {"old_size": 1.5}}).params.size == 1.5
    with pytest.raises(ValueError, match="state version must be at most 2, a whole number from 1 to 2"):
        ToyApp().load_state({"app": "ToyApp", "version": 7, "params": {}})


def test_a_voila_url_opens_the_app_in_its_state(monkeypatch):
    monkeypatch.setenv("SERVER_SOFTWARE", "voila/0.5.13")
    monkeypatch.setenv("QUERY_STRING", "app=ToyApp&v=2&size=4.5&lock=size")
    app = ToyApp()
    assert app.params.size == 4.5 and app.locked == {"size"}
    monkeypatch.setenv("QUERY_STRING", "app=ToyApp&size=99")  # a bad link: defaults, and why
    app = ToyApp()
    assert app.params.size == 1.0 and "size must be between 0 and 5" in app.status.text
    monkeypatch.setenv("QUERY_STRING", "app=ToyApp&size=4.5&hide=weight")  # nothing half-done
    app = ToyApp()
    assert app.params.size == 1.0 and "has no setting 'weight' to hide or lock" in app.status.text
    monkeypatch.setenv("QUERY_STRING", "app=OtherApp&size=4.5")  # for another app on the page
    assert ToyApp().params.size == 1.0


def test_link_values_are_read_with_the_fields_type():
    assert parse_value(bool, "true") is True and parse_value(int, "8") == 8
    assert parse_value(float, "0.5") == 0.5 and parse_value(float, "inf") == "inf"
    assert parse_value(int, "eight") == "eight"  # refused by validation with a sentence


def wide_results():
    from explorer.flows.compute import FlowsResult, GridRow
    from explorer.frontier.compute import FrontierResult, Measures
    from explorer.manifold.compute import ManifoldResult
    from explorer.manifold.rema import RemaResult
    from explorer.modes.compute import ModesResult
    from explorer.welcome.compute import CalculatorResult

    return [FlowsResult, GridRow, FrontierResult, Measures, ManifoldResult, RemaResult,
            ModesResult, CalculatorResult]


@pytest.mark.parametrize("result_type", wide_results(), ids=lambda t: t.__name__)
def test_results_are_built_by_keyword_only(result_type):
    """Inserting a field into a wide result must not shift the others silently."""
    import dataclasses

    fields = [f for f in dataclasses.fields(result_type) if f.init]
    with pytest.raises(TypeError, match="positional"):
        result_type(*range(len(fields)))
