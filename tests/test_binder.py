"""The Binder configuration provides every runtime dependency and is what repo2docker picks up."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
BINDER = ROOT / "binder"

#: pip name -> conda-forge name, where they differ
CONDA_NAMES = {"torch": "pytorch-cpu", "matplotlib": "matplotlib-base", "pot": "pot"}


def requirement_name(spec: str) -> str:
    return re.split(r"[<>=!~;\[ ]", spec, maxsplit=1)[0].strip().lower()


def runtime_dependencies() -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return [requirement_name(spec) for spec in project["dependencies"]]


def binder_packages() -> set[str]:
    environment = yaml.safe_load((BINDER / "environment.yml").read_text())
    names = set()
    for entry in environment["dependencies"]:
        if isinstance(entry, str):
            names.add(requirement_name(entry))
        elif isinstance(entry, dict) and "pip" in entry:
            names.update(requirement_name(spec) for spec in entry["pip"])
    return names


def test_binder_environment_provides_every_runtime_dependency():
    available = binder_packages()
    missing = [
        name
        for name in runtime_dependencies()
        if name not in available and CONDA_NAMES.get(name) not in available
    ]
    assert not missing, f"binder/environment.yml lacks runtime dependencies: {missing}"


def test_binder_uses_conda_forge_and_the_cpu_build_of_pytorch():
    environment = yaml.safe_load((BINDER / "environment.yml").read_text())
    assert environment["channels"][0] == "conda-forge"
    assert any(str(d).startswith("pytorch-cpu") for d in environment["dependencies"])


def test_post_build_installs_without_resolving_dependencies_and_start_sets_one_thread():
    post_build = (BINDER / "postBuild").read_text()
    assert post_build.splitlines()[0].startswith("#!") and "set -e" in post_build
    assert "--no-deps" in post_build
    start = (BINDER / "start").read_text()
    assert "OMP_NUM_THREADS=1" in start and start.rstrip().endswith('exec "$@"')
    for name in ("postBuild", "start"):
        assert (BINDER / name).stat().st_mode & 0o111, f"binder/{name} must be executable"


def test_repo2docker_picks_up_the_binder_folder():
    if shutil.which("repo2docker") is None:
        try:
            import repo2docker  # noqa: F401
        except ImportError:
            pytest.skip("jupyter-repo2docker is not installed")
    result = subprocess.run(
        [sys.executable, "-m", "repo2docker", "--no-build", "--debug", str(ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    # the generated Dockerfile builds the conda environment from binder/, runs postBuild, and
    # uses binder/start as the entry point
    assert '--file "binder/environment.yml"' in output
    assert "RUN ./binder/postBuild" in output
    assert 'R2D_ENTRYPOINT="${REPO_DIR}/binder/start"' in output


#: pip name -> the module explorer imports; None: a program, not a library (the Lab server)
IMPORT_NAMES = {"pot": "ot", "scikit-learn": "sklearn", "jupyterlab": None}


def test_every_runtime_dependency_is_imported_by_explorer():
    """Declared as used: each runtime dependency is imported somewhere in the package (an
    unused one, such as ipympl or tqdm were, costs every install and every Binder build)."""
    sources = "\n".join(path.read_text() for path in (ROOT / "explorer").rglob("*.py"))
    unused = []
    for name in runtime_dependencies():
        module = IMPORT_NAMES.get(name, name)
        if module is None:
            continue
        if not re.search(rf"^\s*(import|from)\s+{re.escape(module)}\b", sources, re.MULTILINE):
            unused.append(name)
    assert not unused, f"declared in pyproject.toml but imported nowhere: {unused}"


def test_plotly_is_declared_at_the_version_whose_widget_bundle_is_used():
    """The figure widget uses plotly 6's bundle (explorer.ui.plotly_widget): both pip and
    Binder must ask for plotly >= 6."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    environment = yaml.safe_load((BINDER / "environment.yml").read_text())
    conda = [d for d in environment["dependencies"] if isinstance(d, str)]
    assert "plotly>=6" in [spec.replace(" ", "") for spec in project["dependencies"]]
    assert "plotly>=6" in [spec.replace(" ", "") for spec in conda]
