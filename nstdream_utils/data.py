"""Style images drawn by code, content photos from scikit-image, and a busyness score.

The paper (Al-Khazraji, Abbas & Jamil 2022, Fig. 5) styles its photos with four geometric abstract
images — *triangle*, *circular*, *spiral* and *3D squares* — and reports that distorted (busy) style
images give a higher NST loss and a lower dream loss. The paper's images are not published, so this
module draws look-alikes (:data:`PAPER_STYLES`) plus four images of graded busyness
(:data:`GRADED_STYLES`, least to most busy) to test that claim, and copies three permissively
licensed photos from scikit-image (:data:`CONTENT_NAMES`). :func:`distortion_score` measures how busy
an image is.

Everything is deterministic: the drawings use PIL's integer rasteriser or float64 NumPy arithmetic,
and ``noise`` uses the PCG64 bit stream with a fixed seed, so regenerating gives identical PNG files.
Shapes are drawn on a canvas at least twice the size (and at least 1024 px) and box-averaged down,
which anti-aliases their edges.

Files live in :func:`data_dir` (``<repo>/data``, or ``$NSTDREAM_DATA_DIR``); regenerate them with
``nstdream data styles`` / ``nstdream data content`` or ``python -m nstdream_utils.data`` (both).

Floor 5: imports NumPy, PIL, SciPy and the lower-floor :mod:`nstdream_utils.errors` and
:mod:`nstdream_utils.files`, never TensorFlow; scikit-image only inside :func:`write_content`.

Example::

    >>> from nstdream_utils import data
    >>> image = data.generate_style("spiral", size=64)
    >>> image.shape, image.dtype
    ((64, 64, 3), dtype('float32'))
    >>> data.distortion_score(data.generate_style("smooth_gradient")) < data.distortion_score(image)
    True
"""

from __future__ import annotations

import argparse
import difflib
import io
import math
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

from nstdream_utils.errors import InputError, MissingFileError, NstdreamError
from nstdream_utils.files import atomic_write_bytes

__all__ = [
    "PAPER_STYLES",
    "GRADED_STYLES",
    "STYLE_NAMES",
    "CONTENT_NAMES",
    "DATA_DIR",
    "NOISE_SEED",
    "SCORE_PIXELS",
    "CONTENT_MAX_SIDE",
    "data_dir",
    "generate_style",
    "write_styles",
    "write_content",
    "style_path",
    "content_path",
    "distortion_score",
    "spectral_entropy",
    "main",
]

#: The paper's four style images (Fig. 5), drawn as look-alikes.
PAPER_STYLES = ("triangle", "circular", "spiral", "3d_squares")
#: Extra styles ordered from least to most busy; :func:`distortion_score` ranks them in this order.
GRADED_STYLES = ("smooth_gradient", "stripes", "checkerboard", "noise")
#: Every style name: the paper's first, then the graded ones.
STYLE_NAMES = PAPER_STYLES + GRADED_STYLES
#: Content photos copied from ``skimage.data`` (licences in ``data/LICENSES.md``).
CONTENT_NAMES = ("astronaut", "chelsea", "coffee")
#: Seed of the PCG64 stream behind the ``noise`` style.
NOISE_SEED = 2022
#: :func:`distortion_score` and :func:`spectral_entropy` resample images to about this many pixels.
SCORE_PIXELS = 256 * 256
#: Longest side of the saved content photos.
CONTENT_MAX_SIDE = 512

_ENV_VAR = "NSTDREAM_DATA_DIR"
_MIN_SIZE, _MAX_SIZE = 16, 4096
_CANVAS_MIN = 1024  # shapes are drawn on a canvas at least this wide, then averaged down

# A vivid palette (after Sasha Trubetskoy's "20 distinct colours"), and two neutrals.
_PALETTE = (
    (230, 25, 75),  # red
    (255, 225, 25),  # yellow
    (0, 130, 200),  # blue
    (60, 180, 75),  # green
    (245, 130, 48),  # orange
    (145, 30, 180),  # purple
    (70, 240, 240),  # cyan
    (240, 50, 230),  # magenta
)
_INK = (20, 20, 35)
_PAPER = (250, 245, 230)


def data_dir() -> Path:
    """The data folder: ``$NSTDREAM_DATA_DIR`` if set, else ``data/`` at the repository root.

    Read at each call, so setting the variable later takes effect. An installed (non-editable)
    package has no ``data/`` beside it: set ``NSTDREAM_DATA_DIR`` and run ``nstdream data styles``.
    """
    override = os.environ.get(_ENV_VAR)
    if override:
        return Path(override).expanduser()
    return Path(__file__).resolve().parent.parent / "data"


#: :func:`data_dir` as it was when the module was imported.
DATA_DIR = data_dir()


# --------------------------------------------------------------------------------------------------
# Drawing helpers
# --------------------------------------------------------------------------------------------------


def _hash(*values: int) -> int:
    """A small deterministic integer hash (pure Python, same on every machine)."""
    state = 0x2545F491
    for value in values:
        state = (state * 1_000_003 + value + 0x9E3779B9) & 0xFFFFFFFF
        state ^= state >> 15
        state = (state * 0x2C1B3C6D) & 0xFFFFFFFF
        state ^= state >> 12
    return state


def _lighten(colour: tuple[int, int, int], amount: float) -> tuple[int, int, int]:
    return tuple(round(c + (255 - c) * amount) for c in colour)  # type: ignore[return-value]


def _darken(colour: tuple[int, int, int], factor: float) -> tuple[int, int, int]:
    return tuple(round(c * factor) for c in colour)  # type: ignore[return-value]


def _supersample(size: int) -> int:
    """Drawing scale: 2×, or more for small images, so the canvas is ≥ 1024 px and lines keep their width."""
    return max(2, -(-_CANVAS_MIN // size))


def _canvas(size: int, background: tuple[int, int, int]) -> tuple[Image.Image, ImageDraw.ImageDraw, int]:
    """An RGB canvas at :func:`_supersample` times ``size``, its drawer, and its side."""
    side = size * _supersample(size)
    image = Image.new("RGB", (side, side), background)
    return image, ImageDraw.Draw(image), side


def _reduce(image: Image.Image, size: int) -> np.ndarray:
    """Average the supersampled blocks (PIL's exact integer box filter) into ``uint8 [size, size, 3]``."""
    return np.asarray(image.reduce(_supersample(size)), dtype=np.uint8).copy()


def _composite(base: Image.Image, layer: Image.Image, opacity: int) -> Image.Image:
    """Lay an RGBA ``layer`` (drawn opaque) over ``base`` at ``opacity`` out of 255."""
    alpha = layer.getchannel("A").point(lambda a: a * opacity // 255)
    layer.putalpha(alpha)
    return Image.alpha_composite(base.convert("RGBA"), layer).convert("RGB")


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates ``(y, x)`` in ``[0, 1)`` on the supersampled grid, float64."""
    side = size * _supersample(size)
    coords = (np.arange(side, dtype=np.float64) + 0.5) / side
    return np.meshgrid(coords, coords, indexing="ij")


def _reduce_array(pixels: np.ndarray, size: int) -> np.ndarray:
    """Average the blocks of a supersampled ``uint8`` array down to ``[size, size, 3]``, rounding half up."""
    factor = _supersample(size)
    blocks = pixels.astype(np.uint32).reshape(size, factor, size, factor, 3)
    count = factor * factor
    return ((blocks.sum(axis=(1, 3)) + count // 2) // count).astype(np.uint8)


def _to_uint8(values: np.ndarray) -> np.ndarray:
    """float64 in ``[0, 1]`` → uint8, rounding half up."""
    return np.floor(np.clip(values, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


_PALETTE_ARRAY = np.array(_PALETTE, dtype=np.uint8)


# --------------------------------------------------------------------------------------------------
# The styles; each returns uint8 [size, size, 3]
# --------------------------------------------------------------------------------------------------


def _triangle(size: int) -> np.ndarray:
    """A tiling of coloured triangles under three large translucent overlapping triangles."""
    image, draw, side = _canvas(size, _INK)
    edge = side / 8
    height = edge * math.sqrt(3) / 2
    line = max(1, round(side / 256))
    for row in range(-1, math.ceil(side / height) + 1):
        top, bottom = row * height, (row + 1) * height
        shift = -edge / 2 if row % 2 else 0.0
        for col in range(-1, math.ceil(side / edge) + 2):
            x = col * edge + shift
            up = [(x, bottom), (x + edge, bottom), (x + edge / 2, top)]
            down = [(x + edge / 2, top), (x + 3 * edge / 2, top), (x + edge, bottom)]
            for kind, corners in enumerate((up, down)):
                colour = _PALETTE[_hash(row, col, kind) % len(_PALETTE)]
                draw.polygon(corners, fill=colour, outline=_INK, width=line)
    # (centre x, centre y, radius, rotation in turns, colour), as fractions of the side.
    for cx, cy, radius, turn, colour in (
        (0.34, 0.40, 0.40, 0.25, _PAPER),
        (0.68, 0.58, 0.36, 0.75, _PALETTE[2]),
        (0.50, 0.70, 0.28, 0.10, _PALETTE[0]),
    ):
        layer = Image.new("RGBA", image.size, (0, 0, 0, 0))
        corners = [
            (
                side * (cx + radius * math.cos(2 * math.pi * (turn + k / 3))),
                side * (cy + radius * math.sin(2 * math.pi * (turn + k / 3))),
            )
            for k in range(3)
        ]
        ImageDraw.Draw(layer).polygon(corners, fill=colour + (255,), outline=_INK + (255,), width=4 * line)
        image = _composite(image, layer, 150)
    return _reduce(image, size)


def _circular(size: int) -> np.ndarray:
    """Overlapping sets of concentric coloured rings, some opaque and some translucent."""
    image, _, side = _canvas(size, _INK)
    ring = side / 44
    # (centre x, centre y, outer radius, opacity), as fractions of the side.
    for index, (cx, cy, radius, opacity) in enumerate(
        (
            (0.30, 0.30, 0.40, 255),
            (0.78, 0.22, 0.30, 200),
            (0.66, 0.72, 0.42, 255),
            (0.16, 0.82, 0.30, 200),
            (0.47, 0.52, 0.20, 170),
            (0.95, 0.95, 0.22, 255),
        )
    ):
        layer = Image.new("RGBA", image.size, (0, 0, 0, 0))
        draw = ImageDraw.Draw(layer)
        for k in range(round(radius * side / ring), 0, -1):
            r = k * ring
            colour = _PALETTE[(3 * index + k) % len(_PALETTE)] if k % 3 else _PAPER
            box = [cx * side - r, cy * side - r, cx * side + r, cy * side + r]
            draw.ellipse(box, fill=colour + (255,))
        image = _composite(image, layer, opacity)
    return _reduce(image, size)


def _spiral(size: int) -> np.ndarray:
    """Sixteen logarithmic spiral arms in the palette colours, woven with a counter-spiral of dark bands."""
    y, x = _grid(size)
    y, x = y - 0.5, x - 0.5
    radius = np.hypot(x, y)
    turn = np.arctan2(y, x) / (2 * np.pi)  # in [-0.5, 0.5]
    log_radius = np.log(np.maximum(radius, 1e-9))
    # The arm counts (16 and 24) are multiples of the colour and parity periods, so the bands join
    # up seamlessly where the angle wraps from +π to -π.
    arms = np.floor(16 * turn + 3.0 * log_radius).astype(np.int64) % len(_PALETTE)
    weave = np.floor(24 * turn - 5.0 * log_radius).astype(np.int64) % 2
    pixels = _PALETTE_ARRAY[arms]
    dark = (pixels.astype(np.float64) * 0.3).astype(np.uint8)
    pixels = np.where(weave[..., None] == 1, dark, pixels)
    pixels[radius < 0.03] = _INK
    return _reduce_array(pixels, size)


def _cubes(size: int) -> np.ndarray:
    """Isometric cubes ("tumbling blocks"): each a hexagon of a light top, a mid left, a dark right."""
    image, draw, side = _canvas(size, _INK)
    edge = side / 8
    width = math.sqrt(3) * edge
    line = max(1, round(side / 300))
    for row in range(-1, math.ceil(side / (1.5 * edge)) + 2):
        cy = row * 1.5 * edge
        shift = width / 2 if row % 2 else 0.0
        for col in range(-1, math.ceil(side / width) + 2):
            cx = col * width + shift
            top, bottom, centre = (cx, cy - edge), (cx, cy + edge), (cx, cy)
            upper_right, lower_right = (cx + width / 2, cy - edge / 2), (cx + width / 2, cy + edge / 2)
            upper_left, lower_left = (cx - width / 2, cy - edge / 2), (cx - width / 2, cy + edge / 2)
            base = _PALETTE[_hash(row, col) % len(_PALETTE)]
            faces = (
                ([top, upper_right, centre, upper_left], _lighten(base, 0.55)),
                ([upper_left, centre, bottom, lower_left], base),
                ([centre, upper_right, lower_right, bottom], _darken(base, 0.45)),
            )
            for corners, colour in faces:
                draw.polygon(corners, fill=colour, outline=_INK, width=line)
    return _reduce(image, size)


def _smooth_gradient(size: int) -> np.ndarray:
    """A rainbow running diagonally, paling towards the bottom: no edges at all."""
    # No edges to anti-alias: evaluate at the final size directly.
    coords = (np.arange(size, dtype=np.float64) + 0.5) / size
    y, x = np.meshgrid(coords, coords, indexing="ij")
    hue = 0.8 * (0.75 * x + 0.25 * y)  # stops before red comes round again
    rgb = np.stack(
        [
            np.clip(np.abs(6 * hue - 3) - 1, 0, 1),
            np.clip(2 - np.abs(6 * hue - 2), 0, 1),
            np.clip(2 - np.abs(6 * hue - 4), 0, 1),
        ],
        axis=-1,
    )
    paler = 0.45 * y[..., None]
    return _to_uint8(rgb * (1 - paler) + paler)


def _stripes(size: int) -> np.ndarray:
    """Ten broad diagonal stripes of the palette colours."""
    y, x = _grid(size)
    index = np.floor(5 * (x + y)).astype(np.int64) % len(_PALETTE)
    return _reduce_array(_PALETTE_ARRAY[index], size)


def _checkerboard(size: int) -> np.ndarray:
    """A 16×16 checkerboard: dark squares alternating with squares of every palette colour."""
    y, x = _grid(size)
    cells = 16
    row, col = np.floor(cells * y).astype(np.int64), np.floor(cells * x).astype(np.int64)
    pixels = _PALETTE_ARRAY[(row // 2 * 3 + col // 2 * 5 + row) % len(_PALETTE)]
    pixels = np.where(((row + col) % 2 == 1)[..., None], np.array(_INK, dtype=np.uint8), pixels)
    return _reduce_array(pixels, size)


def _noise(size: int) -> np.ndarray:
    """Uniform random colours on a 128×128 grid of cells (PCG64, seed :data:`NOISE_SEED`)."""
    cells = 128
    # Raw PCG64 output is fixed by the algorithm and seed (unlike distribution methods, which NumPy
    # may change between versions); keep the top byte of each 64-bit word.
    raw = np.random.PCG64(NOISE_SEED).random_raw(cells * cells * 3)
    pixels = (raw >> np.uint64(56)).astype(np.uint8).reshape(cells, cells, 3)
    return np.asarray(Image.fromarray(pixels).resize((size, size), Image.Resampling.NEAREST))


_DRAWERS: dict[str, Callable[[int], np.ndarray]] = {
    "triangle": _triangle,
    "circular": _circular,
    "spiral": _spiral,
    "3d_squares": _cubes,
    "smooth_gradient": _smooth_gradient,
    "stripes": _stripes,
    "checkerboard": _checkerboard,
    "noise": _noise,
}


# --------------------------------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------------------------------


def _check_name(name: object, names: Sequence[str], *, kind: str, where: str) -> str:
    """``name`` if it is one of ``names``, else an InputError suggesting the closest one."""
    if not isinstance(name, str):
        raise TypeError(
            f"{kind} name must be a str, got {type(name).__name__} {name!r} — use one of {list(names)}"
        )
    if name in names:
        return name
    normalised = name.lower().replace("-", "_").replace(" ", "_")
    close = difflib.get_close_matches(normalised, names, n=1, cutoff=0.5)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise InputError(f"unknown {kind} {name!r}", where=where, fix=f"{hint}valid names: {', '.join(names)}")


def _check_size(size: object, *, where: str) -> int:
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)):
        raise TypeError(f"size must be an int, got {type(size).__name__} {size!r} — e.g. size=512")
    if not _MIN_SIZE <= size <= _MAX_SIZE:
        raise InputError(
            f"size={size} is out of range",
            where=where,
            fix=f"use a side length between {_MIN_SIZE} and {_MAX_SIZE} pixels, e.g. size=512",
        )
    return int(size)


def _folder(directory: str | os.PathLike | None, default: str) -> Path:
    folder = data_dir() / default if directory is None else Path(directory).expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _png_bytes(pixels: np.ndarray) -> bytes:
    """PNG bytes of ``uint8 [H, W, 3]``: no metadata, fixed compression, so equal pixels give equal bytes."""
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", compress_level=9)
    return buffer.getvalue()


# --------------------------------------------------------------------------------------------------
# Public API: styles and contents
# --------------------------------------------------------------------------------------------------


def generate_style(name: str, *, size: int = 512) -> np.ndarray:
    """Draw one of the style images, the same every time.

    The paper's four (:data:`PAPER_STYLES`) are look-alikes of its Fig. 5: ``triangle`` (a tiling of
    coloured triangles under three large translucent ones), ``circular`` (overlapping sets of
    concentric rings), ``spiral`` (sixteen coloured logarithmic arms woven with dark counter-arms) and
    ``3d_squares`` (shaded isometric cubes). :data:`GRADED_STYLES` run from least to most busy:
    ``smooth_gradient`` (a rainbow, no edges), ``stripes`` (ten diagonal bands), ``checkerboard``
    (16×16) and ``noise`` (random colours on a 128×128 grid, PCG64 seed :data:`NOISE_SEED`).
    Shapes scale with ``size`` (line widths round to whole pixels of the drawing canvas), so a small
    image looks like a shrunk large one; below about 64 px the finest detail blurs away.

    Args:
        name: one of :data:`STYLE_NAMES`.
        size: side length in pixels, 16 to 4096 (keyword-only).

    Returns:
        float32 ``[size, size, 3]`` in ``[0, 1]``; every value is a multiple of 1/255, so it equals
        the image read back from the PNG that :func:`write_styles` saves.

    Raises:
        InputError: unknown ``name`` (the message suggests the closest valid one) or ``size`` out
            of range.
        TypeError: ``name`` is not a str or ``size`` not an int.

    Example::

        >>> generate_style("3d_squares", size=32).shape
        (32, 32, 3)
    """
    name = _check_name(name, STYLE_NAMES, kind="style", where="generate_style")
    size = _check_size(size, where="generate_style")
    return _DRAWERS[name](size).astype(np.float32) / np.float32(255)


def write_styles(
    directory: str | os.PathLike | None = None,
    *,
    size: int = 512,
    names: Sequence[str] | None = None,
) -> list[Path]:
    """Draw the style images and save them as ``<name>.png``, atomically and reproducibly.

    Each PNG is written to a temporary file in the same folder and moved into place, so a reader
    never sees half a file. The files carry no metadata and a fixed compression level, so
    regenerating them gives byte-identical files.

    Args:
        directory: target folder, created if missing; default ``data_dir() / "styles"``.
        size: side length in pixels (keyword-only).
        names: which styles (keyword-only); default all of :data:`STYLE_NAMES`.

    Returns:
        The written paths, in the order of ``names``.

    Raises:
        InputError: an unknown name or a bad ``size`` (checked before anything is written).

    Example::

        >>> write_styles("/tmp/styles", size=64, names=["spiral"])  # doctest: +SKIP
        [PosixPath('/tmp/styles/spiral.png')]
    """
    if isinstance(names, str):
        names = [names]
    chosen = [
        _check_name(name, STYLE_NAMES, kind="style", where="write_styles")
        for name in (STYLE_NAMES if names is None else names)
    ]
    size = _check_size(size, where="write_styles")
    folder = _folder(directory, "styles")
    return [atomic_write_bytes(_png_bytes(_DRAWERS[name](size)), folder / f"{name}.png") for name in chosen]


def write_content(directory: str | os.PathLike | None = None) -> list[Path]:
    """Copy the content photos from scikit-image's bundled data as PNGs of at most 512 px.

    ``astronaut`` (Eileen Collins, NASA, public domain) and ``chelsea`` (the cat, CC0, Stefan van
    der Walt) keep their size; ``coffee`` (CC0, Rachel Michetti) is shrunk from 600×400 to 512×341
    with a Lanczos filter. Needs scikit-image (``pip install 'nstdream[data]'``).

    Args:
        directory: target folder, created if missing; default ``data_dir() / "content"``.

    Returns:
        The written paths, in the order of :data:`CONTENT_NAMES`.

    Raises:
        NstdreamError: scikit-image is not installed.
    """
    try:
        import skimage.data  # only here: an optional dependency
    except ImportError as error:
        raise NstdreamError(
            "scikit-image is not installed",
            where="write_content",
            fix="pip install 'nstdream[data]' (or scikit-image), then run it again",
        ) from error
    folder = _folder(directory, "content")
    paths = []
    for name in CONTENT_NAMES:
        pixels = np.asarray(getattr(skimage.data, name)(), dtype=np.uint8)[..., :3]
        height, width = pixels.shape[:2]
        scale = CONTENT_MAX_SIDE / max(height, width)
        if scale < 1:
            new_size = (max(1, round(width * scale)), max(1, round(height * scale)))
            pixels = np.asarray(Image.fromarray(pixels).resize(new_size, Image.Resampling.LANCZOS))
        paths.append(atomic_write_bytes(_png_bytes(pixels), folder / f"{name}.png"))
    return paths


def _existing(name: str, names: Sequence[str], *, kind: str, subfolder: str, fix: str) -> Path:
    name = _check_name(name, names, kind=kind, where=f"{kind}_path")
    path = data_dir() / subfolder / f"{name}.png"
    if not path.is_file():
        raise MissingFileError(f"the {kind} image {name!r} has not been generated", where=str(path), fix=fix)
    return path


def style_path(name: str) -> Path:
    """Path of the saved style image ``name`` (``data_dir()/styles/<name>.png``).

    Raises:
        InputError: unknown ``name``; the message suggests the closest one.
        MissingFileError: (a ``FileNotFoundError``) the file is missing; the fix says how to make it.

    Example::

        >>> style_path("spiral").name  # doctest: +SKIP
        'spiral.png'
    """
    return _existing(
        name,
        STYLE_NAMES,
        kind="style",
        subfolder="styles",
        fix="run `nstdream data styles` (or `python -m nstdream_utils.data styles`)",
    )


def content_path(name: str) -> Path:
    """Path of the saved content photo ``name`` (``data_dir()/content/<name>.png``).

    Raises:
        InputError: unknown ``name``; the message suggests the closest one.
        MissingFileError: (a ``FileNotFoundError``) the file is missing; the fix says how to make it.

    Example::

        >>> content_path("chelsea").name  # doctest: +SKIP
        'chelsea.png'
    """
    return _existing(
        name,
        CONTENT_NAMES,
        kind="content",
        subfolder="content",
        fix=(
            "run `nstdream data content` (or `python -m nstdream_utils.data content`); "
            "it needs scikit-image: pip install 'nstdream[data]'"
        ),
    )


# --------------------------------------------------------------------------------------------------
# Public API: how busy is an image?
# --------------------------------------------------------------------------------------------------

_LUMA = np.array([0.299, 0.587, 0.114])  # ITU-R BT.601, as PIL's "L" mode


def _luminance(image: object, *, where: str) -> np.ndarray:
    """Check an image and return its luminance, float64 ``[H, W]`` in ``[0, 1]``."""
    array = np.asarray(image)
    if array.ndim == 4 and array.shape[0] == 1:
        array = array[0]
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if not (array.ndim == 2 or (array.ndim == 3 and array.shape[-1] == 3)):
        fix = "drop the alpha channel: image[..., :3]" if array.ndim == 3 and array.shape[-1] == 4 else (
            "pass one RGB image [H, W, 3] (or [1, H, W, 3], or greyscale [H, W])"
        )
        raise InputError(f"expected shape [H, W, 3], got {array.shape}", where=where, fix=fix)
    if min(array.shape[:2]) < 4:
        raise InputError(f"image of shape {array.shape} is too small", where=where, fix="use ≥ 4×4 pixels")
    if array.dtype == np.uint8:
        array = array / 255.0
    elif np.issubdtype(array.dtype, np.floating):
        array = array.astype(np.float64)
    else:
        raise InputError(
            f"expected float values in [0, 1] or uint8, got dtype {array.dtype}",
            where=where,
            fix="convert with image.astype('float32') / 255",
        )
    if not np.all(np.isfinite(array)):
        raise InputError("the image contains NaN or Inf", where=where, fix="pass a finite image")
    low, high = float(array.min()), float(array.max())
    if low < -1e-3 or high > 1 + 1e-3:
        raise InputError(
            f"values span [{low:.4g}, {high:.4g}], expected [0, 1]",
            where=where,
            fix="divide by 255 if it holds 0–255 values, or np.clip(image, 0, 1)",
        )
    luminance = array if array.ndim == 2 else array @ _LUMA
    # Resample to ~SCORE_PIXELS keeping the aspect ratio (PIL filters are anti-aliased when shrinking).
    height, width = luminance.shape
    scale = math.sqrt(SCORE_PIXELS / (height * width))
    shape = (max(4, round(width * scale)), max(4, round(height * scale)))
    shrink = shape[0] * shape[1] < height * width
    resample = Image.Resampling.BOX if shrink else Image.Resampling.BILINEAR
    resized = Image.fromarray(np.clip(luminance, 0, 1).astype(np.float32)).resize(shape, resample)
    return np.asarray(resized, dtype=np.float64)


def distortion_score(image: object) -> float:
    """How busy an image is: its edge density, the mean Sobel gradient magnitude of its luminance.

    .. math:: D = \\frac{1}{HW} \\sum_{y,x} \\tfrac18 \\sqrt{(S_x * L)^2 + (S_y * L)^2}

    where :math:`L` is the luminance (ITU-R BT.601 weights on the RGB values) of the image resampled
    to about 256×256 = 65,536 pixels with its aspect ratio kept, :math:`S_x, S_y` are the 3×3 Sobel
    kernels (borders reflected), and ÷8 makes each term the local luminance change per pixel. A flat
    image scores 0; a black/white checkerboard of 1-pixel squares would score ≈ 1.4.

    Why this measure: the paper calls its busy style images "distorted" without defining the word.
    Edge density is what the eye reads as busy, it grows with every edge a style adds, and it is
    cheap and monotone in contrast. Resampling to a fixed pixel count first makes the score a
    property of the picture rather than of its resolution (a 512 px and a 1024 px copy agree
    within a few per cent). Luminance is used because most of the edges a network responds to are
    luminance edges; two colours of equal brightness side by side score low.
    :func:`spectral_entropy` is the alternative, frequency-domain measure; it ranks the graded
    styles the same way but saturates for photos and geometric art alike.

    Args:
        image: float ``[H, W, 3]`` (or ``[1, H, W, 3]``, or greyscale ``[H, W]``) in ``[0, 1]``;
            uint8 0–255 is accepted too. A NumPy array or anything ``np.asarray`` takes (tensors).

    Returns:
        The score, a float ≥ 0. Ranks :data:`GRADED_STYLES` in their order for sizes ≥ 64 px (at
        512 px: 0.0041, 0.0074, 0.049, 0.138; the paper's four 0.037–0.061; the photos 0.027–0.046).

    Raises:
        InputError: wrong shape, dtype, non-finite values or values outside ``[0, 1]``.

    Example::

        >>> distortion_score(np.zeros((64, 64, 3), np.float32))
        0.0
        >>> scores = [distortion_score(generate_style(n, size=128)) for n in GRADED_STYLES]
        >>> scores == sorted(scores)
        True
    """
    luminance = _luminance(image, where="distortion_score")
    gradient_y = ndimage.sobel(luminance, axis=0, mode="reflect")
    gradient_x = ndimage.sobel(luminance, axis=1, mode="reflect")
    return float(np.mean(np.hypot(gradient_x, gradient_y)) / 8.0)


def spectral_entropy(image: object) -> float:
    """Normalised entropy of the luminance power spectrum: 0 = one frequency, 1 = white noise.

    .. math:: p_k = \\frac{|\\hat L_k|^2}{\\sum_j |\\hat L_j|^2}, \\quad
              H = -\\frac{\\sum_k p_k \\ln p_k}{\\ln (N - 1)}

    over the :math:`N - 1` non-constant frequencies :math:`k` of the 2-D Fourier transform of the
    luminance :math:`L` (resampled as in :func:`distortion_score`, mean removed, Hann-windowed so
    the image borders do not add false edges). A smooth image keeps its power in a few low
    frequencies (low entropy); a busy one spreads it over many (high entropy). It is a comparison
    measure for :func:`distortion_score`: independent of contrast, but it crowds most natural
    photos and geometric art into a narrow band near the top.

    Args:
        image: as for :func:`distortion_score`.

    Returns:
        A float in ``[0, 1]``; 0 for a flat image.

    Raises:
        InputError: as for :func:`distortion_score`.

    Example::

        >>> spectral_entropy(np.full((64, 64, 3), 0.5, np.float32))
        0.0
    """
    luminance = _luminance(image, where="spectral_entropy")
    window = np.outer(np.hanning(luminance.shape[0]), np.hanning(luminance.shape[1]))
    centred = (luminance - np.sum(luminance * window) / np.sum(window)) * window
    power = np.abs(np.fft.fft2(centred)) ** 2
    power[0, 0] = 0.0
    total = float(power.sum())
    if total <= 1e-12 * power.size:
        return 0.0
    probability = power.ravel() / total
    probability = probability[probability > 0]
    return float(-np.sum(probability * np.log(probability)) / math.log(power.size - 1))


# --------------------------------------------------------------------------------------------------
# python -m nstdream_utils.data
# --------------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Regenerate ``data/styles`` and/or ``data/content`` and print each file's distortion score.

    ``python -m nstdream_utils.data [styles|content|all] [--size 512] [--directory DATA]``.
    """
    parser = argparse.ArgumentParser(prog="python -m nstdream_utils.data", description=main.__doc__)
    parser.add_argument("what", nargs="?", choices=("styles", "content", "all"), default="all")
    parser.add_argument("--size", type=int, default=512, help="style side length in pixels (default 512)")
    parser.add_argument("--directory", type=Path, default=None, help="data folder (default: data_dir())")
    args = parser.parse_args(argv)
    root = data_dir() if args.directory is None else args.directory
    try:
        paths = []
        if args.what in ("styles", "all"):
            paths += write_styles(root / "styles", size=args.size)
        if args.what in ("content", "all"):
            paths += write_content(root / "content")
    except NstdreamError as error:
        print(f"error: {error.one_line()}", file=sys.stderr)
        return 1
    for path in paths:
        image = np.asarray(Image.open(path).convert("RGB"))
        print(
            f"{path}  {path.stat().st_size / 1024:6.1f} KB  "
            f"distortion {distortion_score(image):.4f}  spectral entropy {spectral_entropy(image):.4f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
