"""explorer: see how the choice of divergence, or of source distribution, shapes what a generative
model or an aligned policy becomes.

Explorers: ``explorer.modes``, ``explorer.frontier``, ``explorer.flows``, ``explorer.manifold``;
shared core: ``explorer.divergences`` (the f-divergence registry) and ``explorer.device``.
"""

from . import device, divergences

device.configure_threads()

__version__ = "0.1.0"
__all__ = ["device", "divergences", "__version__"]
