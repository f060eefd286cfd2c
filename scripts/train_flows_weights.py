"""Train the flows explorer's default comparison grids and save their weights (float16 .npz)
under explorer/flows/data/. The notebook never runs this: it loads the saved weights, and the
app retrains the same grid with one click. The weights shipped now were made by this script on
2026-12-06 in 206 s on a busy shared 2-core CPU (extras 47 s, moons 86 s, hd_simulation 73 s).

    python scripts/train_flows_weights.py            # both grids and the preset models
    python scripts/train_flows_weights.py moons extras
"""

from __future__ import annotations

import sys
import time

from explorer.flows.compute import (
    DATA_DIR,
    DEFAULT_SETTINGS,
    grid_sources,
    save_models,
    source_options,
    train_grid,
)

GRIDS = ("moons", "hd_simulation")
# Models behind the app's presets that change a source option (both couplings each).
EXTRAS = {
    "hd_simulation": [("directional", {"base": "hd_gaussian", "tau": 0.99})],
    "moons": [("learned", {"var_reg": 0.0, "align_reg": 0.1})],
}


def extras() -> None:
    start = time.perf_counter()
    models = [m for target, sources in EXTRAS.items()
              for m in train_grid(target, sources, settings=DEFAULT_SETTINGS)]
    path = save_models(models, DATA_DIR / "preset_models.npz")
    print(f"extras: {len(models)} models in {time.perf_counter() - start:.0f} s -> {path}")


def main(targets) -> None:
    DATA_DIR.mkdir(exist_ok=True)
    if "extras" in targets:
        extras()
        targets = [t for t in targets if t != "extras"]
    for target in targets:
        sources = [(name, source_options(name, target)) for name in grid_sources(target)]
        start = time.perf_counter()
        models = train_grid(target, sources, settings=DEFAULT_SETTINGS)
        path = save_models(models, DATA_DIR / f"grid_{target}.npz")
        print(f"{target}: {len(models)} models in {time.perf_counter() - start:.0f} s -> {path} "
              f"({path.stat().st_size / 1024:.0f} kB)")


if __name__ == "__main__":
    main(sys.argv[1:] or [*GRIDS, "extras"])
