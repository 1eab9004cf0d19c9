"""Images in and out, float32 ``[H, W, 3]`` (or ``[1, H, W, 3]``) RGB in [0, 1], without TensorFlow."""

import io
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageFile, ImageOps

from nstdream_utils.errors import InputError
from nstdream_utils.files import _as_path, atomic_write_bytes, check_output_path, check_regular_file

DEFAULT_MAX_PIXELS = 40_000_000  # 8000 × 5000, about 480 MB as float32 RGB
MAX_IMAGE_BYTES = 1 << 30  # largest file opened, checked from its size
RESIZE_METHODS = {"lanczos": Image.Resampling.LANCZOS, "bicubic": Image.Resampling.BICUBIC,
                  "bilinear": Image.Resampling.BILINEAR, "area": Image.Resampling.BOX,
                  "nearest": Image.Resampling.NEAREST}
_RESAVE = "open it in an image viewer and re-save it as PNG or JPEG, or re-download it"
_BOMB = ("shrink the image first (e.g. to 2000 px on the longest side), or, if you trust the file, pass a "
         "larger max_pixels= (beyond Pillow's own limit, also raise PIL.Image.MAX_IMAGE_PIXELS)")


def _positive_int(value: Any, name: str, *, example: int = 512) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise InputError(f"must be a positive whole number of pixels, got {value!r}", where=name,
                         fix=f"pass e.g. {name}={example:_}")
    return int(value)


def _open(path: str | os.PathLike, max_pixels: int | None) -> tuple[Path, Image.Image]:
    """The checked path and the image opened lazily, header only (the caller closes it)."""
    max_pixels = None if max_pixels is None else _positive_int(max_pixels, "max_pixels", example=100_000_000)
    source = _as_path(path, what="image path")
    check_regular_file(source, max_bytes=MAX_IMAGE_BYTES, fix="give the path of one image file (PNG, JPEG, ...)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # max_pixels decides, below
            pil = Image.open(source)
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as error:
        raise InputError(f"cannot be read: not an image Pillow can open, or unreadable ({error})", where=str(source),
                         fix=_BOMB if isinstance(error, Image.DecompressionBombError) else _RESAVE) from error
    width, height = pil.size  # never 0: Pillow refuses a zero size as an unidentified image
    if max_pixels is not None and width * height > max_pixels:
        pil.close()
        raise InputError(f"{width}×{height} = {width * height / 1e6:.1f} megapixels is over the limit of "
                         f"{max_pixels / 1e6:g} megapixels (a guard against decompression bombs)", where=str(source),
                         fix=_BOMB)
    return source, pil


def validate_image_path(path: str | os.PathLike, *, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> Path:
    """``path`` as a Path if its header is a loadable image (milliseconds; errors as :func:`load_image`)."""
    source, pil = _open(path, max_pixels)
    pil.close()
    return source


def load_image(path: str | os.PathLike, *, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """An image file as float32 ``[H, W, 3]`` in [0, 1], EXIF-upright, over white; ``max_pixels`` checked first."""
    source, pil = _open(path, max_pixels)
    with pil:
        saved, ImageFile.LOAD_TRUNCATED_IMAGES = ImageFile.LOAD_TRUNCATED_IMAGES, False  # never pad with grey
        try:
            pil.load()
            upright = ImageOps.exif_transpose(pil)
            if upright.mode[0] in "IF":  # greyscale beyond 8 bits: 16-bit integers, or floats in [0, 1] or [0, 255]
                grey = np.nan_to_num(np.asarray(upright, np.float32), nan=0.0, posinf=1.0, neginf=0.0)
                scale = 65535.0 if upright.mode[0] == "I" else 255.0 if grey.max() > 1.0 else 1.0
                rgb = np.repeat(grey[..., None] / scale, 3, axis=-1)
            else:  # any transparency (alpha, a tRNS colour or palette entry) over white
                rgba = np.asarray(upright.convert("RGBA"), np.float32) / 255.0
                rgb = rgba[..., :3] * rgba[..., 3:] + (1.0 - rgba[..., 3:])
        except Exception as error:  # noqa: BLE001 — any decoder failure means a damaged file
            raise InputError(f"cannot be decoded: the file is truncated or damaged, or its colour mode {pil.mode} "
                             f"has no RGB ({error})", where=str(source), fix=_RESAVE) from error
        finally:
            ImageFile.LOAD_TRUNCATED_IMAGES = saved
    return np.ascontiguousarray(np.clip(rgb, 0.0, 1.0), dtype=np.float32)


def save_image(image: Any, path: str | os.PathLike) -> Path:
    """Save ``image`` as an 8-bit RGB PNG (:func:`to_pil`), atomically; InputError for a bad image or path."""
    target = check_output_path(path, suffixes=(".png",))
    to_pil(image).save(buffer := io.BytesIO(), format="PNG")
    return atomic_write_bytes(buffer.getvalue(), target)


def _as_image_array(image: Any) -> tuple[np.ndarray, bool]:
    """``image`` as float32 ``[H, W, 3]`` (uint8 ÷ 255, not clipped) and whether it was a batch of one."""
    array = np.asarray(image)
    batched = array.ndim == 4
    if batched and array.shape[0] != 1:
        raise InputError(f"is a batch of {array.shape[0]} images {array.shape}; one image is expected", where="image",
                         fix="pass one image, e.g. image[0]")
    array = array[0] if batched else array
    if array.ndim != 3 or array.shape[-1] != 3 or min(array.shape[:2]) < 1:
        raise InputError(f"has shape {tuple(np.shape(image))}; expected [H, W, 3] or [1, H, W, 3] with H, W ≥ 1",
                         where="image", fix="pass an RGB image (greyscale: np.repeat(gray[..., None], 3, axis=-1))")
    if array.dtype != np.uint8 and array.dtype.kind != "f":
        raise InputError(f"has dtype {array.dtype}; expected float in [0, 1] or uint8 in [0, 255]", where="image",
                         fix="convert it, e.g. image.astype(np.float32) / 255")
    array = array.astype(np.float32) / 255.0 if array.dtype == np.uint8 else array.astype(np.float32, copy=False)
    if not np.isfinite(array).all():
        raise InputError("contains NaN or Inf values", where="image",
                         fix="check the step that produced it (e.g. a diverging optimisation: lower the learning rate)")
    return array, batched


def resize(image: Any, *, size: int | tuple[int, int] | None = None, longest_side: int | None = None,
           exact: tuple[int, int] | None = None, method: str = "lanczos") -> np.ndarray:
    """``image`` resized to ``longest_side``, ``exact`` ``(height, width)`` or ``size`` (either), float32 in [0, 1]."""
    given = {k: v for k, v in (("size", size), ("longest_side", longest_side), ("exact", exact)) if v is not None}
    if len(given) != 1:
        raise InputError(f"got {', '.join(given) or 'no size'}", where="resize",
                         fix="pass exactly one of size=, longest_side=512 or exact=(height, width)")
    (name, value), = given.items()
    array, batched = _as_image_array(image)
    if name == "longest_side" or (name == "size" and not hasattr(value, "__len__")):
        scale = _positive_int(value, name) / max(array.shape[:2])
        height, width = (max(1, round(side * scale)) for side in array.shape[:2])
    elif isinstance(value, (str, bytes)) or not hasattr(value, "__len__") or len(value) != 2:
        raise InputError(f"must be {'an int or ' if name == 'size' else ''}a (height, width) pair, got {value!r}",
                         where=name, fix=f"pass e.g. {name}=(224, 224)")
    else:
        height, width = _positive_int(value[0], f"{name}[0] (height)"), _positive_int(value[1], f"{name}[1] (width)")
    if not isinstance(method, str) or method not in RESIZE_METHODS:
        raise InputError(f"unknown resize method {method!r}", where="method",
                         fix=f"use one of {', '.join(RESIZE_METHODS)}")
    planes = [Image.fromarray(np.ascontiguousarray(array[..., c])).resize((width, height), RESIZE_METHODS[method])
              for c in range(3)] if array.shape[:2] != (height, width) else [array[..., c] for c in range(3)]
    out = np.clip(np.stack([np.asarray(p) for p in planes], axis=-1), 0.0, 1.0)  # Lanczos rings at sharp edges
    return out[None] if batched else out


def ensure_min_size(image: Any, min_side: int, *, method: str = "bicubic") -> np.ndarray:
    """``image`` as float32 of its rank, upscaled keeping its aspect so that ``min(H, W) >= min_side``, or as it is."""
    min_side = _positive_int(min_side, "min_side")
    array, batched = _as_image_array(image)
    if (scale := min_side / min(array.shape[:2])) <= 1:
        return array[None] if batched else array
    return resize(image, method=method, exact=tuple(max(min_side, round(side * scale)) for side in array.shape[:2]))


def to_pil(image: Any) -> Image.Image:
    """An 8-bit RGB PIL image, ``round(255 · clip(x, 0, 1))``, from float or uint8 ``[H, W, 3]``/``[1, H, W, 3]``."""
    return Image.fromarray(np.rint(np.clip(_as_image_array(image)[0], 0.0, 1.0) * 255.0).astype(np.uint8))


_YCBCR = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]], np.float32)


def rgb_to_ycbcr(image: Any) -> np.ndarray:
    """``[H, W, 3]`` RGB in [0, 1] → Y in [0, 1], Cb and Cr in [-0.5, 0.5] (float32; JPEG's full-range BT.601)."""
    return np.asarray(image, np.float32) @ _YCBCR.T


def keep_colors(stylized: Any, content: Any) -> np.ndarray:
    """The stylised image's Y with the content's Cb, Cr, in [0, 1] (Gatys et al. 2016); ``[H, W, 3]``, one shape."""
    y, cbcr = rgb_to_ycbcr(stylized)[..., :1], rgb_to_ycbcr(content)[..., 1:]
    return np.clip(np.concatenate([y, cbcr], axis=-1) @ np.linalg.inv(_YCBCR).T, 0.0, 1.0)


def match_colors(source: Any, reference: Any) -> np.ndarray:
    """``source`` with ``reference``'s RGB mean and covariance (Gatys et al. 2016), clipped to [0, 1]:
    :math:`\\Sigma_r^{1/2} \\Sigma_s^{-1/2} (x - \\mu_s) + \\mu_r`."""
    def stats(image):  # the pixels, their mean and Σ^power from Σ's eigendecomposition
        pixels = np.asarray(image, np.float64).reshape(-1, 3)
        values, vectors = np.linalg.eigh(np.cov(pixels, rowvar=False) + 1e-5 * np.eye(3))
        return pixels, pixels.mean(0), lambda power: vectors @ np.diag(values ** power) @ vectors.T

    (pixels, mu_s, sigma_s), (_, mu_r, sigma_r) = stats(source), stats(reference)
    out = (pixels - mu_s) @ (sigma_r(0.5) @ sigma_s(-0.5)).T + mu_r
    return np.clip(out, 0.0, 1.0).reshape(np.shape(source)).astype(np.float32)
