"""Reading, writing and normalising the course notebooks ``NN_*.ipynb`` (authoring: ``tools/notebooks.py``)."""

import copy
import hashlib
import itertools
import os
import re
from pathlib import Path

import nbformat

from nstdream_utils.files import atomic_write_text

NAV_MARKER = "<!-- nav -->"
PAPERMILL_TAGS = {"injected-parameters", "papermill-error-cell-tag"}  # the cells papermill adds
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
STATIC_IMAGES = ("image/png", "image/jpeg", "image/svg+xml")
# TensorFlow's C++ start-up lines reach a cell's stderr in some kernels and not others: dropped on normalising.
_TF_LOG_LINE = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|[IWE]\d{4} [\d:. ]+\d+ \S+\.(cc|h):\d+\] .*|.*(oneDNN custom operations are on|Unable to register cu"
    r"(DNN|FFT|BLAS) factory|rebuild TensorFlow with the appropriate compiler flags|computation placer already "
    r"registered|This TensorFlow binary is optimized to use available CPU instructions).*)$")


def read(path: str | os.PathLike) -> nbformat.NotebookNode:
    """Read a notebook as nbformat 4.5, a cell without an id getting one derived from its place and content."""
    nb = nbformat.read(os.fspath(path), as_version=4)
    nb.nbformat_minor = max(nb.nbformat_minor, 5)
    for index, cell in enumerate(nb.cells):
        cell.setdefault("id", hashlib.sha1(f"{index}\n{cell.source}".encode()).hexdigest()[:8])
    return nb


def write(nb: nbformat.NotebookNode, path: str | os.PathLike) -> bool:
    """Write ``nb`` atomically in nbformat's layout and a final newline; False when the file already holds it."""
    text, path = nbformat.writes(nb) + "\n", Path(path)
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return False
    atomic_write_text(text, path)
    return True


def notebook_paths(notebooks_dir: str | os.PathLike = "notebooks") -> list[Path]:
    """Every ``NN_*.ipynb`` in ``notebooks_dir``, sorted by name."""
    return sorted(Path(notebooks_dir).glob("[0-9][0-9]_*.ipynb"))


def is_nav_cell(cell) -> bool:
    return cell.cell_type == "markdown" and cell.source.lstrip().startswith(NAV_MARKER)


def clean_outputs(outputs: list) -> list:
    """``outputs`` without TensorFlow's start-up lines and widget views (kept: static images), streams joined."""
    kept = []
    for output in outputs:
        data = output.get("data", {})
        if data.pop(WIDGET_VIEW, None) and not any(mime in data for mime in STATIC_IMAGES):
            continue
        if output.get("name") == "stderr":  # only streams have a name
            output.text = "".join(line for line in output.text.splitlines(keepends=True)
                                  if not _TF_LOG_LINE.match(line.rstrip("\n")))
            if not output.text.strip():
                continue
        if kept and output.get("name") and kept[-1].get("name") == output.name:
            kept[-1].text += output.text
        else:
            kept.append(output)
    return kept


def normalized(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy of ``nb`` without papermill's or empty cells and volatile metadata, outputs cleaned, counts 1..n."""
    nb = copy.deepcopy(nb)
    for key in ("papermill", "widgets"):
        nb.metadata.pop(key, None)
    nb.cells = [cell for cell in nb.cells if not PAPERMILL_TAGS & set(cell.metadata.get("tags", []))
                and (cell.source.strip() or cell.get("outputs"))]
    counts = itertools.count(1)
    for cell in nb.cells:
        for key in ("papermill", "execution", "ExecuteTime", "trusted"):
            cell.metadata.pop(key, None)
        if cell.metadata.get("tags") == []:
            del cell.metadata["tags"]
        if cell.cell_type == "code":
            cell.outputs = clean_outputs(cell.outputs)
            if cell.execution_count is not None:
                cell.execution_count = next(counts)
                for output in (output for output in cell.outputs if output.output_type == "execute_result"):
                    output.execution_count = cell.execution_count
    return nb
