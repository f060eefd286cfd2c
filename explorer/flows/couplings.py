"""How a minibatch of source points x0 is paired with a minibatch of data points x1.

* ``independent``: the pairs as drawn (I-CFM, Lipman et al. 2023; Tong et al. 2024, Sec. 3.2);
* ``ot``: the exact minibatch optimal-transport coupling for the squared distance (OT-CFM,
  Tong et al. 2024, "Improving and generalizing flow-based generative models with minibatch
  optimal transport", Sec. 3.3; Pooladian et al. 2023), a permutation found by the shortest
  augmenting path solver of :mod:`.assignment`, warm-started across the minibatches of a run
  (:class:`ExactOTCoupling`); POT's network simplex ``ot.emd`` and scipy's assignment solver
  give the same optimum and are kept as independent checks;
* ``sinkhorn``: the entropic plan (Cuturi 2013) by ``ot.sinkhorn``, each x0 given a partner
  drawn from its row of the plan.
"""

from __future__ import annotations

from collections import deque

import numpy as np
import ot
import torch
from scipy.optimize import linear_sum_assignment

from .assignment import (
    inner_product_c_transform,
    solve_assignment,
    solve_inner_product_assignment,
)

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
    """|x0_i - x1_j|^2 for every pair, in float64 (torch.cdist: one matrix product)."""
    x0, x1 = x0.detach().double(), x1.detach().double()
    return torch.cdist(x0, x1).pow_(2).cpu().numpy()


def pairing_cost(x0: torch.Tensor, x1: torch.Tensor) -> np.ndarray:
    """The cost -<x0_i, x1_j> (shifted to be >= 0), in float64. For a *permutation* p,
    sum_i |x0_i - x1_p(i)|^2 = sum_i |x0_i|^2 + sum_j |x1_j|^2 - 2 sum_i <x0_i, x1_p(i)>, so
    this cost has the same optimal permutations as the squared distance; it is one matrix
    product, and the network simplex solves it a little faster."""
    cost = -(x0.detach().double() @ x1.detach().double().T).cpu().numpy()
    cost -= cost.min()
    return cost


def ot_permutation(x0: torch.Tensor, x1: torch.Tensor, solver: str = "shortest_path",
                   column_potential: np.ndarray | None = None) -> np.ndarray:
    """The permutation p minimising sum_i |x0_i - x1_{p(i)}|^2 (equal batch sizes).

    ``shortest_path`` (default): :func:`.assignment.solve_assignment` (Jonker-Volgenant), with
    optional warm-start ``column_potential``; ``emd``: POT's network simplex, whose optimal
    vertex of the assignment polytope is a permutation matrix; ``assignment``: scipy's
    ``linear_sum_assignment`` (Crouse 2016). All three solve the equivalent inner-product cost
    of :func:`pairing_cost` and reach the same optimal cost (the tests check it)."""
    if len(x0) != len(x1):
        raise ValueError(f"the exact coupling needs equal batches, got {len(x0)} and {len(x1)}")
    if solver == "shortest_path":
        return solve_assignment(pairing_cost(x0, x1), column_potential).permutation
    cost = pairing_cost(x0, x1)
    if solver == "assignment":
        return linear_sum_assignment(cost)[1]
    if solver != "emd":
        raise ValueError(f"solver must be 'shortest_path', 'emd' or 'assignment', got {solver!r}")
    n = len(cost)
    uniform = np.full(n, 1 / n)
    plan = ot.emd(uniform, uniform, cost, check_marginals=False)
    perm = plan.argmax(1)
    if len(np.unique(perm)) != n:  # a degenerate vertex: fall back to the assignment solver
        perm = linear_sum_assignment(cost)[1]
    return perm


class ExactOTCoupling:
    """The exact minibatch OT coupling of one training run, warm-started from its last batches.

    Every minibatch is solved exactly (:func:`.assignment.solve_assignment`); what carries over
    is only the starting point: the column potentials of a new batch are the c-transforms of the
    row potentials of the last ``memory`` batches, averaged (:func:`inner_product_c_transform`).
    The batches of a run come from the same two distributions, so that guess is close: on
    256-point batches (Gaussian -> moons, one core) the solve takes about 1.3 ms against 2.5 ms
    from zero, 4.6 ms for POT's network simplex and 7.5 ms for scipy (benchmarks/bench_flows.py,
    same batches, same optimal cost)."""

    def __init__(self, memory: int = 4):
        self.history: deque = deque(maxlen=memory)

    def __call__(self, x0: torch.Tensor, x1: torch.Tensor) -> np.ndarray:
        if len(x0) != len(x1):
            raise ValueError(f"the exact coupling needs equal batches, got {len(x0)} and "
                             f"{len(x1)}")
        a = x0.detach().cpu().double().numpy()
        b = x1.detach().cpu().double().numpy()
        guess = None
        if self.history and all(len(x) == len(a) for x, _ in self.history):
            guess = inner_product_c_transform(np.stack([x for x, _ in self.history]),
                                              np.stack([u for _, u in self.history]), b)
        result = solve_inner_product_assignment(a, b, guess)
        u = result.row_potential
        self.history.append((a, u - u.mean()))
        return result.permutation


def sinkhorn_partners(
    x0: torch.Tensor, x1: torch.Tensor, reg: float, rng: np.random.Generator
) -> np.ndarray:
    """For each x0_i a partner index j drawn from row i of the entropic OT plan (Cuturi 2013).
    ``reg`` is relative to the mean cost, so one value fits every scale."""
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
        return ExactOTCoupling()
    return lambda x0, x1: sinkhorn_partners(x0, x1, sinkhorn_reg, rng)


def partners(
    coupling: str, x0: torch.Tensor, x1: torch.Tensor, rng: np.random.Generator,
    sinkhorn_reg: float = 0.05,
) -> np.ndarray | None:
    """Indices j such that (x0_i, x1_j) are the training pairs of one minibatch; None means
    keep the order."""
    pairing = make_pairing(coupling, rng, sinkhorn_reg)
    return None if pairing is None else pairing(x0, x1)
