"""Trained policies: a tabular softmax policy, started at pi_ref, trained by policy gradient with a
KL penalty or by (f-)DPO / chi-PO on Bradley-Terry preference pairs. Torch, float64, any device.

The trajectory (KL to pi_ref, proxy and gold reward every few steps) is what the frontier plane
draws beside the exact curves. Policy gradient with the exact expected gradient ends at the exact
optimum. DPO does not, on finite pairs: it minimises the loss on the pairs it has, and a response
that never loses a comparison lowers that loss the higher it is pushed, so the loss has no
minimiser and more steps move the policy further from the population optimum (Azar et al. 2023,
"A general theoretical paradigm to understand learning from human preferences", Sec. 4.2).
:func:`preference_data` counts those responses.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy import sparse
from scipy.sparse.csgraph import connected_components
from scipy.sparse.linalg import spsolve
from scipy.special import expit

from .. import divergences
from .._deferred import deferred_import
from ..checks import check_integer, is_integer
from ..device import check_seed, choose_device, generator
from .exact import check_beta, check_policy, check_reward, divergence_name, regularizer_names

torch = deferred_import("torch", globals())  # the default view computes in NumPy

METHODS = ("pg", "dpo")


@dataclass
class Trajectory:
    """What a training run went through, and where it ended."""

    method: str
    divergence: str
    beta: float
    iters: list[int] = field(default_factory=list)  # the iterations recorded
    kl: list[float] = field(default_factory=list)
    proxy: list[float] = field(default_factory=list)
    gold: list[float] = field(default_factory=list)
    policy: np.ndarray | None = None
    data: PreferenceData | None = None  # DPO only: what the finite pairs pin down
    alpha: float | None = None  # the alpha family's alpha, when that is the divergence

    @property
    def label(self) -> str:
        name = "PG + KL penalty" if self.method == "pg" else f"DPO ({divergence_name(self.divergence)})"
        return f"{name}, β = {self.beta:g}"


@dataclass(frozen=True)
class PreferenceData:
    """What a finite set of preference pairs pins down for DPO, and what it leaves open."""

    pairs: int  # pairs kept (pairs of the same response are dropped)
    compared: int  # responses in at least one pair
    undefeated: int  # compared responses that never lose: the pair loss falls as they rise
    undefeated_mass: float  # their pi_ref mass
    never_compared_mass: float  # pi_ref mass of responses in no pair: their logits never move
    #: the maximum-likelihood Bradley-Terry reward of the pairs, where it exists
    fitted_reward: np.ndarray | None = field(default=None, compare=False, repr=False)

    def sentence(self) -> str:
        if self.fitted_reward is not None:
            return (
                f"DPO on {self.pairs:,} pairs: every response is compared and the pairs fix a "
                f"Bradley–Terry reward (its maximum-likelihood fit), so DPO's target is the "
                f"optimum for that fitted reward (□ on the plane), not for the true one (◇)."
            )
        return (
            f"DPO on {self.pairs:,} pairs: {self.undefeated:,} of the {self.compared:,} compared "
            f"responses never lose a comparison (π_ref mass {self.undefeated_mass:.3g}), so the "
            f"pair loss has no minimiser and keeps raising them; π_ref mass "
            f"{self.never_compared_mass:.3g} is never compared. More iterations move DPO away from the "
            f"population optimum (the ◇ on the plane), not towards it."
        )


def preference_data(pi_ref, winner, loser) -> PreferenceData:
    """Count, for pairs (winner[i], loser[i]), the responses the pair loss cannot pin down, and
    fit the Bradley-Terry reward where the pairs determine it."""
    p = check_policy(pi_ref)
    winner, loser = np.asarray(winner), np.asarray(loser)
    compared = np.union1d(winner, loser)
    undefeated = np.setdiff1d(compared, loser)
    never = np.ones(p.size, dtype=bool)
    never[compared] = False
    return PreferenceData(int(winner.size), int(compared.size), int(undefeated.size),
                          float(p[undefeated].sum()), float(p[never].sum()),
                          bradley_terry_fit(p.size, winner, loser))


def bradley_terry_fit(size: int, winner, loser, tol: float = 1e-12) -> np.ndarray | None:
    """The maximum-likelihood Bradley-Terry reward of the pairs (Zermelo 1929), centred on zero,
    or None where it does not exist. It exists exactly when every response is in some pair and
    the graph with an edge loser -> winner per pair is strongly connected (Ford 1957), i.e. no
    group of responses beats everyone outside it; otherwise the likelihood keeps rising as that
    group's reward grows. Newton's method on the convex negative log-likelihood
    sum softplus(-(r_w - r_l)), the first response's reward held at 0 (sparse Hessian)."""
    winner, loser = np.asarray(winner), np.asarray(loser)
    if np.union1d(winner, loser).size < size:
        return None
    edges = sparse.csr_matrix((np.ones(winner.size), (loser, winner)), shape=(size, size))
    if connected_components(edges, directed=True, connection="strong")[0] != 1:
        return None
    pair, count = np.unique(winner * size + loser, return_counts=True)
    w, lo = pair // size, pair % size
    reward = np.zeros(size)

    def loss(r):
        return float(count @ np.logaddexp(0.0, -(r[w] - r[lo])))

    for _ in range(200):
        lose = expit(-(reward[w] - reward[lo]))  # P(the observed loser would have won)
        gradient = np.bincount(lo, count * lose, size) - np.bincount(w, count * lose, size)
        weight = count * lose * (1.0 - lose)
        hessian = sparse.csr_matrix(
            (np.r_[weight, weight, -weight, -weight], (np.r_[w, lo, w, lo], np.r_[w, lo, lo, w])),
            shape=(size, size))
        step = np.zeros(size)
        step[1:] = spsolve(hessian[1:, 1:].tocsc(), -gradient[1:])
        start, scale = loss(reward), 1.0
        while loss(reward + scale * step) > start and scale > 1e-12:
            scale /= 2.0
        reward = reward + scale * step
        if np.max(np.abs(scale * step)) <= tol * (1.0 + np.max(np.abs(reward))):
            break
    return reward - reward.mean()


def link(divergence: str, alpha, log_t: torch.Tensor) -> torch.Tensor:
    """g'(t) at t = pi/pi_ref, the f-DPO implicit reward per unit beta (Wang et al. 2024, eq. 9):
    log t + 1 for reverse KL (plain DPO), -1/t for forward KL, t + log t for chi-PO."""
    if divergence == "chi_po":
        return torch.exp(log_t) + log_t
    if divergence == "reverse_kl":
        return log_t + 1.0
    if divergence == "chi_squared":
        return 2.0 * torch.expm1(log_t)
    return divergences.get(divergence, alpha).dual().f_prime(torch.exp(log_t))


def preference_pairs(pi_ref, reward, n_pairs: int, seed: int = 0):
    """n_pairs (winner, loser) index pairs: both responses drawn from pi_ref, the first preferred
    with probability sigmoid(r1 - r2) (Bradley-Terry). Pairs of the same response are dropped."""
    p = check_policy(pi_ref)
    r = check_reward(reward, p.size, "reward")
    if not is_integer(n_pairs) or n_pairs < 1:
        raise ValueError(f"n_pairs must be a whole number >= 1, got {n_pairs!r}")
    rng = np.random.default_rng(check_seed(seed))
    first = rng.choice(p.size, size=n_pairs, p=p)
    second = rng.choice(p.size, size=n_pairs, p=p)
    keep = first != second
    first, second = first[keep], second[keep]
    # sigmoid(r1 - r2), from halves so that rewards near the float limit cannot overflow
    with np.errstate(over="ignore"):
        first_wins = rng.random(first.size) < expit(2.0 * (0.5 * r[first] - 0.5 * r[second]))
    winner = np.where(first_wins, first, second)
    loser = np.where(first_wins, second, first)
    return winner, loser


def train(
    pi_ref,
    proxy,
    *,
    method: str = "pg",
    beta: float = 0.5,
    divergence: str = "reverse_kl",
    alpha: float | None = None,
    iters: int = 300,
    learning_rate: float = 0.05,
    batch_size: int | None = 256,
    n_pairs: int = 20_000,
    gold=None,
    record_every: int = 5,
    seed: int = 0,
    device=None,
    report: Callable | None = None,
) -> Trajectory:
    """Train a tabular softmax policy from pi_ref (Adam on the logits).

    * ``method="pg"``: REINFORCE with the KL penalty folded into the reward, r - beta log(pi/pi_ref)
      (Ziegler et al. 2019, "Fine-tuning language models from human preferences", eq. 2), a batch
      mean baseline, ``batch_size`` samples per iteration; ``batch_size=None`` uses the exact expected gradient
      of E_pi[r] - beta KL(pi || pi_ref). Optimum: the tilted policy.
    * ``method="dpo"``: the f-DPO loss -log sigmoid(beta [g'(t_w) - g'(t_l)]), t = pi/pi_ref, on
      ``n_pairs`` Bradley-Terry pairs from pi_ref (Rafailov et al. 2023 for reverse KL; Wang et
      al. 2024 for the f-divergences; Huang et al. 2025 chi-PO link t + log t, its implicit
      reward clipped to [-2 R_max, 2 R_max] with R_max = max |proxy| as in their chi-PO loss). With
      infinitely many pairs the optimum is the f-regularised policy of
      :func:`explorer.frontier.exact.f_regularized`; with finitely many the loss has no
      minimiser when some response never loses (see :class:`PreferenceData`), and longer
      training drifts away from that optimum.

    ``report(fraction, message, partial=trajectory)`` is called as training goes (the app's
    Runner raises there to cancel)."""
    if method not in METHODS:
        raise ValueError(f"method must be one of: {', '.join(METHODS)}; got {method!r}")
    if divergence not in regularizer_names() or divergence == "tv":
        raise ValueError(
            f"divergence must be one of: {', '.join(n for n in regularizer_names() if n != 'tv')}"
        )
    if method == "pg" and divergence != "reverse_kl":
        raise ValueError("policy gradient here uses the KL penalty; choose divergence='reverse_kl'")
    (beta,) = check_beta(beta)
    check_integer(iters, "iters", low=1)
    if not (math.isfinite(learning_rate) and learning_rate > 0):
        raise ValueError(f"learning_rate must be positive, got {learning_rate!r}")
    if batch_size is not None:
        check_integer(batch_size, "batch_size", low=2, why=", or None for the exact gradient")
    p = check_policy(pi_ref)
    if np.any(p == 0):
        raise ValueError("pi_ref must give every response some probability to start a softmax from it")
    r_np = check_reward(proxy, p.size, "proxy")
    g_np = r_np if gold is None else check_reward(gold, p.size, "gold")
    dev = choose_device(device)
    seed = check_seed(seed)
    gen = generator(seed, dev)
    log_ref = torch.log(torch.as_tensor(p, dtype=torch.float64, device=dev))
    r = torch.as_tensor(r_np, dtype=torch.float64, device=dev)
    r_max = float(np.abs(r_np).max())
    g = torch.as_tensor(g_np, dtype=torch.float64, device=dev)
    logits = log_ref.clone().requires_grad_(True)
    optimiser = torch.optim.Adam([logits], lr=learning_rate)
    data = None
    if method == "dpo":
        winner, loser = preference_pairs(p, r_np, n_pairs, seed)
        data = preference_data(p, winner, loser)
        # the loss only sees each ordered pair through its count: sum over distinct pairs
        pair, count = np.unique(winner * p.size + loser, return_counts=True)
        winner = torch.as_tensor(pair // p.size, device=dev)
        loser = torch.as_tensor(pair % p.size, device=dev)
        share = torch.as_tensor(count / count.sum(), dtype=torch.float64, device=dev)
    trajectory = Trajectory(method, divergence, float(beta), data=data, alpha=alpha)

    def record(step: int, log_pi: torch.Tensor) -> None:
        with torch.no_grad():
            pi = torch.exp(log_pi)
            trajectory.iters.append(step)
            trajectory.kl.append(max(float(torch.sum(pi * (log_pi - log_ref))), 0.0))
            trajectory.proxy.append(float(pi @ r))
            trajectory.gold.append(float(pi @ g))

    for step in range(iters):
        log_pi = torch.log_softmax(logits, dim=0)
        if step % record_every == 0:
            record(step, log_pi)
            if report is not None:
                report(step / iters, f"iteration {step}/{iters}", partial=trajectory)
        if method == "pg":
            loss = _pg_loss(log_pi, log_ref, r, beta, batch_size, gen)
        else:
            log_t = log_pi - log_ref
            implicit_w = beta * link(divergence, alpha, log_t[winner])
            implicit_l = beta * link(divergence, alpha, log_t[loser])
            if divergence == "chi_po":  # Huang et al.'s clipping of the implicit reward
                implicit_w = implicit_w.clamp(-2.0 * r_max, 2.0 * r_max)
                implicit_l = implicit_l.clamp(-2.0 * r_max, 2.0 * r_max)
            margin = implicit_w - implicit_l
            loss = share @ torch.nn.functional.softplus(-margin)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    log_pi = torch.log_softmax(logits.detach(), dim=0)
    record(iters, log_pi)
    trajectory.policy = torch.exp(log_pi).cpu().numpy()
    return trajectory


def _pg_loss(log_pi, log_ref, r, beta, batch_size, gen):
    if batch_size is None:  # exact: minus (E_pi[r] - beta KL(pi || pi_ref))
        pi = torch.exp(log_pi)
        return -(pi @ r - beta * torch.sum(pi * (log_pi - log_ref)))
    with torch.no_grad():
        sample = torch.multinomial(torch.exp(log_pi), batch_size, replacement=True, generator=gen)
        shaped = r[sample] - beta * (log_pi[sample] - log_ref[sample])
        advantage = shaped - shaped.mean()
    return -(advantage * log_pi[sample]).mean()
