"""Driving JupyterLab (and Voilà) in Debian's Chromium through Playwright, for the browser tests.

Never runs ``playwright install``: the browser is /usr/bin/chromium (apt package ``chromium``).
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import json
import os
import re
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
ARTIFACTS = ROOT / "artifacts" / "browser"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_http(url: str, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except Exception:  # noqa: BLE001 - not up yet
            time.sleep(0.5)
    raise TimeoutError(f"nothing answered at {url} within {timeout:.0f} s")


@contextlib.contextmanager
def jupyterlab_server(tmp_home: Path, root: Path = NOTEBOOKS):
    """A JupyterLab on 127.0.0.1 serving ``root`` with a throwaway token; yields (base_url, token)."""
    port, token = free_port(), secrets.token_hex(16)
    env = dict(
        os.environ,
        JUPYTER_CONFIG_DIR=str(tmp_home / "config"),
        JUPYTER_DATA_DIR=str(tmp_home / "data"),
        JUPYTER_RUNTIME_DIR=str(tmp_home / "runtime"),
    )
    env["JUPYTER_PATH"] = os.pathsep.join(
        filter(None, [str(Path(sys.prefix) / "share" / "jupyter"), env.get("JUPYTER_PATH")])
    )
    command = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        f"--port={port}",
        "--ip=127.0.0.1",
        f"--ServerApp.root_dir={root}",
        f"--IdentityProvider.token={token}",
        "--LabApp.expose_app_in_browser=True",
        "--ServerApp.disable_check_xsrf=True",
        "--LabApp.news_url=",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")
    labconfig = tmp_home / "config" / "labconfig"
    labconfig.mkdir(parents=True, exist_ok=True)
    # no "fetch Jupyter news?" prompt: nothing may reach the network, and it hides the figures
    (labconfig / "page_config.json").write_text(
        '{"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": true}}'
    )
    base = f"http://127.0.0.1:{port}"
    with _serving(command, env, tmp_home / "jupyterlab.log", f"{base}/api/status?token={token}"):
        yield base, token


@contextlib.contextmanager
def _serving(command: list[str], env: dict, log_path: Path, ready_url: str, cwd=None, timeout=90.0):
    """Run a server process, wait until ``ready_url`` answers, and stop it afterwards."""
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=cwd)
        try:
            wait_for_http(ready_url, timeout=timeout)
            yield
        finally:
            process.terminate()
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()


@contextlib.contextmanager
def voila_server(notebook: str, tmp_home: Path, root: Path = NOTEBOOKS):
    """Voilà serving one notebook (in ``root``) on 127.0.0.1; yields its URL."""
    port = free_port()
    env = dict(
        os.environ,
        JUPYTER_CONFIG_DIR=str(tmp_home / "config"),
        JUPYTER_RUNTIME_DIR=str(tmp_home / "runtime"),
    )
    command = [
        sys.executable,
        "-m",
        "voila",
        "--no-browser",
        f"--port={port}",
        "--Voila.ip=127.0.0.1",
        str(root / notebook),
        "--VoilaConfiguration.file_allowlist=['.*']",
    ]
    url = f"http://127.0.0.1:{port}/"
    # a static file says the server is up; asking for the notebook page itself would start a
    # second kernel running the whole notebook alongside the browser's
    ready = f"{url}voila/static/favicon.ico"
    with _serving(command, env, tmp_home / "voila.log", ready, cwd=root, timeout=120):
        yield url


@contextlib.contextmanager
def chromium(tmp_home: Path, check_tracebacks: bool = True):
    """Headless Chromium; on leaving, fails if the kernel sent a traceback to the page or the
    page asked a host other than the server (unless ``check_tracebacks`` is false: the
    benchmark only counts them)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(tmp_home / "chromium-profile"),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": 1500, "height": 1100},
        )
        page = context.pages[0] if context.pages else context.new_page()
        page.console_messages_seen = []  # what the page logged, for screenshot_on_failure
        page.on("console", lambda m: page.console_messages_seen.append(f"[{m.type}] {m.text}"))
        page.kernel_tracebacks = []  # kernel-side tracebacks that reached the page
        page.foreign_requests = []  # requests to any host but the local server
        page.on("request", lambda request: record_foreign_request(page, request.url))
        page.on("websocket", lambda ws: watch_for_kernel_tracebacks(page, ws))
        try:
            yield page
            if check_tracebacks:
                assert_no_kernel_tracebacks(page)
                assert_only_the_server_was_asked(page)
        finally:
            context.close()


#: what a kernel message carrying a Python traceback looks like on the wire (an ``error``
#: reply, or a traceback printed to the kernel's stderr, e.g. by a failing widget callback,
#: which JupyterLab shows only in its log console)
KERNEL_TRACEBACK = re.compile(rb'Traceback \(most recent call last\)|"msg_type":\s*"error"')


def record_foreign_request(page, url: str) -> None:
    """Remember ``url`` if it asks a host other than the local server (a workshop may have no
    network; the page must need none)."""
    host = re.match(r"^(?:https?|wss?)://([^/:]+)", url)
    if host and host.group(1) not in ("127.0.0.1", "localhost"):
        page.foreign_requests.append(url)


def assert_only_the_server_was_asked(page) -> None:
    """Fail if the page requested any host but the local server (explorer's Voila template
    drops the font-awesome CDN links of Voila's own)."""
    foreign = list(page.foreign_requests)
    assert foreign == [], f"the page asked hosts other than the server: {foreign}"


def watch_for_kernel_tracebacks(page, websocket) -> None:
    """Record every frame from the kernel's websocket that carries a traceback."""

    def received(payload) -> None:
        data = payload.encode() if isinstance(payload, str) else bytes(payload)
        if KERNEL_TRACEBACK.search(data):
            page.kernel_tracebacks.append(data.decode("utf-8", "replace"))

    websocket.on("framereceived", received)


def assert_no_kernel_tracebacks(page) -> None:
    """Fail with the first kernel-side traceback that the page received, if any."""
    tracebacks = getattr(page, "kernel_tracebacks", [])
    assert not tracebacks, (
        f"{len(tracebacks)} kernel message(s) carried a traceback; the first:\n"
        + tracebacks[0][-3000:]
    )


def run_all_cells(
    page, base: str, token: str, notebook: str, timeout_ms: int = 180_000, wait_for_cells=True
) -> None:
    open_notebook(page, base, token, notebook)
    page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
    if wait_for_cells:
        wait_for_cells_to_finish(page, timeout_ms)


def open_notebook(page, base: str, token: str, notebook: str) -> None:
    """Open ``notebook`` in JupyterLab and wait until its kernel is idle (nothing run yet)."""
    page.goto(f"{base}/lab/tree/{notebook}?token={token}")
    page.wait_for_function(
        "window.jupyterapp && window.jupyterapp.shell.currentWidget", timeout=90_000
    )
    page.wait_for_selector(".jp-Notebook", timeout=60_000)
    with contextlib.suppress(Exception):  # a notebook without a kernelspec asks for one
        page.locator(".jp-Dialog button", has_text="Select").first.click(timeout=5000)
    # wait until the kernel is idle before running
    page.wait_for_function(
        "(() => { const w = window.jupyterapp.shell.currentWidget;"
        " return w && w.sessionContext && w.sessionContext.session &&"
        " w.sessionContext.session.kernel && w.sessionContext.session.kernel.status === 'idle'; })()",
        timeout=90_000,
    )
    dismiss_news_popup(page)


def wait_for_cells_to_finish(page, timeout_ms: int = 180_000) -> None:
    """Wait until every code cell has run (a number in its prompt, no ``*``)."""
    page.wait_for_function(
        "(() => { const cells = document.querySelectorAll('.jp-CodeCell .jp-InputPrompt');"
        " return cells.length > 0 && [...cells].every(c => !c.textContent.includes('*')"
        " && /\\[\\d+\\]/.test(c.textContent)); })()",
        timeout=timeout_ms,
    )


def dismiss_news_popup(page) -> None:
    """JupyterLab asks once whether to fetch news; answer no (nothing may reach the network).
    :func:`jupyterlab_server` switches the question off, so this only answers one already
    shown, without waiting for it."""
    button = page.locator(".jp-Notification-Toast-Content button", has_text="No")
    with contextlib.suppress(Exception):
        if button.count():
            button.first.click(timeout=3000)


def error_outputs(page) -> list[str]:
    return page.eval_on_selector_all(
        ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']",
        "els => els.map(e => e.textContent).filter(t => /Error|Traceback/.test(t))",
    )


_SIGNATURE_JS = (
    "const plots = document.querySelectorAll('.js-plotly-plot');"
    " const p = plots[i]; if (!p) return '';"
    " return [...p.querySelectorAll('path.js-line, path.point, .gtitle, g.trace path')]"
    ".map(e => e.getAttribute('d') || e.textContent).join('|');"
)


def plot_signature(page, index: int = 0) -> str:
    """The SVG path data and title of the index-th plotly figure on the page."""
    return page.evaluate(f"(i) => {{ {_SIGNATURE_JS} }}", index)


def wait_for_plot_change(page, index: int, before: str, timeout_ms: int = 90_000) -> str:
    """Wait until the index-th plotly figure differs from the signature ``before``."""
    page.wait_for_function(
        f"([i, old]) => {{ const now = (() => {{ {_SIGNATURE_JS} }})(); return now && now !== old; }}",
        arg=[index, before],
        timeout=timeout_ms,
    )
    return plot_signature(page, index)


def wait_for_plot_text(page, index: int, text: str, timeout_ms: int = 120_000) -> str:
    """Wait until the index-th plotly figure shows ``text`` (in a title, legend or label): the
    state a change must lead to, however slowly, rather than any change at all (a late redraw
    of the old state is a change too)."""
    page.wait_for_function(
        f"([i, text]) => {{ const now = (() => {{ {_SIGNATURE_JS} }})();"
        " const plot = document.querySelectorAll('.js-plotly-plot')[i];"
        " return plot && now && plot.textContent.includes(text); }",
        arg=[index, text],
        timeout=timeout_ms,
    )
    return plot_signature(page, index)


def press_slider(page, label: str, key: str = "ArrowRight", times: int = 3) -> None:
    """Move the ipywidgets slider whose description is ``label`` with the keyboard."""
    handle = page.locator(".widget-slider", has_text=label).locator(".noUi-handle").first
    handle.wait_for(state="visible", timeout=30_000)
    handle.scroll_into_view_if_needed()
    handle.focus()
    for _ in range(times):
        handle.press(key)


def slider_readouts(page, label: str) -> list[str]:
    """The readouts of every ipywidgets slider whose description is exactly ``label``."""
    return page.eval_on_selector_all(
        ".widget-slider",
        """(els, label) => els
            .filter(e => e.querySelector('.widget-label')?.textContent.trim() === label)
            .map(e => e.querySelector('.widget-readout')?.textContent.trim())""",
        label,
    )


def screenshot(page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=False)
    return path


@contextlib.contextmanager
def screenshot_on_failure(page, name: str):
    """Save what the page showed and logged when a browser test failed (in artifacts/browser/)."""
    try:
        yield
    except BaseException:
        with contextlib.suppress(Exception):
            screenshot(page, name)
            log = "\n".join(getattr(page, "console_messages_seen", []))
            (ARTIFACTS / f"{name}_console.txt").write_text(log)
        raise


def all_plot_signatures(page) -> list[str]:
    count = page.locator(".js-plotly-plot").count()
    return [plot_signature(page, i) for i in range(count)]


def wait_for_any_plot_change(page, before: list[str], timeout_ms: int = 120_000) -> list[str]:
    """Wait until some plotly figure on the page differs from ``before`` (a list of signatures)."""
    page.wait_for_function(
        f"""(old) => {{ const n = document.querySelectorAll('.js-plotly-plot').length;
            for (let i = 0; i < n; i++) {{ const now = (() => {{ {_SIGNATURE_JS} }})();
                if (now !== old[i]) return true; }} return false; }}""",
        arg=before,
        timeout=timeout_ms,
    )
    return all_plot_signatures(page)


def select_dropdown(page, label: str, option: str) -> None:
    """Choose ``option`` (its value or label) in the ipywidgets Dropdown described by ``label``."""
    select = page.locator(".widget-dropdown", has_text=label).locator("select").first
    select.scroll_into_view_if_needed()
    try:
        select.select_option(label=option, timeout=5000)
    except Exception:  # noqa: BLE001 - fall back to the option's value
        select.select_option(value=option, timeout=5000)


#: The page's kernel connection: the notebook's in JupyterLab, the widget manager's in Voila.
KERNEL_OF_PAGE_JS = """const app = window.jupyterapp;
    const kernel = app?.shell?.currentWidget?.sessionContext?.session?.kernel  // JupyterLab
        ?? app?._widgetManager?.kernel;                                      // Voila"""

#: Whether everything the kernel sent has been applied and drawn: the page's kernel connection
#: has processed the kernel's "idle" (JupyterLab and Voila handle the kernel's messages in
#: order, a widget's update included), no long work runs (every Runner's Cancel is disabled),
#: and every plotly figure has drawn, with no drawing step pending.
SETTLED_JS = f"""() => {{ {KERNEL_OF_PAGE_JS}
    if (!kernel || kernel.status !== 'idle') return false;
    const working = [...document.querySelectorAll('button')]
        .some(b => b.textContent.trim() === 'Cancel' && !b.disabled);
    return !working && [...document.querySelectorAll('.js-plotly-plot')]
        .every(plot => plot._fullLayout && !(plot._promises && plot._promises.length)); }}"""


def wait_until_settled(page, timeout_ms: int = 120_000) -> None:
    """Wait until the page shows the kernel's current state: the kernel is idle as the page
    sees it, no long work runs and every plotly figure has finished drawing (a state, not a
    quiet period: a slow machine only makes it take longer)."""
    page.wait_for_function(SETTLED_JS, timeout=timeout_ms, polling=100)


@dataclasses.dataclass
class KernelMessage:
    """One Jupyter message on a kernel websocket, as the page received or sent it."""

    sender: str  # "kernel" or "page"
    channel: str
    msg_type: str
    content: dict
    size: int  # bytes on the wire

    @property
    def comm_id(self) -> str | None:
        return self.content.get("comm_id")

    @property
    def state(self) -> dict:
        """The widget state a comm message carries (``{}`` if none)."""
        return (self.content.get("data") or {}).get("state") or {}


def parse_kernel_frame(payload: bytes | str, sender: str) -> KernelMessage | None:
    """A kernel websocket frame as a :class:`KernelMessage`: JSON, or Jupyter's binary
    ``v1.kernel.websocket.jupyter.org`` framing (offsets, then channel, header, parent header,
    metadata, content and buffers). ``None`` for anything else."""
    data = payload.encode() if isinstance(payload, str) else bytes(payload)
    try:
        if data[:1] == b"{":
            message = json.loads(data)
            channel, header, content = message.get("channel", ""), message["header"], message["content"]
        else:
            count = int.from_bytes(data[:8], "little")
            offsets = [int.from_bytes(data[8 + 8 * i:16 + 8 * i], "little") for i in range(count)]
            parts = [data[start:end] for start, end in zip(offsets, offsets[1:])]
            channel, header, content = parts[0].decode(), json.loads(parts[1]), json.loads(parts[4])
    except (ValueError, KeyError, IndexError):
        return None
    return KernelMessage(sender, channel, header.get("msg_type", ""), content, len(data))


class CommTraffic:
    """Every Jupyter message on the page's kernel websockets, in order (what the kernel sent the
    page and what the page sent the kernel), to count what a control move costs per figure.

    A frame is kept as it came and parsed when the messages are read: parsing while a control
    move is timed would take the machine's time from the kernel and the browser measured."""

    def __init__(self, page) -> None:
        self._frames: list[tuple[bytes | str, str]] = []
        self._parsed: list[KernelMessage | None] = []
        page.on("websocket", self._watch)

    def _watch(self, websocket) -> None:
        for event, sender in (("framereceived", "kernel"), ("framesent", "page")):
            websocket.on(event, lambda payload, sender=sender: self._frames.append((payload,
                                                                                    sender)))

    def _parse(self, end: int) -> list[KernelMessage | None]:
        for payload, sender in self._frames[len(self._parsed):end]:
            self._parsed.append(parse_kernel_frame(payload, sender))
        return self._parsed

    @property
    def messages(self) -> list[KernelMessage]:
        """The messages so far (frames that are not Jupyter messages left out)."""
        return [m for m in self._parse(len(self._frames)) if m is not None]

    def mark(self) -> int:
        """A position in the traffic: :meth:`since` returns what came after it."""
        return len(self._frames)

    def since(self, mark: int) -> list[KernelMessage]:
        return [m for m in self._parse(len(self._frames))[mark:] if m is not None]

    def plotly_comms(self) -> set[str]:
        """The comms of plotly figure widgets: opened with a figure, or sent a figure update."""
        comms = set()
        for message in self.messages:
            opened = message.msg_type == "comm_open" and "_widget_data" in message.state
            if opened or "_py2js_update" in message.state:
                comms.add(message.comm_id)
        return comms

    def figure_messages(self, mark: int) -> dict[str, list[KernelMessage]]:
        """The comm messages to or from plotly figure widgets after ``mark``, per comm; not
        ipywidgets' count of a widget's views (``_view_count``: the page reports a view it has
        made, the kernel echoes it), which carries nothing of the figure and whose timing is
        the page's: under load, a view made before ``mark`` may report after it (CI, issue 16)."""
        figures = self.plotly_comms()
        found: dict[str, list[KernelMessage]] = {}
        for message in self.since(mark):
            if message.msg_type == "comm_msg" and message.comm_id in figures:
                if set(message.state) == {"_view_count"}:
                    continue
                found.setdefault(message.comm_id, []).append(message)
        return found


#: JupyterLab's (and Voila's) own static files: the byte budget excludes them
OWN_STATIC = re.compile(r"^/(static/|lab/extensions/@jupyter|lab/extensions/@voila|voila/static/"
                        r"|voila/labextensions/@jupyter|voila/labextensions/@voila|lab/api/)")


class ByteCounter:
    """Bytes received by one page, from the Chrome DevTools Protocol's Network events:
    websocket frames (never cacheable) and HTTP responses, sorted into uncacheable, cacheable
    and JupyterLab's own static files (see :func:`cacheable`)."""

    def __init__(self, page) -> None:
        self.frames: list[int] = []
        self.responses: list[dict] = []
        self._pending: dict[str, dict] = {}
        session = page.context.new_cdp_session(page)
        session.send("Network.enable")
        session.on("Network.responseReceived", self._response)
        session.on("Network.loadingFinished", self._finished)
        session.on("Network.webSocketFrameReceived", self._frame)

    @property
    def websocket(self) -> int:
        return sum(self.frames)

    def _total(self, kind: str) -> int:
        return sum(r["size"] for r in self.responses if r["kind"] == kind)

    @property
    def uncacheable(self) -> int:
        return self._total("uncacheable")

    @property
    def cacheable(self) -> int:
        return self._total("cacheable")

    @property
    def own_static(self) -> int:
        return self._total("own static")

    def _response(self, event) -> None:
        response = event["response"]
        headers = {k.lower(): v for k, v in response.get("headers", {}).items()}
        self._pending[event["requestId"]] = {
            "url": response["url"], "headers": headers, "status": response.get("status"),
            "from_cache": bool(response.get("fromDiskCache") or response.get("fromMemoryCache")),
        }

    def _finished(self, event) -> None:
        response = self._pending.pop(event["requestId"], None)
        if response is None:
            return
        path = re.sub(r"^[a-z]+://[^/]+", "", response["url"])
        if OWN_STATIC.match(path):
            kind = "own static"
        else:
            kind = "cacheable" if cacheable(response["headers"]) else "uncacheable"
        self.responses.append({**response, "size": int(event.get("encodedDataLength", 0)),
                               "kind": kind})

    def _frame(self, event) -> None:
        frame = event["response"]
        data = frame.get("payloadData", "")
        binary = frame.get("opcode") == 2
        self.frames.append(len(base64.b64decode(data)) if binary else len(data.encode()))


def cacheable(headers: dict) -> bool:
    """Whether a browser may keep a response: not ``no-store``, and either fresh for a while
    (``max-age`` > 0, ``Expires``) or revalidatable (``ETag``, ``Last-Modified``: a 304 then)."""
    control = headers.get("cache-control", "")
    if "no-store" in control:
        return False
    max_age = re.search(r"max-age=(\d+)", control)
    fresh = (max_age and int(max_age.group(1)) > 0) or "expires" in headers
    return bool(fresh or "etag" in headers or "last-modified" in headers)
