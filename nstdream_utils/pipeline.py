"""The paper's pipeline: neural style transfer, then resize, then DeepDream (notebook 06; ``batch`` runs it)."""

from dataclasses import dataclass

import numpy as np

from . import dream, nst, pyramid
from .presets import Preset, resolve


@dataclass
class PipelineResult:
    """``stylized`` (of ``nst``) and ``dreamed`` (of ``dream``): float32 ``[H, W, 3]`` in [0, 1]; ``dreamed`` and
    ``dream`` are None if NST stopped early. ``status``: ``"completed"`` or ``"interrupted"``."""

    stylized: np.ndarray
    dreamed: np.ndarray | None
    nst: nst.NSTResult
    dream: dream.DreamResult | None
    status: str = "completed"


def run_pipeline(content_image, style_image, *, config: Preset | str = "quick", seed: int = 0,
                 progress: bool = True, log_every: int = 0, should_stop=None, precision: str | None = None,
                 mask=None, guide=None, checkpoint=None) -> PipelineResult:
    """Stylise ``content_image`` with ``style_image`` (float ``[H, W, 3]`` in [0, 1], or a list of styles) by
    ``pyramid.stylize`` (``mask``; ``checkpoint``: a ``.npz`` NST saves itself to and resumes from, as
    ``nst.style_transfer``), then dream on it (``guide``) unless NST stopped early. ``config``: a preset name or a
    Preset; run keywords go to both stages. What DeepDream raises carries the NST result as ``.nst_result``."""
    config = resolve(config)
    run = dict(seed=seed, progress=progress, log_every=log_every, should_stop=should_stop, precision=precision)
    saving = {"checkpoint": checkpoint} if checkpoint is not None else {}
    styled = pyramid.stylize(content_image, style_image, config=config.nst, mask=mask, **saving, **run)
    if styled.status != "completed":
        return PipelineResult(styled.image, None, styled, None, status=styled.status)
    try:
        dreamed = dream.deep_dream(styled.image, config=config.dream, guide=guide, **run)
    except BaseException as exc:  # NaN, Ctrl-C: the finished first stage is not lost
        exc.nst_result = styled
        raise
    return PipelineResult(styled.image, dreamed.image, styled, dreamed, status=dreamed.status)
