"""Robustness: awkward inputs, refused inputs, bad parameters, bad weights, NaN, Ctrl-C,
crashes and unsafe code — each through the library and through the ``nstdream`` command.

The behaviour under test is written up in ``docs/robustness.md``. Every network run here is tiny
(48–75 px, 2–5 steps). The command line runs in-process (``cli.main([...])``) except where a real
process is the point: the import-time check, signals and SIGKILL. Those signal runs start together
(one fixture) so their TensorFlow start-ups overlap.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import nstdream_utils
from nstdream_utils import cli, files, images, presets, weights
from nstdream_utils.errors import InputError, MissingFileError, NonFiniteLossError, WeightsError

REPO = Path(__file__).resolve().parents[1]
PACKAGE = Path(nstdream_utils.__file__).resolve().parent
CONTENT = REPO / "data" / "content" / "chelsea.png"
STYLE = REPO / "data" / "styles" / "spiral.png"
FAST = ["--size", "48", "--steps", "2", "--no-progress"]


# ------------------------------------------------------------------------------------------ helpers
def nstdream_command() -> list[str]:
    script = Path(sys.executable).with_name("nstdream")
    return [str(script)] if script.exists() else [sys.executable, "-m", "nstdream_utils.cli"]


def run_cli(argv, capsys) -> tuple[int, str, str]:
    """``cli.main(argv)`` in this process: (exit code, stdout, stderr)."""
    capsys.readouterr()
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(err: str, *needles: str) -> str:
    """stderr is exactly one line ``error: <where>: <what> — <fix>`` holding every needle, no traceback."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    line = lines[0]
    assert line.startswith("error: ") and " — " in line and "Traceback" not in err, line
    for needle in needles:
        assert needle in line, (needle, line)
    return line


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header declares ``width × height`` RGB pixels, with no pixel data (a 'bomb')."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


def noise(height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def odd(tmp_path_factory) -> dict[str, Path]:
    """Awkward but valid image files, and files that must be refused."""
    folder = tmp_path_factory.mktemp("odd")
    paths = {name: folder / name for name in (
        "gray.png", "rgba.png", "palette.png", "cmyk.jpg", "sixteen.png", "exif.jpg", "tiny.png", "big.jpg",
        "text.jpg", "truncated.jpg", "bomb.png")}
    rgb = Image.fromarray(noise(30, 40))
    rgb.convert("L").save(paths["gray.png"])
    rgba = np.zeros((30, 40, 4), np.uint8)
    rgba[:, 20:] = (0, 0, 255, 255)  # right half opaque blue; left half transparent black
    Image.fromarray(rgba, "RGBA").save(paths["rgba.png"])
    rgb.convert("P", palette=Image.Palette.ADAPTIVE, colors=16).save(paths["palette.png"])
    Image.new("CMYK", (40, 30), (0, 255, 255, 0)).save(paths["cmyk.jpg"])  # red
    ramp = np.linspace(0, 65535, 40 * 30).reshape(30, 40).astype(np.uint16)
    Image.fromarray(ramp).save(paths["sixteen.png"])
    exif = Image.Exif()
    exif[0x0112] = 6  # stored 60 wide × 40 high; shown rotated: 40 wide × 60 high
    Image.fromarray(noise(40, 60)).save(paths["exif.jpg"], exif=exif.tobytes())
    Image.fromarray(noise(16, 16, seed=1)).save(paths["tiny.png"])
    across, down = np.arange(4000) * 255 // 4000, np.arange(3000) * 255 // 3000
    big = np.empty((3000, 4000, 3), np.uint8)
    big[..., 0], big[..., 1], big[..., 2] = across, down[:, None], (across + down[:, None]) // 2
    Image.fromarray(big).save(paths["big.jpg"], quality=80)  # 12 megapixels
    paths["text.jpg"].write_text("this is not a JPEG\n")
    Image.fromarray(noise(120, 160)).save(folder / "whole.jpg", quality=90)
    data = (folder / "whole.jpg").read_bytes()
    paths["truncated.jpg"].write_bytes(data[: len(data) // 2])
    paths["bomb.png"].write_bytes(png_header_only(8000, 6000))  # 48 megapixels > the 40 MP cap
    paths["folder"] = folder / "a_folder"
    paths["folder"].mkdir()
    paths["missing.jpg"] = folder / "missing.jpg"
    return paths


@pytest.fixture
def readonly_dir(tmp_path):
    """A folder nobody can write to: chmod for a normal user; as root chattr +i or a read-only bind mount."""
    folder = tmp_path / "read_only"
    folder.mkdir()
    if os.geteuid() != 0:
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    if shutil.which("chattr") and subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode == 0:
        yield folder
        subprocess.run(["chattr", "-i", str(folder)], check=True)
        return
    source = tmp_path / "bind_source"
    source.mkdir()
    mounted = subprocess.run(["mount", "--bind", str(source), str(folder)], capture_output=True).returncode == 0
    if mounted and subprocess.run(["mount", "-o", "remount,bind,ro", str(folder)],
                                  capture_output=True).returncode == 0:
        yield folder
        subprocess.run(["umount", str(folder)], check=True)
        return
    if mounted:
        subprocess.run(["umount", str(folder)], check=True)
    pytest.skip("running as root, which ignores folder permissions, and neither chattr +i nor a read-only "
                "bind mount works here")


def strip_weights(monkeypatch, tmp_path: Path) -> Path:
    """Point NSTDREAM_WEIGHTS_DIR at an empty folder, KERAS_HOME at another, and make downloads fail."""
    weights_folder = tmp_path / "weights"
    weights_folder.mkdir()
    (tmp_path / "keras_home").mkdir()
    monkeypatch.setenv("NSTDREAM_WEIGHTS_DIR", str(weights_folder))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    monkeypatch.setattr(weights, "_keras_download", lambda name: (None, "offline in this test"))
    return weights_folder


# ================================================================== inputs that must work
ODD_LOADS = {  # file -> (height, width) after loading (EXIF applied)
    "gray.png": (30, 40), "rgba.png": (30, 40), "palette.png": (30, 40), "cmyk.jpg": (30, 40),
    "sixteen.png": (30, 40), "exif.jpg": (60, 40), "tiny.png": (16, 16), "big.jpg": (3000, 4000),
}


@pytest.mark.parametrize("name", sorted(ODD_LOADS))
def test_library_loads_odd_images_and_sizes_them_for_both_networks(odd, name):
    from nstdream_utils import dream, nst

    image = images.load_image(odd[name])
    assert image.shape == (*ODD_LOADS[name], 3) and image.dtype == np.float32
    assert np.isfinite(image).all() and 0 <= image.min() and image.max() <= 1
    content, style = nst.prepare_images(image, image, presets.NSTConfig(size=48, square=False))
    assert max(content.shape[:2]) == 48 and min(content.shape[:2]) >= 32 and content.shape == style.shape
    dreamed = dream.prepare_image(image, presets.DreamConfig(size=48, square=False))
    assert min(dreamed.shape[:2]) == dream.INCEPTION_MIN_SIZE  # upscaled for Inception's 75 px minimum


def test_library_composites_alpha_over_white_and_reads_16_bit_cmyk_and_exif(odd):
    rgba = images.load_image(odd["rgba.png"])
    assert np.allclose(rgba[:, :20], 1.0) and np.allclose(rgba[:, 20:], (0, 0, 1))
    sixteen = images.load_image(odd["sixteen.png"])
    assert sixteen[0, 0, 0] == 0 and sixteen[-1, -1, 0] == 1 and len(np.unique(sixteen)) > 256  # not 8-bit
    red = images.load_image(odd["cmyk.jpg"]).mean(axis=(0, 1))
    assert red[0] > 0.8 and red[1] < 0.2 and red[2] < 0.2


def test_cli_style_on_exif_rotated_content_and_grayscale_style(odd, tmp_path, capsys, weights_dir):
    out, metrics = tmp_path / "out.png", tmp_path / "m.json"
    code, _, err = run_cli(["style", odd["exif.jpg"], odd["gray.png"], "-o", out, "--metrics", metrics, *FAST],
                           capsys)
    assert code == 0, err
    assert json.loads(metrics.read_text())["size"] == [32, 48]  # upright: portrait, longest side 48
    assert Image.open(out).size == (32, 48)


def test_cli_style_on_cmyk_content_and_palette_style(odd, tmp_path, capsys, weights_dir):
    out = tmp_path / "out.png"
    code, _, err = run_cli(["style", odd["cmyk.jpg"], odd["palette.png"], "-o", out, *FAST], capsys)
    assert code == 0, err
    assert Image.open(out).size == (48, 36)


def test_cli_dreams_on_a_16px_16_bit_image(odd, tmp_path, capsys, weights_dir):
    Image.open(odd["sixteen.png"]).resize((16, 16)).save(tmp_path / "tiny16.png")
    out, metrics = tmp_path / "out.png", tmp_path / "m.json"
    code, _, err = run_cli(["dream", tmp_path / "tiny16.png", "-o", out, "--metrics", metrics, *FAST], capsys)
    assert code == 0, err
    assert json.loads(metrics.read_text())["size"] == [75, 75] and Image.open(out).size == (75, 75)


def test_cli_resizes_a_12_megapixel_image_before_the_network(odd, tmp_path, capsys, weights_dir):
    out, metrics = tmp_path / "out.png", tmp_path / "m.json"
    code, _, err = run_cli(["dream", odd["big.jpg"], "-o", out, "--metrics", metrics, "--size", "64",
                            "--steps", "2", "--no-progress"], capsys)
    assert code == 0, err
    assert json.loads(metrics.read_text())["size"] == [100, 75]  # 64×48, then 75 px minimum


# ================================================================== inputs that must be refused
REFUSED = {  # fixture key -> (error class, words the message must hold)
    "missing.jpg": (MissingFileError, "no such file"),
    "folder": (InputError, "is a folder"),
    "text.jpg": (InputError, "not an image"),
    "truncated.jpg": (InputError, "truncated"),
    "bomb.png": (InputError, "over the limit of 40 megapixels"),
}


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_library_refuses_bad_image_files(odd, name):
    error_class, words = REFUSED[name]
    with pytest.raises(error_class) as caught:
        images.load_image(odd[name])
    assert str(odd[name]) in str(caught.value) and words in str(caught.value) and caught.value.fix


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_cli_refuses_bad_image_files_with_one_line(odd, name, tmp_path, capsys):
    code, _, err = run_cli(["style", odd[name], STYLE, "-o", tmp_path / "o.png"], capsys)
    assert code == 2
    assert_one_line_error(err, str(odd[name]), REFUSED[name][1])
    code, _, err = run_cli(["pipeline", CONTENT, odd[name], "-o", tmp_path / "o.png"], capsys)
    assert code == 2 and str(odd[name]) in assert_one_line_error(err)
    assert not list(tmp_path.iterdir())


def test_library_refuses_missing_and_read_only_output_folders(tmp_path, readonly_dir):
    image = np.zeros((4, 4, 3), np.float32)
    for target in (tmp_path / "no" / "such" / "out.png", readonly_dir / "out.png"):
        with pytest.raises(InputError) as caught:
            images.save_image(image, target)
        assert str(target) in str(caught.value) and caught.value.fix
        with pytest.raises((InputError, OSError)):
            files.write_json({"a": 1}, target.with_suffix(".json"))
    assert not list(readonly_dir.iterdir())


def test_cli_refuses_missing_and_read_only_output_folders(tmp_path, readonly_dir, capsys):
    for flag in ("-o", "--metrics", "--stylized"):
        for folder in (tmp_path / "missing", readonly_dir):
            ending = ".json" if flag == "--metrics" else ".png"
            argv = ["pipeline", CONTENT, STYLE, "-o", tmp_path / "o.png", flag, folder / f"x{ending}"]
            code, _, err = run_cli(argv, capsys)
            words = "does not exist" if folder.name == "missing" else "not writable"
            assert code == 2
            assert_one_line_error(err, str(folder / f"x{ending}"), words)


# ================================================================== parameters
BAD_PARAMETERS = [  # (argv tail for `nstdream dream IMG -o OUT`, words in the one-line error)
    (["--steps", "0"], "--steps: must be > 0"),
    (["--steps", "-3"], "--steps: must be > 0"),
    (["--size", "0"], "--size: must be > 0"),
    (["--size", "-64"], "--size: must be > 0"),
    (["--size", "big"], "--size: expected a whole number"),
    (["--lr", "0"], "--lr: must be a finite number > 0"),
    (["--lr", "nan"], "--lr: must be a finite number > 0"),
    (["--layers", "mixed3,mixed99"], "unknown layer 'mixed99'"),
    (["--layers", "block5_conv2"], "valid layers: mixed0, mixed1"),
    (["--preset", "fast"], "unknown preset 'fast'"),
    (["--octaves", "0"], "--octaves: must be > 0"),
    (["--tile-size", "-1"], "--tile-size: must be ≥ 0"),
    (["--seed", "-1"], "--seed: must be ≥ 0"),
    (["--bogus"], "unrecognized arguments: --bogus"),
]


@pytest.mark.parametrize("tail, words", BAD_PARAMETERS, ids=[" ".join(t) for t, _ in BAD_PARAMETERS])
def test_cli_refuses_bad_parameters_with_one_line(tail, words, tmp_path, capsys):
    code, _, err = run_cli(["dream", CONTENT, "-o", tmp_path / "o.png", *tail], capsys)
    assert code == 2
    assert_one_line_error(err, words)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("tail, words", [
    (["--optimizer", "rmsprop"], "--optimizer: unknown choice 'rmsprop' — choose one of sgd, adam, lbfgs, lbfgs-tf"),
    (["--preset", "papper"], "did you mean 'paper'"),
    (["--steps", "1.5"], "--steps: expected a whole number"),
])
def test_cli_refuses_bad_style_parameters(tail, words, tmp_path, capsys):
    code, _, err = run_cli(["style", CONTENT, STYLE, "-o", tmp_path / "o.png", *tail], capsys)
    assert code == 2
    assert_one_line_error(err, words)


@pytest.mark.parametrize("overrides, words", [
    ({"num_steps": 0}, "num_steps"), ({"num_steps": -5}, "num_steps"), ({"size": 0}, "size"),
    ({"size": -1}, "size"), ({"optimizer": "rmsprop"}, "unknown optimizer 'rmsprop'"),
    ({"config": "fast"}, "unknown preset 'fast'"), ({"learning_rate": 0.0}, "learning_rate"),
])
def test_library_refuses_bad_nst_parameters_before_any_compute(overrides, words, monkeypatch):
    from nstdream_utils import nst

    monkeypatch.setattr(nst.models, "vgg19_features", lambda *a, **k: pytest.fail("built a network"))
    image = np.zeros((8, 8, 3), np.float32)
    with pytest.raises(InputError, match=re.escape(words)):
        nst.style_transfer(image, image, progress=False, **overrides)


@pytest.mark.parametrize("overrides, words", [
    ({"layers": ["mixed99"]}, "valid layers: mixed0, mixed1, mixed2"), ({"layers": []}, "no layers"),
    ({"num_steps": 0}, "num_steps"), ({"size": -3}, "size"), ({"step_size": -1.0}, "step_size"),
    ({"config": "nope"}, "unknown preset"),
])
def test_library_refuses_bad_dream_parameters_before_any_compute(overrides, words, monkeypatch):
    from nstdream_utils import dream

    monkeypatch.setattr(dream.models, "inception_features", lambda *a, **k: pytest.fail("built a network"))
    with pytest.raises(InputError, match=re.escape(words)):
        dream.deep_dream(np.zeros((8, 8, 3), np.float32), progress=False, **overrides)


# ================================================================== checks come before TensorFlow
def test_cli_checks_everything_before_importing_tensorflow(odd, tmp_path, readonly_dir, weights_dir):
    """In a fresh process, every refusal returns 2 while ``tensorflow`` is still not imported."""
    truncated = tmp_path / "truncated_weights"
    truncated.mkdir()
    with open(weights_dir / weights.VGG19_FILE, "rb") as source:
        (truncated / weights.VGG19_FILE).write_bytes(source.read(1 << 20))
    out = str(tmp_path / "o.png")
    cases = [
        ["style", str(odd[name]), str(STYLE), "-o", out] for name in REFUSED
    ] + [
        ["dream", str(CONTENT), "-o", str(tmp_path / "missing" / "o.png")],
        ["dream", str(CONTENT), "-o", str(readonly_dir / "o.png")],
        ["dream", str(CONTENT), "-o", out, "--metrics", str(tmp_path / "missing" / "m.json")],
        ["dream", str(CONTENT), "-o", out, "--steps", "0"],
        ["dream", str(CONTENT), "-o", out, "--size", "-1"],
        ["dream", str(CONTENT), "-o", out, "--layers", "mixed42"],
        ["style", str(CONTENT), str(STYLE), "-o", out, "--preset", "nope"],
        ["style", str(CONTENT), str(STYLE), "-o", out, "--optimizer", "rmsprop"],
        ["pipeline", str(CONTENT), str(STYLE), "-o", out, "--stylized", out],
        ["style", str(CONTENT), str(STYLE), "-o", out, "--bogus"],
        ["style", str(CONTENT), str(STYLE), "-o", out, "--size", "48"],  # truncated VGG-19 file
    ]
    script = (
        "import json, sys\n"
        "from nstdream_utils import cli\n"
        f"codes = [cli.main(argv) for argv in {cases!r}]\n"
        "print(json.dumps({'codes': codes, 'tensorflow': 'tensorflow' in sys.modules}))\n"
    )
    env = dict(os.environ, NSTDREAM_WEIGHTS_DIR=str(truncated), KERAS_HOME=str(tmp_path / "keras"))
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report == {"codes": [2] * len(cases), "tensorflow": False}, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(errors) == len(cases) and all(line.startswith("error: ") for line in errors), done.stderr
    assert "truncated" in errors[-1] and "NSTDREAM_WEIGHTS_DIR" in errors[-1] and "nstdream weights fetch" in errors[-1]


def test_cli_bad_path_exits_2_before_tensorflow_is_imported(tmp_path):
    """The console script refuses a missing file without importing TensorFlow (which takes seconds)."""
    script = ("import sys; sys.modules['tensorflow'] = None; sys.modules['keras'] = None\n"
              "from nstdream_utils.cli import main\n"
              "sys.exit(main(['style', 'no_such.jpg', sys.argv[1], '-o', 'o.png']))")
    done = subprocess.run([sys.executable, "-c", script, str(STYLE)], capture_output=True, text=True,
                          cwd=tmp_path, timeout=120)
    assert done.returncode == 2 and done.stdout == "", done.stderr
    assert_one_line_error(done.stderr, "no_such.jpg: no such file")


# ================================================================== weights
def test_library_refuses_truncated_corrupt_and_missing_weights(monkeypatch, tmp_path, weights_dir):
    from nstdream_utils import models

    folder = strip_weights(monkeypatch, tmp_path)
    with pytest.raises(WeightsError) as missing:
        models.vgg19_features(["block1_conv1"])
    with open(weights_dir / weights.VGG19_FILE, "rb") as source:
        (folder / weights.VGG19_FILE).write_bytes(source.read(1 << 20))
    with pytest.raises(WeightsError) as truncated:
        models.vgg19_features(["block1_conv1"])
    shutil.copyfile(weights_dir / weights.INCEPTION_FILE, folder / weights.INCEPTION_FILE)
    with open(folder / weights.INCEPTION_FILE, "r+b") as corrupt:
        corrupt.seek(40 << 20)
        corrupt.write(b"\xff" * 4096)
    with pytest.raises(WeightsError) as corrupted:
        models.inception_features(["mixed3"])
    assert "not found" in str(missing.value) and "truncated" in str(truncated.value)
    assert "damaged" in str(corrupted.value) and str(folder) in str(corrupted.value)
    for caught in (missing, truncated, corrupted):
        assert "NSTDREAM_WEIGHTS_DIR" in str(caught.value) and "nstdream weights fetch" in str(caught.value)


@pytest.mark.parametrize("problem", ["missing", "truncated", "corrupt"])
def test_cli_refuses_bad_weights_with_one_line(problem, monkeypatch, tmp_path, capsys, weights_dir):
    folder = strip_weights(monkeypatch, tmp_path)
    if problem == "truncated":
        with open(weights_dir / weights.VGG19_FILE, "rb") as source:
            (folder / weights.VGG19_FILE).write_bytes(source.read(1 << 20))
    elif problem == "corrupt":  # the right size, wrong bytes
        shutil.copyfile(weights_dir / weights.VGG19_FILE, folder / weights.VGG19_FILE)
        with open(folder / weights.VGG19_FILE, "r+b") as corrupt:
            corrupt.seek(40 << 20)
            corrupt.write(b"\xff" * 4096)
    out = tmp_path / "o.png"
    code, _, err = run_cli(["style", CONTENT, STYLE, "-o", out, *FAST], capsys)
    assert code == 2 and not out.exists()
    words = {"missing": "not found", "truncated": "truncated", "corrupt": "damaged or a different file"}[problem]
    assert_one_line_error(err, words, "NSTDREAM_WEIGHTS_DIR", "nstdream weights fetch")


# ================================================================== NaN / Inf during a run
def test_library_nan_keeps_the_last_finite_image_and_reports_the_step(weights_dir):
    from nstdream_utils import nst

    content = images.load_image(CONTENT)
    with pytest.raises(NonFiniteLossError) as caught:
        # Adam: quick's L-BFGS has no learning rate, and the presets' SGD guard would retry a smaller one.
        nst.style_transfer(content, content, size=48, num_steps=5, optimizer="adam", learning_rate=1e12,
                           progress=False)
    error = caught.value
    assert error.step >= 1 and f"step {error.step}" in str(error) and "--lr" in error.fix
    assert error.last_image.shape == (48, 48, 3) and np.isfinite(error.last_image).all()  # quick: square
    assert not np.isfinite(error.history["total"][-1])


def test_library_dream_nan_image_is_caught(weights_dir, monkeypatch):
    from nstdream_utils import dream, losses

    real = losses.dream_loss
    monkeypatch.setattr(losses, "dream_loss", lambda activations: real(activations) * float("nan"))
    start = noise(16, 16).astype(np.float32) / 255
    with pytest.raises(NonFiniteLossError) as caught:
        dream.deep_dream(start, size=16, num_steps=3, progress=False)
    assert caught.value.step == 0 and np.isfinite(caught.value.last_image).all()


def test_cli_nan_writes_the_last_finite_image_and_exits_1(tmp_path, capsys, weights_dir):
    out, metrics = tmp_path / "out.png", tmp_path / "m.json"
    code, _, err = run_cli(["style", CONTENT, STYLE, "-o", out, "--metrics", metrics, "--optimizer", "adam",
                            "--lr", "1e12", "--size", "48", "--steps", "5", "--no-progress"], capsys)
    assert code == 1
    line = assert_one_line_error(err, str(out), "stopped at step", "not finite", "wrote the last finite image",
                                 "--lr")
    report = json.loads(metrics.read_text())
    assert report["status"] == "nonfinite" and f"step {report['step']}" in line
    assert report["loss"][-1] is None and report["size"] == [48, 32]  # NaN/Inf is null in JSON
    assert np.isfinite(images.load_image(out)).all()


# ================================================================== Ctrl-C and crashes
def test_library_dreams_on_a_16px_image_and_stops_cleanly_on_keyboard_interrupt(weights_dir):
    from nstdream_utils import dream

    calls = []

    def ctrl_c_on_third_step() -> bool:
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return False

    result = dream.deep_dream(noise(16, 16).astype(np.float32) / 255, size=16, num_steps=50, progress=False,
                              should_stop=ctrl_c_on_third_step)
    assert result.status == "interrupted" and len(result.history["loss"]) == 2
    assert np.isfinite(result.history["loss"]).all()
    assert result.image.shape == (75, 75, 3) and np.isfinite(result.image).all()  # upscaled to 75 px


def test_library_writes_are_atomic_when_interrupted(tmp_path, monkeypatch):
    target = tmp_path / "out.png"
    images.save_image(np.zeros((4, 4, 3), np.float32), target)
    before = target.read_bytes()

    def crash(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(files.os, "replace", crash)
    for write in (lambda: images.save_image(np.ones((4, 4, 3), np.float32), target),
                  lambda: files.write_json({"loss": [1.0]}, tmp_path / "m.json")):
        with pytest.raises(KeyboardInterrupt):
            write()
    assert target.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]


class Run:
    """One ``nstdream`` process whose stdout lines are collected by a thread."""

    def __init__(self, argv: list, folder: Path) -> None:
        env = dict(os.environ, PYTHONUNBUFFERED="1", TF_CPP_MIN_LOG_LEVEL="2")
        self.folder = folder
        self.stderr = open(folder / "stderr.txt", "wb")
        self.proc = subprocess.Popen([*nstdream_command(), *map(str, argv)], cwd=folder, env=env,
                                     stdout=subprocess.PIPE, stderr=self.stderr, text=True)
        self.lines: list[str] = []
        threading.Thread(target=lambda: self.lines.extend(self.proc.stdout), daemon=True).start()
        self.signalled_at: float | None = None
        self.exit_seconds: float | None = None

    def wait_for(self, pattern: str, count: int = 1, timeout: float = 240) -> None:
        deadline = time.monotonic() + timeout
        while sum(bool(re.match(pattern, line)) for line in list(self.lines)) < count:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"no {pattern!r} ×{count}: {self.lines} {self.err()}")
            time.sleep(0.05)

    def wait_until(self, condition, timeout: float = 240) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"condition never held: {self.err()}")
            try:
                if condition():
                    return
            except OSError:  # /proc entry gone: the process ended; reported on the next pass
                pass
            time.sleep(0.02)

    def signal(self, number: int) -> None:
        self.signalled_at = self.signalled_at or time.monotonic()
        self.proc.send_signal(number)

    def finish(self, timeout: float = 180) -> int:
        try:
            code = self.proc.wait(timeout=timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
            self.stderr.close()
        if self.signalled_at is not None:
            self.exit_seconds = time.monotonic() - self.signalled_at
        return code

    def err(self) -> str:
        return (self.folder / "stderr.txt").read_text(errors="replace")


STEP_0 = r"step\s+0 \|"


def _sigint_style(folder: Path) -> dict:
    run = Run(["style", CONTENT, STYLE, "-o", "out.png", "--metrics", "m.json", "--size", "48", "--steps",
               "5000", "--log-every", "1", "--no-progress"], folder)
    run.wait_for(STEP_0)
    run.signal(signal.SIGINT)
    return {"code": run.finish(), "stderr": run.err(), "lines": run.lines}


def _sigint_dream(folder: Path) -> dict:
    run = Run(["dream", CONTENT, "-o", "out.png", "--metrics", "m.json", "--size", "48", "--steps", "5000",
               "--log-every", "1", "--no-progress"], folder)
    run.wait_for(STEP_0)
    run.signal(signal.SIGINT)
    return {"code": run.finish(), "stderr": run.err(), "lines": run.lines}


def _sigint_pipeline(folder: Path) -> dict:
    """Tiny content, RGBA style: NST completes, then Ctrl-C during DeepDream."""
    Image.fromarray(noise(16, 16, seed=3)).save(folder / "tiny.png")
    rgba = np.zeros((30, 40, 4), np.uint8)
    rgba[:, 20:] = (200, 30, 30, 255)
    Image.fromarray(rgba, "RGBA").save(folder / "rgba.png")
    run = Run(["pipeline", "tiny.png", "rgba.png", "-o", "out.png", "--metrics", "m.json", "--size", "16",
               "--dream-size", "16", "--nst-steps", "2", "--dream-steps", "5000", "--log-every", "1",
               "--no-progress"], folder)
    run.wait_for(STEP_0, count=2)  # the second "step 0" is DeepDream's
    run.signal(signal.SIGINT)
    return {"code": run.finish(), "stderr": run.err(), "lines": run.lines}


def _double_sigint_during_build(folder: Path) -> dict:
    run = Run(["style", CONTENT, STYLE, "-o", "out.png", "--metrics", "m.json", "--steps", "100000",
               "--no-progress"], folder)
    maps = Path(f"/proc/{run.proc.pid}/maps")
    run.wait_until(lambda: "tensorflow" in maps.read_text())  # TensorFlow is loading: past the checks
    run.signal(signal.SIGINT)
    time.sleep(0.2)
    run.signal(signal.SIGINT)
    return {"code": run.finish(timeout=60), "stderr": run.err(), "seconds": run.exit_seconds}


def _sigkill_mid_run(folder: Path) -> dict:
    run = Run(["style", CONTENT, STYLE, "-o", "out.png", "--metrics", "m.json", "--size", "48", "--steps",
               "5000", "--log-every", "1", "--no-progress"], folder)
    run.wait_for(r"step\s+1 \|")
    run.signal(signal.SIGKILL)
    return {"code": run.finish(), "stderr": run.err()}


SCENARIOS = {"style": _sigint_style, "dream": _sigint_dream, "pipeline": _sigint_pipeline,
             "double": _double_sigint_during_build, "sigkill": _sigkill_mid_run}


@pytest.fixture(scope="module")
def signal_runs(tmp_path_factory, weights_dir) -> dict:
    """Run every signal scenario at once (threads), so their TensorFlow start-ups overlap."""
    if not Path("/proc/self/maps").exists():
        pytest.skip("needs Linux /proc to see when TensorFlow starts loading")
    results: dict = {}

    def drive(name, scenario, folder):
        try:
            results[name] = {"folder": folder, **scenario(folder)}
        except BaseException as error:  # noqa: BLE001 — reported by the test that reads it
            results[name] = {"folder": folder, "error": repr(error)}

    threads = [threading.Thread(target=drive, args=(name, scenario, tmp_path_factory.mktemp(name)))
               for name, scenario in SCENARIOS.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def leftovers(folder: Path, expected: set[str], *, allow_temporary: bool = False) -> list[str]:
    """Files in ``folder`` other than ``expected`` and stderr.txt (and hidden ``.….tmp`` if allowed)."""
    temporary = re.compile(r"\..+\.tmp")
    return sorted(p.name for p in folder.iterdir() if p.name not in expected | {"stderr.txt"}
                  and not (allow_temporary and temporary.fullmatch(p.name)))


@pytest.mark.slow
@pytest.mark.parametrize("command", ["style", "dream"])
def test_ctrl_c_writes_the_current_image_and_metrics_then_exits_130(signal_runs, command):
    result = signal_runs[command]
    assert "error" not in result, result
    assert result["code"] == 130, result["stderr"]
    folder = result["folder"]
    metrics = json.loads((folder / "m.json").read_text())
    assert metrics["status"] == "interrupted" and 1 <= metrics["steps"] < 5000
    assert len(metrics["loss"]) == metrics["steps"] and metrics["final_loss"] == metrics["loss"][-1]
    expected_size = [48, 32] if command == "style" else [112, 75]
    assert metrics["size"] == expected_size and list(Image.open(folder / "out.png").size) == expected_size
    assert "stopping after this step" in result["stderr"] and "Traceback" not in result["stderr"]
    assert leftovers(folder, {"out.png", "m.json"}) == []


@pytest.mark.slow
def test_ctrl_c_during_pipeline_dream_stage_keeps_both_images(signal_runs):
    result = signal_runs["pipeline"]
    assert "error" not in result, result
    assert result["code"] == 130, result["stderr"]
    folder = result["folder"]
    metrics = json.loads((folder / "m.json").read_text())
    assert metrics["status"] == "interrupted"
    assert metrics["nst"]["status"] == "completed" and metrics["nst"]["steps"] == 2
    assert metrics["nst"]["size"] == [32, 32]  # 16 px content upscaled to VGG-19's 32 px minimum
    assert metrics["dream"]["status"] == "interrupted" and metrics["dream"]["steps"] >= 1
    assert metrics["dream"]["size"] == [75, 75]  # ... and to Inception's 75 px
    for key in ("loss", "final_loss", "seconds", "size"):
        assert key in metrics["nst"] and key in metrics["dream"]
    assert Image.open(folder / "out.png").size == (75, 75)
    assert Image.open(folder / "out_stylized.png").size == (32, 32)
    assert leftovers(folder, {"out.png", "out_stylized.png", "m.json", "tiny.png", "rgba.png"}) == []


@pytest.mark.slow
def test_second_ctrl_c_exits_at_once(signal_runs):
    result = signal_runs["double"]
    assert "error" not in result, result
    assert result["code"] == 130, result["stderr"]
    assert "Traceback" not in result["stderr"]
    assert leftovers(result["folder"], set(), allow_temporary=True) == []


@pytest.mark.slow
def test_sigkill_mid_run_leaves_no_partial_output(signal_runs):
    result = signal_runs["sigkill"]
    assert "error" not in result, result
    assert result["code"] == -signal.SIGKILL
    # neither out.png nor m.json: absent, not half-written (a kill while writing may leave a hidden .….tmp)
    assert leftovers(result["folder"], set(), allow_temporary=True) == []


# ================================================================== unsafe code
def _calls(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            yield node, ast.unparse(node.func)


def test_no_eval_exec_or_unrestricted_unpickling_in_the_package():
    pattern = re.compile(r"(?<![\w.])(eval|exec)\s*\(|pickle\.loads?\s*\(|yaml\.(unsafe_|full_)?load\s*\(|"
                         r"marshal\.loads?\s*\(|allow_pickle\s*=\s*True|shell\s*=\s*True|torch\.load\s*\(")
    unpicklers = []
    for path in sorted(PACKAGE.rglob("*.py")):
        source = path.read_text(encoding="utf-8")
        hits = [m.group(0) for m in pattern.finditer(source)]
        assert not hits, (path.name, hits)  # a plain grep over the source text
        tree = ast.parse(source)
        for node, name in _calls(tree):
            assert name not in {"eval", "exec", "compile", "__import__", "builtins.eval", "builtins.exec",
                                "pickle.load", "pickle.loads", "pickle.Unpickler", "yaml.load", "marshal.load",
                                "marshal.loads", "shelve.open"}, (path.name, name)
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef) and any("Unpickler" in ast.unparse(b) for b in node.bases):
                unpicklers.append((path.name, node))
    assert [(name, node.name) for name, node in unpicklers] == [("weights.py", "_TorchScriptUnpickler")]
    methods = {item.name for item in unpicklers[0][1].body if isinstance(item, ast.FunctionDef)}
    assert "find_class" in methods


@pytest.mark.parametrize("module, name", [("os", "system"), ("builtins", "eval"), ("subprocess", "Popen"),
                                          ("torch", "load"), ("__builtin__", "exec")])
def test_torchscript_unpickler_refuses_every_other_global(module, name, tmp_path):
    import io
    import pickle
    import zipfile

    payload = f"c{module}\n{name}\n(S'echo pwned'\ntR.".encode()  # protocol-0 pickle calling module.name(...)
    with pytest.raises(pickle.UnpicklingError, match="refusing to load global"):
        weights._TorchScriptUnpickler(io.BytesIO(payload), zipfile.ZipFile(io.BytesIO(), "w"), "x/").load()
    archive = tmp_path / "evil.pt"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("x/data.pkl", payload)
    with pytest.raises(WeightsError, match="refusing to load global"):
        weights.read_torchscript(archive)


def test_papermill_parameters_are_passed_as_values():
    from papermill.translators import PythonTranslator

    from nstdream_utils import report

    runs = [(path.name, node) for path in sorted(PACKAGE.rglob("*.py"))
            for node, name in _calls(ast.parse(path.read_text(encoding="utf-8"))) if name.endswith("execute_notebook")]
    assert "report.py" in {name for name, _ in runs}
    for name, node in runs:  # values go in as papermill parameters, never spliced into notebook source
        assert any(k.arg == "parameters" for k in node.keywords), name
        assert not any(k.arg in ("prepare_only", "inject_input_path") for k in node.keywords), name
    hostile = "'); import os; os.system('echo pwned'); ('"
    value = report._plain("preset", hostile)
    assert value == hostile and ast.literal_eval(PythonTranslator.translate(value)) == hostile
    with pytest.raises(InputError):
        report._plain("preset", type("Code", (), {"__repr__": lambda self: "__import__('os')"})())


def test_the_stress_table_in_the_docs_is_the_committed_matrix(monkeypatch):
    """docs/robustness.md's stress table is what `nst_stress.summarize` makes of the committed runs: the full
    matrix, each run once at its preset's learning rate, none diverged and none ended above its first loss."""
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    import nst_stress

    runs = [json.loads(line) for line in (REPO / "results" / "stress" / "nst_stress.jsonl").read_text().splitlines()]
    keys = {(r["preset"], r["photo"], r["style"], r["size"], r["steps"]) for r in runs}
    assert len(keys) == len(runs) == 3 * 7 * 14 * 4 and all(r["commit"] and r["cpu"] for r in runs)
    rates = {preset: float(nst_stress.preset_config(preset).learning_rate) for preset in nst_stress.PRESETS}
    assert all(nst_stress.at_rate(r, rates) for r in runs)
    docs = (REPO / "docs" / "robustness.md").read_text(encoding="utf-8")
    assert f"| paper (SGD at lr {rates['paper']:g}, guard" in docs  # the table names the rate its rows ran at
    for preset, c in nst_stress.summarize(runs).items():
        assert c["diverged"] == 0 and c["ended_above_start"] == 0, preset
        row = f"| {c['runs']} | {c['diverged']} | {c['spiked']} | {c['ended_above_start']} |"
        assert re.search(rf"\| {re.escape(preset)} \([^)]*\) {re.escape(row)}", docs), (preset, row)
        assert f"| {c['final_over_first_max']:.3g} |" in docs, preset
