"""The library's TensorFlow L-BFGS (``optimizer="lbfgs-tf"``) against scipy's L-BFGS-B (``"lbfgs"``).

    .venv/bin/python benchmarks/lbfgs_tf.py --size 128 [--reference-steps 100 | --target-loss 1.737e8]

Why: profiling ``optim.lbfgs_loop`` (scipy's L-BFGS-B) shows time that is not VGG-19 at all —
``setulb`` costs about 0.14 s per iteration at 128² and 0.25 s at 512², and turning the bounds
list of n ``(0, 1)`` tuples into arrays costs a Python loop over every pixel at the start of every
run (about 18 s at 512², minutes at 2048²), plus float64 copies of the image and gradient on each
evaluation and 2·m·n float64 of history (4 GB at 2048² with m = 20).

``optim.lbfgs_tf_loop`` (the library's
``optimizer="lbfgs-tf"``) has the signature of ``optim.lbfgs_loop`` (a drop-in replacement): the
two-loop recursion with m (s, y) pairs, box constraints by projection (variables at a bound whose
gradient points outwards are frozen for the step, and the step is clipped back into the box),
Armijo backtracking from the unit step, and a first step scaled so that no pixel moves more than
0.05 (in [0, 1] units). Everything stays float32 tensors; a few scalars per iteration (the
loss, the slope, sᵀy) come back to the host.

Run alone, it measures both optimisers on the same loss from the same start: evaluations and wall
time to reach a target loss (the tutorial's loss after ``--reference-steps`` Adam steps, or
``--target-loss``), and the loss each reaches after ``--steps`` iterations. One JSON line.
"""

from __future__ import annotations

import argparse
import time

import common
import tf_tutorial


def main() -> None:
    parser = argparse.ArgumentParser(description="The library's TensorFlow L-BFGS (lbfgs-tf) vs scipy's L-BFGS-B.")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--reference-steps", type=int, default=100, help="tutorial Adam steps giving the target")
    parser.add_argument("--target-loss", type=float, help="use this target instead of running the tutorial")
    parser.add_argument("--max-steps", type=int, default=300)
    parser.add_argument("--memory", type=int, default=10)
    parser.add_argument("--precision", default="float32", choices=("float32", "bfloat16"),
                        help="what VGG-19 computes in, for both engines (the target is judged by each run's own loss)")
    args = parser.parse_args()
    common.setup_env()
    from nst_time_to_quality import StopAtLoss

    from nstdream_utils import nst, optim, weights
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
            loss_fn = nst.NSTLoss(content, style, cfg, precision=args.precision)
            x0 = nst._initial_image(content, style, cfg, seed=0)
            recorder = Recorder(num_steps=cfg.num_steps, get_image=lambda: x0[0], progress=False,
                                callback=stop.callback, main_key="total")
            loop(loss_fn, x0, cfg, recorder, should_stop=stop.should_stop, **options)
            return {"seconds": stop.seconds, "reached": stop.seconds is not None,
                    "evaluations": counting.full_size_evaluations(content.shape[0] * content.shape[1]),
                    "iterations": len(recorder.history["total"]) - 1, "best_loss": stop.best,
                    "speedup": reference_seconds / stop.seconds if reference_seconds and stop.seconds else None}

    results = {}
    for name, loop, options in (("scipy", optim.lbfgs_loop, {}), ("tf", optim.lbfgs_tf_loop, {"memory": args.memory}),
                                ("scipy_again", optim.lbfgs_loop, {}), ("tf_again", optim.lbfgs_tf_loop,
                                                                       {"memory": args.memory})):
        results[name] = run(loop, **options)
    common.emit({"benchmark": "lbfgs_tf", "size": args.size, "precision": args.precision, "target_loss": target,
                 "reference_steps": None if args.target_loss else args.reference_steps,
                 "reference_seconds": reference_seconds, "runs": results,
                 "tf_over_scipy_seconds": common.median([results["tf"]["seconds"] or float("nan"),
                                                         results["tf_again"]["seconds"] or float("nan")])
                 / common.median([results["scipy"]["seconds"] or float("nan"),
                                  results["scipy_again"]["seconds"] or float("nan")]),
                 "machine": common.machine()})


if __name__ == "__main__":
    main()
