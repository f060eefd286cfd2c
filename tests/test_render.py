"""`python -m explorer render` writes every default view of every explorer."""

import os
import subprocess
import sys

import pytest

from explorer.render import APPS, build_app, render


def test_html_render_writes_every_view_and_an_index(tmp_path):
    files = render(tmp_path, png=False)
    names = {f.name for f in files}
    for explorer in APPS:
        for view in build_app(explorer).figures:
            assert f"{explorer}_{view}.html" in names
    index = (tmp_path / "index.html").read_text()
    assert all(explorer in index for explorer in APPS)


def test_unknown_explorer_is_named(tmp_path):
    with pytest.raises(ValueError, match="unknown explorer"):
        render(tmp_path, only=["nope"])


@pytest.mark.skipif(
    not os.path.exists("/usr/bin/chromium"), reason="PNG export needs a local Chromium"
)
def test_png_render_from_the_command_line(tmp_path):
    pytest.importorskip("kaleido")
    out = subprocess.run(
        [sys.executable, "-m", "explorer", "render", "--out", str(tmp_path), "--only", "welcome"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    pngs = sorted(tmp_path.glob("welcome_*.png"))
    assert pngs and all(
        p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 5000 for p in pngs
    )
