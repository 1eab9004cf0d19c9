"""Tests for ``nstdream_utils.pyramid``: level shapes, argument checks, and a tiny coarse-to-fine run.

The run (32 → 64 → 128 px on a non-square photo, 5 L-BFGS steps per level, the TF tutorial's loss)
checks the output size and aspect, the joined history, and that every level lowers its own loss:
each level's final loss is below the same level's loss of its starting image (the previous level's
result, upsampled). Correctness only, never wall-clock. The run needs the real VGG-19 weights.
"""

from __future__ import annotations

import numpy as np
import pytest

from nstdream_utils import data, images, presets, pyramid
from nstdream_utils.errors import InputError

needs_weights = pytest.mark.needs_weights

CONFIG = presets.TF_TUTORIAL.nst.replace(size=128, optimizer="lbfgs")


@pytest.mark.parametrize(("shape", "levels", "expected"), [
    ((512, 384), 3, [(128, 96), (256, 192), (512, 384)]),
    ((85, 128), 3, [(21, 32), (42, 64), (85, 128)]),
    ((100, 100), 1, [(100, 100)]),
    ((101, 99), 2, [(50, 50), (101, 99)]),
])
def test_level_shapes_halve_towards_the_full_size(shape, levels, expected):
    assert presets.level_shapes(shape, levels) == expected


@pytest.mark.parametrize("levels", [0, -1, 2.5, True, "3"])
def test_bad_levels_are_refused(levels):
    with pytest.raises(InputError, match="levels must be a whole number") as info:
        CONFIG.replace(levels=levels)
    assert info.value.fix


def test_too_many_levels_for_the_size_name_the_coarsest_shape():
    with pytest.raises(InputError, match="8×8") as info:
        presets.level_shapes((64, 64), 4)
    assert "fewer levels" in info.value.fix


@pytest.mark.parametrize("steps", [(5, 5), (5, 0, 5), "5", 2.0, (5, 5, 5.5)])
def test_bad_steps_per_level_are_refused_before_any_network(steps, monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("a network was built before the arguments were checked")

    monkeypatch.setattr(pyramid.nst, "NSTLoss", no_network)
    image = np.zeros((64, 64, 3), np.float32)
    with pytest.raises(InputError, match="steps_per_level"):
        pyramid.coarse_to_fine(image, image, config=CONFIG, levels=3, steps_per_level=steps, progress=False)


def test_levels_run_coarsest_first_with_the_default_steps(monkeypatch):
    """The orchestration alone, with the network and the optimiser replaced by stand-ins."""
    calls = []

    class FakeLoss:
        def __init__(self, content, style, cfg, weights=None, precision=None):
            assert content.shape == style.shape
            self.shape = content.shape

    def fake_loop(loss_fn, x0, cfg, recorder, should_stop=None):
        calls.append((x0.shape[1:3], cfg.num_steps, cfg.optimizer))
        recorder.get_image = lambda: x0[0] / cfg.pixel_scale
        for step in range(cfg.num_steps):
            recorder.record([{"total": 10.0 - step, "content": 0.0, "style": 0.0, "tv": 0.0}])
        recorder.close("completed")
        return x0[0] / cfg.pixel_scale

    monkeypatch.setattr(pyramid.nst, "NSTLoss", FakeLoss)
    monkeypatch.setattr(pyramid.nst.optim, "lbfgs_loop", fake_loop)
    content = np.full((300, 400, 3), 0.5, np.float32)
    result = pyramid.coarse_to_fine(content, content, config=CONFIG, size=200, levels=3, progress=False)
    assert calls == [((38, 50), 200, "lbfgs"), ((75, 100), 100, "lbfgs"), ((150, 200), 100, "lbfgs")]
    assert result.image.shape == (150, 200, 3)
    np.testing.assert_allclose(result.image, 0.5, atol=1e-5)  # a constant image survives every upsampling
    assert result.history["level"] == [0.0] * 200 + [1.0] * 100 + [2.0] * 100
    assert result.config.num_steps == 400


@pytest.fixture(scope="module")
def pair() -> tuple[np.ndarray, np.ndarray]:
    """A non-square content photo (chelsea, 300×451) and a style image."""
    return (images.load_image(data.content_path("chelsea")), images.load_image(data.style_path("triangle")))


@pytest.fixture(scope="module")
def run(pair):
    seen = []
    result = pyramid.coarse_to_fine(*pair, config=CONFIG, levels=3, steps_per_level=5, progress=False,
                                    callback=lambda step, losses, image: seen.append((step, losses["level"])))
    return result, seen


@needs_weights
@pytest.mark.slow
def test_output_has_the_requested_size_and_keeps_the_aspect(pair, run):
    result, _ = run
    height, width = pair[0].shape[:2]
    assert result.image.shape == (round(height * 128 / width), 128, 3) == (85, 128, 3)
    assert result.image.dtype == np.float32
    assert 0.0 <= result.image.min() and result.image.max() <= 1.0
    assert result.status == "completed"


@needs_weights
@pytest.mark.slow
def test_every_level_lowers_its_own_loss(run):
    result, _ = run
    level = np.asarray(result.history["level"])
    total = np.asarray(result.history["total"])
    assert sorted(set(level.tolist())) == [0.0, 1.0, 2.0]
    for index in range(3):
        losses = total[level == index]
        assert len(losses) == 5  # the starting image's loss, then one per L-BFGS iteration
        assert losses[-1] < losses[0], (index, losses)  # final < the same level's loss of its start
    assert np.all(np.diff(result.history["seconds"]) >= 0)
    assert set(result.history) >= {"total", "content", "style", "tv", "seconds", "level"}


@needs_weights
@pytest.mark.slow
def test_callback_counts_steps_across_levels(run):
    _, seen = run
    steps = [step for step, _ in seen]
    assert steps == sorted(steps) and len(set(steps)) == len(steps)
    assert [level for _, level in seen] == sorted(level for _, level in seen)
    assert {level for _, level in seen} == {0.0, 1.0, 2.0}


@needs_weights
@pytest.mark.slow
def test_a_stopped_run_still_returns_the_full_size(pair):
    result = pyramid.coarse_to_fine(*pair, config=CONFIG, levels=3, steps_per_level=5, progress=False,
                                    should_stop=lambda: True)
    assert result.status == "interrupted"
    assert result.image.shape == (85, 128, 3)
    assert set(result.history["level"]) == {0.0}


@needs_weights
@pytest.mark.slow
@pytest.mark.parametrize("optimizer", ["adam", "lbfgs-tf"])
def test_adam_and_tensorflow_lbfgs_levels_also_lower_their_loss(pair, optimizer):
    result = pyramid.coarse_to_fine(*pair, config=CONFIG, size=64, levels=2, steps_per_level=10, optimizer=optimizer,
                                    progress=False)
    assert result.image.shape == (43, 64, 3)
    level = np.asarray(result.history["level"])
    total = np.asarray(result.history["total"])
    for index in range(2):
        assert total[level == index][-1] < total[level == index][0]


def test_stylize_is_style_transfer_for_one_level_and_coarse_to_fine_for_more(monkeypatch):
    calls = []
    monkeypatch.setattr(pyramid.nst, "style_transfer",
                        lambda c, s, **kw: calls.append(("one", kw["config"].levels, kw.get("checkpoint"))))
    monkeypatch.setattr(pyramid, "coarse_to_fine", lambda c, s, **kw: calls.append(("c2f", kw["config"].levels)))
    image = np.zeros((32, 32, 3), np.float32)
    pyramid.stylize(image, image, config=CONFIG, mask=np.ones((4, 4)), checkpoint="run.npz")
    pyramid.stylize(image, image, config=CONFIG.replace(levels=2))
    assert calls == [("one", 1, "run.npz"), ("c2f", 2)]
    with pytest.raises(InputError, match="mask with levels=2"):
        pyramid.stylize(image, image, config=CONFIG.replace(levels=2), mask=np.ones((4, 4)))
    with pytest.raises(InputError, match="checkpoint with levels=2"):
        pyramid.stylize(image, image, config=CONFIG.replace(levels=2), checkpoint="run.npz")


def test_coarse_to_fine_runs_lbfgs_for_new_levels_unless_told(monkeypatch):
    """New levels without an optimizer run L-BFGS; an explicit optimizer, or a config's own levels, keep theirs."""
    used = []

    def loop_for(name):
        def loop(loss_fn, x0, cfg, recorder, should_stop=None):
            used.append(cfg.optimizer)
            recorder.history, recorder.status = {"total": [1.0], "seconds": [0.0]}, "completed"
            return x0[0] / cfg.pixel_scale
        return loop

    monkeypatch.setattr(pyramid.nst, "NSTLoss", lambda *args, **kwargs: None)  # no network needed
    monkeypatch.setattr(pyramid.nst, "loop_for", loop_for)
    image = np.full((64, 64, 3), 0.5, np.float32)
    adam = presets.TF_TUTORIAL.nst.replace(size=64)
    for config, overrides, expected in [(adam, {"levels": 2}, "lbfgs"), (adam, {"levels": 2, "optimizer": "adam"}, "adam"),
                                        (adam.replace(levels=2), {}, "adam")]:
        used.clear()
        pyramid.coarse_to_fine(image, image, config=config, steps_per_level=2, progress=False, **overrides)
        assert used == [expected, expected], (overrides, used)
