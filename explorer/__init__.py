"""explorer: see how the choice of divergence, or of source distribution, shapes what a generative
model or an aligned policy becomes.

Explorers: ``explorer.modes``, ``explorer.frontier``, ``explorer.flows``, ``explorer.manifold``;
shared core: ``explorer.divergences`` (the f-divergence registry) and ``explorer.device``.

Importing the package sets nothing process-wide: torch's and BLAS's thread counts are set when
the first app starts or the first compute call picks its device (``device.ensure_threads``).
"""

from ._deferred import defer_iri_grammar

defer_iri_grammar()  # before plotly -> nbformat -> jsonschema load it: 2-3 s and 22 MB per kernel

from . import device, divergences  # noqa: E402

__version__ = "0.1.0"
__all__ = ["device", "divergences", "__version__"]
