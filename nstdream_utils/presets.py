"""Named recipes (``paper``, ``tf-tutorial``, ``quick``) and :func:`resolve`, the one way a preset plus overrides
becomes a run's frozen configs, checked when made. TensorFlow-free: the CLI resolves first."""

from __future__ import annotations

import dataclasses
import numbers
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .errors import InputError, did_you_mean

OPTIMIZERS = ("sgd", "adam", "lbfgs", "lbfgs-tf")
PRESERVE_COLORS = ("luminance", "histogram")
INITS = ("content", "noise", "style")
SGD_GUARD_FACTOR = 2.0  # paper's and quick's: an SGD update that more than doubles the loss is redone at half rate

KERAS_STYLE_LAYERS = ("block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1", "block5_conv1")
# Keras names of VGG-19's 16 convolution and 5 pooling layers (``block{b}_conv{i}`` = paper's conv{b}_{i})
VGG19_LAYERS: tuple[str, ...] = tuple(
    [f"block{b}_conv{i}" for b, n in ((1, 2), (2, 2), (3, 4), (4, 4), (5, 4)) for i in range(1, n + 1)]
    + [f"block{b}_pool" for b in range(1, 6)])
INCEPTION_LAYERS: tuple[str, ...] = tuple(f"mixed{i}" for i in range(11))  # Inception v3's mixed0…mixed10 outputs

MIN_LEVEL_SIDE = 16  # the smallest side of a coarse-to-fine level: VGG-19 halves it 4 times before block5
COARSE_STEPS = 100  # default L-BFGS steps at half size, doubling at each coarser level
FINE_STEPS = 100  # default L-BFGS steps at full size: about the TF tutorial's 1000 Adam steps' loss at 128 px


def _fail(what: str, where: str, fix: str):
    raise InputError(what, where=where, fix=fix)


def _real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _whole(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _one_of(*choices):
    return lambda v: v in choices, "unknown {name} '{value}'", f"choose one of {', '.join(c for c in choices if c)}"


_POSITIVE = (lambda v: _real(v) and v > 0, "{name} must be a positive number, got {value!r}", "pass {name} > 0")
_COUNT = (lambda v: _real(v) and v > 0 and float(v).is_integer(), "{name} must be a whole number > 0, got {value!r}",
          "pass a whole number as {name}")
# field -> (test, what is wrong, fix), for both configs; {name} and {value} are filled in, ``where`` is the field
_RULES = {
    "size": _COUNT, "num_steps": _COUNT, "levels": _COUNT, "learning_rate": _POSITIVE, "style_scale": _POSITIVE,
    "mask_weight": _POSITIVE, "step_size": _POSITIVE, "octave_scale": _POSITIVE,
    "sgd_guard_factor": (lambda v: v is None or (_real(v) and v >= 1),
                         "{name} must be None or a number ≥ 1, got {value!r}",
                         f"pass None (no guard) or a factor such as {SGD_GUARD_FACTOR}"),
    "optimizer": _one_of(*OPTIMIZERS), "init": _one_of(*INITS), "preserve_color": _one_of(None, *PRESERVE_COLORS),
    "style_blend": (lambda b: not b or (isinstance(b, tuple) and all(_real(w) and w >= 0 for w in b) and sum(b) > 0),
                    "style weights must be numbers ≥ 0, not all 0, got {value!r}", "pass e.g. 0.7,0.3"),
    "tile_size": (lambda v: not v or v >= 75, "{name} {value} is below Inception v3's 75-pixel minimum",
                  "use 0 (no tiles) or a tile size of at least 75, e.g. 512"),
    "octaves": (lambda v: v > 0 if _whole(v) else len(v), "{name} must be a positive number or exponents, got "
                "{value!r}", "pass e.g. octaves=(0,) or a count such as 3"),
    "layers": (len, "no layers chosen", "pass e.g. mixed3,mixed5"),
}


def _check(cfg) -> None:
    """Check ``cfg``'s fields by :data:`_RULES`; whole numbers become ints."""
    for name in [f.name for f in dataclasses.fields(cfg) if f.name in _RULES]:
        (test, what, fix), value = _RULES[name], getattr(cfg, name)
        if not test(value):
            _fail(what.format(name=name, value=value), name, fix.format(name=name))
        if _RULES[name] is _COUNT:
            object.__setattr__(cfg, name, int(value))


def _check_name(name, valid, kind: str, where: str) -> None:
    """InputError unless ``name`` is in ``valid``, suggesting a close match and listing the valid names."""
    if name not in valid:
        _fail(f"unknown {kind} '{name}'", where, did_you_mean(name, valid, f"valid {kind}s: {', '.join(valid)}"))


def check_layers(layers, valid: tuple[str, ...], *, where: str) -> None:
    """Raise InputError for a layer name not in ``valid``, listing the valid ones and a close match."""
    for name in layers:
        _check_name(name, valid, "layer", where)


def validate_nst(cfg: NSTConfig) -> NSTConfig:
    """Check an NST config and normalise its fields (done when one is made); return it. InputError names the fault."""
    _check(cfg)
    object.__setattr__(cfg, "steps_per_level", _level_steps(cfg.steps_per_level, cfg.levels))
    check_layers(cfg.content_layers, VGG19_LAYERS, where="content_layers")
    check_layers(cfg.style_layers, VGG19_LAYERS, where="style_layers")
    controls = [name for name, on in (("preserve_color", cfg.preserve_color), ("style_blend", cfg.style_blend),
                                      ("style_scale", cfg.style_scale != 1)) if on]
    if cfg.levels > 1 and controls:
        _fail(f"{', '.join(controls)} with levels={cfg.levels}: coarse to fine takes none of these", "levels",
              "run one level with these controls, or drop them")
    return cfg


def check_styles(cfg: NSTConfig, num_styles: int) -> None:
    """Refuse a ``style_blend`` whose length is not the number of style images."""
    if cfg.style_blend is not None and len(cfg.style_blend) != num_styles:
        _fail(f"{len(cfg.style_blend)} weights for {num_styles} style images", "style_blend",
              f"give one weight per style image ({num_styles})")


def check_checkpointable(cfg: NSTConfig, where: str) -> None:
    """Refuse a checkpoint for an optimiser whose state is not saved (L-BFGS): only SGD and Adam are kept."""
    if cfg.optimizer not in ("sgd", "adam"):
        _fail(f"checkpoints are kept for sgd and adam, not {cfg.optimizer}", where,
              "use optimizer 'sgd' or 'adam' (the paper or tf-tutorial preset), or no checkpoint")


def check_mask(mask) -> np.ndarray:
    """A mask image as ``[H, W]`` float32 in [0, 1] (white: styled, RGB averaged); InputError if all black or white."""
    m = np.asarray(mask, np.float32)
    m = m.mean(axis=-1) if m.ndim == 3 else m
    if m.ndim != 2 or not np.isfinite(m).all():
        _fail(f"must be an [H, W] or [H, W, 3] image, got shape {m.shape}", "mask",
              "pass a grayscale or RGB image, white where the style goes")
    if m.max() < 0.01 or m.min() > 0.99:
        _fail(f"the image is all {'black' if m.max() < 0.01 else 'white'}", "mask",
              "paint white where the style goes and black where the content stays")
    return np.clip(m, 0.0, 1.0)


def _level_steps(steps, levels: int) -> tuple[int, ...] | None:
    """``steps_per_level`` as one count per level, coarsest first (None for one level)."""
    if levels == 1 and steps is not None:
        _fail("steps_per_level needs levels ≥ 2", "steps_per_level", "use it with two or more levels")
    if levels == 1:
        return None
    steps = default_steps(levels) if steps is None else (steps,) * levels if _whole(steps) else steps
    if isinstance(steps, str) or not isinstance(steps, Sequence) or len(steps) != levels \
            or not all(_whole(n) and n >= 1 for n in steps):
        _fail(f"steps_per_level must be {levels} whole numbers ≥ 1, one per level, got {steps!r}", "steps_per_level",
              f"give one count per level, coarsest first, e.g. {','.join(map(str, default_steps(levels)))}")
    return tuple(int(n) for n in steps)


def default_steps(levels: int) -> list[int]:
    """L-BFGS steps per level, coarsest first: ``default_steps(3) == [200, 100, 100]``."""
    return [COARSE_STEPS * 2 ** (levels - 2 - k) for k in range(levels - 1)] + [FINE_STEPS]


def level_shapes(shape: tuple[int, int], levels: int) -> list[tuple[int, int]]:
    """``(height, width)`` per level, coarsest first: ``shape`` ÷ 2^k, rounded (``((512, 384), 3)`` → 128×96,
    256×192, 512×384); InputError if the coarsest level's shorter side is below :data:`MIN_LEVEL_SIDE`."""
    out = [(max(1, round(shape[0] / 2 ** k)), max(1, round(shape[1] / 2 ** k))) for k in range(levels - 1, -1, -1)]
    if min(out[0]) < MIN_LEVEL_SIDE:
        _fail(f"the coarsest level would be {out[0][0]}×{out[0][1]} px with levels={levels}, below {MIN_LEVEL_SIDE} px",
              "levels", f"use fewer levels or a larger size (the coarsest side must be at least {MIN_LEVEL_SIDE} px)")
    return out


def full_shape(shape: tuple[int, int], cfg: NSTConfig) -> tuple[int, int]:
    """The ``(height, width)`` that ``nst.prepare_images`` gives an image of ``shape``: a run's last level."""
    scale = cfg.size / max(shape)
    return (cfg.size, cfg.size) if cfg.square else (max(1, round(shape[0] * scale)), max(1, round(shape[1] * scale)))


class _Config:
    def replace(self, **changes):
        """A copy with ``changes`` (None keeps a field), checked as it is made; InputError names an unknown field."""
        for key in changes:
            _check_name(key, [f.name for f in dataclasses.fields(self)], "setting", type(self).__name__)
        changes = {k: v for k, v in changes.items() if v is not None}
        return dataclasses.replace(self, **changes) if changes else self


@dataclass(frozen=True)
class NSTConfig(_Config):
    """Settings of one NST run (``nst.style_transfer``; ``pyramid.coarse_to_fine`` for ``levels`` > 1)."""

    # size: the longest side in px (both if square); optimizer: sgd (paper Eq 2), adam (TF tutorial), lbfgs, lbfgs-tf
    size: int = 224
    square: bool = True
    num_steps: int = 1000
    optimizer: str = "sgd"
    # lr in pixel_scale units × lr_decay_rate^(step/lr_decay_steps), SGD's × H·W/lr_reference_pixels; an SGD update
    # raising the loss over sgd_guard_factor × (or to NaN) is redone at half rate. The image: pixel_scale × RGB[0, 1]
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
    style_layers: dict[str, float] = field(default_factory=lambda: dict.fromkeys(KERAS_STYLE_LAYERS, 0.2))
    style_weight: float = 1e-6
    style_reduction: str = "keras"
    gram_normalize: str | None = None
    tv_weight: float = 1e-6
    tv_kind: str = "keras"
    tv_power: float = 1.25
    # controls: a weight per style image (style_blend), style image size ÷ output size, the masked loss's weight
    preserve_color: str | None = None
    style_blend: tuple[float, ...] | None = None
    style_scale: float = 1.0
    mask_weight: float = 1e4
    # coarse to fine from 1/2^(levels−1) of the size; steps_per_level coarsest first (int: each; None: default_steps)
    levels: int = 1
    steps_per_level: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        blend = self.style_blend
        object.__setattr__(self, "content_layers", tuple(self.content_layers))
        object.__setattr__(self, "style_blend", tuple(blend) if isinstance(blend, (Sequence, np.ndarray)) else blend)
        validate_nst(self)


@dataclass(frozen=True)
class DreamConfig(_Config):
    """Settings of one DeepDream run (``dream.deep_dream``)."""

    # num_steps per octave at step_size (pixels in [-1, 1]; per gradient ÷ its std); the layers' mean activations summed
    size: int = 299
    square: bool = True
    num_steps: int = 1000
    step_size: float = 0.005
    layers: tuple[str, ...] = ("mixed3", "mixed5")
    # exponents n, each run at size · octave_scale^n (an int N: -(N-1)…0); tile by tile above tile_size (0: never)
    octaves: tuple[int, ...] = (0,)
    octave_scale: float = 1.3
    tile_size: int = 0
    normalize_gradient: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "layers", tuple(self.layers))
        _check(self)
        if _whole(self.octaves):
            object.__setattr__(self, "octaves", tuple(range(1 - self.octaves, 1)))
        check_layers(self.layers, INCEPTION_LAYERS, where="layers")


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
    description="The paper's sizes and steps with the keras-io NST and TF DeepDream recipes; NST by SGD at lr 100 "
    "(the learning-rate study's pick) with a guard: a step that more than doubles the loss is retried at half the "
    "rate (sgd_guard_factor; None: keras-io's unguarded SGD, which can diverge at 224²).",
    source="NST: keras-io examples/generative/neural_style_transfer.py (Σ(F−P)², Σ(G−A)²/(4·3²·(HW)²), caffe pixels); "
    "DeepDream: tensorflow/docs site/en/tutorials/generative/deepdream.ipynb (gradient ÷ std, pixels in [-1, 1]).",
    nst=NSTConfig(learning_rate=100.0, sgd_guard_factor=SGD_GUARD_FACTOR),
    dream=DreamConfig(),
)
TF_TUTORIAL = Preset(
    name="tf-tutorial",
    description="The TensorFlow tutorials' recipes: Adam NST at 512 px, DeepDream with octaves.",
    source="NST: tensorflow/docs site/en/tutorials/generative/style_transfer.ipynb (10 epochs × 100 steps); "
    "DeepDream: deepdream.ipynb (100 steps per octave, tiles of 512 with random roll).",
    nst=NSTConfig(size=512, square=False, num_steps=1000, optimizer="adam", learning_rate=0.02, lr_decay_rate=None,
                  lr_reference_pixels=None, adam_beta1=0.99, adam_epsilon=0.1, pixel_scale=1.0, clip=True,
                  content_weight=1e4, content_reduction="mean", style_weight=1e-2, style_reduction="mean",
                  gram_normalize="hw", tv_weight=30.0, tv_kind="tf"),
    dream=DreamConfig(size=512, square=False, num_steps=100, step_size=0.01, octaves=(-2, -1, 0, 1, 2),
                      tile_size=512),
)
QUICK = Preset(
    name="quick",
    description="The paper preset's losses, small and short enough for a 2-core CPU, NST by L-BFGS (Gatys' "
    "optimiser), which never diverges, has no learning rate (--lr is ignored) and ends lower than SGD in equal time.",
    source="As `paper`, with NST by L-BFGS; size 128 (NST) / 160 (DeepDream) and 100 / 100 steps.",
    nst=NSTConfig(size=128, num_steps=100, optimizer="lbfgs", sgd_guard_factor=SGD_GUARD_FACTOR),
    dream=DreamConfig(size=160, num_steps=100, step_size=0.01),
)
PRESETS: dict[str, Preset] = {p.name: p for p in (PAPER, TF_TUTORIAL, QUICK)}


def get_preset(name: str | Preset) -> Preset:
    """The preset called ``name`` (or ``name`` itself if a Preset); InputError suggests a close name."""
    if isinstance(name, Preset):
        return name
    _check_name(name, PRESETS, "preset", "--preset")
    return PRESETS[name]


def resolve(preset: str | Preset = "quick", *, nst: dict | None = None, dream: dict | None = None) -> Preset:
    """``preset`` (a name or a Preset) with the ``nst`` and ``dream`` overrides (dicts of fields; None keeps the
    preset's value) by :func:`nst_config` and :func:`dream_config`. InputError: an unknown preset or a bad override."""
    chosen = get_preset(preset)
    return dataclasses.replace(chosen, nst=nst_config(chosen.nst, **(nst or {})),
                               dream=dream_config(chosen.dream, **(dream or {})))


def nst_config(config: NSTConfig | str = "quick", **overrides) -> NSTConfig:
    """``config`` (or a preset's, by name) with ``overrides`` (None keeps a field). A new ``levels`` takes the default
    ``steps_per_level`` unless given, and above 1 turns SGD or Adam into L-BFGS unless an ``optimizer`` is given."""
    cfg = get_preset(config).nst if isinstance(config, (str, Preset)) else config
    if (levels := overrides.get("levels")) is not None:
        if _whole(levels) and levels > 1 and cfg.optimizer in ("sgd", "adam"):
            overrides["optimizer"] = overrides.get("optimizer") or "lbfgs"
        cfg = dataclasses.replace(cfg, levels=1, steps_per_level=None)  # one level: valid, whatever the overrides
    return cfg.replace(**overrides)


def dream_config(config: DreamConfig | str = "quick", **overrides) -> DreamConfig:
    """``config`` (or a preset's, by name) with ``overrides`` (None keeps a field)."""
    return (get_preset(config).dream if isinstance(config, (str, Preset)) else config).replace(**overrides)


def describe(preset: Preset) -> str:
    """A preset as readable lines (``nstdream info``)."""
    return f"[{preset.name}] {preset.description}\n  source: {preset.source}\n  {preset.nst}\n  {preset.dream}"
