"""Images in and out: load odd files safely, resize, convert to and from PIL, save atomically.

Every image in the library is a float32 NumPy array ``[H, W, 3]`` (or a batch of one,
``[1, H, W, 3]``), RGB, in ``[0, 1]``. TensorFlow tensors are accepted wherever an image is, through
``np.asarray`` — this module never imports TensorFlow, so the command line can check a path in
milliseconds before the slow ``import tensorflow``.

What :func:`load_image` does with awkward files:

- **Transparency** (RGBA, LA, palette or grey/RGB PNGs with a ``tRNS`` colour) is composited over
  **white**. A fully transparent pixel's colour is undefined — editors store black, white or junk
  there — and the networks have no alpha channel, so we must pick a background; white is what a
  viewer shows on a page and what a logo or sketch on a transparent background is drawn for.
- **Greyscale** (``1``, ``L``, ``I``, ``I;16``, ``F``) is copied to three equal channels.
- **16-bit** greyscale (``I;16``, ``I``) is scaled by ``1/65535``, keeping its full range instead of
  clipping at 255 as ``Image.convert("RGB")`` would. 32-bit ``I`` values above 65535 clip to 1.
  (Pillow reads 16-bit *colour* PNGs as 8-bit RGB, keeping the high byte, so they load correctly at
  8-bit precision.) Float ``F`` images are taken as ``[0, 1]`` if no value exceeds 1, otherwise as
  ``[0, 255]``; NaN becomes 0.
- **CMYK** JPEGs (including Adobe's inverted ones) go through Pillow's CMYK→RGB conversion.
  Embedded ICC colour profiles are not applied: pixels are read as sRGB.
- **EXIF orientation** is applied (``ImageOps.exif_transpose``), so a phone photo loads upright.
- **Animated** files (GIF, APNG, multi-page TIFF) give their first frame.

And what it refuses, with one :class:`~nstdream_utils.errors.InputError` (or
:class:`~nstdream_utils.errors.MissingFileError`) naming the file and the fix: a missing file, a
folder, a file that is not an image, a truncated or damaged file (decoded in full, never with
Pillow's ``LOAD_TRUNCATED_IMAGES``), a zero-size image, and anything over the pixel cap
:data:`DEFAULT_MAX_PIXELS` (40 megapixels) — checked from the header, *before* decoding, so a
"decompression bomb" (a tiny file declaring a huge image) costs nothing.

Floor 1: imports only NumPy, Pillow and floor-0 modules (``errors``, ``files``). Taught in
notebook 01.
"""

from __future__ import annotations

import difflib
import io
import os
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from nstdream_utils.errors import InputError, MissingFileError
from nstdream_utils.files import (
    _as_path,
    atomic_write_bytes,
    check_output_path,
    check_regular_file,
)

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "MAX_IMAGE_BYTES",
    "RESIZE_METHODS",
    "load_image",
    "resize",
    "ensure_min_size",
    "to_pil",
    "from_pil",
    "save_image",
    "image_info",
    "validate_image_path",
    "check_output_path",
]

#: Largest image :func:`load_image` decodes: 40 megapixels (e.g. 8000 × 5000), about 480 MB as
#: float32 RGB. Larger than any camera photo a course needs, far below what exhausts memory.
DEFAULT_MAX_PIXELS = 40_000_000

#: Largest image file :func:`load_image` opens: 1 GiB, far above any 40-megapixel PNG or JPEG; checked
#: from the file's size before it is opened, as is that the path is a regular file (not a FIFO or device).
MAX_IMAGE_BYTES = 1 << 30

#: ``method=`` names for :func:`resize` and :func:`ensure_min_size`.
RESIZE_METHODS: dict[str, Image.Resampling] = {
    "lanczos": Image.Resampling.LANCZOS,
    "bicubic": Image.Resampling.BICUBIC,
    "bilinear": Image.Resampling.BILINEAR,
    "area": Image.Resampling.BOX,
    "nearest": Image.Resampling.NEAREST,
}

_ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")
_SIXTEEN_BIT_MODES = ("I", "I;16", "I;16L", "I;16B", "I;16N")
_RESAVE_FIX = "open it in an image viewer and re-save it as PNG or JPEG, or re-download it"


# --------------------------------------------------------------------------- checks on the path


def _check_max_pixels(max_pixels: int | None) -> None:
    if max_pixels is None:
        return
    if isinstance(max_pixels, bool) or not isinstance(max_pixels, (int, np.integer)) or max_pixels <= 0:
        raise InputError(
            f"must be a positive whole number of pixels or None, got {max_pixels!r}",
            where="max_pixels",
            fix=f"leave the default ({DEFAULT_MAX_PIXELS:_}) or pass e.g. max_pixels=100_000_000",
        )


def _existing_file(path: str | os.PathLike) -> Path:
    """``path`` as a Path to a regular file of at most :data:`MAX_IMAGE_BYTES`, or the error that says why."""
    source = _as_path(path, what="image path")
    if not os.path.lexists(source):
        fix = "check the spelling and the folder"
        folder = source.parent
        if folder.is_dir():
            try:
                close = difflib.get_close_matches(source.name, os.listdir(folder), n=1, cutoff=0.6)
            except OSError:
                close = []
            if close:
                fix = f"did you mean '{folder / close[0]}'?"
        else:
            fix = f"the folder '{folder}' does not exist either; {fix}"
        if not source.is_absolute():
            fix += f" (relative paths start from the current folder {os.getcwd()})"
        raise MissingFileError("no such file", where=str(source), fix=fix)
    if source.is_dir():
        raise InputError(
            "is a folder, not an image file",
            where=str(source),
            fix=f"give the path of one image inside it, e.g. '{source / 'photo.jpg'}'",
        )
    check_regular_file(source, what="image file", max_bytes=MAX_IMAGE_BYTES,
                       fix="give the path of an image file (PNG, JPEG, ...)")
    return source


def _too_big(
    source: Path, size: tuple[int, int] | None, max_pixels: int | None, pillow: str = ""
) -> InputError:
    """The error for an image over our pixel cap (``size`` known) or over Pillow's (``pillow`` message)."""
    if size is not None and max_pixels is not None:
        width, height = size
        what = (
            f"{width}×{height} = {width * height / 1e6:.1f} megapixels is over the limit of "
            f"{max_pixels / 1e6:g} megapixels"
        )
    else:
        counts = [int(n) for n in re.findall(r"(\d+) pixels", pillow)]
        if len(counts) == 2:
            what = (
                f"declares {counts[0] / 1e6:.1f} megapixels, over Pillow's limit of {counts[1] / 1e6:.1f} "
                "megapixels (PIL.Image.MAX_IMAGE_PIXELS)"
            )
        else:
            what = f"is over Pillow's limit, PIL.Image.MAX_IMAGE_PIXELS ({pillow})"
    return InputError(
        f"{what} (a guard against decompression bombs: tiny files that declare huge images)",
        where=str(source),
        fix="shrink the image first (e.g. to 2000 px on the longest side), or, if you trust the file, "
        "pass a larger max_pixels= (beyond Pillow's own limit, also raise PIL.Image.MAX_IMAGE_PIXELS)",
    )


def _open_header(source: Path, max_pixels: int | None) -> Image.Image:
    """Open ``source`` lazily (header only) and check it is an image of a sane size.

    Pillow's own decompression-bomb warning and error become our :class:`InputError`. The caller
    must close the returned image.
    """
    with warnings.catch_warnings():
        pil_limit = Image.MAX_IMAGE_PIXELS
        if max_pixels is not None and pil_limit is not None and max_pixels <= pil_limit:
            # Pillow warns above its limit, which is then above ours too: refuse.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
        else:
            # The caller allowed more than Pillow's warning limit: our own check below decides.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            pil = Image.open(source)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
            raise _too_big(source, None, max_pixels, str(error)) from error
        except UnidentifiedImageError as error:
            size = source.stat().st_size
            what = (
                "is empty (0 bytes)"
                if size == 0
                else "is not an image Pillow can read "
                "(unknown format, or a damaged, truncated or zero-size header)"
            )
            raise InputError(what, where=str(source), fix=_RESAVE_FIX) from error
        except PermissionError as error:
            raise InputError(
                "cannot be read (permission denied)",
                where=str(source),
                fix=f"make it readable (chmod u+r '{source}') or copy it somewhere you can read",
            ) from error
        except (OSError, SyntaxError, ValueError, EOFError) as error:
            raise InputError(
                f"cannot be opened as an image ({error})", where=str(source), fix=_RESAVE_FIX
            ) from error
    width, height = pil.size
    if width <= 0 or height <= 0:
        pil.close()
        raise InputError(
            f"has zero size ({width}×{height} pixels)",
            where=str(source),
            fix="use an image with at least one pixel; " + _RESAVE_FIX,
        )
    if max_pixels is not None and width * height > max_pixels:
        pil.close()
        raise _too_big(source, (width, height), max_pixels)
    return pil


def _decode(pil: Image.Image, source: Path, max_pixels: int | None) -> None:
    """Decode every pixel of ``pil`` now, refusing truncated or damaged data."""
    saved = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = False  # never pad a truncated file with grey, even if set elsewhere
    try:
        pil.load()
    except Image.DecompressionBombError as error:
        raise _too_big(source, None, max_pixels, str(error)) from error
    except Exception as error:  # noqa: BLE001 — any decoder failure means a damaged file
        raise InputError(
            f"cannot be decoded: the file is truncated or damaged ({error})",
            where=str(source),
            fix=_RESAVE_FIX,
        ) from error
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = saved


# --------------------------------------------------------------------------- public: files


def validate_image_path(path: str | os.PathLike, *, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> Path:
    """Cheaply check that ``path`` names a loadable image, without decoding it.

    Reads only the header: the file exists, is not a folder, is an image format Pillow knows, has
    a non-zero size and at most ``max_pixels`` pixels. Takes milliseconds, so the command line calls
    it before importing TensorFlow. A file truncated *after* its header passes here and is refused by
    :func:`load_image`, which decodes everything.

    Args:
        path: the image file.
        max_pixels: the pixel cap (width × height), :data:`DEFAULT_MAX_PIXELS` by default; ``None``
            for no cap of ours (Pillow's ``Image.MAX_IMAGE_PIXELS`` guard still applies).

    Returns:
        ``path`` as a :class:`pathlib.Path`.

    Raises:
        MissingFileError: no such file (suggesting a close name in the same folder).
        InputError: a folder, not an image, zero size, or over the pixel cap — naming the file and
            the fix.
    """
    _check_max_pixels(max_pixels)
    source = _existing_file(path)
    _open_header(source, max_pixels).close()
    return source


def image_info(path: str | os.PathLike) -> dict[str, Any]:
    """Describe an image file from its header, without decoding the pixels.

    Args:
        path: the image file.

    Returns:
        ``{"format": "JPEG", "mode": "RGB", "size": (width, height), "width": int, "height": int,
        "frames": int, "orientation": int}``. ``size`` is Pillow's ``(width, height)`` **as
        stored**; ``orientation`` is the EXIF tag (1 = upright; 5–8 mean :func:`load_image` swaps
        width and height). No pixel cap is applied here (only Pillow's own guard).

    Raises:
        MissingFileError, InputError: as :func:`validate_image_path`.

    Example::

        >>> image_info("photo.jpg")  # doctest: +SKIP
        {'format': 'JPEG', 'mode': 'RGB', 'size': (4032, 3024), 'width': 4032, 'height': 3024,
         'frames': 1, 'orientation': 6}
    """
    source = _existing_file(path)
    with _open_header(source, None) as pil:
        try:
            orientation = int(pil.getexif().get(0x0112, 1))
        except Exception:  # noqa: BLE001 — a broken EXIF block is reported as "upright"
            orientation = 1
        width, height = pil.size
        return {
            "format": pil.format,
            "mode": pil.mode,
            "size": (width, height),
            "width": width,
            "height": height,
            "frames": int(getattr(pil, "n_frames", 1)),
            "orientation": orientation,
        }


def load_image(path: str | os.PathLike, *, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Load an image file as float32 RGB in ``[0, 1]``, upright, with transparency over white.

    Handles greyscale, 16-bit, palette, RGBA/LA, CMYK and EXIF-rotated files; see the module
    docstring for exactly how. The pixel cap is checked from the header before any decoding, then
    the whole file is decoded so a truncated file fails here rather than later.

    Args:
        path: the image file (``str`` or :class:`pathlib.Path`; ``~`` is expanded).
        max_pixels: refuse images with more than this many pixels (width × height, as stored);
            :data:`DEFAULT_MAX_PIXELS` = 40 megapixels by default, ``None`` for no cap of ours.

    Returns:
        float32 ``[H, W, 3]`` in ``[0, 1]``, C-contiguous, after applying the EXIF orientation.

    Raises:
        MissingFileError: no such file.
        InputError: a folder, not an image, truncated or damaged, zero size, over ``max_pixels``,
            or an unsupported colour mode — always naming the file and the fix, with Pillow's
            error chained as ``__cause__``.

    Example::

        >>> image = load_image("photo.jpg")  # doctest: +SKIP
        >>> image.shape, image.dtype  # doctest: +SKIP
        ((480, 640, 3), dtype('float32'))
    """
    _check_max_pixels(max_pixels)
    source = _existing_file(path)
    with _open_header(source, max_pixels) as pil:
        _decode(pil, source, max_pixels)
        upright = _exif_upright(pil, source)
        return _pil_to_array(upright, where=str(source))


def _exif_upright(pil: Image.Image, source: Path) -> Image.Image:
    """Apply the EXIF orientation tag; a broken EXIF block only warns."""
    try:
        return ImageOps.exif_transpose(pil)
    except Exception as error:  # noqa: BLE001 — EXIF blocks are often malformed; pixels are fine
        warnings.warn(
            f"{source}: cannot read the EXIF orientation ({error}); using the pixels as stored",
            stacklevel=3,
        )
        return pil


def save_image(image: Any, path: str | os.PathLike) -> Path:
    """Save an image as an 8-bit RGB PNG, atomically.

    The output path is checked first (``.png`` suffix, existing writable folder), then the PNG is
    encoded in memory and written with :func:`nstdream_utils.files.atomic_write_bytes`: a crash
    never leaves a partial file at ``path``, and an existing file there stays intact until the new
    one is complete.

    Args:
        image: float ``[H, W, 3]`` or ``[1, H, W, 3]`` in ``[0, 1]`` (clipped), or uint8; a NumPy
            array or a TensorFlow tensor.
        path: the output ``.png`` file.

    Returns:
        ``path`` as a :class:`pathlib.Path`.

    Raises:
        InputError: a bad output path (see :func:`check_output_path`) or a bad image (see
            :func:`to_pil`).
        OSError: the write failed (disk full); nothing is left at ``path``.

    Example::

        >>> save_image(np.zeros((8, 8, 3), np.float32), "black.png")  # doctest: +SKIP
        PosixPath('black.png')
    """
    target = check_output_path(path, suffixes=(".png",))
    pil = to_pil(image)
    buffer = io.BytesIO()
    pil.save(buffer, format="PNG")
    return atomic_write_bytes(buffer.getvalue(), target)


# --------------------------------------------------------------------------- public: arrays


def from_pil(pil: Image.Image) -> np.ndarray:
    """Convert a PIL image of any common mode to float32 RGB ``[H, W, 3]`` in ``[0, 1]``.

    Transparency is composited over white, greyscale is copied to three channels, 16-bit values
    are divided by 65535 (see the module docstring). EXIF orientation is *not* applied here; use
    :func:`load_image` for files.

    Args:
        pil: a ``PIL.Image.Image``.

    Returns:
        float32 ``[H, W, 3]`` in ``[0, 1]``, where ``H, W = pil.height, pil.width``.

    Raises:
        TypeError: ``pil`` is not a PIL image.
        InputError: zero size, or a colour mode Pillow cannot convert to RGB.
    """
    if not isinstance(pil, Image.Image):
        raise TypeError(
            f"from_pil expects a PIL.Image.Image, got {type(pil).__name__} — "
            "for an array use np.asarray(...) directly, or load a file with load_image(path)"
        )
    return _pil_to_array(pil, where="from_pil(pil)")


def _pil_to_array(pil: Image.Image, *, where: str) -> np.ndarray:
    width, height = pil.size
    if width <= 0 or height <= 0:
        raise InputError(
            f"has zero size ({width}×{height} pixels)",
            where=where,
            fix="use an image with at least one pixel",
        )
    mode = pil.mode
    alpha: np.ndarray | None = None
    try:
        if mode in _SIXTEEN_BIT_MODES:
            raw = np.asarray(pil)
            grey = np.clip(raw.astype(np.float32) / 65535.0, 0.0, 1.0)
            rgb = np.repeat(grey[..., None], 3, axis=-1)
            transparent = pil.info.get("transparency")
            if isinstance(transparent, int):
                alpha = (raw != transparent).astype(np.float32)
        elif mode == "F":
            grey = np.nan_to_num(np.asarray(pil, dtype=np.float32), nan=0.0, posinf=1.0, neginf=0.0)
            if grey.size and float(grey.max()) > 1.0:
                grey = grey / 255.0
            rgb = np.repeat(np.clip(grey, 0.0, 1.0)[..., None], 3, axis=-1)
        elif mode in _ALPHA_MODES or "transparency" in pil.info:
            rgba = np.asarray(pil.convert("RGBA"), dtype=np.float32) / 255.0
            rgb, alpha = rgba[..., :3], rgba[..., 3]
        else:
            rgb = np.asarray(pil.convert("RGB"), dtype=np.float32) / 255.0
    except (ValueError, OSError) as error:
        raise InputError(
            f"has colour mode {mode!r}, which cannot be converted to RGB ({error})",
            where=where,
            fix="re-save it as an RGB PNG or JPEG",
        ) from error
    if alpha is not None:
        # Over white: a transparent pixel's stored colour is undefined, so it must not show.
        alpha = alpha[..., None]
        rgb = rgb * alpha + (1.0 - alpha)
    out = np.ascontiguousarray(np.clip(rgb, 0.0, 1.0), dtype=np.float32)
    if out.shape != (height, width, 3) or not np.isfinite(out).all():
        raise InputError(
            f"converted to an unexpected array {out.shape} from mode {mode!r}",
            where=where,
            fix="re-save it as an RGB PNG or JPEG",
        )
    return out


def _image_shape(image: Any, *, name: str = "image") -> tuple[np.ndarray, bool]:
    """``image`` as an array ``[H, W, 3]`` (batch axis dropped), and whether it had a batch axis of 1."""
    array = np.asarray(image)
    batched = array.ndim == 4
    if batched:
        if array.shape[0] != 1:
            raise InputError(
                f"is a batch of {array.shape[0]} images {array.shape}; one image is expected",
                where=name,
                fix=f"pass one image, e.g. {name}[0]",
            )
        array = array[0]
    if array.ndim != 3 or array.shape[-1] != 3 or array.shape[0] < 1 or array.shape[1] < 1:
        raise InputError(
            f"has shape {tuple(np.shape(image))}; expected [H, W, 3] or [1, H, W, 3] with H, W ≥ 1",
            where=name,
            fix="pass an RGB image (for greyscale use np.repeat(gray[..., None], 3, axis=-1))",
        )
    return array, batched


def _as_image_array(image: Any, *, name: str = "image") -> tuple[np.ndarray, bool]:
    """``image`` as float32 ``[H, W, 3]`` (a view where possible), and whether it was a batch of one.

    Accepts float of any precision (must be finite; not clipped here) or uint8 (divided by 255).
    """
    array, batched = _image_shape(image, name=name)
    if array.dtype == np.uint8:
        return array.astype(np.float32) / 255.0, batched
    if array.dtype.kind != "f":
        raise InputError(
            f"has dtype {array.dtype}; expected float in [0, 1] or uint8 in [0, 255]",
            where=name,
            fix="convert it, e.g. image.astype(np.float32) / 255",
        )
    array = array.astype(np.float32, copy=False)
    if not np.isfinite(array).all():
        raise InputError(
            "contains NaN or Inf values",
            where=name,
            fix="check the step that produced it (e.g. a diverging optimisation: lower the learning rate)",
        )
    return array, batched


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise InputError(
            f"must be a positive whole number of pixels, got {value!r}",
            where=name,
            fix=f"pass e.g. {name}=512",
        )
    return int(value)


def _resample(method: str) -> Image.Resampling:
    try:
        return RESIZE_METHODS[method]
    except (KeyError, TypeError):
        close = difflib.get_close_matches(str(method), RESIZE_METHODS, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise InputError(
            f"unknown resize method {method!r}",
            where="method",
            fix=f"{hint}use one of {', '.join(map(repr, RESIZE_METHODS))}",
        ) from None


def _resize_array(array: np.ndarray, height: int, width: int, method: str) -> np.ndarray:
    """Resize float32 ``[H, W, 3]`` channel by channel in Pillow's 32-bit float mode ``F``."""
    resample = _resample(method)
    if array.shape[:2] == (height, width):
        return np.array(array, dtype=np.float32, copy=True)
    channels = []
    for c in range(array.shape[-1]):
        plane = Image.fromarray(np.ascontiguousarray(array[..., c]))  # mode "F": 32-bit float
        channels.append(np.asarray(plane.resize((width, height), resample=resample)))
    # Lanczos and bicubic overshoot at sharp edges (ringing): clip back into [0, 1].
    return np.clip(np.stack(channels, axis=-1), 0.0, 1.0).astype(np.float32, copy=False)


def resize(
    image: Any,
    *,
    size: int | tuple[int, int] | None = None,
    longest_side: int | None = None,
    exact: tuple[int, int] | None = None,
    method: str = "lanczos",
) -> np.ndarray:
    """Resize an image, keeping its aspect ratio or to an exact ``(height, width)``.

    Give exactly one of ``size``, ``longest_side``, ``exact``. Resampling runs in Pillow on each
    channel as 32-bit float (mode ``F``), so no precision is lost to 8 bits; Pillow's filters
    antialias when shrinking. The result is clipped to ``[0, 1]`` (Lanczos and bicubic overshoot
    slightly at sharp edges).

    Args:
        image: float ``[H, W, 3]`` or ``[1, H, W, 3]`` in ``[0, 1]``, or uint8; array or tensor.
        size: shorthand — an ``int`` means ``longest_side``, a pair means ``exact``.
        longest_side: scale so ``max(H, W)`` equals this, keeping the aspect ratio (the other side
            is rounded, at least 1).
        exact: ``(height, width)`` to resize to, ignoring the aspect ratio. Note the order: NumPy's
            ``(height, width)``, not PIL's ``(width, height)``.
        method: ``"lanczos"`` (default), ``"bicubic"``, ``"bilinear"``, ``"area"`` or ``"nearest"``.

    Returns:
        float32 ``[H', W', 3]`` in ``[0, 1]`` — or ``[1, H', W', 3]`` if ``image`` was a batch of
        one. A new array even when the size is unchanged.

    Raises:
        InputError: not exactly one size given, a size ≤ 0, an unknown method, or a bad image.

    Example::

        >>> resize(np.zeros((300, 600, 3), np.float32), longest_side=200).shape
        (100, 200, 3)
    """
    options = (("size", size), ("longest_side", longest_side), ("exact", exact))
    given = [name for name, value in options if value is not None]
    if len(given) != 1:
        raise InputError(
            f"got {', '.join(given) if given else 'no size'}",
            where="resize",
            fix="pass exactly one of size=, longest_side=512 or exact=(height, width)",
        )
    if size is not None:
        if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
            longest_side = size
        else:
            exact = size  # type: ignore[assignment]
        name = "size"
    else:
        name = given[0]
    array, batched = _as_image_array(image)
    height, width = array.shape[:2]
    if longest_side is not None:
        longest = _positive_int(longest_side, name)
        scale = longest / max(height, width)
        new_height, new_width = max(1, round(height * scale)), max(1, round(width * scale))
    else:
        if isinstance(exact, (str, bytes)) or not hasattr(exact, "__len__") or len(exact) != 2:
            raise InputError(
                f"must be {'an int or ' if name == 'size' else ''}a (height, width) pair, got {exact!r}",
                where=name,
                fix=f"pass e.g. {name}=(224, 224)",
            )
        new_height = _positive_int(exact[0], f"{name}[0] (height)")  # type: ignore[index]
        new_width = _positive_int(exact[1], f"{name}[1] (width)")  # type: ignore[index]
    out = _resize_array(array, new_height, new_width, method)
    return out[None] if batched else out


def ensure_min_size(image: Any, min_side: int, *, method: str = "bicubic") -> np.ndarray:
    """Upscale an image, keeping its aspect ratio, so its shorter side is at least ``min_side``.

    Inception v3 needs inputs of at least 75 × 75 pixels (its stem shrinks by 32 with valid
    padding), so DeepDream octaves call ``ensure_min_size(image, 75)``. An image already large
    enough is returned as float32 without resampling.

    Args:
        image: float ``[H, W, 3]`` or ``[1, H, W, 3]`` in ``[0, 1]``, or uint8; array or tensor.
        min_side: the smallest allowed ``min(H, W)``, in pixels.
        method: a :data:`RESIZE_METHODS` name; bicubic by default.

    Returns:
        float32 image of the same rank with ``min(H', W') == min_side`` if it was smaller,
        otherwise the input as float32 (not copied if it already was).

    Raises:
        InputError: ``min_side`` ≤ 0 or a bad image.

    Example::

        >>> ensure_min_size(np.zeros((8, 16, 3), np.float32), 75).shape
        (75, 150, 3)
    """
    min_side = _positive_int(min_side, "min_side")
    array, batched = _as_image_array(image)
    height, width = array.shape[:2]
    short = min(height, width)
    if short < min_side:
        scale = min_side / short
        new_height = min_side if height == short else max(min_side, round(height * scale))
        new_width = min_side if width == short else max(min_side, round(width * scale))
        array = _resize_array(array, new_height, new_width, method)
    return array[None] if batched else array


def to_pil(image: Any) -> Image.Image:
    """Convert an image array or tensor to an 8-bit RGB PIL image.

    Floats are clipped to ``[0, 1]`` and rounded to the nearest of 256 levels
    (``round(255 · x)``); uint8 is used as it is.

    Args:
        image: float ``[H, W, 3]`` or ``[1, H, W, 3]`` in ``[0, 1]`` (float16/32/64), or uint8 in
            ``[0, 255]``; a NumPy array or a TensorFlow tensor.

    Returns:
        a ``PIL.Image.Image`` of mode ``"RGB"`` and size ``(W, H)``.

    Raises:
        InputError: a wrong shape, a batch of more than one, NaN/Inf values, or another dtype.

    Example::

        >>> to_pil(np.ones((2, 3, 3), np.float32)).size
        (3, 2)
    """
    array, _ = _image_shape(image)
    if array.dtype == np.uint8:
        pixels = array
    else:
        floats, _ = _as_image_array(array)
        pixels = np.rint(np.clip(floats, 0.0, 1.0) * 255.0).astype(np.uint8)
    return Image.fromarray(np.ascontiguousarray(pixels))


# ---------------------------------------------------------------- colour (for NST's colour preservation)
_YCBCR = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]], np.float32)
"""RGB → YCbCr (JPEG's full-range BT.601, Cb and Cr centred on 0): Y = 0.299 R + 0.587 G + 0.114 B."""


def rgb_to_ycbcr(image: Any) -> np.ndarray:
    """``[H, W, 3]`` RGB in [0, 1] → Y in [0, 1], Cb and Cr in [-0.5, 0.5] (float32)."""
    return np.asarray(image, np.float32) @ _YCBCR.T


def ycbcr_to_rgb(image: Any) -> np.ndarray:
    """The inverse of :func:`rgb_to_ycbcr` (not clipped)."""
    return np.asarray(image, np.float32) @ np.linalg.inv(_YCBCR).T


def keep_colors(stylized: Any, content: Any) -> np.ndarray:
    """The stylised image's luminance Y with the content's chroma (Cb, Cr), clipped to [0, 1].

    Both ``[H, W, 3]`` in [0, 1] of the same shape: the luminance-only transfer of Gatys et al. 2016.
    """
    y = rgb_to_ycbcr(stylized)[..., :1]
    cbcr = rgb_to_ycbcr(content)[..., 1:]
    return np.clip(ycbcr_to_rgb(np.concatenate([y, cbcr], axis=-1)), 0.0, 1.0)


def match_colors(source: Any, reference: Any) -> np.ndarray:
    """``source`` with the mean and covariance of ``reference``'s RGB colours, clipped to [0, 1].

    .. math:: x' = \\Sigma_r^{1/2} \\Sigma_s^{-1/2} (x - \\mu_s) + \\mu_r

    (symmetric matrix square roots; Gatys et al. 2016's colour histogram matching). ``[H, W, 3]`` in
    [0, 1]; the two images may differ in size.
    """
    def stats(image):
        pixels = np.asarray(image, np.float64).reshape(-1, 3)
        return pixels, pixels.mean(0), np.cov(pixels, rowvar=False) + 1e-5 * np.eye(3)

    def sqrt(cov, power):
        values, vectors = np.linalg.eigh(cov)
        return vectors @ np.diag(values ** power) @ vectors.T

    pixels, mu_s, cov_s = stats(source)
    _, mu_r, cov_r = stats(reference)
    out = (pixels - mu_s) @ (sqrt(cov_r, 0.5) @ sqrt(cov_s, -0.5)).T + mu_r
    return np.clip(out, 0.0, 1.0).reshape(np.shape(source)).astype(np.float32)
