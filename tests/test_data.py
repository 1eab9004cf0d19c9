"""Tests for nstdream_utils.data (names, folder, paths), data/make_styles.py (the style images), the
`nstdream data` command, the licences, and the busyness scores of nstdream_utils.claim."""

from __future__ import annotations

import os
import runpy
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nstdream_utils import cli, data
from nstdream_utils.claim import distortion_score, spectral_entropy
from nstdream_utils.errors import InputError, MissingFileError

# The committed files, whatever NSTDREAM_DATA_DIR says.
REPO = Path(data.__file__).resolve().parent.parent
REPO_DATA = REPO / "data"
# The generator script's functions (draw, main, ...), loaded the way `nstdream data styles` loads them.
SCRIPT = runpy.run_path(str(data.STYLE_SCRIPT))


def _read_png(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def _style(name: str, size: int) -> np.ndarray:
    """A freshly drawn style as float32 in [0, 1], as ``images.load_image`` reads the PNG."""
    return SCRIPT["draw"](name, size).astype(np.float32) / np.float32(255)


# --------------------------------------------------------------------------------------------------
# Names
# --------------------------------------------------------------------------------------------------


def test_style_names_put_the_paper_first():
    assert data.PAPER_STYLES == ("triangle", "circular", "spiral", "3d_squares")
    assert data.STYLE_NAMES[: len(data.PAPER_STYLES)] == data.PAPER_STYLES
    assert set(data.GRADED_STYLES) <= set(data.STYLE_NAMES)
    assert len(data.GRADED_STYLES) >= 4
    assert len(set(data.STYLE_NAMES)) == len(data.STYLE_NAMES)


# --------------------------------------------------------------------------------------------------
# data/make_styles.py: deterministic, byte-for-byte the committed files
# --------------------------------------------------------------------------------------------------


def test_script_draws_every_style_deterministically():
    assert tuple(SCRIPT["_DRAWERS"]) == data.STYLE_NAMES
    for name in data.STYLE_NAMES:
        image = SCRIPT["draw"](name, 64)
        assert image.shape == (64, 64, 3) and image.dtype == np.uint8
        np.testing.assert_array_equal(SCRIPT["draw"](name, 64), image)
        assert image.std() > 0.1 * 255, name  # colourful, high contrast: not a flat image
    assert SCRIPT["draw"]("triangle", 100).shape == (100, 100, 3)


def test_script_writes_byte_identical_files_and_checks_its_arguments(tmp_path, capsys):
    assert SCRIPT["main"](["--size", "32", "--out", str(tmp_path / "a")]) == 0
    assert capsys.readouterr().out.split() == [str(tmp_path / "a" / f"{name}.png") for name in data.STYLE_NAMES]
    first = {p.name: p.read_bytes() for p in (tmp_path / "a").iterdir()}
    assert SCRIPT["main"](["--size", "32", "--out", str(tmp_path / "a"), "noise", "spiral"]) == 0
    assert {p.name: p.read_bytes() for p in (tmp_path / "a").iterdir()} == first  # no temporary file left
    for bad in (["nosie"], ["--size", "8"], ["--size", "64.0"]):
        with pytest.raises(SystemExit) as info:
            SCRIPT["main"]([*bad, "--out", str(tmp_path / "b")])
        assert info.value.code == 2
    assert "unknown style 'nosie'" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()


def test_cli_data_styles_reproduces_the_committed_files(tmp_path, capsys):
    assert cli.main(["data", "styles", "--out", str(tmp_path)]) == 0
    assert len(capsys.readouterr().out.split()) == len(data.STYLE_NAMES)
    for name in data.STYLE_NAMES:
        committed = REPO_DATA / "styles" / f"{name}.png"
        assert committed.stat().st_size <= 300 * 1024
        fresh = _read_png(tmp_path / f"{name}.png").astype(np.int16)
        assert fresh.shape == (512, 512, 3)
        # Same library versions give identical bytes. Allow a few edge pixels to move so that a new
        # Pillow rasteriser or libm does not fail the suite; a design change does.
        difference = np.abs(_read_png(committed).astype(np.int16) - fresh)
        message = f"data/styles/{name}.png differs from what data/make_styles.py draws — run it and commit"
        assert np.mean(difference.max(axis=-1) > 2) < 0.005, message
        assert difference.mean() < 0.5, message


def test_script_runs_as_a_program(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run([sys.executable, str(data.STYLE_SCRIPT), "--size", "32", "--out", str(tmp_path), "noise"],
                            env=env, capture_output=True, text=True, check=True)
    assert result.stdout.split() == [str(tmp_path / "noise.png")]
    np.testing.assert_array_equal(_read_png(tmp_path / "noise.png"), SCRIPT["draw"]("noise", 32))


def test_cli_data_styles_without_a_checkout_says_what_to_do(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(data, "STYLE_SCRIPT", tmp_path / "data" / "make_styles.py")
    assert cli.main(["data", "styles", "--out", str(tmp_path)]) == cli.EXIT_ERROR
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "python data/make_styles.py" in err
    assert not list(tmp_path.iterdir())


# --------------------------------------------------------------------------------------------------
# Paths and the data folder
# --------------------------------------------------------------------------------------------------


def test_paths_in_the_repository(monkeypatch):
    monkeypatch.delenv("NSTDREAM_DATA_DIR", raising=False)
    assert data.data_dir() == REPO_DATA
    for name in data.STYLE_NAMES:
        assert data.style_path(name) == REPO_DATA / "styles" / f"{name}.png"
    for name in data.CONTENT_NAMES:
        assert data.content_path(name) == REPO_DATA / "content" / f"{name}.png"
    with pytest.raises(InputError, match="did you mean 'chelsea'") as info:
        data.content_path("chelsey")
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    ("bad", "suggestion"),
    [("spirals", "spiral"), ("3d-squares", "3d_squares"), ("Triangle", "triangle"), ("checkboard", "checkerboard")],
)
def test_unknown_style_suggests_the_close_match(bad, suggestion):
    with pytest.raises(InputError, match=f"did you mean '{suggestion}'") as info:
        data.style_path(bad)
    assert "valid names: triangle, circular" in str(info.value)


def test_unknown_style_without_close_match_lists_names():
    with pytest.raises(InputError, match="valid names") as info:
        data.style_path("xyzzy")
    assert "did you mean" not in str(info.value)


def test_data_dir_override_and_missing_files(tmp_path, monkeypatch):
    monkeypatch.setenv("NSTDREAM_DATA_DIR", str(tmp_path))
    assert data.data_dir() == tmp_path
    with pytest.raises(MissingFileError, match="nstdream data styles") as info:
        data.style_path("spiral")
    assert isinstance(info.value, FileNotFoundError)
    with pytest.raises(MissingFileError, match="nstdream data content"):
        data.content_path("coffee")
    with pytest.raises(TypeError, match="style name must be a str"):
        data.style_path(3)
    SCRIPT["main"](["--size", "32", "spiral"])  # the script's default folder follows NSTDREAM_DATA_DIR
    assert data.style_path("spiral") == tmp_path / "styles" / "spiral.png"


def test_import_pulls_in_neither_tensorflow_nor_skimage():
    code = "import sys, nstdream_utils.data; print('tensorflow' in sys.modules, 'skimage' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["False", "False"]


# --------------------------------------------------------------------------------------------------
# Content photos and licences
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", data.CONTENT_NAMES)
def test_content_files_exist_and_are_small(name):
    path = REPO_DATA / "content" / f"{name}.png"
    assert path.is_file(), f"{path} is missing — run `nstdream data content`"
    with Image.open(path) as image:
        assert image.mode == "RGB"
        assert max(image.size) <= 512


def test_cli_data_content_reproduces_the_committed_photos(tmp_path, capsys):
    pytest.importorskip("skimage")
    assert cli.main(["data", "content", "--out", str(tmp_path)]) == 0
    assert capsys.readouterr().out.split() == [str(tmp_path / f"{name}.png") for name in data.CONTENT_NAMES]
    for name in data.CONTENT_NAMES:
        committed = _read_png(REPO_DATA / "content" / f"{name}.png")
        np.testing.assert_array_equal(_read_png(tmp_path / f"{name}.png"), committed)


def test_every_data_file_is_in_licenses():
    licences = (REPO_DATA / "LICENSES.md").read_text(encoding="utf-8")
    files = [p for p in REPO_DATA.rglob("*") if p.is_file() and p.name != "LICENSES.md"]
    assert len(files) >= len(data.STYLE_NAMES) + len(data.CONTENT_NAMES)
    names = [p.relative_to(REPO_DATA).as_posix() for p in files]
    missing = [name for name in names if f"`{name}`" not in licences]
    assert not missing, f"add these to data/LICENSES.md: {missing}"


# --------------------------------------------------------------------------------------------------
# claim.distortion_score and claim.spectral_entropy
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [128, 512])
def test_distortion_score_ranks_the_graded_styles(size):
    scores = [distortion_score(_style(name, size)) for name in data.GRADED_STYLES]
    assert scores == sorted(scores) and len(set(scores)) == len(scores), dict(zip(data.GRADED_STYLES, scores))
    assert scores[0] < 0.01 < scores[-1]


def test_spectral_entropy_ranks_the_graded_styles():
    entropies = [spectral_entropy(_style(name, 256)) for name in data.GRADED_STYLES]
    assert entropies == sorted(entropies), dict(zip(data.GRADED_STYLES, entropies))
    assert all(0.0 <= value <= 1.0 for value in entropies)


@pytest.mark.parametrize("name", ["3d_squares", "circular", "chelsea"])
def test_distortion_score_ignores_resolution(name):
    path = REPO_DATA / ("content" if name in data.CONTENT_NAMES else "styles") / f"{name}.png"
    with Image.open(path) as opened:
        image = opened.convert("RGB")
    base = distortion_score(np.asarray(image))
    for scale in (0.75, 1.5, 2.0):
        size = (round(image.width * scale), round(image.height * scale))
        resized = np.asarray(image.resize(size, Image.Resampling.LANCZOS)).astype(np.float32) / 255
        assert distortion_score(resized) == pytest.approx(base, rel=0.08), scale


def test_distortion_score_worked_cases():
    assert distortion_score(np.full((64, 64, 3), 0.7, np.float32)) == 0.0
    assert spectral_entropy(np.full((64, 64, 3), 0.7, np.float32)) == 0.0
    # A luminance ramp from 0 to 1 across 256 pixels changes by 1/255 per pixel.
    ramp = np.tile(np.linspace(0, 1, 256, dtype=np.float32), (256, 1))
    assert distortion_score(ramp) == pytest.approx(1 / 255, rel=0.02)
    # uint8, a batch of one and greyscale give the same score as float RGB.
    image = _style("checkerboard", 64)
    score = distortion_score(image)
    assert distortion_score(SCRIPT["draw"]("checkerboard", 64)) == pytest.approx(score)
    assert distortion_score(image[None]) == pytest.approx(score)
    grey = image @ np.array([0.299, 0.587, 0.114], np.float32)
    assert distortion_score(grey) == pytest.approx(score, rel=1e-4)


@pytest.mark.parametrize(
    ("bad", "pattern"),
    [
        (np.zeros((32, 32, 4), np.float32), "alpha"),
        (np.zeros((2, 32, 32, 3), np.float32), r"\[H, W, 3\]"),
        (np.full((32, 32, 3), 200.0, np.float32), "divide by 255"),
        (np.full((32, 32, 3), np.nan, np.float32), "NaN"),
        (np.zeros((32, 32, 3), np.int64), "dtype"),
        (np.zeros((2, 2, 3), np.float32), "too small"),
    ],
)
def test_distortion_score_rejects_bad_images(bad, pattern):
    with pytest.raises(InputError, match=pattern):
        distortion_score(bad)
    with pytest.raises(InputError, match=pattern):
        spectral_entropy(bad)


def test_course_paths_are_the_same_files_from_any_working_folder(tmp_path, monkeypatch):
    """Notebooks write paths relative to notebooks/ (../data/..., ../results/paper); course_path finds
    them wherever the kernel's working folder is (Colab after a restart, a script elsewhere)."""
    monkeypatch.chdir(tmp_path)
    assert data.course_path("../data/content/astronaut.png") == data.content_path("astronaut")
    assert (data.course_path("../results/paper") / "summary.json").is_file()
    assert data.course_path(tmp_path / "x.png") == tmp_path / "x.png"
