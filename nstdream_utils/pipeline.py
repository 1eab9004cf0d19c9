"""The paper's pipeline: neural style transfer, then resize, then DeepDream.

Taught in notebook 06; run over a grid of contents × styles by ``batch``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import dream, nst, pyramid
from .presets import Preset, resolve


@dataclass
class PipelineResult:
    """What :func:`run_pipeline` returns.

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


def run_pipeline(content_image, style_image, *, config: Preset | str = "quick", seed: int = 0,
                 progress: bool = True, log_every: int = 0, should_stop=None, precision: str | None = None,
                 mask=None, guide=None, nst_checkpoint=None) -> PipelineResult:
    """Stylise ``content_image`` with ``style_image``, then dream on the result (the paper's pipeline).

    Args:
        content_image, style_image: float ``[H, W, 3]`` in [0, 1]; ``style_image`` may be a list
            (blended with ``NSTConfig.style_blend``).
        config: both stages' settings: a preset name, or a :class:`presets.Preset` with overrides
            from ``presets.resolve(preset, nst={...}, dream={...})``. ``config.nst.levels`` > 1 runs
            NST coarse to fine (``pyramid.coarse_to_fine``), without the controls.
        seed: seeds both stages. precision: what both networks compute in (``nst.style_transfer``'s).
        mask, guide: ``nst.style_transfer``'s ``mask`` and ``dream.deep_dream``'s ``guide`` (None: none).
        nst_checkpoint: ``nst.style_transfer``'s ``checkpoint`` (SGD and Adam, one level): NST saves its
            state there every 500 steps and continues from it after an interruption.

    Returns:
        A :class:`PipelineResult`. If NST is interrupted, DeepDream does not run.

    Raises:
        InputError: a bad setting, before either stage runs.
        NonFiniteLossError: a stage's loss became NaN/Inf. Whatever DeepDream raises (this error,
            ``KeyboardInterrupt``, …) carries the finished NST result as ``.nst_result``.
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
