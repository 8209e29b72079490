"""A real JupyterLab and a real browser: what the scroller's browser test and benchmark run in.

`Lab` starts ``jupyter lab`` or Notebook 7 (its own free port, a random token, a temporary root
folder, no browser of its own) and Debian's chromium, headless, driven by Playwright
(Playwright's own browser download is not available here; `ensure_chromium` installs
Debian's package where it is missing). Leaving the `with` block shuts every kernel
down and stops the browser and the server, whatever happened inside it. `first_pages`
times what a reviewer waits for before a scroller shows anything: its first page, and
the page after a jump.
"""

from __future__ import annotations

import json
import os
import random
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def ensure_chromium(log=print) -> str | None:
    """None when `CHROMIUM` is there (installing Debian's package first if need be), else why."""
    if os.path.exists(CHROMIUM):
        return None
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return f"{CHROMIUM} is missing and cannot be installed here (needs root and apt-get)"
    log("installing Debian's chromium (apt-get) ...")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for cmd in (
        ["apt-get", "update"],
        ["apt-get", "install", "-y", "--no-install-recommends", "chromium"],
    ):
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            return f"{' '.join(cmd)} failed: {done.stderr.strip()[-500:]}"
    return (
        None
        if os.path.exists(CHROMIUM)
        else f"apt-get installed chromium but {CHROMIUM} is missing"
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


#: app -> (module run with ``python -m``, its config class, the URL path of a notebook).
#: Lab's ``?reset``: a fresh workspace, so notebooks opened earlier are not restored beside it.
APPS = {
    "lab": ("jupyterlab", "LabApp", "/lab/tree/{}?reset&"),
    "notebook": ("notebook", "JupyterNotebookApp", "/notebooks/{}?"),
}


class Lab:
    """A lab with a browser: ``with Lab(root) as lab: lab.run_all(lab.open("nb.ipynb"))``.

    `app` is "lab" (JupyterLab) or "notebook" (Notebook 7).
    """

    def __init__(
        self, root: Path, viewport: tuple[int, int] = (1400, 1000), app: str = "lab"
    ) -> None:
        self.module, self.app_class, self.notebook_url = APPS[app]
        self.root = Path(root)
        self.viewport = viewport
        self.port = _free_port()
        self.token = secrets.token_hex(16)
        self.url = f"http://127.0.0.1:{self.port}"
        self._server: subprocess.Popen | None = None
        self._profile = tempfile.mkdtemp(prefix="mef3lab-chromium-")
        self._playwright = None
        self.context = None

    def __enter__(self) -> Lab:
        try:
            self._start_server()
            from playwright.sync_api import sync_playwright  # noqa: PLC0415 - only browser runs need it

            self._playwright = sync_playwright().start()
            self.context = self._playwright.chromium.launch_persistent_context(
                self._profile,
                executable_path=CHROMIUM,
                headless=True,
                args=CHROMIUM_ARGS,
                viewport={"width": self.viewport[0], "height": self.viewport[1]},
            )
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _start_server(self) -> None:
        cmd = [
            sys.executable,
            "-m",
            self.module,
            "--no-browser",
            f"--port={self.port}",
            "--ip=127.0.0.1",
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={self.root}",
            f"--{self.app_class}.expose_app_in_browser=True",
            "--ServerApp.open_browser=False",
            "--allow-root",
        ]
        # no "get notified about Jupyter news?" toast over the widgets (clicks, screenshots)
        news = self.root / ".jupyter-config/lab/user-settings/@jupyterlab/apputils-extension"
        news.mkdir(parents=True, exist_ok=True)
        (news / "notification.jupyterlab-settings").write_text('{"fetchNews": "false"}')
        env = dict(
            os.environ,
            JUPYTER_CONFIG_DIR=str(self.root / ".jupyter-config"),
            JUPYTER_RUNTIME_DIR=str(self.root / ".jupyter-runtime"),
        )
        # open while the server runs, closed when the lab closes
        self._log = open(self.root / "jupyter-lab.log", "w")  # noqa: SIM115
        self._server = subprocess.Popen(
            cmd,
            cwd=self.root,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 90
        while True:
            try:
                self.api("GET", "/api/status")
                return
            except OSError:
                if self._server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"jupyter lab did not start; see {self.root / 'jupyter-lab.log'}"
                    ) from None
                time.sleep(0.3)

    def api(self, method: str, path: str):
        req = urllib.request.Request(
            f"{self.url}{path}", method=method, headers={"Authorization": f"token {self.token}"}
        )
        with urllib.request.urlopen(req, timeout=10) as r:
            body = r.read()
        return json.loads(body) if body else None

    def open(self, notebook: str):
        """A browser tab with `notebook` (a path under the root) open and its kernel idle."""
        page = self.context.new_page()
        page.goto(
            f"{self.url}{self.notebook_url.format(notebook)}token={self.token}", timeout=90_000
        )
        page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=90_000)
        page.wait_for_function(
            """() => {
            const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
            const session = w && w.sessionContext && w.sessionContext.session;
            return session && session.kernel && session.kernel.status === "idle";
        }""",
            timeout=120_000,
        )
        return page

    @staticmethod
    def run_all(page, timeout_s: float = 240) -> None:
        """Run every cell of the open notebook and wait until the kernel has finished them."""
        page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
        page.wait_for_function(
            """() => {
            const cells = '.jp-Notebook .jp-CodeCell .jp-InputPrompt';
            const prompts = [...document.querySelectorAll(cells)];
            return prompts.length && prompts.every(p => /\\[\\d+\\]/.test(p.textContent));
        }""",
            timeout=timeout_s * 1000,
        )

    def processes(self) -> list:
        """What this lab runs: the jupyter server, its kernels, its profile's chromium processes."""
        import psutil  # noqa: PLC0415 - a test dependency, needed only to check for leftovers

        out = []
        if self._server is not None:
            try:
                server = psutil.Process(self._server.pid)
                out += [server, *server.children(recursive=True)]
            except psutil.NoSuchProcess:
                pass
        for proc in psutil.process_iter(["cmdline"]):
            if any(self._profile in part for part in proc.info["cmdline"] or ()):
                out.append(proc)
        return out

    def shutdown_kernels(self) -> None:
        """Shut down every kernel the server runs (what the notebooks opened so far started)."""
        if self._server is not None and self._server.poll() is None:
            try:
                for kernel in self.api("GET", "/api/kernels") or []:
                    self.api("DELETE", f"/api/kernels/{kernel['id']}")
            except OSError:
                pass

    def close(self) -> None:
        """Shut kernels down, then stop the browser and the server (killing what does not stop)."""
        self.shutdown_kernels()
        if self.context is not None:
            try:
                self.context.close()
            finally:
                self.context = None
        if self._playwright is not None:
            self._playwright.stop()
            self._playwright = None
        if self._server is not None:
            _stop_group(self._server)
            self._server = None
            self._log.close()
        shutil.rmtree(self._profile, ignore_errors=True)


def _stop_group(proc: subprocess.Popen) -> None:
    """SIGTERM the server's process group (it and what it started), SIGKILL after a grace period."""
    import signal  # noqa: PLC0415

    for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(wait)
        except subprocess.TimeoutExpired:
            continue
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.5)


#: The scroller cell `first_pages` times, after `setup` ran: a new scroller on a cold place.
#: It prints when the call that makes it began, in ms of the epoch (the kernel's clock).
SCROLL_CELL = (
    "import time\n"
    "called = time.time()\n"
    "w = rec.mef3.scroll(start={start!r}, page_seconds={page_s!r}, "
    "rows=len(rec.mef3.info.names), row_px={row_px})\n"
    "print(f'scroll() called at {{called * 1e3!r}} ms')\n"
    "w"
)
#: What a cell printed is shown as.
STDOUT = "application/vnd.jupyter.stdout"
#: Milliseconds between scrolling the overview bar into view and clicking it (the notebook's
#: layout and paint after a scroll settle first).
SETTLE_MS = 200
#: Run untimed after each scroller: it stops reading ahead for the next one's measurement.
CLOSE_CELL = "w.close()"
#: Run last: the page the last jump drew, against a direct read of the same samples, and how
#: many pages the front end said it drew (the read-ahead after each waits for that word).
CHECK_CELL = """from mef3lab.readers import open_reader
got = w.page_data()
with open_reader(rec.mef3.spec.path) as r:
    k0 = int(round(w.start * float(got.attrs["fs"])))
    want = r.read_index(list(got.channel.values), k0, k0 + got.sizes["time"])
same = got.values.shape == want.shape and (got.values == want).all()
print("SAME" if same else "DIFFERENT", f"drawn={w.drawn}")"""


class FirstPages(NamedTuple):
    """What `first_pages` measured, in milliseconds per scroller."""

    #: running the cell that makes the scroller → its first page drawn
    first: list[float]
    #: the call that makes it (``rec.mef3.scroll``) → its first page drawn
    called: list[float]
    #: a click in its overview bar → the new page drawn
    jump: list[float]


def first_pages(
    lab: Lab,
    setup: str,
    starts: list[float],
    page_s: float,
    row_px: int,
    name: str,
    seed: int = 0,
    shot: Path | None = None,
    warm: Callable[[], object] | None = None,
) -> FirstPages:
    """Milliseconds to a scroller's first page, and to the page after a jump, in the browser.

    A notebook runs `setup` (it binds ``rec``), then for each of `starts` a cell making a
    new scroller there (`SCROLL_CELL`): first page = running that cell → its canvas drawn
    (the kernel's work, the widget's creation and its first reply included), and from the
    call that makes it → drawn. That call's time is the kernel's clock, the drawing's the
    browser's (``performance.timeOrigin``): both the epoch's, on one machine. Then one
    click at a random place of its overview bar: jump = the click → the new page drawn.
    Each scroller is closed before the next (`CLOSE_CELL`); the last page is checked
    against a direct read, and the front end must have said it drew both its pages
    (`CHECK_CELL`).

    Parameters
    ----------
    lab : Lab
        The running lab.
    setup : str
        The first cell's code; it binds ``rec`` to an open recording.
    starts : list of float
        Where each new scroller starts, in seconds: places no read touched before.
    page_s : float
        Its page, in seconds.
    row_px : int
        Pixels per channel row.
    name : str
        The notebook's file name.
    seed : int
        Where the jumps go.
    shot : pathlib.Path, optional
        Where to save a screenshot of the last scroller, after its jump.
    warm : callable, optional
        Called, untimed, before each scroller's cell runs: reads the recording's files
        into the page cache again (this machine gives cold pages back within a minute).

    Returns
    -------
    FirstPages
        Milliseconds per scroller.

    Raises
    ------
    AssertionError
        When the last page drawn differs from the direct read, the kernel did not hear
        that its first page and its jump were drawn, or the call that made a scroller does
        not lie between running its cell and its page drawn (the two clocks disagree).
    """
    cells = [setup]
    for s in starts:
        cells += [SCROLL_CELL.format(start=s, page_s=page_s, row_px=row_px), CLOSE_CELL]
    cells[-1] = CHECK_CELL  # the last scroller stays open for the check
    write_notebook(lab.root / name, cells)
    rng = random.Random(seed)
    page = lab.open(name)
    try:
        _run_cell(page, 0)
        first, called, jump = [], [], []
        for i, s in enumerate(starts):
            if warm is not None:
                warm()
            _start_cell(page, 1 + 2 * i)
            cell = page.locator(".jp-Notebook .jp-Cell").nth(1 + 2 * i)
            widget = cell.locator(".m3s")
            widget.wait_for(timeout=120_000)
            handle = widget.element_handle()
            page.wait_for_function(
                f"el => Number(el.dataset.drawnStart) === {s!r}", arg=handle, timeout=120_000
            )
            run_at, drawn_at, origin = widget.evaluate(
                "el => [window.m3sRunAt, Number(el.dataset.drawnAt), performance.timeOrigin]"
            )
            first.append(drawn_at - run_at)
            printed = cell.locator(f"[data-mime-type='{STDOUT}']", has_text="called at")
            said = re.search(r"called at ([0-9.]+) ms", printed.inner_text())
            since_call = origin + drawn_at - float(said[1])
            if not 0 < since_call <= drawn_at - run_at:
                raise AssertionError(
                    f"scroll() called {since_call:.1f} ms before its page was drawn, but its "
                    f"cell ran {drawn_at - run_at:.1f} ms before: the clocks disagree"
                )
            called.append(since_call)
            strip = widget.locator(".m3s-overview")
            # on screen before the click, as a reviewer has it: a click's own scrolling of the
            # notebook (the bar below the window) would be timed with the jump
            strip.scroll_into_view_if_needed()
            page.wait_for_timeout(SETTLE_MS)
            box = strip.bounding_box()
            gutter = widget.evaluate("el => Number(el.dataset.gutter)")
            x = gutter + rng.uniform(0.05, 0.95) * (box["width"] - gutter)
            strip.click(position={"x": x, "y": box["height"] / 2})
            page.wait_for_function(
                "el => Number(el.dataset.drawnAt) > Number(el.dataset.keyAt) "
                f"&& Number(el.dataset.drawnStart) !== {s!r}",
                arg=handle,
                timeout=120_000,
            )
            jump.append(
                widget.evaluate("el => Number(el.dataset.drawnAt) - Number(el.dataset.keyAt)")
            )
            if shot is not None and i == len(starts) - 1:
                widget.screenshot(path=str(shot))
            _run_cell(page, 2 + 2 * i)  # close it, or (the last) check it
        verdict = page.locator(".jp-Notebook .jp-Cell").nth(len(cells) - 1).inner_text()
        if "SAME" not in verdict:
            raise AssertionError(f"the scroller's last page differs from a direct read: {verdict}")
        drawn = re.search(r"drawn=(\d+)", verdict)
        if drawn is None or int(drawn[1]) < 2:  # its first page and its jump
            raise AssertionError(f"the kernel did not hear of both pages drawn: {verdict}")
        return FirstPages(first, called, jump)
    finally:
        page.close()


#: The floor of `first_pages`: a widget that draws a small canvas as it renders, nothing read.
TRIVIAL_SETUP = """import anywidget, traitlets

class Trivial(anywidget.AnyWidget):
    _esm = \"\"\"export default { render({ el }) {
        const c = document.createElement("canvas");
        c.width = 800; c.height = 160; el.append(c);
        c.getContext("2d").fillRect(0, 0, 10, 10);
        el.classList.add("m3-trivial"); el.dataset.drawnAt = String(performance.now());
    } };\"\"\"
    n = traitlets.Int(0).tag(sync=True)"""


def trivial_widgets(lab: Lab, n: int, name: str) -> list[float]:
    """Milliseconds from running a cell to its trivial widget drawn, for `n` new widgets.

    What the notebook costs before any widget does work of its own (the cell's round trip
    through the kernel, the widget's creation and render), measured as `first_pages` does.
    """
    write_notebook(lab.root / name, [TRIVIAL_SETUP] + ["Trivial()"] * n)
    page = lab.open(name)
    try:
        _run_cell(page, 0)
        ms = []
        for i in range(1, n + 1):
            _start_cell(page, i)
            widget = page.locator(".jp-Notebook .jp-Cell").nth(i).locator(".m3-trivial")
            widget.wait_for(timeout=120_000)
            ms.append(widget.evaluate("el => Number(el.dataset.drawnAt) - window.m3sRunAt"))
            page.wait_for_timeout(SETTLE_MS)
        return ms
    finally:
        page.close()


def write_notebook(path: Path, cells: list[str]) -> None:
    """A notebook of code `cells` on the python3 kernel at `path`."""
    import nbformat  # noqa: PLC0415 - a benchmark dependency, needed only here

    nb = nbformat.v4.new_notebook()
    nb.metadata = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}
    }
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    nbformat.write(nb, str(path))


def _start_cell(page, index: int) -> None:
    """Run cell `index` of the open notebook, noting when (``window.m3sRunAt``); no wait."""
    page.evaluate(
        "i => { window.m3sRunAt = performance.now(); "
        "const nb = window.jupyterapp.shell.currentWidget.content; "
        "nb.activeCellIndex = i; "
        "window.jupyterapp.commands.execute('notebook:run-cell'); }",
        index,
    )


def _run_cell(page, index: int, timeout_s: float = 120) -> None:
    """Run one cell of the open notebook and wait until its prompt shows it ran."""
    _start_cell(page, index)
    page.wait_for_function(
        r"""i => {
        const cell = document.querySelectorAll('.jp-Notebook .jp-CodeCell')[i];
        const prompt = cell && cell.querySelector('.jp-InputPrompt');
        return prompt && /\[\d+\]/.test(prompt.textContent);
    }""",
        arg=index,
        timeout=timeout_s * 1000,
    )
