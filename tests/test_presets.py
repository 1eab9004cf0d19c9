"""presets: the recipes, their validation, and errors that name the fix."""

from __future__ import annotations

import pytest

from nstdream_utils import errors, presets


def test_paper_preset_is_the_keras_recipe_at_224():
    nst = presets.get_preset("paper").nst
    assert (nst.size, nst.square, nst.optimizer, nst.num_steps) == (224, True, "sgd", 1000)
    assert nst.content_layers == ("block5_conv2",) and nst.content_weight == 2.5e-8
    assert nst.style_layers == {f"block{i}_conv1": 0.2 for i in range(1, 6)} and nst.style_weight == 1e-6
    assert (nst.style_reduction, nst.tv_weight, nst.tv_power, nst.pixel_scale) == ("keras", 1e-6, 1.25, 255.0)
    dream = presets.get_preset("paper").dream
    assert (dream.size, dream.step_size, dream.num_steps, dream.layers) == (299, 0.005, 1000, ("mixed3", "mixed5"))


def test_tf_tutorial_preset():
    nst = presets.get_preset("tf-tutorial").nst
    assert (nst.optimizer, nst.learning_rate, nst.adam_beta1, nst.adam_epsilon) == ("adam", 0.02, 0.99, 0.1)
    assert (nst.gram_normalize, nst.style_weight, nst.content_weight, nst.tv_weight) == ("hw", 1e-2, 1e4, 30.0)


def test_unknown_preset_suggests_close_match():
    with pytest.raises(errors.InputError, match="did you mean 'paper'"):
        presets.get_preset("papr")


@pytest.mark.parametrize("change, match", [
    ({"num_steps": 0}, "num_steps"), ({"size": -3}, "size"), ({"optimizer": "rmsprop"}, "optimizer"),
    ({"learning_rate": 0.0}, "learning_rate"), ({"content_layers": ("block9_conv1",)}, "block9_conv1"),
])
def test_validate_nst_rejects_bad_values(change, match):
    import dataclasses

    cfg = dataclasses.replace(presets.QUICK.nst, **change)
    with pytest.raises(errors.InputError, match=match):
        presets.validate_nst(cfg)


def test_validate_dream_rejects_bad_layers():
    with pytest.raises(errors.InputError, match="did you mean 'mixed5'"):
        presets.validate_dream(presets.QUICK.dream.replace(layers=("mixed55",)))


def test_describe_names_the_source():
    text = presets.describe(presets.PAPER)
    assert "keras-io" in text and "deepdream" in text.lower() and "learning_rate=10.0" in text
