"""Running notebooks with papermill and rendering the HTML report (nstdream_utils.report).

The notebooks here are tiny (no TensorFlow): each papermill run costs about a second of kernel start-up.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import nbformat
import numpy as np
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook
from PIL import Image

from nstdream_utils import notebooks as nbtools
from nstdream_utils import report
from nstdream_utils.errors import InputError, NstdreamError

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
    """notebooks/01_red.ipynb (preset, num_steps, label; a red figure) and 02_scale.ipynb (scale only)."""
    root = tmp_path_factory.mktemp("course")
    (root / "data").mkdir()
    (root / "data" / "hello.txt").write_text("hello from data\n")
    Image.new("RGB", (16, 16), (0, 0, 255)).save(root / "data" / "blue.png")
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
    assert report.declared_parameters(tmp_path / "x.ipynb") == {"preset", "num_steps", "label"}
    assert report.declared_parameters(course / "01_red.ipynb") == {"preset", "num_steps", "label"}


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
    assert [c.execution_count for c in nb.cells if c.cell_type == "code"] == [1, 2, 3]
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


# ------------------------------------------------------------------------------------ HTML report


@pytest.fixture(scope="module")
def built(course, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("build")
    return report.build_report(preset="paper", out=out, notebooks_dir=course, progress=False)


def test_build_report_writes_index_linking_every_page(built):
    assert built.name == "index.html" and built.parent.name == "report"
    assert sorted(p.name for p in (built.parent.parent / "notebooks").iterdir()) == ["01_red.ipynb", "02_scale.ipynb"]
    index = built.read_text()
    assert re.findall(r'<a href="([^"]+)">([^<]+)</a>', index) == [
        ("01_red.html", "01 · Red figure"), ("02_scale.html", "02 · Scale")]
    assert "Draws a red square." in index and "Prints a number." in index
    assert "<strong>paper</strong> preset" in index
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", index)
    for name in ("01_red.html", "02_scale.html"):
        assert (built.parent / name).is_file()
    assert not list(built.parent.glob("*.tmp"))


def test_pages_are_self_contained(built):
    page = (built.parent / "01_red.html").read_text()
    assert "<title>01 · Red figure</title>" in page
    assert len(re.findall(r'<img[^>]+src="data:image/png;base64,', page)) == 2  # figure + ../data/blue.png
    assert "../data/blue.png" not in page
    # Navigation links point at the pages, not the .ipynb files.
    assert 'href="02_scale.html"' in page and 'href="index.html"' in page
    assert not re.search(r'href="[^"]*\.ipynb', page)


def test_pages_leave_out_tensorflow_start_up_lines(built):
    page = (built.parent / "02_scale.html").read_text()
    assert "a warning of your own" in page
    assert "oneDNN" not in page and "port.cc" not in page  # the source splits both words


def test_render_html_reads_the_preset_from_papermill(executed, tmp_path):
    index = report.render_html(executed, tmp_path / "report")
    assert "<strong>quick</strong> preset" in index.read_text()


def test_build_report_rejects_an_empty_folder(tmp_path):
    with pytest.raises(NstdreamError, match="no notebooks match"):
        report.build_report(out=tmp_path / "build", notebooks_dir=tmp_path, progress=False)


# ------------------------------------------------------------------------------- in a real browser


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if found := shutil.which(name):
            return found
    reason = ("Chromium is not installed: `make setup` installs it with apt-get when run as root "
              "(`apt-get install chromium` on Debian/Ubuntu)")
    if os.environ.get("NSTDREAM_REQUIRE_CHROMIUM", "0") == "1":
        pytest.fail(f"NSTDREAM_REQUIRE_CHROMIUM=1 but {reason}", pytrace=False)
    pytest.skip(reason)


def _browse(url: str, profile: Path, *flags: str) -> subprocess.CompletedProcess:
    command = [
        _chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-dev-shm-usage", "--hide-scrollbars", f"--user-data-dir={profile}",
        "--host-resolver-rules=MAP * ~NOTFOUND",  # no network: the page must stand on its own
        "--window-size=1200,1600", *flags, url,
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return result


def _screenshot(url: str, tmp_path: Path, name: str) -> np.ndarray:
    png = tmp_path / f"{name}.png"
    _browse(url, tmp_path / "profile", f"--screenshot={png}")
    return np.asarray(Image.open(png).convert("RGB")).astype(int)


def test_report_renders_in_headless_chromium(built, tmp_path):
    index_url, page_url = built.as_uri(), (built.parent / "01_red.html").as_uri()

    dom = _browse(index_url, tmp_path / "profile", "--dump-dom").stdout
    assert re.findall(r'<a href="([^"]+)">', dom) == ["01_red.html", "02_scale.html"]
    dom = _browse(page_url, tmp_path / "profile", "--dump-dom").stdout
    assert re.search(r'<img[^>]+src="data:image/png;base64,', dom)

    index = _screenshot(index_url, tmp_path, "index")
    assert index.shape == (1600, 1200, 3)
    assert (index.min(axis=2) < 200).sum() > 2000  # text drawn, not a blank page

    page = _screenshot(page_url, tmp_path, "page")
    assert (page.min(axis=2) < 200).sum() > 5000
    red = (page[..., 0] > 220) & (page[..., 1] < 40) & (page[..., 2] < 40)
    assert red.sum() > 20_000, f"only {red.sum()} red pixels: the figure is not shown"
    blue = (page[..., 2] > 220) & (page[..., 0] < 40) & (page[..., 1] < 40)
    assert blue.sum() > 100  # the markdown image embedded from ../data/blue.png


def test_report_kernels_draw_figures_inline_and_restore_the_environment(monkeypatch):
    monkeypatch.setenv("MPLBACKEND", "Agg")
    with report._kernel_environment():
        assert os.environ["MPLBACKEND"] == report.KERNEL_ENV["MPLBACKEND"]
    assert os.environ["MPLBACKEND"] == "Agg"
