"""Convolutions of a frozen network in the formulation this machine runs fastest.

A stride-1 ``"SAME"`` convolution with an odd square kernel ``k`` (``[kh, kw, C_in, C_out]``) and
its gradient with respect to the input can each be computed by two TensorFlow kernels::

    forward   y  = conv2d(x, k)            = conv2d_transpose(x, k̃)
    backward  dx = conv2d_transpose(dy, k) = conv2d(dy, k̃)

where ``k̃[i, j, o, c] = k[kh−1−i, kw−1−j, c, o]`` is ``k`` rotated by 180° with its channel axes
swapped (:func:`flipped`). Both are the same sums; which kernel is faster depends on the CPU and on
the code and weight layout oneDNN picks for each. On an Intel Xeon with AMX, TensorFlow 2.21 runs
``conv2d`` on VGG-19's deep layers (16×16×512) with the filter in TensorFlow's own layout, at half
the speed of ``conv2d_transpose`` with oneDNN's blocked layout: the transposed forward made the
NST step ≈ 20 % cheaper there (``docs/benchmarks.md`` § 9). Elsewhere it can be the other way round.

So :func:`choose` times both formulations of each direction once per layer shape, on this machine,
and keeps the faster (the default unless the other is clearly faster, :data:`MARGIN`), as cuDNN's
autotuner does on a GPU. The choice changes speed only: the results are the same to rounding.
:class:`TunedSequential` runs a plain sequential network (VGG-19) with its convolutions tuned so.

Set ``NSTDREAM_CONV_TUNING=0`` to turn tuning off (``1`` to force it on; default: on where
TensorFlow sees no GPU).
"""

from __future__ import annotations

import os
import statistics
import time
import weakref
from collections.abc import Sequence
from typing import NamedTuple

import keras
import tensorflow as tf

MARGIN = 1.15
"""The alternative formulation must take less than 1 / MARGIN of the default's CPU time to be chosen."""

TUNE_SIDE = 256
"""Layers on larger maps are timed on a ``TUNE_SIDE``² crop (the per-pixel costs have settled by then)."""

REPEATS = 5
"""Timed calls per formulation (after one warm-up); the median counts."""


class Formulation(NamedTuple):
    """Which kernel computes each direction.

    ``forward`` ∈ {"conv", "transpose"}; ``backward`` (the input gradient) ∈ {"transpose", "conv"}.
    """

    forward: str = "conv"
    backward: str = "transpose"


DEFAULT = Formulation()
"""What TensorFlow's autodiff of ``conv2d`` does."""

_CHOSEN: dict[tuple, Formulation] = {}
"""Shape key → formulation chosen in this process."""

_KERNELS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
"""Conv2D layer → {compute dtype: (kernel, flipped kernel)}, made once per layer in this process."""


def enabled() -> bool:
    """Whether to tune: ``NSTDREAM_CONV_TUNING`` (``0``/``1``), else True where TensorFlow sees no GPU."""
    value = os.environ.get("NSTDREAM_CONV_TUNING", "").strip().lower()
    if value in ("0", "false", "no", "off"):
        return False
    if value in ("1", "true", "yes", "on"):
        return True
    return not tf.config.list_physical_devices("GPU")


def flipped(kernel) -> tf.Tensor:
    """``k̃``: the kernel ``[kh, kw, C_in, C_out]`` rotated by 180°, channel axes swapped → ``[kh, kw, C_out, C_in]``."""
    return tf.transpose(tf.reverse(kernel, [0, 1]), [0, 1, 3, 2])


def forward(x: tf.Tensor, kernel, kernel_flipped, kind: str = "conv") -> tf.Tensor:
    """``conv2d(x, kernel, stride 1, "SAME")`` by ``tf.nn.conv2d`` (``kind="conv"``) or by
    ``tf.nn.conv2d_transpose`` of :func:`flipped` ``(kernel)`` (``"transpose"``): ``[B, H, W, C_out]``."""
    if kind == "transpose":
        out_shape = tf.concat([tf.shape(x)[:3], tf.shape(kernel)[3:]], 0)
        return tf.nn.conv2d_transpose(x, kernel_flipped, out_shape, 1, "SAME")
    return tf.nn.conv2d(x, kernel, 1, "SAME")


def input_gradient(dy: tf.Tensor, kernel, kernel_flipped, input_shape, kind: str = "transpose") -> tf.Tensor:
    """The gradient of :func:`forward` with respect to its input (``input_shape``), given ``dy``
    (``[B, H, W, C_out]``): by ``tf.nn.conv2d_transpose`` (``kind="transpose"``, as autodiff) or by
    ``tf.nn.conv2d`` of the flipped kernel (``"conv"``)."""
    if kind == "conv":
        return tf.nn.conv2d(dy, kernel_flipped, 1, "SAME")
    return tf.nn.conv2d_transpose(dy, kernel, input_shape, 1, "SAME")


def conv(x: tf.Tensor, kernel, kernel_flipped, formulation: Formulation = DEFAULT) -> tf.Tensor:
    """``conv2d(x, kernel, stride 1, "SAME")`` computed in ``formulation``; the gradient flows to ``x`` only.

    Args:
        x: ``[B, H, W, C_in]``.
        kernel: ``[kh, kw, C_in, C_out]``, odd ``kh`` and ``kw``, in ``x``'s dtype.
        kernel_flipped: :func:`flipped` ``(kernel)`` (None is fine for :data:`DEFAULT`).
    Returns:
        ``[B, H, W, C_out]`` in ``x``'s dtype.
    """
    if formulation == DEFAULT:
        return tf.nn.conv2d(x, kernel, 1, "SAME")
    kernel = tf.convert_to_tensor(kernel)  # a variable is read here, outside the custom gradient

    @tf.custom_gradient
    def run(x):
        def grad(dy):
            return input_gradient(dy, kernel, kernel_flipped, tf.shape(x), formulation.backward)

        return forward(x, kernel, kernel_flipped, formulation.forward), grad

    return run(x)


def _median_cpu_seconds(fn) -> float:
    fn().numpy()  # warm-up: oneDNN builds its primitive
    times = []
    for _ in range(REPEATS):
        start = time.process_time()
        fn().numpy()
        times.append(time.process_time() - start)
    return statistics.median(times)


def _faster(default, alternative) -> bool:
    return _median_cpu_seconds(default) > MARGIN * _median_cpu_seconds(alternative)


def choose(shape: Sequence[int | None], kernel, kernel_flipped) -> Formulation:
    """The faster formulation for a convolution of ``kernel`` on inputs of ``shape`` ``[B, H, W, C_in]``.

    Timed once per (map size capped at :data:`TUNE_SIDE`, kernel shape, dtype) in this process,
    eagerly (also when called while a ``tf.function`` traces, so ``kernel`` and ``kernel_flipped``
    must be eager tensors or variables); :data:`DEFAULT` where the map size is not known statically.
    """
    height, width = shape[1], shape[2]
    if height is None or width is None:
        return DEFAULT
    height, width = min(int(height), TUNE_SIDE), min(int(width), TUNE_SIDE)
    key = (height, width, *kernel.shape, tf.as_dtype(kernel.dtype).name)
    if key not in _CHOSEN:
        with tf.init_scope():
            kh, kw, c_in, c_out = kernel.shape
            rng = tf.random.Generator.from_seed(0)
            x = tf.cast(rng.normal([1, height, width, c_in]), kernel.dtype)
            dy = tf.cast(rng.normal([1, height, width, c_out]), kernel.dtype)
            in_shape = [1, height, width, c_in]
            forward_kind = "transpose" if _faster(
                lambda: forward(x, kernel, kernel_flipped, "conv"),
                lambda: forward(x, kernel, kernel_flipped, "transpose")) else "conv"
            backward_kind = "conv" if _faster(
                lambda: input_gradient(dy, kernel, kernel_flipped, in_shape, "transpose"),
                lambda: input_gradient(dy, kernel, kernel_flipped, in_shape, "conv")) else "transpose"
        _CHOSEN[key] = Formulation(forward_kind, backward_kind)
    return _CHOSEN[key]


def chosen() -> dict[tuple, Formulation]:
    """The formulations chosen so far in this process: ``(H, W, kh, kw, C_in, C_out, dtype) → Formulation``."""
    return dict(_CHOSEN)


class TunedSequential:
    """A frozen sequential Keras network of ``Conv2D`` and ``MaxPooling2D`` layers (VGG-19), run as
    TensorFlow ops with each convolution in the formulation :func:`choose` finds fastest.

    Call it on the preprocessed input (``[B, H, W, C]``) to get the outputs of ``layers`` (in that
    order, in the layers' compute dtype) — the same values as the Keras model's, to rounding.
    Build it with :meth:`build`, which returns None for a network it cannot run.
    """

    def __init__(self, steps: list, layers: Sequence[str]) -> None:
        self._steps = steps
        self.layers = tuple(layers)

    @classmethod
    def build(cls, model: keras.Model, layers: Sequence[str]) -> TunedSequential | None:
        """For ``model``'s layers up to the deepest of ``layers``; None if one is not a plain stride-1
        ``"same"`` Conv2D (ReLU or linear), a MaxPooling2D, or the input."""
        wanted, steps = set(layers), []
        for layer in model.layers:
            if isinstance(layer, keras.layers.InputLayer):
                continue
            if isinstance(layer, keras.layers.Conv2D) and type(layer) is keras.layers.Conv2D:
                kh, kw = layer.kernel_size
                if (tuple(layer.strides) != (1, 1) or layer.padding != "same" or kh % 2 == 0 or kw % 2 == 0
                        or tuple(layer.dilation_rate) != (1, 1) or layer.groups != 1
                        or layer.data_format != "channels_last"
                        or layer.activation not in (keras.activations.relu, keras.activations.linear)):
                    return None
                steps.append(("conv", layer))
            elif isinstance(layer, keras.layers.MaxPooling2D) and layer.data_format == "channels_last":
                steps.append(("pool", layer))
            else:
                return None
            wanted.discard(layer.name)
            if not wanted:
                return cls(steps, layers)
        return None

    @staticmethod
    def _kernels(layer) -> tuple:
        """``layer``'s kernel in its compute dtype and :func:`flipped` kernel, both usable eagerly
        (:func:`choose` times with them while a ``tf.function`` traces); made once per layer, as the
        network is frozen."""
        per_dtype = _KERNELS.setdefault(layer, {})
        dtype = layer.compute_dtype
        if dtype not in per_dtype:
            with tf.init_scope():
                variable = layer.kernel.value
                kernel = variable if variable.dtype == dtype else tf.constant(tf.cast(variable, dtype))
                per_dtype[dtype] = (kernel, tf.constant(flipped(kernel)))
        return per_dtype[dtype]

    def __call__(self, x: tf.Tensor) -> list[tf.Tensor]:
        outputs = {}
        for kind, layer in self._steps:
            x = tf.cast(x, layer.compute_dtype)
            if kind == "conv":
                kernel, flipped_kernel = self._kernels(layer)
                x = conv(x, kernel, flipped_kernel, choose(x.shape, kernel, flipped_kernel))
                if layer.use_bias:
                    x = tf.nn.bias_add(x, tf.cast(layer.bias, layer.compute_dtype))
                if layer.activation is keras.activations.relu:
                    x = tf.nn.relu(x)
            else:
                x = tf.nn.max_pool2d(x, layer.pool_size, layer.strides, layer.padding.upper())
            outputs[layer.name] = x
        return [outputs[name] for name in self.layers]
