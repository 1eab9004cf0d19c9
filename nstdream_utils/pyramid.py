"""Coarse-to-fine neural style transfer: solve a small image first, then refine it at larger sizes.

Much of the work in style transfer is making the coarse layout match the style, and an image of
half the size costs a quarter as much per VGG-19 pass. So :func:`coarse_to_fine` runs the
optimiser at a quarter of the size, upsamples the result, runs again at half the size, and
finishes at full size: every level starts from the previous level's answer instead of from the
content image, and the expensive full-size level needs fewer steps.

Measured on a 2-core CPU (``docs/benchmarks.md``): against the TF tutorial's loss it reaches a given
loss sooner than plain L-BFGS from 256 px up (6.1× vs 5.3× the tutorial's speed at 256 px, 5.2×
vs 4.0× at 512 px against its 100-step loss; against its 1000-step loss at 512 px, 200 + 100
coarse steps leave 178 full-size iterations to do where plain L-BFGS needs about 250), but not at
128 px, where each level's trace costs more than the coarse steps save — use
``nst.style_transfer(..., optimizer="lbfgs")`` there. On a faster AVX512-BF16 CPU in bfloat16 with
``optimizer="lbfgs-tf"``, two levels with 200 half-size steps beat three at 512 px (9.3× vs 7.4×
the tutorial's speed to its 1000-step loss: the quarter-size level lays the style out at a scale the
full-size level must undo). It does not lower the peak memory, which the
full-size level sets (a 2048² image fits in 24 GiB); it makes the full-size evaluations few.

Each level is an ordinary NST problem at its own size: the content targets come from the content
image resized to that level, and the style Gram matrices from the style image resized to that
level's shape (as ``nst.prepare_images`` does), so a level's loss is the loss
``nst.style_transfer`` would report at that size.

Floor 4, beside ``nst``, whose loss (``nst.NSTLoss``) and loops (``nst.loop_for``:
``optim.lbfgs_loop``, ``nst._gradient_loop``) it reuses. Measured, not taught: ``docs/benchmarks.md``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

from . import device, images, models, nst
from ._loop import Recorder
from .errors import InputError
from .presets import (
    COARSE_STEPS,
    FINE_STEPS,
    MIN_LEVEL_SIDE,
    NSTConfig,
    default_steps,
    full_shape,
    level_shapes,
    level_steps,
)


def coarse_to_fine(content_image, style_image, *, config: NSTConfig | str = "quick", size: int | None = None,
                   levels: int = 3, steps_per_level: int | Sequence[int] | None = None,
                   optimizer: str | None = None, learning_rate: float | None = None, seed: int = 0,
                   progress: bool = True, log_every: int = 0, callback=None, should_stop=None,
                   weights=None, precision: str | None = None) -> nst.NSTResult:
    """Stylise ``content_image`` level by level: quarter size, half size, then full size.

    Each level optimises the NST loss of ``config`` at its own size, starting from the previous
    level's result upsampled (Lanczos); the first level starts from ``config.init``.

    Args:
        content_image, style_image: float ``[H, W, 3]`` in [0, 1] (any sizes; resized here).
        config: a preset name or an :class:`NSTConfig`; ``size``, ``optimizer`` and
            ``learning_rate`` override it (None keeps it). ``size`` is the last level's size.
        levels: number of levels; each is half the size of the next (``level_shapes``).
        steps_per_level: one int for every level, or one per level (coarsest first). Default:
            :func:`default_steps` — :data:`COARSE_STEPS` at half size, doubling at each
            coarser level, and :data:`FINE_STEPS` at full size (``config.num_steps`` is not
            used: it counts Adam or SGD steps).
        optimizer: ``"lbfgs"``, ``"lbfgs-tf"``, ``"adam"`` or ``"sgd"``, or None for the config's — as in
            ``nst.style_transfer`` (the default step counts suit L-BFGS; :func:`stylize` picks it).
        seed, progress, log_every, weights, precision: as in ``nst.style_transfer``.
        callback: ``callback(step, losses, image)`` as in ``nst.style_transfer``, with ``step``
            counted across levels and ``losses["level"]`` the level index (0 = coarsest).
        should_stop: polled every step; True ends the run (status ``"interrupted"``).

    Returns:
        An ``nst.NSTResult`` whose ``image`` has the full size (an interrupted run's image is
        upsampled to it), and whose ``history`` joins the levels: ``total``, ``content``,
        ``style``, ``tv`` as in ``nst.style_transfer`` (each at its level's size), ``level`` (the
        level index of each entry) and ``seconds`` (since the call started, levels included).

    Raises:
        InputError: a bad parameter, or too many levels for the size (checked before any network
            is built).
        NonFiniteLossError: as in ``nst.style_transfer``.

    Example::

        result = coarse_to_fine(content, style, config="tf-tutorial", size=1024)
        result.image.shape   # (1024, 1024, 3) for square inputs
    """
    cfg = nst.resolve_config(config, size=size, optimizer=optimizer, learning_rate=learning_rate)
    content_full = np.asarray(content_image, np.float32)
    content_full = content_full[0] if content_full.ndim == 4 else content_full
    last_shape = full_shape(content_full.shape[:2], cfg)
    shapes = level_shapes(last_shape, levels)
    steps = level_steps(steps_per_level, levels)
    models.check_precision(precision)  # a bad precision fails here, before any work

    device.setup()
    device.seed_everything(seed)
    start = time.perf_counter()
    history: dict[str, list[float]] = {}
    image = None
    status = "completed"
    for index, ((h, w), num_steps) in enumerate(zip(shapes, steps)):
        level_cfg = cfg.replace(size=max(h, w), num_steps=num_steps)
        content, style = _level_images(content_full, style_image, (h, w))
        loss_fn = nst.NSTLoss(content, style, level_cfg, weights=weights, precision=precision)
        if image is None:
            x0 = nst._initial_image(content, style, level_cfg, seed)
        else:
            x0 = (images.resize(image, exact=(h, w)) * level_cfg.pixel_scale)[np.newaxis].astype(np.float32)
        offset = len(history.get("total", []))
        recorder = Recorder(num_steps=num_steps, get_image=lambda x0=x0: x0[0] / level_cfg.pixel_scale,
                            progress=progress, desc=f"NST level {index + 1}/{levels} {h}×{w}",
                            log_every=log_every, callback=_level_callback(callback, index),
                            main_key="total", step_offset=offset)
        loop = nst.loop_for(level_cfg.optimizer)
        image = np.clip(loop(loss_fn, x0, level_cfg, recorder, should_stop=should_stop), 0, 1).astype(np.float32)
        del loss_fn
        _append(history, recorder.history, index, time.perf_counter() - start)
        if recorder.status != "completed":
            status = recorder.status
            break
    if image.shape[:2] != tuple(last_shape):
        image = images.resize(image, exact=tuple(last_shape))
    return nst.NSTResult(image=image, history=history, config=cfg.replace(num_steps=sum(steps)), status=status)


def stylize(content_image, style_image, *, levels: int = 1, steps_per_level: int | Sequence[int] | None = None,
            optimizer: str | None = None, **kwargs) -> nst.NSTResult:
    """``nst.style_transfer`` when ``levels`` is 1, else :func:`coarse_to_fine` (the CLI's and pipeline's NST).

    Args:
        content_image, style_image: float ``[H, W, 3]`` in [0, 1].
        levels: 1 (full size only) or the number of coarse-to-fine levels.
        steps_per_level: only with ``levels`` ≥ 2 (``coarse_to_fine``'s).
        optimizer: None keeps the config's for one level and means ``"lbfgs"`` for several
            (the default step counts are L-BFGS iterations).
        **kwargs: the other keywords of both (``config``, ``seed``, ``progress``, ``precision``, …).

    Raises:
        InputError: ``steps_per_level`` with one level, or what the chosen function raises.
    """
    if levels == 1:
        if steps_per_level is not None:
            raise InputError("steps_per_level needs levels ≥ 2", where="steps_per_level",
                             fix="pass levels=len(steps_per_level), or num_steps for a one-level run")
        return nst.style_transfer(content_image, style_image, optimizer=optimizer, **kwargs)
    return coarse_to_fine(content_image, style_image, levels=levels, steps_per_level=steps_per_level,
                          optimizer=optimizer or "lbfgs", **kwargs)


def _level_images(content_full: np.ndarray, style_image, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """The content image at ``shape`` and the style image at the same shape (targets of one level)."""
    content = images.resize(content_full, exact=shape)
    style = images.resize(np.asarray(style_image, np.float32), exact=shape)
    return content, style


def _level_callback(callback, level: int):
    if callback is None:
        return None

    def wrapped(step, losses, image):
        callback(step, {**losses, "level": float(level)}, image)

    return wrapped


def _append(history: dict, level_history: dict, level: int, elapsed: float) -> None:
    """Join one level's history to the run's: ``seconds`` become time since the run started."""
    n = len(level_history.get("total", []))
    level_seconds = level_history.get("seconds", [0.0] * n)
    shift = elapsed - (level_seconds[-1] if level_seconds else 0.0)
    for key, values in level_history.items():
        if key == "seconds":
            values = [s + shift for s in values]
        history.setdefault(key, []).extend(values)
    history.setdefault("level", []).extend([float(level)] * n)


# The schedule (sizes and step counts) lives in ``presets``, TensorFlow-free; re-exported here.
__all__ = ["coarse_to_fine", "stylize", "level_shapes", "level_steps", "default_steps", "full_shape", "COARSE_STEPS",
           "FINE_STEPS", "MIN_LEVEL_SIDE"]
