"""Seconds per DeepDream step and its ratio to the FLOP floor, in one process.

    .venv/bin/python benchmarks/dream_step.py --size 512 [--tile-size 0] [--rounds 3] [--precision bfloat16]

Times the library's ascent step (``dream.deep_dream``: Inception v3 to ``mixed5``, loss = mean of
``mixed3`` + ``mixed5``, gradient ÷ its std, one traced ``tf.function``; with ``--tile-size`` the
tiled step with a random roll) in rounds of 10 steps. The floor is 2 × the forward FLOPs of
Inception v3's convolutions up to ``mixed5`` on the image (or on each tile, summed), divided by the
best GFLOP/s this process sustains, measured after each round (``common.RateProbe``). Prints one
JSON line with ``dream_s`` (median seconds per step), ``floor_s``, ``ratio_to_floor`` (median
over rounds of the per-round ratio) and ``ratio_to_floor_cpu`` (the same in this process's CPU
seconds, which load from other processes barely changes). With ``--precision bfloat16`` Inception
v3 computes in bfloat16 (``dream.deep_dream(..., precision=)``) while the floor stays float32's, so
a ratio below 1 is a step faster than float32 arithmetic allows.

``convs_ratio_to_floor_cpu`` / ``ours_over_convs_cpu``: Inception v3's convolutions alone (forward
and input gradient, TensorFlow's kernels, ``common.ConvProbe``, timed in each round) against the
floor and against the step. Inception v3 runs as Keras builds it.
"""

from __future__ import annotations

import argparse
import collections

import common

SYNC_EVERY = 10


def tile_shapes(shape: tuple[int, int], tile: int) -> list[tuple[int, int]]:
    """The tiles ``dream.make_tiled_step`` cuts an image of ``shape`` into (every roll gives the same)."""
    if not tile or max(shape) <= tile:
        return [tuple(shape)]
    heights = [min(tile, shape[0] - y) for y in range(0, shape[0], tile)]
    widths = [min(tile, shape[1] - x) for x in range(0, shape[1], tile)]
    return [(h, w) for h in heights for w in widths]


def main() -> None:
    parser = argparse.ArgumentParser(description="Seconds per DeepDream step and its FLOP floor.")
    parser.add_argument("--size", type=int, default=512, help="image side in pixels (square)")
    parser.add_argument("--tile-size", type=int, default=0, help="tile size (0: the whole image at once)")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds of 10 steps")
    parser.add_argument("--precision", default="float32", choices=("float32", "bfloat16"),
                        help="what Inception v3 computes in (the floor is float32's either way)")
    args = parser.parse_args()
    common.setup_env()
    from nstdream_utils import dream, images, presets

    cfg = presets.QUICK.dream.replace(size=args.size, num_steps=SYNC_EVERY * (args.rounds + 1),
                                      tile_size=args.tile_size, octaves=(0,))
    image = images.load_image(common.CONTENT)
    shape = (args.size, args.size)
    cache: dict = {}
    forward = 0.0
    for tile in tile_shapes(shape, args.tile_size):
        if tile not in cache:
            cache[tile] = common.inception_forward_flops(tile, cfg.layers[-1])
        forward += cache[tile]
    probe = common.RateProbe(min(args.size, 512))
    tile_counts = collections.Counter(tile_shapes(shape, args.tile_size))
    conv_probes = [(common.ConvProbe(tile, cfg.layers[-1], network="inception_v3"), n) for tile, n in tile_counts.items()]

    rounds: list[dict] = []
    clock, started = common.Clock(), []

    def interleave(step, losses, img) -> None:
        wall, cpu = clock.lap()
        if started:  # the first block holds the trace: not timed
            rate = probe.measure()
            conv_cpu = sum(n * p.measure()[1] for p, n in conv_probes)
            rounds.append({"dream_s": wall / SYNC_EVERY, "floor_s": 2.0 * forward / (rate["best"] * 1e9),
                           "convs_cpu_s": conv_cpu, "dream_cpu_s": cpu / SYNC_EVERY, "floor_cpu_s": 2.0 * forward / (rate["best_cpu"] * 1e9),
                           "gflops": rate["best"], "gflops_per_cpu_s": rate["best_cpu"]})
        started.append(True)
        clock.reset()

    dream.deep_dream(image, config=cfg, progress=False, callback=interleave, precision=args.precision)
    common.emit({
        "benchmark": "dream_step", "size": args.size, "tile_size": args.tile_size, "precision": args.precision,
        "tiles": len(tile_shapes(shape, args.tile_size)), "rounds": len(rounds),
        "dream_s": common.median(r["dream_s"] for r in rounds),
        "floor_s": common.median(r["floor_s"] for r in rounds),
        "ratio_to_floor": common.median(r["dream_s"] / r["floor_s"] for r in rounds),
        "ratio_to_floor_cpu": common.median(r["dream_cpu_s"] / r["floor_cpu_s"] for r in rounds),
        "convs_ratio_to_floor_cpu": common.median(r["convs_cpu_s"] / r["floor_cpu_s"] for r in rounds),
        "ours_over_convs_cpu": common.median(r["dream_cpu_s"] / r["convs_cpu_s"] for r in rounds),
        "forward_gflop": forward / 1e9, "sustained_gflops": common.median(r["gflops"] for r in rounds),
        "gflops_per_cpu_s": common.median(r["gflops_per_cpu_s"] for r in rounds),
        "floor_definition": "2 x forward conv FLOPs of Inception v3 to mixed5 (per tile, summed) / best "
        "sustained GFLOP/s (matmul 2048^2 or VGG-shaped 3x3 conv) measured in the same round; *_cpu: the same in this process's CPU seconds",
        "per_round": rounds, "machine": common.machine(),
    })


if __name__ == "__main__":
    main()
