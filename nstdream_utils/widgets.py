"""Sliders in a live notebook, one static figure everywhere else (papermill, nbval, nbconvert, scripts).

The static figure is what the committed notebook, the HTML report and nbval see. :func:`is_live_frontend`
decides, first match wins: ``NSTDREAM_STATIC_WIDGETS`` = 1/true/yes/on → static; ipywidgets missing or no
IPython kernel → static; the variable = 0/false/no/off → live; else live only if the running cell's request
allowed stdin (front ends send ``allow_stdin=True``; nbclient, so papermill, and nbval send False).
Taught in notebook 02 (the α/β sliders).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

ENV_VAR = "NSTDREAM_STATIC_WIDGETS"


def _kernel():
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    return getattr(get_ipython(), "kernel", None)


def is_live_frontend() -> bool:
    """True when a person can see and move widgets now (see the module docstring)."""
    choice = os.environ.get(ENV_VAR, "").strip().lower()
    if choice in {"1", "true", "yes", "on"}:
        return False
    try:
        import ipywidgets  # noqa: F401
    except ImportError:
        return False
    kernel = _kernel()
    if kernel is None:
        return False
    if choice in {"0", "false", "no", "off"}:
        return True
    try:
        parent = kernel.get_parent()  # ipykernel ≥ 6
        content = parent.get("content", {}) if isinstance(parent, Mapping) else {}
        if "allow_stdin" in content:
            return bool(content["allow_stdin"])
    except Exception:  # noqa: BLE001 — older ipykernel, or not inside a request
        pass
    return bool(getattr(kernel, "_allow_stdin", False))


def interactive_or_static(fn: Callable[..., Any], *, static_values: Mapping[str, Any], **widget_kwargs):
    """Sliders that redraw ``fn(**values)`` (a quick figure) in a live notebook; elsewhere ``fn(**static_values)``.

    ``widget_kwargs``: ipywidgets abbreviations, ``(min, max, step)`` → slider, a list → dropdown, or widgets,
    updated on release; ``static_values`` needs one for each (other names are fixed arguments). Returns the
    figure (end the cell with ``plt.show()``), or, live, the displayed controls with the figure below them as
    an ordinary output redrawn in place. ValueError for a slider without a static value or an abbreviation
    ipywidgets cannot read; TypeError if ``static_values`` is not a dict.
    """
    if not isinstance(static_values, Mapping):
        raise TypeError(f"static_values must be a dict of argument values, got {type(static_values).__name__}")
    missing = [name for name in widget_kwargs if name not in static_values]
    if missing:
        raise ValueError(f"static_values has no value for {missing}; give every slider a static value "
                         "so papermill, nbval and the HTML report can draw the figure")
    if not is_live_frontend():
        return fn(**static_values)

    import ipywidgets
    import matplotlib.pyplot as plt
    from IPython.display import display

    controls = {}
    for name, abbrev in widget_kwargs.items():
        widget = abbrev if isinstance(abbrev, ipywidgets.Widget) else ipywidgets.interactive.widget_from_abbrev(abbrev)
        if widget is None:
            raise ValueError(f"cannot make a widget for {name}={abbrev!r}; pass a (min, max, step) tuple, "
                             "a list of choices, or an ipywidgets widget")
        if hasattr(widget, "continuous_update"):
            widget.continuous_update = False
        widget.description = widget.description or name
        widget.value = static_values[name]
        controls[name] = widget
    box = ipywidgets.VBox(list(controls.values()))
    bundle = dict(box._repr_mimebundle_())
    bundle.pop("text/plain", None)  # nbval skips widget views: a saved live notebook compares equal
    display(bundle, raw=True)
    figure = fn(**static_values)
    handle = display(figure, display_id=True)
    plt.close(figure)
    fixed = {k: v for k, v in static_values.items() if k not in widget_kwargs}

    def redraw(change=None):
        figure = fn(**fixed, **{name: widget.value for name, widget in controls.items()})
        handle.update(figure)
        plt.close(figure)

    for widget in controls.values():
        widget.observe(redraw, names="value")
    return box
