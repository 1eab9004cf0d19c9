"""Tests for nstdream_utils.data: generated styles, content photos, licences, the busyness score."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nstdream_utils import data
from nstdream_utils.errors import InputError, MissingFileError

# The committed files, whatever NSTDREAM_DATA_DIR says.
REPO_DATA = Path(data.__file__).resolve().parent.parent / "data"


def _read_png(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def _to_uint8(image: np.ndarray) -> np.ndarray:
    return np.round(image * 255).astype(np.uint8)


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
# generate_style
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", data.STYLE_NAMES)
def test_style_shape_range_and_determinism(name):
    image = data.generate_style(name, size=64)
    assert image.shape == (64, 64, 3)
    assert image.dtype == np.float32
    assert image.min() >= 0.0 and image.max() <= 1.0
    # Multiples of 1/255, so the array equals the PNG read back.
    np.testing.assert_array_equal(_to_uint8(image).astype(np.float32) / np.float32(255), image)
    np.testing.assert_array_equal(data.generate_style(name, size=64), image)
    assert image.std() > 0.1  # colourful, high contrast: not a flat image


def test_style_size_is_respected():
    assert data.generate_style("triangle", size=100).shape == (100, 100, 3)


@pytest.mark.parametrize(
    ("bad", "suggestion"),
    [
        ("spirals", "spiral"),
        ("3d-squares", "3d_squares"),
        ("Triangle", "triangle"),
        ("checkboard", "checkerboard"),
    ],
)
def test_unknown_style_suggests_the_close_match(bad, suggestion):
    with pytest.raises(InputError, match=f"did you mean '{suggestion}'") as info:
        data.generate_style(bad)
    assert isinstance(info.value, ValueError)
    assert "valid names: triangle, circular" in str(info.value)


def test_unknown_style_without_close_match_lists_names():
    with pytest.raises(InputError, match="valid names") as info:
        data.generate_style("xyzzy")
    assert "did you mean" not in str(info.value)


def test_bad_size_and_name_types():
    with pytest.raises(InputError, match="between 16 and 4096"):
        data.generate_style("spiral", size=8)
    with pytest.raises(TypeError, match="size must be an int"):
        data.generate_style("spiral", size=64.0)
    with pytest.raises(TypeError, match="style name must be a str"):
        data.generate_style(3)


# --------------------------------------------------------------------------------------------------
# write_styles: atomic, byte-for-byte reproducible, matches the committed files
# --------------------------------------------------------------------------------------------------


def test_write_styles_is_byte_identical_when_repeated(tmp_path):
    first = data.write_styles(tmp_path / "a", size=64)
    second = data.write_styles(tmp_path / "b", size=64)
    assert [p.name for p in first] == [f"{name}.png" for name in data.STYLE_NAMES]
    for a, b in zip(first, second):
        assert a.read_bytes() == b.read_bytes(), a.name
    # Overwriting in place gives the same bytes again and leaves no temporary file behind.
    before = {p.name: p.read_bytes() for p in first}
    data.write_styles(tmp_path / "a", size=64)
    assert {p.name: p.read_bytes() for p in (tmp_path / "a").iterdir()} == before
    for path in first:
        np.testing.assert_array_equal(_read_png(path), _to_uint8(data.generate_style(path.stem, size=64)))


def test_write_styles_checks_names_before_writing(tmp_path):
    with pytest.raises(InputError, match="did you mean 'noise'"):
        data.write_styles(tmp_path, size=32, names=["spiral", "nosie"])
    assert not list(tmp_path.iterdir())
    assert [p.name for p in data.write_styles(tmp_path, size=32, names=["noise"])] == ["noise.png"]


@pytest.mark.parametrize("name", data.STYLE_NAMES)
def test_committed_styles_equal_fresh_ones(name):
    path = REPO_DATA / "styles" / f"{name}.png"
    assert path.is_file(), f"{path} is missing — run `nstdream data styles`"
    assert path.stat().st_size <= 300 * 1024
    committed = _read_png(path).astype(np.int16)
    fresh = _to_uint8(data.generate_style(name, size=512)).astype(np.int16)
    assert committed.shape == fresh.shape == (512, 512, 3)
    # Same library versions give identical pixels (and bytes, tested above). Allow a few edge pixels
    # to move so that a new Pillow rasteriser or libm does not fail the suite; a design change does.
    difference = np.abs(committed - fresh)
    message = f"data/styles/{name}.png differs from generate_style — run `nstdream data styles` and commit"
    assert np.mean(difference.max(axis=-1) > 2) < 0.005, message
    assert difference.mean() < 0.5, message


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
    with pytest.raises(InputError, match="did you mean 'chelsea'"):
        data.content_path("chelsey")


def test_data_dir_override_and_missing_files(tmp_path, monkeypatch):
    monkeypatch.setenv("NSTDREAM_DATA_DIR", str(tmp_path))
    assert data.data_dir() == tmp_path
    with pytest.raises(MissingFileError, match="nstdream data styles") as info:
        data.style_path("spiral")
    assert isinstance(info.value, FileNotFoundError)
    with pytest.raises(MissingFileError, match="python -m nstdream_utils.data content"):
        data.content_path("coffee")
    written = data.write_styles(size=32, names=["spiral"])
    assert written == [tmp_path / "styles" / "spiral.png"]
    assert data.style_path("spiral") == written[0]


def test_main_writes_and_prints_scores(tmp_path, capsys):
    assert data.main(["styles", "--size", "32", "--directory", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out.count("distortion") == len(data.STYLE_NAMES)
    written = sorted(p.name for p in (tmp_path / "styles").iterdir())
    assert written == sorted(f"{name}.png" for name in data.STYLE_NAMES)


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
    assert path.is_file(), f"{path} is missing — run `python -m nstdream_utils.data content`"
    with Image.open(path) as image:
        assert image.mode == "RGB"
        assert max(image.size) <= 512


def test_write_content_reproduces_the_committed_photos(tmp_path):
    pytest.importorskip("skimage")
    for path in data.write_content(tmp_path):
        np.testing.assert_array_equal(_read_png(path), _read_png(REPO_DATA / "content" / path.name))


def test_every_data_file_is_in_licenses():
    licences = (REPO_DATA / "LICENSES.md").read_text(encoding="utf-8")
    files = [p for p in REPO_DATA.rglob("*") if p.is_file() and p.name != "LICENSES.md"]
    assert len(files) >= len(data.STYLE_NAMES) + len(data.CONTENT_NAMES)
    names = [p.relative_to(REPO_DATA).as_posix() for p in files]
    missing = [name for name in names if f"`{name}`" not in licences]
    assert not missing, f"add these to data/LICENSES.md: {missing}"


# --------------------------------------------------------------------------------------------------
# distortion_score and spectral_entropy
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [128, 512])
def test_distortion_score_ranks_the_graded_styles(size):
    scores = [data.distortion_score(data.generate_style(name, size=size)) for name in data.GRADED_STYLES]
    assert scores == sorted(scores) and len(set(scores)) == len(scores), dict(zip(data.GRADED_STYLES, scores))
    assert scores[0] < 0.01 < scores[-1]


def test_spectral_entropy_ranks_the_graded_styles():
    entropies = [data.spectral_entropy(data.generate_style(name, size=256)) for name in data.GRADED_STYLES]
    assert entropies == sorted(entropies), dict(zip(data.GRADED_STYLES, entropies))
    assert all(0.0 <= value <= 1.0 for value in entropies)


@pytest.mark.parametrize("name", ["3d_squares", "circular", "chelsea"])
def test_distortion_score_ignores_resolution(name):
    path = REPO_DATA / ("content" if name in data.CONTENT_NAMES else "styles") / f"{name}.png"
    with Image.open(path) as opened:
        image = opened.convert("RGB")
    base = data.distortion_score(np.asarray(image))
    for scale in (0.75, 1.5, 2.0):
        size = (round(image.width * scale), round(image.height * scale))
        resized = np.asarray(image.resize(size, Image.Resampling.LANCZOS)).astype(np.float32) / 255
        assert data.distortion_score(resized) == pytest.approx(base, rel=0.08), scale


def test_distortion_score_worked_cases():
    assert data.distortion_score(np.full((64, 64, 3), 0.7, np.float32)) == 0.0
    assert data.spectral_entropy(np.full((64, 64, 3), 0.7, np.float32)) == 0.0
    # A luminance ramp from 0 to 1 across 256 pixels changes by 1/255 per pixel.
    ramp = np.tile(np.linspace(0, 1, 256, dtype=np.float32), (256, 1))
    assert data.distortion_score(ramp) == pytest.approx(1 / 255, rel=0.02)
    # uint8, a batch of one and greyscale give the same score as float RGB.
    image = data.generate_style("checkerboard", size=64)
    score = data.distortion_score(image)
    assert data.distortion_score(_to_uint8(image)) == pytest.approx(score)
    assert data.distortion_score(image[None]) == pytest.approx(score)
    grey = image @ np.array([0.299, 0.587, 0.114], np.float32)
    assert data.distortion_score(grey) == pytest.approx(score, rel=1e-4)


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
        data.distortion_score(bad)
    with pytest.raises(InputError, match=pattern):
        data.spectral_entropy(bad)
