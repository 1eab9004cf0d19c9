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


def test_paper_preset_guards_sgd_and_can_turn_the_guard_off():
    paper = presets.get_preset("paper").nst
    assert paper.sgd_guard_factor == presets.SGD_GUARD_FACTOR == 2.0
    assert presets.validate_nst(paper.replace(sgd_guard_factor=1.0)).sgd_guard_factor == 1.0
    import dataclasses

    assert presets.validate_nst(dataclasses.replace(paper, sgd_guard_factor=None)).sgd_guard_factor is None


def test_quick_preset_is_the_paper_loss_by_lbfgs_at_small_sizes():
    quick, paper = presets.get_preset("quick").nst, presets.get_preset("paper").nst
    assert (quick.optimizer, quick.size, quick.num_steps) == ("lbfgs", 128, 100)
    assert presets.get_preset("quick").dream.size == 160
    same_loss = ("content_layers", "content_weight", "style_layers", "style_weight", "style_reduction",
                 "tv_weight", "tv_power", "pixel_scale", "init", "clip")
    assert {f: getattr(quick, f) for f in same_loss} == {f: getattr(paper, f) for f in same_loss}
    assert quick.sgd_guard_factor == presets.SGD_GUARD_FACTOR  # --optimizer sgd is guarded too
    assert "L-BFGS" in presets.get_preset("quick").description


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
    ({"sgd_guard_factor": 0.9}, "sgd_guard_factor"), ({"sgd_guard_factor": True}, "sgd_guard_factor"),
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
