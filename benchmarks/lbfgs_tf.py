"""A prototype L-BFGS that runs in TensorFlow, against scipy's L-BFGS-B, on the TF tutorial's loss.

    .venv/bin/python benchmarks/lbfgs_tf.py --size 128 [--reference-steps 100 | --target-loss 1.737e8]

Why: profiling ``nst._lbfgs_loop`` (scipy's L-BFGS-B) shows time that is not VGG-19 at all —
``setulb`` costs about 0.14 s per iteration at 128² and 0.25 s at 512², and turning the bounds
list of n ``(0, 1)`` tuples into arrays costs a Python loop over every pixel at the start of every
run (about 18 s at 512², minutes at 2048²), plus float64 copies of the image and gradient on each
evaluation and 2·m·n float64 of history (4 GB at 2048² with m = 20).

:func:`lbfgs_tf_loop` has the signature of ``nst._lbfgs_loop`` (a drop-in replacement): the
two-loop recursion with m (s, y) pairs, box constraints by projection (variables at a bound whose
gradient points outwards are frozen for the step, and the step is clipped back into the box),
Armijo backtracking from the unit step, and a first step scaled so that no pixel moves more than
``first_step`` (in [0, 1] units). Everything stays float32 tensors; only the loss comes back to
the host, once per evaluation.

Run alone, it measures both optimisers on the same loss from the same start: evaluations and wall
time to reach a target loss (the tutorial's loss after ``--reference-steps`` Adam steps, or
``--target-loss``), and the loss each reaches after ``--steps`` iterations. One JSON line.
"""

from __future__ import annotations

import argparse
import time

import common
import tf_tutorial


def lbfgs_tf_loop(loss_fn, x0, cfg, recorder, should_stop=None, *, memory: int = 10,
                  first_step: float = 0.05, max_backtracks: int = 20):
    """L-BFGS with box constraints by projection, in TensorFlow; same contract as ``nst._lbfgs_loop``.

    Args:
        loss_fn: an ``nst.NSTLoss``; x0: float32 ``[1, H, W, 3]`` in pixel_scale units.
        cfg: the NSTConfig (``num_steps``, ``clip``, ``pixel_scale``); recorder: an ``_loop.Recorder``.
        memory: number of (s, y) pairs kept (m).
        first_step: the largest pixel change of the first step, in [0, 1] units.
        max_backtracks: halvings of the step before giving up (the run then ends, "completed").

    Returns:
        float32 ``[H, W, 3]`` in [0, 1] units: the last accepted iterate.
    """
    import numpy as np
    import tensorflow as tf

    shape = x0.shape
    low, high = (0.0, float(cfg.pixel_scale)) if cfg.clip else (-np.inf, np.inf)
    spec = tf.TensorSpec(shape, tf.float32)

    @tf.function(input_signature=[spec])
    def value_and_grad(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            terms = loss_fn(x)
        return terms, tape.gradient(terms["total"], x)

    @tf.function(input_signature=[spec, spec])
    def free_mask(x, g):  # 1 where the variable may move, 0 at a bound the gradient pushes against
        blocked = tf.logical_or(tf.logical_and(x <= low, g > 0), tf.logical_and(x >= high, g < 0))
        return tf.cast(tf.logical_not(blocked), tf.float32)

    @tf.function(input_signature=[spec, spec, tf.TensorSpec([], tf.float32)])
    def trial(x, d, t):
        return tf.clip_by_value(x + t * d, low, high) if cfg.clip else x + t * d

    def dot(a, b):
        return tf.reduce_sum(a * b)

    x = tf.constant(x0, tf.float32)
    state = {"x": x}
    recorder.get_image = lambda: state["x"].numpy()[0] / cfg.pixel_scale
    terms, g = value_and_grad(x)
    values = {k: float(v) for k, v in terms.items()}
    f = values["total"]
    pairs: list[tuple] = []
    status = "completed"
    try:
        recorder.record([values], image_ok=bool(np.isfinite(f)))
        while recorder.steps_done < cfg.num_steps:
            if should_stop is not None and should_stop():
                status = "interrupted"
                break
            free = free_mask(x, g)
            q = g * free
            alphas = []
            for s, y, rho in reversed(pairs):
                a = rho * dot(s, q)
                q = q - a * y
                alphas.append(a)
            if pairs:
                s, y, _ = pairs[-1]
                r = q * (dot(s, y) / dot(y, y))
            else:
                r = q * (first_step * cfg.pixel_scale / (tf.reduce_max(tf.abs(q)) + 1e-30))
            for (s, y, rho), a in zip(pairs, reversed(alphas)):
                r = r + s * (a - rho * dot(y, r))
            d = -r * free
            slope = float(dot(g, d))
            if not slope < 0:  # not a descent direction: forget the history, take a gradient step
                pairs.clear()
                d = -q * (first_step * cfg.pixel_scale / (float(tf.reduce_max(tf.abs(q))) + 1e-30))
            t = 1.0
            for _ in range(max_backtracks):
                x_new = trial(x, d, tf.constant(t, tf.float32))
                terms_new, g_new = value_and_grad(x_new)
                f_new = float(terms_new["total"])
                if np.isfinite(f_new) and f_new <= f + 1e-4 * float(dot(g, x_new - x)):
                    break
                t *= 0.5
            else:
                break  # no decrease along the direction: converged as far as float32 allows
            s, y = x_new - x, g_new - g
            sy = float(dot(s, y))
            if sy > 1e-10 * float(dot(y, y)):
                pairs.append((s, y, 1.0 / sy))
                del pairs[:-memory]
            x, g, f = x_new, g_new, f_new
            state["x"] = x
            recorder.record([{k: float(v) for k, v in terms_new.items()}], image_ok=True)
            if recorder.wants_frame(recorder.steps_done - 1):
                recorder.keep_frame()
    except KeyboardInterrupt:
        status = "interrupted"
    finally:
        recorder.close(status)
    return recorder.get_image()


def main() -> None:
    parser = argparse.ArgumentParser(description="TensorFlow L-BFGS prototype vs scipy's L-BFGS-B.")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--reference-steps", type=int, default=100, help="tutorial Adam steps giving the target")
    parser.add_argument("--target-loss", type=float, help="use this target instead of running the tutorial")
    parser.add_argument("--max-steps", type=int, default=300)
    parser.add_argument("--memory", type=int, default=10)
    args = parser.parse_args()
    common.setup_env()
    from nst_time_to_quality import StopAtLoss

    from nstdream_utils import nst, weights
    from nstdream_utils._loop import Recorder

    content, style, cfg = tf_tutorial.prepared_pair(args.size)
    cfg = cfg.replace(optimizer="lbfgs", num_steps=args.max_steps)
    target, reference_seconds = args.target_loss, None
    if target is None:
        tutorial = tf_tutorial.Tutorial(content, style, str(weights.resolve("vgg19")))
        start = time.perf_counter()
        tutorial.step(args.reference_steps)
        reference_seconds = time.perf_counter() - start
        target = tutorial.loss()
        del tutorial

    def run(loop, **options):
        with common.counted_evaluations() as counting:
            stop = StopAtLoss(target)
            loss_fn = nst.NSTLoss(content, style, cfg)
            x0 = nst._initial_image(content, style, cfg, seed=0)
            recorder = Recorder(num_steps=cfg.num_steps, get_image=lambda: x0[0], progress=False,
                                callback=stop.callback, main_key="total")
            loop(loss_fn, x0, cfg, recorder, should_stop=stop.should_stop, **options)
            return {"seconds": stop.seconds, "reached": stop.seconds is not None,
                    "evaluations": counting.full_size_evaluations(content.shape[0] * content.shape[1]),
                    "iterations": len(recorder.history["total"]) - 1, "best_loss": stop.best,
                    "speedup": reference_seconds / stop.seconds if reference_seconds and stop.seconds else None}

    results = {}
    for name, loop, options in (("scipy", nst._lbfgs_loop, {}), ("tf", lbfgs_tf_loop, {"memory": args.memory}),
                                ("scipy_again", nst._lbfgs_loop, {}), ("tf_again", lbfgs_tf_loop,
                                                                       {"memory": args.memory})):
        results[name] = run(loop, **options)
    common.emit({"benchmark": "lbfgs_tf", "size": args.size, "target_loss": target,
                 "reference_steps": None if args.target_loss else args.reference_steps,
                 "reference_seconds": reference_seconds, "runs": results,
                 "tf_over_scipy_seconds": common.median([results["tf"]["seconds"] or float("nan"),
                                                         results["tf_again"]["seconds"] or float("nan")])
                 / common.median([results["scipy"]["seconds"] or float("nan"),
                                  results["scipy_again"]["seconds"] or float("nan")]),
                 "machine": common.machine()})


if __name__ == "__main__":
    main()
