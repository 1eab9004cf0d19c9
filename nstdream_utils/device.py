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


def setup(*, mixed_precision: bool | str = "auto", memory_growth: bool = True) -> DeviceInfo:
    """Configure TensorFlow for the device at hand; safe to call more than once.

    Args:
        mixed_precision: ``"auto"`` (on where every GPU has compute capability ≥ 7.0), True, False.
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
    use_mp = bool(found) and (
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
    """A device report: versions, devices, threads, oneDNN and mixed precision. Not for nbval."""
    tf = _tf()
    import keras

    info = setup()
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
        "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "1") != "0",
        "policy": keras.mixed_precision.global_policy().name,
    }


def format_report(rep: dict | None = None) -> str:
    """The device report as aligned ``key: value`` lines."""
    rep = rep if rep is not None else report()
    return "\n".join(f"{k:>16}: {v}" for k, v in rep.items())


def pick(cpu, gpu):
    """``gpu`` when a GPU is present, else ``cpu``: per-device defaults for sizes and steps."""
    return gpu if is_gpu() else cpu


__all__ = ["DeviceInfo", "setup", "seed_everything", "report", "format_report", "is_gpu", "gpus", "pick"]
