"""The bundled images: their names, the folder they live in, and the path of each.

``data/styles`` holds eight style images drawn by ``data/make_styles.py``: look-alikes of the four
geometric images of the paper (Al-Khazraji, Abbas & Jamil 2022, Fig. 5; :data:`PAPER_STYLES`) and
four of graded busyness (:data:`GRADED_STYLES`, least to most busy). ``data/content`` holds five
permissively licensed photos copied from scikit-image (:data:`CONTENT_NAMES`) by :func:`write_content`.

Files live in :func:`data_dir` (``<repo>/data``, or ``$NSTDREAM_DATA_DIR``); ``nstdream data styles``
and ``nstdream data content`` rewrite them.

Floor 5: imports NumPy, PIL and the lower-floor :mod:`nstdream_utils.errors` and :mod:`nstdream_utils.files`,
never TensorFlow; scikit-image only inside :func:`write_content`.

Example::

    >>> from nstdream_utils import data
    >>> data.style_path("spiral").name  # doctest: +SKIP
    'spiral.png'
"""

from __future__ import annotations

import difflib
import io
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from nstdream_utils.errors import InputError, MissingFileError, NstdreamError
from nstdream_utils.files import atomic_write_bytes

__all__ = [
    "PAPER_STYLES",
    "GRADED_STYLES",
    "STYLE_NAMES",
    "CONTENT_NAMES",
    "STYLE_SCRIPT",
    "data_dir",
    "style_path",
    "content_path",
    "write_content",
    "course_path",
]

#: The paper's four style images (Fig. 5), drawn as look-alikes.
PAPER_STYLES = ("triangle", "circular", "spiral", "3d_squares")
#: Extra styles ordered from least to most busy; ``reproduction.distortion_score`` ranks them in this order.
GRADED_STYLES = ("smooth_gradient", "stripes", "checkerboard", "noise")
#: Every style name: the paper's first, then the graded ones.
STYLE_NAMES = PAPER_STYLES + GRADED_STYLES
#: Content photos copied from ``skimage.data`` (licences in ``data/LICENSES.md``).
CONTENT_NAMES = ("astronaut", "chelsea", "coffee", "rocket", "camera")
#: The script that draws the style images; it exists only in a checkout of the repository.
STYLE_SCRIPT = Path(__file__).resolve().parent.parent / "data" / "make_styles.py"


def data_dir() -> Path:
    """The data folder: ``$NSTDREAM_DATA_DIR`` if set (read at each call), else ``data/`` at the repository root."""
    override = os.environ.get("NSTDREAM_DATA_DIR")
    return Path(override).expanduser() if override else STYLE_SCRIPT.parent


def course_path(value: str | os.PathLike) -> Path:
    """A path as the notebooks write it, relative to the course's ``notebooks/`` folder (``../data/...``,
    ``../results/paper``), made absolute: the same file from any working folder. Absolute paths stay."""
    path = Path(value).expanduser()
    return path if path.is_absolute() else (STYLE_SCRIPT.parent.parent / "notebooks" / path).resolve()


def _existing(name: object, names: Sequence[str], *, kind: str, fix: str) -> Path:
    """``data_dir()/styles/<name>.png`` or ``data_dir()/content/<name>.png``; an unknown name gets a suggestion."""
    if not isinstance(name, str):
        raise TypeError(f"{kind} name must be a str, got {type(name).__name__} {name!r} — use one of {list(names)}")
    if name not in names:
        close = difflib.get_close_matches(name.lower().replace("-", "_").replace(" ", "_"), names, n=1, cutoff=0.5)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise InputError(f"unknown {kind} {name!r}", where=f"{kind}_path", fix=f"{hint}valid names: {', '.join(names)}")
    path = data_dir() / ("styles" if kind == "style" else kind) / f"{name}.png"
    if not path.is_file():
        raise MissingFileError(f"the {kind} image {name!r} has not been generated", where=str(path), fix=fix)
    return path


def style_path(name: str) -> Path:
    """Path of the saved style image ``name`` (``data_dir()/styles/<name>.png``).

    Raises:
        InputError: unknown ``name``; the message suggests the closest one.
        MissingFileError: (a ``FileNotFoundError``) the file is missing; the fix says how to make it.
    """
    return _existing(name, STYLE_NAMES, kind="style", fix="run `nstdream data styles` in a checkout of the repository")


def content_path(name: str) -> Path:
    """Path of the saved content photo ``name`` (``data_dir()/content/<name>.png``).

    Raises:
        InputError: unknown ``name``; the message suggests the closest one.
        MissingFileError: (a ``FileNotFoundError``) the file is missing; the fix says how to make it.
    """
    return _existing(
        name, CONTENT_NAMES, kind="content",
        fix="run `nstdream data content`; it needs scikit-image: pip install 'nstdream[data]'",
    )


def write_content(directory: str | os.PathLike | None = None) -> list[Path]:
    """Copy the :data:`CONTENT_NAMES` photos from scikit-image as PNGs with a longest side of at most 512 px.

    ``astronaut`` (NASA, public domain), ``chelsea`` (CC0) and ``camera`` (CC0, greyscale, stored as
    RGB) keep their size; ``coffee`` (CC0) and ``rocket`` (SpaceX, public domain) are shrunk to a
    longest side of 512 px with a Lanczos filter. Each file is written atomically to
    ``directory`` (default ``data_dir()/content``); returns the paths.

    Raises:
        NstdreamError: scikit-image is not installed.
    """
    try:
        import skimage.data  # only here: an optional dependency
    except ImportError as error:
        raise NstdreamError("scikit-image is not installed", where="write_content",
                            fix="pip install 'nstdream[data]' (or scikit-image), then run it again") from error
    folder = data_dir() / "content" if directory is None else Path(directory).expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in CONTENT_NAMES:
        photo = Image.fromarray(np.asarray(getattr(skimage.data, name)(), dtype=np.uint8)).convert("RGB")
        scale = 512 / max(photo.size)
        if scale < 1:
            photo = photo.resize((round(photo.width * scale), round(photo.height * scale)), Image.Resampling.LANCZOS)
        buffer = io.BytesIO()
        photo.save(buffer, format="PNG", compress_level=9)
        paths.append(atomic_write_bytes(buffer.getvalue(), folder / f"{name}.png"))
    return paths
