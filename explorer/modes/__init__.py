"""The modes explorer: mode-seeking vs mass-covering under every f-divergence (notebook 01).

Public API (kept stable)::

    from explorer import modes
    p = modes.mixture([-2, 2], [0.5, 0.5], [0.5, 0.5])
    q = modes.fit(p, divergence="reverse_kl")        # q.mean, q.std, q.value, q.local_optima
    modes.fit(p, family="mixture", components=2, divergence="js")   # q.means, q.stds, q.weights
    app = modes.ModesApp(); app.set(divergence="forward_kl")
"""

from .analysis import (
    alpha_sweep,
    entropy,
    gradient_weights,
    landscape,
    mode_coverage,
    monte_carlo_convergence,
    score_table,
    separation_sweep,
)
from .families import MAX_COMPONENTS
from .fitting import FitResult, Optimum, adam_path, fit, make_objective, monte_carlo_value
from .targets import (
    PRESETS_1D,
    PRESETS_2D,
    discrete,
    mixture,
    mixture2d,
    preset_1d,
    preset_2d,
    teacher,
)

__all__ = [
    "MAX_COMPONENTS", "PRESETS_1D", "PRESETS_2D", "FitResult", "ModesApp", "Optimum",
    "adam_path", "alpha_sweep", "discrete", "entropy", "fit", "gradient_weights", "landscape",
    "make_objective", "mixture", "mixture2d", "mode_coverage", "monte_carlo_convergence",
    "monte_carlo_value", "preset_1d", "preset_2d", "score_table", "separation_sweep", "teacher",
]


def __getattr__(name):
    # the app pulls in ipywidgets and plotly; import it only when asked for
    if name == "ModesApp":
        from .app import ModesApp

        return ModesApp
    raise AttributeError(f"module 'explorer.modes' has no attribute {name!r}")
