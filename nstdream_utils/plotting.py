"""Figures for the course: image rows, loss curves, heatmaps, GIFs; fixed-size Figures, never ``plt.show()``."""

import io
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from PIL import Image

from nstdream_utils.files import atomic_write_bytes

DPI = 72  # with 3-inch panels, small enough to keep each notebook well under 2 MB


def to_display(image: Any) -> np.ndarray:
    """float (clipped) or uint8 ``[H, W, 3]``, ``[1, H, W, 3]``, ``[H, W(, 1)]`` → float32 in [0, 1]; ValueError."""
    array = np.asarray(image)
    array = array[0] if array.ndim == 4 and array.shape[0] == 1 else array
    array = array[..., 0] if array.ndim == 3 and array.shape[-1] == 1 else array
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[-1] != 3):
        raise ValueError(f"an image must be [H, W, 3], [1, H, W, 3] or [H, W]; got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError("the image contains NaN or Inf values; check the run that produced it")
    return array.astype(np.float32) / 255.0 if array.dtype == np.uint8 else np.clip(array, 0.0, 1.0, dtype=np.float32)


def show_images(images: Sequence[Any], titles: Sequence[str] | None = None, *, ncols: int | None = None,
                size: float = 3.0) -> Figure:
    """Images (:func:`to_display`) with one title each in ``ncols`` columns (default ≤ 6) of ``size``-inch panels."""
    images = list(images)
    if not images:
        raise ValueError("no images to show; pass a list with at least one image")
    titles = [""] * len(images) if titles is None else [str(t) for t in titles]
    ncols = ncols or min(len(images), 6)
    nrows = math.ceil(len(images) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(ncols * size, nrows * size), dpi=DPI, squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, (image, title) in zip(axes.ravel(), zip(images, titles, strict=True)):
        pixels = to_display(image)
        ax.imshow(pixels, cmap="gray" if pixels.ndim == 2 else None, vmin=0, vmax=1,
                  interpolation="nearest" if max(pixels.shape[:2]) < 64 else "antialiased")
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_history(histories: Mapping[str, Sequence[float]] | Mapping[str, Mapping[str, Sequence[float]]], *,
                 keys: Sequence[str] | None = None, logy: bool = True, title: str | None = None) -> Figure:
    """Loss per step (0: before the first update) of ``{label: losses}`` or of ``keys`` (default: all but
    ``"seconds"``) in ``{run: result.history}``; log y if ``logy`` and all > 0. ValueError for nothing to plot."""
    series = []
    for run, history in histories.items():
        if isinstance(history, Mapping):
            series += [(key if len(histories) == 1 else f"{run}: {key}", list(history[key]))
                       for key in (keys if keys is not None else [k for k in history if k != "seconds"])]
        else:
            series.append((str(run), list(history)))
    series = [(label, values) for label, values in series if values]
    if not series:
        raise ValueError("nothing to plot: the histories are empty")
    fig, ax = plt.subplots(figsize=(6.0, 3.5), dpi=DPI)
    for label, values in series:
        ax.plot(np.arange(len(values)), values, label=label)
    if logy and all(v > 0 for _, values in series for v in values if math.isfinite(v)):
        ax.set_yscale("log")
    ax.set(xlabel="step", ylabel="loss", title=title or "loss")
    ax.grid(True, alpha=0.3)
    if len(series) > 1 or series[0][0]:
        ax.legend(fontsize=9)
    fig.tight_layout()
    return fig


def heatmap(matrix: Any, *, title: str | None = None, ax=None) -> Figure:
    """A matrix ``[R, C]`` or ``[1, R, C]`` (a Gram matrix) with a colour bar, into ``ax`` or a new figure."""
    values = np.asarray(matrix, dtype=np.float64).reshape(np.shape(matrix)[-2:])  # [1, R, C] → [R, C]
    fig, ax = plt.subplots(figsize=(4.0, 3.5), dpi=DPI) if ax is None else (ax.figure, ax)
    fig.colorbar(ax.imshow(values, cmap="viridis", interpolation="nearest"), ax=ax, fraction=0.046, pad=0.04)
    ax.set(xlabel="channel", ylabel="channel")
    ax.set_title(title or f"{values.shape[0]}×{values.shape[1]}", fontsize=10)
    fig.tight_layout()
    return fig


def save_gif(frames: Sequence[Any], path: str | os.PathLike, *, duration_ms: int = 100):
    """Frames of one size (``NSTResult.frames``) as a looping GIF at ``path``, written atomically; returns the Path."""
    pil = [Image.fromarray(np.rint(to_display(frame) * 255.0).astype(np.uint8)).convert("RGB") for frame in frames]
    if not pil:
        raise ValueError("no frames to save; keep frames with style_transfer(..., frame_every=N)")
    if len(sizes := {image.size for image in pil}) != 1:
        raise ValueError(f"frames have different sizes (width, height) {sorted(sizes)}; resize them to one size")
    buffer = io.BytesIO()
    pil[0].save(buffer, format="GIF", save_all=True, append_images=pil[1:], duration=int(duration_ms), loop=0)
    return atomic_write_bytes(buffer.getvalue(), path)
