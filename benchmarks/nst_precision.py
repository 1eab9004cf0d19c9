"""float32 vs bfloat16 (or float16) on this CPU: seconds per NST evaluation, and the loss L-BFGS reaches.

    .venv/bin/python benchmarks/nst_precision.py --size 256 [--steps 30] [--precisions bfloat16,float16]

Keras' ``mixed_bfloat16`` policy runs VGG-19 in bfloat16 (the losses stay float32, as
``models.FeatureExtractor`` casts its outputs); CPUs with AVX512-BF16 or AMX run bfloat16
convolutions about twice as fast, and CPUs without them emulate bfloat16, several times slower
(``device.slow_precision`` says which this CPU is). ``mixed_float16`` likewise. A policy is
global to a process, so each runs in a subprocess (this file with ``--child``):

1. each low-precision child times the value-and-gradient of the TF tutorial's loss (CPU seconds,
   median of ``--repeats``), runs ``--steps`` L-BFGS steps and saves its image;
2. the float32 child does the same, and also evaluates, **in float32**, the loss of each
   low-precision run's image — so all images are judged by the same (exact) loss.

Prints one JSON line: for each precision, ``speedup_cpu`` (float32 CPU seconds per evaluation ÷
its own; < 1 means slower than float32), ``loss_ratio`` (float32 loss of its result ÷ that of the
float32 result; < 1 means it did better), the relative error of its loss on the content image and
``native`` (whether this CPU has its instructions); the first precision's ``speedup_cpu`` and
``loss_ratio`` also at the top level.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import common


def child(args) -> None:
    common.setup_env()
    import keras
    import numpy as np
    import tensorflow as tf

    if args.policy != "float32":
        keras.mixed_precision.set_global_policy(args.policy)
    import tf_tutorial

    from nstdream_utils import nst

    content, style, cfg = tf_tutorial.prepared_pair(args.size)
    loss_fn = nst.NSTLoss(content, style, cfg)
    x0 = tf.constant(content[np.newaxis])

    value_and_grad = tf.function(loss_fn.value_and_gradient)  # the library's: loss-scaled in float16

    value_and_grad(x0)
    cpu = []
    for _ in range(args.repeats):
        c = time.process_time()
        terms, grad = value_and_grad(x0)
        total = terms["total"]
        grad.numpy()
        cpu.append(time.process_time() - c)
    result = nst.style_transfer(content, style, config=cfg, optimizer="lbfgs", num_steps=args.steps, progress=False)
    np.save(args.out, result.image)
    record = {"policy": args.policy, "cpu_s_per_evaluation": common.median(cpu),
              "loss_content_image": float(total), "own_final_loss": result.final_loss}
    if args.judge:
        record["float32_loss_of"] = {Path(f).stem: float(loss_fn(np.load(f)[np.newaxis])["total"]) for f in args.judge}
        record["float32_loss_of_own"] = float(loss_fn(result.image[np.newaxis])["total"])
    print(json.dumps(record), flush=True)


POLICIES = {"bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}


def run_child(policy: str, args, out: Path, judge: list[Path] = ()) -> dict:
    command = [sys.executable, __file__, "--child", "--policy", policy, "--size", str(args.size), "--steps",
               str(args.steps), "--repeats", str(args.repeats), "--out", str(out)]
    if judge:
        command += ["--judge", *map(str, judge)]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads([line for line in done.stdout.splitlines() if line.startswith("{")][-1])


def main() -> None:
    parser = argparse.ArgumentParser(description="float32 vs bfloat16 (or float16) NST on this CPU.")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=30, help="L-BFGS steps for each policy")
    parser.add_argument("--repeats", type=int, default=5, help="timed evaluations for each policy")
    parser.add_argument("--precisions", default="bfloat16", help="comma-separated, each against float32: "
                        + ", ".join(POLICIES))
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--policy", default="float32", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--judge", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    precisions = [p.strip() for p in args.precisions.split(",") if p.strip()]
    if not precisions or set(precisions) - set(POLICIES):
        raise SystemExit(f"--precisions: choose from {', '.join(POLICIES)}")
    with tempfile.TemporaryDirectory() as tmp:
        low = {p: run_child(POLICIES[p], args, Path(tmp) / f"{p}.npy") for p in precisions}
        fp32 = run_child("float32", args, Path(tmp) / "float32.npy", judge=[Path(tmp) / f"{p}.npy" for p in precisions])
    common.setup_env()
    from nstdream_utils import device

    compared = {p: {"speedup_cpu": fp32["cpu_s_per_evaluation"] / low[p]["cpu_s_per_evaluation"],
                    "loss_ratio": fp32["float32_loss_of"][p] / fp32["float32_loss_of_own"],
                    "loss_relative_error_on_content": abs(low[p]["loss_content_image"] - fp32["loss_content_image"])
                    / fp32["loss_content_image"],
                    "native": device.slow_precision(p, gpu=False) is None, POLICIES[p]: low[p]}
                for p in precisions}
    first = compared[precisions[0]]
    common.emit({
        "benchmark": "nst_precision", "size": args.size, "steps": args.steps,
        "speedup_cpu": first["speedup_cpu"], "loss_ratio": first["loss_ratio"],
        **compared, "float32": fp32, "machine": common.machine(),
    })

if __name__ == "__main__":
    main()
