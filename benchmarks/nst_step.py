"""Seconds per NST gradient step: ours, the TF tutorial's, and the FLOP floor — in one process.

    .venv/bin/python benchmarks/nst_step.py --size 256 [--rounds 3]

Both run the same loss (``presets.TF_TUTORIAL.nst``: VGG-19 to ``block5_conv2``, five Gram
matrices, total variation) with the same optimiser (Adam), on the same images:

* **ours** — the library's Adam loop (``nst._gradient_loop``: one traced ``tf.function`` step,
  content/style targets precomputed, losses read back every 10 steps);
* **tutorial** — ``tf_tutorial.Tutorial.train_step``, the tutorial's code;
* **floor** — 2 × the forward FLOPs of VGG-19's convolutions up to ``block5_conv2`` plus the five
  Gram matrices (forward + input-gradient backward; no weight gradients, the network is frozen),
  divided by the best GFLOP/s this process sustains on a large matmul or a VGG-shaped convolution
  (``common.RateProbe``), measured in each round.

The machine is shared, so every number is a ratio taken within one round: each round times 10 of
our steps, then 10 tutorial steps, then the rate probe, and the reported ratios are medians over
rounds. Each ratio is given twice: from wall seconds, and (``*_cpu``) from this process's CPU
seconds — the rate probe and the steps both counted in CPU time, which other processes on a shared
machine barely change. Prints one JSON line with ``ours_s``, ``tutorial_s``, ``floor_s`` (medians),
``ratio_to_floor``, ``ratio_to_floor_cpu``, ``ratio_to_floor_3x`` (the looser floor with 3 ×
forward), ``ours_over_tutorial``, ``ours_traces`` (times our step function was traced: a
constant, not one per step), and ``convs_ratio_to_floor_cpu`` / ``ours_over_convs_cpu``: VGG-19's
convolutions alone at this size (``common.ConvProbe``, forward + input gradient, timed in each round)
against the floor and against our step — how much of the distance to the floor the convolution
kernels themselves account for at these shapes, and how much is left for everything else (the probe
is float32 also under ``--precision bfloat16``). ``--precision bfloat16`` runs *our* step with
VGG-19 in bfloat16 (``NSTLoss(..., precision=)``); the tutorial and the floor stay float32's, so
``ratio_to_floor`` then says how far below the float32 floor bfloat16 brings the step.
"""

from __future__ import annotations

import argparse

import common
import tf_tutorial

SYNC_EVERY = 10  # the library's loop reads losses back (and calls the callback) every 10 steps


def main() -> None:
    parser = argparse.ArgumentParser(description="Seconds per NST step: ours, the TF tutorial's, the FLOP floor.")
    parser.add_argument("--size", type=int, default=256, help="longest side in pixels")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds of 10 steps each")
    parser.add_argument("--precision", default="float32", choices=("float32", "bfloat16"),
                        help="what VGG-19 computes in for our step (the tutorial and floor stay float32)")
    args = parser.parse_args()
    common.setup_env()
    import numpy as np

    from nstdream_utils import nst, weights
    from nstdream_utils._loop import Recorder

    content, style, cfg = tf_tutorial.prepared_pair(args.size)
    cfg = cfg.replace(optimizer="adam", num_steps=SYNC_EVERY * (args.rounds + 1))
    shape = content.shape[:2]
    flops = common.vgg19_forward_flops(shape, "block5_conv2", gram_layers=tf_tutorial.STYLE_LAYERS)
    forward = flops["conv"] + flops["gram"]
    tutorial = tf_tutorial.Tutorial(content, style, str(weights.resolve("vgg19")))
    tutorial.step(2)  # trace and warm up
    probe = common.RateProbe(args.size)
    conv_probe = common.ConvProbe(shape, "block5_conv2")

    rounds: list[dict] = []
    clock, started = common.Clock(), []

    def interleave(step, losses, image) -> None:
        wall, cpu = clock.lap()
        if started:  # the first block holds the trace: not timed
            clock.reset()
            tutorial.step(SYNC_EVERY)
            tut_wall, tut_cpu = clock.lap()
            rate = probe.measure()
            conv_wall, conv_cpu = conv_probe.measure()
            rounds.append({"ours_s": wall / SYNC_EVERY, "tutorial_s": tut_wall / SYNC_EVERY,
                           "floor_s": 2.0 * forward / (rate["best"] * 1e9),
                           "ours_cpu_s": cpu / SYNC_EVERY, "tutorial_cpu_s": tut_cpu / SYNC_EVERY,
                           "floor_cpu_s": 2.0 * forward / (rate["best_cpu"] * 1e9), "gflops": rate["best"],
                           "gflops_per_cpu_s": rate["best_cpu"], "convs_s": conv_wall, "convs_cpu_s": conv_cpu})
        started.append(True)
        clock.reset()

    loss_fn = nst.NSTLoss(content, style, cfg, precision=args.precision)
    x0 = nst._initial_image(content, style, cfg, seed=0)
    recorder = Recorder(num_steps=cfg.num_steps, get_image=lambda: x0[0], progress=False,
                        callback=interleave, main_key="total")
    nst._gradient_loop(loss_fn, x0, cfg, recorder)

    def med(key):
        return common.median(r[key] for r in rounds)

    def ratio(a, b, scale=1.0):
        return common.median(r[a] / (scale * r[b]) for r in rounds)

    common.emit({
        "benchmark": "nst_step", "size": args.size, "precision": args.precision, "shape": list(shape), "rounds": len(rounds),
        "ours_s": med("ours_s"), "tutorial_s": med("tutorial_s"), "floor_s": med("floor_s"),
        "ratio_to_floor": ratio("ours_s", "floor_s"), "ratio_to_floor_cpu": ratio("ours_cpu_s", "floor_cpu_s"),
        "ratio_to_floor_3x": ratio("ours_s", "floor_s", 1.5),
        "ratio_to_floor_3x_cpu": ratio("ours_cpu_s", "floor_cpu_s", 1.5),
        "tutorial_ratio_to_floor": ratio("tutorial_s", "floor_s"),
        "tutorial_ratio_to_floor_cpu": ratio("tutorial_cpu_s", "floor_cpu_s"),
        "ours_over_tutorial": ratio("ours_s", "tutorial_s"),
        "ours_over_tutorial_cpu": ratio("ours_cpu_s", "tutorial_cpu_s"),
        "convs_s": med("convs_s"), "convs_ratio_to_floor_cpu": ratio("convs_cpu_s", "floor_cpu_s"),
        "ours_over_convs_cpu": ratio("ours_cpu_s", "convs_cpu_s"),
        "forward_gflop": forward / 1e9, "floor_definition": "2 x forward FLOPs (conv to block5_conv2 + 5 Grams) "
        "/ best sustained rate (matmul 2048^2 or VGG-shaped 3x3 conv) measured in the same round; "
        "*_cpu: the same with this process's CPU seconds instead of wall seconds",
        "sustained_gflops": med("gflops"), "gflops_per_cpu_s": med("gflops_per_cpu_s"),
        "ours_traces": int(recorder.traces),
        "per_round": [{k: float(np.round(v, 4)) for k, v in r.items()} for r in rounds],
        "machine": common.machine(),
    })


if __name__ == "__main__":
    main()
