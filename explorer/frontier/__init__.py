"""The frontier explorer: what reward each alignment method buys per nat of KL, exactly.

Public API: :func:`tilted`, :func:`best_of_n`, :func:`f_regularized`, :func:`kl`,
:func:`win_rate`, the vectorised curves :func:`kl_frontier` and :func:`bon_frontier`, and the app
:class:`FrontierApp`. More in the submodules: ``exact`` (measures, InfAlign, reward transforms),
``scenario``, ``trained``, ``limits`` (Gao et al. fits, the memoryless-LM limit).
"""

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
    "FrontierApp",
    "best_of_n",
    "bon_frontier",
    "f_regularized",
    "kl",
    "kl_frontier",
    "tilted",
    "win_rate",
]


def __getattr__(name):
    if name == "FrontierApp":  # the app loads ipywidgets and plotly: imported only when asked for
        from .app import FrontierApp

        return FrontierApp
    raise AttributeError(f"module 'explorer.frontier' has no attribute {name!r}")
