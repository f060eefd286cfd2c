"""Scenarios: a finite response set with a reference policy, a gold reward and a proxy reward.

Responses are numbered by their reference probability (0 = the reference policy's favourite), so
"the top responses" of a view are the first few. Everything is drawn from one seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..checks import check_choice, check_number, is_integer

REFERENCES = ("zipf", "dirichlet", "softmax")
REWARDS = ("gaussian", "heavy_tailed", "verifiable")
MAX_RESPONSES = 1_000_000


@dataclass(frozen=True)
class Scenario:
    """pi_ref, the gold reward, the proxy reward a method optimises, and two masks."""

    pi_ref: np.ndarray
    gold: np.ndarray
    proxy: np.ndarray
    correct: np.ndarray  # gold == 1 in the verifiable scenario, all False otherwise
    hackable: np.ndarray  # responses whose proxy was inflated
    description: str
    second: np.ndarray  # a second reward (say harmlessness): wider, mildly at odds with the proxy

    @property
    def size(self) -> int:
        return int(self.pi_ref.size)


def reference_policy(size: int, kind: str, rng, *, zipf_exponent=1.1, concentration=1.0,
                     temperature=1.0) -> np.ndarray:
    """Zipf (p_k ∝ k^-s), Dirichlet(concentration) or softmax of N(0,1) logits / temperature;
    sorted so that response 0 is the most likely."""
    if kind == "zipf":
        p = np.arange(1, size + 1, dtype=np.float64) ** -zipf_exponent
    elif kind == "dirichlet":
        # Gamma draws normalised, in log space so that small concentrations keep no exact zeros
        p = rng.gamma(concentration, size=size)
        p = np.maximum(p, np.finfo(np.float64).tiny)
    else:
        logits = rng.standard_normal(size) / temperature
        p = np.exp(logits - logits.max())
    p = np.sort(p)[::-1]
    return p / p.sum()


def gold_reward(size: int, kind: str, rng, *, n_correct=5) -> np.ndarray:
    """Gaussian N(0,1), heavy-tailed (Student t, 2.5 degrees of freedom), or verifiable: a few
    correct answers (among the 20 n_correct most likely responses, or all of them when there are
    fewer) worth 1, the rest 0."""
    if kind == "gaussian":
        return rng.standard_normal(size)
    if kind == "heavy_tailed":
        return rng.standard_t(2.5, size=size)
    gold = np.zeros(size)
    pool = min(size, 20 * n_correct)
    gold[rng.choice(pool, size=min(n_correct, size), replace=False)] = 1.0
    return gold


def make_scenario(
    n_responses: int = 2000,
    reference: str = "zipf",
    reward: str = "gaussian",
    correlation: float = 0.8,
    n_hackable: int = 0,
    hack_boost: float = 3.0,
    n_correct: int = 5,
    zipf_exponent: float = 1.1,
    concentration: float = 1.0,
    temperature: float = 1.0,
    seed: int = 0,
) -> Scenario:
    """Build a seeded scenario.

    The proxy is mean + sd (corr z + sqrt(1 - corr^2) noise), z the standardised gold reward, so
    that it has gold's mean and spread and correlation ``correlation`` with it. ``n_hackable``
    rare responses (the least likely under pi_ref) get a proxy ``hack_boost`` gold standard
    deviations above the best honest proxy, and keep their gold."""
    if not is_integer(n_responses):
        raise ValueError(f"n_responses must be a whole number, got {n_responses!r}")
    if not 10 <= n_responses <= MAX_RESPONSES:
        raise ValueError(f"n_responses must be between 10 and {MAX_RESPONSES:,}, got {n_responses}")
    check_choice(reference, REFERENCES, "reference")
    check_choice(reward, REWARDS, "reward")
    if not (isinstance(correlation, (int, float)) and -1.0 <= correlation <= 1.0):
        raise ValueError(f"correlation must be between -1 and 1, got {correlation!r}")
    if not (isinstance(n_hackable, (int, np.integer)) and 0 <= n_hackable <= n_responses // 10):
        raise ValueError(
            f"n_hackable must be a whole number from 0 to a tenth of the responses "
            f"({n_responses // 10}), got {n_hackable!r}"
        )
    if not (isinstance(n_correct, (int, np.integer)) and 1 <= n_correct <= n_responses // 2):
        raise ValueError(
            f"n_correct (correct answers in the verifiable scenario) must be from 1 to half the "
            f"responses ({n_responses // 2}), got {n_correct!r}"
        )
    check_number(hack_boost, "hack_boost", 0, 100.0, low_open=True)
    check_number(zipf_exponent, "zipf_exponent", 0, 5.0, low_open=True)
    check_number(concentration, "concentration", 0, 1e3, low_open=True)
    check_number(temperature, "temperature", 0, 1e3, low_open=True)
    rng = np.random.default_rng(seed)
    pi_ref = reference_policy(
        n_responses, reference, rng, zipf_exponent=zipf_exponent,
        concentration=concentration, temperature=temperature,
    )
    gold = gold_reward(n_responses, reward, rng, n_correct=n_correct)
    spread = gold.std()
    z = (gold - gold.mean()) / spread if spread > 0 else np.zeros(n_responses)
    noise = rng.standard_normal(n_responses)
    # in gold units: same mean and spread as gold, correlation `correlation` with it
    proxy = gold.mean() + spread * (correlation * z + math.sqrt(max(1.0 - correlation**2, 0.0)) * noise)
    hackable = np.zeros(n_responses, dtype=bool)
    if n_hackable:
        hackable[n_responses - n_hackable :] = True
        proxy[hackable] = proxy[~hackable].max() + hack_boost * spread
    description = (
        f"{n_responses:,} responses, {reference} reference, {reward.replace('_', '-')} gold reward, "
        f"proxy correlation {correlation:g}"
        + (f", {n_hackable} hackable" if n_hackable else "")
    )
    # drawn last, so that the other rewards do not depend on it
    z_proxy = (proxy - proxy.mean()) / proxy.std()
    second = 2.0 * (-0.3 * z_proxy + math.sqrt(1 - 0.3**2) * rng.standard_normal(n_responses))
    correct = gold == 1.0 if reward == "verifiable" else np.zeros(n_responses, dtype=bool)
    return Scenario(pi_ref, gold, proxy, correct, hackable, description, second)
