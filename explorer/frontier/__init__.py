"""The frontier explorer: reward against KL for alignment methods, exact and trained."""

from .exact import (
    best_of_n,
    bon_frontier,
    f_regularized,
    kl,
    kl_frontier,
    tilted,
    win_rate,
)

__all__ = [
    "best_of_n",
    "bon_frontier",
    "f_regularized",
    "kl",
    "kl_frontier",
    "tilted",
    "win_rate",
]
