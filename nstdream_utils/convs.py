"""Convolutions of a frozen network in the formulation this machine runs fastest.

A stride-1 ``"SAME"`` convolution with an odd square kernel ``k`` (``[kh, kw, C_in, C_out]``) and
its gradient with respect to the input can each be computed by two TensorFlow kernels::

    forward   y  = conv2d(x, k)            = conv2d_transpose(x, k̃)
    backward  dx = conv2d_transpose(dy, k) = conv2d(dy, k̃)

where ``k̃[i, j, o, c] = k[kh−1−i, kw−1−j, c, o]`` is ``k`` rotated by 180° with its channel axes
swapped (:func:`flipped`), and, for a 3×3 float32 kernel, by Winograd's F(2×2, 3×3)
(:func:`winograd`: 2.25× fewer multiplies, the same sums to rounding). Which is fastest depends on
the CPU and on the code and weight layout oneDNN picks for each. On an Intel Xeon with AMX,
TensorFlow 2.21 runs ``conv2d`` on VGG-19's deep layers (16×16×512) with the filter in TensorFlow's
own layout, at half the speed of ``conv2d_transpose`` with oneDNN's blocked layout, and Winograd
halves that again (``docs/benchmarks.md`` §§ 9, 11). Elsewhere it can be the other way round.

So :func:`choose` times the formulations of each direction once per layer shape, on this machine,
and keeps the fastest (the default unless another is clearly faster, :data:`MARGIN`), as cuDNN's
autotuner does on a GPU. The choice changes speed only: the results are the same to rounding. It
is remembered in a small JSON file per user (:func:`cache_file`, keyed by :func:`machine_key`), so
that later processes on the same machine — a batch's workers, a rerun — make the same choice (and
round the same way) without timing again.
:class:`TunedGraph` runs a frozen Keras network (VGG-19, Inception v3) as TensorFlow ops with its
convolutions tuned so, Inception's batch normalisations folded into its convolutions and its
pooling branches' average poolings moved after their 1×1 convolutions.

Set ``NSTDREAM_CONV_TUNING=0`` to turn tuning off (``1`` to force it on; default: on where
TensorFlow sees no GPU), and ``NSTDREAM_CONV_CACHE`` to a file to keep the choices there (``0``:
keep them in this process only).

Floor 1: imports TensorFlow, Keras, NumPy and :mod:`nstdream_utils.files`.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import platform
import statistics
import time
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import keras
import numpy as np
import tensorflow as tf

from nstdream_utils import files

MARGIN = 1.05
"""The alternative formulation must take less than 1 / MARGIN of the default's CPU time to be chosen.

It was 1.15 until 2026-12-03. At that margin, Winograd's input gradient for VGG-19's block4_conv1
and block5 layers at 128 px, timed alone, was not chosen over TensorFlow's kernel. In the whole NST
step it takes 1.6 % off the value-and-gradient (``docs/benchmarks.md`` § 12)."""

TUNE_SIDE = 256
"""Layers on larger maps are timed on a ``TUNE_SIDE``² crop (the per-pixel costs have settled by then)."""

REPEATS = 5
"""Timed calls per formulation (after one warm-up); the median counts."""


class Formulation(NamedTuple):
    """Which kernel computes each direction.

    ``forward`` ∈ {"conv", "transpose", "winograd"}; ``backward`` (the input gradient) ∈
    {"transpose", "conv", "winograd"} ("winograd" for 3×3 float32 kernels, :func:`winograd`).
    """

    forward: str = "conv"
    backward: str = "transpose"


DEFAULT = Formulation()
"""What TensorFlow's autodiff of ``conv2d`` does."""

_KINDS = {"forward": ("conv", "transpose", "winograd"), "backward": ("transpose", "conv", "winograd")}
"""Each direction's kernels, :data:`DEFAULT`'s first: what :func:`choose` times and the cache may hold."""

_CHOSEN: dict[tuple, Formulation] = {}
"""Shape key → formulation chosen in this process."""

_KERNELS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
"""Conv2D layer → {(compute dtype, the batch norm folded into it or None): (kernel, flipped kernel,
bias)}, made once per layer in this process."""


def _switch(value: str) -> bool | None:
    """An environment switch: True for ``1``/``true``/``yes``/``on``, False for ``0``/``false``/``no``/``off``
    (any case, spaces ignored), None for anything else."""
    value = value.strip().lower()
    if value in ("0", "false", "no", "off"):
        return False
    if value in ("1", "true", "yes", "on"):
        return True
    return None


def enabled() -> bool:
    """Whether to tune: ``NSTDREAM_CONV_TUNING`` (``0``/``1``), else True where TensorFlow sees no GPU."""
    switch = _switch(os.environ.get("NSTDREAM_CONV_TUNING", ""))
    return switch if switch is not None else not tf.config.list_physical_devices("GPU")


def flipped(kernel) -> tf.Tensor:
    """``k̃``: the kernel ``[kh, kw, C_in, C_out]`` rotated by 180°, channel axes swapped → ``[kh, kw, C_out, C_in]``."""
    return tf.transpose(tf.reverse(kernel, [0, 1]), [0, 1, 3, 2])


def forward(x: tf.Tensor, kernel, kernel_flipped, kind: str = "conv", *, winograd_kernel=None) -> tf.Tensor:
    """``conv2d(x, kernel, stride 1, "SAME")`` by ``tf.nn.conv2d`` (``kind="conv"``), by
    ``tf.nn.conv2d_transpose`` of :func:`flipped` ``(kernel)`` (``"transpose"``) or by
    :func:`winograd` (``"winograd"``: 3×3 only; ``winograd_kernel`` is :func:`winograd_kernel`
    ``(kernel)``, made here if None): ``[B, H, W, C_out]``."""
    if kind == "winograd":
        return winograd(x, _winograd_kernel_or(kernel, winograd_kernel))
    if kind == "transpose":
        out_shape = tf.concat([tf.shape(x)[:3], tf.shape(kernel)[3:]], 0)
        return tf.nn.conv2d_transpose(x, kernel_flipped, out_shape, 1, "SAME")
    return tf.nn.conv2d(x, kernel, 1, "SAME")


def input_gradient(dy: tf.Tensor, kernel, kernel_flipped, input_shape, kind: str = "transpose", *,
                   winograd_kernel=None) -> tf.Tensor:
    """The gradient of :func:`forward` with respect to its input (``input_shape``), given ``dy``
    (``[B, H, W, C_out]``): by ``tf.nn.conv2d_transpose`` (``kind="transpose"``, as autodiff), by
    ``tf.nn.conv2d`` of the flipped kernel (``"conv"``) or by :func:`winograd` with the flipped kernel
    (``"winograd"``, from the same ``winograd_kernel``)."""
    if kind == "winograd":
        return winograd(dy, _winograd_kernel_or(kernel, winograd_kernel), flip=True)
    if kind == "conv":
        return tf.nn.conv2d(dy, kernel_flipped, 1, "SAME")
    return tf.nn.conv2d_transpose(dy, kernel, input_shape, 1, "SAME")


# Winograd's minimal filtering F(2×2, 3×3) (Lavin & Gray 2016, "Fast Algorithms for Convolutional
# Neural Networks"): each 2×2 block of outputs from a 4×4 tile of inputs, Y = Aᵀ[(G k Gᵀ) ⊙ (Bᵀ d B)]A.
_BT = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], np.float32)
_G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]], np.float32)
_AT = np.array([[1, 1, 1, 0], [0, 1, -1, -1]], np.float32)
_SWAP = [3, 1, 2, 0]
"""``_G`` with its columns reversed is ``_G`` with rows 0 and 3 swapped: so the transform of the
180°-rotated kernel is the transform's 16 slots permuted (and its channel axes swapped)."""


def winograd_kernel(kernel) -> tf.Tensor:
    """``U = G k Gᵀ`` of a 3×3 ``kernel`` ``[3, 3, C_in, C_out]`` → ``[16, C_in, C_out]`` (float32)."""
    kernel = tf.convert_to_tensor(kernel, tf.float32)
    u = tf.einsum("ai,ijco,bj->abco", _G, kernel, _G)
    return tf.reshape(u, [16, kernel.shape[2], kernel.shape[3]])


def _winograd_kernel_or(kernel, winograd_kernel_):
    return winograd_kernel(kernel) if winograd_kernel_ is None else winograd_kernel_


def _winograd_input_filter(channels: int, flip: bool) -> np.ndarray:
    rows = _BT[_SWAP] if flip else _BT
    taps = np.einsum("ai,bj->ijab", rows, rows).reshape(4, 4, 1, 16)  # slot 4a+b reads B_aᵀ d B_b
    return np.tile(taps, (1, 1, channels, 1))


def winograd(x: tf.Tensor, u: tf.Tensor, *, flip: bool = False) -> tf.Tensor:
    """``conv2d(x, k, stride 1, "SAME")`` for a 3×3 ``k`` by F(2×2, 3×3): 16 matrix products of
    ``[tiles, C_in] × [C_in, C_out]`` instead of 36 multiply-adds per 2×2 outputs (2.25× fewer).

    Args:
        x: ``[B, H, W, C]`` float32, ``H`` and ``W`` known (odd sides are padded by one, then cropped).
        u: :func:`winograd_kernel` ``(k)``, ``[16, C_in, C_out]``.
        flip: compute with :func:`flipped` ``(k)`` instead (``C = C_out``): the input gradient.
    Returns:
        ``[B, H, W, C_out]`` (``C_in`` with ``flip``), equal to ``tf.nn.conv2d``'s to float32 rounding
        (the transforms add and subtract ≤ 9 terms).

    The input transform is one depthwise convolution (4×4 taps, stride 2, 16 outputs per channel),
    the output transform one 16 → 4 matrix product; both cost little next to the products where the
    channels are many (VGG-19's block 3–5).
    """
    height, width, channels = x.shape[1], x.shape[2], x.shape[3]
    tiles_h, tiles_w = (height + 1) // 2, (width + 1) // 2
    pad = [[0, 0], [1, 1 + height % 2], [1, 1 + width % 2], [0, 0]]
    v = tf.nn.depthwise_conv2d(x, _winograd_input_filter(channels, flip), [1, 2, 2, 1], pad)
    v = tf.transpose(tf.reshape(v, [-1, channels, 16]), [2, 0, 1])  # [16, tiles, C]
    m = tf.matmul(v, u, transpose_b=flip)  # [16, tiles, C_out]
    at = _AT[:, _SWAP] if flip else _AT
    y = tf.matmul(np.kron(at, at), tf.reshape(m, [16, -1]))  # [4 = (dy, dx), tiles · C_out]
    c_out = m.shape[-1]
    y = tf.reshape(y, [2, 2, -1, tiles_h, tiles_w, c_out])
    y = tf.reshape(tf.transpose(y, [2, 3, 0, 4, 1, 5]), [-1, 2 * tiles_h, 2 * tiles_w, c_out])
    return y[:, :height, :width] if height % 2 or width % 2 else y


def conv(x: tf.Tensor, kernel, kernel_flipped, formulation: Formulation = DEFAULT, *,
         winograd_kernel=None) -> tf.Tensor:
    """``conv2d(x, kernel, stride 1, "SAME")`` computed in ``formulation``; the gradient flows to ``x`` only.

    Args:
        x: ``[B, H, W, C_in]``.
        kernel: ``[kh, kw, C_in, C_out]``, odd ``kh`` and ``kw``, in ``x``'s dtype.
        kernel_flipped: :func:`flipped` ``(kernel)`` (None is fine for :data:`DEFAULT`).
        winograd_kernel: :func:`winograd_kernel` ``(kernel)`` where ``formulation`` uses
            ``"winograd"`` (made here if None).
    Returns:
        ``[B, H, W, C_out]`` in ``x``'s dtype.
    """
    if formulation == DEFAULT:
        return tf.nn.conv2d(x, kernel, 1, "SAME")
    kernel = tf.convert_to_tensor(kernel)  # a variable is read here, outside the custom gradient
    if "winograd" in formulation:
        winograd_kernel = tf.convert_to_tensor(_winograd_kernel_or(kernel, winograd_kernel))

    @tf.custom_gradient
    def run(x):
        def grad(dy):
            return input_gradient(dy, kernel, kernel_flipped, tf.shape(x), formulation.backward,
                                  winograd_kernel=winograd_kernel)

        return forward(x, kernel, kernel_flipped, formulation.forward, winograd_kernel=winograd_kernel), grad

    return run(x)


def _median_cpu_seconds(fn) -> float:
    fn = tf.function(fn)  # as a step runs it: one graph, no per-op Python overhead
    fn().numpy()  # trace and warm up: oneDNN builds its primitive
    times = []
    for _ in range(REPEATS):
        start = time.process_time()
        fn().numpy()
        times.append(time.process_time() - start)
    return statistics.median(times)


def _fastest(default, alternatives: dict) -> str | None:
    """The key of the fastest of ``alternatives`` (name → thunk) if it takes less than 1 /
    :data:`MARGIN` of ``default``'s CPU time, else None."""
    times = {name: _median_cpu_seconds(fn) for name, fn in alternatives.items()}
    best = min(times, key=times.get)
    return best if _median_cpu_seconds(default) > MARGIN * times[best] else None


def winograd_applies(kernel) -> bool:
    """Whether :func:`winograd` can compute this kernel's convolution: 3×3, float32 (its transforms
    add and subtract up to nine products, too coarse in bfloat16)."""
    return tuple(kernel.shape[:2]) == (3, 3) and tf.as_dtype(kernel.dtype) == tf.float32


def choose(shape: Sequence[int | None], kernel, kernel_flipped, winograd_kernel=None) -> Formulation:
    """The faster formulation for a convolution of ``kernel`` on inputs of ``shape`` ``[B, H, W, C_in]``.

    Each direction's kernels (``conv``, ``transpose`` and, where :func:`winograd_applies`,
    ``winograd``) are timed once per (map size capped at :data:`TUNE_SIDE`, kernel shape, dtype) on
    this machine, eagerly (also when called while a ``tf.function`` traces, so the kernels must be
    eager tensors or variables; ``winograd_kernel`` is made for the timing if None); the fastest is
    kept if it beats TensorFlow's own by :data:`MARGIN`. The choice is kept for this process
    (:func:`chosen`) and in :func:`cache_file`, where later processes on this machine find it instead
    of timing. :data:`DEFAULT` where the map size is not known statically.
    """
    height, width = shape[1], shape[2]
    if height is None or width is None:
        return DEFAULT
    height, width = min(int(height), TUNE_SIDE), min(int(width), TUNE_SIDE)
    key = (height, width, *kernel.shape, tf.as_dtype(kernel.dtype).name)
    if key not in _CHOSEN:
        _CHOSEN[key] = _remembered(key, kernel) or _timed(key, kernel, kernel_flipped, winograd_kernel)
    return _CHOSEN[key]


def _timed(key: tuple, kernel, kernel_flipped, winograd_kernel) -> Formulation:
    """:func:`choose`'s timing for ``key`` = (H, W, kh, kw, C_in, C_out, dtype); remembered in the cache."""
    height, width = key[0], key[1]
    with tf.init_scope():
        kh, kw, c_in, c_out = kernel.shape
        # Stateless: a Generator is a variable, which a tf.function's later trace may not create.
        x = tf.cast(tf.random.stateless_normal([1, height, width, c_in], seed=[0, 1]), kernel.dtype)
        dy = tf.cast(tf.random.stateless_normal([1, height, width, c_out], seed=[0, 2]), kernel.dtype)
        in_shape = [1, height, width, c_in]
        u = _winograd_kernel_or(kernel, winograd_kernel) if winograd_applies(kernel) else None
        forward_default, *forward_kinds = _candidates("forward", kernel)
        forward_kind = _fastest(
            lambda: forward(x, kernel, kernel_flipped, forward_default),
            {k: (lambda k=k: forward(x, kernel, kernel_flipped, k, winograd_kernel=u)) for k in forward_kinds})
        backward_default, *backward_kinds = _candidates("backward", kernel)
        backward_kind = _fastest(
            lambda: input_gradient(dy, kernel, kernel_flipped, in_shape, backward_default),
            {k: (lambda k=k: input_gradient(dy, kernel, kernel_flipped, in_shape, k, winograd_kernel=u))
             for k in backward_kinds})
    formulation = Formulation(forward_kind or DEFAULT.forward, backward_kind or DEFAULT.backward)
    _remember(key, formulation)
    return formulation


def _candidates(direction: str, kernel) -> tuple[str, ...]:
    """``direction``'s kernels that can compute ``kernel``'s convolution, :data:`DEFAULT`'s first."""
    return tuple(k for k in _KINDS[direction] if k != "winograd" or winograd_applies(kernel))


CACHE_ENV = "NSTDREAM_CONV_CACHE"
_CACHE_VERSION = 1


def cache_file() -> Path | None:
    """The JSON file that keeps :func:`choose`'s choices between processes, or None (``NSTDREAM_CONV_CACHE=0``).

    ``$NSTDREAM_CONV_CACHE`` if set, else ``$XDG_CACHE_HOME/nstdream/conv_formulations.json``
    (``~/.cache/…``). Choices are stored under :func:`machine_key`, so a home folder shared by several
    machines keeps each one's own. Delete the file to time again.
    """
    value = os.environ.get(CACHE_ENV, "").strip()
    if _switch(value) is False:
        return None
    if value:
        return Path(value).expanduser()
    try:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    except (RuntimeError, KeyError):  # no home folder to be found: keep choices in this process only
        return None
    return base / "nstdream" / "conv_formulations.json"


def machine_key() -> str:
    """What the timings depend on, as one string: CPU model, a hash of its flags, core count, the
    TensorFlow version, ``TF_ENABLE_ONEDNN_OPTS``, intra-op threads, :data:`MARGIN`, :data:`TUNE_SIDE` and
    the formulations there are to choose from (a library that adds one times again)."""
    return " | ".join([_cpu_identity(), f"{os.cpu_count()} cpus", f"tf {tf.__version__}", f"onednn {os.environ.get('TF_ENABLE_ONEDNN_OPTS', '')}",
                       f"threads {tf.config.threading.get_intra_op_parallelism_threads()}",
                       f"margin {MARGIN}", f"side {TUNE_SIDE}",
                       "kinds " + " / ".join(",".join(kinds) for kinds in _KINDS.values())])


@functools.cache
def _cpu_identity() -> str:
    """The CPU's model name and a hash of its flags (``/proc/cpuinfo``), read once per process."""
    model, flags = platform.processor() or platform.machine(), ""
    try:
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            name, _, value = line.partition(":")
            if name.strip() == "model name" and value.strip():
                model = value.strip()
            elif name.strip() == "flags" and not flags:
                flags = value.strip()
    except OSError:
        pass
    return f"{model} | {hashlib.sha1(flags.encode()).hexdigest()[:12]}"


def _key_text(key: tuple) -> str:
    return " ".join(str(part) for part in key)


def _read_cache(path: Path) -> dict:
    """The cache's contents, or an empty cache where it is missing, unreadable, corrupt or of another version."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("version") != _CACHE_VERSION or not isinstance(data.get("machines"), dict):
        return {}
    return data


def _remembered(key: tuple, kernel) -> Formulation | None:
    """This machine's remembered choice for ``key`` (of ``kernel``), if the cache has a valid one."""
    path = cache_file()
    if path is None:
        return None
    entry = _read_cache(path).get("machines", {}).get(machine_key(), {})
    entry = entry.get(_key_text(key)) if isinstance(entry, dict) else None
    if not (isinstance(entry, list) and len(entry) == 2):
        return None
    forward_kind, backward_kind = entry
    if forward_kind not in _candidates("forward", kernel) or backward_kind not in _candidates("backward", kernel):
        return None
    return Formulation(forward_kind, backward_kind)


def _remember(key: tuple, formulation: Formulation) -> None:
    """Add ``key``'s choice to the cache (read, merged, replaced atomically); a cache that cannot be
    written (read-only home) only means the next process times again."""
    path = cache_file()
    if path is None:
        return
    data = _read_cache(path) or {"version": _CACHE_VERSION, "machines": {}}
    name = machine_key()
    machine = data["machines"].get(name)
    if not isinstance(machine, dict):
        machine = data["machines"][name] = {}
    machine[_key_text(key)] = [formulation.forward, formulation.backward]
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        files.atomic_write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", path)
    except (OSError, ValueError):
        pass


def chosen() -> dict[tuple, Formulation]:
    """The formulations chosen so far in this process: ``(H, W, kh, kw, C_in, C_out, dtype) → Formulation``."""
    return dict(_CHOSEN)


class _Conv(NamedTuple):
    """How one Keras ``Conv2D`` runs: on ``source`` (a Keras tensor: its input, or the input of the
    average pooling moved after it), then ``pool_after``, bias, activation; ``norm`` folded in."""

    norm: keras.layers.Layer | None  # the BatchNormalization folded into it
    pool_after: keras.layers.Layer | None  # the AveragePooling2D moved after it
    source: object


def _single_reader(tensor, model: keras.Model, ops: set):
    """The one operation of ``model`` (whose operations are ``ops``) that reads ``tensor`` (a Keras
    tensor), or None if several do or ``tensor`` is one of the model's outputs."""
    if any(tensor is out for out in model.outputs):
        return None
    readers = [node.operation for node in tensor._keras_history.operation._outbound_nodes if node.operation in ops]
    return readers[0] if len(readers) == 1 else None


def _plain_conv(layer) -> bool:
    return (type(layer) is keras.layers.Conv2D and tuple(layer.dilation_rate) == (1, 1) and layer.groups == 1
            and layer.data_format == "channels_last"
            and layer.activation in (keras.activations.relu, keras.activations.linear))


def tunable(layer) -> bool:
    """Stride 1, ``"same"``, odd kernel: the convolutions :func:`conv` computes in either formulation."""
    kh, kw = layer.kernel_size
    return tuple(layer.strides) == (1, 1) and layer.padding == "same" and kh % 2 == 1 and kw % 2 == 1


class TunedGraph:
    """A frozen Keras network of convolutions, batch normalisations, ReLUs, poolings and
    concatenations (VGG-19, Inception v3) run as plain TensorFlow ops, rewritten for speed:

    * each ``BatchNormalization`` that is the only reader of a bias-free linear convolution is folded
      into it (``k' = k·γ/√(σ²+ε)`` per output channel, bias ``β − μ·γ/√(σ²+ε)``): no normalisation
      in the forward pass nor in the gradient;
    * an ``AveragePooling2D`` (stride 1, ``"same"``) whose only reader is a 1×1 convolution is moved
      after it (before its bias): both are linear and act on different axes, so
      ``conv1×1(avgpool(x)) = avgpool(conv1×1(x))``, and the pooling then runs on the convolution's
      output channels (32–192 in Inception v3) instead of its input's (192–768);
    * each stride-1 ``"same"`` convolution runs in the formulation :func:`choose` finds fastest for
      its input shape, where that shape is known when the function is traced.

    (Merging the 1×1 convolutions that read one tensor into one wider convolution was measured too,
    and was 1–3 % slower on an AMX Xeon: the split costs more than the bigger product saves.)

    Call it on the preprocessed input (``[B, H, W, C]``) to get the model's outputs (in order, in the
    layers' compute dtype) — the same values as the Keras model's, to rounding. Build it with
    :meth:`build`, which returns None for a network with any other layer.
    """

    def __init__(self, model: keras.Model, plan: dict) -> None:
        self._model = model
        self._plan = plan  # Conv2D layer → _Conv
        self._skipped = {p.norm for p in plan.values()} | {p.pool_after for p in plan.values()}
        self._skipped.discard(None)

    @classmethod
    def build(cls, model: keras.Model) -> TunedGraph | None:
        """For a functional ``model`` (preprocessed input → its outputs); None if it holds a layer other
        than Conv2D (ReLU or linear), BatchNormalization, ReLU Activation, Max/AveragePooling2D and
        Concatenate (channels last), or a layer called more than once."""
        ops = set(model.operations)
        plan = {}
        for layer in model.operations:
            if len(layer._inbound_nodes) != 1:
                return None
            if isinstance(layer, keras.layers.InputLayer | keras.layers.Concatenate):
                continue
            if isinstance(layer, keras.layers.Activation):
                if layer.activation is not keras.activations.relu:
                    return None
            elif isinstance(layer, keras.layers.MaxPooling2D | keras.layers.AveragePooling2D):
                if layer.data_format != "channels_last":
                    return None
            elif isinstance(layer, keras.layers.BatchNormalization):
                if layer.axis not in (-1, len(layer.input.shape) - 1):
                    return None
            elif isinstance(layer, keras.layers.Conv2D) and _plain_conv(layer):
                plan[layer] = cls._plan_conv(layer, model, ops)
            else:
                return None
        graph = cls(model, plan)
        for layer in plan:
            graph._constants(layer)  # now: usually eagerly, outside any tf.function
        return graph

    @staticmethod
    def _plan_conv(layer, model: keras.Model, ops: set) -> _Conv:
        reader = _single_reader(layer.output, model, ops)
        norm = (reader if isinstance(reader, keras.layers.BatchNormalization) and not layer.use_bias
                and layer.activation is keras.activations.linear else None)
        source, pool = layer.input, None
        producer = source._keras_history.operation
        if (isinstance(producer, keras.layers.AveragePooling2D) and tuple(layer.kernel_size) == (1, 1)
                and tuple(layer.strides) == (1, 1) and tuple(producer.strides) == (1, 1)
                and producer.padding == "same" and _single_reader(source, model, ops) is layer):
            source, pool = producer.input, producer
        return _Conv(norm, pool, source)

    def _constants(self, layer) -> tuple:
        """``(kernel, flipped kernel, bias, Winograd kernel)`` of ``layer`` in its compute dtype, its batch
        normalisation folded in (the last None unless :func:`winograd_applies` to a tunable layer); made
        once per layer per process, eagerly (:func:`choose` times with them while a
        ``tf.function`` traces), as non-trainable variables (:func:`_frozen`). The float32 kernel of an
        unfolded layer is its own variable (no copy)."""
        per_key = _KERNELS.setdefault(layer, {})
        dtype, norm = layer.compute_dtype, self._plan[layer].norm
        key = (dtype, norm)
        if key not in per_key:
            variable = not tf.inside_function()
            with tf.init_scope():
                kernel = layer.kernel.value
                bias = tf.cast(layer.bias.value, tf.float32) if layer.use_bias else None
                if norm is not None:
                    inv = tf.math.rsqrt(tf.cast(norm.moving_variance.value, tf.float32) + norm.epsilon)
                    if norm.scale:
                        inv *= tf.cast(norm.gamma.value, tf.float32)
                    kernel = tf.convert_to_tensor(kernel, tf.float32) * inv
                    bias = -tf.cast(norm.moving_mean.value, tf.float32) * inv
                    if norm.center:
                        bias += tf.cast(norm.beta.value, tf.float32)
                if kernel.dtype != dtype or norm is not None:
                    kernel = _frozen(tf.cast(kernel, dtype), variable)
                bias = None if bias is None else _frozen(tf.cast(bias, dtype), variable)
                u = (_frozen(winograd_kernel(kernel), variable)
                     if tunable(layer) and winograd_applies(kernel) else None)
                per_key[key] = (kernel, _frozen(flipped(kernel), variable), bias, u)
        return per_key[key]

    def _conv(self, layer, x: tf.Tensor) -> tf.Tensor:
        plan = self._plan[layer]
        x = tf.cast(x, layer.compute_dtype)
        kernel, kernel_flipped, bias, u = self._constants(layer)
        if tunable(layer):
            y = conv(x, kernel, kernel_flipped, choose(x.shape, kernel, kernel_flipped, u), winograd_kernel=u)
        else:
            y = tf.nn.conv2d(x, kernel, list(layer.strides), layer.padding.upper())
        if plan.pool_after is not None:
            y = _pool(plan.pool_after, y)
        if bias is not None:
            y = tf.nn.bias_add(y, bias)
        return tf.nn.relu(y) if layer.activation is keras.activations.relu else y

    def __call__(self, x: tf.Tensor) -> list[tf.Tensor]:
        values = {}  # id(Keras tensor) → its value

        def value(tensor):
            return values[id(tensor)]

        for layer in self._model.operations:
            if layer in self._skipped:
                continue
            if isinstance(layer, keras.layers.InputLayer):
                y = x
            elif isinstance(layer, keras.layers.Conv2D):
                plan = self._plan[layer]
                y = self._conv(layer, value(plan.source))
                layer = plan.norm or layer  # its output is the folded normalisation's
            elif isinstance(layer, keras.layers.BatchNormalization):
                y = layer(value(layer.input), training=False)
            elif isinstance(layer, keras.layers.Activation):
                y = tf.nn.relu(value(layer.input))
            elif isinstance(layer, keras.layers.MaxPooling2D | keras.layers.AveragePooling2D):
                y = _pool(layer, value(layer.input))
            else:  # Concatenate
                y = tf.concat([value(t) for t in layer.input], axis=layer.axis)
            values[id(layer.output)] = y
        return [value(t) for t in self._model.outputs]


def _frozen(value: tf.Tensor, variable: bool):
    """``value`` as a non-trainable variable, or as a constant where the network is first built or run
    while a ``tf.function`` traces (which may forbid new variables: a second trace does).

    A variable where it can be: captured eager constants made the first call of the tiled DeepDream
    step at 4096² take 9.4 GiB and 29 s instead of 2.7 GiB and 19 s (the same speed afterwards)."""
    return tf.Variable(value, trainable=False) if variable else tf.constant(value)


def _pool(layer, x: tf.Tensor) -> tf.Tensor:
    """A Keras ``MaxPooling2D`` or ``AveragePooling2D`` (channels last) as its TensorFlow op."""
    pool = tf.nn.max_pool2d if isinstance(layer, keras.layers.MaxPooling2D) else tf.nn.avg_pool2d
    return pool(x, layer.pool_size, layer.strides, layer.padding.upper())
