"""Shared widget plumbing for the explorers: the App base class, the divergence picker, the
status line, the runner for long work, and the figure views."""

from .._deferred import defer_nbformat_for_plotly

defer_nbformat_for_plotly()  # before plotly loads: its renderers import nbformat for fig.show()

from .app import App  # noqa: E402
from .picker import DivergencePicker  # noqa: E402
from .plotly_widget import FigureWidget  # noqa: E402
from .runner import Cancelled, Runner  # noqa: E402
from .status import StatusLine  # noqa: E402
from .views import HTMLView  # noqa: E402

__all__ = ["App", "Cancelled", "DivergencePicker", "FigureWidget", "HTMLView", "Runner",
           "StatusLine"]
