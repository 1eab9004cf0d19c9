"""Which device runs the networks: GPU detection, memory growth, mixed precision, seeding.

Call :func:`setup` once before building models. On a CUDA GPU it turns on memory growth (so
TensorFlow does not reserve all GPU memory) and, where the GPU has tensor cores (compute capability
≥ 7.0), the Keras ``mixed_float16`` policy: networks compute in float16 while every loss stays
float32. On a CPU nothing changes.
"""

from __future__ import annotations

import os
import platform
import random
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class DeviceInfo:
    """What :func:`setup` found and did."""

    kind: str  # "gpu" or "cpu"
    gpus: tuple[str, ...]
    mixed_precision: bool
    memory_growth: bool


_STATE: dict[str, DeviceInfo] = {}


def _tf():
    import tensorflow as tf

    return tf


def gpus() -> list:
    """The physical GPUs TensorFlow sees (empty on a CPU-only machine)."""
    return _tf().config.list_physical_devices("GPU")


def is_gpu() -> bool:
    """True when TensorFlow sees at least one GPU."""
    return bool(gpus())


def _supports_mixed_precision(gpu) -> bool:
    details = _tf().config.experimental.get_device_details(gpu)
    capability = details.get("compute_capability") or (0, 0)
    return tuple(capability) >= (7, 0)


NATIVE_CPU_FLAGS: dict[str, tuple[str, ...]] = {
    "bfloat16": ("avx512_bf16", "amx_bf16"),
    "float16": ("amx_fp16",),
}
"""``/proc/cpuinfo`` flags, any one of which makes that precision at least as fast as float32 on the CPU.

bfloat16: measured 1.8× less CPU per NST evaluation than float32 with ``avx512_bf16`` and 3.4× with
``amx_bf16`` (``docs/benchmarks.md``). float16: ``avx512_fp16`` alone is not enough — on a
CPU with it but without ``amx_fp16`` float16 was still slower than float32 (:data:`PARTIAL_CPU_FLAGS`);
``amx_fp16`` is assumed to be enough (no CPU with it was measured)."""

CPU_EMULATION_COST: dict[str, float] = {"bfloat16": 10.0, "float16": 3.0}
"""CPU time of one NST value-and-gradient (VGG-19, 128 px) in that precision ÷ in float32 on a 2-core
AVX2 CPU without either set of flags, about, from three runs of ``benchmarks/nst_precision.py``
(bfloat16 9.8×, 10.3× and 11.5×; float16 2.8×, 3.0× and 5.1×; ``docs/benchmarks.md``)."""

PARTIAL_CPU_FLAGS: dict[str, tuple[str, float]] = {"float16": ("avx512_fp16", 1.3)}
"""A flag that gives a precision some instructions of its own yet leaves it slower than float32, and
that cost as in :data:`CPU_EMULATION_COST`: float16 on a 2-core AVX512-FP16 CPU without AMX-FP16,
1.2× at 128 px and 1.37× at 256 px (``benchmarks/nst_precision.py``, ``docs/benchmarks.md``)."""


def _cpuinfo(key: str) -> str | None:
    """The first ``key`` line of ``/proc/cpuinfo`` (Linux), or None."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as cpuinfo:
            for line in cpuinfo:
                if line.startswith(key):
                    return line.partition(":")[2].strip()
    except OSError:
        pass
    return None


def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags (``/proc/cpuinfo``, Linux); empty where they cannot be read."""
    return frozenset((_cpuinfo("flags") or "").split())


def cpu_model() -> str:
    """The CPU's name (``/proc/cpuinfo``'s model name, else what ``platform`` says)."""
    return _cpuinfo("model name") or platform.processor() or platform.machine()


def _cpu_slowness(precision: str | None, flags: frozenset[str]) -> str | None:
    """``"emulated"``, ``"partial"`` (:data:`PARTIAL_CPU_FLAGS`) or None: native, float32, or flags unknown."""
    if precision not in NATIVE_CPU_FLAGS or not flags or set(NATIVE_CPU_FLAGS[precision]) & flags:
        return None
    partial = PARTIAL_CPU_FLAGS.get(precision)
    return "partial" if partial and partial[0] in flags else "emulated"


def slow_precision(precision: str | None, *, flags: frozenset[str] | None = None,
                   gpu: bool | None = None) -> str | None:
    """Why computing in ``precision`` would be *slower* than float32 here, or None.

    TensorFlow runs bfloat16 and float16 on any CPU, but a CPU without the instructions for them
    (:data:`NATIVE_CPU_FLAGS`) emulates them: an NST step then costs several times float32's
    (:data:`CPU_EMULATION_COST`). float16 stays slower than float32 even with AVX512-FP16 when
    AMX-FP16 is missing (:data:`PARTIAL_CPU_FLAGS`). Returns None for float32 or None, on a GPU, where the CPU has
    the instructions, and where its flags cannot be read (not Linux).

    Args:
        precision: ``"float32"``, ``"bfloat16"``, ``"float16"`` or None.
        flags: the CPU flags (default: :func:`cpu_flags`).
        gpu: whether TensorFlow sees a GPU (default: :func:`is_gpu`).
    """
    flags = cpu_flags() if flags is None else flags
    kind = _cpu_slowness(precision, flags)
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
    """Configure TensorFlow for the device at hand; safe to call more than once.

    Args:
        mixed_precision: ``"auto"`` (on where every GPU has compute capability ≥ 7.0, unless
            :func:`cpu_defaults`), True, False.
        memory_growth: allocate GPU memory as needed instead of all at start.

    Returns:
        A :class:`DeviceInfo`.
    """
    if "info" in _STATE:
        return _STATE["info"]
    tf = _tf()
    found = gpus()
    if memory_growth:
        for gpu in found:
            try:
                tf.config.experimental.set_memory_growth(gpu, True)
            except RuntimeError:  # already initialised: growth can no longer change
                pass
    use_mp = bool(found) and not (cpu_defaults() and mixed_precision == "auto") and (
        all(_supports_mixed_precision(g) for g in found) if mixed_precision == "auto" else bool(mixed_precision)
    )
    if use_mp:
        import keras

        keras.mixed_precision.set_global_policy("mixed_float16")
    info = DeviceInfo(kind="gpu" if found else "cpu", gpus=tuple(g.name for g in found),
                      mixed_precision=use_mp, memory_growth=bool(memory_growth and found))
    _STATE["info"] = info
    return info


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and TensorFlow (``keras.utils.set_random_seed``) for repeatable runs."""
    import keras

    random.seed(seed)
    np.random.seed(seed)
    keras.utils.set_random_seed(seed)


def report() -> dict:
    """A device report: versions, devices, threads, mixed precision, and whether the CPU computes
    bfloat16 and float16 natively (``slow_precision``). Not for nbval."""
    tf = _tf()
    import keras

    info = setup()
    flags = cpu_flags()
    return {
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "device": info.kind,
        "gpus": [
            f"{g.name} {tf.config.experimental.get_device_details(g).get('device_name', '')}".strip()
            for g in gpus()
        ],
        "mixed_precision": info.mixed_precision,
        "memory_growth": info.memory_growth,
        "cpu_count": os.cpu_count(),
        "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads() or os.cpu_count(),
        "policy": keras.mixed_precision.global_policy().name,
        "cpu_16bit": ", ".join(
            f"{p} {_CPU_16BIT[_cpu_slowness(p, flags)]}"
            for p in NATIVE_CPU_FLAGS) if flags else "unknown",
    }


_CPU_16BIT = {None: "native", "partial": "slower than float32", "emulated": "emulated (slower than float32)"}


def format_report(rep: dict | None = None) -> str:
    """The device report as aligned ``key: value`` lines."""
    rep = rep if rep is not None else report()
    return "\n".join(f"{k:>16}: {v}" for k, v in rep.items())


CPU_DEFAULTS_ENV = "NSTDREAM_CPU_DEFAULTS"
"""Set to 1 to run with the CPU's defaults on any device: :func:`pick` returns the CPU value and
:func:`setup` leaves mixed precision off, so a GPU machine reproduces the committed notebook outputs."""


def cpu_defaults() -> bool:
    """True when :data:`CPU_DEFAULTS_ENV` is set to 1."""
    return os.environ.get(CPU_DEFAULTS_ENV, "0") == "1"


def pick(cpu, gpu):
    """``gpu`` when a GPU is present (unless :func:`cpu_defaults`), else ``cpu``: per-device defaults
    for sizes and steps."""
    return gpu if is_gpu() and not cpu_defaults() else cpu


__all__ = ["DeviceInfo", "setup", "cpu_flags", "slow_precision", "NATIVE_CPU_FLAGS",
           "CPU_EMULATION_COST", "PARTIAL_CPU_FLAGS", "seed_everything", "report", "format_report", "is_gpu", "gpus", "pick",
           "cpu_defaults", "CPU_DEFAULTS_ENV"]
