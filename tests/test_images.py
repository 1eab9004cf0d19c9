"""Tests for nstdream_utils.images: every odd file is built in tmp_path with Pillow."""

from __future__ import annotations

import io
import os
import struct
import subprocess
import sys
import tempfile
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile

from nstdream_utils import images
from nstdream_utils.errors import InputError, MissingFileError, NstdreamError

TOL = 1 / 255 + 1e-6


def assert_names_path_and_fix(error: BaseException, where: object) -> None:
    """The message names ``where`` (a file or a parameter) and carries a non-empty fix."""
    assert isinstance(error, NstdreamError)
    text = str(error)
    assert str(where) in text, text
    assert error.fix, text
    assert error.fix in text


def save(pil: Image.Image, path: Path, **options) -> Path:
    pil.save(path, **options)
    return path


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bytes(
    width: int, height: int, *, bit_depth: int = 1, colour_type: int = 0, raw: bytes = b"\0"
) -> bytes:
    """A PNG built by hand, so its header may declare any size whatever the data holds."""
    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", zlib.compress(raw))
        + png_chunk(b"IEND", b"")
    )


def noise(height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


# --------------------------------------------------------------------------- loading: modes


def test_rgb_png_loads_exactly(tmp_path):
    pixels = noise(12, 20)
    image = images.load_image(save(Image.fromarray(pixels), tmp_path / "rgb.png"))
    assert image.shape == (12, 20, 3) and image.dtype == np.float32 and image.flags.c_contiguous
    np.testing.assert_allclose(image, pixels / 255.0, atol=1e-6)


def test_tiny_8x8_image(tmp_path):
    image = images.load_image(save(Image.new("RGB", (8, 8), (255, 0, 0)), tmp_path / "tiny.png"))
    assert image.shape == (8, 8, 3)
    np.testing.assert_allclose(image[0, 0], [1.0, 0.0, 0.0])


def test_grayscale_l_and_1_become_three_equal_channels(tmp_path):
    grey = images.load_image(save(Image.new("L", (5, 4), 128), tmp_path / "grey.png"))
    assert grey.shape == (4, 5, 3)
    np.testing.assert_allclose(grey, 128 / 255, atol=1e-6)
    bilevel = Image.new("1", (6, 3), 0)
    bilevel.putpixel((0, 0), 1)
    binary = images.load_image(save(bilevel, tmp_path / "bits.png"))
    assert binary.shape == (3, 6, 3)
    np.testing.assert_allclose(binary[0, 0], 1.0)
    np.testing.assert_allclose(binary[1, 1], 0.0)


def test_rgba_transparent_pixels_become_white(tmp_path):
    pixels = np.zeros((4, 4, 4), np.uint8)
    pixels[..., :3] = (0, 0, 0)  # transparent pixels store black: it must not show
    pixels[0, 0] = (255, 0, 0, 255)  # opaque red
    pixels[0, 1] = (0, 0, 255, 128)  # half-transparent blue
    image = images.load_image(save(Image.fromarray(pixels, "RGBA"), tmp_path / "rgba.png"))
    assert image.shape == (4, 4, 3)
    np.testing.assert_allclose(image[0, 0], [1, 0, 0], atol=1e-6)
    a = 128 / 255
    np.testing.assert_allclose(image[0, 1], [1 - a, 1 - a, 1], atol=1e-6)
    np.testing.assert_allclose(image[3, 3], [1, 1, 1], atol=1e-6)


def test_la_grey_with_alpha_over_white(tmp_path):
    image = images.load_image(save(Image.new("LA", (3, 3), (0, 0)), tmp_path / "la.png"))
    np.testing.assert_allclose(image, 1.0)


def test_palette_png(tmp_path):
    palette = Image.new("P", (4, 2), 0)
    palette.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    palette.putpixel((1, 0), 1)
    path = save(palette, tmp_path / "palette.png")
    assert Image.open(path).mode == "P"
    image = images.load_image(path)
    np.testing.assert_allclose(image[0, 0], [1, 0, 0])
    np.testing.assert_allclose(image[0, 1], [0, 0, 1])


def test_palette_with_transparency_over_white(tmp_path):
    palette = Image.new("P", (4, 2), 0)
    palette.putpalette([0, 0, 0, 0, 255, 0] + [0] * 762)  # index 0 is black but transparent
    palette.putpixel((2, 1), 1)
    path = save(palette, tmp_path / "palette_t.png", transparency=0)
    image = images.load_image(path)
    np.testing.assert_allclose(image[0, 0], [1, 1, 1])
    np.testing.assert_allclose(image[1, 2], [0, 1, 0])


def test_rgb_and_grey_with_trns_colour_over_white(tmp_path):
    colour = (10, 20, 30)
    rgb = images.load_image(save(Image.new("RGB", (3, 3), colour), tmp_path / "t.png", transparency=colour))
    np.testing.assert_allclose(rgb, 1.0)
    grey = images.load_image(save(Image.new("L", (3, 3), 7), tmp_path / "g.png", transparency=7))
    np.testing.assert_allclose(grey, 1.0)


def test_cmyk_jpeg_gives_sane_rgb(tmp_path):
    cmyk = Image.new("CMYK", (16, 16), (255, 0, 0, 0))  # pure cyan
    cmyk.paste((0, 0, 0, 255), (0, 8, 16, 16))  # bottom half black
    path = save(cmyk, tmp_path / "cmyk.jpg", quality=95)
    assert Image.open(path).mode == "CMYK"
    image = images.load_image(path)
    assert image.shape == (16, 16, 3)
    np.testing.assert_allclose(image[2, 2], [0, 1, 1], atol=0.05)
    np.testing.assert_allclose(image[13, 13], [0, 0, 0], atol=0.05)


def test_16_bit_grey_png_scaled_by_65535_not_clipped(tmp_path):
    values = np.array([[0, 255, 256, 300], [1000, 32768, 60000, 65535]], np.uint16)
    path = save(Image.fromarray(values), tmp_path / "deep.png")
    assert Image.open(path).mode.startswith("I")
    image = images.load_image(path)
    np.testing.assert_allclose(image[..., 0], values / 65535.0, rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(image[..., 0], image[..., 2])
    assert image.max() == 1.0 and image[0, 3, 0] < 0.01  # 300 is dark, not clipped to white
    assert image[0, 2, 0] != image[0, 3, 0]  # 256 and 300 stay distinct


def test_16_bit_colour_png_keeps_its_range(tmp_path):
    row = struct.pack(">HHHHHH", 0x8000, 0xFFFF, 0x0000, 0x0100, 0x4000, 0xC000)
    path = tmp_path / "deep_rgb.png"
    path.write_bytes(png_bytes(2, 1, bit_depth=16, colour_type=2, raw=b"\0" + row))
    image = images.load_image(path)
    assert image.shape == (1, 2, 3)
    np.testing.assert_allclose(image[0, 0], [0.5, 1.0, 0.0], atol=TOL)
    np.testing.assert_allclose(image[0, 1], [0.0, 0.25, 0.75], atol=TOL)


def test_32_bit_int_and_float_tiff(tmp_path):
    def tiff(values, dtype, name):
        return images.load_image(save(Image.fromarray(np.array([values], dtype)), tmp_path / name))

    ints = tiff([0, 32768, 70000], np.int32, "i.tif")  # mode "I": 16-bit scale, above 65535 clips
    np.testing.assert_allclose(ints[0, :, 0], [0, 32768 / 65535, 1.0], atol=1e-6)
    unit = tiff([0.0, 0.25, 1.0], np.float32, "f1.tif")  # mode "F" within [0, 1]
    np.testing.assert_allclose(unit[0, :, 1], [0.0, 0.25, 1.0], atol=1e-6)
    bytes_range = tiff([0.0, 51.0, 255.0], np.float32, "f255.tif")  # mode "F" in [0, 255]
    np.testing.assert_allclose(bytes_range[0, :, 2], [0.0, 0.2, 1.0], atol=1e-6)


def test_exif_orientation_6_is_applied(tmp_path):
    stored = Image.new("RGB", (48, 24), (0, 0, 0))  # wide as stored
    stored.paste((255, 0, 0), (0, 0, 8, 8))  # red mark in the stored top-left corner
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    path = save(stored, tmp_path / "phone.jpg", exif=exif.tobytes(), quality=95)
    with Image.open(path) as stored_file:
        assert stored_file.size == (48, 24) and stored_file.getexif()[0x0112] == 6
    image = images.load_image(path)
    assert image.shape == (48, 24, 3)  # tall once upright
    top_right = image[:8, -8:].mean(axis=(0, 1))
    top_left = image[:8, :8].mean(axis=(0, 1))
    assert top_right[0] > 0.8 and top_right[1:].max() < 0.2  # the mark turned with the picture
    assert top_left.max() < 0.2


def test_animated_gif_gives_first_frame(tmp_path):
    frames = [Image.new("RGB", (4, 4), colour) for colour in [(255, 0, 0), (0, 255, 0)]]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:])
    assert Image.open(path).n_frames == 2
    np.testing.assert_allclose(images.load_image(path)[0, 0], [1, 0, 0])


def test_big_image_loaded_then_resized(tmp_path):
    big = Image.new("RGB", (1200, 900), (200, 100, 50))
    image = images.load_image(save(big, tmp_path / "big.jpg", quality=90))
    small = images.resize(image, longest_side=256)
    assert small.shape == (192, 256, 3) and small.dtype == np.float32
    np.testing.assert_allclose(small.mean(axis=(0, 1)), [200 / 255, 100 / 255, 50 / 255], atol=0.02)


def test_accepts_str_and_tilde_paths(tmp_path, monkeypatch):
    save(Image.new("RGB", (3, 2)), tmp_path / "x.png")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert images.load_image("~/x.png").shape == (2, 3, 3)
    assert images.load_image(str(tmp_path / "x.png")).shape == (2, 3, 3)


# --------------------------------------------------------------------------- loading: refusals


def test_missing_file(tmp_path):
    path = tmp_path / "nope.jpg"
    with pytest.raises(MissingFileError) as excinfo:
        images.load_image(path)
    assert isinstance(excinfo.value, FileNotFoundError)
    assert_names_path_and_fix(excinfo.value, path)


def test_missing_folder(tmp_path):
    path = tmp_path / "photos" / "cat.jpg"
    with pytest.raises(MissingFileError) as excinfo:
        images.validate_image_path(path)
    assert_names_path_and_fix(excinfo.value, path)
    assert "folder" in excinfo.value.fix


def test_directory_is_refused(tmp_path):
    with pytest.raises(InputError) as excinfo:
        images.load_image(tmp_path)
    assert_names_path_and_fix(excinfo.value, tmp_path)
    assert "folder" in str(excinfo.value)


def test_text_file_named_jpg(tmp_path):
    path = tmp_path / "photo.jpg"
    path.write_text("this is not an image\n" * 20)
    for call in (images.load_image, images.validate_image_path):
        with pytest.raises(InputError) as excinfo:
            call(path)
        assert_names_path_and_fix(excinfo.value, path)
        assert "not an image" in str(excinfo.value)
        assert excinfo.value.__cause__ is not None


def test_empty_file(tmp_path):
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    with pytest.raises(InputError) as excinfo:
        images.load_image(path)
    assert_names_path_and_fix(excinfo.value, path)
    assert "not an image" in str(excinfo.value)


@pytest.mark.parametrize("fmt, name", [("JPEG", "half.jpg"), ("PNG", "half.png")])
def test_truncated_file_is_refused_and_truncated_loading_stays_off(tmp_path, fmt, name):
    buffer = io.BytesIO()
    Image.fromarray(noise(64, 64)).save(buffer, fmt)
    data = buffer.getvalue()
    path = tmp_path / name
    path.write_bytes(data[: len(data) // 2])
    images.validate_image_path(path)  # the header is intact: only decoding finds the damage
    with pytest.raises(InputError) as excinfo:
        images.load_image(path)
    assert_names_path_and_fix(excinfo.value, path)
    assert "truncated" in str(excinfo.value)
    assert isinstance(excinfo.value.__cause__, OSError)
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_truncated_file_refused_even_if_someone_enabled_truncated_loading(tmp_path, monkeypatch):
    buffer = io.BytesIO()
    Image.fromarray(noise(64, 64)).save(buffer, "JPEG")
    path = tmp_path / "half.jpg"
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    with pytest.raises(InputError, match="truncated"):
        images.load_image(path)
    assert ImageFile.LOAD_TRUNCATED_IMAGES is True  # restored for whoever set it


def test_zero_size_header(tmp_path):
    path = tmp_path / "zero.png"
    path.write_bytes(png_bytes(0, 5))
    with pytest.raises(InputError) as excinfo:
        images.load_image(path)
    assert_names_path_and_fix(excinfo.value, path)


def test_decompression_bomb_over_pillows_limit(tmp_path):
    path = tmp_path / "bomb.png"
    path.write_bytes(png_bytes(20000, 20000))  # 400 megapixels declared in a ~60-byte file
    assert path.stat().st_size < 100
    for call in (images.load_image, images.validate_image_path):
        with pytest.raises(InputError) as excinfo:
            call(path)
        assert_names_path_and_fix(excinfo.value, path)
        assert "decompression bomb" in str(excinfo.value) and "max_pixels" in excinfo.value.fix
        assert isinstance(excinfo.value.__cause__, Image.DecompressionBombError)


def test_over_our_cap_is_refused_from_the_header_before_decoding(tmp_path, monkeypatch):
    path = tmp_path / "huge.png"
    path.write_bytes(png_bytes(10000, 5000))  # 50 MP: over our 40 MP cap, under Pillow's 89 MP
    assert 10000 * 5000 > images.DEFAULT_MAX_PIXELS

    def no_decoding(self):
        raise AssertionError("decoded an image over the pixel cap")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    with pytest.raises(InputError) as excinfo:
        images.load_image(path)
    assert_names_path_and_fix(excinfo.value, path)
    assert "10000×5000 = 50.0 megapixels" in str(excinfo.value) and "40 megapixels" in str(excinfo.value)
    assert Image.open(path).size == (10000, 5000)  # info reports, it does not refuse


def test_max_pixels_argument(tmp_path):
    path = save(Image.new("RGB", (20, 20)), tmp_path / "small.png")
    with pytest.raises(InputError) as excinfo:
        images.load_image(path, max_pixels=100)
    assert_names_path_and_fix(excinfo.value, path)
    assert images.load_image(path, max_pixels=400).shape == (20, 20, 3)
    assert images.load_image(path, max_pixels=None).shape == (20, 20, 3)
    for bad in (0, -1, 1.5, True, "big"):
        with pytest.raises(InputError) as excinfo:
            images.load_image(path, max_pixels=bad)
        assert_names_path_and_fix(excinfo.value, "max_pixels")


def test_pillow_bomb_warning_and_error_become_input_error(tmp_path, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # Pillow warns above 100 pixels, refuses above 200
    warn_zone = save(Image.new("RGB", (12, 12)), tmp_path / "warn.png")  # 144 pixels
    error_zone = save(Image.new("RGB", (15, 15)), tmp_path / "error.png")  # 225 pixels
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no DecompressionBombWarning may leak out
        assert images.load_image(warn_zone).shape == (12, 12, 3)  # our cap (40 MP) allows it
        with pytest.raises(InputError) as excinfo:
            images.load_image(warn_zone, max_pixels=50)  # our cap refuses it, from the header
        assert_names_path_and_fix(excinfo.value, warn_zone)
        assert "12×12" in str(excinfo.value) and "decompression bomb" in str(excinfo.value)
        with pytest.raises(InputError) as excinfo:
            images.load_image(error_zone)
        assert_names_path_and_fix(excinfo.value, error_zone)
        assert isinstance(excinfo.value.__cause__, Image.DecompressionBombError)


def test_unreadable_file(tmp_path):
    path = save(Image.new("RGB", (2, 2)), tmp_path / "secret.png")
    path.chmod(0)
    try:
        try:
            path.read_bytes()
        except PermissionError:
            pass
        else:
            pytest.skip("running as root (or similar): chmod 0 does not stop reads")
        with pytest.raises(InputError) as excinfo:
            images.load_image(path)
        assert_names_path_and_fix(excinfo.value, path)
    finally:
        path.chmod(0o644)


# --------------------------------------------------------------------------- validation


def test_validate_image_path_returns_path_without_decoding_pixels(tmp_path, monkeypatch):
    path = save(Image.new("RGB", (2000, 1500)), tmp_path / "photo.png")

    def no_decode(self, *args, **kwargs):
        raise AssertionError("validate_image_path decoded the pixels; the header is enough")

    with monkeypatch.context() as patch:
        patch.setattr(Image.Image, "load", no_decode)
        assert images.validate_image_path(str(path)) == path
    with pytest.raises(InputError) as excinfo:
        images.validate_image_path(path, max_pixels=1000)
    assert_names_path_and_fix(excinfo.value, path)


def test_images_does_not_import_tensorflow():
    code = "import sys, nstdream_utils.images; sys.exit('tensorflow' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


# --------------------------------------------------------------------------- resize


class FakeTensor:
    """Duck-types a TensorFlow tensor: only ``__array__``."""

    def __init__(self, array: np.ndarray) -> None:
        self._array = array

    def __array__(self, dtype=None, copy=None):
        return self._array if dtype is None else self._array.astype(dtype)


def test_resize_longest_side_keeps_aspect():
    image = np.random.default_rng(0).random((300, 600, 3), dtype=np.float32)
    assert images.resize(image, longest_side=200).shape == (100, 200, 3)
    assert images.resize(image, size=200).shape == (100, 200, 3)
    assert images.resize(image, longest_side=1200).shape == (600, 1200, 3)
    assert images.resize(np.zeros((1, 500, 3), np.float32), longest_side=10).shape == (1, 10, 3)


def test_resize_exact_is_height_width():
    image = np.zeros((30, 40, 3), np.float32)
    assert images.resize(image, exact=(10, 25)).shape == (10, 25, 3)
    assert images.resize(image, size=(10, 25)).shape == (10, 25, 3)


def test_resize_keeps_float32_unit_range_and_batch_axis():
    image = np.zeros((1, 32, 32, 3), np.float32)
    image[0, :, 16:] = 1.0  # a sharp edge makes Lanczos ring
    out = images.resize(FakeTensor(image), exact=(13, 50))
    assert out.shape == (1, 13, 50, 3) and out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 1.0


def test_resize_constant_image_stays_constant_for_every_method():
    image = np.full((20, 30, 3), 0.25, np.float32)
    for method in images.RESIZE_METHODS:
        np.testing.assert_allclose(images.resize(image, exact=(7, 11), method=method), 0.25, atol=1e-5)


def test_resize_uint8_input_and_same_size_copy():
    pixels = noise(6, 6)
    out = images.resize(pixels, exact=(6, 6))
    np.testing.assert_allclose(out, pixels / 255.0, atol=1e-6)
    floats = pixels / np.float32(255)
    same = images.resize(floats, exact=(6, 6))
    assert not np.shares_memory(same, floats)


@pytest.mark.parametrize(
    "kwargs, where",
    [
        ({"longest_side": 0}, "longest_side"),
        ({"longest_side": -5}, "longest_side"),
        ({"size": 0}, "size"),
        ({"exact": (0, 10)}, "exact[0]"),
        ({"exact": (10, -1)}, "exact[1]"),
        ({"exact": (10,)}, "exact"),
        ({"size": "big"}, "size"),
        ({"longest_side": 2.5}, "longest_side"),
        ({}, "resize"),
        ({"longest_side": 10, "exact": (5, 5)}, "resize"),
        ({"longest_side": 10, "method": "lanczso"}, "method"),
    ],
)
def test_resize_errors_name_the_parameter_and_fix(kwargs, where):
    with pytest.raises(InputError) as excinfo:
        images.resize(np.zeros((10, 10, 3), np.float32), **kwargs)
    assert_names_path_and_fix(excinfo.value, where)


def test_resize_unknown_method_lists_the_methods():
    with pytest.raises(InputError) as excinfo:
        images.resize(np.zeros((4, 4, 3), np.float32), size=2, method="bicubc")
    assert all(name in excinfo.value.fix for name in images.RESIZE_METHODS)


@pytest.mark.parametrize(
    "bad, what",
    [
        (np.zeros((2, 4, 4, 3), np.float32), "batch of 2"),
        (np.zeros((4, 4), np.float32), "shape"),
        (np.zeros((4, 4, 4), np.float32), "shape"),
        (np.zeros((0, 4, 3), np.float32), "shape"),
        (np.full((4, 4, 3), np.nan, np.float32), "NaN"),
        (np.zeros((4, 4, 3), np.int64), "dtype"),
    ],
)
def test_bad_images_are_refused(bad, what):
    for call in (lambda x: images.resize(x, size=2), images.to_pil, lambda x: images.ensure_min_size(x, 75)):
        with pytest.raises(InputError, match=what) as excinfo:
            call(bad)
        assert_names_path_and_fix(excinfo.value, "image")


# --------------------------------------------------------------------------- ensure_min_size


def test_ensure_min_size_upscales_the_shorter_side():
    assert images.ensure_min_size(np.zeros((8, 8, 3), np.float32), 75).shape == (75, 75, 3)
    assert images.ensure_min_size(np.zeros((8, 16, 3), np.float32), 75).shape == (75, 150, 3)
    assert images.ensure_min_size(np.zeros((60, 20, 3), np.float32), 75).shape == (225, 75, 3)
    assert images.ensure_min_size(np.zeros((1, 10, 300, 3), np.float32), 75).shape == (1, 75, 2250, 3)


def test_ensure_min_size_leaves_large_images_alone():
    image = np.random.default_rng(1).random((80, 100, 3), dtype=np.float32)
    out = images.ensure_min_size(image, 75)
    assert out is image or np.shares_memory(out, image)
    assert images.ensure_min_size(noise(80, 80), 75).dtype == np.float32


@pytest.mark.parametrize("bad", [0, -3, 7.5, None])
def test_ensure_min_size_bad_min_side(bad):
    with pytest.raises(InputError) as excinfo:
        images.ensure_min_size(np.zeros((8, 8, 3), np.float32), bad)
    assert_names_path_and_fix(excinfo.value, "min_side")


# --------------------------------------------------------------------------- PIL conversion


def test_to_pil_clips_rounds_and_accepts_batches():
    image = np.array([[[-0.5, 0.5, 1.5], [0.0, 1 / 255, 0.998]]], np.float32)
    pil = images.to_pil(image[None])
    assert pil.mode == "RGB" and pil.size == (2, 1)
    np.testing.assert_array_equal(np.asarray(pil), [[[0, 128, 255], [0, 1, 254]]])


def test_to_pil_uint8_float16_and_tensor_like():
    pixels = noise(3, 5)
    np.testing.assert_array_equal(np.asarray(images.to_pil(pixels)), pixels)
    half = images.to_pil(FakeTensor(np.full((2, 2, 3), 0.5, np.float16)))
    np.testing.assert_array_equal(np.asarray(half), 128)


# --------------------------------------------------------------------------- saving


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_save_then_load_round_trip_within_one_level(tmp_path):
    image = np.random.default_rng(2).random((1, 17, 23, 3), dtype=np.float32)
    path = images.save_image(FakeTensor(image), tmp_path / "out.png")
    assert path == tmp_path / "out.png"
    assert Image.open(path).format == "PNG"
    loaded = images.load_image(path)
    assert loaded.shape == (17, 23, 3)
    assert np.abs(loaded - image[0]).max() <= 0.5 / 255 + 1e-6
    assert leftovers(tmp_path) == []


def test_save_refuses_wrong_suffix(tmp_path):
    path = tmp_path / "out.jpg"
    with pytest.raises(InputError) as excinfo:
        images.save_image(np.zeros((2, 2, 3), np.float32), path)
    assert_names_path_and_fix(excinfo.value, path)
    assert not path.exists()


def test_save_refuses_missing_folder(tmp_path):
    path = tmp_path / "results" / "out.png"
    with pytest.raises(InputError) as excinfo:
        images.save_image(np.zeros((2, 2, 3), np.float32), path)
    assert_names_path_and_fix(excinfo.value, path)
    assert "mkdir" in excinfo.value.fix


def test_save_refuses_read_only_folder(tmp_path, monkeypatch):
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        if os.access(folder, os.W_OK):  # root: simulate the read-only folder instead
            def denied(*args, **kwargs):
                raise PermissionError(13, "Permission denied")

            monkeypatch.setattr(tempfile, "TemporaryFile", denied)
        path = folder / "out.png"
        with pytest.raises(InputError) as excinfo:
            images.save_image(np.zeros((2, 2, 3), np.float32), path)
        assert_names_path_and_fix(excinfo.value, path)
        assert "not writable" in str(excinfo.value)
    finally:
        folder.chmod(0o755)


def test_save_failing_at_rename_leaves_nothing(tmp_path, monkeypatch):
    def crash(*args, **kwargs):
        raise OSError("simulated crash before the rename")

    monkeypatch.setattr(os, "replace", crash)
    path = tmp_path / "out.png"
    with pytest.raises(OSError, match="simulated"):
        images.save_image(np.zeros((4, 4, 3), np.float32), path)
    assert not path.exists()
    assert list(tmp_path.iterdir()) == []


def test_save_failing_in_encoder_keeps_old_file(tmp_path, monkeypatch):
    path = tmp_path / "out.png"
    images.save_image(np.ones((4, 4, 3), np.float32), path)
    before = path.read_bytes()

    def broken_encoder(self, *args, **kwargs):
        raise OSError("encoder failed")

    monkeypatch.setattr(Image.Image, "save", broken_encoder)
    with pytest.raises(OSError, match="encoder"):
        images.save_image(np.zeros((4, 4, 3), np.float32), path)
    assert path.read_bytes() == before
    assert leftovers(tmp_path) == []


def test_save_refuses_bad_image_before_writing(tmp_path):
    path = tmp_path / "out.png"
    with pytest.raises(InputError, match="NaN"):
        images.save_image(np.full((2, 2, 3), np.nan, np.float32), path)
    assert list(tmp_path.iterdir()) == []


def test_check_output_path_is_re_exported():
    from nstdream_utils import files

    assert images.check_output_path is files.check_output_path
