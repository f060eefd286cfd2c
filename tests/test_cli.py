import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_info_prints_device_and_threads():
    out = subprocess.run(
        [sys.executable, "-m", "explorer", "info"], capture_output=True, text=True, check=True
    )
    assert "device" in out.stdout and "torch threads   1" in out.stdout


def test_unknown_command_fails_with_usage():
    out = subprocess.run(
        [sys.executable, "-m", "explorer", "nonsense"], capture_output=True, text=True
    )
    assert out.returncode != 0 and "invalid choice" in out.stderr


def test_bench_runs_the_welcome_benchmark_quickly(tmp_path):
    """From any folder: the command runs ``python -m benchmarks.run`` in the repository root."""
    out = subprocess.run(
        [sys.executable, "-m", "explorer", "bench", "--quick", "--only", "welcome"],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    )
    assert "welcome: q scale move" in out.stdout


def test_benchmarks_run_as_modules_without_path_hacks():
    """``python -m benchmarks.bench_x`` from the root needs no sys.path edit, and none is made."""
    sources = [*sorted((ROOT / "benchmarks").glob("*.py")), ROOT / "explorer" / "__main__.py"]
    edits = [path.name for path in sources if "sys.path" in path.read_text()]
    assert not edits, f"sys.path edited in {edits}"
    out = subprocess.run([sys.executable, "-m", "benchmarks.run", "--help"], capture_output=True,
                         text=True, check=True, cwd=ROOT)
    assert "--only" in out.stdout
