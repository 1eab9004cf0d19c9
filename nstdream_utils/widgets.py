"""Sliders in a live notebook, one static figure everywhere else (papermill, nbval, nbconvert, scripts)."""

import os
from collections.abc import Callable, Mapping
from typing import Any

ENV_VAR = "NSTDREAM_STATIC_WIDGETS"


def is_live_frontend() -> bool:
    """Whether a person can move widgets now; first match wins: ``NSTDREAM_STATIC_WIDGETS`` = 1/true/yes/on or no
    IPython kernel → False; 0/false/no/off → True; else whether the running cell's request allowed stdin
    (front ends send ``allow_stdin=True``; nbclient, so papermill, and nbval send False)."""
    from IPython import get_ipython
    choice, kernel = os.environ.get(ENV_VAR, "").strip().lower(), getattr(get_ipython(), "kernel", None)
    if choice in {"1", "true", "yes", "on"} or kernel is None:
        return False
    return choice in {"0", "false", "no", "off"} or bool(kernel.get_parent().get("content", {}).get("allow_stdin"))


def interactive_or_static(fn: Callable[..., Any], *, static_values: Mapping[str, Any], **widget_kwargs):
    """Sliders (``(min, max, step)`` or a list of choices) that redraw the figure ``fn(**values)`` on release in a
    live notebook; elsewhere just ``fn(**static_values)`` (a value per slider, plus fixed arguments). Returns the
    figure or, live, the controls (the figure below them is redrawn in place). ValueError: a slider without a value."""
    if missing := [name for name in widget_kwargs if name not in static_values]:
        raise ValueError(f"static_values has no value for {missing}; the static figure needs one per slider")
    if not is_live_frontend():
        return fn(**static_values)

    import ipywidgets
    import matplotlib.pyplot as plt
    from IPython.display import display
    controls = {name: ipywidgets.interactive.widget_from_abbrev(abbrev) for name, abbrev in widget_kwargs.items()}

    def redraw(change):
        handle.update(fn(**{**static_values, **{name: widget.value for name, widget in controls.items()}}))
        plt.close()

    for name, widget in controls.items():
        widget.continuous_update = False
        widget.description = name
        widget.value = static_values[name]
        widget.observe(redraw, names="value")
    box = ipywidgets.VBox(list(controls.values()))
    bundle = box._repr_mimebundle_()
    del bundle["text/plain"]  # nbval skips widget views: a saved live notebook compares equal
    display(bundle, raw=True)
    handle = display(fn(**static_values), display_id=True)
    plt.close()
    return box
