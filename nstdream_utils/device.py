"""The device that runs the networks. :func:`setup`, called before building models, turns on GPU memory growth
and, where every GPU has tensor cores (compute capability ≥ 7.0), Keras' ``mixed_float16`` policy (losses stay
float32); on a CPU it changes nothing. ``NSTDREAM_CPU_DEFAULTS=1`` gives any machine the CPU's defaults
(:func:`pick`, no mixed precision), so a GPU reproduces the committed notebook outputs."""

from __future__ import annotations

import contextlib
import os
import platform
import random
from dataclasses import dataclass

import numpy as np

CPU_DEFAULTS_ENV = "NSTDREAM_CPU_DEFAULTS"
#: ``/proc/cpuinfo`` flags, any one of which makes the precision at least as fast as float32 on the CPU
#: (``docs/benchmarks.md``; ``amx_fp16`` is assumed, not measured).
NATIVE_CPU_FLAGS = {"bfloat16": ("avx512_bf16", "amx_bf16"), "float16": ("amx_fp16",)}
#: CPU time of an NST step (VGG-19, 128 px) ÷ float32's on a 2-core AVX2 CPU without those flags
#: (``benchmarks/nst_precision.py``).
CPU_EMULATION_COST = {"bfloat16": 10.0, "float16": 3.0}
#: A flag giving the precision instructions of its own that still leave it slower than float32, and that cost.
PARTIAL_CPU_FLAGS = {"float16": ("avx512_fp16", 1.3)}
_CPU_16BIT = {None: "native", "partial": "slower than float32", "emulated": "emulated (slower than float32)"}


@dataclass(frozen=True)
class DeviceInfo:
    """What :func:`setup` found and did."""

    kind: str  # "gpu" or "cpu"
    gpus: tuple[str, ...]
    mixed_precision: bool
    memory_growth: bool


_INFO: DeviceInfo | None = None  # what the first setup() did


def gpus() -> list:
    """The physical GPUs TensorFlow sees."""
    import tensorflow as tf

    return tf.config.list_physical_devices("GPU")


def is_gpu() -> bool:
    return bool(gpus())


def cpu_defaults() -> bool:
    """True when ``NSTDREAM_CPU_DEFAULTS=1``."""
    return os.environ.get(CPU_DEFAULTS_ENV, "0") == "1"


def pick(cpu, gpu):
    """``gpu`` where TensorFlow sees a GPU (unless :func:`cpu_defaults`), else ``cpu``."""
    return gpu if is_gpu() and not cpu_defaults() else cpu


def _cpuinfo(key: str) -> str | None:
    """The first ``key`` line of ``/proc/cpuinfo`` (Linux), or None."""
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8", errors="replace") as cpuinfo:
        return next((line.partition(":")[2].strip() for line in cpuinfo if line.startswith(key)), None)
    return None


def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags; empty where ``/proc/cpuinfo`` cannot be read."""
    return frozenset((_cpuinfo("flags") or "").split())


def cpu_model() -> str:
    return _cpuinfo("model name") or platform.processor() or platform.machine()


def _cpu_slowness(precision: str | None, flags: frozenset[str]) -> str | None:
    """``"emulated"``, ``"partial"`` or None (native, float32, or flags unknown)."""
    if precision not in NATIVE_CPU_FLAGS or not flags or set(NATIVE_CPU_FLAGS[precision]) & flags:
        return None
    partial = PARTIAL_CPU_FLAGS.get(precision)
    return "partial" if partial and partial[0] in flags else "emulated"


def slow_precision(precision: str | None, *, flags: frozenset[str] | None = None,
                   gpu: bool | None = None) -> str | None:
    """Why computing in ``precision`` (``"float32"``, ``"bfloat16"``, ``"float16"`` or None) would be slower than
    float32 on this CPU, which then emulates it; None on a GPU, for float32, with the instructions, or with the
    flags unknown. ``flags`` default :func:`cpu_flags`, ``gpu`` default :func:`is_gpu`."""
    kind = _cpu_slowness(precision, cpu_flags() if flags is None else flags)
    if kind is None or (is_gpu() if gpu is None else gpu):
        return None
    native = " or ".join(NATIVE_CPU_FLAGS[precision])
    if kind == "partial":
        partial, cost = PARTIAL_CPU_FLAGS[precision]
        return (f"this CPU has {partial} but no {native}, so TensorFlow runs {precision} slower than float32 "
                f"here: measured about {cost:g}× the CPU time of float32 per NST step on such a CPU")
    return (f"this CPU has no {precision} instructions ({native}), so TensorFlow emulates them: measured "
            f"about {CPU_EMULATION_COST[precision]:g}× the CPU time of float32 per NST step on such a CPU")


def setup(*, mixed_precision: bool | str = "auto", memory_growth: bool = True) -> DeviceInfo:
    """Configure TensorFlow once (later calls return the first result). ``mixed_precision``: ``"auto"`` (on where
    every GPU has compute capability ≥ 7.0, unless :func:`cpu_defaults`), True or False; ``memory_growth``:
    allocate GPU memory as needed instead of all at start."""
    global _INFO
    if _INFO is not None:
        return _INFO
    import tensorflow as tf

    found = gpus()
    for gpu in found if memory_growth else ():
        with contextlib.suppress(RuntimeError):  # already initialised: growth can no longer change
            tf.config.experimental.set_memory_growth(gpu, True)
    if mixed_precision == "auto":
        mixed_precision = not cpu_defaults() and all(
            tuple(tf.config.experimental.get_device_details(g).get("compute_capability") or (0, 0)) >= (7, 0)
            for g in found)
    if found and mixed_precision:
        import keras

        keras.mixed_precision.set_global_policy("mixed_float16")
    _INFO = DeviceInfo("gpu" if found else "cpu", tuple(g.name for g in found), bool(found and mixed_precision),
                       bool(memory_growth and found))
    return _INFO


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and TensorFlow (``keras.utils.set_random_seed``)."""
    import keras

    random.seed(seed)
    np.random.seed(seed)
    keras.utils.set_random_seed(seed)


def report() -> dict:
    """Versions, devices, threads, mixed precision, and whether the CPU computes bfloat16 and float16 natively."""
    import keras
    import tensorflow as tf

    info, flags = setup(), cpu_flags()
    details = tf.config.experimental.get_device_details
    return {
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "device": info.kind,
        "gpus": [f"{g.name} {details(g).get('device_name', '')}".strip() for g in gpus()],
        "mixed_precision": info.mixed_precision,
        "memory_growth": info.memory_growth,
        "cpu_count": os.cpu_count(),
        "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads() or os.cpu_count(),
        "policy": keras.mixed_precision.global_policy().name,
        "cpu_16bit": ", ".join(f"{p} {_CPU_16BIT[_cpu_slowness(p, flags)]}" for p in NATIVE_CPU_FLAGS)
        if flags else "unknown",
    }


def format_report(rep: dict | None = None) -> str:
    """The device report as aligned ``key: value`` lines."""
    return "\n".join(f"{k:>16}: {v}" for k, v in (report() if rep is None else rep).items())
