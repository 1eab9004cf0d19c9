"""Frozen ImageNet feature extractors: VGG-19 for style transfer, Inception v3 for DeepDream.

Both take images in [0, 1] and do their own preprocessing, and both return a dict from Keras layer
name to feature map. The networks are built once per weights file and shared.

Paper names ↔ Keras names: VGG-19's ``conv{b}_{i}`` is ``block{b}_conv{i}``, ``pool{b}`` is
``block{b}_pool``; Inception v3's inception modules are ``mixed0`` … ``mixed10``.
Taught in notebook 00 (the two networks).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Sequence
from pathlib import Path

import keras
import tensorflow as tf

from . import device
from . import weights as weights_lib
from .presets import INCEPTION_LAYERS, VGG19_LAYERS, check_layers

# Mean BGR pixel of ImageNet, subtracted by Keras' "caffe" preprocessing (vgg19.preprocess_input).
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)

PAPER_NAMES = {
    **{f"block{b}_conv{i}": f"conv{b}_{i}" for b in range(1, 6) for i in range(1, 5)},
    **{f"block{b}_pool": f"pool{b}" for b in range(1, 6)},
}
"""Keras layer name → the paper's name (VGG-19)."""


def vgg_preprocess(images: tf.Tensor) -> tf.Tensor:
    """[0, 1] RGB → Keras' caffe preprocessing: 0..255 BGR minus the ImageNet mean.

    Args:
        images: float ``[B, H, W, 3]`` RGB in [0, 1].
    Returns:
        float32 ``[B, H, W, 3]`` BGR, roughly in [-124, 152].
    """
    x = tf.cast(images, tf.float32) * 255.0
    return tf.reverse(x, [-1]) - tf.constant(CAFFE_MEAN_BGR, tf.float32)  # RGB → BGR; its gradient is a reverse, not a scatter


def inception_preprocess(images: tf.Tensor) -> tf.Tensor:
    """[0, 1] RGB → [-1, 1] (Keras' ``inception_v3.preprocess_input``)."""
    return tf.cast(images, tf.float32) * 2.0 - 1.0


class FeatureExtractor:
    """A frozen network returning named layer outputs; call it on ``[B, H, W, 3]`` images in [0, 1].

    Attributes:
        layers: the layer names it returns, in order.
        model: the underlying ``keras.Model`` (preprocessed input → list of outputs).
    """

    def __init__(self, model: keras.Model, layers: Sequence[str], preprocess) -> None:
        self.model = model
        self.layers = tuple(layers)
        self.preprocess = preprocess

    def __call__(self, images) -> dict[str, tf.Tensor]:
        """Features of ``images`` (float ``[B, H, W, 3]`` in [0, 1]) as float32 ``{layer: [B, h, w, c]}``."""
        x = tf.convert_to_tensor(images, tf.float32)
        if x.shape.rank == 3:
            x = x[tf.newaxis]
        x = self.preprocess(x)
        outputs = self.model(x, training=False)
        if not isinstance(outputs, (list, tuple)):
            outputs = [outputs]
        return {name: tf.cast(out, tf.float32) for name, out in zip(self.layers, outputs)}

    @property
    def compute_dtype(self) -> str:
        """What the convolutions compute in: ``"float32"``, ``"bfloat16"`` or ``"float16"``."""
        return next(layer.compute_dtype for layer in self.model.layers if isinstance(layer, keras.layers.Conv2D))

    def __repr__(self) -> str:
        return f"FeatureExtractor({self.model.name}, layers={list(self.layers)})"


PRECISIONS: dict[str | None, str | None] = {
    None: None, "float32": "float32", "bfloat16": "mixed_bfloat16", "float16": "mixed_float16",
}
"""``precision`` argument → Keras dtype policy the network is built with (None: the global policy,
which ``device.setup`` sets to ``mixed_float16`` on tensor-core GPUs)."""


_WARNED: set[str] = set()
"""Precisions already warned about in this process (one :class:`errors.PerformanceWarning` each)."""


def check_precision(precision: str | None) -> str | None:
    """The Keras dtype policy for ``precision`` (a key of :data:`PRECISIONS`).

    Where ``precision`` would be emulated, and so slower than float32 (a CPU without bfloat16 or
    float16 instructions: ``device.slow_precision``), warns once per process with an
    :class:`errors.PerformanceWarning` that says so and names the fix; the run goes on.

    Raises:
        InputError: an unknown precision (the fix lists the valid ones).
    """
    if not (precision is None or isinstance(precision, str)) or precision not in PRECISIONS:
        from .errors import InputError

        raise InputError(f"unknown precision {precision!r}", where="precision",
                         fix="use float32, bfloat16 (CPUs with AVX512-BF16 or AMX, recent GPUs) or float16 (GPUs)")
    if precision not in _WARNED and (reason := device.slow_precision(precision)):
        import warnings

        from .errors import PerformanceWarning

        _WARNED.add(precision)
        warnings.warn(PerformanceWarning(f"precision {precision}: {reason} — use float32 (the default) "
                                         "on this machine"), stacklevel=2)
    return PRECISIONS[precision]


class LossScale:
    """Dynamic loss scaling for a gradient with respect to an image through a float16 network.

    Backpropagation is linear in the loss, so the gradient of ``scale × loss`` is ``scale ×`` the
    gradient at every layer: a scale below 1 keeps float16's backward pass from overflowing, one
    above 1 keeps small gradients from underflowing. As Keras' ``LossScaleOptimizer`` does for
    weights: start at :attr:`INITIAL`; when a gradient is not finite, divide the scale by
    :attr:`FACTOR` and compute it again (at most :attr:`RETRIES` times in one call); after
    :attr:`GROWTH_INTERVAL` finite gradients in a row, multiply it by 2 (up to :attr:`MAXIMUM`).
    """

    INITIAL = 1.0
    FACTOR = 2.0 ** 4
    RETRIES = 8
    GROWTH_INTERVAL = 100
    MAXIMUM = 2.0 ** 15

    def __init__(self) -> None:
        self.scale = tf.Variable(self.INITIAL, trainable=False, dtype=tf.float32)
        self.finite_run = tf.Variable(0, trainable=False, dtype=tf.int32)

    def value_and_gradient(self, loss_fn, image: tf.Tensor):
        """``loss_fn(image)`` (a dict with ``"total"``) and ``d total / d image``, unscaled, in float32."""
        def attempt(scale):
            with tf.GradientTape() as tape:
                tape.watch(image)
                terms = loss_fn(image)
                scaled = terms["total"] * scale
            return terms, tape.gradient(scaled, image) / scale

        def not_finite(grad):
            return tf.logical_not(tf.reduce_all(tf.math.is_finite(grad)))

        def retry(scale, terms, grad, tries):
            scale = scale / self.FACTOR
            return (scale, *attempt(scale), tries + 1)

        scale = self.scale.read_value()
        scale, terms, grad, tries = tf.while_loop(
            lambda scale, terms, grad, tries: tf.logical_and(not_finite(grad), tries < self.RETRIES),
            retry, (scale, *attempt(scale), tf.constant(0)))
        run = tf.where(tries > 0, 0, self.finite_run + 1)
        grow = run >= self.GROWTH_INTERVAL
        self.scale.assign(tf.where(grow, tf.minimum(scale * 2.0, self.MAXIMUM), scale))
        self.finite_run.assign(tf.where(grow, 0, run))
        return terms, grad


@contextlib.contextmanager
def _global_policy(name: str | None):
    """Build layers under the Keras dtype policy ``name`` (None: leave the global policy alone)."""
    if name is None:
        yield
        return
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(name)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


@functools.lru_cache(maxsize=4)
def _vgg19(path: str, policy: str | None = None) -> keras.Model:
    with _global_policy(policy):
        model = keras.applications.VGG19(include_top=False, weights=path, input_shape=(None, None, 3))
    model.trainable = False
    return model


@functools.lru_cache(maxsize=4)
def _inception(path: str, policy: str | None = None) -> keras.Model:
    with _global_policy(policy):
        model = keras.applications.InceptionV3(include_top=False, weights=path, input_shape=(None, None, 3))
    model.trainable = False
    return model


def _load(builder, name: str, weights: str | Path | None, policy: str | None = None) -> keras.Model:
    path = weights_lib.resolve(name, path=weights)
    try:
        return builder(str(path), policy)
    except (OSError, ValueError, KeyError) as exc:
        from .errors import WeightsError

        raise WeightsError(f"cannot load {path.name}: {exc}", where=str(path),
                           fix="replace the file: set NSTDREAM_WEIGHTS_DIR or run `nstdream weights fetch`") from exc


def vgg19_features(layers: Sequence[str], *, weights: str | Path | None = None,
                   precision: str | None = None) -> FeatureExtractor:
    """A frozen ImageNet VGG-19 returning ``layers`` (Keras names, e.g. ``block5_conv2``).

    Args:
        layers: names from :data:`presets.VGG19_LAYERS`.
        weights: a weights file or folder; default: found by ``weights.resolve("vgg19")``.
        precision: what the convolutions compute in: ``"float32"``, ``"bfloat16"`` or ``"float16"``
            (Keras mixed policies: weights stay float32, features are returned as float32), or
            None for the global Keras policy. bfloat16 takes about 1.8× less CPU time per NST step on
            CPUs with AVX512-BF16, 3.4× with AMX (``docs/benchmarks.md``); features then carry about 3
            significant digits.

    Raises:
        InputError: an unknown layer name (the message lists the valid ones) or precision.
        WeightsError: no verified weights file.
    """
    layers = tuple(dict.fromkeys(layers))
    check_layers(layers, VGG19_LAYERS, where="layers")
    base = _load(_vgg19, "vgg19", weights, check_precision(precision))
    return _extractor(base, layers, "vgg19_features", vgg_preprocess)


def inception_features(layers: Sequence[str], *, weights: str | Path | None = None,
                       precision: str | None = None) -> FeatureExtractor:
    """A frozen ImageNet Inception v3 returning ``layers`` (``mixed0`` … ``mixed10``).

    Images must be at least 75×75 pixels. ``precision`` and errors as in :func:`vgg19_features`.
    """
    layers = tuple(dict.fromkeys(layers))
    check_layers(layers, INCEPTION_LAYERS, where="layers")
    base = _load(_inception, "inception_v3", weights, check_precision(precision))
    return _extractor(base, layers, "inception_features", inception_preprocess)


def _extractor(base: keras.Model, layers: tuple[str, ...], name: str, preprocess) -> FeatureExtractor:
    """``base`` cut to return ``layers`` (Keras' own model: the same graph on every machine)."""
    model = keras.Model(base.input, [base.get_layer(n).output for n in layers], name=name)
    return FeatureExtractor(model, layers, preprocess)


def layer_table(model: str = "vgg19") -> list[dict]:
    """Rows (name, paper name, type, output channels, parameters) describing a network's layers."""
    base = _load(_vgg19 if model == "vgg19" else _inception, "vgg19" if model == "vgg19" else "inception_v3", None)
    rows = []
    for layer in base.layers:
        shape = layer.output.shape
        rows.append({"name": layer.name, "paper_name": PAPER_NAMES.get(layer.name, ""),
                     "type": type(layer).__name__, "channels": shape[-1], "params": layer.count_params()})
    return rows
