"""Safe file writing: atomic writes, JSON, and output-path checks.

Every writer here puts the bytes in a temporary file *in the target's folder* (named
``.<target name>.<random>.tmp``), flushes and ``fsync``s it, then moves it over the target with
:func:`os.replace`, which is atomic on POSIX and Windows. A reader therefore sees either the old file
or the complete new one, never half a file, and a crash or error leaves no partial file at the
target. On any failure the temporary file is removed and the error is raised again.

Floor 0: imports only the standard library, NumPy and :mod:`nstdream_utils.errors` (never
TensorFlow), so the command line can check paths in milliseconds before loading a network.

Used by ``images.save_image``, ``report`` and ``batch``; taught in notebook 01.

Example::

    >>> path = write_json({"b": 1, "a": float("nan")}, "run.json")  # doctest: +SKIP
    >>> path.read_text()  # doctest: +SKIP
    '{\\n  "a": null,\\n  "b": 1\\n}\\n'
"""

from __future__ import annotations

import errno
import json
import math
import os
import stat
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from nstdream_utils.errors import InputError, MissingFileError, NstdreamError

__all__ = [
    "check_regular_file",
    "file_kind",
    "atomic_write_bytes",
    "atomic_write_text",
    "write_json",
    "to_jsonable",
    "check_output_path",
    "TEMP_PREFIX",
    "TEMP_SUFFIX",
]

#: Temporary files start with this (hidden on POSIX) and end with :data:`TEMP_SUFFIX`.
TEMP_PREFIX = "."
TEMP_SUFFIX = ".tmp"

PathLike = str | os.PathLike


def _as_path(path: PathLike, *, what: str = "path") -> Path:
    """``path`` as a :class:`Path` with ``~`` expanded; TypeError for anything that is not a path."""
    if isinstance(path, bytes) or not isinstance(path, (str, os.PathLike)):
        raise TypeError(
            f"{what} must be a str or pathlib.Path, got {type(path).__name__} {path!r} — "
            "pass the file name as a string, e.g. 'out/result.png'"
        )
    text = os.fspath(path)
    if not text:
        raise InputError(f"empty {what}", where=repr(text), fix="give a file name, e.g. 'out/result.png'")
    return Path(text).expanduser()


_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def file_kind(mode: int) -> str:
    """What an ``st_mode`` is, in words: ``"a regular file"``, ``"a FIFO (named pipe)"``, ``"a folder"`` …"""
    if stat.S_ISREG(mode):
        return "a regular file"
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def check_regular_file(
    path: PathLike,
    *,
    what: str = "file",
    max_bytes: int | None = None,
    error: type[NstdreamError] = InputError,
    fix: str = "give the path of a regular file",
) -> os.stat_result:
    """Check that ``path`` is a regular file of at most ``max_bytes`` bytes, without opening it.

    Only :func:`os.stat` is called (symbolic links are followed), so a FIFO, a device such as
    ``/dev/zero``, a socket or a folder is refused before anything could block on it or read it
    without end, and an oversized file before a byte of it is read.

    Args:
        path: the file; ``~`` is expanded.
        what: how messages name it (``"image"``, ``"grid file"``, ``"weight file"``).
        max_bytes: the largest size accepted, ``None`` for any.
        error: the class raised for a file that is there but unusable.
        fix: the fix given when something other than a regular file is there.

    Returns:
        The file's :func:`os.stat` result.

    Raises:
        MissingFileError: nothing at ``path`` (a dangling symbolic link is ``error``).
        ``error``: a symbolic-link loop, a dangling link, not a regular file, unreadable metadata,
            or over ``max_bytes`` — naming the path, what is there and the fix.
    """
    target = _as_path(path, what=f"{what} path")
    try:
        info = os.stat(target)
    except FileNotFoundError:
        if not os.path.islink(target):
            raise MissingFileError(f"no such {what}", where=str(target), fix="check the spelling and the folder") from None
        raise error(f"is a symbolic link to '{os.readlink(target)}', which does not exist", where=str(target),
                    fix="point the link at an existing file, or remove it") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise error("is a symbolic link loop (it leads back to itself)", where=str(target),
                        fix="replace the link with the file, or point it at the file") from None
        raise error(f"cannot be examined ({exc.strerror or exc})", where=str(target),
                    fix="check the path and the permissions of its folders") from None
    if not stat.S_ISREG(info.st_mode):
        raise error(f"is {file_kind(info.st_mode)}, not a regular {what}", where=str(target), fix=fix)
    if max_bytes is not None and info.st_size > max_bytes:
        raise error(f"is {info.st_size:_} bytes, over the limit of {max_bytes:_} bytes for a {what}",
                    where=str(target), fix="check that this is the right file")
    return info


def _current_umask() -> int:
    """The process umask, read without changing it where the OS allows (Linux ``/proc``)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # fallback: read by setting, then restore at once
    os.umask(mask)
    return mask


def _fsync_folder(folder: Path) -> None:
    """Flush the folder entry after a rename so it survives a power cut (best effort, POSIX only)."""
    if os.name != "posix":
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(data: bytes | bytearray | memoryview, path: PathLike) -> Path:
    """Write ``data`` to ``path`` atomically: the file is either the old one or all of ``data``.

    Writes ``.<name>.<random>.tmp`` in the same folder, flushes and fsyncs it, then
    :func:`os.replace`\\ s it onto ``path``. The new file gets the usual permissions
    (``0o666`` less the umask), or keeps the mode of the file it replaces.

    Args:
        data: the bytes to write.
        path: the target file; its folder must exist.

    Returns:
        ``path`` as a :class:`pathlib.Path`.

    Raises:
        TypeError: ``data`` is not bytes-like (use :func:`atomic_write_text` for ``str``).
        InputError: the folder is missing or ``path`` is a folder.
        OSError: the write itself failed (disk full, permission denied). The temporary file is
            removed and an existing file at ``path`` is left untouched.

    Example::

        >>> atomic_write_bytes(b"\\x89PNG...", "out/result.png")  # doctest: +SKIP
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(
            f"data must be bytes, got {type(data).__name__} — "
            "encode text first or call atomic_write_text(text, path)"
        )
    target = _as_path(path)
    folder = target.parent
    if not folder.is_dir():
        raise InputError(
            "the folder does not exist",
            where=str(target),
            fix=f"create it first (mkdir -p '{folder}') or choose another output path",
        )
    if target.is_dir():
        raise InputError(
            "is a folder, not a file",
            where=str(target),
            fix=f"give a file name inside it, e.g. '{target / 'output'}'",
        )
    try:
        mode = target.stat().st_mode & 0o7777
    except OSError:
        mode = 0o666 & ~_current_umask()

    fd, temp_name = tempfile.mkstemp(prefix=f"{TEMP_PREFIX}{target.name}.", suffix=TEMP_SUFFIX, dir=folder)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp_name, mode)
        os.replace(temp_name, target)
    except BaseException:
        try:
            os.unlink(temp_name)
        except FileNotFoundError:
            pass
        raise
    _fsync_folder(folder)
    return target


def atomic_write_text(text: str, path: PathLike, *, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_write_bytes`).

    Args:
        text: the text; newlines are written as given (``\\n``), never translated.
        path: the target file; its folder must exist.
        encoding: the text encoding, UTF-8 by default.

    Returns:
        ``path`` as a :class:`pathlib.Path`.

    Raises:
        TypeError: ``text`` is not a ``str``.
        InputError, OSError: as :func:`atomic_write_bytes`.
    """
    if not isinstance(text, str):
        raise TypeError(
            f"text must be a str, got {type(text).__name__} — "
            "use atomic_write_bytes(data, path) for bytes, or write_json(obj, path) for data"
        )
    return atomic_write_bytes(text.encode(encoding), path)


def to_jsonable(obj: Any) -> Any:
    """``obj`` as plain JSON types: NumPy scalars and arrays become numbers and lists.

    Conversions: NumPy integer/float/bool scalars → ``int``/``float``/``bool``; arrays (and anything
    with ``__array__``, such as a TensorFlow tensor) → nested lists; tuples and sets → lists (sets
    sorted); :class:`pathlib.Path` → ``str``; mapping keys → ``str``; **NaN, +Inf and -Inf → None**
    (JSON ``null``).

    Note:
        Non-finite numbers are written as ``null`` rather than refused, because a history that
        diverged (loss NaN at step 57) is exactly the record you want to keep; standard JSON has no
        NaN, and Python's ``NaN`` token breaks other readers. Read a ``null`` in a loss list as
        "not finite".

    Raises:
        TypeError: a value JSON cannot hold (e.g. an object), naming its type and where it is.
    """
    return _to_jsonable(obj, "obj")


def _to_jsonable(obj: Any, where: str) -> Any:
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, (int, np.integer)) and not isinstance(obj, np.bool_):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, (float, np.floating)):
        value = float(obj)
        return value if math.isfinite(value) else None
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if isinstance(obj, Mapping):
        return {str(key): _to_jsonable(value, f"{where}[{key!r}]") for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_to_jsonable(value, f"{where}[{i}]") for i, value in enumerate(obj)]
    if isinstance(obj, (set, frozenset)):
        return sorted((_to_jsonable(value, where) for value in obj), key=repr)
    if isinstance(obj, np.ndarray) or hasattr(obj, "__array__"):
        array = np.asarray(obj)
        if array.dtype.kind in "biuf":
            return _to_jsonable(array.tolist(), where)
        if array.dtype.kind in "U":
            return array.tolist()
    raise TypeError(
        f"{where} has type {type(obj).__name__}, which JSON cannot hold — "
        "convert it to numbers, strings, lists or dicts first (e.g. a dataclass with dataclasses.asdict)"
    )


def write_json(obj: Any, path: PathLike, *, indent: int = 2) -> Path:
    """Write ``obj`` as JSON to ``path`` atomically, with sorted keys and a trailing newline.

    ``obj`` is first passed through :func:`to_jsonable`: NumPy scalars and arrays become numbers and
    lists, and **NaN / Inf become** ``null`` (see the note there). The output is stable: the same
    ``obj`` always gives the same bytes (sorted keys, ``indent`` spaces, UTF-8, ``ensure_ascii``).

    Args:
        obj: dicts, lists, numbers, strings, ``None``, NumPy values.
        path: the target ``.json`` file; its folder must exist.
        indent: spaces per level, 2 by default.

    Returns:
        ``path`` as a :class:`pathlib.Path`.

    Raises:
        TypeError: ``obj`` holds something JSON cannot (named with where it is).
        InputError, OSError: as :func:`atomic_write_bytes`.
    """
    text = json.dumps(to_jsonable(obj), indent=indent, sort_keys=True, allow_nan=False, ensure_ascii=True)
    return atomic_write_text(text + "\n", path)


def _probe_writable(folder: Path) -> OSError | None:
    """Create and delete a temporary file in ``folder``; return the error if that fails.

    ``os.access`` alone is not enough: root passes every permission check, yet a read-only mount
    still refuses the write. The probe sees what the real write will see.
    """
    try:
        fd, name = tempfile.mkstemp(prefix=f"{TEMP_PREFIX}nstdream-probe.", suffix=TEMP_SUFFIX, dir=folder)
    except OSError as error:
        return error
    os.close(fd)
    try:
        os.unlink(name)
    except OSError:
        pass
    return None


#: Characters the temporary sibling adds to a name: ``.`` + ``.`` + 8 random characters + ``.tmp``.
_TEMP_EXTRA = len(TEMP_PREFIX) + 1 + 8 + len(TEMP_SUFFIX)


def _check_name_length(target: Path) -> None:
    """Refuse a file name the file system cannot hold, counting what the temporary sibling adds."""
    try:
        limit = os.pathconf(target.parent, "PC_NAME_MAX")
    except (OSError, ValueError, AttributeError):
        limit = 255
    length = len(os.fsencode(target.name))
    if length + _TEMP_EXTRA > limit:
        raise InputError(
            f"the file name is {length} bytes; this folder allows {limit}, and writing it safely needs "
            f"{_TEMP_EXTRA} more for a temporary name",
            where=str(target)[:80] + ("…" if len(str(target)) > 80 else ""),
            fix=f"use a name of at most {limit - _TEMP_EXTRA} bytes",
        )


def check_output_path(path: PathLike, *, suffixes: Iterable[str] | None = (".png",)) -> Path:
    """Check that a file can be written at ``path``, before doing any slow work.

    Checks, in order: ``path`` is not a folder, its suffix is one of ``suffixes``
    (case-insensitive), its folder exists and is a folder, the name is short enough for the file system
    even with the temporary name's extra characters, and that folder is writable: ``os.access``
    **and** a real probe file (``.nstdream-probe.*.tmp``, deleted at once), because root passes every
    permission check yet still cannot write to a read-only mount. An existing file at ``path`` is
    fine: it will be replaced atomically.

    Args:
        path: the output file, e.g. ``"out/stylized.png"``; ``~`` is expanded.
        suffixes: allowed file endings, each with its dot; ``None`` allows any.

    Returns:
        ``path`` as a :class:`pathlib.Path` (``~`` expanded, not resolved).

    Raises:
        TypeError: ``path`` is not a ``str`` or ``PathLike``.
        InputError: naming the path, what is wrong and the fix.

    Example::

        >>> check_output_path("result.jpg")  # doctest: +SKIP
        Traceback (most recent call last):
        ...
        nstdream_utils.errors.InputError: result.jpg: wrong file type '.jpg', expected .png — ...
    """
    target = _as_path(path, what="output path")
    if isinstance(suffixes, str):
        suffixes = (suffixes,)
    allowed = None if suffixes is None else tuple(s.lower() for s in suffixes)
    if target.is_dir():
        example = target / ("output" + (allowed[0] if allowed else ""))
        raise InputError(
            "is a folder, not a file",
            where=str(target),
            fix=f"give a file name inside it, e.g. '{example}'",
        )
    if allowed is not None:
        if target.suffix.lower() not in allowed:
            expected = " or ".join(allowed)
            got = f"'{target.suffix}'" if target.suffix else "no suffix"
            raise InputError(
                f"wrong file type {got}, expected {expected}",
                where=str(target),
                fix=f"name the file with {allowed[0]}, e.g. '{target.with_suffix(allowed[0]).name}'",
            )
    folder = target.parent
    if not folder.exists():
        raise InputError(
            f"the output folder '{folder}' does not exist",
            where=str(target),
            fix=f"create it first (mkdir -p '{folder}') or choose another output path",
        )
    if not folder.is_dir():
        raise InputError(
            f"'{folder}' is a file, not a folder",
            where=str(target),
            fix="choose an output path inside an existing folder",
        )
    _check_name_length(target)
    error = None if os.access(folder, os.W_OK | os.X_OK) else PermissionError("os.access: not writable")
    if error is None:
        error = _probe_writable(folder)
    if error is not None:
        raise InputError(
            f"the output folder '{folder}' is not writable ({error})",
            where=str(target),
            fix="choose a folder you can write to, or change its permissions (chmod u+w)",
        ) from error
    return target
