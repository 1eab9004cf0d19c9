"""The bundled images in ``data/`` (or ``$NSTDREAM_DATA_DIR``): styles drawn by ``make_styles.py``, skimage photos."""

import io
import os
from pathlib import Path

from PIL import Image

from nstdream_utils.errors import InputError, MissingFileError, NstdreamError, did_you_mean
from nstdream_utils.files import atomic_write_bytes

PAPER_STYLES = ("triangle", "circular", "spiral", "3d_squares")  # the paper's Fig. 5, as look-alikes
GRADED_STYLES = ("smooth_gradient", "stripes", "checkerboard", "noise")  # least to most busy
STYLE_NAMES = PAPER_STYLES + GRADED_STYLES
CONTENT_NAMES = ("astronaut", "chelsea", "coffee", "rocket", "camera")  # from skimage.data; data/LICENSES.md
STYLE_SCRIPT = Path(__file__).resolve().parent.parent / "data" / "make_styles.py"  # in a checkout only


def data_dir() -> Path:
    """``$NSTDREAM_DATA_DIR`` if set (read at each call), else ``data/`` at the repository root."""
    return Path(os.environ.get("NSTDREAM_DATA_DIR") or STYLE_SCRIPT.parent).expanduser()


def course_path(value: str | os.PathLike) -> Path:
    """A path relative to ``notebooks/`` (as the notebooks write it: ``../data/...``) made absolute; absolute stays."""
    return (STYLE_SCRIPT.parent.parent / "notebooks" / Path(value).expanduser()).resolve()


def _existing(name: object, names: tuple[str, ...], kind: str) -> Path:
    """``data_dir()/<folder>/<name>.png``; TypeError, InputError suggesting a close name, or MissingFileError."""
    if not isinstance(name, str):
        raise TypeError(f"{kind} name must be a str, got {type(name).__name__} {name!r} — use one of {list(names)}")
    if name not in names:
        raise InputError(f"unknown {kind} {name!r}", where=f"{kind}_path",
                         fix=did_you_mean(name, names, f"valid names: {', '.join(names)}"))
    path = data_dir() / ("styles" if kind == "style" else kind) / f"{name}.png"
    if not path.is_file():
        raise MissingFileError(f"the {kind} image {name!r} has not been generated", where=str(path),
                               fix=f"run `nstdream data {path.parent.name}` in a checkout of the repository")
    return path


def style_path(name: str) -> Path:
    """``data_dir()/styles/<name>.png``; errors as :func:`_existing`."""
    return _existing(name, STYLE_NAMES, "style")


def content_path(name: str) -> Path:
    """``data_dir()/content/<name>.png``; errors as :func:`_existing`."""
    return _existing(name, CONTENT_NAMES, "content")


def write_content(directory: str | os.PathLike | None = None) -> list[Path]:
    """Write :data:`CONTENT_NAMES` as RGB PNGs of ≤ 512 px into ``directory`` (default ``data_dir()/content``)."""
    try:
        import skimage.data
    except ImportError as error:
        raise NstdreamError("scikit-image is not installed", fix="pip install 'nstdream[data]'") from error
    folder = data_dir() / "content" if directory is None else Path(directory).expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in CONTENT_NAMES:
        photo = Image.fromarray(getattr(skimage.data, name)()).convert("RGB")  # uint8
        photo.thumbnail((512, 512), Image.Resampling.LANCZOS, reducing_gap=None)
        photo.save(buffer := io.BytesIO(), format="PNG", compress_level=9)
        paths.append(atomic_write_bytes(buffer.getvalue(), folder / f"{name}.png"))
    return paths
