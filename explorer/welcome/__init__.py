"""The welcome notebook's divergence calculator."""

from .compute import CalculatorResult, calculate, gaussian_closed_form

__all__ = ["CalculatorResult", "CalculatorApp", "calculate", "gaussian_closed_form"]


def __getattr__(name):
    if name == "CalculatorApp":  # the app loads ipywidgets and plotly: imported only when asked for
        from .app import CalculatorApp

        return CalculatorApp
    raise AttributeError(f"module 'explorer.welcome' has no attribute {name!r}")
