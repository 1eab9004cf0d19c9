"""Bookkeeping of the NST and DeepDream loops: history, progress bar, log lines, frames, the NaN guard."""

import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from .errors import NonFiniteLossError

SYNC_EVERY = 10


class Stop(Exception):
    """Ends a :meth:`Recorder.run`; ``args[0]``: the status."""


@dataclass
class RunResult:
    """``image`` float32 ``[H, W, 3]`` in [0, 1], per-step ``history``, ``config``, ``frames`` and ``status``."""
    main_key: ClassVar[str] = "loss"
    image: np.ndarray
    history: dict[str, list[float]]
    config: Any
    frames: list[np.ndarray] = field(default_factory=list)
    status: str = "completed"

    @property
    def final_loss(self) -> float:
        return self.history[self.main_key][-1]


class Recorder:
    """A run's history (each step's losses before its update), bar, log lines, frames, callback and NaN guard."""

    def __init__(self, *, num_steps: int, get_image: Callable[[], np.ndarray], progress: bool = True,
                 desc: str = "", log_every: int = 0, frame_every: int = 0, callback=None,
                 main_key: str = "total", step_offset: int = 0) -> None:
        from tqdm.auto import tqdm
        self.history, self.frames = {}, []
        self.get_image, self.main_key, self.callback = get_image, main_key, callback
        self.log_every, self.frame_every, self.step_offset = log_every, frame_every, step_offset
        self.last_good, self.status, self._handle, self._start = get_image(), "running", None, time.perf_counter()
        # tqdm.auto imported tqdm.notebook only if it picked the ipywidgets bar: no widget import elsewhere
        notebook = sys.modules.get("tqdm.notebook")
        widget = progress and notebook is not None and issubclass(tqdm, notebook.tqdm)  # a live notebook's bar
        self._bar = tqdm(total=num_steps, desc=desc, disable=not progress, leave=False,
                         **({"display": False} if widget else {}))
        if widget:
            from IPython.display import display
            bundle = dict(self._bar.container._repr_mimebundle_())
            bundle.pop("text/plain", None)  # nbval skips widget views: nothing to compare with a batch run
            self._handle = display(bundle, raw=True, display_id=True)

    def resume(self, history: dict[str, list[float]]) -> None:
        """Go on from a saved ``history``: steps, clock and progress bar."""
        self.history.update(history)
        self._start = time.perf_counter() - (self.history.get("seconds") or [0.0])[-1]
        self._bar.update(self.steps_done)

    @property
    def steps_done(self) -> int:
        return len(self.history.get(self.main_key, []))

    def record(self, losses_per_step: list[dict], *, image_ok: bool = True, frame: bool = False) -> None:
        """Append the steps' losses; keep the image (and a frame); NonFiniteLossError for a NaN/Inf loss or image."""
        seconds = time.perf_counter() - self._start
        for losses in losses_per_step:
            values = {k: float(v) for k, v in losses.items()}
            for k, v in {**values, "seconds": seconds}.items():
                self.history.setdefault(k, []).append(v)
            step = self.step_offset + self.steps_done - 1
            if not all(math.isfinite(v) for v in values.values()):
                self._blown_up(f"the loss became {values[self.main_key]} (not finite)", step, " or the loss weights")
            if self.log_every and step % self.log_every == 0:
                print(f"step {step:>5} | loss {values[self.main_key]:.4e}")
        if not image_ok:
            self._blown_up("the image became NaN/Inf", self.step_offset + self.steps_done)
        self.last_good = self.get_image()
        if frame:
            self.frames.append(self.last_good.copy())
        self._bar.update(len(losses_per_step))
        self._bar.set_postfix_str(f"loss {self.history[self.main_key][-1]:.4g}")
        if self.callback is not None:
            self.callback(self.step_offset + self.steps_done, {k: v[-1] for k, v in self.history.items()},
                          self.last_good)

    def _blown_up(self, what: str, step: int, also: str = "") -> None:
        raise NonFiniteLossError(what, step=step, last_image=self.last_good, history=self.history,
                                 fix=f"lower the learning rate (--lr){also}")

    def run(self, iterate: Callable[[], Any]) -> None:
        """``iterate()``, then the bar closed: ``"completed"``, a :class:`Stop`'s status, or ``"interrupted"``."""
        status = "interrupted"
        try:
            iterate()
            status = "completed"
        except (Stop, KeyboardInterrupt) as stop:  # Ctrl-C: interrupted
            status = stop.args[0] if isinstance(stop, Stop) else status
        finally:
            self.close(status)

    def close(self, status: str | None = None) -> None:
        """Close the progress bar, leaving an empty widget view in a notebook; set the final status if given."""
        self.status = status or self.status
        self._bar.close()
        if self._handle is not None:
            self._handle.update({"application/vnd.jupyter.widget-view+json":
                                 {"version_major": 2, "version_minor": 0, "model_id": ""}}, raw=True)
            self._handle = None


def run_steps(step: Callable[[int], dict], recorder: Recorder, *, num_steps: int, image_ok: Callable[[], bool],
              should_stop: Callable[[], bool] | None = None, on_sync: Callable[[], None] | None = None) -> None:
    """``step(i)`` for i < ``num_steps`` in a :meth:`Recorder.run`, recorded every :data:`SYNC_EVERY` steps."""
    pending: list[dict] = []
    try:
        for i in range(num_steps):
            if should_stop is not None and should_stop():
                raise Stop("interrupted")
            pending.append(step(i))
            frame = bool(recorder.frame_every) and (i % recorder.frame_every == 0 or i == num_steps - 1)
            if (i + 1) % SYNC_EVERY == 0 or i == num_steps - 1 or frame or \
                    (recorder.log_every and i % recorder.log_every == 0):
                done, pending = pending, []
                recorder.record(done, image_ok=image_ok(), frame=frame)
                if on_sync is not None:
                    on_sync()
    except (KeyboardInterrupt, Stop):
        if pending:
            recorder.record(pending, image_ok=image_ok())
        raise
