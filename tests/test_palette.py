"""The ui palette stays distinguishable under simulated colour-vision deficiencies (issue 16
item 8). Reference: Machado, Oliveira & Fernandes (2009), the severity-1.0 matrices on linear
RGB, and the CIE76 colour difference in CIELAB (D65), all in float64 numpy."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from explorer.ui import palette

MACHADO_2009 = {
    "deuteranopia": [[0.367322, 0.860646, -0.227968], [0.280085, 0.672501, 0.047413],
                     [-0.011820, 0.042940, 0.968881]],
    "protanopia": [[0.152286, 1.052583, -0.204868], [0.114503, 0.786281, 0.099216],
                   [-0.003882, -0.048116, 1.051998]],
    "tritanopia": [[1.255528, -0.076749, -0.178779], [-0.078411, 0.930809, 0.147602],
                   [0.004733, 0.691367, 0.303900]],
}
SRGB_TO_XYZ = np.array([[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750],
                        [0.0193339, 0.1191920, 0.9503041]])
WHITE_D65 = np.array([0.95047, 1.0, 1.08883])
JUST_NOTICEABLE = 2.3  # CIE76 Delta-E (Sharma 2003)


def linear_rgb(hex_colour: str) -> np.ndarray:
    srgb = np.array([int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)]) / 255.0
    return np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4)


def lab(linear: np.ndarray) -> np.ndarray:
    xyz = SRGB_TO_XYZ @ np.clip(linear, 0.0, 1.0) / WHITE_D65
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def delta_e(a: str, b: str, deficiency: str | None) -> float:
    m = np.eye(3) if deficiency is None else np.array(MACHADO_2009[deficiency])
    return float(np.linalg.norm(lab(m @ linear_rgb(a)) - lab(m @ linear_rgb(b))))


def test_the_reference_sees_plotlys_red_and_green_merge_for_a_deuteranope():
    # the numbers explorer/ui/palette.py's docstring states
    assert delta_e("#d62728", "#2ca02c", None) == pytest.approx(119.8, abs=0.05)
    assert delta_e("#d62728", "#2ca02c", "deuteranopia") == pytest.approx(7.3, abs=0.05)


PAIRS = [(palette.RIGHT, palette.WRONG), (palette.LANDS, palette.MISSES)]


@pytest.mark.parametrize("deficiency", sorted(MACHADO_2009))
def test_paired_roles_stay_far_apart(deficiency):
    for a, b in PAIRS:
        assert delta_e(a, b, deficiency) > 10 * JUST_NOTICEABLE, (a, b)


@pytest.mark.parametrize("deficiency", sorted(MACHADO_2009))
def test_categories_stay_apart_and_carry_a_symbol_each(deficiency):
    for a, b in itertools.combinations(palette.CATEGORICAL, 2):
        assert delta_e(a, b, deficiency) > 3 * JUST_NOTICEABLE, (a, b)
    styles = [palette.style_of(i) for i in range(len(palette.CATEGORICAL))]
    assert len(set(styles)) == len({s for _, s in styles}) == len(palette.CATEGORICAL)
