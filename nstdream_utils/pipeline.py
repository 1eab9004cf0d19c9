"""The paper's pipeline: neural style transfer, then resize, then DeepDream (notebook 06; ``batch`` runs it)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import dream, nst, pyramid
from .presets import Preset, resolve


@dataclass
class PipelineResult:
    """What :func:`run_pipeline` returns: ``stylized``, float32 ``[H, W, 3]`` in [0, 1], the image of ``nst``;
    ``dreamed``, float32 ``[h, w, 3]`` in [0, 1], the image of ``dream`` (None, as ``dream``, if NST stopped
    early); ``status``: ``"completed"`` or ``"interrupted"``."""

    stylized: np.ndarray
    dreamed: np.ndarray | None
    nst: nst.NSTResult
    dream: dream.DreamResult | None
    status: str = "completed"


def run_pipeline(content_image, style_image, *, config: Preset | str = "quick", seed: int = 0,
                 progress: bool = True, log_every: int = 0, should_stop=None, precision: str | None = None,
                 mask=None, guide=None, nst_checkpoint=None) -> PipelineResult:
    """Stylise ``content_image`` with ``style_image`` (float ``[H, W, 3]`` in [0, 1]; the style may be a list,
    blended by ``style_blend``), then dream on the result; if NST stops early, DeepDream does not run.

    ``config``: a preset name or a :class:`presets.Preset` (``presets.resolve``); ``nst.levels`` > 1 runs NST
    coarse to fine. ``seed``, ``progress``, ``log_every``, ``should_stop``, ``precision``: both stages';
    ``mask`` and ``nst_checkpoint`` (``checkpoint``): ``nst.style_transfer``'s; ``guide``: ``dream.deep_dream``'s.
    Raises InputError for a bad setting, before either stage; whatever DeepDream raises (NonFiniteLossError,
    KeyboardInterrupt, …) carries the finished NST result as ``.nst_result``.
    """
    config = resolve(config)
    run = dict(seed=seed, progress=progress, log_every=log_every, should_stop=should_stop, precision=precision)
    styled = pyramid.stylize(content_image, style_image, config=config.nst, mask=mask, checkpoint=nst_checkpoint,
                             **run)
    if styled.status != "completed":
        return PipelineResult(styled.image, None, styled, None, status=styled.status)
    try:
        dreamed = dream.deep_dream(styled.image, config=config.dream, guide=guide, **run)
    except BaseException as exc:  # NaN, Ctrl-C: the finished first stage is not lost
        exc.nst_result = styled
        raise
    return PipelineResult(styled.image, dreamed.image, styled, dreamed, status=dreamed.status)
