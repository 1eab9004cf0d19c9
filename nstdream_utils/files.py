"""Safe files, without TensorFlow: checks of input and output paths, and atomic writes (a hidden ``.<name>.<8 hex>.tmp``
in the target's folder, fsynced, then moved with :func:`os.replace`: a reader sees the old file or the new)."""

import difflib
import errno
import json
import math
import os
import stat
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from nstdream_utils.errors import InputError, MissingFileError, NstdreamError

TEMP_SUFFIX = ".tmp"
_TEMP_EXTRA = len(".") + len(".12345678") + len(TEMP_SUFFIX)  # what the temporary name adds to a file name
_KINDS = {"d": "a folder", "p": "a FIFO (named pipe)", "c": "a character device", "b": "a block device",
          "s": "a socket"}  # by the first letter of stat.filemode


def _as_path(path: str | os.PathLike, *, what: str = "path") -> Path:
    """``path`` with ``~`` expanded; TypeError for a non-path, InputError for an empty one."""
    if isinstance(path, bytes) or not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{what} must be a str or pathlib.Path, got {type(path).__name__} {path!r} — "
                        "pass the file name as a string, e.g. 'out/result.png'")
    if not os.fspath(path):
        raise InputError(f"empty {what}", where="''", fix="give a file name, e.g. 'out/result.png'")
    return Path(os.fspath(path)).expanduser()


def check_regular_file(path: str | os.PathLike, *, what: str = "file", max_bytes: int | None = None,
                       error: type[NstdreamError] = InputError,
                       fix: str = "give the path of a regular file") -> os.stat_result:
    """The ``os.stat`` of ``path`` if it is a regular file of at most ``max_bytes``, without opening it.
    MissingFileError when nothing is there (suggesting a close name); ``error`` with ``fix`` for anything else."""
    target = _as_path(path, what=f"{what} path")
    where, folder = str(target), target.parent
    try:
        info = target.stat()
    except FileNotFoundError:
        if target.is_symlink():
            raise error(f"is a symbolic link to '{os.readlink(target)}', which does not exist", where=where,
                        fix="point the link at an existing file, or remove it") from None
        readable = folder.is_dir() and os.access(folder, os.R_OK)
        close = difflib.get_close_matches(target.name, os.listdir(folder), n=1) if readable else []
        hint = (f"did you mean '{folder / close[0]}'?" if close else "check the spelling and the folder"
                + ("" if folder.is_dir() else f" (the folder '{folder}' does not exist either)"))
        raise MissingFileError(f"no such {what}", where=where, fix=hint) from None
    except OSError as exc:
        raise error("is a symbolic link loop (it leads back to itself)" if exc.errno == errno.ELOOP else
                    f"cannot be examined ({exc.strerror or exc})", where=where,
                    fix="check the path, its links and the permissions of its folders") from None
    if not stat.S_ISREG(info.st_mode):
        kind = _KINDS.get(stat.filemode(info.st_mode)[0], "something else")
        raise error(f"is {kind}, not a regular {what}", where=where, fix=fix)
    if max_bytes is not None and info.st_size > max_bytes:
        raise error(f"is {info.st_size:_} bytes, over the limit of {max_bytes:_} bytes for a {what}",
                    where=where, fix=f"check that this is the right file; {fix}")
    return info


def atomic_write_bytes(data: bytes | bytearray | memoryview, path: str | os.PathLike) -> Path:
    """Write ``data`` to ``path`` atomically; the file keeps the mode of the one it replaces, else ``0o666`` less the
    umask. TypeError for ``data`` not bytes; InputError from :func:`check_output_path`; OSError from the write."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"data must be bytes, got {type(data).__name__} — "
                        "encode text first or call atomic_write_text(text, path)")
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
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__} — "
                        "use atomic_write_bytes(data, path) for bytes, or write_json(obj, path) for data")
    return atomic_write_bytes(text.encode(), path)


def to_jsonable(obj: Any, where: str = "obj") -> Any:
    """``obj`` in JSON types: NumPy values and arrays become numbers and lists, tuples and sets lists, paths and keys
    strings, NaN and ±Inf None. TypeError for a value JSON cannot hold, naming where it is."""
    if isinstance(obj, (np.bool_, np.integer, np.floating)):
        obj = obj.item()
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return None if isinstance(obj, float) and not math.isfinite(obj) else obj
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if isinstance(obj, Mapping):
        return {str(key): to_jsonable(value, f"{where}[{key!r}]") for key, value in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        values = [to_jsonable(value, f"{where}[{i}]") for i, value in enumerate(obj)]
        return sorted(values, key=repr) if isinstance(obj, (set, frozenset)) else values
    if hasattr(obj, "__array__") and np.asarray(obj).dtype.kind in "biufU":
        return to_jsonable(np.asarray(obj).tolist(), where)
    raise TypeError(f"{where} has type {type(obj).__name__}, which JSON cannot hold — convert it to numbers, "
                    "strings, lists or dicts first (e.g. a dataclass with dataclasses.asdict)")


def write_json(obj: Any, path: str | os.PathLike) -> Path:
    """Write :func:`to_jsonable` of ``obj`` atomically: sorted keys, ASCII, a trailing newline (stable bytes)."""
    text = json.dumps(to_jsonable(obj), indent=2, sort_keys=True, allow_nan=False, ensure_ascii=True)
    return atomic_write_text(text + "\n", path)


def check_output_path(path: str | os.PathLike, *, suffixes: tuple[str, ...] | None = (".png",)) -> Path:
    """``path`` (``~`` expanded) if a file can be written there: not a folder, a suffix in ``suffixes`` (any case;
    None: any), an existing folder, a name that fits with the temporary name, and a folder that ``os.access`` and a
    real probe file find writable (root passes ``os.access`` on a read-only mount). InputError naming the fix."""
    target = _as_path(path, what="output path")
    where, folder = str(target), target.parent
    allowed = None if suffixes is None else tuple(s.lower() for s in suffixes)
    if target.is_dir():
        raise InputError("is a folder, not a file", where=where,
                         fix=f"give a file name inside it, e.g. '{target / ('output' + (allowed or ('',))[0])}'")
    if allowed is not None and target.suffix.lower() not in allowed:
        got = f"'{target.suffix}'" if target.suffix else "no suffix"
        raise InputError(f"wrong file type {got}, expected {' or '.join(allowed)}", where=where,
                         fix=f"name the file with {allowed[0]}, e.g. '{target.with_suffix(allowed[0]).name}'")
    if not folder.is_dir():
        raise InputError(f"the output folder '{folder}' " + ("is a file" if folder.exists() else "does not exist"),
                         where=where, fix=f"choose an output path in an existing folder, or create it (mkdir -p "
                         f"'{folder}')")
    limit, size = os.pathconf(folder, "PC_NAME_MAX"), len(os.fsencode(target.name))
    if size + _TEMP_EXTRA > limit:
        raise InputError(f"the file name is {size} bytes; this folder allows {limit}, and writing it safely needs "
                         f"{_TEMP_EXTRA} more for a temporary name", where=where[:80] + "…",
                         fix=f"use a name of at most {limit - _TEMP_EXTRA} bytes")
    try:
        if not os.access(folder, os.W_OK | os.X_OK):
            raise PermissionError("os.access: not writable")
        fd, probe = tempfile.mkstemp(prefix=".nstdream-probe.", suffix=TEMP_SUFFIX, dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as error:
        raise InputError(f"the output folder '{folder}' is not writable ({error})", where=where,
                         fix="choose a folder you can write to, or change its permissions (chmod u+w)") from error
    return target
