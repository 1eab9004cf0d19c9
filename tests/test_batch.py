"""Tests for ``nstdream_utils.batch``: grids, validation, resume, Dask.

Fast tests use the grid machinery only, or a tiny notebook without TensorFlow (about 3 s of kernel
start-up per run). The slow tests run the real notebook 06 on the real weights at 64 px, 3 steps:
a 2×2 grid (4 runs on a LocalCluster of one worker), a rerun that executes nothing, and a simulated
crash resumed on two workers, which must rerun only the damaged runs and give the first runs' final
losses.
"""

from __future__ import annotations

import csv
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import numpy as np
import pytest
import yaml
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook
from PIL import Image

from nstdream_utils import batch, cli, images
from nstdream_utils.errors import InputError, MissingFileError

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK_06 = REPO / "notebooks" / "06_nst_to_deepdream.ipynb"
TINY = {"size": 64, "nst_steps": 3, "dream_size": 80, "dream_steps": 3, "seed": 0}


def write_grid(folder: Path, data: dict, name: str = "grid.yaml") -> Path:
    path = folder / name
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def grid_2x2() -> dict:
    """Two contents × two styles of notebook 06, tiny; paths relative to the repository."""
    return {"parameters": {"content": ["data/content/astronaut.png", "data/content/chelsea.png"],
                           "style": ["data/styles/triangle.png", "data/styles/spiral.png"], **TINY}}


def file_times(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in sorted(folder.rglob("*")) if p.is_file()}


# ------------------------------------------------------------------------------- a tiny notebook

TINY_NOTEBOOK_BODY = '''
import json, os, time
from pathlib import Path
from PIL import Image
while hold and Path(hold).exists():
    time.sleep(0.1)
if x == fail_on:
    raise ValueError(f"x is {x}")
Image.new("RGB", (8, 8), (10 * x, 0, 0)).save(Path(output_dir) / "out.png")
(Path(output_dir) / "metrics.json").write_text(json.dumps(
    {"status": "completed", "stage": {"final_loss": x / 2}, "parameters": {"x": x}}))
print("done", x)
'''


@pytest.fixture()
def tiny_notebook(tmp_path: Path) -> Path:
    """A notebook without TensorFlow: writes out.png and metrics.json, fails when x == fail_on."""
    params = new_code_cell('x = 1  # a number\nscale = 1.0  # a float\nfail_on = -1  # x that raises\n'
                           'hold = ""  # wait while this file exists\noutput_dir = "."  # where outputs go')
    params.metadata.tags = ["parameters"]
    nb = new_notebook(cells=[new_markdown_cell("# tiny"), params, new_code_cell(TINY_NOTEBOOK_BODY)],
                      metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                               "language": "python"}})
    path = tmp_path / "nb" / "tiny.ipynb"
    path.parent.mkdir()
    nbformat.write(nb, path)
    return path


# ------------------------------------------------------------------------------- grids (fast)


def test_expand_grid_is_a_cartesian_product_last_key_fastest():
    runs = batch.expand_grid({"parameters": {"style": ["a", "b"], "size": [64, 96], "seed": 0}})
    assert runs == [{"style": "a", "size": 64, "seed": 0}, {"style": "a", "size": 96, "seed": 0},
                    {"style": "b", "size": 64, "seed": 0}, {"style": "b", "size": 96, "seed": 0}]


def test_expand_grid_explicit_runs_are_the_innermost_axis_and_keep_lists():
    runs = batch.expand_grid({"parameters": {"style": ["a", "b"], "seed": 0},
                              "runs": [{"size": 64}, {"size": 96, "layers": ["mixed3", "mixed5"]}]})
    assert [(r["style"], r["size"]) for r in runs] == [("a", 64), ("a", 96), ("b", 64), ("b", 96)]
    assert runs[1]["layers"] == ["mixed3", "mixed5"] and runs[0]["seed"] == 0
    assert batch.expand_grid({"runs": [{"x": 1}, {"x": 2}]}) == [{"x": 1}, {"x": 2}]
    assert batch.expand_grid({"parameters": {"layers": [["mixed3", "mixed5"]]}}) == [{"layers": ["mixed3", "mixed5"]}]


@pytest.mark.parametrize("data, words", [
    ({"parameters": {"style": []}}, ["'style'", "empty list"]),
    ({"paramters": {"size": 64}}, ["unknown top-level key", "did you mean 'parameters'"]),
    ({"parameters": [1, 2]}, ["must be a mapping"]),
    ({"runs": [1]}, ["list of mappings"]),
    ({}, ["no runs"]),
])
def test_a_malformed_grid_is_an_input_error(data, words):
    with pytest.raises(InputError) as info:
        batch.expand_grid(data)
    assert all(word in str(info.value) for word in words), str(info.value)


def test_example_grid_is_2x2_and_run_ids_are_readable_and_stable():
    runs = batch.validate(REPO / "examples" / "grid_small.yaml")
    assert [run.run_id.rsplit("-", 1)[0] for run in runs] == [
        "000-astronaut-triangle", "001-astronaut-spiral", "002-chelsea-triangle", "003-chelsea-spiral"]
    assert [run.run_id for run in runs] == [run.run_id for run in batch.validate(REPO / "examples" / "grid_small.yaml")]
    assert all(len(run.run_id.rsplit("-", 1)[1]) == 8 for run in runs)
    assert len({run.run_id.rsplit("-", 1)[1] for run in runs}) == 4
    first = runs[0]
    assert first.varying == ("content", "style") and first.label() == "content=astronaut style=triangle"
    assert Path(first.values["content"]).is_absolute() and Path(first.values["content"]).is_file()
    assert first.values["progress"] is False and "output_dir" not in first.values


def test_an_int_is_accepted_for_a_float_and_passed_as_a_float(tmp_path, tiny_notebook):
    grid = write_grid(tmp_path, {"notebook": str(tiny_notebook), "parameters": {"scale": 2, "x": 3}})
    (run,) = batch.validate(grid)
    assert run.values["scale"] == 2.0 and isinstance(run.values["scale"], float)
    assert isinstance(run.values["x"], int)
    with pytest.raises(InputError, match=r"'x' must be an int .* got a float 3.5"):
        batch.validate({"notebook": str(tiny_notebook), "parameters": {"x": 3.5}})
    with pytest.raises(InputError, match="write 1.0e-3"):
        batch.validate({"notebook": str(tiny_notebook), "parameters": {"scale": "1e-3"}})


@pytest.mark.parametrize("parameters, words", [
    ({"style": ["data/styles/triangle.png", "data/styles/spiral.png"], "sise": 64},
     ["run 0", "style='data/styles/triangle.png'", "unknown parameter 'sise'", "did you mean 'size'"]),
    ({"style": ["data/styles/triangle.png", "data/styles/spiral.png"], "size": ["64", 96]},
     ["run 0", "'size'", "must be an int", "got a string '64'"]),
    ({"style": ["data/styles/triangle.png", "data/styles/no_such_style.png"]},
     ["run 1", "style='data/styles/no_such_style.png'", "'style'", "no such file"]),
    ({"content": "data/styles", "size": 64}, ["run 0", "'content'", "no such file"]),
    ({"size": [64, 96], "preset": "quik"}, ["run 0", "size=64", "'preset'", "did you mean 'quick'"]),
    ({"size": [64, 96], "progress": "yes"}, ["run 0", "'progress'", "must be a bool"]),
    ({"size": 64, "output_dir": "x"}, ["run 0", "'output_dir'", "set by the batch"]),
])
def test_a_bad_grid_exits_2_before_any_compute_naming_key_and_run(tmp_path, capsys, monkeypatch, parameters, words):
    def no_compute(*args, **kwargs):
        raise AssertionError("a run started before the grid was checked")

    monkeypatch.setattr(batch, "_connect", no_compute)
    grid = write_grid(tmp_path, {"parameters": parameters})
    out = tmp_path / "out"
    assert cli.main(["batch", str(grid), "--out", str(out)]) == 2
    message = capsys.readouterr().err.strip()
    assert message.count("\n") == 0, message
    assert str(grid) in message and all(word in message for word in words), message
    assert not out.exists()


def test_missing_grid_file_and_bad_yaml_exit_2(tmp_path, capsys):
    assert cli.main(["batch", str(tmp_path / "nope.yaml"), "--out", str(tmp_path / "out")]) == 2
    assert "no such grid file" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text("parameters:\n  size: [64\n", encoding="utf-8")
    assert cli.main(["batch", str(bad), "--out", str(tmp_path / "out")]) == 2
    assert "not valid YAML at line" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_a_notebook_without_output_dir_is_rejected(tmp_path, tiny_notebook):
    nb = nbformat.read(tiny_notebook, as_version=4)
    nb.cells[1].source = "x = 1"
    nbformat.write(nb, tiny_notebook)
    with pytest.raises(InputError, match="no parameter 'output_dir'"):
        batch.validate({"notebook": str(tiny_notebook), "parameters": {"x": 2}})
    with pytest.raises(MissingFileError, match=r"no such file .*missing\.ipynb"):
        batch.validate({"notebook": str(tmp_path / "missing.ipynb"), "parameters": {"x": 2}})


def test_dry_run_lists_the_runs_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "out"
    assert cli.main(["batch", str(REPO / "examples" / "grid_small.yaml"), "--out", str(out), "--dry-run"]) == 0
    printed = capsys.readouterr().out
    assert printed.count("\nrun ") + printed.startswith("run ") == 4
    assert "000-astronaut-triangle-" in printed and "4 to run, 0 complete" in printed
    assert not out.exists()


def test_gpus_come_from_cuda_visible_devices(monkeypatch, tmp_path):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0, 2")
    assert batch.gpu_ids() == ["0", "2"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")
    assert batch.gpu_ids() == []
    monkeypatch.setattr(signal, "signal", lambda *args: None)  # what a local worker does to Ctrl-C
    batch._local_worker("1")
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "1"
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    monkeypatch.setenv("PATH", "")  # no nvidia-smi: no GPUs
    assert batch.gpu_ids() == []
    smi = tmp_path / "nvidia-smi"  # its `-L` format: one "GPU n: name (UUID: …)" line per GPU
    smi.write_text("#!/bin/sh\necho 'GPU 0: NVIDIA H100 (UUID: GPU-a)'\necho 'GPU 1: NVIDIA H100 (UUID: GPU-b)'\n")
    smi.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert batch.gpu_ids() == ["0", "1"]


def test_a_bad_scheduler_address_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="--scheduler not an address: cannot reach the Dask scheduler"):
        batch.run_batch({"parameters": {"size": 64}}, tmp_path / "out", scheduler="not an address")
    assert not (tmp_path / "out").exists()


def test_a_grid_can_sweep_the_style_and_dream_controls(tmp_path):
    """Notebook 06's controls: strings and floats as given, optional images found and made absolute."""
    half = np.zeros((30, 40, 3), np.float32)
    half[:, 20:] = 1.0
    images.save_image(half, tmp_path / "mask.png")
    grid = {"parameters": {"content": "data/content/chelsea.png", "style": "data/styles/spiral.png",
                           "preserve_color": ["", "luminance", "histogram"], "style_scale": [0.5, 2],
                           "style2": "data/styles/checkerboard.png", "style_weights": "0.7,0.3",
                           "mask": str(tmp_path / "mask.png"), "guide": "data/styles/triangle.png", **TINY}}
    runs = batch.validate(grid)
    assert [(r.values["preserve_color"], r.values["style_scale"]) for r in runs] == [
        ("", 0.5), ("", 2.0), ("luminance", 0.5), ("luminance", 2.0), ("histogram", 0.5), ("histogram", 2.0)]
    assert isinstance(runs[1].values["style_scale"], float) and runs[0].values["style_weights"] == "0.7,0.3"
    for run in runs:
        for key in ("style2", "mask", "guide"):
            assert Path(run.values[key]).is_absolute() and Path(run.values[key]).is_file(), key
        assert {"style2", "mask", "guide"} <= set(run.files) and "preserve_color" not in run.files
    assert runs[3].label() == "preserve_color=luminance style_scale=2"
    assert len(batch.validate(REPO / "examples" / "grid_controls.yaml")) == 6
    (tmp_path / "text.png").write_text("not an image")
    for key, value, words in [("mask", "data/no_such_mask.png", "parameter 'mask'.*no such file"),
                              ("guide", str(tmp_path / "text.png"), "parameter 'guide'"),
                              ("style_weights", [0.7, 0.3], "'style_weights' must be a string")]:
        with pytest.raises(InputError, match=words):
            batch.validate({"parameters": {**grid["parameters"], key: value}})


# ------------------------------------------------------------------------------- the tiny notebook


@pytest.mark.slow
def test_a_failing_run_is_recorded_retried_and_the_batch_goes_on(tmp_path, tiny_notebook, capsys):
    grid = write_grid(tmp_path, {"notebook": str(tiny_notebook), "outputs": ["out.png"],
                                 "parameters": {"x": [1, 2], "fail_on": 2}})
    out = tmp_path / "out"
    assert cli.main(["batch", str(grid), "--out", str(out), "--retries", "1"]) == 1
    err = capsys.readouterr().err
    manifest = json.loads((out / "manifest.json").read_text())
    ok, bad = manifest["runs"]
    assert ok["status"] == "completed" and ok["attempts"] == 1 and ok["final_losses"] == {"stage": 0.5}
    assert bad["status"] == "failed" and bad["attempts"] == 2
    assert bad["error"]["ename"] == "ValueError" and bad["error"]["evalue"] == "x is 2"
    assert bad["error"]["cell_index"] == 2 and bad["error"]["cell"] == "import json, os, time"
    assert f"failed {bad['run_id']} after 2 attempt(s): cell 2" in err and "ValueError: x is 2" in err
    # the failed attempt's notebook is kept for reading; the run is not complete, so it runs again
    assert (out / bad["folder"] / "tiny.ipynb").is_file()
    problem, losses = batch.check_outputs(out / bad["folder"], notebook_name="tiny.ipynb", outputs=["out.png"])
    assert problem.startswith("FileNotFoundError") and "metrics.json" in problem and losses == {}
    rows = list(csv.DictReader((out / "summary.csv").open()))
    assert [r["status"] for r in rows] == ["completed", "failed"] and rows[1]["error"] == "ValueError: x is 2"
    result = batch.run_batch(grid, out, progress=False)
    assert result.executed == [] and result.skipped == [ok["run_id"]] and result.failed == [bad["run_id"]]
    assert json.loads((out / "manifest.json").read_text())["runs"][1]["attempts"] == 3


@pytest.mark.slow
def test_sigkill_leaves_no_half_written_run_and_the_next_batch_finishes_it(tmp_path, tiny_notebook):
    hold = tmp_path / "hold"
    hold.touch()
    grid = write_grid(tmp_path, {"notebook": str(tiny_notebook), "outputs": ["out.png"],
                                 "parameters": {"x": 3, "hold": str(hold)}})
    out = tmp_path / "out"
    process = subprocess.Popen([sys.executable, "-m", "nstdream_utils.cli", "batch", str(grid), "--out", str(out)],
                               start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not list((out / "runs").glob(".*.tmp-*/tiny.ipynb")):  # the kernel is running the notebook
            assert time.monotonic() < deadline and process.poll() is None, "the run never started"
            time.sleep(0.2)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    (run,) = batch.validate(grid)
    assert not (out / "runs" / run.run_id).exists()  # nothing at the final name
    assert len(list((out / "runs").glob(f".{run.run_id}.tmp-*"))) == 1
    hold.unlink()
    time.sleep(1.5)  # the orphaned kernel notices its parent is gone and exits
    result = batch.run_batch(grid, out, progress=False)
    assert result.executed == [run.run_id]
    assert not list((out / "runs").glob(".*"))  # the stale temporary folder is gone
    assert batch.check_outputs(out / "runs" / run.run_id, notebook_name="tiny.ipynb", outputs=["out.png"]) == (
        None, {"stage": 1.5})


# ------------------------------------------------------------------------------- notebook 06 (slow)


@pytest.fixture(scope="module")
def local_2x2(tmp_path_factory, weights_dir):
    """The 2×2 grid of notebook 06, run once through the CLI (a LocalCluster of one worker)."""
    folder = tmp_path_factory.mktemp("batch")
    grid = write_grid(folder, grid_2x2())
    out = folder / "out"
    start = time.perf_counter()
    code = cli.main(["batch", str(grid), "--out", str(out)])
    yield {"grid": grid, "out": out, "code": code, "seconds": time.perf_counter() - start}


@pytest.mark.slow
def test_a_2x2_grid_runs_and_writes_the_reports(local_2x2):
    out = local_2x2["out"]
    assert local_2x2["code"] == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert [r["status"] for r in manifest["runs"]] == ["completed"] * 4
    assert manifest["workers"] == 1 and all(r["attempts"] == 1 for r in manifest["runs"])
    rows = list(csv.DictReader((out / "summary.csv").open()))
    assert len(rows) == 4 and [r["run_id"] for r in rows] == [r["run_id"] for r in manifest["runs"]]
    for row, record in zip(rows, manifest["runs"]):
        folder = out / record["folder"]
        assert folder.name == row["run_id"] and float(row["seconds"]) > 0
        for name in ("06_nst_to_deepdream.ipynb", "stylized.png", "dreamed.png", "metrics.json"):
            assert (folder / name).is_file(), name
        metrics = json.loads((folder / "metrics.json").read_text())
        assert math.isclose(float(row["nst_final_loss"]), metrics["nst"]["final_loss"])
        assert math.isclose(float(row["dream_final_loss"]), metrics["dream"]["final_loss"])
        assert metrics["status"] == "completed" and len(metrics["nst"]["loss"]) == 3
        assert Image.open(folder / "dreamed.png").size == (80, 80)
        executed = nbformat.read(folder / "06_nst_to_deepdream.ipynb", as_version=4)
        injected = [c for c in executed.cells if "injected-parameters" in c.metadata.get("tags", [])]
        assert "progress = False" in injected[0].source and "size = 64" in injected[0].source
    with Image.open(out / "contact_sheet.png") as sheet:
        assert sheet.format == "PNG" and sheet.width > 300
    assert not list((out / "runs").glob(".*"))  # no temporary folder left


@pytest.mark.slow
def test_a_rerun_executes_nothing(local_2x2, monkeypatch):
    out = local_2x2["out"]
    before = file_times(out / "runs")

    def no_compute(*args, **kwargs):
        raise AssertionError("a complete grid started a Dask cluster")

    monkeypatch.setattr(batch, "_connect", no_compute)
    result = batch.run_batch(local_2x2["grid"], out, progress=False)
    assert result.executed == [] and len(result.skipped) == 4 and result.ok
    assert file_times(out / "runs") == before


@pytest.mark.slow
def test_after_a_crash_only_damaged_runs_rerun_with_the_same_losses(local_2x2, tmp_path):
    """Delete one run folder, truncate another's metrics, leave a stale temporary folder; resume on
    a LocalCluster of 2 workers × 1 thread: only the two damaged runs run, with the first losses."""
    out = local_2x2["out"]
    manifest = json.loads((out / "manifest.json").read_text())
    local = {r["run_id"]: r["final_losses"] for r in manifest["runs"]}
    deleted, truncated, *intact = [out / r["folder"] for r in manifest["runs"]]
    intact_times = {folder.name: file_times(folder) for folder in intact}
    import shutil

    shutil.rmtree(deleted)
    metrics = truncated / "metrics.json"
    metrics.write_bytes(metrics.read_bytes()[:40])
    stale = out / "runs" / f".{intact[0].name}.tmp-999999999"
    stale.mkdir()
    (stale / "dreamed.png").write_bytes(b"\x89PNG half")

    result = batch.run_batch(local_2x2["grid"], out, workers=2, progress=False)
    assert sorted(result.executed) == sorted([deleted.name, truncated.name])
    assert sorted(result.skipped) == sorted(folder.name for folder in intact) and result.ok
    assert result.workers == 2
    assert not stale.exists()
    assert {folder.name: file_times(folder) for folder in intact} == intact_times
    again = json.loads((out / "manifest.json").read_text())
    for record in again["runs"]:
        for stage, value in local[record["run_id"]].items():
            assert math.isclose(record["final_losses"][stage], value, rel_tol=1e-4), (record["run_id"], stage)
    assert [r["attempts"] for r in again["runs"]] == [2, 2, 1, 1]


@pytest.mark.slow
def test_scheduler_address_runs_on_that_dask_cluster(tmp_path, tiny_notebook):
    from distributed import LocalCluster

    grid = write_grid(tmp_path, {"notebook": str(tiny_notebook), "outputs": ["out.png"], "parameters": {"x": [4, 5]}})
    out = tmp_path / "out"
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        assert cli.main(["batch", str(grid), "--out", str(out), "--scheduler", cluster.scheduler_address]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["workers"] == 1
    assert [r["final_losses"] for r in manifest["runs"]] == [{"stage": 2.0}, {"stage": 2.5}]


@pytest.mark.slow
def test_a_batch_run_with_preserve_color_keeps_the_photos_colours(tmp_path, weights_dir):
    grid = {"parameters": {"content": "data/content/astronaut.png", "style": "data/styles/spiral.png",
                           "preserve_color": "luminance", **TINY}}
    result = batch.run_batch(grid, tmp_path / "out", progress=False)
    assert result.ok and len(result.executed) == 1, result.records
    folder = tmp_path / "out" / "runs" / result.executed[0]
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["status"] == "completed" and metrics["parameters"]["preserve_color"] == "luminance"
    stylized = images.load_image(folder / "stylized.png")
    content = images.resize(images.load_image(REPO / "data" / "content" / "astronaut.png"), exact=stylized.shape[:2])
    chroma = np.abs(images.rgb_to_ycbcr(stylized)[..., 1:] - images.rgb_to_ycbcr(content)[..., 1:]).mean()
    assert chroma < 0.01, f"the stylised image's chroma is {chroma:.3f} from the photo's"


def test_notebook_relative_paths_in_a_grid_work_from_any_working_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runs = batch.validate({"parameters": {"content": "../data/content/chelsea.png", **TINY}})
    assert Path(runs[0].values["content"]) == REPO / "data" / "content" / "chelsea.png"
