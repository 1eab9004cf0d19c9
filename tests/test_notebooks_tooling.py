"""Notebook tooling (tools/notebooks.py, nstdream_utils.notebooks) and the nbval sanitize file. No kernel, no TensorFlow."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from nstdream_utils import notebooks

_TOOL = importlib.util.spec_from_file_location(
    "notebooks_tool", Path(__file__).resolve().parents[1] / "tools" / "notebooks.py")
nbtools = importlib.util.module_from_spec(_TOOL)  # the maintainer tool, tools/notebooks.py
_TOOL.loader.exec_module(nbtools)

KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}
LANGUAGE_INFO = {"name": "python", "version": "3.11.7"}
SANITIZE_CFG = Path(__file__).resolve().parents[1] / "notebooks" / "nbval_sanitize.cfg"


def make_notebook(path: Path, title: str, summary: str = "One line.", *, executed: bool = True) -> Path:
    """A small notebook with the house anatomy: title cell, parameters cell, one printing cell."""
    params = new_code_cell("num_steps = 3  # steps")
    params.metadata.tags = ["parameters"]
    body = new_code_cell("print(num_steps)")
    if executed:
        params.execution_count, body.execution_count = 1, 2
        body.outputs = [new_output("stream", name="stdout", text="3\n")]
    nb = new_notebook(
        cells=[new_markdown_cell(f"# {title}\n> {summary}\n\n- You will learn things."), params, body],
        metadata={"kernelspec": KERNELSPEC, "language_info": LANGUAGE_INFO},
    )
    nbformat.write(nb, path)
    return path


@pytest.fixture
def course(tmp_path: Path) -> list[Path]:
    return [
        make_notebook(tmp_path / "00_setup.ipynb", "00 · Set up", "Install and check."),
        make_notebook(tmp_path / "01_gram.ipynb", "01 · Gram matrices", "Style as feature correlations."),
        make_notebook(tmp_path / "02_dream.ipynb", "02 · DeepDream", "Amplify what the network sees."),
    ]


# ------------------------------------------------------------------------------- titles, nav, contents


def test_title_and_summary_come_from_the_first_markdown_cell(course):
    assert nbtools.heading(course[1]) == ("01 · Gram matrices", "Style as feature correlations.")


def test_title_falls_back_to_the_file_name(tmp_path):
    path = tmp_path / "05_untitled.ipynb"
    nbformat.write(new_notebook(cells=[new_code_cell("x = 1")]), path)
    assert nbtools.heading(path) == ("05 untitled", "")


def test_add_navigation_puts_a_nav_cell_second_and_last(course):
    assert nbtools.add_navigation(course) == course
    middle = nbtools.read(course[1])
    top, bottom = middle.cells[1], middle.cells[-1]
    assert top.source == bottom.source
    assert top.source.startswith("<!-- nav -->")
    assert "< [00 · Set up](00_setup.ipynb)" in top.source
    assert "[Contents](README.md)" in top.source
    assert "[02 · DeepDream](02_dream.ipynb) >" in top.source
    assert middle.cells[0].source.startswith("# 01 · Gram matrices")  # title stays first
    first, last = nbtools.read(course[0]).cells[1].source, nbtools.read(course[2]).cells[1].source
    assert "<" not in first.split("\n", 1)[1].split("[Contents]")[0]  # no previous for the first
    assert not last.rstrip().endswith(">")  # no next for the last


def test_add_navigation_is_idempotent_and_replaces_stale_nav_cells(course):
    nbtools.add_navigation(course)
    before = [p.read_bytes() for p in course]
    assert nbtools.add_navigation(course) == []
    assert [p.read_bytes() for p in course] == before
    # A stale nav cell somewhere in the middle, as after a rename, is replaced, not kept.
    nb = nbtools.read(course[1])
    nb.cells.insert(3, new_markdown_cell("<!-- nav -->\n[old](old.ipynb)"))
    nbformat.write(nb, course[1])
    nbtools.add_navigation(course)
    assert [p.read_bytes() for p in course] == before
    assert sum(nbtools.is_nav_cell(c) for c in nbtools.read(course[1]).cells) == 2


def test_nav_cells_carry_colab_and_binder_badges_for_the_repository(course):
    nbtools.add_navigation(course)
    top = nbtools.read(course[1]).cells[1].source
    slug = nbtools.REPOSITORY_URL.removeprefix("https://github.com/")
    folder = course[1].parent.name
    assert (f"[![Open in Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
            f"(https://colab.research.google.com/github/{slug}/blob/{nbtools.BRANCH}/{folder}/01_gram.ipynb)") in top
    assert f"(https://mybinder.org/v2/gh/{slug}/{nbtools.BRANCH}?labpath={folder}%2F01_gram.ipynb)" in top
    assert nbtools.badges(Path("x/01_gram.ipynb"), repository="https://github.com/fork/course", branch="dev") \
        .count("fork/course") == 2


def test_setup_source_names_the_repository_once():
    source = nbtools.setup_source()
    assert source.count(nbtools.REPOSITORY_URL) == 1 and "{" not in source.replace("{checkout}{extra}", "")
    assert "https://example.org/fork.git" in nbtools.setup_source("https://example.org/fork.git")
    compile(source, "setup", "exec")


def test_add_navigation_puts_the_setup_cell_first_among_code_cells(course):
    nbtools.add_navigation(course)
    nb = nbtools.read(course[0])
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert nbtools.is_setup_cell(code[0]) and code[0].source == nbtools.setup_source()
    assert "parameters" in code[1].metadata.tags
    # A stale or misplaced setup cell is replaced and moved; a current one keeps its outputs.
    nb.cells.remove(code[0])
    nb.cells.append(new_code_cell("print('old setup')", id=nbtools.SETUP_ID))
    nbformat.write(nb, course[0])
    assert any("setup cell, differs from its template" in p for p in nbtools.check(course[0]))
    assert nbtools.add_navigation(course) == [course[0]]
    cells = nbtools.read(course[0]).cells
    assert sum(map(nbtools.is_setup_cell, cells)) == 1 and nbtools.is_setup_cell(cells[2])
    assert cells[2].source == nbtools.setup_source()
    assert nbtools.add_navigation(course) == []


def test_write_contents_lists_every_notebook_in_order(course, tmp_path):
    readme = nbtools.write_contents(tmp_path)
    text = readme.read_text()
    assert text.startswith("# Notebooks\n\n<!-- contents:start -->\n1. [00 · Set up]")
    assert text.endswith("<!-- contents:end -->\n")
    items = re.findall(r"(?m)^(\d+)\. \[(.+?)\]\((.+?)\) — (.+)$", text)
    assert items == [
        ("1", "00 · Set up", "00_setup.ipynb", "Install and check."),
        ("2", "01 · Gram matrices", "01_gram.ipynb", "Style as feature correlations."),
        ("3", "02 · DeepDream", "02_dream.ipynb", "Amplify what the network sees."),
    ]


def test_write_contents_keeps_hand_written_text_around_the_markers(course, tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# Course\n\nMy own intro.\n\n<!-- contents:start -->\nold\n<!-- contents:end -->\n\nFooter.\n")
    nbtools.write_contents(tmp_path)
    text = readme.read_text()
    assert text.startswith("# Course\n\nMy own intro.\n\n<!-- contents:start -->\n1. [00 · Set up]")
    assert text.endswith("<!-- contents:end -->\n\nFooter.\n")
    assert "old" not in text
    nbtools.write_contents(tmp_path)
    assert readme.read_text() == text


# -------------------------------------------------------------------------------------- normalize


def papermill_like(path: Path) -> Path:
    """A notebook as papermill leaves it: run metadata everywhere, an injected cell, odd counts."""
    nb = nbformat.read(make_notebook(path, "03 · Run"), as_version=4)
    injected = new_code_cell('# Parameters\nnum_steps = 5\n', execution_count=7)
    injected.metadata.tags = ["injected-parameters"]
    nb.cells.insert(2, injected)
    error_marker = new_markdown_cell('<span style="color:red">An Exception was encountered</span>')
    error_marker.metadata.tags = ["papermill-error-cell-tag"]
    nb.cells.insert(0, error_marker)
    result = new_code_cell("num_steps * 2", execution_count=12)
    result.outputs = [new_output("execute_result", data={"text/plain": "10"}, execution_count=12)]
    nb.cells.append(result)
    nb.cells.append(new_code_cell("   \n"))  # an empty cell
    nb.metadata.papermill = {"duration": 1.5, "parameters": {"num_steps": 5}, "input_path": "/tmp/x"}
    nb.metadata.widgets = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    for index, cell in enumerate(nb.cells):
        cell.metadata.papermill = {"status": "completed", "duration": 0.1 * index}
        cell.metadata.execution = {"iopub.status.busy": "2024-11-25T12:00:00Z"}
        if cell.cell_type == "code" and cell.execution_count is None and cell.source.strip():
            cell.execution_count = 3 + index
    # Unsorted keys and another indent, as other tools write.
    path.write_text(json.dumps(nb, indent=2))
    return path


def test_normalize_strips_papermill_state_and_renumbers(tmp_path):
    path = papermill_like(tmp_path / "03_run.ipynb")
    ids_before = {c["id"] for c in json.loads(path.read_text())["cells"]}
    assert nbtools.normalize(path) is True
    text = path.read_text()
    assert "papermill" not in text and "iopub" not in text and "widget-state" not in text
    nb = nbformat.read(path, as_version=4)
    assert [c.source.splitlines()[0] for c in nb.cells] == [
        "# 03 · Run", "num_steps = 3  # steps", "print(num_steps)", "num_steps * 2"]
    assert [c.execution_count for c in nb.cells if c.cell_type == "code"] == [1, 2, 3]
    assert nb.cells[-1].outputs[0].execution_count == 3
    assert nb.metadata.kernelspec == KERNELSPEC and nb.metadata.language_info == LANGUAGE_INFO
    assert {c.id for c in nb.cells} <= ids_before  # existing ids kept
    assert text == nbformat.writes(nb) + "\n"  # nbformat's layout: sorted keys, indent 1
    assert '\n "cells": [\n  {\n' in text


def test_normalize_is_idempotent(tmp_path):
    path = papermill_like(tmp_path / "03_run.ipynb")
    nbtools.normalize(path)
    once = path.read_bytes()
    assert nbtools.normalize(path) is False
    assert path.read_bytes() == once


def test_cells_without_ids_get_stable_ones(tmp_path):
    path = tmp_path / "04_old.ipynb"
    old = json.loads(nbformat.writes(nbformat.read(make_notebook(path, "04 · Old"), as_version=4)))
    old["nbformat_minor"] = 4
    for cell in old["cells"]:
        del cell["id"]
    path.write_text(json.dumps(old))
    copy = tmp_path / "04_copy.ipynb"
    copy.write_text(path.read_text())
    nbtools.normalize(path)
    nbtools.normalize(copy)
    assert path.read_text() == copy.read_text()  # same content → same ids
    nb = nbformat.read(path, as_version=4)
    assert nb.nbformat_minor == 5 and all(c.id for c in nb.cells)
    nbformat.validate(nb)


def test_normalize_drops_widget_views_and_keeps_static_images(tmp_path):
    path = make_notebook(tmp_path / "05_bars.ipynb", "05 · Bars")
    nb = nbformat.read(path, as_version=4)
    view = {"model_id": "eb5a5fd43e744f27a31c9cb58382741c", "version_major": 2, "version_minor": 0}
    nb.cells[2].outputs = [
        new_output("display_data", data={notebooks.WIDGET_VIEW: view, "text/plain": "NST:   0%|  | 0/40"}),
        new_output("display_data", data={notebooks.WIDGET_VIEW: view, "image/png": "iVBORw0KGgo=",
                                         "text/plain": "<Figure size 640x480 with 1 Axes>"}),
        new_output("stream", name="stdout", text="3\n"),
    ]
    nb.metadata.widgets = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    nbformat.write(nb, path)
    assert nbtools.normalize(path) is True
    nb = nbformat.read(path, as_version=4)
    assert "widgets" not in nb.metadata
    outputs = nb.cells[2].outputs
    assert [output.output_type for output in outputs] == ["display_data", "stream"]
    assert set(outputs[0].data) == {"image/png", "text/plain"}


# ------------------------------------------------------------------------------------------ check


def test_check_passes_a_clean_notebook(tmp_path):
    path = make_notebook(tmp_path / "01_ok.ipynb", "01 · OK")
    nbtools.normalize(path)
    assert nbtools.check(path) == []


def test_check_lists_every_problem(tmp_path):
    path = tmp_path / "02_bad.ipynb"
    failing = new_code_cell("1 / 0", execution_count=1)
    failing.outputs = [new_output("error", ename="ZeroDivisionError", evalue="division by zero", traceback=[])]
    nb = new_notebook(cells=[new_code_cell("x = 1"), new_markdown_cell(""), failing])
    nbformat.write(nb, path)
    problems = "\n".join(nbtools.check(path))
    assert "no kernelspec" in problems
    assert "no code cell tagged 'parameters'" in problems
    assert "cell 1 is empty" in problems
    assert "cell 2 stores an error output (ZeroDivisionError: division by zero)" in problems
    assert "first cell is not the title cell" in problems


def test_check_flags_missing_outputs_large_files_and_unnormalised_json(tmp_path):
    fresh = make_notebook(tmp_path / "01_fresh.ipynb", "01 · Fresh", executed=False)
    assert any("no outputs" in p for p in nbtools.check(fresh))
    big = make_notebook(tmp_path / "02_big.ipynb", "02 · Big")
    nb = nbformat.read(big, as_version=4)
    nb.cells[2].outputs.append(new_output("display_data", data={"image/png": "A" * (2 * 2**20 + 10)}))
    nbformat.write(nb, big)
    assert any("over 2 MB" in p for p in nbtools.check(big))
    messy = papermill_like(tmp_path / "03_run.ipynb")
    assert any("injected-parameters" in p for p in nbtools.check(messy))
    clean = make_notebook(tmp_path / "04_counts.ipynb", "04 · Counts")
    nb = nbformat.read(clean, as_version=4)
    nb.cells[1].execution_count = 9
    nbformat.write(nb, clean)
    assert nbtools.check(clean) == [
        f"not normalised — run `python tools/notebooks.py normalize {clean}`"]


def test_cli(course, capsys):
    assert nbtools.main(["nav", *map(str, course)]) == 0
    assert nbtools.main(["normalize", *map(str, course)]) == 0
    assert nbtools.main(["contents", str(course[0].parent)]) == 0
    capsys.readouterr()
    assert nbtools.main(["check", *map(str, course)]) == 0
    assert capsys.readouterr().out == ""
    nb = nbformat.read(course[0], as_version=4)
    nb.metadata.pop("kernelspec")
    nbformat.write(nb, course[0])
    assert nbtools.main(["check", *map(str, course)]) == 1
    assert "00_setup.ipynb: no kernelspec" in capsys.readouterr().out


# ---------------------------------------------------------------------------------- sanitize file


def sanitize(text: str) -> str:
    """Apply the sanitize file exactly as nbval does."""
    from nbval.plugin import get_sanitize_patterns

    for regex, replace in get_sanitize_patterns(SANITIZE_CFG.read_text()):
        text = re.sub(regex, replace, text)
    return text


def test_sanitize_file_parses_as_nbval_reads_it():
    from nbval.plugin import get_sanitize_patterns

    text = SANITIZE_CFG.read_text()
    pairs = get_sanitize_patterns(text)
    assert len(pairs) == text.count("\nregex: ") >= 12  # every regex has its replace line
    for regex, _ in pairs:
        re.compile(regex)


@pytest.mark.parametrize("raw, expected", [
    ("<Figure at 0x7f3a2c1d4e50>", "<Figure at 0xADDRESS>"),
    ("<function f at 0x7F3A2C1D4E50>\n", "<function f at 0xADDRESS>\n"),
    ("style: 1.23 s\n", "style: TIME\n"),
    ("done in 12.3s, 850 ms per step", "done in TIME, TIME per step"),
    ("CPU times: user 1.2 s, sys: 10 ms, total: 1.21 s\nWall time: 3.45 s\n",
     "CPU times: user TIME, sys: TIME, total: TIME\nWall time: TIME\n"),
    ("ran 2.5 min (1.5e+02 seconds)", "ran TIME (TIME)"),
    ("100%|██████████| 10/10 [00:12<00:00,  1.23s/it]", "100%|██████████| 10/10 [ELAPSED]"),
    ("  0%|          | 0/10 [00:00<?, ?it/s]", "  0%|          | 0/10 [ELAPSED]"),
    ("50%|█████     | 5/10 [01:02:03<01:00:00, 12.34it/s, loss=1.2]", "50%|█████     | 5/10 [ELAPSED]"),
    ("speed 4.56 it/s; 123ms/step; 3.2 steps/s", "speed RATE; RATE; RATE"),
    ("elapsed 0:00:12", "elapsed HH:MM:SS"),
    ("saved to /work/main/results/out.png\n", "saved to PATH\n"),
    ("/tmp/pytest-of-root/x.png and /home/ana/nst/a.jpg and /root/.keras/models/v.h5",
     "PATH and PATH and PATH"),
    ("/work/main/.venv/lib/python3.11/site-packages/keras/src/x.py:12: UserWarning: hi",
     "PATH:12: UserWarning: hi"),
    ("'/Users/ana/nst/a.jpg'", "'PATH'"),
    (r"C:\Users\ana\nst\a.jpg", "PATH"),
    ("built 2024-11-25 on 2024-11-25T12:44:01.123456+00:00", "built DATE on DATE"),
    ("Mon Nov 25 12:44:01 2024", "DATE"),
    ("2024-11-25 12:44:01.123456: I tensorflow/core/util/port.cc:153] oneDNN custom operations are on. "
     "You may see slightly different numerical results.\nstep 1 | loss 1.234e+04\n",
     "step 1 | loss 1.234e+04\n"),
    ("2024-11-25 12:44:01.123456: W tensorflow/core/framework/x.cc:1] slow\n"
     "To enable the following instructions: AVX2 FMA, in other operations, rebuild TensorFlow.\nok\n",
     "ok\n"),
    ("WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
     "E0000 00:00:1732538641.123456   12345 cuda_dnn.cc:8310] Unable to register cuDNN factory\n"
     "W0000 00:00:1732538641.123456   12345 gpu_device.cc:2344] Cannot dlopen some GPU libraries.\n"
     "kept\n", "kept\n"),
    ("Could not find cuda drivers on your machine, GPU will not be used.\nkept", "kept"),
    ("TF-TRT Warning: Could not find TensorRT\n", ""),
    ("/job:localhost/replica:0/task:0/device:GPU:0", "DEVICE"),
])
def test_sanitize_replaces_what_varies(raw, expected):
    assert sanitize(raw) == expected


@pytest.mark.parametrize("text", [
    "step 300 | loss 1.234e+04\n",
    "image shape (1, 256, 256, 3), dtype float32\n",
    "10 steps, 3 samples, 2 sizes, 5 minimum, 4 styles\n",
    "Gram matrix of all-ones 2×2: [[4. 4.]\n [4. 4.]]\n",
    "content_weight 1e+04 style_weight 1e-02\n",
    "layer block5_conv2, mixed3; 0xff\n",
    "loss/step ratio 0.5; see https://www.tensorflow.org/tutorials/generative/style_transfer\n",
    "device: CPU (cuda available: False)\n",
    "x[0:10]\n",
    "<Figure size 640x480 with 1 Axes>",
    "../data/content/tuebingen.jpg\n",
])
def test_sanitize_keeps_what_a_lesson_checks(text):
    assert sanitize(text) == text


def test_normalized_joins_pieces_of_one_stream_and_drops_tf_start_up_lines():
    cell = new_code_cell("print('a', end=''); print('b')", execution_count=7, outputs=[
        new_output("stream", name="stdout", text="a"),
        new_output("stream", name="stdout", text="b\n"),
        new_output("stream", name="stderr", text="WARNING: All log messages before absl::InitializeLog() "
                                                   "is called are written to STDERR\nmine\n"),
        new_output("stream", name="stdout", text="c\n"),
    ])
    out = nbtools.normalized(new_notebook(cells=[cell])).cells[0].outputs
    assert [(o.name, o.text) for o in out] == [("stdout", "ab\n"), ("stderr", "mine\n"), ("stdout", "c\n")]


# ------------------------------------------------------------------ nbval-approx (tests/nbval_approx.py)


def test_approx_cells_take_every_number_but_not_words():
    import nbval_approx

    found: list[float] = []
    text = nbval_approx._take_numbers("step 10 | loss 1.2e+05 | 106,800 ours, ratio 3.5, conv2_2, mixed3", found)
    assert found == [10.0, 1.2e5, 106800.0, 3.5]
    assert text == "step ≈NUMBER | loss ≈NUMBER | ≈NUMBER ours, ratio ≈NUMBER, conv2_2, mixed3"


@pytest.mark.parametrize(("committed", "fresh", "same"), [
    ("loss 1.25e+05\n", "loss 1.3e+05\n", True),  # within the band
    ("loss 1.25e+05\n", "loss 1.6e+05\n", False),  # outside it
    ("β·L_style 546\n", "β·L_style 540\n", True),  # a loss printed as an integer
    ("step 10 | loss 2.0\n", "step 20 | loss 2.0\n", False),
    ("loss 2.0\n", "cost 2.0\n", False),  # the words exactly
])
def test_approx_cells_compare_numbers_within_the_band(committed, fresh, same):
    import nbval_approx
    from nbval.plugin import IPyNbCell

    class Cell:  # the attributes compare_outputs reads
        cell = new_code_cell(metadata={"tags": [nbval_approx.TAG]})
        parent = type("Parent", (), {"skip_compare": ("metadata", "traceback", "image/png")})()
        colors = type("Colors", (), {"FAIL": "", "ENDC": "", "OKBLUE": "", "OKGREEN": ""})()
        sanitize = staticmethod(lambda text: text)

        def format_output_compare(self, key, left, right):  # nbval's reports through pytest's hooks
            self.comparison_traceback.append(f"{key}: {left!r} != {right!r}")

    patched = type("Patched", (Cell,), {"compare_outputs": IPyNbCell.compare_outputs})
    nbval_approx._patch(patched)
    fresh_outputs = [new_output("stream", name="stdout", text=fresh)]
    committed_outputs = [new_output("stream", name="stdout", text=committed)]
    assert patched().compare_outputs(fresh_outputs, committed_outputs) is same
