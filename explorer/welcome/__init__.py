"""The welcome notebook's divergence calculator."""

from .app import CalculatorApp
from .compute import Calculation, calculate, gaussian_closed_form

__all__ = ["Calculation", "CalculatorApp", "calculate", "gaussian_closed_form"]
