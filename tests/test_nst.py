"""Tests for ``nstdream_utils.nst``: neural style transfer on the real VGG-19, at small sizes.

Every run uses the paper-style loss (the ``paper`` preset: keras-io's Σ(G−A)²/(4·3²·M²) style loss,
content block5_conv2, TV power 1.25, pixels in 0..255) on a real photo (``data/content/astronaut.png``)
with a geometric style (``data/styles/triangle.png``) at 64×64 pixels, so the file runs in well under
a minute on two CPU cores. SGD runs at lr 10 for 224², which the library scales by H·W/224² (0.82
at 64²), a rate whose steps the guard leaves alone: at the preset's 100 (8.2 at 64²) the guard
redoes one of the first steps, and without the guard the loss is infinite after three updates. Adam's
step does not depend on the gradient's scale, so it gets an unscaled 10 grey levels per step. Tests
that need the real weights are marked ``needs_weights`` (conftest).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from nstdream_utils import data, images, nst, optim, presets
from nstdream_utils._loop import Recorder
from nstdream_utils.errors import InputError, NonFiniteLossError

SIZE = 64
NUM_STEPS = 30
FRAME_EVERY = 10
STRESS_STEPS = 15
_PAPER = dataclasses.replace(presets.PAPER.nst, size=SIZE, num_steps=NUM_STEPS, learning_rate=10.0)
# One loss, four optimisers; learning rates in 0..255 pixel units.
CONFIGS = {
    "sgd": _PAPER,  # lr 10 at 224², scaled by the library to 10·(64/224)² ≈ 0.82
    "adam": dataclasses.replace(_PAPER, optimizer="adam", learning_rate=10.0, lr_reference_pixels=None),
    "lbfgs": dataclasses.replace(_PAPER, optimizer="lbfgs"),  # line search: no learning rate
    "lbfgs-tf": dataclasses.replace(_PAPER, optimizer="lbfgs-tf"),  # the same method in TensorFlow
}


needs_vgg19 = pytest.mark.needs_weights


@pytest.fixture(scope="module")
def content() -> np.ndarray:
    return images.load_image(data.content_path("astronaut"))


@pytest.fixture(scope="module")
def style() -> np.ndarray:
    return images.load_image(data.style_path("triangle"))


@pytest.fixture(scope="module")
def runs(content, style) -> dict[str, nst.NSTResult]:
    """One 30-step run per optimiser, same loss, same size, frames every 10 steps (computed once)."""
    return {name: nst.style_transfer(content, style, config=config, progress=False, frame_every=FRAME_EVERY)
            for name, config in CONFIGS.items()}


# --------------------------------------------------------------------------------------------------
# Bad input fails fast: before any network is built
# --------------------------------------------------------------------------------------------------


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make building VGG-19 (or configuring the device) fail the test."""
    def boom(*args, **kwargs):
        raise AssertionError("a network was built before the parameters were checked")

    monkeypatch.setattr(nst.models, "vgg19_features", boom)
    monkeypatch.setattr(nst.device, "setup", boom)


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"optimizer": "rmsprop"}, "unknown optimizer 'rmsprop'"),
        ({"num_steps": 0}, "num_steps must be a whole number > 0"),
        ({"learning_rate": -1.0}, "learning_rate must be a positive number"),
        ({"size": 0}, "size must be a whole number > 0"),
        ({"precision": "half"}, "unknown precision 'half'"),
    ],
)
def test_bad_parameter_raises_input_error_before_model_loads(no_network, overrides, expected):
    tiny = np.zeros((8, 8, 3), np.float32)
    with pytest.raises(InputError, match=expected) as info:
        nst.style_transfer(tiny, tiny, config="paper", progress=False, **overrides)
    assert info.value.fix  # says how to fix it


def test_unknown_layer_suggests_the_close_name_before_model_loads(no_network):
    tiny = np.zeros((8, 8, 3), np.float32)
    with pytest.raises(InputError, match="unknown layer 'block5_cnv2'") as info:
        nst.style_transfer(tiny, tiny, config="paper", content_layers=("block5_cnv2",), progress=False)
    assert "did you mean 'block5_conv2'?" in str(info.value)
    assert "block1_conv1" in str(info.value)  # the valid names are listed


def test_unknown_preset_raises_input_error(no_network):
    tiny = np.zeros((8, 8, 3), np.float32)
    with pytest.raises(InputError, match="did you mean 'paper'"):
        nst.style_transfer(tiny, tiny, config="papr", progress=False)


def test_sgd_learning_rate_is_scaled_to_the_image_size():
    # The keras-io style loss divides by (H·W)², so a pixel's gradient grows like 1/(H·W) as the image
    # shrinks; the library keeps the step per pixel by scaling lr with H·W / lr_reference_pixels.
    paper = presets.PAPER.nst
    assert paper.lr_reference_pixels == 224 * 224
    assert nst.effective_learning_rate(paper, 224 * 224) == pytest.approx(paper.learning_rate)
    assert nst.effective_learning_rate(paper, 64 * 64) == pytest.approx(paper.learning_rate * (64 / 224) ** 2)
    unscaled = dataclasses.replace(paper, lr_reference_pixels=None)
    assert nst.effective_learning_rate(unscaled, 64 * 64) == paper.learning_rate


# --------------------------------------------------------------------------------------------------
# The four optimisers lower the same loss
# --------------------------------------------------------------------------------------------------


@needs_vgg19
@pytest.mark.slow
@pytest.mark.parametrize("optimizer", sorted(CONFIGS))
def test_each_optimizer_lowers_total_and_style_loss(runs, optimizer):
    result = runs[optimizer]
    history = result.history
    assert result.status == "completed"
    assert result.config.optimizer == optimizer
    assert len(history["total"]) == NUM_STEPS
    assert set(history) >= {"total", "content", "style", "tv", "seconds"}
    assert np.isfinite(history["total"]).all()
    assert history["total"][-1] <= 0.5 * history["total"][0]
    assert history["style"][-1] <= 0.5 * history["style"][0]
    # The weighted terms add up to the total (Eq 6 plus total variation).
    terms = np.array(history["content"]) + np.array(history["style"]) + np.array(history["tv"])
    np.testing.assert_allclose(terms, history["total"], rtol=1e-5)
    assert result.image.shape == (SIZE, SIZE, 3) and result.image.dtype == np.float32
    assert 0.0 <= result.image.min() and result.image.max() <= 1.0


@needs_vgg19
@pytest.mark.slow
def test_lbfgs_reaches_a_lower_loss_than_adam_in_the_same_steps(runs):
    assert runs["lbfgs"].final_loss < runs["adam"].final_loss
    assert len(runs["lbfgs"].history["total"]) == len(runs["adam"].history["total"]) == NUM_STEPS


@needs_vgg19
@pytest.mark.slow
@pytest.mark.parametrize("optimizer", sorted(CONFIGS))
def test_frames_are_kept_every_k_steps(runs, optimizer):
    frames = runs[optimizer].frames
    assert len(frames) >= NUM_STEPS // FRAME_EVERY
    assert len(frames) <= NUM_STEPS // FRAME_EVERY + 1  # plus, at most, the final image
    for frame in frames:
        assert frame.shape == (SIZE, SIZE, 3)
        assert np.isfinite(frame).all()
    assert not np.allclose(frames[0], frames[-1])  # the image changes between frames


# --------------------------------------------------------------------------------------------------
# Repeatability, NaN guard, tracing
# --------------------------------------------------------------------------------------------------


@needs_vgg19
@pytest.mark.slow
def test_same_seed_gives_the_same_output(content, style):
    # Noise initialisation makes the seed matter; Adam keeps the five steps cheap.
    config = CONFIGS["adam"].replace(init="noise")

    def run(seed: int) -> nst.NSTResult:
        return nst.style_transfer(content, style, config=config, num_steps=5, seed=seed, progress=False)

    first, again, other = run(3), run(3), run(4)
    np.testing.assert_allclose(again.image, first.image, rtol=0, atol=1e-6)
    np.testing.assert_allclose(again.history["total"], first.history["total"], rtol=1e-6)
    assert np.abs(other.image - first.image).max() > 0.05  # another seed, another start


@needs_vgg19
@pytest.mark.slow
def test_absurd_learning_rate_raises_non_finite_loss_error(content, style):
    keras_io = dataclasses.replace(presets.PAPER.nst, sgd_guard_factor=None)  # no guard: the plain recipe
    with pytest.raises(NonFiniteLossError) as info:
        nst.style_transfer(content, style, config=keras_io, size=SIZE, num_steps=5, optimizer="sgd",
                           learning_rate=1e12, progress=False)
    error = info.value
    assert isinstance(error, FloatingPointError)
    assert isinstance(error.step, int) and 0 <= error.step < 5
    assert f"step {error.step}" in str(error)
    assert error.fix and "learning rate" in error.fix
    assert error.last_image is not None
    assert error.last_image.shape == (SIZE, SIZE, 3)
    assert np.isfinite(error.last_image).all()
    assert error.history is not None and not np.isfinite(error.history["total"][-1])


@needs_vgg19
@pytest.mark.slow
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_gradient_step_is_not_retraced_per_step(content, style, optimizer):
    # NSTResult does not expose the trace count, so drive the private loop the way style_transfer does.
    def traces(num_steps: int) -> int:
        cfg = nst.resolve_config(CONFIGS[optimizer], num_steps=num_steps)
        content_small, style_small = nst.prepare_images(content, style, cfg)
        x0 = nst._initial_image(content_small, style_small, cfg, 0)
        recorder = Recorder(num_steps=num_steps, get_image=lambda: x0[0] / cfg.pixel_scale, progress=False,
                            main_key="total")
        nst._gradient_loop(nst.NSTLoss(content_small, style_small, cfg), x0, cfg, recorder)
        assert len(recorder.history["total"]) == num_steps
        return recorder.traces

    # The optimiser's variables are built before the loop, so the step is traced exactly once,
    # however many steps run.
    assert traces(2) == traces(12) == 1


# --------------------------------------------------------------------------------------------------
# The TensorFlow L-BFGS's two-loop recursion (optimizer="lbfgs-tf")
# --------------------------------------------------------------------------------------------------


def test_lbfgs_direction_meets_the_secant_condition_and_keeps_pinned_pixels():
    """H·y_k = s_k for the newest pair (the BFGS update's defining property), exactly up to float32."""
    import tensorflow as tf

    rng = np.random.default_rng(0)
    shape = (1, 4, 4, 3)
    pairs = []
    for _ in range(3):
        s = rng.normal(size=shape).astype(np.float32)
        y = (s * rng.uniform(0.5, 2.0, size=shape)).astype(np.float32)  # a positive-definite Hessian: sᵀy > 0
        pairs.append((tf.constant(s), tf.constant(y), 1.0 / float(np.sum(s * y))))
    ones = tf.ones(shape)
    s_new, y_new, _ = pairs[-1]
    np.testing.assert_allclose(-optim.lbfgs_direction(y_new, ones, pairs, 1.0).numpy(), s_new.numpy(),
                               rtol=1e-4, atol=1e-5)
    g = tf.constant(rng.normal(size=shape).astype(np.float32))
    first = optim.lbfgs_direction(g, ones, [], 0.25).numpy()  # no history: the gradient, scaled
    assert np.isclose(np.abs(first).max(), 0.25)
    np.testing.assert_allclose(first, -0.25 * g.numpy() / np.abs(g.numpy()).max(), rtol=1e-6)
    free = np.ones(shape, np.float32)
    free[0, 0] = 0.0  # the first row of pixels is pinned at a bound
    d = optim.lbfgs_direction(g, tf.constant(free), pairs, 1.0).numpy()
    assert np.all(d[0, 0] == 0.0) and np.all(d[0, 1:] != 0.0)
    assert float(np.sum(d * g.numpy())) < 0  # a descent direction


# --------------------------------------------------------------------------------------------------
# float16 (GPUs' mixed_float16): the gradient needs a loss scale
# --------------------------------------------------------------------------------------------------


def test_loss_scale_retries_an_overflowing_gradient_and_grows_back():
    """Without a network: d/dx Σx² through float16 overflows at scale 2¹⁵ for x = 4 (2·4·2¹⁵ > 65,504)."""
    import tensorflow as tf

    from nstdream_utils import models

    def fn(x):
        return {"total": tf.cast(tf.reduce_sum(tf.cast(x, tf.float16) ** 2), tf.float32)}

    scale = models.LossScale()
    scale.scale.assign(2.0 ** 15)
    x = tf.constant([4.0, 1.0])
    terms, grad = scale.value_and_gradient(fn, x)
    np.testing.assert_array_equal(grad.numpy(), [8.0, 2.0])  # exact: powers of two
    assert float(terms["total"]) == 17.0
    assert float(scale.scale.numpy()) == 2.0 ** 15 / models.LossScale.FACTOR  # one retry
    for _ in range(models.LossScale.GROWTH_INTERVAL):
        scale.value_and_gradient(fn, x)
    assert float(scale.scale.numpy()) == 2.0 ** 12  # doubled after GROWTH_INTERVAL finite gradients
    assert int(scale.finite_run.numpy()) == 0


@needs_vgg19
@pytest.mark.slow
def test_float16_gradient_of_the_tutorial_loss_is_finite_and_follows_float32(content, style):
    """The TF tutorial's loss (≈ 10¹⁰) overflows float16's backward pass; the loss scale fixes it."""
    import tensorflow as tf

    cfg = dataclasses.replace(presets.TF_TUTORIAL.nst, size=SIZE)
    pair = nst.prepare_images(content, style, cfg)
    x = tf.constant(pair[0][np.newaxis] * cfg.pixel_scale)
    exact = nst.NSTLoss(*pair, cfg, precision="float32")
    half = nst.NSTLoss(*pair, cfg, precision="float16")
    assert exact.loss_scale is None and half.loss_scale is not None
    with tf.GradientTape() as tape:
        tape.watch(x)
        total = half(x)["total"]
    assert not np.isfinite(tape.gradient(total, x).numpy()).all()  # plain autodiff: inf/NaN entries
    want = exact.value_and_gradient(x)[1].numpy().ravel()
    terms, grad = tf.function(half.value_and_gradient)(x)
    got = grad.numpy().ravel()
    assert np.isfinite(got).all() and float(half.loss_scale.scale.numpy()) < 1.0
    assert got @ want / np.linalg.norm(got) / np.linalg.norm(want) > 0.999
    run = nst.style_transfer(content, style, config=cfg, optimizer="lbfgs", num_steps=5, precision="float16",
                             progress=False)
    assert run.status == "completed" and run.history["total"][-1] < 0.2 * run.history["total"][0]


# --------------------------------------------------------------------------------------------------
# The SGD guard (sgd_guard_factor): undo a step that blows the loss up, retry at half the rate
# --------------------------------------------------------------------------------------------------


def _keras_io_sgd(content: np.ndarray, style: np.ndarray, cfg: presets.NSTConfig) -> list[float]:
    """keras-io's recipe written out: ``x ← x − lr₀ · 0.96^(t/100) · ∇L(x)``, the loss before each update."""
    import tensorflow as tf

    pair = nst.prepare_images(content, style, cfg)
    loss_fn = nst.NSTLoss(*pair, cfg)
    x = tf.constant(nst._initial_image(*pair, cfg, 0))
    lr0 = nst.effective_learning_rate(cfg, x.shape[1] * x.shape[2])
    totals = []
    for t in range(cfg.num_steps):
        terms, grad = loss_fn.value_and_gradient(x)
        totals.append(float(terms["total"]))
        x = x - lr0 * cfg.lr_decay_rate ** (t / cfg.lr_decay_steps) * grad
    return totals


@needs_vgg19
@pytest.mark.slow
def test_guard_off_is_keras_io_sgd_and_an_idle_guard_changes_nothing(content, style):
    keras_io = dataclasses.replace(_PAPER, num_steps=6, sgd_guard_factor=None)
    plain = nst.style_transfer(content, style, config=keras_io, progress=False)
    assert "retries" not in plain.history
    np.testing.assert_allclose(plain.history["total"], _keras_io_sgd(content, style, keras_io), rtol=1e-4)
    guarded = nst.style_transfer(content, style, config=keras_io.replace(sgd_guard_factor=2.0), progress=False)
    assert guarded.history["retries"] == [0.0] * 6  # nothing blew up here ...
    np.testing.assert_allclose(guarded.history["total"], plain.history["total"], rtol=1e-5)  # ... so same steps
    np.testing.assert_allclose(guarded.image, plain.image, atol=1e-5)


@needs_vgg19
@pytest.mark.slow
def test_guard_undoes_a_step_that_blows_up_and_records_the_retry(content, style):
    # lr 1e4 at 224² is 816 grey levels per unit gradient at 64²: the unguarded recipe reaches NaN.
    hot = dataclasses.replace(_PAPER, num_steps=16, learning_rate=1e4, sgd_guard_factor=None)
    with pytest.raises(NonFiniteLossError):
        nst.style_transfer(content, style, config=hot, progress=False)
    run = nst.style_transfer(content, style, config=hot.replace(sgd_guard_factor=2.0), progress=False)
    total, retries = np.array(run.history["total"]), np.array(run.history["retries"])
    assert run.status == "completed" and len(total) == 16 and np.isfinite(total).all()
    assert retries[0] == 0 and retries.sum() >= 1
    for i in np.flatnonzero(retries):
        assert total[i] == total[i - 1]  # a retry starts again from the image kept before the bad update
    assert (total[1:] <= 2.0 * total[:-1]).all()  # no kept step raises the loss more than the factor
    assert total[-1] < total[0]
    assert np.isfinite(run.image).all()


def test_guard_factor_below_one_is_refused(no_network):
    tiny = np.zeros((8, 8, 3), np.float32)
    with pytest.raises(InputError, match="sgd_guard_factor must be None or a number ≥ 1") as info:
        nst.style_transfer(tiny, tiny, config="paper", sgd_guard_factor=0.5, progress=False)
    assert info.value.fix


# --------------------------------------------------------------------------------------------------
# High-energy styles: the presets converge (benchmarks/nst_stress.py runs the full matrix)
# --------------------------------------------------------------------------------------------------


def _high_energy_styles(side: int = 128) -> dict[str, np.ndarray]:
    """Three-colour sine stripes, a 2-px checkerboard and saturated 1-px RGB noise, float32 in [0, 1]."""
    yy, xx = np.mgrid[0:side, 0:side].astype(np.float32)
    phases = np.array([0.0, 2 * np.pi / 3, 4 * np.pi / 3], np.float32)
    board = ((yy // 2 + xx // 2) % 2)[..., None]
    return {
        "sine_stripes": 0.5 + 0.5 * np.sin(2 * np.pi * 6 * (xx + 0.5 * yy)[..., None] / side + phases),
        "checker_2": np.repeat(board, 3, axis=2),
        "noise_1": (np.random.default_rng(0).uniform(size=(side, side, 3)) > 0.5).astype(np.float32),
    }


@needs_vgg19
@pytest.mark.slow
@pytest.mark.parametrize("preset", ["quick", "paper"])
def test_presets_converge_on_high_energy_styles(content, preset):
    for name, style in _high_energy_styles().items():
        for size in (64, 96):
            run = nst.style_transfer(content, style, config=preset, size=size, num_steps=STRESS_STEPS,
                                     progress=False)
            total = np.array(run.history["total"])
            where = f"{preset}/{name}/{size}"
            assert run.status == "completed" and np.isfinite(total).all(), where
            assert total[-1] < total[0], where
            if preset == "quick":  # L-BFGS's line search never accepts a rise
                assert total.max() <= total[0], where


@needs_vgg19
@pytest.mark.parametrize("config", ["paper", "tf-tutorial"])  # guarded SGD with lr decay; Adam
def test_an_interrupted_run_continues_from_its_checkpoint_to_the_same_history(content, style, config, tmp_path):
    kwargs = dict(config=config, size=32, num_steps=30, progress=False)
    whole = nst.style_transfer(content, style, **kwargs)
    path = tmp_path / "run.npz"
    calls = iter(range(10 ** 6))
    stopped = nst.style_transfer(content, style, **kwargs, checkpoint=path, checkpoint_every=10,
                                 should_stop=lambda: next(calls) >= 15)
    assert stopped.status == "interrupted" and len(stopped.history["total"]) == 15 and path.is_file()
    resumed = nst.style_transfer(content, style, **kwargs, checkpoint=path, checkpoint_every=10)
    assert resumed.status == "completed" and not path.exists()  # removed once the run completes
    for key in whole.history.keys() - {"seconds"}:
        assert resumed.history[key] == whole.history[key], key  # same machine, same kernels: bit for bit
    np.testing.assert_array_equal(resumed.image, whole.image)
    assert len(resumed.history["seconds"]) == 30


@needs_vgg19
def test_a_checkpoint_refuses_another_configuration_and_l_bfgs(content, style, tmp_path):
    path = tmp_path / "run.npz"
    calls = iter(range(10 ** 6))
    nst.style_transfer(content, style, config="paper", size=32, num_steps=20, progress=False, checkpoint=path,
                       checkpoint_every=10, should_stop=lambda: next(calls) >= 12)
    with pytest.raises(InputError, match="another configuration"):
        nst.style_transfer(content, style, config="paper", size=32, num_steps=20, learning_rate=3.0,
                           progress=False, checkpoint=path)
    with pytest.raises(InputError, match="sgd and adam"):
        nst.style_transfer(content, style, config="quick", size=32, num_steps=5, progress=False,
                           checkpoint=tmp_path / "other.npz")
