"""The ``nstdream`` command: options, one-line errors, metrics files, exit codes.

Runs ``cli.main([...])`` in this process; real networks only at 48 px for 2 steps. The signal,
crash and import-time checks, which need a real process, are in ``test_robustness.py``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nstdream_utils import cli
from nstdream_utils.errors import MissingFileError

REPO = Path(__file__).resolve().parents[1]
CONTENT = REPO / "data" / "content" / "chelsea.png"  # 451 × 300
STYLE = REPO / "data" / "styles" / "spiral.png"
COMMANDS = ("style", "dream", "pipeline", "weights", "info", "data", "batch")


def run_cli(argv, capsys) -> tuple[int, str, str]:
    capsys.readouterr()
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and " — " in lines[0], err
    assert "Traceback" not in err and "usage:" not in err
    return lines[0]


# ----------------------------------------------------------------------------- parsing
@pytest.mark.parametrize("argv, line", [
    ([], "error: nstdream: the following arguments are required: command — see `nstdream --help`"),
    (["paint"], "error: nstdream: unknown choice 'paint' — choose one of " + ", ".join(COMMANDS)),
    (["style"], "error: nstdream style: the following arguments are required: content, style, -o/--output — see "
                "`nstdream style --help`"),
    (["dream", "a.png"], "error: nstdream dream: the following arguments are required: -o/--output — see "
                         "`nstdream dream --help`"),
    (["style", "a", "b", "-o"], "error: -o/--output: expected one argument — see `nstdream style --help`"),
    (["style", "a", "b", "-o", "x.png", "--steps", "0"],
     "error: --steps: must be > 0, got 0 — see `nstdream style --help`"),
    (["style", "a", "b", "-o", "x.png", "--size", "-5"],
     "error: --size: must be > 0, got -5 — see `nstdream style --help`"),
    (["style", "a", "b", "-o", "x.png", "--optimizer", "rmsprop"],
     "error: --optimizer: unknown choice 'rmsprop' — choose one of sgd, adam, lbfgs, lbfgs-tf"),
    (["style", "a", "b", "-o", "x.png", "--precision", "half"],
     "error: --precision: unknown choice 'half' — choose one of float32, bfloat16, float16"),
    (["dream", "a", "-o", "x.png", "--optimizer", "adam"],
     "error: nstdream dream: unrecognized arguments: --optimizer adam — see `nstdream dream --help`"),
    (["style", "a", "b", "c", "-o", "x.png"],
     "error: nstdream style: unrecognized arguments: c — see `nstdream style --help`"),
    (["weights", "download"], "error: action: unknown choice 'download' — choose one of check, fetch"),
    (["style", "a", "b", "-o", "x.png", "--levels", "0"],
     "error: --levels: must be > 0, got 0 — see `nstdream style --help`"),
    (["pipeline", "a", "b", "-o", "x.png", "--level-steps", "50,x"],
     "error: --level-steps: expected a whole number, got 'x' — see `nstdream pipeline --help`"),
])
def test_argparse_errors_are_one_line_with_a_fix(argv, line, capsys):
    code, out, err = run_cli(argv, capsys)
    assert (code, out) == (2, "")
    assert one_line(err) == line


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_help_exits_0(command, capsys):
    code, out, _ = run_cli([command, "--help"] if command else ["--help"], capsys)
    assert code == 0 and out.startswith("usage: nstdream")


def test_debug_shows_the_traceback_before_or_after_the_command(tmp_path):
    for argv in (["--debug", "style", "no.png", STYLE, "-o", tmp_path / "o.png"],
                 ["style", "no.png", STYLE, "-o", tmp_path / "o.png", "--debug"]):
        with pytest.raises(MissingFileError, match="no.png: no such file"):
            cli.main([str(a) for a in argv])


def test_stylized_must_not_be_the_output(tmp_path, capsys):
    out = tmp_path / "o.png"
    code, _, err = run_cli(["pipeline", CONTENT, STYLE, "-o", out, "--stylized", out], capsys)
    assert code == 2 and "same file as -o/--output" in one_line(err)


def configs(argv):
    args, _ = cli.build_parser().parse_known_args([str(a) for a in argv])
    preset = cli._configs(args)
    return preset.nst, preset.dream


def test_size_is_the_longest_side_and_square_is_opt_in():
    nst_cfg, dream_cfg = configs(["style", "c", "s", "-o", "o.png"])
    assert (nst_cfg.size, nst_cfg.square) == (128, True)  # the quick preset as it is
    nst_cfg, _ = configs(["style", "c", "s", "-o", "o.png", "--size", "64"])
    assert (nst_cfg.size, nst_cfg.square) == (64, False)
    nst_cfg, _ = configs(["style", "c", "s", "-o", "o.png", "--size", "64", "--square"])
    assert (nst_cfg.size, nst_cfg.square) == (64, True)
    _, dream_cfg = configs(["dream", "i", "-o", "o.png", "--size", "90", "--lr", "0.02", "--layers", "mixed4",
                            "--tile-size", "0", "--steps", "3"])
    assert (dream_cfg.size, dream_cfg.square, dream_cfg.step_size, dream_cfg.layers, dream_cfg.tile_size,
            dream_cfg.num_steps) == (90, False, 0.02, ("mixed4",), 0, 3)


def test_pipeline_options_reach_the_right_stage():
    nst_cfg, dream_cfg = configs(["pipeline", "c", "s", "-o", "o.png", "--size", "64", "--steps", "7",
                                  "--lr", "5", "--optimizer", "adam", "--dream-lr", "0.03"])
    assert (nst_cfg.size, nst_cfg.square, nst_cfg.num_steps, nst_cfg.learning_rate, nst_cfg.optimizer) == \
        (64, False, 7, 5.0, "adam")
    assert (dream_cfg.size, dream_cfg.square, dream_cfg.num_steps, dream_cfg.step_size) == (160, True, 7, 0.03)
    nst_cfg, dream_cfg = configs(["pipeline", "c", "s", "-o", "o.png", "--nst-steps", "3", "--dream-steps", "4",
                                  "--dream-size", "100", "--steps", "9"])
    assert (nst_cfg.num_steps, dream_cfg.num_steps, dream_cfg.size, dream_cfg.square) == (3, 4, 100, False)


def test_levels_choose_lbfgs_unless_an_optimizer_is_given():
    assert configs(["style", "c", "s", "-o", "o.png", "--levels", "3"])[0].optimizer == "lbfgs"
    assert configs(["style", "c", "s", "-o", "o.png", "--levels", "3", "--optimizer", "adam"])[0].optimizer == "adam"
    assert configs(["style", "c", "s", "-o", "o.png"])[0].optimizer == "lbfgs"  # the quick preset's


@pytest.mark.parametrize("options, line", [
    (["--level-steps", "10,10"], "error: steps_per_level: steps_per_level needs levels ≥ 2 — use it with two or more "
                                 "levels"),
    (["--levels", "3", "--level-steps", "10,10"], "error: steps_per_level: steps_per_level must be 3 whole numbers ≥ "
                                                  "1, one per level, got (10, 10) — give one count per level, "
                                                  "coarsest first, e.g. 200,100,100"),
    (["--levels", "2", "--steps", "5"], "error: --steps: counts the NST steps of a one-level run; with --levels 2 "
                                        "each level has its own count — give the steps of each level, coarsest "
                                        "first, with --level-steps"),
])
def test_level_options_fail_before_tensorflow_with_one_line(options, line, tmp_path, capsys):
    code, out, err = run_cli(["style", CONTENT, STYLE, "-o", tmp_path / "o.png", *options], capsys)
    assert (code, out) == (2, "")
    assert one_line(err) == line
    assert not (tmp_path / "o.png").exists()


def test_too_many_levels_for_the_size_fail_in_one_line(tmp_path, capsys, weights_dir):
    code, out, err = run_cli(["style", CONTENT, STYLE, "-o", tmp_path / "o.png", "--levels", "3", "--size", "48"],
                             capsys)
    assert (code, out) == (2, "")
    assert one_line(err) == ("error: levels: the coarsest level would be 8×12 px with levels=3, below 16 px — use "
                             "fewer levels or a larger size (the coarsest side must be at least 16 px)")
    assert not (tmp_path / "o.png").exists()


def test_pipeline_levels_refuse_nst_steps(tmp_path, capsys):
    code, _, err = run_cli(["pipeline", CONTENT, STYLE, "-o", tmp_path / "o.png", "--levels", "2",
                            "--nst-steps", "5"], capsys)
    assert code == 2
    assert one_line(err).endswith("with --level-steps, and DeepDream's with --dream-steps")


# ----------------------------------------------------------------------------- runs
def test_style_writes_the_image_and_metrics(tmp_path, capsys, weights_dir):
    out, metrics = tmp_path / "out.png", tmp_path / "run.json"
    code, stdout, err = run_cli(["style", CONTENT, STYLE, "-o", out, "--metrics", metrics, "--size", "48",
                                 "--steps", "2", "--no-progress", "--log-every", "1"], capsys)
    assert code == 0, err
    assert [line.split("|")[0].split() for line in stdout.splitlines()] == [["step", "0"], ["step", "1"]]
    report = json.loads(metrics.read_text())
    assert report["size"] == [48, 32] and Image.open(out).size == (48, 32)
    assert len(report["loss"]) == report["steps"] == 2 and report["final_loss"] == report["loss"][-1]
    assert report["seconds"] > 0 and report["status"] == "completed" and report["preset"] == "quick"
    assert {"content", "style", "tv"} <= set(report)
    assert err.strip() == f"wrote {out}, {metrics}"


@pytest.mark.needs_weights
def test_style_png_equals_the_library_result_for_the_same_seed(tmp_path, capsys):
    from nstdream_utils import images, nst, presets

    out = tmp_path / "out.png"
    code, _, err = run_cli(["style", CONTENT, STYLE, "-o", out, "--size", "48", "--steps", "3", "--seed", "7",
                            "--no-progress"], capsys)
    assert code == 0, err
    config = presets.QUICK.nst.replace(size=48, num_steps=3, square=False)  # --size: the longest side
    result = nst.style_transfer(images.load_image(CONTENT), images.load_image(STYLE), config=config, seed=7,
                                progress=False)
    expected = np.round(np.clip(result.image, 0.0, 1.0) * 255.0).astype(np.int16)
    written = np.asarray(Image.open(out).convert("RGB"), np.int16)
    assert written.shape == expected.shape == (32, 48, 3)
    assert np.abs(written - expected).max() <= 1  # the same run, saved as 8-bit PNG (±1 for rounding)


def test_style_coarse_to_fine_writes_the_full_size_and_each_level(tmp_path, capsys, weights_dir):
    out, metrics = tmp_path / "out.png", tmp_path / "run.json"
    code, _, err = run_cli(["style", CONTENT, STYLE, "-o", out, "--metrics", metrics, "--size", "64",
                            "--levels", "2", "--level-steps", "3,2", "--no-progress"], capsys)
    assert code == 0, err
    report = json.loads(metrics.read_text())
    assert Image.open(out).size == (64, 43) and report["size"] == [64, 43]
    assert (report["levels"], report["steps_per_level"], report["status"]) == (2, [3, 2], "completed")
    assert report["level"] == [0.0] * 3 + [1.0] * 2 and len(report["loss"]) == 5
    assert report["loss"][2] < report["loss"][0] and report["loss"][4] < report["loss"][3]


@pytest.mark.slow
@pytest.mark.parametrize("command", [["style", CONTENT, STYLE], ["dream", CONTENT]], ids=["style", "dream"])
def test_bfloat16_run_is_close_to_float32(command, tmp_path, capsys, weights_dir):
    losses = {}
    for precision in ("float32", "bfloat16"):
        metrics = tmp_path / f"{precision}.json"
        code, _, err = run_cli([*command, "-o", tmp_path / f"{precision}.png", "--metrics", metrics,
                                "--size", "48", "--steps", "1", "--no-progress", "--precision", precision], capsys)
        assert code == 0, err
        report = json.loads(metrics.read_text())
        assert report["precision"] == precision
        losses[precision] = report["loss"][0]  # the loss of the input image
    assert losses["bfloat16"] != losses["float32"]
    assert abs(losses["bfloat16"] - losses["float32"]) < 0.05 * losses["float32"], losses


def test_emulated_precision_is_one_warning_line(tmp_path, capsys, weights_dir, monkeypatch):
    from nstdream_utils import device, models

    monkeypatch.setattr(models, "_WARNED", set())
    monkeypatch.setattr(device, "is_gpu", lambda: False)
    out = tmp_path / "out.png"
    for flags, warned in ((frozenset({"sse2", "avx2"}), True), (frozenset({"sse2", "avx512_bf16"}), False)):
        monkeypatch.setattr(device, "cpu_flags", lambda flags=flags: flags)
        code, _, err = run_cli(["style", CONTENT, STYLE, "-o", out, "--size", "48", "--steps", "1", "--no-progress",
                                "--precision", "bfloat16"], capsys)
        assert code == 0 and out.is_file(), err
        lines = [line for line in err.splitlines() if line.startswith("warning:")]
        expected = ["warning: --precision bfloat16: this CPU has no bfloat16 instructions (avx512_bf16 or "
                    f"amx_bf16), so TensorFlow emulates them: measured about {device.CPU_EMULATION_COST['bfloat16']:g}× "
                    "the CPU time of float32 per NST step on such a CPU — use float32 (the default) on this machine"]
        assert lines == (expected if warned else []), err
        monkeypatch.setattr(models, "_WARNED", set())


@pytest.mark.slow
def test_pipeline_precision_reaches_both_stages(tmp_path, capsys, weights_dir):
    reports = {}
    for precision in ("float32", "bfloat16"):
        metrics = tmp_path / f"{precision}.json"
        code, _, err = run_cli(["pipeline", CONTENT, STYLE, "-o", tmp_path / f"{precision}.png", "--metrics", metrics,
                                "--size", "48", "--dream-size", "48", "--steps", "1", "--no-progress",
                                "--precision", precision], capsys)
        assert code == 0, err
        reports[precision] = json.loads(metrics.read_text())
        assert reports[precision]["precision"] == precision
    for stage in ("nst", "dream"):  # first loss of each stage: (nearly) the same input, other arithmetic
        exact, fast = reports["float32"][stage]["loss"][0], reports["bfloat16"][stage]["loss"][0]
        assert fast != exact and abs(fast - exact) < 0.05 * abs(exact), (stage, fast, exact)


def test_dream_with_layers_and_octaves(tmp_path, capsys, weights_dir):
    out, metrics = tmp_path / "out.png", tmp_path / "run.json"
    code, _, err = run_cli(["dream", CONTENT, "-o", out, "--metrics", metrics, "--size", "48", "--steps", "2",
                            "--layers", "mixed3", "--octaves", "2", "--no-progress"], capsys)
    assert code == 0, err
    report = json.loads(metrics.read_text())
    assert len(report["loss"]) == 4 and report["final_loss"] == report["loss"][-1]  # 2 steps × 2 octaves
    assert report["size"] == [112, 75] and Image.open(out).size == (112, 75)  # 48×32, then Inception's 75 px


def test_pipeline_writes_both_images_and_both_stages_metrics(tmp_path, capsys, weights_dir):
    out, stylized, metrics = tmp_path / "out.png", tmp_path / "nst.png", tmp_path / "run.json"
    code, _, err = run_cli(["pipeline", CONTENT, STYLE, "-o", out, "--stylized", stylized, "--metrics", metrics,
                            "--size", "48", "--dream-size", "48", "--steps", "2", "--no-progress"], capsys)
    assert code == 0, err
    report = json.loads(metrics.read_text())
    assert report["status"] == "completed" and report["stylized"] == str(stylized)
    for stage, size in (("nst", [48, 32]), ("dream", [112, 75])):
        assert len(report[stage]["loss"]) == 2 and report[stage]["final_loss"] == report[stage]["loss"][-1]
        assert report[stage]["size"] == size and report[stage]["seconds"] > 0
    assert Image.open(stylized).size == (48, 32) and Image.open(out).size == (112, 75)
    assert report["size"] == [112, 75]


@pytest.mark.slow
def test_pipeline_coarse_to_fine_then_dream(tmp_path, capsys, weights_dir):
    out, metrics = tmp_path / "out.png", tmp_path / "run.json"
    code, _, err = run_cli(["pipeline", CONTENT, STYLE, "-o", out, "--metrics", metrics, "--size", "64",
                            "--levels", "2", "--level-steps", "2,2", "--dream-size", "80", "--dream-steps", "2",
                            "--no-progress"], capsys)
    assert code == 0, err
    report = json.loads(metrics.read_text())
    assert (report["nst"]["levels"], report["nst"]["steps_per_level"], report["nst"]["size"]) == (2, [2, 2], [64, 43])
    assert report["nst"]["level"] == [0.0, 0.0, 1.0, 1.0] and len(report["dream"]["loss"]) == 2
    assert Image.open(tmp_path / "out_stylized.png").size == (64, 43)


def test_unexpected_errors_are_one_line_and_exit_1(tmp_path, capsys, monkeypatch):
    def boom(path):
        raise RuntimeError("something broke")

    monkeypatch.setattr(cli.images, "load_image", boom)
    code, _, err = run_cli(["dream", CONTENT, "-o", tmp_path / "o.png"], capsys)
    assert code == 1
    assert one_line(err) == ("error: nstdream dream: unexpected RuntimeError: something broke — rerun with "
                             "--debug for the traceback and report it")


def test_a_failing_write_is_one_line_and_leaves_nothing(tmp_path, capsys, monkeypatch):
    from nstdream_utils import dream, files

    fake = dream.DreamResult(image=np.zeros((8, 8, 3), np.float32), history={"loss": [1.0], "seconds": [0.1]},
                             config=None)
    monkeypatch.setattr(dream, "deep_dream", lambda *a, **k: fake)
    monkeypatch.setattr(cli, "_check_weights", lambda names: None)

    def disk_full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(files.os, "fsync", disk_full)
    code, _, err = run_cli(["dream", CONTENT, "-o", tmp_path / "o.png"], capsys)
    assert code == 2
    assert "No space left on device — check the disk space" in one_line(err)
    assert list(tmp_path.iterdir()) == []


def test_weights_check(tmp_path, capsys, weights_dir):
    code, out, _ = run_cli(["weights", "check"], capsys)
    assert code == 0 and [line[:3] for line in out.splitlines()] == ["ok ", "ok "]
    code, out, _ = run_cli(["weights", "check", "--dir", tmp_path], capsys)
    assert code == 2 and all(line.startswith("BAD") and "nstdream weights fetch" in line for line in out.splitlines())


def test_info_lists_devices_weights_and_presets(capsys, weights_dir):
    code, out, _ = run_cli(["info"], capsys)
    assert code == 0 and "tensorflow" in out and "weights:" in out
    assert "cpu_16bit: bfloat16 " in out  # says whether this CPU computes bfloat16 natively
    assert all(f"[{name}]" in out for name in ("paper", "tf-tutorial", "quick"))


def test_console_script_help_is_fast_and_imports_no_tensorflow():
    script = "import sys\nfrom nstdream_utils import cli\ncode = cli.main(['style', '--help'])\n" \
             "print(code, 'tensorflow' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.stdout.splitlines()[-1] == "0 False"
