"""What the total variation's hand-written gradients buy: the NST value-and-gradient with them and
with autodiff of the formula's slices, for both recipes' total variations.

    .venv/bin/python benchmarks/tv_gradient.py --size 128 [--rounds 6]

``losses.total_variation_loss`` differentiates its two kinds by hand — ``"tf"`` (Σ|Δ|, the TF
tutorial's ``tf.image.total_variation``) and ``"keras"`` (Σ(Δy² + Δx²)^1.25, the keras-io recipe the
paper's numbers fit) — as a few padded maps. ``losses.total_variation_by_slices`` is the same
formula left to autodiff, whose gradient scatters into the image once per slice
(``StridedSliceGrad``). Run alone, it prints one JSON line: for each recipe (``tf-tutorial``,
``paper``, on the same content and style images at ``--size``) the CPU seconds of one NST
value-and-gradient with each, in units of the FLOP floor (``common.py``), their ratio
(``slices_over_library_cpu``, ``common.paired_ratio`` of rounds that alternate which runs
first: above 1 means the hand-written gradient is faster), and the largest
relative differences of the loss and the gradient.
"""

from __future__ import annotations

import argparse

import common

RECIPES = ("tf-tutorial", "paper")


def main() -> None:
    parser = argparse.ArgumentParser(description="NST value-and-gradient: hand-written TV gradients vs autodiff of the slices.")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args()
    common.setup_env()
    import tensorflow as tf

    from nstdream_utils import images, losses, nst, presets

    record = {"benchmark": "tv_gradient", "size": args.size}
    probe = common.RateProbe(args.size)
    for recipe in RECIPES:
        cfg = presets.PRESETS[recipe].nst.replace(size=args.size)
        content, style = nst.prepare_images(images.load_image(common.CONTENT), images.load_image(common.STYLE), cfg)
        flops = common.vgg19_forward_flops(content.shape[:2], "block5_conv2", gram_layers=list(cfg.style_layers))
        x0 = tf.constant(content[tf.newaxis])
        functions = common.patched_value_and_gradients(
            content, style, cfg, losses, "total_variation_loss",
            {"slices": losses.total_variation_by_slices, "library": losses.total_variation_loss})
        (v1, g1), (v2, g2) = functions["slices"](x0), functions["library"](x0)
        rounds = common.alternate_cpu_rounds(functions, x0, args.rounds, 2.0 * (flops["conv"] + flops["gram"]), probe)
        record[recipe] = {
            "tv_kind": cfg.tv_kind,
            "slices_ratio_to_floor_cpu": common.median(r["slices"] for r in rounds),
            "library_ratio_to_floor_cpu": common.median(r["library"] for r in rounds),
            "slices_over_library_cpu": common.paired_ratio(rounds, "slices", "library"),
            "loss_relative_difference": abs(float(v1) - float(v2)) / abs(float(v1)),
            "gradient_relative_difference": float(tf.reduce_max(tf.abs(g1 - g2)) / tf.reduce_max(tf.abs(g1))),
            "per_round": rounds}
    common.emit({**record, "what": "CPU seconds of one NST value-and-gradient (no optimiser update) / FLOP floor",
                 "machine": common.machine()})


if __name__ == "__main__":
    main()
