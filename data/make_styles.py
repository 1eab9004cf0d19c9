"""Draw the style images in ``data/styles`` (run from a checkout, with ``nstdream_utils`` importable).

    python data/make_styles.py [--size N] [--out DIR] [NAME ...]

The paper (Al-Khazraji, Abbas & Jamil 2022, Fig. 5) styles its photos with four geometric abstract
images whose files are not published; ``triangle``, ``circular``, ``spiral`` and ``3d_squares`` are
look-alikes of them. ``smooth_gradient``, ``stripes``, ``checkerboard`` and ``noise`` run from least
to most busy, to test the paper's claim about busy style images.

The output is deterministic: the drawings use PIL's integer rasteriser or float64 NumPy arithmetic,
``noise`` uses the raw PCG64 bit stream with seed :data:`NOISE_SEED`, and the PNGs carry no
metadata and a fixed compression level, so running it again gives byte-identical files. Shapes are
drawn on a canvas at least twice the size (and at least 1024 px) and box-averaged down, which
anti-aliases their edges. ``nstdream data styles`` runs this script.
"""

from __future__ import annotations

import argparse
import io
import math
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from nstdream_utils.data import STYLE_NAMES, data_dir
from nstdream_utils.files import atomic_write_bytes

#: Seed of the PCG64 stream behind the ``noise`` style.
NOISE_SEED = 2022
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


def draw(name: str, size: int = 512) -> np.ndarray:
    """The style image ``name`` (one of ``STYLE_NAMES``) as uint8 ``[size, size, 3]``, the same every time."""
    return _DRAWERS[name](size)


def png_bytes(pixels: np.ndarray) -> bytes:
    """PNG bytes of ``uint8 [H, W, 3]``: no metadata, fixed compression, so equal pixels give equal bytes."""
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", compress_level=9)
    return buffer.getvalue()


def _size(text: str) -> int:
    size = int(text)
    if not _MIN_SIZE <= size <= _MAX_SIZE:
        raise argparse.ArgumentTypeError(f"must be between {_MIN_SIZE} and {_MAX_SIZE}, got {size}")
    return size


def main(argv: Sequence[str] | None = None) -> int:
    """Write ``<out>/<name>.png`` for each named style (default all), atomically; print each path."""
    parser = argparse.ArgumentParser(prog="python data/make_styles.py", description=main.__doc__)
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"styles (default all): {', '.join(STYLE_NAMES)}")
    parser.add_argument("--size", type=_size, default=512, help="side length in pixels (default 512)")
    parser.add_argument("--out", type=Path, default=None, help="folder (default: data_dir()/styles)")
    args = parser.parse_args(argv)
    if unknown := [name for name in args.names if name not in STYLE_NAMES]:
        parser.error(f"unknown style {unknown[0]!r} — choose from {', '.join(STYLE_NAMES)}")
    folder = args.out if args.out is not None else data_dir() / "styles"
    folder.mkdir(parents=True, exist_ok=True)
    for name in args.names or STYLE_NAMES:
        print(atomic_write_bytes(png_bytes(draw(name, args.size)), folder / f"{name}.png"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
