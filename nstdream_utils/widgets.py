"""Sliders in a live notebook, one static figure everywhere else (papermill, nbval, nbconvert, scripts).

:func:`is_live_frontend` decides, first match wins: ``NSTDREAM_STATIC_WIDGETS`` = 1/true/yes/on, or no IPython
kernel → static; the variable = 0/false/no/off → live; else live only if the running cell's request allowed
stdin (front ends send ``allow_stdin=True``; nbclient, so papermill, and nbval send False).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

ENV_VAR = "NSTDREAM_STATIC_WIDGETS"


def _kernel():
    from IPython import get_ipython

    return getattr(get_ipython(), "kernel", None)


def is_live_frontend() -> bool:
    """True when a person can see and move widgets now (see the module docstring)."""
    choice = os.environ.get(ENV_VAR, "").strip().lower()
    kernel = _kernel()
    if choice in {"1", "true", "yes", "on"} or kernel is None:
        return False
    return choice in {"0", "false", "no", "off"} or bool(kernel.get_parent().get("content", {}).get("allow_stdin"))


def interactive_or_static(fn: Callable[..., Any], *, static_values: Mapping[str, Any], **widget_kwargs):
    """Sliders (``(min, max, step)`` or a list of choices) that redraw the figure ``fn(**values)`` on release
    in a live notebook; elsewhere just ``fn(**static_values)`` (a value per slider, plus fixed arguments). Returns
    the figure or, live, the controls (the figure below them, an ordinary output, is redrawn in place). ValueError
    for a slider without a static value or one ipywidgets cannot make; TypeError for non-dict ``static_values``."""
    if not isinstance(static_values, Mapping):
        raise TypeError(f"static_values must be a dict of argument values, got {type(static_values).__name__}")
    missing = [name for name in widget_kwargs if name not in static_values]
    if missing:
        raise ValueError(f"static_values has no value for {missing}; the static figure needs one per slider")
    if not is_live_frontend():
        return fn(**static_values)

    import ipywidgets
    import matplotlib.pyplot as plt
    from IPython.display import display

    controls = {name: ipywidgets.interactive.widget_from_abbrev(abbrev) for name, abbrev in widget_kwargs.items()}
    for name, widget in controls.items():
        if widget is None:
            raise ValueError(f"cannot make a widget for {name}={widget_kwargs[name]!r}; pass (min, max, step) or a list")
        widget.continuous_update = False
        widget.description = name
        widget.value = static_values[name]
    box = ipywidgets.VBox(list(controls.values()))
    bundle = box._repr_mimebundle_()
    del bundle["text/plain"]  # nbval skips widget views: a saved live notebook compares equal
    display(bundle, raw=True)
    handle = display(fn(**static_values), display_id=True)
    plt.close()

    def redraw(change):
        handle.update(fn(**{**static_values, **{name: widget.value for name, widget in controls.items()}}))
        plt.close()

    for widget in controls.values():
        widget.observe(redraw, names="value")
    return box
