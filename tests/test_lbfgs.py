"""Tests for the L-BFGS paths of ``nstdream_utils.nst``: scipy's L-BFGS-B on a traced value and gradient
(``optimizer="lbfgs"``) and the TensorFlow one (``"lbfgs-tf"``), each test run for both.

Correctness only, never wall-clock: on a small case (64 px, 15 steps, the TF tutorial's loss) L-BFGS
ends lower than Adam at the tutorial's learning rate and at the best one measured
(``benchmarks/nst_optimizers.py``), its loss never rises, and the Adam step is traced once, not
once per step. Needs the real VGG-19 weights (``NSTDREAM_WEIGHTS_DIR``).
"""

from __future__ import annotations

import numpy as np
import pytest

from nstdream_utils import data, images, nst, presets

needs_weights = pytest.mark.needs_weights
pytestmark = [needs_weights, pytest.mark.slow]

SIZE, STEPS = 64, 15
CONFIG = presets.TF_TUTORIAL.nst.replace(size=SIZE, num_steps=STEPS)


@pytest.fixture(scope="module")
def pair() -> tuple[np.ndarray, np.ndarray]:
    """Content and style at 64 px, as ``nst`` prepares them."""
    content = images.load_image(data.content_path("astronaut"))
    style = images.load_image(data.style_path("triangle"))
    return nst.prepare_images(content, style, CONFIG)


@pytest.fixture(scope="module")
def loss_of(pair):
    loss_fn = nst.NSTLoss(*pair, CONFIG)
    return lambda image: float(loss_fn(np.asarray(image, np.float32)[np.newaxis] * CONFIG.pixel_scale)["total"])


@pytest.fixture(scope="module", params=["lbfgs", "lbfgs-tf"])
def lbfgs_run(request, pair) -> nst.NSTResult:
    return nst.style_transfer(*pair, config=CONFIG, optimizer=request.param, progress=False)


@pytest.mark.parametrize("learning_rate", [0.02, 0.2], ids=["tutorial-lr", "tuned-lr"])
def test_lbfgs_ends_lower_than_adam_in_the_same_steps(pair, loss_of, lbfgs_run, learning_rate):
    adam = nst.style_transfer(*pair, config=CONFIG, optimizer="adam", learning_rate=learning_rate, progress=False)
    start, ours, theirs = loss_of(pair[0]), loss_of(lbfgs_run.image), loss_of(adam.image)
    assert len(lbfgs_run.history["total"]) == len(adam.history["total"]) == STEPS
    assert ours < theirs < start, (ours, theirs, start)


def test_lbfgs_loss_never_rises_and_the_image_stays_in_range(lbfgs_run):
    total = np.asarray(lbfgs_run.history["total"])
    assert lbfgs_run.status == "completed"
    assert np.all(np.diff(total) <= 1e-6 * total[:-1]), total  # both line searches: sufficient decrease
    assert len(total) == STEPS
    assert lbfgs_run.image.dtype == np.float32 and lbfgs_run.image.shape == (SIZE, SIZE, 3)
    assert 0.0 <= lbfgs_run.image.min() and lbfgs_run.image.max() <= 1.0


def test_adam_step_is_not_retraced_per_step(pair):
    from nstdream_utils._loop import Recorder

    cfg = CONFIG.replace(optimizer="adam", num_steps=12)
    x0 = nst._initial_image(*pair, cfg, seed=0)
    recorder = Recorder(num_steps=cfg.num_steps, get_image=lambda: x0[0], progress=False)
    nst._gradient_loop(nst.NSTLoss(*pair, cfg), x0, cfg, recorder)
    assert len(recorder.history["total"]) == 12
    assert recorder.traces == 1  # the optimiser's slots are built before tracing: one trace for all steps


def test_bfloat16_lbfgs_reaches_about_the_float32_loss(pair, loss_of, lbfgs_run):
    """VGG-19 in bfloat16 (losses float32): judged by the float32 loss, the result is about as good."""
    bf16 = nst.style_transfer(*pair, config=CONFIG, optimizer=lbfgs_run.config.optimizer, precision="bfloat16",
                              progress=False)
    start, exact, fast = loss_of(pair[0]), loss_of(lbfgs_run.image), loss_of(bf16.image)
    assert fast < 0.5 * start, (fast, start)
    assert abs(fast - exact) < 0.1 * exact, (fast, exact)
    assert not np.array_equal(bf16.image, lbfgs_run.image)  # it did run in another precision


def test_tensorflow_lbfgs_is_about_as_good_as_scipys(pair, loss_of):
    """Same loss, same start, same iterations: within 10 % of scipy's L-BFGS-B (4.40e8 vs 4.27e8 here)."""
    scipy_run, tf_run = (nst.style_transfer(*pair, config=CONFIG, optimizer=name, progress=False)
                         for name in ("lbfgs", "lbfgs-tf"))
    assert tf_run.config.optimizer == "lbfgs-tf"
    assert loss_of(tf_run.image) < 1.1 * loss_of(scipy_run.image)
    assert not np.array_equal(tf_run.image, scipy_run.image)  # another engine did run


def test_tensorflow_lbfgs_stops_when_asked(pair):
    calls = []
    result = nst.style_transfer(*pair, config=CONFIG, optimizer="lbfgs-tf", progress=False,
                                should_stop=lambda: calls.append(1) or len(calls) >= 4)
    assert result.status == "interrupted"
    assert len(result.history["total"]) == 4  # the start, then one per iteration before the stop
