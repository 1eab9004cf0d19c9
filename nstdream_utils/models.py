"""Frozen ImageNet feature extractors, VGG-19 for style transfer and Inception v3 for DeepDream: images in [0, 1]
in, ``{Keras layer name: feature map}`` out; each network built once per weights file and precision. Notebook 00."""

import functools
import warnings
from collections.abc import Sequence
from pathlib import Path

import keras
import tensorflow as tf

from . import device
from . import weights as weights_lib
from .errors import InputError, PerformanceWarning, WeightsError
from .presets import INCEPTION_LAYERS, VGG19_LAYERS, check_layers

CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)  # ImageNet's mean BGR pixel (vgg19.preprocess_input)

PAPER_NAMES = {**{f"block{b}_conv{i}": f"conv{b}_{i}" for b in range(1, 6) for i in range(1, 5)},
               **{f"block{b}_pool": f"pool{b}" for b in range(1, 6)}}
"""Keras layer name → the paper's name (VGG-19)."""


def vgg_preprocess(images: tf.Tensor) -> tf.Tensor:
    """float ``[B, H, W, 3]`` RGB in [0, 1] → 0..255 BGR minus the ImageNet mean (Keras' caffe preprocessing)."""
    x = tf.cast(images, tf.float32) * 255.0
    return tf.reverse(x, [-1]) - tf.constant(CAFFE_MEAN_BGR, tf.float32)  # a reverse: its gradient is no scatter


def inception_preprocess(images: tf.Tensor) -> tf.Tensor:
    """[0, 1] → [-1, 1] (Keras' ``inception_v3.preprocess_input``)."""
    return tf.cast(images, tf.float32) * 2.0 - 1.0


class FeatureExtractor:
    """A frozen ``model`` returning the outputs of ``layers``."""

    def __init__(self, model: keras.Model, layers: Sequence[str], preprocess) -> None:
        self.model, self.layers, self.preprocess = model, tuple(layers), preprocess

    def __call__(self, images) -> dict[str, tf.Tensor]:
        """``{layer: float32 [B, h, w, c]}`` for ``images`` ``[B, H, W, 3]`` (or ``[H, W, 3]``) in [0, 1]."""
        x = tf.convert_to_tensor(images, tf.float32)
        x = x[tf.newaxis] if x.shape.rank == 3 else x
        outputs = self.model(self.preprocess(x), training=False)
        if not isinstance(outputs, (list, tuple)):
            outputs = [outputs]
        return {name: tf.cast(out, tf.float32) for name, out in zip(self.layers, outputs)}

    @property
    def compute_dtype(self) -> str:
        """What the convolutions compute in: ``"float32"``, ``"bfloat16"`` or ``"float16"``."""
        return next(layer.compute_dtype for layer in self.model.layers if isinstance(layer, keras.layers.Conv2D))


PRECISIONS = {None: None, "float32": "float32", "bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}
"""``precision`` → the Keras dtype policy the network is built with (None: the global policy)."""

_WARNED: set[str] = set()  # precisions already warned about in this process


def check_precision(precision: str | None) -> str | None:
    """The Keras dtype policy for ``precision``, warning once where it is slower than float32; InputError if unknown."""
    if not (precision is None or isinstance(precision, str)) or precision not in PRECISIONS:
        raise InputError(f"unknown precision {precision!r}", where="precision",
                         fix="use float32, bfloat16 (CPUs with AVX512-BF16 or AMX, recent GPUs) or float16 (GPUs)")
    if precision not in _WARNED and (reason := device.slow_precision(precision)):
        _WARNED.add(precision)
        warnings.warn(PerformanceWarning(f"precision {precision}: {reason} — use float32 (the default) "
                                         "on this machine"), stacklevel=2)
    return PRECISIONS[precision]


class LossScale:
    """Keras' dynamic loss scaling for an image's gradient through a float16 network (``LossScaleOptimizer``)."""

    FACTOR, RETRIES, GROWTH_INTERVAL, MAXIMUM = 2.0 ** 4, 8, 100, 2.0 ** 15

    def __init__(self) -> None:
        self.scale = tf.Variable(1.0, trainable=False, dtype=tf.float32)
        self.finite_run = tf.Variable(0, trainable=False, dtype=tf.int32)

    def value_and_gradient(self, loss_fn, image: tf.Tensor):
        """``loss_fn(image)`` (a dict with ``"total"``) and ``d total / d image``, unscaled, float32."""
        def attempt(scale):
            with tf.GradientTape() as tape:
                tape.watch(image)
                terms = loss_fn(image)
                scaled = terms["total"] * scale
            return terms, tape.gradient(scaled, image) / scale

        def retry(scale, terms, grad, tries):
            return (scale / self.FACTOR, *attempt(scale / self.FACTOR), tries + 1)

        def again(scale, terms, grad, tries):
            return tf.logical_and(tf.logical_not(tf.reduce_all(tf.math.is_finite(grad))), tries < self.RETRIES)

        scale = self.scale.read_value()
        scale, terms, grad, tries = tf.while_loop(again, retry, (scale, *attempt(scale), tf.constant(0)))
        run = tf.where(tries > 0, 0, self.finite_run + 1)
        grow = run >= self.GROWTH_INTERVAL
        self.scale.assign(tf.where(grow, tf.minimum(scale * 2.0, self.MAXIMUM), scale))
        self.finite_run.assign(tf.where(grow, 0, run))
        return terms, grad


@functools.lru_cache(maxsize=8)
def _build(name: str, path: str, policy: str | None) -> keras.Model:
    """The frozen network, its layers built under the Keras dtype policy ``policy`` (None: the global one)."""
    network = keras.applications.VGG19 if name == "vgg19" else keras.applications.InceptionV3
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(policy or previous)
    try:
        model = network(include_top=False, weights=path, input_shape=(None, None, 3))
    finally:
        keras.mixed_precision.set_global_policy(previous)
    model.trainable = False
    return model


def _load(name: str, weights: str | Path | None, policy: str | None = None) -> keras.Model:
    """The whole network ``"vgg19"`` or ``"inception_v3"``; WeightsError for a file Keras cannot load."""
    path = weights_lib.resolve(name, path=weights)
    try:
        return _build(name, str(path), policy)
    except (OSError, ValueError, KeyError) as exc:
        raise WeightsError(f"cannot load {path.name}: {exc}", where=str(path),
                           fix="replace the file: set NSTDREAM_WEIGHTS_DIR or run `nstdream weights fetch`") from exc


def _extractor(name: str, layers: Sequence[str], valid, weights, precision, preprocess) -> FeatureExtractor:
    layers = tuple(dict.fromkeys(layers))
    check_layers(layers, valid, where="layers")
    base = _load(name, weights, check_precision(precision))
    return FeatureExtractor(keras.Model(base.input, [base.get_layer(n).output for n in layers],
                                        name=f"{name.split('_')[0]}_features"), layers, preprocess)


def vgg19_features(layers: Sequence[str], *, weights: str | Path | None = None,
                   precision: str | None = None) -> FeatureExtractor:
    """A frozen ImageNet VGG-19 returning ``layers`` (:data:`presets.VGG19_LAYERS`); ``weights``: file or folder
    (default ``weights.resolve("vgg19")``); ``precision``: ``"float32"``, ``"bfloat16"``, ``"float16"`` or None
    (Keras' policy) for the convolutions. InputError: bad layer or precision; WeightsError: no verified weights."""
    return _extractor("vgg19", layers, VGG19_LAYERS, weights, precision, vgg_preprocess)


def inception_features(layers: Sequence[str], *, weights: str | Path | None = None,
                       precision: str | None = None) -> FeatureExtractor:
    """A frozen ImageNet Inception v3 returning ``layers`` (``mixed0`` … ``mixed10``); as :func:`vgg19_features`."""
    return _extractor("inception_v3", layers, INCEPTION_LAYERS, weights, precision, inception_preprocess)


def layer_table(model: str = "vgg19") -> list[dict]:
    """One row per layer of ``"vgg19"`` or ``"inception"``: name, paper name, type, output channels, parameters."""
    base = _load("vgg19" if model == "vgg19" else "inception_v3", None)
    return [{"name": layer.name, "paper_name": PAPER_NAMES.get(layer.name, ""), "type": type(layer).__name__,
             "channels": layer.output.shape[-1], "params": layer.count_params()} for layer in base.layers]
