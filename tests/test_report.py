"""Running notebooks with papermill and building the report site (nstdream_utils.report).

The notebooks here are tiny (no TensorFlow): each papermill run costs about a second of kernel start-up.
The site is built twice per module: from the tiny course, and from the committed notebooks without
running them (a few seconds each).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import shutil
from pathlib import Path

import nbformat
import numpy as np
import pytest
from conftest import require_chromium
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook
from PIL import Image

from nstdream_utils import report
from nstdream_utils.errors import InputError, NstdreamError

_TOOL = importlib.util.spec_from_file_location(
    "notebooks_tool", Path(__file__).resolve().parents[1] / "tools" / "notebooks.py")
nbtools = importlib.util.module_from_spec(_TOOL)  # the maintainer tool, tools/notebooks.py
_TOOL.loader.exec_module(nbtools)

REPO = Path(__file__).resolve().parents[1]
# Sphinx's own deprecation notices about the theme and myst-parser: not this project's to fix.
pytestmark = pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")
KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}
# Quotes, a newline and code-looking text: must arrive as this exact string, never run as code.
TRICKY = 'say "hi"\'s\n"); import os  # '


def write_notebook(path: Path, title: str, summary: str, parameters: str, *cells: str) -> Path:
    params = new_code_cell(parameters)
    params.metadata.tags = ["parameters"]
    nb = new_notebook(
        cells=[new_markdown_cell(f"# {title}\n> {summary}"), params, *map(_cell, cells)],
        metadata={"kernelspec": KERNELSPEC},
    )
    nbformat.write(nb, path)
    return path


def _cell(source: str):
    return new_markdown_cell(source[3:]) if source.startswith("md:") else new_code_cell(source)


RED_FIGURE = """\
import matplotlib.pyplot as plt
fig, ax = plt.subplots(figsize=(3, 3))
ax.imshow(np.tile(np.array([1.0, 0.0, 0.0]), (8, 8, 1)))  # pure red
ax.set_axis_off()
plt.show()"""


# TensorFlow's C++ start-up line, as it reaches a cell's stderr, and a warning of the user's own.
TF_LOG_CELL = """\
import sys
sys.stderr.write("I0000 00:00:1795624084.438899   13894 port" + ".cc:153] one" + "DNN custom operations are on.\\n")
sys.stderr.write("a warning of your own\\n")"""


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> Path:
    """notebooks/01_red.ipynb (preset, num_steps, label; a red figure) and 02_scale.ipynb (scale only),
    data/ and docs/notes.md."""
    root = tmp_path_factory.mktemp("course")
    (root / "data").mkdir()
    (root / "data" / "hello.txt").write_text("hello from data\n")
    Image.new("RGB", (16, 16), (0, 0, 255)).save(root / "data" / "blue.png")
    (root / "docs").mkdir()
    (root / "docs" / "notes.md").write_text(
        "# Notes\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\nSee [the first notebook](../notebooks/01_red.ipynb), "
        "the [README](../README.md) and [a script](../tools/x.py).\n")
    folder = root / "notebooks"
    folder.mkdir()
    write_notebook(
        folder / "01_red.ipynb", "01 · Red figure", "Draws a red square.",
        'preset = "paper"  # preset name\nnum_steps = 10  # steps\nlabel = "default"  # any text',
        "import numpy as np",
        RED_FIGURE,
        "print(preset, num_steps)\nprint(repr(label))",
        "print(open('../data/hello.txt').read().strip())",  # runs in the notebook's folder
        "md:A picture from disk: ![blue](../data/blue.png)",
    )
    write_notebook(folder / "02_scale.ipynb", "02 · Scale", "Prints a number.", "scale = 1  # factor",
                   "print(scale * 21)", TF_LOG_CELL)
    nbtools.add_navigation(nbtools.notebook_paths(folder))
    return folder


def stdout_of(path: Path) -> str:
    nb = nbformat.read(path, as_version=4)
    return "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs
                   if o.output_type == "stream" and o.name == "stdout")


# ----------------------------------------------------------------------------------- run_notebooks


@pytest.fixture(scope="module")
def executed(course, tmp_path_factory) -> list[Path]:
    out = tmp_path_factory.mktemp("executed")
    return report.run_notebooks(nbtools.notebook_paths(course), out, preset="quick", progress=False,
                                parameters={"num_steps": np.int64(3), "scale": 2, "label": TRICKY})


def test_run_notebooks_passes_parameters_only_where_defined(executed):
    red, scale = (nbformat.read(p, as_version=4) for p in executed)
    assert red.metadata.papermill.parameters == {"preset": "quick", "num_steps": 3, "label": TRICKY}
    assert scale.metadata.papermill.parameters == {"scale": 2}
    assert stdout_of(executed[0]).splitlines()[:2] == ["quick 3", repr(TRICKY)]
    assert stdout_of(executed[1]) == "42\n"


def test_run_notebooks_runs_in_the_notebook_folder_and_keeps_figures(executed):
    assert "hello from data" in stdout_of(executed[0])
    nb = nbformat.read(executed[0], as_version=4)
    images = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if "image/png" in o.get("data", {})]
    assert len(images) == 1  # drawn inline even where MPLBACKEND=Agg is exported (the Makefile does)
    assert os.environ["MPLBACKEND"] == "Agg"  # as conftest.py set it: the kernels' setting did not stay


def test_run_notebooks_rejects_unknown_and_non_plain_parameters(course, tmp_path):
    notebooks = nbtools.notebook_paths(course)
    with pytest.raises(InputError, match="defines 'num_step'.*did you mean 'num_steps'"):
        report.run_notebooks(notebooks, tmp_path, parameters={"num_step": 3}, progress=False)
    with pytest.raises(InputError, match="parameter 'scale' is a object"):
        report.run_notebooks(notebooks, tmp_path, parameters={"scale": object()}, progress=False)
    assert not any(tmp_path.iterdir())  # checked before anything ran


def test_declared_parameters_without_a_kernelspec(course, tmp_path):
    nb = nbformat.read(course / "01_red.ipynb", as_version=4)
    nb.metadata.pop("kernelspec")
    nbformat.write(nb, tmp_path / "x.ipynb")
    assert report.declared_parameters(tmp_path / "x.ipynb").keys() == {"preset", "num_steps", "label"}
    assert report.declared_parameters(course / "01_red.ipynb").keys() == {"preset", "num_steps", "label"}


def test_declared_parameters_reads_lines_with_an_equals_sign_in_the_comment(tmp_path):
    # papermill's own inspection skips such a line; several course notebooks have them (size, num_steps).
    path = write_notebook(tmp_path / "01_x.ipynb", "01 · X", "X.", "size = None  # px; None = 64 on a CPU\nseed = 0")
    assert report.declared_parameters(path) == {"size": None, "seed": 0}
    assert {"size", "num_steps", "texture_steps"} <= report.declared_parameters(
        REPO / "notebooks" / "02_content_and_style_loss.ipynb").keys()


@pytest.fixture(scope="module")
def broken(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("broken")
    return write_notebook(folder / "03_broken.ipynb", "03 · Broken", "Fails.", "scale = 1  # factor",
                          "x = 2 * scale\nprint('x is', x)", "y = x / 0  # boom\nprint('never')", "print('after')")


def test_a_failing_cell_raises_an_error_naming_notebook_and_cell(broken, tmp_path):
    with pytest.raises(report.NotebookError) as info:
        report.run_notebooks([broken], tmp_path / "out", parameters={"scale": 5}, progress=False)
    error = info.value
    assert isinstance(error, NstdreamError)
    # Cell 3 of the source notebook, although papermill's injected cell made it cell 4 of the run.
    assert (error.cell_index, error.source_line) == (3, "y = x / 0  # boom")
    assert (error.ename, error.evalue) == ("ZeroDivisionError", "division by zero")
    message = str(error)
    assert "\n" not in message
    assert message.startswith(f"{broken}: cell 3 (`y = x / 0  # boom`) raised ZeroDivisionError: division by zero")
    # The partly executed notebook stays for inspection, outputs up to the failure included.
    assert error.output_path == tmp_path / "out" / "03_broken.ipynb" and str(error.output_path) in message
    assert "x is 10" in stdout_of(error.output_path)
    assert "after" not in stdout_of(error.output_path)


def test_a_dying_kernel_raises_an_error_naming_the_cell_it_was_running(tmp_path):
    dying = write_notebook(tmp_path / "04_dies.ipynb", "04 · Dies", "Dies.", "scale = 1  # factor",
                           "print('alive')", "import os\nos._exit(1)", "print('after')")
    with pytest.raises(report.NotebookError) as info:
        report.run_notebooks([dying], tmp_path / "out", parameters={"scale": 2}, progress=False)
    assert (info.value.cell_index, info.value.source_line, info.value.ename) == (3, "import os", "DeadKernelError")
    assert "alive" in stdout_of(info.value.output_path)


def test_cli_exits_1_with_one_line_on_a_failing_cell(broken, tmp_path, capsys):
    assert report.main(["--out", str(tmp_path), "--quiet", str(broken)]) == 1
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {broken}: cell 3 (`y = x / 0")
    assert "ZeroDivisionError" in lines[0]


# ---------------------------------------------------------------------------------- in-place runs


def test_execute_in_place_stores_normalised_outputs(course, tmp_path):
    path = tmp_path / "02_scale.ipynb"
    nb = nbformat.read(course / "02_scale.ipynb", as_version=4)
    stray = new_code_cell("# Parameters\nscale = 100\n")  # left by a papermill run copied back
    stray.metadata.tags = ["injected-parameters"]
    nb.cells.insert(3, stray)
    nbformat.write(nb, path)
    report.execute_in_place([path], progress=False)
    nb = nbformat.read(path, as_version=4)
    assert "papermill" not in path.read_text()
    counts = [c.execution_count for c in nb.cells if c.cell_type == "code"]
    assert counts == list(range(1, len(counts) + 1)) and len(counts) == 4  # setup, parameters, two cells
    assert stdout_of(path) == "21\n"  # default parameters: the stray injected cell did not run
    assert "oneDNN" not in path.read_text() and "a warning of your own" in path.read_text()  # TF's log dropped
    assert "scale = 100" not in path.read_text()
    assert "language_info" in nb.metadata and nb.metadata.kernelspec.name == "python3"
    assert nbtools.check(path) == []
    assert nbtools.normalize(path) is False


def test_execute_in_place_leaves_the_original_when_a_cell_fails(broken, tmp_path):
    path = tmp_path / broken.name
    shutil.copy(broken, path)
    before = path.read_bytes()
    with pytest.raises(report.NotebookError) as info:
        report.execute_in_place([path], progress=False)
    assert path.read_bytes() == before
    assert info.value.output_path.exists()
    shutil.rmtree(info.value.output_path.parent)


# ------------------------------------------------------------------------------------ report site


@pytest.fixture(scope="module")
def built(course, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("build")
    return report.build_report(preset="paper", out=out, notebooks_dir=course, progress=False)


@pytest.fixture(scope="module")
def committed(tmp_path_factory) -> Path:
    """The site built from the committed notebooks (they carry their outputs) and docs/, running nothing."""
    out = tmp_path_factory.mktemp("committed")
    assert report.main(["--no-execute", "--quiet", "--out", str(out), "--notebooks-dir", str(REPO / "notebooks")]) == 0
    return out / "report" / "index.html"


def toctree(index: Path) -> list[tuple[str, str]]:
    """The (href, title) pairs of the index page's own table of contents (the sidebar repeats it)."""
    article = index.read_text().split('<article class="bd-article">', 1)[1]
    return re.findall(r'<li class="toctree-l1"><a class="reference internal" href="([^"]+)">(.+?)</a>', article)


def test_build_report_writes_a_site_linking_every_page(built):
    assert built.name == "index.html" and built.parent.name == "report"
    assert sorted(p.name for p in (built.parent.parent / "notebooks").iterdir()) == ["01_red.ipynb", "02_scale.ipynb"]
    assert toctree(built) == [("notebooks/01_red.html", "01 · Red figure"), ("notebooks/02_scale.html", "02 · Scale"),
                              ("docs/notes.html", "Notes")]
    for href, _ in toctree(built):
        assert (built.parent / href).is_file()
    index = built.read_text()
    assert "<title>Neural style transfer, then DeepDream" in index
    assert "computed with the <strong>paper</strong> preset" in index
    assert (built.parent / "search.html").is_file() and (built.parent / "searchindex.js").is_file()


def test_pages_show_figures_and_images_from_disk_and_link_each_other(built):
    page = (built.parent / "notebooks" / "01_red.html").read_text()
    images = re.findall(r'<img[^>]+src="\.\./(_images/[^"]+)"', page)
    assert len(images) == 2 and all((built.parent / image).is_file() for image in images)  # figure + ../data/blue.png
    blue = next(image for image in images if "blue" in image)
    assert Image.open(built.parent / blue).getpixel((0, 0)) == (0, 0, 255)
    # The site's own navigation links the pages; the notebooks' navigation cells and their badges are left out.
    assert 'href="02_scale.html"' in page and 'href="../index.html"' in page
    assert "colab-badge" not in page and "Contents" not in page
    assert not re.search(r'href="(?!\.\./_sources/)[^"]*\.ipynb', page)  # only the theme's download link


def test_docs_are_pages_with_their_links_resolved(built):
    page = (built.parent / "docs" / "notes.html").read_text()
    assert "<table" in page
    assert 'href="../notebooks/01_red.html"' in page  # myst resolves a link to a page
    assert "the <a" in page and ">README</span>" in page and ">a script</span>" in page  # no page: the text stays


def test_pages_leave_out_tensorflow_start_up_lines(built):
    page = (built.parent / "notebooks" / "02_scale.html").read_text()
    assert "a warning of your own" in page
    assert "oneDNN" not in page and "port.cc" not in page  # the source splits both words
    assert "oneDNN" not in (built.parent / "_sources" / "notebooks" / "02_scale.ipynb").read_text()


def test_no_execute_builds_the_committed_notebooks_and_docs(committed):
    hrefs = [href for href, _ in toctree(committed)]
    names = [f"notebooks/{p.stem}.html" for p in nbtools.notebook_paths(REPO / "notebooks")]
    assert hrefs[: len(names)] == names and len(names) == 10
    assert {"docs/reproduction.html", "docs/robustness.html", "docs/teaching.html", "docs/benchmarks.html"} <= set(hrefs)
    assert "computed with the notebooks’ default parameters" in committed.read_text()
    page = (committed.parent / "docs" / "teaching.html").read_text()
    assert "<table" in page and '<span class="math notranslate nohighlight">' in page


def test_no_execute_runs_nothing(capsys):
    for flags in (["--preset", "paper"], ["-p", "scale=2"], ["--in-place"]):
        with pytest.raises(SystemExit):
            report.main(["--no-execute", *flags])
        assert "--no-execute runs nothing" in capsys.readouterr().err


def test_build_report_rejects_an_empty_folder(tmp_path):
    with pytest.raises(NstdreamError, match="no notebooks match"):
        report.build_report(out=tmp_path / "build", notebooks_dir=tmp_path, progress=False)


# ------------------------------------------------------------------------------- in a real browser


def _open_offline(page_path: Path, screenshot: Path) -> dict:
    """Open a page in headless Chromium with every request to a non-file URL aborted; return its
    visible text, its number of MathJax elements, the non-file URLs it asked for and a screenshot."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright

    remote = []

    def only_files(route):
        if route.request.url.startswith("file:"):
            route.continue_()
        else:
            route.abort()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=require_chromium(), args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 1600})
            page.on("request", lambda r: r.url.startswith(("file:", "data:")) or remote.append(r.url))
            page.route("**/*", only_files)
            page.goto(page_path.as_uri(), wait_until="load")
            if page.evaluate("() => 'MathJax' in window"):  # wait until it typeset the page, if it loaded
                with contextlib.suppress(PlaywrightTimeout):
                    page.wait_for_function("() => window.MathJax.startup?.promise", timeout=15_000)
                    page.evaluate("() => window.MathJax.startup.promise")
            page.screenshot(path=screenshot, full_page=True)
            return {"text": page.inner_text("body"), "mathjax": page.locator("mjx-container").count(),
                    "remote": remote, "pixels": np.asarray(Image.open(screenshot).convert("RGB")).astype(int)}
        finally:
            browser.close()


def test_equations_are_typeset_offline_in_chromium(committed, tmp_path):
    shown = _open_offline(committed.parent / "notebooks" / "02_content_and_style_loss.html", tmp_path / "02.png")
    assert shown["remote"] == []
    assert "$$" not in shown["text"]
    assert shown["mathjax"] > 20  # MathJax ran from the site's own copy
    assert "Content and style loss" in shown["text"]


def test_pages_show_their_figures_in_chromium(built, tmp_path):
    shown = _open_offline(built.parent / "notebooks" / "01_red.html", tmp_path / "01.png")
    assert shown["remote"] == []
    pixels = shown["pixels"]
    assert (pixels.min(axis=2) < 200).sum() > 5000  # text drawn, not a blank page
    red = (pixels[..., 0] > 220) & (pixels[..., 1] < 40) & (pixels[..., 2] < 40)
    assert red.sum() > 20_000, f"only {red.sum()} red pixels: the figure is not shown"
    blue = (pixels[..., 2] > 220) & (pixels[..., 0] < 40) & (pixels[..., 1] < 40)
    assert blue.sum() > 100  # the markdown image from ../data/blue.png

