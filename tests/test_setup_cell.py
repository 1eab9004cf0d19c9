"""The notebooks' setup cell (``SETUP_TEMPLATE`` in tools/notebooks.py), run for real.

Where the course is installed it must do nothing and print nothing. Where it is not, it must install the
package (from the checkout the notebook sits in, or from a clone of the repository) and fetch the weights,
so that ``import nstdream_utils`` works in the same kernel. The fresh environments here are virtualenvs
without the package; the package's dependencies (TensorFlow included) are lent from the environment
running the tests through a folder of links, so pip installs only the package itself and needs no network
(``PIP_NO_INDEX``). The weights step finds good copies of both files in the Keras cache and keeps them.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

_TOOL = importlib.util.spec_from_file_location(
    "notebooks_tool", Path(__file__).resolve().parents[1] / "tools" / "notebooks.py")
nbtools = importlib.util.module_from_spec(_TOOL)  # the maintainer tool, tools/notebooks.py
_TOOL.loader.exec_module(nbtools)

REPO = Path(__file__).resolve().parents[1]
WEIGHT_FILES = ("vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5", "inception_v3_2015-12-05_notop_keras.h5")
IMPORT_CHECK = "import nstdream_utils, sys; print('imported', nstdream_utils.__file__)"


def _clean_env(**extra: str) -> dict[str, str]:
    """The environment of a process that must not see this checkout or this virtualenv."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP")}
    env.update(PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_BUILD_ISOLATION="0",
               TF_CPP_MIN_LOG_LEVEL="2", **extra)
    return env


def test_setup_cell_does_nothing_where_the_course_is_installed(tmp_path):
    done = subprocess.run([sys.executable, "-c", nbtools.setup_source() + "\nimport nstdream_utils"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr
    assert done.stdout == "" and done.stderr == ""
    assert list(tmp_path.iterdir()) == []  # no clone, no file


def _lent_dependencies(tmp_path: Path) -> Path:
    """A folder linking every installed distribution of this environment except nstdream itself."""
    lent = tmp_path / "lent"
    lent.mkdir()
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        name = entry.name.lower()
        if name.startswith(("nstdream", "__editable__")) or name.endswith(".pth") or name == "__pycache__":
            continue
        (lent / entry.name).symlink_to(entry)
    return lent


def _fresh_python(tmp_path: Path, lent: Path) -> Path:
    """A new virtualenv with pip, seeing the lent dependencies but not nstdream_utils."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    (Path(purelib) / "lent.pth").write_text(f"{lent}\n")
    return python


def _course_repository(folder: Path) -> Path:
    """What of the course the install needs: pyproject.toml, README.md, the package and a notebooks folder."""
    folder.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, folder / name)
    shutil.copytree(REPO / "nstdream_utils", folder / "nstdream_utils", ignore=shutil.ignore_patterns("__pycache__"))
    (folder / "notebooks").mkdir()
    shutil.copy2(REPO / "notebooks" / "README.md", folder / "notebooks" / "README.md")
    return folder


@pytest.mark.slow
@pytest.mark.needs_weights
@pytest.mark.parametrize("where", ["checkout", "alone"])
def test_setup_cell_installs_the_course_where_it_is_missing(tmp_path, weights_dir, where):
    lent = _lent_dependencies(tmp_path)
    python = _fresh_python(tmp_path, lent)
    keras_home = tmp_path / "keras"
    (keras_home / "models").mkdir(parents=True)
    for name in WEIGHT_FILES:
        (keras_home / "models" / name).symlink_to(weights_dir / name)
    env = _clean_env(KERAS_HOME=str(keras_home), PATH=f"{python.parent}{os.pathsep}{os.environ.get('PATH', '')}")
    env.pop("NSTDREAM_WEIGHTS_DIR", None)

    if where == "checkout":  # a notebook inside a checkout: the checkout is installed, nothing cloned
        checkout = _course_repository(tmp_path / "course")
        cwd, source = checkout / "notebooks", nbtools.setup_source()
    else:  # a notebook on its own (Colab): the repository is cloned beside it; here a local one stands in
        origin = _course_repository(tmp_path / "origin")
        git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "init.defaultBranch=main"]
        for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "course"]):
            subprocess.run([*git, *args], cwd=origin, check=True, capture_output=True)
        cwd = tmp_path / "content"
        cwd.mkdir()
        checkout, source = cwd / "nstdream", nbtools.setup_source(origin.as_uri())

    before = subprocess.run([str(python), "-c", "import nstdream_utils"], cwd=cwd, env=env,
                            capture_output=True, text=True, timeout=60)
    assert before.returncode != 0 and "No module named 'nstdream_utils'" in before.stderr

    # The cell, then an import in the same process: the kernel that ran it can import the package at once.
    ran = subprocess.run([str(python), "-c", f"{source}\nimport os; print('cwd', os.getcwd())\n{IMPORT_CHECK}"],
                         cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert f"imported {checkout / 'nstdream_utils' / '__init__.py'}" in ran.stdout
    assert f"cwd {checkout / 'notebooks'}" in ran.stdout  # the notebooks' relative paths hold
    for name in ("vgg19", "inception_v3"):  # `nstdream weights fetch` ran and kept the good copies
        assert f"{name}: {keras_home / 'models'}" in ran.stdout, ran.stdout
    assert sorted(p.name for p in (keras_home / "models").iterdir()) == sorted(WEIGHT_FILES)

    # A new process (a restarted kernel) imports the installed package, and the cell is then silent.
    after = subprocess.run([str(python), "-c", f"{source}\n{IMPORT_CHECK}"], cwd=cwd, env=env,
                           capture_output=True, text=True, timeout=60)
    assert after.returncode == 0, after.stderr
    assert after.stdout == f"imported {checkout / 'nstdream_utils' / '__init__.py'}\n"
