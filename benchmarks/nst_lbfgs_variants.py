"""Can L-BFGS reach the TF tutorial's loss in fewer evaluations? History size, preconditioning, smoothing.

    .venv/bin/python benchmarks/nst_lbfgs_variants.py --size 128 --target-loss 1.737e8 \
        --variants "m=20;m=5;m=50;lap=4;lap=4,s=0.5;eps=0.02,switch=40"

Each variant runs scipy's L-BFGS-B on the TF tutorial's loss (``presets.TF_TUTORIAL.nst``, float32,
``nst.NSTLoss.value_and_gradient``) from the content image, as ``nst.style_transfer(...,
optimizer="lbfgs")`` does, and counts loss-and-gradient evaluations until the loss first reaches
``--target-loss`` (e.g. the tutorial's 1000-step loss from ``nst_time_to_quality.py``). Variant keys,
comma-separated:

* ``m=N`` — L-BFGS history size (the library uses 20);
* ``lap=L[,s=S]`` — optimise a Laplacian-pyramid parameterisation instead of the pixels:
  ``x = clip(z₀ + Σₖ Sᵏ · upₖ(zₖ), 0, 1)`` with ``zₖ`` at 1/2ᵏ of the size (bilinear ``upₖ``), which
  gives coarse structure larger steps (a change of variables, i.e. a preconditioner; unbounded);
* ``eps=E,switch=K`` — the first K iterations minimise a smoothed total variation
  (Σ √(Δ² + E²) − E instead of Σ |Δ|), then the exact loss (L-BFGS restarts).

Prints one JSON line: per variant ``evaluations`` to the target (null: not reached within
``--max-evals``), ``best_loss``, ``cpu_seconds`` and the loss terms at the end.
"""

from __future__ import annotations

import argparse
import time

import common


class _Reached(Exception):
    pass


def run_variant(spec: str, content, style, cfg, target: float, max_evals: int) -> dict:
    import numpy as np
    import scipy.optimize
    import tensorflow as tf

    from nstdream_utils import nst

    opts = dict(kv.split("=") for kv in spec.split(",") if kv)
    unknown = set(opts) - {"m", "lap", "s", "eps", "switch"}
    if unknown:
        raise SystemExit(f"unknown variant key(s) {sorted(unknown)} in {spec!r}")
    levels, scale = int(opts.get("lap", 0)), float(opts.get("s", 1.0))
    eps, switch, memory = float(opts.get("eps", 0.0)), int(opts.get("switch", 0)), int(opts.get("m", 20))
    loss_fn = nst.NSTLoss(content, style, cfg, precision="float32")
    h, w = content.shape[:2]
    shapes = [(h // 2 ** k, w // 2 ** k) for k in range(levels + 1)]
    sizes = [a * b * 3 for a, b in shapes]

    def image_of(z):
        parts = tf.split(z, sizes)
        x = tf.reshape(parts[0], [1, h, w, 3])
        for k in range(1, len(shapes)):
            x = x + scale ** k * tf.image.resize(tf.reshape(parts[k], [1, *shapes[k], 3]), [h, w])
        return tf.clip_by_value(x, 0.0, 1.0) if levels else x

    def smooth_tv(x):
        dy, dx = x[:, 1:] - x[:, :-1], x[:, :, 1:] - x[:, :, :-1]
        return tf.reduce_sum(tf.sqrt(dy * dy + eps * eps) - eps) + tf.reduce_sum(tf.sqrt(dx * dx + eps * eps) - eps)

    def make(smooth: bool):
        @tf.function
        def value_and_grad(z):
            with tf.GradientTape() as tape:
                tape.watch(z)
                x = image_of(z)
                terms = loss_fn(x)
                objective = terms["total"] - terms["tv"] + cfg.tv_weight * smooth_tv(x) if smooth else terms["total"]
            return terms, objective, tape.gradient(objective, z)
        return value_and_grad

    current = {"f": make(eps > 0 and switch > 0)}
    log, state = [], {"evaluations": None, "terms": None}
    start = time.process_time()

    def fun(z):
        terms, objective, grad = current["f"](tf.constant(z, tf.float32))
        log.append(float(terms["total"]))
        state["terms"] = {k: float(v) for k, v in terms.items()}
        if log[-1] <= target:
            state["evaluations"], state["cpu_seconds"] = len(log), time.process_time() - start
            raise _Reached
        if len(log) >= max_evals:
            raise _Reached
        return float(objective), grad.numpy().astype(np.float64)

    z0 = np.concatenate([content.ravel()] + [np.zeros(s, np.float32) for s in sizes[1:]]).astype(np.float64)
    bounds = None if levels else scipy.optimize.Bounds(np.zeros(z0.size), np.ones(z0.size))
    options = {"maxcor": memory, "maxfun": 10 ** 6}
    try:
        if eps > 0 and switch > 0:
            last = {"z": z0}
            scipy.optimize.minimize(fun, z0, jac=True, method="L-BFGS-B", bounds=bounds,
                                    callback=lambda zk: last.update(z=np.array(zk)),
                                    options={**options, "maxiter": switch})
            current["f"], z0 = make(False), last["z"]
        scipy.optimize.minimize(fun, z0, jac=True, method="L-BFGS-B", bounds=bounds,
                                options={**options, "maxiter": 10 ** 6})
    except _Reached:
        pass
    return {"evaluations": state["evaluations"], "best_loss": min(log),
            "cpu_seconds": state.get("cpu_seconds", time.process_time() - start), "final_terms": state["terms"],
            "curve_every_10": log[::10]}


def main() -> None:
    parser = argparse.ArgumentParser(description="L-BFGS variants: evaluations to the TF tutorial's loss.")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--target-loss", type=float, default=1.737e8,
                        help="default: the tutorial's 1000-step loss at 128 px (docs/benchmarks.md)")
    parser.add_argument("--max-evals", type=int, default=200)
    parser.add_argument("--variants", default="m=20;m=5;m=50;lap=4;lap=4,s=0.5;eps=0.02,switch=40",
                        help="semicolon-separated; each a comma-separated list of key=value (see the docstring)")
    args = parser.parse_args()
    common.setup_env()
    import tf_tutorial

    content, style, cfg = tf_tutorial.prepared_pair(args.size)
    results = {spec: run_variant(spec, content, style, cfg, args.target_loss, args.max_evals)
               for spec in [v.strip() for v in args.variants.split(";") if v.strip()]}
    common.emit({"benchmark": "nst_lbfgs_variants", "size": args.size, "target_loss": args.target_loss,
                 "max_evals": args.max_evals, "variants": results, "machine": common.machine()})


if __name__ == "__main__":
    main()
