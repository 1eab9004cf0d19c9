"""Fast tests (Agg backend, no networks) for nstdream_utils.plotting and nstdream_utils.widgets."""

from __future__ import annotations

import os
from types import SimpleNamespace

os.environ.setdefault("MPLBACKEND", "Agg")

import matplotlib  # noqa: E402

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

from nstdream_utils import plotting, widgets  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _images(count: int = 3, size: int = 8) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.uniform(0, 1, (size, size, 3)).astype(np.float32) for _ in range(count)]


# ------------------------------------------------------------------------------------ show_images


def test_show_images_titles_and_fixed_size():
    fig = plotting.show_images(_images(3), ["a", "b", "c"], size=2.0)
    assert [ax.get_title() for ax in fig.axes] == ["a", "b", "c"]
    assert tuple(fig.get_size_inches()) == pytest.approx((6.0, 2.0))


def test_show_images_grid_hides_unused_panels():
    fig = plotting.show_images(_images(5), list("abcde"), ncols=2, size=1.0)
    assert len(fig.axes) == 6  # 3 rows × 2
    assert tuple(fig.get_size_inches()) == pytest.approx((2.0, 3.0))
    assert not fig.axes[-1].get_images()  # the sixth panel is empty


def test_show_images_accepts_batch_uint8_and_grey():
    batch = _images(1)[0][np.newaxis]
    uint8 = np.full((4, 4, 3), 255, np.uint8)
    grey = np.zeros((4, 4), np.float32)
    fig = plotting.show_images([batch, uint8, grey], ["batch", "uint8", "grey"])
    shown = [ax.get_images()[0].get_array() for ax in fig.axes]
    assert shown[0].shape == (8, 8, 3)
    np.testing.assert_allclose(shown[1], 1.0)
    assert shown[2].shape == (4, 4)


def test_to_display_clips_and_rejects_bad_input():
    np.testing.assert_allclose(plotting.to_display(np.full((2, 2, 3), 2.0)), 1.0)
    with pytest.raises(ValueError, match="shape"):
        plotting.to_display(np.zeros((2, 2, 4)))
    with pytest.raises(ValueError, match="NaN"):
        plotting.to_display(np.full((2, 2, 3), np.nan))


def test_show_images_errors_name_the_problem():
    with pytest.raises(ValueError, match="no images"):
        plotting.show_images([], [])
    with pytest.raises(ValueError, match="shorter"):  # zip(images, titles, strict=True)
        plotting.show_images(_images(2), ["only one"])


# ----------------------------------------------------------------------------------- plot_history


def test_plot_history_from_lists():
    fig = plotting.plot_history({"sgd": [10.0, 5.0, 1.0], "adam": [10.0, 2.0, 0.5]}, title="runs")
    ax = fig.axes[0]
    assert ax.get_title() == "runs"
    assert ax.get_yscale() == "log"
    assert ax.get_legend_handles_labels()[1] == ["sgd", "adam"]
    np.testing.assert_array_equal(ax.lines[0].get_xdata(), [0, 1, 2])


def test_plot_history_from_result_histories_skips_seconds():
    history = {"total": [3.0, 2.0], "content": [1.0, 0.5], "style": [2.0, 1.5], "seconds": [0.1, 0.2]}
    fig = plotting.plot_history({"run": history})
    assert fig.axes[0].get_legend_handles_labels()[1] == ["total", "content", "style"]
    fig = plotting.plot_history({"a": history, "b": history}, keys=["total"])
    assert fig.axes[0].get_legend_handles_labels()[1] == ["a: total", "b: total"]


def test_plot_history_linear_when_not_positive():
    fig = plotting.plot_history({"tv": [0.0, 1.0]})
    assert fig.axes[0].get_yscale() == "linear"
    fig = plotting.plot_history({"x": [1.0, 2.0]}, logy=False)
    assert fig.axes[0].get_yscale() == "linear"


def test_plot_history_errors():
    with pytest.raises(KeyError, match="'style'"):
        plotting.plot_history({"run": {"total": [1.0]}}, keys=["style"])
    with pytest.raises(ValueError, match="empty"):
        plotting.plot_history({"run": []})


# ---------------------------------------------------------------------------------------- heatmap


def test_heatmap_of_the_papers_gram_matrix():
    gram = np.array([[10.0, 14.0], [14.0, 20.0]])
    fig = plotting.heatmap(gram[np.newaxis], title="G")
    ax = fig.axes[0]
    assert ax.get_title() == "G"
    np.testing.assert_array_equal(ax.get_images()[0].get_array(), gram)
    assert len(fig.axes) == 2  # the panel and its colour bar


def test_heatmap_into_existing_axes_and_bad_shape():
    fig, axes = plt.subplots(1, 2)
    assert plotting.heatmap(np.eye(3), ax=axes[1], title="right") is fig
    assert axes[1].get_title() == "right"
    with pytest.raises(TypeError, match="Invalid shape"):  # imshow's own check
        plotting.heatmap(np.zeros(3))


# --------------------------------------------------------------------------------------- save_gif


def test_save_gif_round_trip(tmp_path):
    frames = [np.full((6, 5, 3), v, np.float32) for v in (0.0, 0.5, 1.0)]
    path = plotting.save_gif(frames, tmp_path / "run.gif", duration_ms=80)
    assert path == tmp_path / "run.gif"
    with Image.open(path) as gif:
        assert gif.size == (5, 6)
        assert gif.n_frames == 3
        assert gif.info["duration"] == 80
    assert [p.name for p in tmp_path.iterdir()] == ["run.gif"]  # no temporary file left


def test_save_gif_errors(tmp_path):
    with pytest.raises(ValueError, match="no frames"):
        plotting.save_gif([], tmp_path / "x.gif")
    with pytest.raises(ValueError, match="different sizes"):
        plotting.save_gif([np.zeros((4, 4, 3)), np.zeros((5, 4, 3))], tmp_path / "x.gif")
    assert not list(tmp_path.iterdir())


# ---------------------------------------------------------------------------------------- widgets


class _FakeKernel:
    def __init__(self, allow_stdin: bool) -> None:
        self._parent = {"content": {"allow_stdin": allow_stdin}}

    def get_parent(self, channel: str = "shell") -> dict:
        return self._parent


def _draw(alpha: float, beta: float = 1.0):
    return plotting.heatmap([[alpha, beta]], title=f"alpha={alpha:g} beta={beta:g}")


def test_static_outside_a_kernel(monkeypatch):
    monkeypatch.delenv(widgets.ENV_VAR, raising=False)
    assert not widgets.is_live_frontend()  # pytest runs no IPython kernel
    fig = widgets.interactive_or_static(_draw, static_values={"alpha": 2.0, "beta": 3.0}, alpha=(0.0, 5.0, 0.5))
    assert fig.axes[0].get_title() == "alpha=2 beta=3"


@pytest.mark.parametrize("allow_stdin, env, live", [
    (True, None, True),     # JupyterLab / VS Code / Colab: input() allowed
    (False, None, False),   # papermill (nbclient) and nbval send allow_stdin=False
    (True, "1", False),     # forced static
    (False, "0", True),     # forced live
])
def test_detection_rules(monkeypatch, allow_stdin, env, live):
    monkeypatch.setattr("IPython.get_ipython", lambda: SimpleNamespace(kernel=_FakeKernel(allow_stdin)))
    if env is None:
        monkeypatch.delenv(widgets.ENV_VAR, raising=False)
    else:
        monkeypatch.setenv(widgets.ENV_VAR, env)
    assert widgets.is_live_frontend() is live


def test_forced_static_env_wins_without_kernel(monkeypatch):
    monkeypatch.setenv(widgets.ENV_VAR, "0")
    assert not widgets.is_live_frontend()  # no kernel: nothing could show a widget


def test_live_mode_builds_sliders_and_redraws_the_figure_in_place(monkeypatch):
    ipywidgets = pytest.importorskip("ipywidgets")
    from matplotlib.figure import Figure

    monkeypatch.setattr("IPython.get_ipython", lambda: SimpleNamespace(kernel=_FakeKernel(True)))
    monkeypatch.delenv(widgets.ENV_VAR, raising=False)
    shown, updates = [], []

    class Handle:
        def update(self, obj, **kw):
            updates.append(obj)

    def display(*objs, **kw):
        shown.extend(objs)
        return Handle() if kw.get("display_id") else None

    monkeypatch.setattr("IPython.display.display", display)
    box = widgets.interactive_or_static(_draw, static_values={"alpha": 2.0, "beta": 3.0}, alpha=(0.0, 5.0, 0.5))
    assert isinstance(box, ipywidgets.VBox)
    controls, figure = shown
    assert "application/vnd.jupyter.widget-view+json" in controls and "text/plain" not in controls
    assert isinstance(figure, Figure)  # an ordinary output: a saved notebook keeps it
    slider = box.children[0]
    assert slider.value == 2.0 and slider.continuous_update is False
    slider.value = 4.0
    assert len(updates) == 1 and isinstance(updates[0], Figure)


def test_static_values_must_cover_every_slider():
    with pytest.raises(ValueError, match=r"\['beta'\]"):
        widgets.interactive_or_static(_draw, static_values={"alpha": 1.0}, alpha=(0.0, 1.0), beta=(0.0, 1.0))
