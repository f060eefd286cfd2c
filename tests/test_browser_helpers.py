"""The browser tests' own tools, without a browser: what :class:`tests.browser.CommTraffic`
counts as a message to or from a figure."""

from __future__ import annotations

import json

from tests import browser


class NoPage:
    """CommTraffic only registers a websocket handler on its page."""

    def on(self, event, handler) -> None:
        pass


def frame(msg_type: str, comm_id: str, state: dict, method: str = "update") -> str:
    return json.dumps({"channel": "iopub", "header": {"msg_type": msg_type},
                       "content": {"comm_id": comm_id, "data": {"method": method,
                                                                "state": state}}})


def test_a_figure_update_counts_and_a_view_count_report_does_not():
    """ipywidgets' ``_view_count`` (the page reports a view it made, the kernel echoes it)
    carries nothing of the figure, and under load it may come after a test's mark: a hidden
    tab's figure then looked as if a slider move had sent it something (CI, issue 16)."""
    traffic = browser.CommTraffic(NoPage())
    traffic._frames += [(frame("comm_open", "shown", {"_widget_data": []}), "kernel"),
                        (frame("comm_open", "hidden", {"_widget_data": []}), "kernel")]
    mark = traffic.mark()
    traffic._frames += [
        (frame("comm_msg", "hidden", {"_view_count": 1}), "page"),
        (frame("comm_msg", "hidden", {"_view_count": 1}, "echo_update"), "kernel"),
        (frame("comm_msg", "shown", {"_py2js_update": {"style_data": {}}}), "kernel"),
    ]
    found = traffic.figure_messages(mark)
    assert list(found) == ["shown"] and len(found["shown"]) == 1
    traffic._frames.append((frame("comm_msg", "hidden", {"_py2js_update": {}}), "kernel"))
    assert set(traffic.figure_messages(mark)) == {"shown", "hidden"}
