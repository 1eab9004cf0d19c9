"""Coarse-to-fine neural style transfer: each level is an ordinary NST problem at 1/4, 1/2, … of the size, started
from the previous level's result upsampled (half the size costs a quarter per VGG-19 pass; ``docs/benchmarks.md``)."""

import time

import numpy as np

from . import device, images, models, nst
from ._loop import Recorder
from .errors import InputError
from .presets import NSTConfig, full_shape, level_shapes


def coarse_to_fine(content_image, style_image, *, config: NSTConfig | str = "quick", seed: int = 0,
                   progress: bool = True, log_every: int = 0, callback=None, should_stop=None, weights=None,
                   precision: str | None = None, **overrides) -> nst.NSTResult:
    """Stylise float ``[H, W, 3]`` images in [0, 1] level by level (``config.levels``: 3 = quarter, half, full size).

    Keywords as ``nst.style_transfer``; ``callback``'s ``step`` counts across levels, ``losses["level"]`` is the
    level (0 = coarsest). An ``nst.NSTResult`` at full size; ``history`` joins the levels' with ``level`` per entry
    and ``seconds`` since the call. InputError (too many levels for the size) comes before any network is built."""
    cfg = nst.resolve_config(config, **overrides)
    content_full = np.asarray(content_image, np.float32)
    last_shape = full_shape(content_full.shape[:2], cfg)
    shapes, steps = level_shapes(last_shape, cfg.levels), cfg.steps_per_level or (cfg.num_steps,)
    models.check_precision(precision)  # a bad precision fails here, before any work
    device.setup()
    device.seed_everything(seed)
    start = time.perf_counter()
    history: dict[str, list[float]] = {}
    image = None
    for level, ((h, w), num_steps) in enumerate(zip(shapes, steps)):
        level_cfg = cfg.replace(size=max(h, w), num_steps=num_steps)
        content = images.resize(content_full, exact=(h, w))
        style = images.resize(np.asarray(style_image, np.float32), exact=(h, w))
        loss_fn = nst.NSTLoss(content, style, level_cfg, weights=weights, precision=precision)
        x0 = nst._initial_image(content, style, level_cfg, seed) if image is None else \
            (images.resize(image, exact=(h, w)) * level_cfg.pixel_scale)[np.newaxis].astype(np.float32)
        tagged = None if callback is None else \
            lambda step, losses, img, level=level: callback(step, {**losses, "level": float(level)}, img)
        recorder = Recorder(num_steps=num_steps, get_image=lambda x0=x0: x0[0] / level_cfg.pixel_scale,
                            progress=progress, desc=f"NST level {level + 1}/{cfg.levels} {h}×{w}",
                            log_every=log_every, callback=tagged, step_offset=len(history.get("total", [])))
        loop = nst.loop_for(level_cfg.optimizer)
        image = np.clip(loop(loss_fn, x0, level_cfg, recorder, should_stop=should_stop), 0, 1).astype(np.float32)
        del loss_fn
        shift = time.perf_counter() - start - (recorder.history.get("seconds") or [0.0])[-1]  # to the call's clock
        for key, values in recorder.history.items():
            history.setdefault(key, []).extend([s + shift for s in values] if key == "seconds" else values)
        history.setdefault("level", []).extend([float(level)] * len(recorder.history.get("total", [])))
        if recorder.status != "completed":
            break
    if image.shape[:2] != tuple(last_shape):
        image = images.resize(image, exact=tuple(last_shape))
    return nst.NSTResult(image=image, history=history, config=cfg.replace(num_steps=sum(steps)), status=recorder.status)


def stylize(content_image, style_image, *, config: NSTConfig | str = "quick", mask=None, **kwargs) -> nst.NSTResult:
    """``nst.style_transfer`` for a config of one level, else :func:`coarse_to_fine` (no ``mask``, ``checkpoint`` or
    list of styles); ``**kwargs``: the run keywords of both (``seed``, ``progress``, ``precision``, …)."""
    cfg = nst.resolve_config(config)
    if cfg.levels == 1:
        return nst.style_transfer(content_image, style_image, config=cfg, mask=mask, **kwargs)
    given = [name for name, on in (("mask", mask is not None), ("checkpoint", kwargs.get("checkpoint") is not None),
                                   ("a list of style images", isinstance(style_image, (list, tuple)))) if on]
    if given:
        raise InputError(f"{', '.join(given)} with levels={cfg.levels}: coarse to fine takes none of these",
                         where="levels", fix="run one level (levels=1) with these, or drop them")
    return coarse_to_fine(content_image, style_image, config=cfg, **kwargs)
