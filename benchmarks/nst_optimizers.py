"""Which optimiser reaches the lowest TF-tutorial loss for the same number of VGG-19 evaluations?

    .venv/bin/python benchmarks/nst_optimizers.py --size 128 [--steps 50] [--adam-lrs 0.02,0.05,0.1,0.2]

Runs ``nst.style_transfer`` on the tutorial's loss (``presets.TF_TUTORIAL.nst``) with Adam at
several learning rates (0.02 is the tutorial's; β₁ 0.99, ε 0.1 as the tutorial) and with L-BFGS,
each for ``--steps`` steps, and prints one JSON line with each run's final loss, its number of
VGG-19 evaluations (L-BFGS's line search sometimes evaluates more than once per iteration) and
its seconds. The loss ratios do not depend on load on the machine; the seconds do.
"""

from __future__ import annotations

import argparse
import time

import common
import tf_tutorial


def main() -> None:
    parser = argparse.ArgumentParser(description="Adam (several learning rates) vs L-BFGS on the tutorial's loss.")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--adam-lrs", default="0.02,0.05,0.1,0.2")
    args = parser.parse_args()
    common.setup_env()
    from nstdream_utils import nst

    content, style, cfg = tf_tutorial.prepared_pair(args.size)
    runs = [("adam", float(lr)) for lr in args.adam_lrs.split(",")] + [("lbfgs", None)]
    results = []
    with common.counted_evaluations() as counting:
        for optimizer, lr in runs:
            counting.instances = []
            start = time.perf_counter()
            run = nst.style_transfer(content, style, config=cfg, optimizer=optimizer, learning_rate=lr,
                                     num_steps=args.steps, progress=False)
            seconds = time.perf_counter() - start
            evaluations = counting.full_size_evaluations(content.shape[0] * content.shape[1])
            final = tf_tutorial.our_loss(content, style, cfg, run.image)
            results.append({"optimizer": optimizer, "learning_rate": lr, "final_loss": final,
                            "evaluations": evaluations, "seconds": seconds})
    best_adam = min((r for r in results if r["optimizer"] == "adam"), key=lambda r: r["final_loss"])
    lbfgs = next(r for r in results if r["optimizer"] == "lbfgs")
    common.emit({"benchmark": "nst_optimizers", "size": args.size, "steps": args.steps, "runs": results,
                 "best_adam_lr": best_adam["learning_rate"],
                 "lbfgs_loss_over_best_adam_loss": lbfgs["final_loss"] / best_adam["final_loss"],
                 "initial_loss": tf_tutorial.our_loss(content, style, cfg, content),
                 "machine": common.machine()})


if __name__ == "__main__":
    main()
