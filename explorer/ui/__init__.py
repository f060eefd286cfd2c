"""Shared widget plumbing for the explorers: the App base class, the divergence picker, the
status line, the runner for long work, and the figure views."""

from .app import App
from .picker import DivergencePicker
from .runner import Cancelled, Runner
from .status import StatusLine
from .views import HTMLView

__all__ = ["App", "Cancelled", "DivergencePicker", "HTMLView", "Runner", "StatusLine"]
