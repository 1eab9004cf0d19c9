"""Tests for ``nstdream_utils.pipeline``: NST, then DeepDream on the stylised image, on the real networks.

Small sizes and few steps (NST 64 px, DeepDream 96 px) on ``data/content/astronaut.png`` with
``data/styles/triangle.png``. Skipped when the real weights cannot be found without downloading.
"""

from __future__ import annotations

import numpy as np
import pytest

from nstdream_utils import data, images, pipeline, presets
from nstdream_utils.errors import InputError

needs_weights = pytest.mark.needs_weights


@pytest.fixture(scope="module")
def pair() -> tuple[np.ndarray, np.ndarray]:
    return images.load_image(data.content_path("astronaut")), images.load_image(data.style_path("triangle"))


def test_bad_settings_fail_before_either_stage_runs(monkeypatch, pair):
    def boom(*args, **kwargs):
        raise AssertionError("a stage ran before every parameter was checked")

    monkeypatch.setattr(pipeline.nst, "style_transfer", boom)
    monkeypatch.setattr(pipeline.pyramid, "coarse_to_fine", boom)
    monkeypatch.setattr(pipeline.dream, "deep_dream", boom)
    content, style = pair
    with pytest.raises(InputError, match="unknown preset"):
        pipeline.run_pipeline(content, style, config="nope", progress=False)
    two_levels = presets.resolve("quick", nst={"levels": 2})
    with pytest.raises(InputError, match="mask, a list of style images with levels=2"):
        pipeline.run_pipeline(content, [style, style], config=two_levels, mask=np.ones((4, 4)), progress=False)


def test_levels_run_nst_coarse_to_fine_with_the_resolved_config(monkeypatch, pair):
    """The routing alone: both stages replaced by stand-ins that record their arguments."""
    calls = {}

    def fake_c2f(content, style, *, config, **kwargs):
        calls["nst"] = (config.levels, config.steps_per_level, config.optimizer, config.size)
        return pipeline.nst.NSTResult(image=content, history={"total": [1.0]}, config=config)

    def fake_dream(image, *, config, **kwargs):
        calls["dream"] = config.size
        return pipeline.dream.DreamResult(image=image, history={"loss": [1.0]}, config=config)

    monkeypatch.setattr(pipeline.nst, "style_transfer", None)  # must not be called
    monkeypatch.setattr(pipeline.pyramid, "coarse_to_fine", fake_c2f)
    monkeypatch.setattr(pipeline.dream, "deep_dream", fake_dream)
    content, style = pair
    config = presets.resolve("quick", nst={"size": 64, "levels": 2, "steps_per_level": (3, 2)})
    result = pipeline.run_pipeline(content, style, config=config, progress=False)
    assert calls == {"nst": (2, (3, 2), "lbfgs", 64), "dream": 160} and result.status == "completed"
    pipeline.run_pipeline(content, style, config=presets.resolve("quick", nst={"levels": 3, "optimizer": "adam"}),
                          progress=False)
    assert calls["nst"][:3] == (3, (200, 100, 100), "adam")


@needs_weights
@pytest.mark.slow
def test_run_pipeline_returns_both_stages_at_the_configured_sizes(pair):
    content, style = pair
    config = presets.resolve("quick", nst={"size": 64, "num_steps": 6}, dream={"size": 96, "num_steps": 4})
    result = pipeline.run_pipeline(content, style, config=config, seed=0, progress=False)
    assert result.status == "completed"
    assert result.stylized.shape == (64, 64, 3) and result.stylized.dtype == np.float32
    assert result.dreamed.shape == (96, 96, 3) and result.dreamed.dtype == np.float32
    for image in (result.stylized, result.dreamed):
        assert 0.0 <= image.min() and image.max() <= 1.0
    np.testing.assert_array_equal(result.stylized, result.nst.image)
    np.testing.assert_array_equal(result.dreamed, result.dream.image)
    assert result.nst.config.size == 64 and result.dream.config.size == 96
    assert len(result.nst.history["total"]) == 6 and len(result.dream.history["loss"]) == 4
    assert result.nst.history["total"][-1] < result.nst.history["total"][0]
    assert result.dream.history["loss"][-1] > result.dream.history["loss"][0]


@needs_weights
@pytest.mark.slow
def test_quick_preset_nst_stays_finite_at_its_own_size(pair):
    # The everyday preset at its own size (128², L-BFGS on the paper's losses).
    content, style = pair
    config = presets.resolve("quick", nst={"num_steps": 20}, dream={"size": 80, "num_steps": 1})
    result = pipeline.run_pipeline(content, style, config=config, progress=False)
    assert result.stylized.shape == (128, 128, 3)
    assert np.isfinite(result.nst.history["total"]).all()
    assert result.nst.history["total"][-1] < result.nst.history["total"][0]


def test_style_controls_reach_the_nst_stage(monkeypatch, pair):
    """The routing alone: NST and DeepDream replaced by stand-ins that record what they get."""
    calls = {}

    def fake_nst(content, style, *, config, mask=None, **kwargs):
        calls["nst"] = (config.preserve_color, config.style_blend, config.style_scale, len(style), mask)
        return pipeline.nst.NSTResult(image=content, history={"total": [1.0]}, config=config)

    def fake_dream(image, *, config, guide=None, **kwargs):
        calls["guide"] = guide
        return pipeline.dream.DreamResult(image=image, history={"loss": [1.0]}, config=config)

    monkeypatch.setattr(pipeline.nst, "style_transfer", fake_nst)
    monkeypatch.setattr(pipeline.dream, "deep_dream", fake_dream)
    content, style = pair
    config = presets.resolve("quick", nst={"preserve_color": "luminance", "style_blend": [0.7, 0.3], "style_scale": 0.5})
    pipeline.run_pipeline(content, [style, style], config=config, mask="M", guide="G", progress=False)
    assert calls == {"nst": ("luminance", (0.7, 0.3), 0.5, 2, "M"), "guide": "G"}
