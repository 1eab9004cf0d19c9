"""Which optimiser should the ``quick`` preset use? SGD (keras-io's recipe) against L-BFGS, same loss.

    .venv/bin/python benchmarks/nst_quick_default.py [--size 128] [--steps 100]
        [--pairs astronaut:triangle,chelsea:stripes,coffee:noise,portrait:sine_stripes] [--figure F.png]

For each content:style pair (the names of ``data/content`` and ``data/styles``, plus
``nst_stress.py``'s ``portrait`` photo and generated styles), runs the paper preset's losses at
``--size`` (longest side, aspect kept) for ``--steps`` steps twice: with SGD (keras-io's schedule,
lr 10 scaled by H·W/224², no guard) and with L-BFGS (``"lbfgs"``, no
learning rate). Both histories carry elapsed seconds, so the line reports, per pair:

* ``sgd_final`` and ``sgd_seconds``: SGD's last loss and its wall time;
* ``lbfgs_at_sgd_seconds``: L-BFGS's loss at the last iteration done within SGD's wall time (the
  loss each reached in the same wall time; None if L-BFGS's first iteration came later);
* ``lbfgs_final``, ``lbfgs_seconds``, ``lbfgs_evaluations`` (VGG-19 evaluations: the line search
  may evaluate more than once per iteration), and whether either history rose above its start.

The seconds are the histories' (from the start of the loop: tracing included, building VGG-19 and
the targets not); the machine's load moves them, the losses at a given step do not. ``--figure``
also saves the images side by side: per pair, the photo, the style, SGD's and L-BFGS's result.
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import common
import nst_stress


def main() -> None:
    parser = argparse.ArgumentParser(description="quick preset: SGD vs L-BFGS on the same loss and wall time.")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--pairs", default="astronaut:triangle,chelsea:stripes,coffee:noise,portrait:sine_stripes")
    parser.add_argument("--figure", help="save the photos, styles and both results as one PNG here")
    args = parser.parse_args()
    common.setup_env()
    from nstdream_utils import nst, presets
    from nstdream_utils.errors import NonFiniteLossError

    photos, styles = nst_stress.photos(), nst_stress.styles()
    base = dataclasses.replace(presets.PAPER.nst, square=False, sgd_guard_factor=None,
                               learning_rate=nst_stress.SGD_BASELINE_LR)
    pairs, panels, titles = {}, [], []
    with common.counted_evaluations() as counting:
        for pair in args.pairs.split(","):
            photo, style = pair.split(":")
            row = {}
            panels += [photos[photo], styles[style]]
            titles += [photo, style]
            for optimizer in ("sgd", "lbfgs"):
                counting.instances = []
                start = time.perf_counter()
                try:
                    run = nst.style_transfer(photos[photo], styles[style], config=base, optimizer=optimizer,
                                             size=args.size, num_steps=args.steps, progress=False)
                    total, seconds = run.history["total"], run.history["seconds"]
                    panels.append(run.image)
                except NonFiniteLossError as error:
                    total, seconds = error.history["total"], error.history["seconds"]
                    panels.append(photos[photo] * 0)
                titles.append(f"{'SGD' if optimizer == 'sgd' else 'L-BFGS'}, {len(total)} steps: {total[-1]:.3g}")
                row[optimizer] = {"first": total[0], "final": total[-1], "steps": len(total),
                                  "rose": not max(total) <= total[0],
                                  "wall": time.perf_counter() - start, "history": list(zip(seconds, total)),
                                  "evaluations": counting.full_size_evaluations(counting.instances[0].pixels)}
            sgd_seconds = row["sgd"]["history"][-1][0]
            within = [loss for sec, loss in row["lbfgs"]["history"] if sec <= sgd_seconds]
            pairs[pair] = {"first": row["sgd"]["first"], "sgd_final": row["sgd"]["final"],
                           "sgd_seconds": sgd_seconds, "sgd_rose": row["sgd"]["rose"],
                           "lbfgs_at_sgd_seconds": within[-1] if within else None,
                           "lbfgs_final": row["lbfgs"]["final"], "lbfgs_seconds": row["lbfgs"]["history"][-1][0],
                           "lbfgs_steps": row["lbfgs"]["steps"], "lbfgs_evaluations": row["lbfgs"]["evaluations"],
                           "lbfgs_rose": row["lbfgs"]["rose"]}
    machine = common.machine()
    if args.figure:
        from nstdream_utils import plotting

        fig = plotting.show_images(panels, titles, ncols=4, size=2.6)
        made = f"benchmarks/nst_quick_default.py --size {args.size} --steps {args.steps} at {common.commit()}"
        fig.savefig(args.figure, bbox_inches="tight", metadata={"Description": f"{made} on {machine['cpu']}"})
    common.emit({"benchmark": "nst_quick_default", **machine, "size": args.size, "steps": args.steps,
                 "pairs": pairs})


if __name__ == "__main__":
    main()
