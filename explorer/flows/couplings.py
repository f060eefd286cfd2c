"""How a minibatch of source points x0 is paired with a minibatch of data points x1.

* ``independent``: the pairs as drawn (I-CFM, Lipman et al. 2023; Tong et al. 2024, Sec. 3.2);
* ``ot``: the exact minibatch optimal-transport coupling for the squared distance (OT-CFM,
  Tong et al. 2024, "Improving and generalizing flow-based generative models with minibatch
  optimal transport", Sec. 3.3; Pooladian et al. 2023), a permutation found by the shortest
  augmenting path solver of :mod:`.assignment`, started from coarse-to-fine potentials; POT's
  network simplex ``ot.emd`` and scipy's assignment solver give the same optimum and are kept
  as independent checks;
* ``sinkhorn``: the entropic plan (Cuturi 2013) by ``ot.sinkhorn``, each x0 given a partner
  drawn from its row of the plan.
"""

from __future__ import annotations

import numpy as np
import torch

from .._deferred import deferred_import
from .metrics import pairwise_distances

assignment = deferred_import("explorer.flows.assignment", globals())  # numba: at first use

COUPLINGS = {
    "independent": "independent (I-CFM)",
    "ot": "minibatch OT, exact (OT-CFM)",
    "sinkhorn": "minibatch OT, Sinkhorn",
}


def check_coupling(name: str) -> str:
    if name not in COUPLINGS:
        raise ValueError(f"unknown coupling {name!r}; choose one of: {', '.join(COUPLINGS)}")
    return name


def squared_distances(x0: torch.Tensor, x1: torch.Tensor) -> np.ndarray:
    """|x0_i - x1_j|^2 for every pair, in float64 (torch.cdist: one matrix product, on points
    centred first so that a common offset does not cancel the digits; see
    :func:`.metrics.pairwise_distances`)."""
    return pairwise_distances(x0.detach().cpu(), x1.detach().cpu()).pow_(2).numpy()


def pairing_cost(x0: torch.Tensor, x1: torch.Tensor) -> np.ndarray:
    """The cost -<x0_i - m, x1_j - m> (shifted to be >= 0), in float64, with m the joint mean
    of both batches. For a *permutation* p, sum_i |x0_i - x1_p(i)|^2 = sum_i |x0_i - m|^2 +
    sum_j |x1_j - m|^2 - 2 sum_i <x0_i - m, x1_p(i) - m>, so this cost has the same optimal
    permutations as the squared distance; it is one matrix product, and the network simplex
    solves it a little faster. Centring keeps the digits that decide the optimum when both
    batches sit far from the origin."""
    x0, x1 = x0.detach().cpu().double(), x1.detach().cpu().double()
    centre = torch.cat([x0, x1]).mean(0)
    cost = -((x0 - centre) @ (x1 - centre).T).numpy()
    cost -= cost.min()
    return cost


def ot_permutation(x0: torch.Tensor, x1: torch.Tensor, solver: str = "shortest_path") -> np.ndarray:
    """The permutation p minimising sum_i |x0_i - x1_{p(i)}|^2 (equal batch sizes).

    ``shortest_path`` (default): :func:`.assignment.solve_inner_product_assignment`
    (Jonker-Volgenant from coarse-to-fine potentials; about 12x faster than POT on 256 points,
    benchmarks/bench_flows.py); ``emd``: POT's network simplex, whose optimal
    vertex of the assignment polytope is a permutation matrix; ``assignment``: scipy's
    ``linear_sum_assignment`` (Crouse 2016). All three solve the equivalent inner-product cost
    of :func:`pairing_cost` and reach the same optimal cost (the tests check it)."""
    if len(x0) != len(x1):
        raise ValueError(f"the exact coupling needs equal batches, got {len(x0)} and {len(x1)}")
    if solver == "shortest_path":
        x = x0.detach().cpu().double().numpy()
        y = x1.detach().cpu().double().numpy()
        return assignment.solve_inner_product_assignment(x, y).permutation
    from scipy.optimize import linear_sum_assignment  # scipy.optimize: ~13 MB, rarely used

    cost = pairing_cost(x0, x1)
    if solver == "assignment":
        return linear_sum_assignment(cost)[1]
    if solver != "emd":
        raise ValueError(f"solver must be 'shortest_path', 'emd' or 'assignment', got {solver!r}")
    n = len(cost)
    uniform = np.full(n, 1 / n)
    import ot  # POT pulls in scikit-learn and scipy.stats: loaded only when used

    plan = ot.emd(uniform, uniform, cost, check_marginals=False)
    perm = plan.argmax(1)
    if len(np.unique(perm)) != n:  # a degenerate vertex: fall back to the assignment solver
        perm = linear_sum_assignment(cost)[1]
    return perm


def sinkhorn_partners(
    x0: torch.Tensor, x1: torch.Tensor, reg: float, rng: np.random.Generator
) -> np.ndarray:
    """For each x0_i a partner index j drawn from row i of the entropic OT plan (Cuturi 2013).
    ``reg`` is relative to the mean cost, so one value fits every scale."""
    import ot  # POT pulls in scikit-learn and scipy.stats: loaded only when used

    cost = squared_distances(x0, x1)
    n, m = cost.shape
    plan = ot.sinkhorn(np.full(n, 1 / n), np.full(m, 1 / m), cost / cost.mean(), reg)
    rows = plan / plan.sum(1, keepdims=True)
    cumulative = rows.cumsum(1)
    draws = rng.random((n, 1)) * cumulative[:, -1:]
    return (cumulative < draws).sum(1).clip(max=m - 1)


def make_pairing(coupling: str, rng: np.random.Generator, sinkhorn_reg: float = 0.05):
    """The pairing rule of one training run: None keeps the pairs as drawn (independent);
    otherwise a function (x0, x1) -> indices j such that (x0_i, x1_j) are the training pairs."""
    check_coupling(coupling)
    if coupling == "independent":
        return None
    if coupling == "ot":
        return ot_permutation
    return lambda x0, x1: sinkhorn_partners(x0, x1, sinkhorn_reg, rng)


def pair_within_conditions(pairing, x0: torch.Tensor, x1: torch.Tensor,
                           condition: torch.Tensor | None) -> np.ndarray:
    """Indices j such that (x0_i, x1_j) are the coupled pairs, each pair inside one condition:
    x0_i was drawn for the condition of x1_i (the learned source of "Better Source, Better
    Flow" draws x0 from x1's cluster), so the coupling may only exchange partners within a
    condition, or a pair would no longer match the condition its x0 was drawn for. Each
    condition's points are coupled by ``pairing`` among themselves (conditional minibatch OT);
    ``condition`` None couples the whole batch."""
    if condition is None:
        return np.asarray(pairing(x0, x1))
    labels = condition.detach().cpu().numpy()
    j = np.arange(len(labels))
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        index = torch.as_tensor(members, device=x0.device)
        j[members] = members[np.asarray(pairing(x0[index], x1[index]))]
    return j

