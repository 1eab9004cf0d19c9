"""The device: GPU set-up, the CPU's 16-bit instructions; ``NSTDREAM_CPU_DEFAULTS=1`` gives any machine CPU defaults."""

import contextlib
import functools
import os
import platform
from collections import namedtuple

#: ``/proc/cpuinfo`` flags, any one of which makes the precision at least as fast as float32 on the CPU.
NATIVE_CPU_FLAGS = {"bfloat16": ("avx512_bf16", "amx_bf16"), "float16": ("amx_fp16",)}
#: CPU time of an NST step ÷ float32's on a CPU without those flags (``benchmarks/nst_precision.py``).
CPU_EMULATION_COST = {"bfloat16": 10.0, "float16": 3.0}
#: What :func:`setup` found and did; ``kind`` is ``"gpu"`` or ``"cpu"``.
DeviceInfo = namedtuple("DeviceInfo", "kind gpus mixed_precision memory_growth")


def gpus() -> list:
    """The physical GPUs TensorFlow sees."""
    import tensorflow as tf
    return tf.config.list_physical_devices("GPU")


def is_gpu() -> bool:
    return bool(gpus())


def pick(cpu, gpu):
    """``gpu`` where TensorFlow sees a GPU (unless ``NSTDREAM_CPU_DEFAULTS=1``), else ``cpu``."""
    return gpu if is_gpu() and os.environ.get("NSTDREAM_CPU_DEFAULTS") != "1" else cpu


def _cpuinfo(key: str) -> str:
    """The value of the first ``key`` line of ``/proc/cpuinfo``; empty where there is none."""
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8", errors="replace") as cpuinfo:
        return next((line.partition(":")[2].strip() for line in cpuinfo if line.startswith(key)), "")
    return ""


def cpu_flags() -> frozenset[str]:
    return frozenset(_cpuinfo("flags").split())


def cpu_model() -> str:
    return _cpuinfo("model name") or platform.processor() or platform.machine()


def slow_precision(precision: str | None, *, flags: frozenset[str] | None = None, gpu: bool | None = None):
    """Why ``precision`` would be emulated (slower than float32) here; None on a GPU, natively or if flags unknown."""
    flags = cpu_flags() if flags is None else flags
    native = NATIVE_CPU_FLAGS.get(precision)
    if not native or not flags or set(native) & flags or (is_gpu() if gpu is None else gpu):
        return None
    return (f"this CPU has no {precision} instructions ({' or '.join(native)}), so TensorFlow emulates them: measured "
            f"about {CPU_EMULATION_COST[precision]:g}× the CPU time of float32 per NST step on such a CPU")


@functools.cache
def setup() -> DeviceInfo:
    """Once: GPU memory growth, and ``mixed_float16`` where every GPU has tensor cores (compute capability ≥ 7.0)."""
    import tensorflow as tf
    found = gpus()
    for gpu in found:
        with contextlib.suppress(RuntimeError):  # already initialised: growth can no longer change
            tf.config.experimental.set_memory_growth(gpu, True)
    capabilities = [tf.config.experimental.get_device_details(g).get("compute_capability") or (0, 0) for g in found]
    mixed = pick(False, all(tuple(c) >= (7, 0) for c in capabilities))
    if mixed:
        import keras
        keras.mixed_precision.set_global_policy("mixed_float16")
    return DeviceInfo("gpu" if found else "cpu", tuple(g.name for g in found), mixed, bool(found))


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and TensorFlow (``keras.utils.set_random_seed`` seeds all three)."""
    import keras
    keras.utils.set_random_seed(seed)


def report() -> dict:
    """Versions, devices, threads, mixed precision, and whether the CPU computes bfloat16 and float16 natively."""
    import keras
    import tensorflow as tf
    info, flags, details = setup(), cpu_flags(), tf.config.experimental.get_device_details
    speeds = [f"{p} " + ("native" if slow_precision(p, flags=flags, gpu=False) is None else "emulated (slower than "
                         "float32)") for p in NATIVE_CPU_FLAGS]
    return {"python": platform.python_version(), "tensorflow": tf.__version__, "keras": keras.__version__,
            "device": info.kind, "gpus": [f"{g.name} {details(g).get('device_name', '')}".strip() for g in gpus()],
            "mixed_precision": info.mixed_precision, "memory_growth": info.memory_growth, "cpu_count": os.cpu_count(),
            "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads() or os.cpu_count(),
            "policy": keras.mixed_precision.global_policy().name,
            "cpu_16bit": ", ".join(speeds) if flags else "unknown"}


def format_report() -> str:
    """:func:`report` as aligned ``key: value`` lines."""
    return "\n".join(f"{k:>16}: {v}" for k, v in report().items())
