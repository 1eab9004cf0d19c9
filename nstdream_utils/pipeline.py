"""The paper's pipeline: neural style transfer, then resize to 299×299, then DeepDream.

Taught in notebook 06; run over a grid of contents × styles by ``batch``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import dream, nst, pyramid
from .errors import InputError
from .presets import get_preset


@dataclass
class PipelineResult:
    """What :func:`run_pipeline` returns: both images and both stages' results.

    Attributes:
        stylized: float32 ``[H, W, 3]`` in [0, 1], the NST output.
        dreamed: float32 ``[h, w, 3]`` in [0, 1], DeepDream on the (resized) stylised image.
        nst: the :class:`nst.NSTResult`. dream: the :class:`dream.DreamResult` (None if NST stopped).
        status: ``"completed"`` or ``"interrupted"`` (then ``dream`` may be None).
    """

    stylized: np.ndarray
    dreamed: np.ndarray | None
    nst: nst.NSTResult
    dream: dream.DreamResult | None
    status: str = "completed"


def run_pipeline(content_image, style_image, *, preset: str = "quick", nst_size: int | None = None,
                 nst_steps: int | None = None, optimizer: str | None = None, learning_rate: float | None = None,
                 dream_size: int | None = None, dream_steps: int | None = None,
                 dream_step_size: float | None = None, layers=None, octaves=None, seed: int = 0,
                 progress: bool = True, log_every: int = 0, should_stop=None,
                 precision: str | None = None, levels: int = 1, steps_per_level=None, mask=None,
                 guide=None, preserve_color: str | None = None, style_blend=None, style_scale: float | None = None,
                 nst_checkpoint=None) -> PipelineResult:
    """Stylise ``content_image`` with ``style_image``, then dream on the result (the paper's pipeline).

    Args:
        content_image, style_image: float ``[H, W, 3]`` in [0, 1].
        preset: ``"paper"``, ``"tf-tutorial"`` or ``"quick"``: both stages' settings.
        nst_size, nst_steps, optimizer, learning_rate: NST overrides (None keeps the preset's).
        dream_size, dream_steps, dream_step_size, layers, octaves: DeepDream overrides.
        seed: seeds both stages.
        precision: what both networks compute in (``nst.style_transfer``'s ``precision``).
        levels, steps_per_level: ``levels`` > 1 runs NST coarse to fine (``pyramid.coarse_to_fine``,
            whose ``steps_per_level`` replaces ``nst_steps``; the optimiser defaults to ``"lbfgs"``).
        mask, guide: ``nst.style_transfer``'s ``mask`` and ``dream.deep_dream``'s ``guide`` (None: none);
            ``style_image`` may be a list (``NSTConfig.style_blend``). Not with ``levels`` > 1.
        preserve_color, style_blend, style_scale: the NST controls of ``NSTConfig`` (None keeps the
            preset's): ``"luminance"`` or ``"histogram"``, a weight per style image, the style image's
            size relative to the output. Not with ``levels`` > 1. Taught in notebook 08.
        nst_checkpoint: ``nst.style_transfer``'s ``checkpoint`` (SGD and Adam, one level): NST saves
            its state there every 500 steps and continues from it after an interruption.

    Returns:
        A :class:`PipelineResult`. If NST is interrupted, DeepDream does not run.

    Raises:
        InputError: a bad setting, or a control with ``levels`` > 1, before either stage runs.
        NonFiniteLossError: a stage's loss became NaN/Inf. Whatever DeepDream raises (this error,
            ``KeyboardInterrupt``, …) carries the finished NST result as ``.nst_result``.
    """
    chosen = get_preset(preset)
    nst_cfg = nst.resolve_config(chosen.nst, size=nst_size, num_steps=nst_steps, optimizer=optimizer,
                                 learning_rate=learning_rate, preserve_color=preserve_color, style_scale=style_scale,
                                 style_blend=None if style_blend is None else tuple(style_blend))
    controls = [name for name, on in (("mask", mask is not None), ("preserve_color", preserve_color is not None),
                                      ("style_blend", style_blend is not None),
                                      ("style_scale", style_scale not in (None, 1.0)),
                                      ("a list of style images", isinstance(style_image, (list, tuple)))) if on]
    if levels > 1 and controls:
        raise InputError(f"{', '.join(controls)} with levels={levels}: coarse to fine takes none of these",
                         where="levels", fix="run one level (levels=1) with these controls, or drop them")
    dream_cfg = dream.resolve_config(chosen.dream, size=dream_size, num_steps=dream_steps,
                                     step_size=dream_step_size, layers=layers, octaves=octaves)
    extra = {"mask": mask} if mask is not None else {}
    if nst_checkpoint is not None:
        extra["checkpoint"] = nst_checkpoint
    styled = pyramid.stylize(content_image, style_image, **extra, levels=levels, steps_per_level=steps_per_level,
                             optimizer=optimizer, config=nst_cfg, seed=seed,
                             progress=progress, log_every=log_every, should_stop=should_stop, precision=precision)
    if styled.status != "completed":
        return PipelineResult(styled.image, None, styled, None, status=styled.status)
    try:
        dreamed = dream.deep_dream(styled.image, config=dream_cfg, guide=guide, seed=seed, progress=progress,
                                   log_every=log_every, should_stop=should_stop, precision=precision)
    except BaseException as exc:  # NaN, a bad layer, Ctrl-C: the finished first stage is not lost
        exc.nst_result = styled
        raise
    return PipelineResult(styled.image, dreamed.image, styled, dreamed, status=dreamed.status)
