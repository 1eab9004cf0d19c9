"""The exercises of notebooks 01–06, 08 and 09: answer and check cells in the teacher notebooks, and a student release
(``tools/student_release.py``, ``make student``) with the answers stubbed and the hidden tests gone.

The teacher notebooks' checks pass because the committed notebooks run with their answers under nbval.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"
EXERCISE_NOTEBOOKS = sorted(path.name for path in NOTEBOOKS.glob("0[1-689]_*.ipynb"))
SOLUTION = re.compile(r"### BEGIN SOLUTION\n(.*?)### END SOLUTION", re.S)


def _release_module():
    spec = importlib.util.spec_from_file_location("student_release", REPO / "tools" / "student_release.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _grading(cell) -> dict:
    return cell.metadata.get("nbgrader", {})


def _answers(nb):
    return [cell for cell in nb.cells if _grading(cell).get("solution")]


@pytest.fixture(scope="module")
def student_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("student")
    _release_module().release(NOTEBOOKS, out)
    return out


def test_eight_exercise_notebooks():
    assert len(EXERCISE_NOTEBOOKS) == 8, EXERCISE_NOTEBOOKS


@pytest.mark.parametrize("name", EXERCISE_NOTEBOOKS)
def test_teacher_notebook_has_answer_and_check_per_exercise(name):
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    cells = nb.cells
    answers = _answers(nb)
    assert 3 <= len(answers) <= 6, f"{name}: {len(answers)} exercises"
    ids = [_grading(cell)["grade_id"] for cell in cells if _grading(cell)]
    assert len(ids) == len(set(ids)), f"{name}: grade_ids repeat"
    for cell in answers:
        i = cells.index(cell)
        grading = _grading(cell)
        assert cell.cell_type == "code" and SOLUTION.search(cell.source), f"{name}: {grading['grade_id']} has no solution"
        assert grading == {"solution": True, "grade": False, "grade_id": grading["grade_id"], "locked": False,
                           "schema_version": 3, "task": False}
        task = cells[i - 1]
        assert task.cell_type == "markdown" and task.source.startswith("### Exercise") and "<details>" in task.source
        check = cells[i + 1]
        assert _grading(check) == {"grade": True, "grade_id": check.metadata["nbgrader"]["grade_id"], "locked": True,
                                   "points": 1, "schema_version": 3, "solution": False, "task": False}, f"{name}: no check"
        assert "assert" in check.source and "BEGIN SOLUTION" not in check.source
        for output in cell.outputs + check.outputs:
            assert output.output_type != "error", f"{name}: {grading['grade_id']} stored an error"
    headings = [line for cell in cells if cell.cell_type == "markdown" for line in cell.source.splitlines()]
    order = [h for h in headings if h in ("## Summary", "## Exercises", "## References")]
    assert order == ["## Summary", "## Exercises", "## References"], f"{name}: {order}"


@pytest.mark.parametrize("name", EXERCISE_NOTEBOOKS)
def test_student_release_has_stubs_and_no_answers(student_dir, name):
    teacher = nbformat.read(NOTEBOOKS / name, as_version=4)
    student = nbformat.read(student_dir / name, as_version=4)
    assert [cell.cell_type for cell in student.cells] == [cell.cell_type for cell in teacher.cells]
    text = "\n".join(cell.source for cell in student.cells)
    for marker in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"):
        assert marker not in text, f"{name}: {marker!r} survives"
    stubs = [cell for cell in student.cells if cell.cell_type == "code" and "raise NotImplementedError" in cell.source]
    assert len(stubs) == len(_answers(teacher))
    for cell_teacher, cell_student in zip(teacher.cells, student.cells):
        for region in SOLUTION.findall(cell_teacher.source):
            for line in filter(str.strip, region.splitlines()):
                assert line not in cell_student.source.splitlines(), f"{name}: answer line {line!r} survives"
        if _grading(cell_student):
            assert cell_student.outputs == [], f"{name}: an exercise cell keeps its output"
        elif cell_teacher.cell_type == "code":
            assert len(cell_student.outputs) == len(cell_teacher.outputs)


def test_student_release_copies_every_notebook(student_dir):
    assert sorted(path.name for path in student_dir.glob("*.ipynb")) == sorted(p.name for p in NOTEBOOKS.glob("*.ipynb"))
    assert (student_dir / "README.md").is_file()


@pytest.mark.slow
@pytest.mark.needs_weights
def test_student_notebook_stops_at_first_exercise(student_dir, tmp_path, weights_dir):
    papermill = pytest.importorskip("papermill")
    name = EXERCISE_NOTEBOOKS[0]
    out = tmp_path / name
    with pytest.raises(papermill.PapermillExecutionError) as raised:
        papermill.execute_notebook(str(student_dir / name), str(out), kernel_name="python3", cwd=str(NOTEBOOKS),
                                   progress_bar=False, log_output=False)
    assert raised.value.ename == "NotImplementedError"
    executed = nbformat.read(out, as_version=4)
    failed = [cell for cell in executed.cells if cell.cell_type == "code"
              and any(output.output_type == "error" for output in cell.outputs)]
    assert len(failed) == 1 and failed[0] is _answers(executed)[0], "the first answer cell should be the one that fails"
