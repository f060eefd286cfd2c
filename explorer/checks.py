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
    """How the allowed integers are named in a sentence: "a positive integer (at most 64)"."""
    if low == 1:
        return "a positive integer" + ("" if high is None else f" (at most {high:,})")
    if low == 0 and high is None:
        return "a non-negative integer"
    if low is not None and high is not None:
        return f"an integer from {low:,} to {high:,}"
    if low is not None:
        return f"an integer of at least {low:,}"
    return "an integer" if high is None else f"an integer of at most {high:,}"


def check_integer(value, name: str, low: int | None = None, high: int | None = None,
                  why: str = "") -> int:
    """``value`` as an int in [low, high]; ``why`` (" (the slider's range)") explains a bound."""
    if not is_integer(value) or (low is not None and value < low):
        raise ValueError(f"{name} must be {integer_phrase(low, high)}{why}, got {value!r}")
    if high is not None and value > high:
        raise ValueError(f"{name} must be at most {high:,}{why}, got {value!r}")
    return int(value)


def number_phrase(low: float | None, high: float | None, low_open: bool = False,
                  high_open: bool = False) -> str:
    """How an allowed interval is named: "a number from 0 to 1", "a number in (0, 500]"."""
    if low is not None and high is not None:
        if not (low_open or high_open):
            return f"a number from {low:g} to {high:g}"
        return f"a number in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    if low is not None:
        return f"a number {'>' if low_open else '>='} {low:g}"
    if high is not None:
        return f"a number {'<' if high_open else '<='} {high:g}"
    return "a finite number"


def check_number(value, name: str, low: float | None = None, high: float | None = None, *,
                 low_open: bool = False, high_open: bool = False, why: str = "") -> float:
    """``value`` as a finite float inside the interval (closed unless a side is ``*_open``)."""
    inside = is_number(value) and math.isfinite(value)
    if inside and low is not None:
        inside = value > low if low_open else value >= low
    if inside and high is not None:
        inside = value < high if high_open else value <= high
    if not inside:
        raise ValueError(f"{name} must be {number_phrase(low, high, low_open, high_open)}{why}, "
                         f"got {value!r}")
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
