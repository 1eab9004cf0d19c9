"""What the Gram matrix's custom gradient buys: the NST value-and-gradient with it and with autodiff.

    .venv/bin/python benchmarks/gram_gradient.py --size 256

``losses.gram_matrix`` computes ``Fᵀ F`` on the ``[B, H·W, C]`` view with a custom gradient
``dF = F (dG + dGᵀ)``: one matrix product in the backward pass. :func:`einsum_gram_matrix` is the
obvious version (``tf.einsum`` and autodiff, as the TF tutorial writes it), whose gradient computes
one product per operand — two, although both operands are the same tensor — plus transposed copies.
Run alone, it prints one JSON line: the CPU seconds of the NST value-and-gradient with each, in units
of the FLOP floor (``common.py``), and the largest relative differences of the loss and gradient.
"""

from __future__ import annotations

import argparse

import common


def einsum_gram_matrix(features, *, normalize: str | None = None):
    """``losses.gram_matrix`` written with ``tf.einsum`` and plain autodiff (same arguments and result)."""
    import tensorflow as tf

    f = tf.cast(tf.convert_to_tensor(features), tf.float32)
    gram = tf.einsum("bhwc,bhwd->bcd", f, f)
    positions = tf.cast(tf.shape(f)[1] * tf.shape(f)[2], tf.float32)
    if normalize == "hw":
        gram = gram / positions
    elif normalize == "chw":
        gram = gram / (positions * tf.cast(tf.shape(f)[3], tf.float32))
    return gram[0] if f.shape[0] == 1 else gram


def main() -> None:
    parser = argparse.ArgumentParser(description="NST value-and-gradient: the library's Gram gradient vs autodiff of tf.einsum.")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    common.setup_env()
    import tensorflow as tf
    import tf_tutorial

    from nstdream_utils import losses

    content, style, cfg = tf_tutorial.prepared_pair(args.size)
    flops = common.vgg19_forward_flops(content.shape[:2], "block5_conv2", gram_layers=tf_tutorial.STYLE_LAYERS)
    floor_flops = 2.0 * (flops["conv"] + flops["gram"])
    probe = common.RateProbe(args.size)
    x0 = tf.constant(content[tf.newaxis])
    functions = common.patched_value_and_gradients(content, style, cfg, losses, "gram_matrix",
                                                   {"einsum": einsum_gram_matrix, "library": losses.gram_matrix})
    (v1, g1), (v2, g2) = functions["einsum"](x0), functions["library"](x0)
    rounds = common.alternate_cpu_rounds(functions, x0, args.rounds, floor_flops, probe)
    common.emit({"benchmark": "gram_gradient", "size": args.size,
                 "einsum_ratio_to_floor_cpu": common.median(r["einsum"] for r in rounds),
                 "library_ratio_to_floor_cpu": common.median(r["library"] for r in rounds),
                 "einsum_over_library_cpu": common.paired_ratio(rounds, "einsum", "library"),
                 "loss_relative_difference": abs(float(v1) - float(v2)) / abs(float(v1)),
                 "gradient_relative_difference": float(tf.reduce_max(tf.abs(g1 - g2)) / tf.reduce_max(tf.abs(g1))),
                 "what": "CPU seconds of one NST value-and-gradient (no optimiser update) / FLOP floor",
                 "per_round": rounds, "machine": common.machine()})


if __name__ == "__main__":
    main()
