"""Checkpoints and the L-BFGS loops of ``nst.style_transfer`` (same arguments and result as its gradient loop)."""

import dataclasses
import io
import json
import os
from pathlib import Path

import numpy as np
import scipy.optimize
import tensorflow as tf

from . import files
from ._loop import Recorder, Stop
from .errors import InputError
from .presets import NSTConfig


class Checkpoint:
    """A gradient loop's variables, optimiser state, history and config in a ``.npz``, saved every ``every`` steps."""

    def __init__(self, path: str | os.PathLike, every: int = 500) -> None:
        if not isinstance(every, int) or every < 1:
            raise InputError(f"checkpoint_every must be an int ≥ 1, got {every!r}", where="checkpoint_every")
        self.path, self.every, self.saved_at = Path(path), every, 0

    def restore(self, cfg: NSTConfig, variables: dict, optimizer, recorder: Recorder) -> int:
        """Attach to a loop's state and load the saved one into it, if any; the steps already done."""
        self.recorder, self.state = recorder, {**{f"var_{name}": v for name, v in variables.items()},
                                               **{f"opt_{i}": v for i, v in enumerate(optimizer.variables)}}
        # the configuration it is saved with and must match to resume: cfg but its num_steps (a run may go longer)
        self.config = json.dumps(files.to_jsonable({**dataclasses.asdict(cfg), "num_steps": None}), sort_keys=True)
        if self.path.is_file():
            with np.load(self.path, allow_pickle=False) as saved:
                if str(saved["config"]) != self.config:
                    raise InputError("the checkpoint was made with another configuration", where=str(self.path),
                                     fix="delete it to start again, or use the configuration it was made with")
                for key, variable in self.state.items():
                    variable.assign(saved[key])
                recorder.resume(json.loads(str(saved["history"])))
        self.saved_at = recorder.steps_done
        return self.saved_at

    def maybe_save(self) -> None:
        """Save atomically when ``every`` steps have passed since the last save."""
        if self.recorder.steps_done - self.saved_at >= self.every:
            buffer = io.BytesIO()
            np.savez(buffer, config=self.config, history=json.dumps(self.recorder.history),
                     **{key: v.numpy() for key, v in self.state.items()})
            files.atomic_write_bytes(buffer.getvalue(), self.path)
            self.saved_at = self.recorder.steps_done


def _record(recorder: Recorder, terms, cfg: NSTConfig, should_stop, image_ok: bool = True) -> None:
    """Record one iterate; Stop once ``cfg.num_steps`` are recorded, or when ``should_stop()``."""
    recorder.record([terms], image_ok=image_ok,
                    frame=bool(recorder.frame_every) and recorder.steps_done % recorder.frame_every == 0)
    if recorder.steps_done >= cfg.num_steps:
        raise Stop("completed")
    if should_stop is not None and should_stop():
        raise Stop("interrupted")


def lbfgs_loop(loss_fn, x0: np.ndarray, cfg: NSTConfig, recorder: Recorder, should_stop=None) -> np.ndarray:
    """scipy's L-BFGS-B, memory 20, in the box ``[0, pixel_scale]`` when ``cfg.clip``."""
    shape, current, evaluated = x0.shape, {"x": x0.ravel().astype(np.float64)}, {}
    recorder.get_image = lambda: (current["x"].reshape(shape)[0] / cfg.pixel_scale).astype(np.float32)
    value_and_grad = tf.function(loss_fn.value_and_gradient, input_signature=[tf.TensorSpec(shape, tf.float32)])

    def fun(flat: np.ndarray):
        terms, grad = value_and_grad(tf.constant(flat.reshape(shape), tf.float32))
        evaluated["x"], evaluated["terms"] = flat.copy(), {k: float(v) for k, v in terms.items()}
        return evaluated["terms"]["total"], grad.numpy().ravel().astype(np.float64)

    def on_iterate(xk) -> None:
        x = np.asarray(getattr(xk, "x", xk))
        if not np.array_equal(evaluated.get("x"), x):
            fun(x)
        current["x"] = x.copy()
        _record(recorder, evaluated["terms"], cfg, should_stop, image_ok=bool(np.isfinite(x).all()))

    def iterate():
        on_iterate(current["x"])  # the initial image is iteration 0
        n = current["x"].size  # bounds as arrays: a list of n pairs is converted pixel by pixel
        bounds = scipy.optimize.Bounds(np.zeros(n), np.full(n, float(cfg.pixel_scale))) if cfg.clip else None
        scipy.optimize.minimize(fun, current["x"], jac=True, method="L-BFGS-B", bounds=bounds,
                                callback=on_iterate, options={"maxiter": cfg.num_steps, "maxcor": 20})

    recorder.run(iterate)
    return recorder.get_image()


LBFGS_TF_MEMORY = 10  # (s, y) pairs kept by lbfgs_tf_loop: 2·m·n float32 (1 GiB at 2048² with m = 10)


def lbfgs_direction(g: tf.Tensor, free: tf.Tensor, pairs: list, first_scale: float) -> tf.Tensor:
    """The two-loop recursion's ``-H·g`` on the ``free`` (1) pixels; ``pairs``: ``(s, y, 1 / sᵀy)``, oldest first."""
    q = g * free
    alphas = []
    for s, y, rho in reversed(pairs):
        alphas.append(rho * tf.reduce_sum(s * q))
        q -= alphas[-1] * y
    if pairs:
        s, y, _ = pairs[-1]
        r = q * (tf.reduce_sum(s * y) / tf.reduce_sum(y * y))
    else:
        r = q * (first_scale / (tf.reduce_max(tf.abs(q)) + 1e-30))
    for (s, y, rho), a in zip(pairs, reversed(alphas)):
        r += s * (a - rho * tf.reduce_sum(y * r))
    return -r * free


def lbfgs_tf_loop(loss_fn, x0: np.ndarray, cfg: NSTConfig, recorder: Recorder, should_stop=None, *,
                  memory: int = LBFGS_TF_MEMORY) -> np.ndarray:
    """L-BFGS in TensorFlow: pixels pushed out of the box frozen, trial points clipped, Armijo backtracking."""
    shape, first_step = x0.shape, 0.05 * cfg.pixel_scale
    low, high = (0.0, float(cfg.pixel_scale)) if cfg.clip else (-np.inf, np.inf)
    spec = tf.TensorSpec(shape, tf.float32)
    value_and_grad = tf.function(loss_fn.value_and_gradient, input_signature=[spec])

    @tf.function(input_signature=[spec, spec])
    def free_mask(x, g):
        pinned = tf.logical_or(tf.logical_and(x <= low, g > 0), tf.logical_and(x >= high, g < 0))
        return tf.cast(tf.logical_not(pinned), tf.float32)

    state = {"x": tf.constant(x0, tf.float32)}
    recorder.get_image = lambda: state["x"].numpy()[0] / cfg.pixel_scale

    def iterate():
        terms, g = value_and_grad(state["x"])
        f, pairs = float(terms["total"]), []
        _record(recorder, terms, cfg, should_stop)
        while True:
            x = state["x"]
            free = free_mask(x, g)
            d = lbfgs_direction(g, free, pairs, first_step)
            if not float(tf.reduce_sum(g * d)) < 0:  # not a descent direction: restart from the gradient
                pairs.clear()
                d = lbfgs_direction(g, free, pairs, first_step)
            t = 1.0
            for _ in range(20):
                x_new = tf.clip_by_value(x + t * d, low, high) if cfg.clip else x + t * d
                terms_new, g_new = value_and_grad(x_new)
                f_new = float(terms_new["total"])
                if np.isfinite(f_new) and f_new <= f + 1e-4 * float(tf.reduce_sum(g * (x_new - x))):
                    break
                t *= 0.5
            else:
                return  # no decrease along the direction: converged as far as float32 allows
            s, y = x_new - x, g_new - g
            sy = float(tf.reduce_sum(s * y))
            if sy > 1e-10 * float(tf.reduce_sum(y * y)):
                pairs = (pairs + [(s, y, 1.0 / sy)])[-memory:]
            state["x"], g, f = x_new, g_new, f_new
            _record(recorder, terms_new, cfg, should_stop)

    recorder.run(iterate)
    return recorder.get_image()
