"""Write the student release of the course: every notebook with its exercise answers replaced by stubs.

nbgrader's own preprocessors run through nbconvert, so no nbgrader course database is needed:
``ClearSolutions`` replaces each ``### BEGIN SOLUTION`` … ``### END SOLUTION`` region by
``raise NotImplementedError()``, ``ClearHiddenTests`` drops ``### BEGIN HIDDEN TESTS`` … regions,
and the outputs of answer and check cells are cleared (the rest of each notebook keeps its outputs).

Use: ``python tools/student_release.py [NOTEBOOKS_DIR] [OUT_DIR]`` (default: notebooks build/student),
or ``make student``. Hand the result to students; the teacher notebooks are what an nbgrader course's
``source/`` folder holds (docs/teaching.md).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import nbformat
from nbgrader.preprocessors import ClearHiddenTests, ClearSolutions


def student_notebook(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """``nb`` with solutions stubbed, hidden tests removed and the outputs of exercise cells cleared."""
    resources = {}
    nb, resources = ClearSolutions().preprocess(nb, resources)
    nb, resources = ClearHiddenTests().preprocess(nb, resources)
    for cell in nb.cells:
        if cell.cell_type == "code" and "nbgrader" in cell.metadata:
            cell.outputs, cell.execution_count = [], None
    return nb


def release(notebooks_dir: str | Path = "notebooks", out_dir: str | Path = "build/student") -> list[Path]:
    """Write the student version of every notebook in ``notebooks_dir`` (and its README) to ``out_dir``."""
    notebooks_dir, out_dir = Path(notebooks_dir), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for path in sorted(notebooks_dir.iterdir()):
        if path.suffix == ".ipynb":
            nb = student_notebook(nbformat.read(path, as_version=4))
            nbformat.write(nb, out_dir / path.name)
        elif path.suffix == ".md":  # the contents page
            shutil.copy2(path, out_dir / path.name)
        else:
            continue
        written.append(out_dir / path.name)
    return written


if __name__ == "__main__":
    paths = release(*sys.argv[1:3])
    print(f"wrote {len(paths)} files to {paths[0].parent if paths else '(nothing)'}")
