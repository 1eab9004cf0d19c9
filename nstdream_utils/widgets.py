"""Sliders in a live notebook, a static figure everywhere else.

:func:`interactive_or_static` shows ipywidgets controls that redraw a figure when a person is
looking at the notebook in a live front end (JupyterLab, Notebook 7, VS Code, Colab), and draws one
fixed figure when nobody is: under papermill, nbval, ``jupyter nbconvert --execute``, a plain
``python`` script or a terminal IPython. The static figure is what the committed notebook and the
HTML report show, and what nbval re-checks, so it must not depend on a widget.

How "live" is detected (:func:`is_live_frontend`), first match wins:

1. ``NSTDREAM_STATIC_WIDGETS`` set to ``1``/``true``/``yes`` → static; set to ``0``/``false``/``no``
   → live (when a kernel and ipywidgets are there). Use it to force either mode.
2. ipywidgets cannot be imported → static.
3. No IPython kernel (plain Python, a terminal IPython: ``get_ipython()`` is None or has no
   ``kernel``) → static: nothing could render a widget.
4. The cell being run was sent with ``allow_stdin=False`` → static. Headless executors send that:
   nbclient (so papermill and ``nbconvert --execute``) sets ``allow_stdin = False`` on its client, and
   nbval executes each cell with ``allow_stdin=False``; interactive front ends allow ``input()`` and
   send ``True``. This is read from the kernel's parent message (``kernel.get_parent()``).
5. Otherwise → live.

Floor 5: imports only the standard library at import time; IPython, ipywidgets and matplotlib
when needed; never TensorFlow.
Taught in notebook 02 (the α/β sliders).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["ENV_VAR", "is_live_frontend", "interactive_or_static"]

#: Environment variable that forces the mode: ``1`` = always static, ``0`` = live where possible.
ENV_VAR = "NSTDREAM_STATIC_WIDGETS"

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _env_choice() -> bool | None:
    """True = force static, False = force live, None = decide from the kernel."""
    value = os.environ.get(ENV_VAR, "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    return None


def _kernel():
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    shell = get_ipython()
    return getattr(shell, "kernel", None) if shell is not None else None


def _cell_allows_stdin(kernel) -> bool:
    """Whether the execute request now running allowed ``input()`` (front ends do, executors don't)."""
    try:
        parent = kernel.get_parent()  # ipykernel ≥ 6
        content = parent.get("content", {}) if isinstance(parent, Mapping) else {}
        if "allow_stdin" in content:
            return bool(content["allow_stdin"])
    except Exception:  # older ipykernel, or not inside a request
        pass
    return bool(getattr(kernel, "_allow_stdin", False))


def is_live_frontend() -> bool:
    """True when a person can see and move widgets now; see the module docstring for the rules."""
    forced_static = _env_choice()
    if forced_static is True:
        return False
    try:
        import ipywidgets  # noqa: F401
    except ImportError:
        return False
    kernel = _kernel()
    if kernel is None:
        return False
    if forced_static is False:
        return True
    return _cell_allows_stdin(kernel)


def _check_values(static_values: Mapping[str, Any], widget_kwargs: Mapping[str, Any]) -> None:
    if not isinstance(static_values, Mapping):
        raise TypeError(f"static_values must be a dict of argument values, got {type(static_values).__name__}")
    missing = [name for name in widget_kwargs if name not in static_values]
    if missing:
        raise ValueError(f"static_values has no value for {missing}; give every slider a static value "
                         "so papermill, nbval and the HTML report can draw the figure")


def _make_controls(widget_kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """Turn ipywidgets abbreviations into widgets that update on release, not on every drag step."""
    import ipywidgets

    controls = {}
    for name, abbrev in widget_kwargs.items():
        widget = abbrev if isinstance(abbrev, ipywidgets.Widget) else \
            ipywidgets.interactive.widget_from_abbrev(abbrev)
        if widget is None:
            raise ValueError(f"cannot make a widget for {name}={abbrev!r}; pass a (min, max, step) tuple, "
                             "a list of choices, or an ipywidgets widget")
        if hasattr(widget, "continuous_update"):
            widget.continuous_update = False
        widget.description = widget.description or name
        controls[name] = widget
    return controls


def interactive_or_static(fn: Callable[..., Any], *, static_values: Mapping[str, Any], **widget_kwargs):
    """Sliders that call ``fn`` in a live notebook; else ``fn(**static_values)`` once.

    Args:
        fn: draws one figure from keyword arguments and returns it (a matplotlib ``Figure``, e.g.
            from :mod:`nstdream_utils.plotting`). It should be quick (≲ a few seconds).
        static_values: the arguments for the static figure; one for every name in ``widget_kwargs``
            (extra names are passed to ``fn`` as fixed values in both modes).
        **widget_kwargs: ipywidgets abbreviations per argument: ``(min, max, step)`` → slider,
            a list → dropdown, or a widget. Sliders update on release.

    Returns:
        Static mode: the figure ``fn`` returned; end the cell with ``plt.show()`` to display it.
        Live mode: the box of controls, already displayed, with the figure below it as an ordinary
        output that each change redraws in place (so a notebook saved from the front end keeps it).

    Raises:
        ValueError: a slider without a static value, or an abbreviation ipywidgets cannot read.
        TypeError: ``static_values`` is not a dict.

    Example::

        >>> fig = interactive_or_static(lambda a: plotting.heatmap([[a]]),
        ...                             static_values={"a": 1.0}, a=(0.0, 2.0, 0.1))  # doctest: +SKIP
    """
    _check_values(static_values, widget_kwargs)
    if not is_live_frontend():
        return fn(**static_values)

    import ipywidgets
    import matplotlib.pyplot as plt
    from IPython.display import display

    fixed = {k: v for k, v in static_values.items() if k not in widget_kwargs}
    controls = _make_controls(widget_kwargs)
    for name, widget in controls.items():
        widget.value = static_values[name]
    box = ipywidgets.VBox(list(controls.values()))
    display(widget_bundle(box), raw=True)
    # The figure is an ordinary output of the cell, redrawn in place through its display id: the
    # notebook saved from the front end keeps it (image/png, "<Figure size ...>"), as in a static run.
    figure = fn(**static_values)
    handle = display(figure, display_id=True)
    plt.close(figure)

    def redraw(change=None):
        figure = fn(**fixed, **{name: widget.value for name, widget in controls.items()})
        handle.update(figure)
        plt.close(figure)

    for widget in controls.values():
        widget.observe(redraw, names="value")
    return box


def widget_bundle(widget) -> dict:
    """``widget``'s display bundle without its text/plain repr: nbval skips widget views, so a saved
    live notebook compares equal to a static run."""
    bundle = dict(widget._repr_mimebundle_())
    bundle.pop("text/plain", None)
    return bundle
