"""Notebook tooling: navigation cells, the contents page, JSON normalisation and pre-commit checks.

Everything here keys on the house notebook anatomy (``../shared/STYLE.md``):

- files are ``NN_snake_case.ipynb`` in one folder;
- the first cell is markdown whose first ``# `` line is the title (``# 03 · Neural style transfer``)
  and whose first ``> `` line is the one-line summary;
- the navigation cell is markdown starting with ``<!-- nav -->``: previous · contents · next, then the
  "Open in Colab" and "Launch Binder" badges; it is generated, never edited by hand;
- the setup cell (id ``setup``) is the first code cell: it installs the course where it is missing (Colab,
  a fresh Binder) and does nothing elsewhere; it is generated from :data:`SETUP_TEMPLATE`, never edited by hand.

The badges and the setup cell point at :data:`REPOSITORY_URL`; a fork changes it there and reruns ``nav``.

Command line (paths default to every ``notebooks/NN_*.ipynb``)::

    python -m nstdream_utils.notebooks nav [NOTEBOOK ...]        # nav cells (2nd and last) and the setup cell
    python -m nstdream_utils.notebooks contents [DIR]            # DIR/README.md (default: notebooks)
    python -m nstdream_utils.notebooks normalize [NOTEBOOK ...]  # JSON ready to commit
    python -m nstdream_utils.notebooks check [NOTEBOOK ...]      # exit 1 when a notebook has a problem

This module never imports TensorFlow.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import os
import re
import sys
from pathlib import Path
from typing import Iterable, Sequence
from urllib.parse import quote

import nbformat

from nstdream_utils.files import atomic_write_text

#: The public repository of the course: the Colab and Binder badges open its notebooks, and the setup cell
#: clones it where a notebook runs on its own. A fork changes this one line, then runs ``nav``.
REPOSITORY_URL = "https://github.com/nstdream/nstdream"
#: The branch the badges open.
BRANCH = "main"
NAV_MARKER = "<!-- nav -->"
SETUP_ID = "setup"
CONTENTS_START = "<!-- contents:start -->"
CONTENTS_END = "<!-- contents:end -->"
NOTEBOOK_GLOB = "[0-9][0-9]_*.ipynb"
MAX_BYTES = 2 * 1024 * 1024
INJECTED_TAG = "injected-parameters"
PARAMETERS_TAG = "parameters"

# Metadata that changes on every run and carries nothing a reader needs.
VOLATILE_NOTEBOOK_METADATA = ("papermill", "widgets")
VOLATILE_CELL_METADATA = ("papermill", "execution", "ExecuteTime", "trusted")
# Cells papermill adds: the injected parameters and the "An Exception was encountered" markers.
_PAPERMILL_CELL_TAGS = {INJECTED_TAG, "papermill-error-cell-tag"}
_VALID_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
STATIC_IMAGES = ("image/png", "image/jpeg", "image/svg+xml")

DEFAULT_OVERVIEW = (
    "These notebooks reproduce Al-Khazraji, Abbas & Jamil (2022), neural style transfer followed "
    "by DeepDream, step by step: first the pieces of neural style transfer (images, features, "
    "Gram matrices, losses), then the optimisation, then DeepDream on the stylised image, and "
    "finally the paper's full pipeline. Read them in order; each one runs top to bottom with its "
    "default (quick) parameters in a few minutes on two CPU cores, and `make report` renders all "
    "of them into one HTML report."
)


# ----------------------------------------------------------------------------------------- I/O


def read(path: str | os.PathLike) -> nbformat.NotebookNode:
    """Read a notebook as nbformat 4.5+, giving every cell a stable id if it lacks one."""
    nb = nbformat.read(os.fspath(path), as_version=4)
    _ensure_ids(nb)
    return nb


def dumps(nb: nbformat.NotebookNode) -> str:
    """The notebook as committed: nbformat's own layout (sorted keys, indent 1), newline at the end."""
    text = nbformat.writes(nb)
    return text if text.endswith("\n") else text + "\n"


def write(nb: nbformat.NotebookNode, path: str | os.PathLike) -> bool:
    """Write ``nb`` atomically; return False (and touch nothing) when the file already holds it."""
    text = dumps(nb)
    path = Path(path)
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return False
    atomic_write_text(text, path)
    return True


def _ensure_ids(nb: nbformat.NotebookNode) -> None:
    """Upgrade to nbformat 4.5 and give cells without a valid unique id one derived from their content.

    The id depends only on the cell's type and source (plus a counter on a clash), so rerunning any
    tool gives the same ids, and existing ids are never changed.
    """
    if nb.nbformat == 4 and nb.nbformat_minor < 5:
        nb.nbformat_minor = 5
    seen: set[str] = set()
    for cell in nb.cells:
        cell_id = cell.get("id")
        if isinstance(cell_id, str) and _VALID_ID.match(cell_id) and cell_id not in seen:
            seen.add(cell_id)
            continue
        digest = hashlib.sha1(f"{cell.cell_type}\n{cell.source}".encode()).hexdigest()
        base, n = digest[:8], 0
        cell_id = base
        while cell_id in seen:
            n += 1
            cell_id = f"{base}-{n}"
        cell["id"] = cell_id
        seen.add(cell_id)


def notebook_paths(notebooks_dir: str | os.PathLike = "notebooks") -> list[Path]:
    """Every ``NN_*.ipynb`` in ``notebooks_dir``, sorted by name."""
    return sorted(Path(notebooks_dir).glob(NOTEBOOK_GLOB))


# --------------------------------------------------------------------------- titles and summaries


def _title_cell(nb: nbformat.NotebookNode):
    return next((cell for cell in nb.cells if cell.cell_type == "markdown"), None)


def title_of(nb_or_path, *, default: str | None = None) -> str:
    """The notebook's H1 title: the first ``# `` line of its first markdown cell.

    Falls back to ``default``, or to the file stem for a path (``03_nst`` → ``03 nst``).
    """
    nb = read(nb_or_path) if isinstance(nb_or_path, (str, os.PathLike)) else nb_or_path
    cell = _title_cell(nb)
    if cell is not None:
        for line in cell.source.splitlines():
            if line.startswith("# "):
                return line[2:].strip()
    if default is not None:
        return default
    if isinstance(nb_or_path, (str, os.PathLike)):
        return Path(nb_or_path).stem.replace("_", " ")
    return "Untitled"


def summary_of(nb_or_path) -> str:
    """The one-line summary: the first ``> `` line of the first markdown cell ('' if none)."""
    nb = read(nb_or_path) if isinstance(nb_or_path, (str, os.PathLike)) else nb_or_path
    cell = _title_cell(nb)
    if cell is not None:
        for line in cell.source.splitlines():
            if line.startswith(">"):
                return line.lstrip(">").strip()
    return ""


# ----------------------------------------------------------------------------------- navigation


def _repository_path(path: Path) -> str:
    """``path`` relative to the checkout holding it (the folder with ``pyproject.toml``), POSIX style;
    ``<folder>/<file>`` when no checkout is found."""
    path = Path(path).resolve()
    for folder in path.parents:
        if (folder / "pyproject.toml").is_file():
            return path.relative_to(folder).as_posix()
    return f"{path.parent.name}/{path.name}"


def badges(path: Path, *, repository: str = REPOSITORY_URL, branch: str = BRANCH) -> str:
    """The "Open in Colab" and "Launch Binder" badges of the notebook at ``path`` in ``repository``."""
    slug = repository.removeprefix("https://github.com/").strip("/")
    file = _repository_path(path)
    colab = f"https://colab.research.google.com/github/{slug}/blob/{branch}/{file}"
    binder = f"https://mybinder.org/v2/gh/{slug}/{branch}?labpath={quote(file, safe='')}"
    return (f"[![Open in Colab](https://colab.research.google.com/assets/colab-badge.svg)]({colab}) "
            f"[![Launch Binder](https://mybinder.org/badge_logo.svg)]({binder})")


def is_nav_cell(cell) -> bool:
    """True for a generated navigation cell (markdown starting with ``<!-- nav -->``)."""
    return cell.cell_type == "markdown" and cell.source.lstrip().startswith(NAV_MARKER)


def _link(target: Path, here: Path) -> str:
    return Path(os.path.relpath(target, here.parent)).as_posix()


def nav_source(index: int, paths: Sequence[Path], titles: Sequence[str], contents: Path) -> str:
    """The navigation line for ``paths[index]``: ``< previous · Contents · next >``."""
    here = paths[index]
    parts = []
    if index > 0:
        parts.append(f"< [{titles[index - 1]}]({_link(paths[index - 1], here)})")
    parts.append(f"[Contents]({_link(contents, here)})")
    if index + 1 < len(paths):
        parts.append(f"[{titles[index + 1]}]({_link(paths[index + 1], here)}) >")
    return f"{NAV_MARKER}\n" + " · ".join(parts) + "\n\n" + badges(here)


def add_navigation(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Put a navigation cell second and last in each notebook, in the order given.

    Existing navigation cells (anywhere) are replaced, so rerunning changes nothing. Links use
    each neighbour's H1 title and point to ``README.md`` (the contents page) in the first
    notebook's folder; the badges open the notebook in Colab and Binder. The setup cell is put in
    too (:func:`add_setup_cell`). Returns the notebooks whose file changed.
    """
    paths = [Path(p) for p in paths]
    if not paths:
        return []
    notebooks = [read(p) for p in paths]
    titles = [title_of(nb, default=p.stem.replace("_", " ")) for nb, p in zip(notebooks, paths)]
    contents = paths[0].parent / "README.md"
    changed = []
    for index, (nb, path) in enumerate(zip(notebooks, paths)):
        source = nav_source(index, paths, titles, contents)
        cells = [cell for cell in nb.cells if not is_nav_cell(cell)]
        top = nbformat.v4.new_markdown_cell(source, id="nav-top")
        bottom = nbformat.v4.new_markdown_cell(source, id="nav-bottom")
        nb.cells = cells[:1] + [top] + cells[1:] + [bottom]
        _put_setup_cell(nb)
        if write(nb, path):
            changed.append(path)
    return changed


# ---------------------------------------------------------------------------------- setup cell

#: The setup cell. It must run where ``nstdream_utils`` is not installed, so its logic lives here, as
#: text, and not in the package. Inside a checkout (a ``pyproject.toml`` of ``nstdream`` in the working
#: folder or above it) it installs that checkout; otherwise it clones ``{repository}`` and moves into
#: its ``notebooks`` folder, so the notebooks' relative paths hold. TensorFlow comes with the ``cpu``
#: extra only where none is installed (Colab has its own). Then it fetches the weights.
SETUP_TEMPLATE = """\
# Setup: where the course is missing (Colab, a fresh Binder) this installs it and the network weights,
# a few minutes once; where it is installed it does nothing.
import importlib.util, os, pathlib, subprocess, sys

if importlib.util.find_spec("nstdream_utils") is None:
    tomls = [folder / "pyproject.toml" for folder in [pathlib.Path.cwd(), *pathlib.Path.cwd().parents]]
    checkout = next((toml.parent for toml in tomls if toml.is_file() and 'name = "nstdream"' in toml.read_text()), None)
    if checkout is None:  # this notebook alone: get the whole course, and run from its notebooks folder
        checkout = pathlib.Path("nstdream").resolve()
        if not checkout.is_dir():
            subprocess.run(["git", "clone", "-q", "--depth", "1", "{repository}", str(checkout)], check=True)
        os.chdir(checkout / "notebooks")
    extra = "" if importlib.util.find_spec("tensorflow") else "[cpu]"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-e", f"{{checkout}}{{extra}}"], check=True)
    sys.path.insert(0, str(checkout))
    subprocess.run([sys.executable, "-m", "nstdream_utils.cli", "weights", "fetch"], check=True)"""


def setup_source(repository: str = REPOSITORY_URL) -> str:
    """The source of the setup cell, installing from ``repository`` where no checkout is found."""
    return SETUP_TEMPLATE.format(repository=repository)


def is_setup_cell(cell) -> bool:
    """True for the generated setup cell (the code cell with id ``setup``)."""
    return cell.cell_type == "code" and cell.get("id") == SETUP_ID


def _put_setup_cell(nb: nbformat.NotebookNode) -> None:
    """Make the setup cell the first code cell of ``nb``, keeping its outputs when its source is current."""
    old = next((cell for cell in nb.cells if is_setup_cell(cell)), None)
    cells = [cell for cell in nb.cells if not is_setup_cell(cell)]
    if old is not None and old.source == setup_source():
        cell = old
    else:
        cell = nbformat.v4.new_code_cell(setup_source(), id=SETUP_ID)
    first_code = next((i for i, c in enumerate(cells) if c.cell_type == "code"), len(cells))
    nb.cells = cells[:first_code] + [cell] + cells[first_code:]


def add_setup_cell(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Put the setup cell (:data:`SETUP_TEMPLATE`) first among the code cells of each notebook.

    An existing setup cell is moved there, and replaced when its source is stale, so rerunning
    changes nothing. Returns the notebooks whose file changed.
    """
    changed = []
    for path in map(Path, paths):
        nb = read(path)
        _put_setup_cell(nb)
        if write(nb, path):
            changed.append(path)
    return changed


# ------------------------------------------------------------------------------------- contents


def contents_list(paths: Sequence[Path], here: Path) -> str:
    """The ordered markdown list: ``1. [03 · Title](03_x.ipynb) — summary``."""
    lines = []
    for number, path in enumerate(paths, start=1):
        nb = read(path)
        title, summary = title_of(nb, default=path.stem.replace("_", " ")), summary_of(nb)
        line = f"{number}. [{title}]({_link(path, here)})"
        lines.append(f"{line} — {summary}" if summary else line)
    return "\n".join(lines)


def write_contents(notebooks_dir: str | os.PathLike = "notebooks") -> Path:
    """Write ``notebooks_dir/README.md``: an overview paragraph, then the ordered list of notebooks.

    When the README already has ``<!-- contents:start -->`` … ``<!-- contents:end -->`` markers,
    only the list between them is replaced and the hand-written text around it is kept.
    """
    notebooks_dir = Path(notebooks_dir)
    readme = notebooks_dir / "README.md"
    block = f"{CONTENTS_START}\n{contents_list(notebook_paths(notebooks_dir), readme)}\n{CONTENTS_END}"
    old = readme.read_text(encoding="utf-8") if readme.exists() else ""
    if CONTENTS_START in old and CONTENTS_END in old:
        head, rest = old.split(CONTENTS_START, 1)
        tail = rest.split(CONTENTS_END, 1)[1]
        text = head + block + tail
    else:
        text = f"# Notebooks\n\n{DEFAULT_OVERVIEW}\n\n{block}\n"
    if text != old:
        atomic_write_text(text, readme)
    return readme


# ---------------------------------------------------------------------------------- normalise


def _tags(cell) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


# TensorFlow's C++ start-up lines (absl, oneDNN, CUDA probes) reach a cell's stderr in some kernels
# and not in others, so a committed copy of them makes nbval fail; they are dropped on normalising.
_TF_LOG_LINE = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|[IWE]\d{4} [\d:. ]+\d+ \S+\.(cc|h):\d+\] .*"
    r"|.*(oneDNN custom operations are on|rebuild TensorFlow with the appropriate compiler flags"
    r"|Unable to register cu(DNN|FFT|BLAS) factory|computation placer already registered"
    r"|This TensorFlow binary is optimized to use available CPU instructions).*)$")


def _without_tf_log(outputs: list) -> list:
    """``outputs`` without TensorFlow's start-up lines, adjacent pieces of one stream joined (how
    a kernel splits a stream into messages depends on timing, not on the notebook)."""
    kept = []
    for output in outputs:
        if output.get("output_type") == "stream" and output.get("name") == "stderr":
            lines = [line for line in output.text.splitlines(keepends=True) if not _TF_LOG_LINE.match(line.rstrip("\n"))]
            if not "".join(lines).strip():
                continue
            output.text = "".join(lines)
        previous = kept[-1] if kept else None
        if (output.get("output_type") == "stream" and previous is not None
                and previous.get("output_type") == "stream" and previous.get("name") == output.get("name")):
            previous.text += output.text
            continue
        kept.append(output)
    return kept


def _without_widget_views(outputs: list) -> list:
    """``outputs`` with no widget views: the widget state is not committed, so a front end reopening the
    notebook cannot draw them ("model not found"). An output that also holds a static image keeps the
    image; one that holds only text (a progress bar's first state, a widget's repr) is dropped."""
    kept = []
    for output in outputs:
        data = output.get("data", {})
        if WIDGET_VIEW in data:
            del data[WIDGET_VIEW]
            if not any(mime in data for mime in STATIC_IMAGES):
                continue
        kept.append(output)
    return kept


def drop_tf_log(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Remove TensorFlow's C++ start-up lines (absl, oneDNN, CUDA probes) from every cell's stderr
    and join adjacent pieces of one stream, in place, and return ``nb``: the lines say nothing about
    the notebook and look like errors in a report."""
    for cell in nb.cells:
        if cell.get("cell_type") == "code":
            cell.outputs = _without_tf_log(cell.get("outputs", []))
    return nb


def drop_badges(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Remove the Colab and Binder badges from the navigation cells, in place, and return ``nb``: the
    report site reads offline, and the badges are images on other servers."""
    for cell in nb.cells:
        if is_nav_cell(cell):
            cell.source = "\n".join(line for line in cell.source.splitlines() if not line.startswith("[![")).rstrip()
    return nb


def normalized(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy of ``nb`` ready to commit (see :func:`normalize`)."""
    nb = copy.deepcopy(nb)
    _ensure_ids(nb)
    for key in VOLATILE_NOTEBOOK_METADATA:
        nb.metadata.pop(key, None)
    cells = []
    for cell in nb.cells:
        if _PAPERMILL_CELL_TAGS & set(_tags(cell)):
            continue
        if not cell.source.strip() and not cell.get("outputs"):
            continue  # an empty cell
        for key in VOLATILE_CELL_METADATA:
            cell.metadata.pop(key, None)
        if "tags" in cell.metadata and not cell.metadata.tags:
            del cell.metadata["tags"]
        if cell.cell_type == "code":
            cell.outputs = _without_widget_views(cell.outputs)
        cells.append(cell)
    nb.cells = cells
    count = 0
    for cell in nb.cells:
        if cell.cell_type != "code" or cell.execution_count is None:
            continue
        count += 1
        cell.execution_count = count
        cell.outputs = _without_tf_log(cell.outputs)
        for output in cell.outputs:
            if output.output_type == "execute_result":
                output.execution_count = count
    return nb


def normalize(path: str | os.PathLike) -> bool:
    """Normalise a notebook file for commit; return True when the file changed.

    Sorted keys and indent 1 (nbformat's layout); no papermill metadata, cell ``execution``
    timings, widget state or widget views (a static image beside one is kept); no papermill injected-parameters or error-marker cell; no empty
    cells; execution counts 1..n in order; ``kernelspec`` and ``language_info`` kept; every cell
    keeps its id (missing ids are derived from the cell's content). Idempotent.
    """
    return write(normalized(read(path)), path)


# -------------------------------------------------------------------------------------- check


def check(path: str | os.PathLike) -> list[str]:
    """What stops this notebook from being committed, one short sentence each ([] when fine)."""
    path = Path(path)
    try:
        nb = read(path)
    except Exception as exc:  # noqa: BLE001 — any unreadable file is one problem to report
        return [f"cannot be read as a notebook ({type(exc).__name__}: {exc})"]
    problems = []
    size = path.stat().st_size
    if size > MAX_BYTES:
        problems.append(f"file is {size / 2**20:.1f} MB, over 2 MB — show smaller images")
    if "kernelspec" not in nb.metadata:
        problems.append("no kernelspec in metadata — save it once from Jupyter with the Python 3 kernel")
    title = _title_cell(nb)
    if title is None or nb.cells.index(title) != 0 or not re.search(r"(?m)^# ", title.source):
        problems.append("first cell is not the title cell ('# NN · Title' then a '> summary' line)")
    elif not summary_of(nb):
        problems.append("title cell has no one-line '> summary'")
    code = [(i, c) for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    if not any(PARAMETERS_TAG in _tags(c) for _, c in code):
        problems.append("no code cell tagged 'parameters' — papermill cannot set its parameters")
    if code and not any(c.outputs for _, c in code):
        problems.append("no outputs — execute it with `make notebooks`")
    for i, cell in enumerate(nb.cells):
        if not cell.source.strip():
            problems.append(f"cell {i} is empty")
        if INJECTED_TAG in _tags(cell):
            problems.append(f"cell {i} is papermill's injected-parameters cell — run normalize")
        for output in cell.get("outputs", []):
            if output.output_type == "error":
                problems.append(f"cell {i} stores an error output ({output.ename}: {output.evalue})")
        if is_setup_cell(cell) and cell.source != setup_source():
            problems.append(f"cell {i}, the setup cell, differs from its template — run "
                            "`python -m nstdream_utils.notebooks nav`")
    if not problems and path.read_text(encoding="utf-8") != dumps(normalized(nb)):
        problems.append(f"not normalised — run `python -m nstdream_utils.notebooks normalize {path}`")
    return problems


# ----------------------------------------------------------------------------------------- CLI


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m nstdream_utils.notebooks", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("command", choices=["nav", "contents", "normalize", "check"])
    parser.add_argument("paths", nargs="*", help="notebooks (default: notebooks/NN_*.ipynb); "
                        "for 'contents' the notebooks folder")
    args = parser.parse_args(argv)
    if args.command == "contents":
        for folder in args.paths or ["notebooks"]:
            print(f"wrote {write_contents(folder)}")
        return 0
    paths = [Path(p) for p in args.paths] or notebook_paths("notebooks")
    if not paths:
        print("error: no notebooks given and none match notebooks/NN_*.ipynb", file=sys.stderr)
        return 1
    missing = [p for p in paths if not p.is_file()]
    if missing:
        print(f"error: {missing[0]}: no such notebook", file=sys.stderr)
        return 1
    if args.command == "nav":
        changed = set(add_navigation(paths))
        for path in paths:
            print(f"{'updated' if path in changed else 'unchanged'} {path}")
        return 0
    if args.command == "normalize":
        for path in paths:
            print(f"{'normalised' if normalize(path) else 'unchanged'} {path}")
        return 0
    failed = 0
    for path in paths:
        for problem in check(path):
            print(f"{path}: {problem}")
            failed = 1
    return failed


if __name__ == "__main__":
    sys.exit(main())
