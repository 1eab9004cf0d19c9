"""presets: the recipes, their validation, and errors that name the fix."""

from __future__ import annotations

import dataclasses

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


def test_only_gradient_loops_keep_checkpoints():
    for name in ("paper", "tf-tutorial"):
        presets.check_checkpointable(presets.get_preset(name).nst, "checkpoint")  # SGD, Adam: no error
    with pytest.raises(errors.InputError, match="checkpoint: checkpoints are kept for sgd and adam, not lbfgs — use"):
        presets.check_checkpointable(presets.get_preset("quick").nst, "checkpoint")


def test_unknown_preset_suggests_close_match():
    with pytest.raises(errors.InputError, match="did you mean 'paper'"):
        presets.get_preset("papr")


@pytest.mark.parametrize("change, match", [
    ({"num_steps": 0}, "num_steps"), ({"size": -3}, "size"), ({"optimizer": "rmsprop"}, "optimizer"),
    ({"learning_rate": 0.0}, "learning_rate"), ({"content_layers": ("block9_conv1",)}, "block9_conv1"),
    ({"sgd_guard_factor": 0.9}, "sgd_guard_factor"), ({"sgd_guard_factor": True}, "sgd_guard_factor"),
    ({"num_steps": 2.5}, "num_steps must be a whole number"), ({"size": 100.5}, "size must be a whole number"), ({"init": "zeros"}, "unknown init 'zeros'"),
    ({"style_blend": (0.0, 0.0)}, "not all 0"), ({"levels": 0}, "levels must be a whole number"),
    ({"steps_per_level": (5, 5)}, "steps_per_level needs levels ≥ 2"),
    ({"levels": 2, "steps_per_level": (5, 5, 5)}, "must be 2 whole numbers"),
    ({"levels": 2, "preserve_color": "luminance"}, "preserve_color with levels=2"),
])
def test_a_bad_nst_config_cannot_be_made(change, match):
    with pytest.raises(errors.InputError, match=match):
        dataclasses.replace(presets.QUICK.nst, **change)
    with pytest.raises(errors.InputError, match=match):  # nor reach a run by the one path that makes configs
        presets.resolve("quick", nst=change)


@pytest.mark.parametrize("change, match", [
    ({"layers": ("mixed55",)}, "did you mean 'mixed5'"), ({"layers": ()}, "no layers"),
    ({"tile_size": 50}, "75-pixel minimum"), ({"octaves": 0}, "octaves must be a positive number"),
    ({"step_size": -1.0}, "step_size"), ({"num_steps": 2.5}, "num_steps must be a whole number"),
])
def test_a_bad_dream_config_cannot_be_made(change, match):
    with pytest.raises(errors.InputError, match=match):
        presets.resolve("quick", dream=change)


def test_resolve_applies_overrides_once_and_keeps_the_rest():
    chosen = presets.resolve("paper", nst={"size": 64, "num_steps": None, "style_blend": [0.7, 0.3]},
                             dream={"octaves": 3, "layers": ["mixed4"]})
    assert (chosen.nst.size, chosen.nst.num_steps, chosen.nst.style_blend) == (64, 1000, (0.7, 0.3))
    assert (chosen.dream.octaves, chosen.dream.layers, chosen.dream.size) == ((-2, -1, 0), ("mixed4",), 299)
    assert chosen.name == "paper" and chosen.nst.optimizer == "sgd"
    assert presets.resolve(chosen) == chosen and presets.resolve(chosen).nst is chosen.nst  # not made again
    assert presets.nst_config(chosen.nst) is chosen.nst


def test_levels_take_lbfgs_and_the_default_steps_unless_given():
    three = presets.resolve("tf-tutorial", nst={"levels": 3}).nst
    assert (three.optimizer, three.steps_per_level) == ("lbfgs", (200, 100, 100))
    assert presets.default_steps(3) == [2 * presets.COARSE_STEPS, presets.COARSE_STEPS, presets.FINE_STEPS]
    adam = presets.nst_config(three, levels=2, optimizer="adam", steps_per_level=7)
    assert (adam.optimizer, adam.steps_per_level) == ("adam", (7, 7))
    assert presets.nst_config(adam, levels=3).steps_per_level == (200, 100, 100)  # new count, new defaults
    assert presets.nst_config(adam, size=64).optimizer == "adam"  # a config with levels keeps its optimiser
    assert presets.resolve("tf-tutorial", nst={"levels": 1}).nst.optimizer == "adam"


def test_describe_names_the_source():
    text = presets.describe(presets.PAPER)
    assert "keras-io" in text and "deepdream" in text.lower() and "learning_rate=100.0" in text


def test_overrides_name_real_settings_and_levels_keep_an_lbfgs_variant():
    with pytest.raises(errors.InputError, match="unknown setting 'num_step' — did you mean 'num_steps'"):
        presets.resolve("quick", nst={"num_step": 10})
    with pytest.raises(errors.InputError, match="unknown setting 'octave' — did you mean 'octaves'"):
        presets.dream_config("quick", octave=3)
    assert presets.nst_config(presets.nst_config("quick", optimizer="lbfgs-tf"), levels=3).optimizer == "lbfgs-tf"
    assert presets.nst_config("paper", levels=3).optimizer == "lbfgs"  # SGD's rate means nothing across levels
    assert presets.nst_config(presets.PAPER, num_steps=10.0).num_steps == 10  # a whole float becomes an int
    assert presets.dream_config(presets.PAPER) == presets.PAPER.dream
