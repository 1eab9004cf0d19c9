"""Tests for nstdream_utils.files: atomic writes, JSON, output-path checks."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

from nstdream_utils import files
from nstdream_utils.errors import InputError, NstdreamError


def assert_names_path_and_fix(error: BaseException, path: object) -> None:
    """The message names ``path`` and carries a non-empty fix."""
    assert isinstance(error, NstdreamError)
    text = str(error)
    assert str(path) in text, text
    assert error.fix, text
    assert error.fix in text


def leftovers(folder: Path) -> list[str]:
    """Temporary files an atomic write may have left behind."""
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(files.TEMP_SUFFIX))


# --------------------------------------------------------------------------- atomic writes


def test_atomic_write_bytes_writes_and_returns_path(tmp_path):
    target = tmp_path / "out.bin"
    result = files.atomic_write_bytes(b"\x00\x01hello", target)
    assert result == target and isinstance(result, Path)
    assert target.read_bytes() == b"\x00\x01hello"
    assert leftovers(tmp_path) == []


def test_atomic_write_accepts_str_path_and_bytearray(tmp_path):
    target = tmp_path / "out.bin"
    files.atomic_write_bytes(bytearray(b"abc"), str(target))
    files.atomic_write_bytes(memoryview(b"xyz"), str(target))
    assert target.read_bytes() == b"xyz"


def test_atomic_write_replaces_existing_file_and_keeps_its_mode(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    os.chmod(target, 0o640)
    files.atomic_write_text("new", target)
    assert target.read_text() == "new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640


def test_new_file_gets_umask_permissions_not_mkstemp_0600(tmp_path):
    old = os.umask(0o022)
    try:
        files.atomic_write_bytes(b"x", tmp_path / "a.bin")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.bin").stat().st_mode) == 0o644


def test_temp_file_is_hidden_in_same_folder_and_ends_tmp(tmp_path, monkeypatch):
    seen = []
    real_replace = os.replace

    def spy(src, dst):
        seen.append((Path(src), Path(dst)))
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    files.atomic_write_bytes(b"data", tmp_path / "result.png")
    (src, dst), = seen
    assert src.parent == tmp_path == dst.parent
    assert src.name.startswith(".") and src.name.endswith(".tmp")
    assert not src.exists()


@pytest.mark.parametrize("broken", ["replace", "fsync"])
def test_failed_write_leaves_no_partial_file_and_no_temp(tmp_path, monkeypatch, broken):
    def boom(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, broken, boom)
    target = tmp_path / "out.bin"
    with pytest.raises(OSError, match="No space"):
        files.atomic_write_bytes(b"x" * 10_000, target)
    assert not target.exists()
    assert leftovers(tmp_path) == []


def test_failed_write_keeps_the_old_file_intact(tmp_path, monkeypatch):
    target = tmp_path / "history.json"
    target.write_text('{"old": true}\n')

    def boom(*args, **kwargs):
        raise OSError("simulated crash before rename")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        files.write_json({"new": 1}, target)
    assert target.read_text() == '{"old": true}\n'
    assert leftovers(tmp_path) == []


def test_keyboard_interrupt_mid_write_also_cleans_up(tmp_path, monkeypatch):
    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupt)
    with pytest.raises(KeyboardInterrupt):
        files.atomic_write_bytes(b"x", tmp_path / "out.bin")
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_into_missing_folder_names_path_and_fix(tmp_path):
    target = tmp_path / "missing" / "out.bin"
    with pytest.raises(InputError) as excinfo:
        files.atomic_write_bytes(b"x", target)
    assert_names_path_and_fix(excinfo.value, target)
    assert "mkdir" in excinfo.value.fix


def test_atomic_write_onto_folder_is_refused(tmp_path):
    with pytest.raises(InputError) as excinfo:
        files.atomic_write_bytes(b"x", tmp_path)
    assert_names_path_and_fix(excinfo.value, tmp_path)


def test_atomic_write_text_keeps_unicode_and_newlines(tmp_path):
    target = tmp_path / "notes.txt"
    files.atomic_write_text("α = content_weight\nβ = style_weight\r\n", target)
    assert target.read_bytes() == "α = content_weight\nβ = style_weight\r\n".encode()


# --------------------------------------------------------------------------- JSON


def test_write_json_sorted_indented_with_newline(tmp_path):
    target = files.write_json({"b": 1, "a": {"d": 2, "c": 3}}, tmp_path / "x.json")
    assert target.read_text() == '{\n  "a": {\n    "c": 3,\n    "d": 2\n  },\n  "b": 1\n}\n'


def test_write_json_converts_numpy_values(tmp_path):
    obj = {
        "int": np.int64(3),
        "float": np.float32(0.5),
        "bool": np.bool_(True),
        "array": np.arange(3, dtype=np.int16),
        "matrix": np.eye(2, dtype=np.float32),
        "tuple": (1, 2),
        "path": Path("a/b.png"),
        "strings": np.array(["x", "y"]),
    }
    data = json.loads(files.write_json(obj, tmp_path / "x.json").read_text())
    assert data == {
        "int": 3,
        "float": 0.5,
        "bool": True,
        "array": [0, 1, 2],
        "matrix": [[1.0, 0.0], [0.0, 1.0]],
        "tuple": [1, 2],
        "path": "a/b.png",
        "strings": ["x", "y"],
    }
    assert type(data["bool"]) is bool


def test_write_json_writes_nan_and_inf_as_null(tmp_path):
    history = {"loss": [1.5, float("nan"), np.float32(np.inf), -np.inf], "arr": np.array([np.nan, 2.0])}
    text = files.write_json(history, tmp_path / "h.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == {"arr": [None, 2.0], "loss": [1.5, None, None, None]}


def test_write_json_is_byte_stable(tmp_path):
    obj = {"z": [1, 2.5], "a": "text", "m": {"y": None, "x": True}}
    first = files.write_json(obj, tmp_path / "1.json").read_bytes()
    second = files.write_json(dict(reversed(list(obj.items()))), tmp_path / "2.json").read_bytes()
    assert first == second


def test_write_json_refuses_unserialisable_and_says_where(tmp_path):
    with pytest.raises(TypeError) as excinfo:
        files.write_json({"config": {"callback": object()}}, tmp_path / "x.json")
    message = str(excinfo.value)
    assert "['config']['callback']" in message and "object" in message and "convert" in message
    assert not (tmp_path / "x.json").exists()


def test_write_json_non_string_keys_become_strings(tmp_path):
    data = json.loads(files.write_json({1: "a", 2: "b"}, tmp_path / "x.json").read_text())
    assert data == {"1": "a", "2": "b"}


# --------------------------------------------------------------------------- check_output_path


def test_check_output_path_ok_returns_path(tmp_path):
    result = files.check_output_path(str(tmp_path / "out.png"))
    assert result == tmp_path / "out.png" and isinstance(result, Path)
    assert list(tmp_path.iterdir()) == []  # the probe file is gone


def test_check_output_path_suffix_is_case_insensitive_and_configurable(tmp_path):
    files.check_output_path(tmp_path / "OUT.PNG")
    files.check_output_path(tmp_path / "run.json", suffixes=(".json",))
    files.check_output_path(tmp_path / "anything.xyz", suffixes=None)
    files.check_output_path(tmp_path / "a.gif", suffixes=(".gif",))


def test_check_output_path_existing_file_is_fine(tmp_path):
    (tmp_path / "out.png").write_bytes(b"old")
    assert files.check_output_path(tmp_path / "out.png") == tmp_path / "out.png"


@pytest.mark.parametrize("name, expected", [("out.jpg", "'.jpg'"), ("out", "no suffix")])
def test_check_output_path_wrong_suffix(tmp_path, name, expected):
    with pytest.raises(InputError) as excinfo:
        files.check_output_path(tmp_path / name)
    assert_names_path_and_fix(excinfo.value, tmp_path / name)
    assert expected in str(excinfo.value) and ".png" in excinfo.value.fix


def test_check_output_path_missing_folder(tmp_path):
    target = tmp_path / "no" / "such" / "out.png"
    with pytest.raises(InputError) as excinfo:
        files.check_output_path(target)
    assert_names_path_and_fix(excinfo.value, target)
    assert "does not exist" in str(excinfo.value) and "mkdir" in excinfo.value.fix


def test_check_output_path_parent_is_a_file(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    target = tmp_path / "notes.txt" / "out.png"
    with pytest.raises(InputError) as excinfo:
        files.check_output_path(target)
    assert_names_path_and_fix(excinfo.value, target)


def test_check_output_path_is_a_folder(tmp_path):
    folder = tmp_path / "images.png"
    folder.mkdir()
    with pytest.raises(InputError) as excinfo:
        files.check_output_path(folder)
    assert_names_path_and_fix(excinfo.value, folder)
    assert "folder" in str(excinfo.value) and "output.png" in excinfo.value.fix


def _can_create_file_in(folder: Path) -> bool:
    try:
        fd, name = tempfile.mkstemp(dir=folder)
    except OSError:
        return False
    os.close(fd)
    os.unlink(name)
    return True


def test_check_output_path_read_only_folder_real(tmp_path):
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        if _can_create_file_in(folder):
            pytest.skip("running as root (or similar): chmod does not stop writes; see the simulated tests")
        target = folder / "out.png"
        with pytest.raises(InputError) as excinfo:
            files.check_output_path(target)
        assert_names_path_and_fix(excinfo.value, target)
        assert "not writable" in str(excinfo.value)
    finally:
        folder.chmod(0o755)


def test_check_output_path_read_only_mount_seen_by_probe(tmp_path, monkeypatch):
    """Root may write anywhere chmod allows; a read-only mount still refuses the probe file."""

    def read_only(*args, **kwargs):
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(tempfile, "TemporaryFile", read_only)
    target = tmp_path / "out.png"
    with pytest.raises(InputError) as excinfo:
        files.check_output_path(target)
    assert_names_path_and_fix(excinfo.value, target)
    assert "not writable" in str(excinfo.value) and "Read-only file system" in str(excinfo.value)
    assert "chmod" in excinfo.value.fix and isinstance(excinfo.value.__cause__, OSError)


def test_check_output_path_empty(tmp_path):
    with pytest.raises(InputError) as excinfo:
        files.check_output_path("")
    assert excinfo.value.fix


def test_check_output_path_expands_user(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert files.check_output_path("~/out.png") == tmp_path / "out.png"


def test_files_does_not_import_tensorflow():
    code = "import sys, nstdream_utils.files; sys.exit('tensorflow' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
