import subprocess
import sys


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


def test_bench_runs_the_welcome_benchmark_quickly():
    out = subprocess.run(
        [sys.executable, "-m", "explorer", "bench", "--quick", "--only", "welcome"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "welcome: slider move" in out.stdout
