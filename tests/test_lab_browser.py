"""Notebooks 01 and 05 run in JupyterLab, driven in headless Chromium by Playwright.

A real ``jupyter lab`` serves a temporary copy of notebooks/ (nothing in the repo is written) with the
venv's "python3" kernel (``make setup`` registers it). For each notebook the test opens it, runs
Run → Run All Cells from the menu, waits until the kernel is idle and the last code cell has its
execution count, and checks what a student sees:

- no cell shows an error (no traceback on stderr, no error output);
- each ``interactive_or_static`` cell shows real ipywidgets controls, not "Error displaying widget";
- the first change of a control after Run All draws one complete new figure (a loaded image that
  differs from the one before);
- MathJax typeset the equations (``mjx-container`` in every markdown cell with math, no raw ``$$``);
- the notebook saved with File → Save keeps its static figures (image/png in every cell whose
  committed version has one), and passes nbval as the Makefile runs it.

Screenshots of the whole notebook after Run All and after the widget change go to build/lab-browser/.
JupyterLab runs with NSTDREAM_CPU_DEFAULTS=1 (the notebooks' small CPU defaults on any device).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest
from conftest import require_chromium

REPO = Path(__file__).resolve().parents[1]
SCREENSHOTS = REPO / "build" / "lab-browser"
NOTEBOOKS = [next((REPO / "notebooks").glob(f"{number}_*.ipynb")).name for number in ("01", "05")]
RUN_ALL_TIMEOUT_S = 900  # notebook 05 takes about a minute and a half on 2 busy CPU cores
WIDGET_TIMEOUT_S = 180
pytestmark = [pytest.mark.slow, pytest.mark.needs_weights]

# User settings for this server only: every cell kept in the page (so the checks and the screenshots
# see all of them) and no news or update pop-ups over the notebook.
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false",
                                                                       "checkForUpdates": False},
}
# Markdown math, once code spans and fenced code are removed.
MATH = re.compile(r"\$\$.+?\$\$|\$[^$\s][^$]*?\$", re.S)
CODE = re.compile(r"```.*?```|`[^`]*`", re.S)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Lab:
    """A running ``jupyter lab`` on a temporary copy of notebooks/."""

    def __init__(self, root: Path, port: int, token: str, process: subprocess.Popen, log: Path):
        self.root, self.port, self.token, self.process, self.log = root, port, token, process, log
        self.base = f"http://127.0.0.1:{port}"

    def api(self, path: str, method: str = "GET"):
        request = urllib.request.Request(f"{self.base}/api/{path}", method=method,
                                         headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read()
        return json.loads(body) if body else None

    def url(self, notebook: str) -> str:
        # A workspace of its own per notebook, so only that notebook is open in the page.
        return f"{self.base}/lab/workspaces/{Path(notebook).stem}/tree/{notebook}?token={self.token}"

    def kernels_idle(self) -> bool:
        return all(kernel["execution_state"] == "idle" for kernel in self.api("kernels"))

    def shut_down(self, notebook: str) -> None:
        for session in self.api("sessions"):
            if session["path"] == notebook:
                self.api(f"sessions/{session['id']}", method="DELETE")

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    base = tmp_path_factory.mktemp("lab")
    root = base / "notebooks"
    shutil.copytree(REPO / "notebooks", root, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    settings = base / "settings"
    for name, values in LAB_SETTINGS.items():
        (settings / name).parent.mkdir(parents=True, exist_ok=True)
        (settings / name).write_text(json.dumps(values))
    env = dict(os.environ)
    env.pop("MPLBACKEND", None)  # conftest's Agg would hide every figure; the kernel picks inline itself
    env.update({
        "NSTDREAM_CPU_DEFAULTS": "1",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")])),
        "JUPYTERLAB_SETTINGS_DIR": str(settings),
        "JUPYTERLAB_WORKSPACES_DIR": str(base / "workspaces"),
        "JUPYTER_CONFIG_DIR": str(base / "config"),
        "JUPYTER_RUNTIME_DIR": str(base / "runtime"),
    })
    port, token = _free_port(), secrets.token_hex(16)
    log = base / "lab.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", f"--port={port}",
             "--ServerApp.ip=127.0.0.1", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
             f"--ServerApp.root_dir={root}", "--LabApp.news_url=None",
             "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
            cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT)
    server = Lab(root, port, token, process, log)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                server.api("status")
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"jupyter lab did not start:\n{server.log_tail()}", pytrace=False)
                time.sleep(0.5)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def browser():
    executable = require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            yield chromium
        finally:
            chromium.close()


# ---------------------------------------------------------------------------------- in the page

NOTEBOOK = ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook"
# Whether Run All is over: no cell waiting or running ("[*]"), and the last code cell numbered, or a
# cell failed (Run All stops at an error, leaving the later cells unnumbered).
RUN_ALL_DONE = """(selector) => {
    const prompts = [...document.querySelectorAll(selector + ' .jp-CodeCell .jp-InputPrompt')]
        .map(p => p.textContent.trim());
    if (prompts.length === 0 || prompts.some(p => p.includes('*'))) return false;
    const indicator = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook-ExecutionIndicator');
    if (indicator && indicator.dataset.status !== 'idle') return false;
    const failed = document.querySelector(selector + ' .jp-OutputArea-output[data-mime-type='
        + '"application/vnd.jupyter.stderr"]');
    return /\\[\\d+\\]/.test(prompts[prompts.length - 1]) || (failed !== null && failed.textContent.includes('Traceback'));
}"""
IMAGES_LOADED = """(root) => {
    const images = [...root.querySelectorAll('img')];
    return images.length > 0 && images.every(img => img.complete && img.naturalWidth > 0);
}"""


def _wait_idle(lab: Lab, page, timeout_s: float) -> None:
    """Wait until Run All is over in the page and the kernel reports idle twice in a row."""
    page.wait_for_function(RUN_ALL_DONE, arg=NOTEBOOK, timeout=timeout_s * 1000, polling=500)
    deadline, idle_in_a_row = time.monotonic() + timeout_s, 0
    while idle_in_a_row < 2:
        assert time.monotonic() < deadline, "the kernel did not become idle"
        idle_in_a_row = idle_in_a_row + 1 if lab.kernels_idle() else 0
        page.wait_for_timeout(300)


def _menu(page, menu: str, item: str) -> None:
    """Click ``menu`` in the menu bar, then its item whose label matches the regex ``item``."""
    page.locator("#jp-MainMenu .lm-MenuBar-item", has_text=re.compile(rf"^{menu}$")).click()
    page.locator(".lm-Menu .lm-Menu-item", has=page.locator(".lm-Menu-itemLabel", has_text=re.compile(item))).first.click()


def _screenshot(page, path: Path) -> None:
    """The whole notebook: the window made as tall as the notebook for the shot, then put back."""
    viewport = page.viewport_size
    height = page.evaluate(
        "() => Math.max(...[...document.querySelectorAll('.jp-NotebookPanel .jp-WindowedPanel-outer, "
        ".jp-NotebookPanel .jp-Notebook')].map(e => e.scrollHeight), 0)")
    page.set_viewport_size({"width": viewport["width"], "height": min(max(height + 200, viewport["height"]), 16000)})
    page.evaluate("() => document.querySelectorAll('.jp-NotebookPanel .jp-WindowedPanel-outer')"
                  ".forEach(e => e.scrollTo(0, 0))")
    page.wait_for_timeout(500)
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=path)
    page.set_viewport_size(viewport)


def _change_widget(page, outputs) -> str:
    """Move the first control in a cell's outputs to another value; say what was done."""
    select = outputs.locator("select")
    if select.count():
        current = select.first.input_value()
        options = [value for value in select.first.locator("option").evaluate_all("os => os.map(o => o.value)")
                   if value != current]
        assert options, "the dropdown has a single choice"
        select.first.select_option(options[0])
        return f"dropdown {current!r} → {options[0]!r}"
    handle = outputs.locator(".noUi-handle, input[type=range]").first
    assert handle.count(), "the widget cell has neither a dropdown nor a slider"
    handle.focus()
    handle.press("ArrowRight")
    return "slider one step right"


def _check_widgets(page, widget_cells: list[int], stem: str) -> list[str]:
    """Each widget cell shows controls and one figure; the first change draws a new complete figure
    (the cell's outputs before and after the change go to build/lab-browser/)."""
    text = page.locator(NOTEBOOK).inner_text()
    assert "Error displaying widget" not in text, _around(text, "Error displaying widget")
    cells = page.locator(f"{NOTEBOOK} .jp-Cell")
    done = []
    for index in widget_cells:
        outputs = cells.nth(index).locator(".jp-Cell-outputArea")
        controls = outputs.locator("select, .widget-slider, input[type=range], .noUi-target")
        assert controls.count() > 0, f"widget cell {index} shows no slider or dropdown:\n{outputs.inner_text()}"
        outputs.scroll_into_view_if_needed()
        page.wait_for_function(IMAGES_LOADED, arg=outputs.element_handle(), timeout=WIDGET_TIMEOUT_S * 1000)
        before = outputs.locator("img").evaluate_all("images => images.map(img => img.src)")
        assert len(before) == 1, f"widget cell {index} shows {len(before)} figures before the change, not 1"
        outputs.screenshot(path=SCREENSHOTS / f"{stem}-cell{index}-before.png")
        change = _change_widget(page, outputs)
        page.wait_for_function(
            """([root, before]) => {
                const images = [...root.querySelectorAll('img')];
                return images.length === 1 && images[0].complete && images[0].naturalWidth > 0
                    && images[0].src !== before;
            }""", arg=[outputs.element_handle(), before[0]], timeout=WIDGET_TIMEOUT_S * 1000, polling=250)
        after = outputs.locator("img").evaluate_all(
            "images => images.map(img => ({width: img.naturalWidth, height: img.naturalHeight}))")
        assert len(after) == 1 and after[0]["width"] > 100 and after[0]["height"] > 50, after
        outputs.screenshot(path=SCREENSHOTS / f"{stem}-cell{index}-after.png")
        done.append(f"cell {index}: {change}, new figure {after[0]['width']}×{after[0]['height']} px")
    return done


def _around(text: str, needle: str, width: int = 600) -> str:
    at = text.find(needle)
    return text[max(0, at - width):at + width]


def _check_math(page, notebook: nbformat.NotebookNode) -> int:
    """Every markdown cell with math has MathJax output; no raw ``$$`` is left on the page."""
    with_math = [i for i, cell in enumerate(c for c in notebook.cells if c.cell_type == "markdown")
                 if MATH.search(CODE.sub("", cell.source))]
    assert with_math, "no markdown cell has math: nothing to check"
    cells = page.locator(f"{NOTEBOOK} .jp-MarkdownCell")
    page.wait_for_function(
        """([selector, indices]) => {
            const cells = document.querySelectorAll(selector + ' .jp-MarkdownCell');
            return indices.every(i => cells[i] && cells[i].querySelector('mjx-container'));
        }""", arg=[NOTEBOOK, with_math], timeout=60_000)
    for i in range(cells.count()):
        text = cells.nth(i).locator(".jp-RenderedMarkdown").inner_text()
        assert "$$" not in text, f"markdown cell {i} shows raw $$:\n{_around(text, '$$')}"
    return page.locator(f"{NOTEBOOK} .jp-MarkdownCell mjx-container").count()


def _errors_shown(page) -> list[str]:
    stderr = page.locator(f'{NOTEBOOK} .jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')
    texts = stderr.evaluate_all("outputs => outputs.map(o => o.textContent)")
    return [text for text in texts if "Traceback" in text or re.search(r"^\w*Error\b", text, re.M)]


def _saved(path: Path, before: float, timeout_s: float = 60) -> nbformat.NotebookNode:
    """The notebook on disk once JupyterLab has written it after ``before``."""
    deadline = time.monotonic() + timeout_s
    while path.stat().st_mtime <= before:
        assert time.monotonic() < deadline, f"{path.name} was not saved"
        time.sleep(0.25)
    time.sleep(0.5)  # let the write finish
    return nbformat.read(path, as_version=4)


def _nbval(path: Path) -> subprocess.CompletedProcess:
    """The Makefile's NBVAL command on one notebook."""
    env = dict(os.environ)
    env.pop("MPLBACKEND", None)
    env.update({"NSTDREAM_CPU_DEFAULTS": "1",
                "PYTHONPATH": os.pathsep.join([str(REPO / "tests"), str(REPO)])})
    return subprocess.run(
        [sys.executable, "-m", "pytest", "--nbval", str(path), "--nbval-sanitize-with",
         str(REPO / "notebooks" / "nbval_sanitize.cfg"), "-p", "nbval_approx", "-q", "-p", "no:cacheprovider",
         f"--rootdir={path.parent}"],
        cwd=path.parent, env=env, capture_output=True, text=True, timeout=900)


def _pngs(cell) -> int:
    return sum("image/png" in output.get("data", {}) for output in cell.get("outputs", []))


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_in_jupyterlab_in_chromium(lab, browser, name):
    committed = nbformat.read(REPO / "notebooks" / name, as_version=4)
    widget_cells = [i for i, c in enumerate(committed.cells) if c.cell_type == "code" and "interactive_or_static(" in c.source]
    stem, started = Path(name).stem, time.monotonic()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    try:
        page.goto(lab.url(name), wait_until="domcontentloaded", timeout=120_000)
        page.locator(NOTEBOOK).wait_for(timeout=120_000)
        page.wait_for_function("() => document.querySelectorAll('.jp-Notebook .jp-Cell').length > 0")
        deadline = time.monotonic() + 120
        while not (sessions := [s for s in lab.api("sessions") if s["path"] == name]) or not lab.kernels_idle():
            assert time.monotonic() < deadline, "no idle kernel for the notebook"
            time.sleep(0.5)
        assert sessions[0]["kernel"]["name"] == "python3"
        page.locator(".jp-SideBar.jp-mod-left .lm-TabBar-tab.lm-mod-current").click()  # close the file browser

        _menu(page, "Run", r"^Run All Cells$")
        _wait_idle(lab, page, RUN_ALL_TIMEOUT_S)
        run_all_s = time.monotonic() - started
        _screenshot(page, SCREENSHOTS / f"{stem}-run-all.png")

        errors = _errors_shown(page)
        assert not errors, "cells show errors after Run All:\n" + "\n---\n".join(e[-2000:] for e in errors)
        mathjax = _check_math(page, committed)
        changes = _check_widgets(page, widget_cells, stem)
        if widget_cells:
            _wait_idle(lab, page, WIDGET_TIMEOUT_S)
            _screenshot(page, SCREENSHOTS / f"{stem}-widget.png")

        path = lab.root / name
        before = path.stat().st_mtime
        _menu(page, "File", r"^Save( Notebook)?$")
        saved = _saved(path, before)
    finally:
        context.close()
        lab.shut_down(name)

    code = [c for c in saved.cells if c.cell_type == "code"]
    assert all(c.execution_count for c in code), "the saved notebook has code cells that did not run"
    failed = [i for i, c in enumerate(saved.cells) for o in c.get("outputs", []) if o.output_type == "error"]
    assert not failed, f"the saved notebook has error outputs in cells {failed}"
    assert [c.source for c in saved.cells] == [c.source for c in committed.cells]
    lost = [i for i, (old, new) in enumerate(zip(committed.cells, saved.cells)) if _pngs(old) and not _pngs(new)]
    result = _nbval(path)
    print(f"{name}: Run All {run_all_s:.0f} s, {mathjax} MathJax elements, widgets: {changes}; "
          f"with the save and nbval {time.monotonic() - started:.0f} s")
    problems = []
    if lost:
        problems.append(f"cells {lost} have a figure (image/png) in the committed notebook but none in the one "
                        "saved from JupyterLab")
    if result.returncode != 0:
        problems.append(f"nbval fails on the notebook saved from JupyterLab:\n{result.stdout[-8000:]}")
    assert not problems, "\n\n".join(problems)
