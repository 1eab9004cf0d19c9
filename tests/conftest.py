"""Shared fixtures: real weights from NSTDREAM_WEIGHTS_DIR, small real images from data/."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MPLBACKEND", "Agg")

REPO = Path(__file__).resolve().parents[1]
WEIGHT_FILES = ("vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5", "inception_v3_2015-12-05_notop_keras.h5")
REQUIRE_WEIGHTS = os.environ.get("NSTDREAM_REQUIRE_WEIGHTS", "0") == "1"
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def missing_weights() -> str | None:
    """Why the real weights cannot be used (None: both files are in ``NSTDREAM_WEIGHTS_DIR``)."""
    value = os.environ.get("NSTDREAM_WEIGHTS_DIR")
    if not value:
        return "NSTDREAM_WEIGHTS_DIR is not set (see README, Weights)"
    missing = [name for name in WEIGHT_FILES if not (Path(value) / name).is_file()]
    return f"{', '.join(missing)} not in NSTDREAM_WEIGHTS_DIR={value}" if missing else None


def pytest_configure(config) -> None:
    config.addinivalue_line("markers", "needs_weights: uses the real ImageNet weights (NSTDREAM_WEIGHTS_DIR)")


def require_weights() -> None:
    """Skip the running test without the weights; fail it instead under NSTDREAM_REQUIRE_WEIGHTS=1."""
    if reason := missing_weights():
        if REQUIRE_WEIGHTS:
            pytest.fail(f"NSTDREAM_REQUIRE_WEIGHTS=1 but {reason}", pytrace=False)
        pytest.skip(reason)


def pytest_runtest_setup(item) -> None:
    """A test marked ``needs_weights`` needs the weights (:func:`require_weights`)."""
    if item.get_closest_marker("needs_weights"):
        require_weights()


def require_chromium() -> str:
    """The path of a Chromium (or Chrome) on PATH, for Playwright's ``executable_path``.

    Without one the running test is skipped, or fails under ``NSTDREAM_REQUIRE_CHROMIUM=1``.
    """
    for name in CHROMIUM_NAMES:
        if found := shutil.which(name):
            return found
    reason = ("Chromium is not installed: `make setup` installs it with apt-get when run as root "
              "(`apt-get install chromium` on Debian/Ubuntu)")
    if os.environ.get("NSTDREAM_REQUIRE_CHROMIUM", "0") == "1":
        pytest.fail(f"NSTDREAM_REQUIRE_CHROMIUM=1 but {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def weights_dir() -> Path:
    """The folder with the real ImageNet weights (:func:`require_weights`)."""
    require_weights()
    return Path(os.environ["NSTDREAM_WEIGHTS_DIR"])


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    from nstdream_utils import images

    return images.load_image(REPO / "data" / "content" / "astronaut.png")


@pytest.fixture(scope="session")
def triangle() -> np.ndarray:
    from nstdream_utils import images

    return images.load_image(REPO / "data" / "styles" / "triangle.png")
