"""Figures for the course: image rows, loss curves, heatmaps, and GIFs of an optimisation.

Every function returns a :class:`matplotlib.figure.Figure` of a fixed size with titled panels and
never calls ``plt.show()``: the notebook does, at the end of the cell, so no ``<Figure …>`` text is
stored in its outputs. Images are float ``[H, W, 3]`` (or ``[1, H, W, 3]``) RGB in ``[0, 1]``, or
uint8; NumPy arrays or TensorFlow tensors.

Floor 5: imports NumPy, matplotlib, PIL and :mod:`nstdream_utils.files` (never TensorFlow; a tensor
is converted with ``np.asarray``).
Taught in notebook 00 (:func:`show_images`), 01 (:func:`heatmap`), 02–05 (:func:`plot_history`),
08 (:func:`save_gif`).

Example::

    >>> import numpy as np
    >>> fig = show_images([np.zeros((8, 8, 3)), np.ones((8, 8, 3))], ["black", "white"])
    >>> [ax.get_title() for ax in fig.axes]
    ['black', 'white']
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

__all__ = ["show_images", "image_grid", "plot_history", "heatmap", "save_gif", "to_display"]

#: Default panel size in inches: small images keep each notebook well under 2 MB.
PANEL_SIZE = 3.0
#: Dots per inch of figures made here (kept low for the same reason).
DPI = 72


def to_display(image: Any) -> np.ndarray:
    """An image as a displayable array: ``[H, W, 3]`` float in ``[0, 1]``, or ``[H, W]`` grey.

    Args:
        image: float ``[H, W, 3]``, ``[1, H, W, 3]``, ``[H, W, 1]`` or ``[H, W]`` in ``[0, 1]``
            (values outside are clipped), or uint8 in ``[0, 255]``; NumPy array or tensor.

    Raises:
        ValueError: another shape, or NaN/Inf values.
    """
    array = np.asarray(image)
    if array.ndim == 4 and array.shape[0] == 1:
        array = array[0]
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[-1] != 3):
        raise ValueError(f"an image must be [H, W, 3], [1, H, W, 3] or [H, W]; got shape {array.shape}")
    if array.dtype == np.uint8:
        return array.astype(np.float32) / 255.0
    array = array.astype(np.float32)
    if not np.isfinite(array).all():
        raise ValueError("the image contains NaN or Inf values; check the run that produced it")
    return np.clip(array, 0.0, 1.0)


def _titles(titles: Sequence[str] | None, count: int) -> list[str]:
    if titles is None:
        return [""] * count
    titles = list(titles)
    if len(titles) != count:
        raise ValueError(f"got {count} images but {len(titles)} titles; pass one title per image")
    return [str(t) for t in titles]


def image_grid(images: Sequence[Any], titles: Sequence[str] | None = None, *, ncols: int | None = None,
               size: float = PANEL_SIZE, suptitle: str | None = None) -> Figure:
    """Images in a grid of titled panels, axes hidden; ``ncols`` per row.

    Args:
        images: a sequence of images (see :func:`to_display`); at least one.
        titles: one title per image, or None.
        ncols: panels per row (default: all in one row, at most 6).
        size: width and height of each panel in inches.
        suptitle: a title over the whole figure.

    Returns:
        A figure of ``ncols·size × nrows·size`` inches.

    Raises:
        ValueError: no images, or a titles list of another length.
    """
    images = list(images)
    if not images:
        raise ValueError("no images to show; pass a list with at least one image")
    titles = _titles(titles, len(images))
    ncols = int(ncols) if ncols else min(len(images), 6)
    if ncols < 1:
        raise ValueError(f"ncols must be ≥ 1, got {ncols}")
    nrows = math.ceil(len(images) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(ncols * size, nrows * size + (0.3 if suptitle else 0)),
                             dpi=DPI, squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, image, title in zip(axes.ravel(), images, titles):
        pixels = to_display(image)
        ax.imshow(pixels, cmap="gray" if pixels.ndim == 2 else None, vmin=0, vmax=1,
                  interpolation="nearest" if max(pixels.shape[:2]) < 64 else "antialiased")
        ax.set_title(title, fontsize=10)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def show_images(images: Sequence[Any], titles: Sequence[str] | None = None, *, ncols: int | None = None,
                size: float = PANEL_SIZE) -> Figure:
    """A row (or grid) of images with titles: the course's one way to look at pictures.

    Args:
        images: float ``[H, W, 3]`` in ``[0, 1]`` (or uint8, ``[1, H, W, 3]``, grey ``[H, W]``).
        titles: one per image.
        ncols: panels per row (default: one row, at most 6).
        size: panel size in inches.

    Returns:
        The figure; end the notebook cell with ``plt.show()``.
    """
    return image_grid(images, titles, ncols=ncols, size=size)


def _series(histories: Mapping[str, Any], keys: Sequence[str] | None) -> list[tuple[str, list[float]]]:
    """Flatten ``{run: [values]}`` or ``{run: {key: [values]}}`` into labelled series."""
    series = []
    for run, history in histories.items():
        if isinstance(history, Mapping):
            chosen = keys if keys is not None else [k for k in history if k != "seconds"]
            for key in chosen:
                if key not in history:
                    raise ValueError(f"history {run!r} has no key {key!r}; it has {sorted(history)}")
                label = key if len(histories) == 1 else f"{run}: {key}"
                series.append((label, list(history[key])))
        else:
            series.append((str(run), list(history)))
    return series


def plot_history(histories: Mapping[str, Sequence[float]] | Mapping[str, Mapping[str, Sequence[float]]], *,
                 keys: Sequence[str] | None = None, logy: bool = True, title: str | None = None,
                 size: tuple[float, float] = (6.0, 3.5)) -> Figure:
    """Loss curves against the step number.

    Args:
        histories: either ``{label: [loss per step]}``, or ``{run: history}`` where each history is a
            dict of lists as ``NSTResult.history`` / ``DreamResult.history`` (``"seconds"`` is skipped
            unless named in ``keys``).
        keys: which keys of each history to draw (default: all but ``"seconds"``).
        logy: logarithmic y axis (losses fall over orders of magnitude). Series with a value ≤ 0
            fall back to a linear axis.
        title: the axes title (default ``"loss"``).
        size: figure size in inches.

    Returns:
        A one-panel figure, x = step (0 = before the first update), one line per series.

    Raises:
        ValueError: nothing to plot, or a missing key.
    """
    series = [(label, values) for label, values in _series(histories, keys) if values]
    if not series:
        raise ValueError("nothing to plot: the histories are empty")
    fig, ax = plt.subplots(figsize=size, dpi=DPI)
    positive = all(v > 0 for _, values in series for v in values if math.isfinite(v))
    for label, values in series:
        ax.plot(np.arange(len(values)), values, label=label)
    if logy and positive:
        ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(title or "loss")
    ax.grid(True, alpha=0.3)
    if len(series) > 1 or series[0][0]:
        ax.legend(fontsize=9)
    fig.tight_layout()
    return fig


def heatmap(matrix: Any, *, title: str | None = None, ax=None, cmap: str = "viridis",
            size: tuple[float, float] = (4.0, 3.5), colorbar: bool = True) -> Figure:
    """A matrix (e.g. a Gram matrix ``[C, C]``) as a colour image with a colour bar.

    Args:
        matrix: float ``[R, C]`` (a leading batch axis of 1 is dropped); array or tensor.
        title: the panel title.
        ax: draw into this axes (for side-by-side heatmaps); default: a new figure.
        cmap: matplotlib colour map.
        size: figure size in inches when a new figure is made.
        colorbar: add a colour bar.

    Returns:
        The figure holding the panel.

    Raises:
        ValueError: not a 2-D matrix.
    """
    values = np.asarray(matrix, dtype=np.float64)
    if values.ndim == 3 and values.shape[0] == 1:
        values = values[0]
    if values.ndim != 2:
        raise ValueError(f"heatmap needs a 2-D matrix [R, C]; got shape {values.shape}")
    if ax is None:
        fig, ax = plt.subplots(figsize=size, dpi=DPI)
    else:
        fig = ax.figure
    shown = ax.imshow(values, cmap=cmap, interpolation="nearest")
    ax.set_title(title or f"{values.shape[0]}×{values.shape[1]}", fontsize=10)
    ax.set_xlabel("channel")
    ax.set_ylabel("channel")
    if colorbar:
        fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.04)
    fig.tight_layout()
    return fig


def save_gif(frames: Sequence[Any], path: str | os.PathLike, *, duration_ms: int = 100, loop: int = 0):
    """Save frames (e.g. ``NSTResult.frames``) as an animated GIF, atomically.

    Args:
        frames: images of one size (see :func:`to_display`; grey is converted to RGB).
        path: the ``.gif`` file; its folder must exist.
        duration_ms: time per frame in milliseconds (> 0).
        loop: how many times to loop (0 = forever).

    Returns:
        ``path`` as a :class:`pathlib.Path`.

    Raises:
        ValueError: no frames, frames of different sizes, or duration_ms ≤ 0.
    """
    from PIL import Image

    from .files import atomic_write_bytes

    frames = list(frames)
    if not frames:
        raise ValueError("no frames to save; keep frames with style_transfer(..., frame_every=N)")
    if not duration_ms or duration_ms <= 0:
        raise ValueError(f"duration_ms must be > 0, got {duration_ms!r}")
    pixels = []
    for frame in frames:
        array = to_display(frame)
        if array.ndim == 2:
            array = np.repeat(array[..., None], 3, axis=-1)
        pixels.append(np.rint(array * 255.0).astype(np.uint8))
    shapes = {p.shape for p in pixels}
    if len(shapes) != 1:
        raise ValueError(f"frames have different sizes {sorted(shapes)}; resize them to one size first")
    pil = [Image.fromarray(p) for p in pixels]
    buffer = io.BytesIO()
    pil[0].save(buffer, format="GIF", save_all=True, append_images=pil[1:], duration=int(duration_ms),
                loop=int(loop))
    return atomic_write_bytes(buffer.getvalue(), path)
