"""Helpers shared by the benchmarks: environment, JSON output, FLOP counts, a sustained-rate probe,
peak memory. Run alone, it prints the machine description and its sustained GFLOP/s as one JSON line::

    .venv/bin/python benchmarks/common.py [--size 256]

FLOP conventions (used by ``nst_step.py`` and ``dream_step.py``):

* a convolution's forward pass costs ``2 · h_out · w_out · k_h · k_w · c_in · c_out`` FLOPs
  (multiply and add counted separately), a Gram matrix ``2 · h · w · c²``;
* NST and DeepDream differentiate with respect to the *image* only — the network is frozen — so a
  step's backward pass computes input gradients (as many FLOPs as the forward pass) and no weight
  gradients. The floor is therefore **2 × forward FLOPs** (the "3 × forward" of training counts
  weight gradients too; the benchmarks also print that looser floor);
* elementwise work (ReLU, pooling, batch norm, the optimiser update, total variation) is not
  counted: the floor is what the convolutions and Gram matrices alone would cost at the best rate
  this machine sustains, measured in the same process (the best of a large ``tf.matmul`` and
  convolutions of VGG-19's shapes, as ``conv2d`` and as ``conv2d_transpose``).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONTENT = ROOT / "data" / "content" / "astronaut.png"
STYLE = ROOT / "data" / "styles" / "triangle.png"


def setup_env() -> None:
    """Quiet TensorFlow and find the weights (``NSTDREAM_WEIGHTS_DIR``, else a ``shared/weights`` folder)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if not os.environ.get("NSTDREAM_WEIGHTS_DIR"):
        for candidate in (ROOT / "shared" / "weights", ROOT.parent / "shared" / "weights"):
            if candidate.is_dir():
                os.environ["NSTDREAM_WEIGHTS_DIR"] = str(candidate)
                break
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))


def commit() -> str:
    """The checkout's commit (10 hex digits), or ``"unknown"``."""
    try:
        return subprocess.run(["git", "rev-parse", "--short=10", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def emit(record: dict) -> None:
    """Print the benchmark's one JSON line (floats rounded to 4 significant digits)."""
    def rounded(v):
        if isinstance(v, float):
            return float(f"{v:.4g}")
        if isinstance(v, dict):
            return {k: rounded(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [rounded(x) for x in v]
        return v

    print(json.dumps(rounded(record)), flush=True)


def median(values) -> float:
    return float(statistics.median(values))


def paired_ratio(rounds: list[dict], a: str, b: str) -> float:
    """``a ÷ b`` over :func:`alternate_cpu_rounds`'s rounds: the geometric mean of the per-round
    ratios, so that rounds with ``a`` first and rounds with ``b`` first weigh the same (a median of
    the two clusters picks one of them)."""
    return float(statistics.geometric_mean(r[a] / r[b] for r in rounds))


def peak_rss_mib() -> float:
    """This process's peak resident memory in MiB (``getrusage``: KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def machine() -> dict:
    """Date, CPU, cores, load, memory, TensorFlow version and device (no GPU is assumed)."""
    import tensorflow as tf

    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    from nstdream_utils import device

    simd = sorted(f for f in device.cpu_flags() if f.startswith(("avx", "amx")))
    return {"date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "cpu": device.cpu_model(),
            "cpu_simd": simd, "cores": os.cpu_count(), "load_1min": round(os.getloadavg()[0], 2), "memory_gib": round(mem_gib, 1),
            "tensorflow": tf.__version__, "gpus": len(tf.config.list_physical_devices("GPU"))}


# --------------------------------------------------------------------------------------------------
# FLOP counts
# --------------------------------------------------------------------------------------------------

def conv_flops(model) -> float:
    """Forward FLOPs of every ``Conv2D`` in a Keras model built with a fixed input shape."""
    import keras

    total = 0.0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            _, h, w, c_out = layer.output.shape
            kh, kw, c_in, _ = layer.kernel.shape
            total += 2.0 * h * w * kh * kw * c_in * c_out
    return total


def vgg19_forward_flops(shape: tuple[int, int], deepest: str, gram_layers=()) -> dict:
    """Forward FLOPs of VGG-19 up to ``deepest`` on an ``(H, W)`` image, and of the Gram matrices.

    Returns:
        ``{"conv": …, "gram": …}`` in FLOPs (forward only).
    """
    import keras

    base = keras.applications.VGG19(include_top=False, weights=None, input_shape=(*shape, 3))
    sub = keras.Model(base.input, base.get_layer(deepest).output)
    gram = 0.0
    for name in gram_layers:
        _, h, w, c = base.get_layer(name).output.shape
        gram += 2.0 * h * w * c * c
    return {"conv": conv_flops(sub), "gram": gram}


def inception_forward_flops(shape: tuple[int, int], deepest: str) -> float:
    """Forward convolution FLOPs of Inception v3 up to ``deepest`` on an ``(H, W)`` image (≥ 75 px)."""
    import keras

    base = keras.applications.InceptionV3(include_top=False, weights=None, input_shape=(*shape, 3))
    return conv_flops(keras.Model(base.input, base.get_layer(deepest).output))


# --------------------------------------------------------------------------------------------------
# Counting VGG-19 evaluations
# --------------------------------------------------------------------------------------------------

@contextlib.contextmanager
def counted_evaluations():
    """Within the block, ``nst.NSTLoss`` counts its evaluations inside the graph; yields the class.

    ``cls.full_size_evaluations(full_pixels)`` is the number of VGG-19 evaluations so far, each
    weighted by its pixels ÷ ``full_pixels`` (an evaluation at half size counts ¼). Only instances
    built since ``cls.instances`` was last reset are counted.
    """
    import tensorflow as tf

    from nstdream_utils import nst

    class CountingLoss(nst.NSTLoss):
        instances: list = []

        def __init__(self, content, style, cfg, **kwargs):
            super().__init__(content, style, cfg, **kwargs)
            self.calls = tf.Variable(0, dtype=tf.int64, trainable=False)
            self.pixels = int(content.shape[0] * content.shape[1])
            CountingLoss.instances.append(self)

        def __call__(self, image):
            self.calls.assign_add(1)
            return super().__call__(image)

        @classmethod
        def full_size_evaluations(cls, full_pixels: int) -> float:
            return sum(int(i.calls.numpy()) * i.pixels / full_pixels for i in cls.instances)

    original = nst.NSTLoss
    nst.NSTLoss = CountingLoss
    try:
        yield CountingLoss
    finally:
        nst.NSTLoss = original


# --------------------------------------------------------------------------------------------------
# Sustained rate
# --------------------------------------------------------------------------------------------------

def patched_value_and_gradients(content, style, cfg, module, attribute: str, variants: dict) -> dict:
    """One traced NST value-and-gradient (``nst.NSTLoss``) per variant of ``module.attribute``:
    ``{name: fn}`` where ``variants`` is ``{name: replacement}``. Each is traced while its replacement
    is installed; the library's own is restored afterwards. ``fn(x)`` → ``(total, d total / d x)``."""
    import tensorflow as tf

    from nstdream_utils import nst

    original, functions = getattr(module, attribute), {}
    try:
        for name, replacement in variants.items():
            setattr(module, attribute, replacement)
            loss_fn = nst.NSTLoss(content, style, cfg)

            @tf.function
            def value_and_grad(x, loss_fn=loss_fn):
                with tf.GradientTape() as tape:
                    tape.watch(x)
                    total = loss_fn(x)["total"]
                return total, tape.gradient(total, x)

            value_and_grad(tf.constant(content[tf.newaxis]))  # trace now, while this variant is installed
            functions[name] = value_and_grad
    finally:
        setattr(module, attribute, original)
    return functions


def alternate_cpu_rounds(functions: dict, x, rounds: int, floor_flops: float, probe: "RateProbe",
                         calls: int = 3) -> list[dict]:
    """Per round: the rate probe, then ``calls`` calls of each function; each function's CPU seconds
    per call ÷ the floor (``floor_flops`` at the probe's ``best_cpu``), one dict per round.

    The order rotates from round to round (round ``i`` starts with function ``i mod n``): whichever
    runs first after the probe was measured about 4–5 % slower, so a fixed order biases the
    comparison. Give ``rounds`` as a multiple of ``len(functions)`` so that each goes first equally often."""
    out, names = [], list(functions)
    for i in range(rounds):
        floor = floor_flops / (probe.measure()["best_cpu"] * 1e9)
        row = {}
        for name in names[i % len(names):] + names[:i % len(names)]:
            fn = functions[name]
            start = time.process_time()
            for _ in range(calls):
                fn(x)[1].numpy()
            row[name] = (time.process_time() - start) / calls / floor
        out.append(row)
    return out


class RateProbe:
    """Measures the GFLOP/s this process sustains right now, on the kernels the networks use.

    Five kernels, each timed over a burst of repeated calls (median per call): a 2048² float32
    ``tf.matmul`` and two 3×3 convolutions of VGG-19's shapes — block3 (256→256 channels at a
    quarter of the image size) and block1 (64→64 at full size, capped at 256²) — each as
    ``conv2d`` and as ``conv2d_transpose`` (the kernel autodiff runs for a convolution's input
    gradient).
    ``measure()`` returns the best of them: the strictest (lowest) floor.
    """

    def __init__(self, image_side: int = 256) -> None:
        import tensorflow as tf

        self.tf = tf
        n = 2048
        s3 = max(8, image_side // 4)
        s1 = min(256, image_side)
        g = tf.random.Generator.from_seed(0)
        self.kernels = {
            "matmul_2048": (tf.function(lambda a, b: tf.matmul(a, b)),
                            (g.normal([n, n]), g.normal([n, n])), 2.0 * n ** 3),
            f"conv3x3_256_{s3}px": (tf.function(lambda x, k: tf.nn.conv2d(x, k, 1, "SAME")),
                                   (g.normal([1, s3, s3, 256]), g.normal([3, 3, 256, 256])),
                                   2.0 * s3 * s3 * 9 * 256 * 256),
            f"conv3x3_64_{s1}px": (tf.function(lambda x, k: tf.nn.conv2d(x, k, 1, "SAME")),
                                  (g.normal([1, s1, s1, 64]), g.normal([3, 3, 64, 64])),
                                  2.0 * s1 * s1 * 9 * 64 * 64),
        }
        # The same convolutions by conv2d_transpose, the kernel of every convolution's input
        # gradient in a step's backward pass: the floor takes the faster.
        transpose = tf.function(lambda x, k: tf.nn.conv2d_transpose(x, k, tf.shape(x), 1, "SAME"))
        for name in [n for n in self.kernels if n.startswith("conv")]:
            _, args, flops = self.kernels[name]
            self.kernels[name + "_transpose"] = (transpose, args, flops)
        for fn, args, _ in self.kernels.values():
            fn(*args).numpy()  # trace and warm up

    def measure(self, min_seconds: float = 0.5) -> dict:
        """Rates measured now: ``{"best": GFLOP/s, "best_cpu": GFLOP per CPU-second, "<kernel>": ...}``.

        ``best`` divides by wall time; ``best_cpu`` by this process's CPU time (all threads), which
        other processes on a shared machine barely change.
        """
        rates, cpu_rates = {}, {}
        for name, (fn, args, flops) in self.kernels.items():
            times, cpu_times, start = [], [], time.perf_counter()
            while len(times) < 3 or time.perf_counter() - start < min_seconds:
                t, c = time.perf_counter(), time.process_time()
                fn(*args).numpy()
                times.append(time.perf_counter() - t)
                cpu_times.append(time.process_time() - c)
            rates[name] = flops / median(times) / 1e9
            cpu_rates[name] = flops / median(cpu_times) / 1e9
        return {"best": max(rates.values()), "best_cpu": max(cpu_rates.values()), **rates}


class ConvProbe:
    """Times a network's own convolutions alone, at the shapes a step runs them: forward and input
    gradient of every convolution up to ``deepest``, all in one ``tf.function`` — no ReLU, batch
    normalisation, pooling, loss or update. ``network``: ``"vgg19"`` (NST) or ``"inception_v3"``
    (DeepDream). Each convolution runs on TensorFlow's own kernels, as autodiff runs them in a
    step: ``tf.nn.conv2d`` forward, ``tf.nn.conv2d_transpose`` for the input gradient.

    ``2 × forward FLOPs ÷ this time`` is the rate the CPU's convolution kernels reach *at these
    shapes*; its ratio to the floor says how much of a step's distance from the floor is the kernels'
    (small spatial sizes and channel counts run below the big-matmul rate), and ``ours ÷ these convolutions`` what
    is left for the rest.
    """

    def __init__(self, shape: tuple[int, int], deepest: str, *, network: str = "vgg19") -> None:
        import keras
        import tensorflow as tf

        builder = keras.applications.VGG19 if network == "vgg19" else keras.applications.InceptionV3
        base = builder(include_top=False, weights=None, input_shape=(*shape, 3))
        g = tf.random.Generator.from_seed(1)
        self.pairs = []
        for layer in keras.Model(base.input, base.get_layer(deepest).output).layers:
            if isinstance(layer, keras.layers.Conv2D):
                in_shape, out_shape = layer.input.shape, layer.output.shape
                k = g.normal([*layer.kernel_size, in_shape[-1], out_shape[-1]])
                strides_padding = (list(layer.strides), layer.padding.upper())
                self.pairs.append((g.normal([1, *in_shape[1:]]), g.normal([1, *out_shape[1:]]), k, strides_padding))

        @tf.function
        def run(pairs):
            total = 0.0
            for x, dy, k, (strides, padding) in pairs:
                y = tf.nn.conv2d(x, k, strides, padding)
                dx = tf.nn.conv2d_transpose(dy, k, tf.shape(x), strides, padding)
                total += tf.reduce_sum(y[0, 0, 0, :1]) + tf.reduce_sum(dx[0, 0, 0, :1])
            return total

        self.run = run
        self.run(self.pairs).numpy()  # trace and warm up

    def measure(self, repeats: int = 5) -> tuple[float, float]:
        """Median ``(wall seconds, CPU seconds)`` of one pass over every convolution, both directions."""
        times, cpu_times = [], []
        for _ in range(repeats):
            t, c = time.perf_counter(), time.process_time()
            self.run(self.pairs).numpy()
            times.append(time.perf_counter() - t)
            cpu_times.append(time.process_time() - c)
        return median(times), median(cpu_times)


class Clock:
    """Wall and CPU time since the last ``lap()``: ``(wall seconds, CPU seconds of this process)``."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def lap(self) -> tuple[float, float]:
        wall, cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu
        self.reset()
        return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256, help="image side for the convolution shapes")
    args = parser.parse_args()
    setup_env()
    probe = RateProbe(args.size)
    emit({"benchmark": "machine", **machine(), "gflops": probe.measure()})


if __name__ == "__main__":
    main()
