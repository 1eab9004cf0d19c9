"""The committed course notebooks as a student opens them: badges, the setup cell, figures that survive
reopening, and no tooling talk. Reads the files only; no kernel, no TensorFlow."""

from __future__ import annotations

import importlib.util
import os
import re
import stat
from pathlib import Path

import pytest
import yaml

from nstdream_utils import notebooks

_TOOL = importlib.util.spec_from_file_location(
    "notebooks_tool", Path(__file__).resolve().parents[1] / "tools" / "notebooks.py")
nbtools = importlib.util.module_from_spec(_TOOL)  # the maintainer tool, tools/notebooks.py
_TOOL.loader.exec_module(nbtools)

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = nbtools.notebook_paths(REPO / "notebooks")
# Words about test tooling and CPU kernels: they belong in the top README, not where students read.
TOOLING_WORDS = re.compile(r"avx|nbval|onednn|\bamx", re.IGNORECASE)


def test_there_are_ten_notebooks():
    assert [p.name[:2] for p in NOTEBOOKS] == [f"{i:02d}" for i in range(10)]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name[:2])
def test_setup_cell_is_the_first_code_cell_and_equals_the_template(path):
    nb = nbtools.read(path)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    first = code[0]
    assert nbtools.is_setup_cell(first), "the first code cell is not the setup cell — run `... notebooks nav`"
    assert first.source == nbtools.setup_source(), "the setup cell differs from SETUP_TEMPLATE — run `... nav`"
    assert sum(map(nbtools.is_setup_cell, nb.cells)) == 1
    assert code.index(first) < next(i for i, c in enumerate(code) if "parameters" in c.metadata.get("tags", []))
    assert first.outputs == []  # it prints nothing on a prepared machine


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name[:2])
def test_navigation_cells_carry_the_colab_and_binder_badges(path):
    nb = nbtools.read(path)
    nav = [cell for cell in nb.cells if nbtools.is_nav_cell(cell)]
    assert len(nav) == 2 and nav[0] is nb.cells[1] and nav[1] is nb.cells[-1]
    slug = nbtools.REPOSITORY_URL.removeprefix("https://github.com/")
    colab = f"https://colab.research.google.com/github/{slug}/blob/{nbtools.BRANCH}/notebooks/{path.name}"
    binder = f"https://mybinder.org/v2/gh/{slug}/{nbtools.BRANCH}?labpath=notebooks%2F{path.name}"
    for cell in nav:
        assert f"]({colab})" in cell.source and f"]({binder})" in cell.source


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name[:2])
def test_no_widget_view_without_a_static_figure(path):
    """Widget state is not committed, so a widget view alone reopens as "model not found"."""
    nb = nbtools.read(path)
    assert "widgets" not in nb.metadata
    for index, cell in enumerate(nb.cells):
        outputs = cell.get("outputs", [])
        has_image = any(mime in output.get("data", {}) for output in outputs for mime in notebooks.STATIC_IMAGES)
        views = [output for output in outputs if notebooks.WIDGET_VIEW in output.get("data", {})]
        assert not views or has_image, f"cell {index} holds a widget view and no static image"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name[:2])
def test_cell_sources_say_nothing_of_test_tools_or_cpu_kernels(path):
    for index, cell in enumerate(nbtools.read(path).cells):
        found = TOOLING_WORDS.findall(cell.source)
        assert not found, f"cell {index} mentions {found}"


def test_the_contents_page_says_nothing_of_test_tools_or_cpu_kernels():
    assert not TOOLING_WORDS.findall((REPO / "notebooks" / "README.md").read_text(encoding="utf-8"))


def test_binder_installs_the_package_registers_the_kernel_and_fetches_the_weights():
    post_build = REPO / "binder" / "postBuild"
    assert os.stat(post_build).st_mode & stat.S_IXUSR, "binder/postBuild must be executable"
    lines = [line for line in post_build.read_text().splitlines() if line and not line.startswith("#")]
    assert 'python -m pip install --no-cache-dir -e ".[cpu]"' in lines
    kernel = nbtools.read(NOTEBOOKS[0]).metadata.kernelspec.name
    assert any(line.startswith("python -m ipykernel install") and f"--name {kernel}" in line for line in lines)
    assert "nstdream weights fetch" in lines
    binder = yaml.safe_load((REPO / "binder" / "environment.yml").read_text())
    root = yaml.safe_load((REPO / "environment.yml").read_text())
    conda = [dep for dep in binder["dependencies"] if isinstance(dep, str)]
    assert "pip" in conda and next(d for d in conda if d.startswith("python=")) in root["dependencies"]
    assert not any(isinstance(dep, dict) for dep in binder["dependencies"])  # no pip section: postBuild installs
