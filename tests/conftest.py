"""Shared fixtures: real weights from NSTDREAM_WEIGHTS_DIR, small real images from data/."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MPLBACKEND", "Agg")
# Tests never read or write the user's cache of convolution choices (nstdream_utils.convs.cache_file):
# a remembered choice would bypass the timing they check. test_convs points it at tmp_path where it tests it.
os.environ["NSTDREAM_CONV_CACHE"] = "0"

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def weights_dir() -> Path:
    """The folder with the real ImageNet weights; tests that need them skip (with the reason) without it."""
    value = os.environ.get("NSTDREAM_WEIGHTS_DIR")
    if not value or not Path(value).is_dir():
        pytest.skip("NSTDREAM_WEIGHTS_DIR is not set to a folder with the real weights (see README, Weights)")
    return Path(value)


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    from nstdream_utils import images

    return images.load_image(REPO / "data" / "content" / "astronaut.png")


@pytest.fixture(scope="session")
def triangle() -> np.ndarray:
    from nstdream_utils import images

    return images.load_image(REPO / "data" / "styles" / "triangle.png")
