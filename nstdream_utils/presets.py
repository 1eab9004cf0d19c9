"""Named recipes: the settings of NST and DeepDream, each with the source it comes from.

Three presets (``nstdream info`` prints them):

* ``paper`` — NST as keras-io ``examples/generative/neural_style_transfer.py`` does it (the only
  public recipe whose loss scale, 10³–10⁴, fits the paper's printed NST losses), at the paper's
  224×224; DeepDream as the TensorFlow DeepDream tutorial, at the paper's 299×299, step size 0.005,
  1000 steps.
* ``tf-tutorial`` — the TensorFlow style-transfer tutorial (Adam, Gram ÷ HW, weights 1e-2 / 1e4,
  TV weight 30, longest side 512) and the DeepDream tutorial with octaves.
* ``quick`` — the same networks and losses as ``paper`` at small sizes and few steps, for a 2-core
  CPU and CI; NST by L-BFGS (no learning rate to tune), which converges on any photo and style.
"""

from __future__ import annotations

import dataclasses
import difflib
import numbers
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .errors import InputError

OPTIMIZERS = ("sgd", "adam", "lbfgs", "lbfgs-tf")
PRESERVE_COLORS = ("luminance", "histogram")
INITS = ("content", "noise", "style")

SGD_GUARD_FACTOR = 2.0
"""The ``paper`` and ``quick`` presets' ``sgd_guard_factor``: an SGD update that more than doubles
the loss is undone and retried at half the rate."""

KERAS_STYLE_LAYERS = ("block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1", "block5_conv1")


def _shared(layers: tuple[str, ...]) -> dict[str, float]:
    return {name: 1.0 / len(layers) for name in layers}


@dataclass(frozen=True)
class NSTConfig:
    """Settings of one neural-style-transfer run (``nst.style_transfer``).

    Attributes:
        size: output size in pixels: the longest side, or both sides when ``square`` is true.
        square: resize to ``size × size`` (the paper's 224×224) instead of keeping the aspect ratio.
        num_steps: optimiser iterations.
        optimizer: ``"sgd"`` (paper Eq 2), ``"adam"`` (TF tutorial), ``"lbfgs"`` (Gatys; scipy) or
            ``"lbfgs-tf"`` (the same in TensorFlow: faster where VGG-19 is fast, e.g. bfloat16 on AMX).
        learning_rate: step size, in the units of ``pixel_scale``.
        lr_decay_rate, lr_decay_steps: exponential decay ``lr · rate^(step / steps)`` (None: constant).
        lr_reference_pixels: for SGD, ``learning_rate`` is the one for an image of this many pixels
            and is scaled by ``H·W / lr_reference_pixels`` (None: never scaled; Adam and L-BFGS are
            never scaled: their steps do not depend on the gradient's size). The keras-io style loss
            divides by (H·W)², so each pixel's gradient grows as the image shrinks: lr 10 is stable
            at 224² but diverges at 64² (measured: NaN by step 3), while lr 10·(64/224)² converges.
        sgd_guard_factor: for SGD, an update that raises the loss more than this many times (or
            makes it NaN/Inf) is undone and taken again at half the rate, which stays halved
            (``nst._gradient_loop``; the history's ``retries`` counts them). None: no guard,
            exactly keras-io's SGD. Other optimisers ignore it.
        adam_beta1, adam_epsilon: Adam's β₁ and ε.
        pixel_scale: the optimised image is ``pixel_scale × RGB[0, 1]``; 255 reproduces the keras-io
            example, which optimises caffe-preprocessed pixels in 0..255 (mean shift and BGR order do
            not change gradients, so SGD there equals SGD here with the same learning rate).
        clip: clip the image to the valid range after every step (TF tutorial) or not (keras-io).
        init: start from the ``"content"`` image, seeded ``"noise"`` or the ``"style"`` image.
        content_layers, content_weight (α), content_reduction: see ``losses.content_loss``.
        style_layers: layer → w_l; style_weight (β); style_reduction and gram_normalize: see
            ``losses.style_layer_loss`` and ``losses.gram_matrix``.
        tv_weight, tv_kind, tv_power: total-variation term (``losses.total_variation_loss``).
        preserve_color: None, ``"luminance"`` (after the run, the output's luminance Y with the
            content's chroma Cb, Cr: ``images.keep_colors``) or ``"histogram"`` (the style's colours matched to the content's, before);
            Gatys et al. 2016, "Preserving colour in neural artistic style transfer".
        style_blend: the weight w_k of each style image, L_style = Σ_k w_k L_style(x, style_k)
            (None: 1 for each); one per style image.
        style_scale: the style image is resized to ``style_scale ×`` the output's size before its
            Gram matrices are computed: above 1, its patterns cover more pixels and come out larger.
        mask_weight: with a mask, the weight of the pixel term that keeps the content where the
            mask is black: ``mask_weight · mean((1 − m) · (x − c)²)``, x and c in [0, 1].
    """

    size: int = 224
    square: bool = True
    num_steps: int = 1000
    optimizer: str = "sgd"
    learning_rate: float = 10.0
    lr_decay_rate: float | None = 0.96
    lr_decay_steps: int = 100
    lr_reference_pixels: int | None = 224 * 224
    sgd_guard_factor: float | None = None
    adam_beta1: float = 0.9
    adam_epsilon: float = 1e-7
    pixel_scale: float = 255.0
    clip: bool = False
    init: str = "content"
    content_layers: tuple[str, ...] = ("block5_conv2",)
    content_weight: float = 2.5e-8
    content_reduction: str = "sum"
    style_layers: dict[str, float] = field(default_factory=lambda: _shared(KERAS_STYLE_LAYERS))
    style_weight: float = 1e-6
    style_reduction: str = "keras"
    gram_normalize: str | None = None
    tv_weight: float = 1e-6
    tv_kind: str = "keras"
    tv_power: float = 1.25
    preserve_color: str | None = None
    style_blend: tuple[float, ...] | None = None
    style_scale: float = 1.0
    mask_weight: float = 1e4

    def replace(self, **changes) -> "NSTConfig":
        """A copy with some fields changed; ``None`` values are ignored (they mean "keep"), so to
        set a field to None use ``dataclasses.replace``."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})


@dataclass(frozen=True)
class DreamConfig:
    """Settings of one DeepDream run (``dream.deep_dream``).

    Attributes:
        size: the longest side in pixels, or both sides when ``square`` (the paper's 299×299).
        square: resize to ``size × size``.
        num_steps: gradient-ascent steps per octave.
        step_size: learning rate of the ascent, in pixels of [-1, 1] per normalised gradient.
        layers: Inception v3 layers whose mean activations are summed (``mixed0``…``mixed10``).
        octaves: octave exponents; the image is processed at ``size · octave_scale^n`` for each n.
        octave_scale: scale between octaves (TF tutorial: 1.3).
        tile_size: compute gradients tile by tile (with a random roll) above this size; 0 = never.
        normalize_gradient: divide the gradient by its standard deviation (TF tutorial).
    """

    size: int = 299
    square: bool = True
    num_steps: int = 1000
    step_size: float = 0.005
    layers: tuple[str, ...] = ("mixed3", "mixed5")
    octaves: tuple[int, ...] = (0,)
    octave_scale: float = 1.3
    tile_size: int = 0
    normalize_gradient: bool = True

    def replace(self, **changes) -> "DreamConfig":
        """A copy with some fields changed; ``None`` values are ignored."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})


@dataclass(frozen=True)
class Preset:
    """A named recipe: its NST and DeepDream settings and where they come from."""

    name: str
    description: str
    source: str
    nst: NSTConfig
    dream: DreamConfig


PAPER = Preset(
    name="paper",
    description=(
        "The paper's sizes and steps (NST 224×224, 1000 iterations; DeepDream 299×299, step 0.005, "
        "1000 steps) with the keras-io NST recipe and the TF DeepDream recipe. One change from "
        "keras-io: learning rate 10 instead of 100 — lr 100 was tuned for 400-px images and "
        "diverges at 224² (measured: loss 8.5e5 → inf by step 4, then NaN), lr 10 converges. "
        f"A guard (sgd_guard_factor={SGD_GUARD_FACTOR}) undoes a step that raises the loss more than "
        f"{SGD_GUARD_FACTOR:g}× and retries it at half the rate; it acts only when a step blows up "
        "(sgd_guard_factor=None gives exactly keras-io's SGD)."
    ),
    source=(
        "NST: keras-io examples/generative/neural_style_transfer.py (SGD, ExponentialDecay ×0.96 "
        "per 100 steps, content block5_conv2 2.5e-8 with Σ(F−P)², style block1..5_conv1 1e-6 "
        "shared, Σ(G−A)²/(4·3²·(HW)²), TV 1e-6 power 1.25, caffe pixels); DeepDream: tensorflow/docs "
        "site/en/tutorials/generative/deepdream.ipynb (mixed3+mixed5, mean activations, gradient ÷ "
        "std, pixels in [-1, 1])."
    ),
    nst=NSTConfig(sgd_guard_factor=SGD_GUARD_FACTOR),
    dream=DreamConfig(),
)

TF_TUTORIAL = Preset(
    name="tf-tutorial",
    description="The TensorFlow tutorials' recipes: Adam NST at 512 px, DeepDream with octaves.",
    source=(
        "NST: tensorflow/docs site/en/tutorials/generative/style_transfer.ipynb (Gram ÷ HW, style "
        "weight 1e-2, content weight 1e4, mean-squared losses, Adam lr 0.02 β1 0.99 ε 0.1, TV weight "
        "30, longest side 512, 10 epochs × 100 steps); DeepDream: deepdream.ipynb (octaves -2..2, "
        "scale 1.3, step 0.01, 100 steps per octave, tiles of 512 with random roll)."
    ),
    nst=NSTConfig(
        size=512, square=False, num_steps=1000, optimizer="adam", learning_rate=0.02,
        lr_decay_rate=None, lr_reference_pixels=None, adam_beta1=0.99, adam_epsilon=0.1, pixel_scale=1.0, clip=True,
        content_weight=1e4, content_reduction="mean", style_weight=1e-2, style_reduction="mean",
        gram_normalize="hw", tv_weight=30.0, tv_kind="tf",
    ),
    dream=DreamConfig(size=512, square=False, num_steps=100, step_size=0.01,
                      octaves=(-2, -1, 0, 1, 2), tile_size=512),
)

QUICK = Preset(
    name="quick",
    description=(
        "The paper preset's networks and losses, small and short enough for a 2-core CPU. NST uses "
        "L-BFGS (Gatys' optimiser) instead of SGD: its line search accepts no step that raises the "
        "loss, so no photo, style or size makes it diverge, and it has no learning rate to tune "
        "(--lr is ignored). In the same wall time it reaches a lower loss than keras-io's SGD "
        "(benchmarks/nst_quick_default.py, docs/robustness.md)."
    ),
    source="As `paper`, with NST by L-BFGS; size 128 (NST) / 160 (DeepDream) and 100 / 100 steps.",
    nst=NSTConfig(size=128, num_steps=100, optimizer="lbfgs", sgd_guard_factor=SGD_GUARD_FACTOR),
    dream=DreamConfig(size=160, num_steps=100, step_size=0.01),
)

PRESETS: dict[str, Preset] = {p.name: p for p in (PAPER, TF_TUTORIAL, QUICK)}


def get_preset(name: str | Preset) -> Preset:
    """The preset called ``name`` (``paper``, ``tf-tutorial`` or ``quick``).

    Raises:
        InputError: unknown name; the message lists the valid names and suggests a close match.
    """
    if isinstance(name, Preset):
        return name
    if name in PRESETS:
        return PRESETS[name]
    close = difflib.get_close_matches(str(name), PRESETS, n=1)
    hint = f"did you mean '{close[0]}'?" if close else f"choose one of {', '.join(PRESETS)}"
    raise InputError(f"unknown preset '{name}'", where="--preset", fix=hint)


def nst_config(config: NSTConfig | str = "quick", **overrides) -> NSTConfig:
    """An NST configuration from a preset name or config, with ``overrides`` (None keeps), validated."""
    cfg = get_preset(config).nst if isinstance(config, str) else config
    return validate_nst(cfg.replace(**overrides))


def dream_config(config: DreamConfig | str = "quick", **overrides) -> DreamConfig:
    """A DeepDream configuration from a preset name or config, with ``overrides`` (None keeps), validated.

    ``octaves`` may be an int N: N octaves ending at the base size, ``(-(N-1), …, 0)``.
    """
    cfg = get_preset(config).dream if isinstance(config, str) else config
    if overrides.get("layers") is not None:
        overrides["layers"] = tuple(overrides["layers"])
    octaves = overrides.get("octaves")
    if isinstance(octaves, int) and not isinstance(octaves, bool) and octaves > 0:
        overrides["octaves"] = tuple(range(1 - octaves, 1))
    return validate_dream(cfg.replace(**overrides))


def resolve(preset: str | Preset = "quick", *, nst: dict | None = None, dream: dict | None = None) -> Preset:
    """The preset with ``nst`` and ``dream`` overrides applied (None values keep the preset's), both
    configurations validated (:func:`nst_config`, :func:`dream_config`): how a preset name and its
    options become a run's settings.

    Raises:
        InputError: an unknown preset, or an override that :func:`validate_nst` or :func:`validate_dream` refuses.
    """
    chosen = get_preset(preset)
    return dataclasses.replace(chosen, nst=nst_config(chosen.nst, **(nst or {})),
                               dream=dream_config(chosen.dream, **(dream or {})))


def describe(preset: Preset) -> str:
    """A readable multi-line description of a preset (printed by ``nstdream info``)."""
    lines = [f"[{preset.name}] {preset.description}", f"  source: {preset.source}"]
    for part in ("nst", "dream"):
        cfg = getattr(preset, part)
        values = ", ".join(f"{f.name}={getattr(cfg, f.name)!r}" for f in dataclasses.fields(cfg))
        lines.append(f"  {part}: {values}")
    return "\n".join(lines)


VGG19_LAYERS: tuple[str, ...] = tuple(
    [f"block{b}_conv{i}" for b, n in ((1, 2), (2, 2), (3, 4), (4, 4), (5, 4)) for i in range(1, n + 1)]
    + [f"block{b}_pool" for b in range(1, 6)]
)
"""Keras names of VGG-19's 16 convolution and 5 pooling layers (``block{b}_conv{i}`` = paper's conv{b}_{i})."""

INCEPTION_LAYERS: tuple[str, ...] = tuple(f"mixed{i}" for i in range(11))
"""Inception v3's mixed (inception-module) outputs usable for DeepDream (mixed0…mixed10)."""


def check_layers(layers, valid: tuple[str, ...], *, where: str) -> None:
    """Raise InputError for a layer name not in ``valid``, listing the valid ones and a close match."""
    for name in layers:
        if name not in valid:
            close = difflib.get_close_matches(name, valid, n=1)
            hint = f"did you mean '{close[0]}'? " if close else ""
            raise InputError(f"unknown layer '{name}'", where=where,
                             fix=f"{hint}valid layers: {', '.join(valid)}")


def _positive(value, name: str, *, where: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise InputError(f"{name} must be a positive number, got {value!r}", where=where,
                         fix=f"pass {name} > 0")


def validate_nst(cfg: NSTConfig) -> NSTConfig:
    """Check an NST configuration before any compute; return it unchanged.

    Raises:
        InputError: non-positive size/steps/learning rate, a guard factor below 1, unknown
            optimizer, init or layer.
    """
    where = "nst"
    _positive(cfg.size, "size", where=where)
    if not float(cfg.num_steps).is_integer():
        raise InputError(f"num_steps must be an integer, got {cfg.num_steps!r}", where=where,
                         fix="pass a whole number of steps")
    _positive(cfg.num_steps, "num_steps", where=where)
    _positive(cfg.learning_rate, "learning_rate", where=where)
    factor = cfg.sgd_guard_factor
    if factor is not None and (isinstance(factor, bool) or not isinstance(factor, (int, float)) or not factor >= 1):
        raise InputError(f"sgd_guard_factor must be None or a number ≥ 1, got {factor!r}", where=where,
                         fix=f"pass None (no guard) or a factor such as {SGD_GUARD_FACTOR}")
    if cfg.optimizer not in OPTIMIZERS:
        raise InputError(f"unknown optimizer '{cfg.optimizer}'", where=where,
                         fix=f"choose one of {', '.join(OPTIMIZERS)}")
    if cfg.init not in INITS:
        raise InputError(f"unknown init '{cfg.init}'", where=where, fix=f"choose one of {', '.join(INITS)}")
    check_layers(cfg.content_layers, VGG19_LAYERS, where="content_layers")
    check_layers(cfg.style_layers, VGG19_LAYERS, where="style_layers")
    if cfg.preserve_color is not None and cfg.preserve_color not in PRESERVE_COLORS:
        raise InputError(f"unknown preserve_color '{cfg.preserve_color}'", where="preserve_color",
                         fix=f"choose one of {', '.join(PRESERVE_COLORS)}")
    _positive(cfg.style_scale, "style_scale", where="style_scale")
    _positive(cfg.mask_weight, "mask_weight", where="mask_weight")
    blend = cfg.style_blend or ()
    if any(isinstance(w, bool) or not isinstance(w, (int, float)) or not w >= 0 for w in blend) or \
            (blend and not sum(blend) > 0):
        raise InputError(f"style weights must be numbers ≥ 0, not all 0, got {cfg.style_blend!r}",
                         where="style_blend", fix="pass e.g. 0.7,0.3")
    return cfg


def check_styles(cfg: NSTConfig, num_styles: int) -> None:
    """Refuse a ``style_blend`` whose length is not the number of style images."""
    if cfg.style_blend is not None and len(cfg.style_blend) != num_styles:
        raise InputError(f"{len(cfg.style_blend)} weights for {num_styles} style images", where="style_blend",
                         fix=f"give one weight per style image ({num_styles})")


def check_mask(mask) -> np.ndarray:
    """A mask image as ``[H, W]`` float32 in [0, 1] (white: styled, black: content kept; RGB is
    averaged); refuses one that is all black or all white, which would make the mask pointless."""
    m = np.asarray(mask, np.float32)
    m = m.mean(axis=-1) if m.ndim == 3 else m
    if m.ndim != 2 or not np.isfinite(m).all():
        raise InputError(f"a mask must be an [H, W] or [H, W, 3] image, got shape {m.shape}", where="mask",
                         fix="pass a grayscale or RGB image, white where the style goes")
    if m.max() < 0.01 or m.min() > 0.99:
        colour = "black" if m.max() < 0.01 else "white"
        raise InputError(f"the mask is all {colour}", where="mask",
                         fix="paint white where the style goes and black where the content stays")
    return np.clip(m, 0.0, 1.0)


def validate_dream(cfg: DreamConfig) -> DreamConfig:
    """Check a DeepDream configuration before any compute; return it unchanged.

    Raises:
        InputError: non-positive size/steps/step size, empty or unknown layers.
    """
    where = "dream"
    _positive(cfg.size, "size", where=where)
    _positive(cfg.num_steps, "num_steps", where=where)
    _positive(cfg.step_size, "step_size", where=where)
    _positive(cfg.octave_scale, "octave_scale", where=where)
    if cfg.tile_size and cfg.tile_size < 75:
        raise InputError(f"tile_size {cfg.tile_size} is below Inception v3's 75-pixel minimum", where="tile_size",
                         fix="use 0 (no tiles) or a tile size of at least 75, e.g. 512")
    if not cfg.layers:
        raise InputError("no layers chosen", where="layers", fix="pass e.g. mixed3,mixed5")
    check_layers(cfg.layers, INCEPTION_LAYERS, where="layers")
    return cfg


# ---------------------------------------------------------------- coarse-to-fine schedules
# Pure functions of sizes and counts (no TensorFlow), so the CLI checks them before the networks load;
# ``pyramid.coarse_to_fine`` runs the schedule.

MIN_LEVEL_SIDE = 16
"""The smallest side a level may have: VGG-19 halves the image four times before ``block5``."""


def level_shapes(shape: tuple[int, int], levels: int) -> list[tuple[int, int]]:
    """The ``(height, width)`` of each level, coarsest first: the full shape divided by 2^k.

    Args:
        shape: ``(height, width)`` of the full-size (last) level.
        levels: number of levels, ≥ 1; ``3`` gives quarter, half and full size.

    Returns:
        ``levels`` pairs; the last equals ``shape``, each other one is half the next (rounded).

    Raises:
        InputError: ``levels`` < 1, or a level whose shorter side is below :data:`MIN_LEVEL_SIDE`.

    Example:
        >>> level_shapes((512, 384), 3)
        [(128, 96), (256, 192), (512, 384)]
    """
    if isinstance(levels, bool) or not isinstance(levels, numbers.Integral) or levels < 1:
        raise InputError(f"levels must be a whole number ≥ 1, got {levels!r}", where="levels",
                         fix="pass e.g. levels=3 (quarter, half and full size)")
    height, width = shape
    out = [(max(1, round(height / 2 ** k)), max(1, round(width / 2 ** k))) for k in range(levels - 1, -1, -1)]
    if min(out[0]) < MIN_LEVEL_SIDE:
        raise InputError(f"the coarsest of {levels} levels would be {out[0][0]}×{out[0][1]} px, below "
                         f"{MIN_LEVEL_SIDE} px", where="levels",
                         fix="use fewer levels or a larger size")
    return out


def level_steps(steps_per_level, levels: int) -> list[int]:
    """Steps per level, coarsest first: ``steps_per_level`` checked, or :func:`default_steps`.

    Args:
        steps_per_level: None (the defaults), one int for every level, or one int per level.
        levels: number of levels, ≥ 1.

    Raises:
        InputError: a list of the wrong length, or a count that is not a whole number ≥ 1.

    Example:
        >>> level_steps(None, 3), level_steps(50, 2), level_steps([40, 20, 10], 3)
        ([200, 100, 100], [50, 50], [40, 20, 10])
    """
    if steps_per_level is None:
        return default_steps(levels)
    if isinstance(steps_per_level, numbers.Integral) and not isinstance(steps_per_level, bool):
        steps = [int(steps_per_level)] * levels
    elif isinstance(steps_per_level, Sequence) and not isinstance(steps_per_level, str):
        steps = list(steps_per_level)
        if len(steps) != levels:
            raise InputError(f"steps_per_level has {len(steps)} entries for {levels} levels",
                             where="steps_per_level", fix=f"give one step count per level ({levels})")
    else:
        raise InputError(f"steps_per_level must be an int or a list of ints, got {steps_per_level!r}",
                         where="steps_per_level", fix="pass e.g. steps_per_level=(20, 20, 100)")
    for s in steps:
        if isinstance(s, bool) or not isinstance(s, numbers.Integral) or s < 1:
            raise InputError(f"every level needs at least 1 step, got {steps_per_level!r}",
                             where="steps_per_level", fix="pass positive whole numbers")
    return [int(s) for s in steps]


def default_steps(levels: int) -> list[int]:
    """L-BFGS steps per level, coarsest first, when ``steps_per_level`` is not given.

    Example:
        >>> default_steps(3)
        [200, 100, 100]
    """
    return [COARSE_STEPS * 2 ** (levels - 2 - k) for k in range(levels - 1)] + [FINE_STEPS]


COARSE_STEPS = 100
"""Default L-BFGS steps at the half-size level; each level below it gets twice the steps of the one
above (quarter size 200, eighth 400), so every coarse level costs about as much as 25 or fewer
full-size evaluations. At 512 px, 200 + 100 coarse steps cut the full-size iterations to the TF
tutorial's 1000-step loss from 248 (20 + 20 coarse steps) to 178 (benchmarks/nst_time_to_quality.py)."""

FINE_STEPS = 100
"""Default L-BFGS steps at full size: about the TF tutorial's 1000 Adam steps' loss at 128 px."""


def full_shape(shape: tuple[int, int], cfg: NSTConfig) -> tuple[int, int]:
    """The ``(height, width)`` that ``nst.prepare_images`` gives an image of ``shape`` (``images.resize``'s
    rounding): the last level of a coarse-to-fine run."""
    if cfg.square:
        return cfg.size, cfg.size
    scale = cfg.size / max(shape)
    return max(1, round(shape[0] * scale)), max(1, round(shape[1] * scale))
