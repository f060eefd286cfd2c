"""Checks of a learner's input, written once for every explorer.

Each check returns the value it accepted (as a plain Python number) or raises ``ValueError``
with one sentence that names the setting, what is allowed and what was given. A ``bool`` is never
a number here, although Python counts ``True`` as the integer 1: ``steps=True`` is a slip, not
one step.

The app schemas (:mod:`explorer.ui.schema`) and the compute functions call these, so a range is
worded the same way wherever it is checked. This module imports only numpy: compute code runs
where no widget library is installed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np


def is_integer(value) -> bool:
    """An int (numpy's included), and not a bool."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def is_number(value) -> bool:
    """An int or float (numpy's included), and not a bool."""
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def integer_phrase(low: int | None, high: int | None) -> str:
    """How the allowed integers are named in a sentence: "a whole number from 2 to 64",
    "a positive integer (at most 64)"."""
    if low == 1:
        return "a positive integer" + ("" if high is None else f" (at most {high:,})")
    if low == 0 and high is None:
        return "a non-negative integer"
    return "a whole number" + _bounds(low, high)


def _bounds(low, high) -> str:
    if low is not None and high is not None:
        return f" from {low:,} to {high:,}"
    if low is not None:
        return f" >= {low:,}"
    return "" if high is None else f" <= {high:,}"


def check_integer(value, name: str, low: int | None = None, high: int | None = None,
                  why: str = "") -> int:
    """``value`` as an int in [low, high]; ``why`` (" (the slider's range)") explains a bound.
    2.0, "3" and True are refused, never rounded."""
    if not is_integer(value):
        raise ValueError(f"{name} must be a whole number{_bounds(low, high)}{why}, got {value!r}")
    if low is not None and value < low:
        raise ValueError(f"{name} must be {integer_phrase(low, high)}{why}, got {value!r}")
    if high is not None and value > high:
        whole = "" if low is None else f", a whole number from {low:,} to {high:,}"
        raise ValueError(f"{name} must be at most {high:,}{whole}{why}; got {value!r}")
    return int(value)


def interval(low: float | None, high: float | None, low_open: bool = False,
             high_open: bool = False) -> str:
    """How an allowed interval is named: " between 0 and 1", " in (0, 500]", " > 0"."""
    if low is not None and high is not None:
        if not (low_open or high_open):
            return f" between {low:g} and {high:g}"
        return f" in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    if low is not None:
        return f" {'>' if low_open else '>='} {low:g}"
    return "" if high is None else f" {'<' if high_open else '<='} {high:g}"


def check_number(value, name: str, low: float | None = None, high: float | None = None, *,
                 low_open: bool = False, high_open: bool = False, why: str = "") -> float:
    """``value`` as a finite float inside the interval (closed unless a side is ``*_open``)."""
    allowed = interval(low, high, low_open, high_open)
    if not is_number(value):
        raise ValueError(f"{name} must be a number{allowed}{why}, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number{allowed}{why}, got {value!r}")
    inside = (low is None or (value > low if low_open else value >= low)) and \
        (high is None or (value < high if high_open else value <= high))
    if not inside:
        raise ValueError(f"{name} must be{allowed}{why}, got {value!r}")
    return float(value)


def check_flag(value, name: str) -> bool:
    """``value`` must be True or False (not 0, 1 or "yes")."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def check_choice(value, allowed: Iterable, name: str, why: str = ""):
    """``value`` must be one of ``allowed`` (a sequence, or a dict whose keys are allowed)."""
    allowed = list(allowed)
    if value not in allowed:
        raise ValueError(f"unknown {name} {value!r}; {name} must be one of: "
                         f"{', '.join(map(str, allowed))}{why}")
    return value


def check_array(values, name: str, low: float, *, low_open: bool = False,
                what: str = "") -> np.ndarray:
    """One number or a 1-D list of them, each finite and above ``low`` (strictly if
    ``low_open``), as a float64 array; ``what`` says what they are (" (the number of samples)")."""
    bound = f"{'>' if low_open else '>='} {low:g}"
    try:
        array = np.atleast_1d(np.asarray(values, dtype=np.float64))
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number {bound} or a list of them") from None
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"{name} must be a number {bound} or a 1-D list of them")
    below = array <= low if low_open else array < low
    if not np.all(np.isfinite(array)) or np.any(below):
        raise ValueError(f"{name} must be {bound} and finite{what}; got {values!r}")
    return array
