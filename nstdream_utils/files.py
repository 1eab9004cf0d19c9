"""Path checks and atomic writes (a hidden ``.<name>.<8 hex>.tmp`` beside the target, fsynced, then os.replace)."""

import json
import os
import stat
import tempfile
from pathlib import Path

import numpy as np

from nstdream_utils.errors import InputError, MissingFileError, NstdreamError

TEMP_SUFFIX = ".tmp"
_KINDS = dict(d="a folder", p="a FIFO (named pipe)", c="a character device", b="a block device", s="a socket")


def _as_path(path: str | os.PathLike, *, what: str = "path") -> Path:
    """``path`` with ``~`` expanded; InputError for an empty one."""
    if not os.fspath(path):
        raise InputError(f"empty {what}", where="''", fix="give a file name, e.g. 'out/result.png'")
    return Path(path).expanduser()


def check_regular_file(path: str | os.PathLike, *, what: str = "file", max_bytes: int | None = None,
                       error: type[NstdreamError] = InputError, fix: str = "give the path of a regular file"):
    """The ``os.stat`` of a regular file of at most ``max_bytes``, unopened; MissingFileError, else ``error``."""
    target = _as_path(path, what=f"{what} path")
    try:
        info = target.stat()
    except FileNotFoundError:
        raise MissingFileError(f"no such {what}", where=str(target), fix="check the spelling and the folder") from None
    except OSError as exc:  # a link loop, a folder we cannot enter
        raise error(f"cannot be examined ({exc.strerror or exc})", where=str(target),
                    fix="check the path, its links and the permissions of its folders") from None
    if not stat.S_ISREG(info.st_mode):
        kind = _KINDS.get(stat.filemode(info.st_mode)[0], "something else")  # by the mode's first letter
        raise error(f"is {kind}, not a regular {what}", where=str(target), fix=fix)
    if max_bytes is not None and info.st_size > max_bytes:
        raise error(f"is {info.st_size:_} bytes, over the limit of {max_bytes:_} bytes for a {what}",
                    where=str(target), fix=f"check that this is the right file; {fix}")
    return info


def atomic_write_bytes(data: bytes | bytearray | memoryview, path: str | os.PathLike) -> Path:
    """Write ``data`` atomically, keeping the replaced file's mode (else ``0o666`` less the umask); the path."""
    target = check_output_path(path, suffixes=None)
    temp = target.parent / f".{target.name}.{os.urandom(4).hex()}{TEMP_SUFFIX}"
    try:
        with open(temp, "xb") as handle:  # a new file: 0o666 less the umask
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if target.exists():
            os.chmod(temp, stat.S_IMODE(target.stat().st_mode))
        os.replace(temp, target)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return target


def atomic_write_text(text: str, path: str | os.PathLike) -> Path:
    """Write ``text`` in UTF-8 atomically (:func:`atomic_write_bytes`); newlines as given."""
    return atomic_write_bytes(text.encode(), path)


def to_jsonable(obj: object, where: str = "obj") -> object:
    """``obj`` in JSON types (NumPy as lists, NaN/±Inf as None); TypeError naming ``where`` if not."""
    if hasattr(obj, "__array__") and np.asarray(obj).dtype.kind in "biufU":  # NumPy scalars and arrays
        obj = np.asarray(obj).tolist()
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return None if isinstance(obj, float) and not np.isfinite(obj) else obj
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if isinstance(obj, dict):
        return {str(key): to_jsonable(value, f"{where}[{key!r}]") for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(value, f"{where}[{i}]") for i, value in enumerate(obj)]
    raise TypeError(f"{where} has type {type(obj).__name__}, which JSON cannot hold — convert it first")


def write_json(obj: object, path: str | os.PathLike) -> Path:
    """Write :func:`to_jsonable` of ``obj`` atomically: sorted keys, ASCII, a trailing newline (stable bytes)."""
    text = json.dumps(to_jsonable(obj), indent=2, sort_keys=True, allow_nan=False, ensure_ascii=True)
    return atomic_write_text(text + "\n", path)


def check_output_path(path: str | os.PathLike, *, suffixes: tuple[str, ...] | None = (".png",)) -> Path:
    """``path`` if a file can be written there with its suffix (any case) in ``suffixes`` (lower case; None: any)."""
    target = _as_path(path, what="output path")
    where, folder = str(target), target.parent
    if target.is_dir():
        raise InputError("is a folder, not a file", where=where,
                         fix=f"give a file name inside it, e.g. '{target / ('output' + (suffixes or ('',))[0])}'")
    if suffixes is not None and target.suffix.lower() not in suffixes:
        got = f"'{target.suffix}'" if target.suffix else "no suffix"
        raise InputError(f"wrong file type {got}, expected {' or '.join(suffixes)}", where=where,
                         fix=f"name the file with {suffixes[0]}, e.g. '{target.with_suffix(suffixes[0]).name}'")
    if not folder.is_dir():
        raise InputError(f"the output folder '{folder}' " + ("is a file" if folder.exists() else "does not exist"),
                         where=where, fix=f"choose an existing folder, or create it (mkdir -p '{folder}')")
    try:
        tempfile.TemporaryFile(dir=folder).close()
    except OSError as error:
        raise InputError(f"the output folder '{folder}' is not writable ({error})", where=where,
                         fix="choose a folder you can write to, or change its permissions (chmod u+w)") from error
    return target
