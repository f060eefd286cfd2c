"""The flows explorer: is there a better source than the Gaussian for flow matching?

Public API::

    from explorer.flows import target, source, train, sample, w2, FlowsApp
    x1 = target("moons", n=1000, seed=0)
    x0 = source("norm_aligned", n=1000, seed=0, target="hd_simulation", base="hd_gaussian")
    model = train("moons", "gaussian", coupling="ot", iters=2000, batch_size=256, seed=0)
    x = sample(model, n=1000, steps=4, solver="euler")
    w2(x, x1)
"""

from .metrics import w2
from .sampling import sample
from .sources import source
from .targets import target
from .training import train

__all__ = ["FlowsApp", "sample", "source", "target", "train", "w2"]


def __getattr__(name):
    if name == "FlowsApp":  # widgets load only when the app is asked for
        from .app import FlowsApp

        return FlowsApp
    raise AttributeError(f"module 'explorer.flows' has no attribute {name!r}")
