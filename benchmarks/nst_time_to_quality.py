"""Wall time to the TF tutorial's final loss: the tutorial's recipe vs our best configurations.

    .venv/bin/python benchmarks/nst_time_to_quality.py --size 128 [--reference-steps 1000]

1. Runs the TF style-transfer tutorial's recipe (``tf_tutorial.Tutorial``: Adam, lr 0.02) for
   ``--reference-steps`` steps on data/content/astronaut.png with data/styles/triangle.png, and
   records its final loss and wall time (the training loop only, tracing included; model building
   and targets not counted).
2. Checks that our loss (``presets.TF_TUTORIAL.nst``, ``nst.NSTLoss``) equals the tutorial's on
   the content image and on the tutorial's final image, and prints both.
3. Runs our configurations on that same loss until each first reaches the tutorial's final loss,
   and records the wall time from the call (image resizing, targets, tracing and every coarse
   level included; the VGG-19 weights are already loaded, as they are for the tutorial):

   * ``lbfgs`` — ``nst.style_transfer(..., optimizer="lbfgs")`` at full size;
   * ``c2f2:S``, ``c2f3:S``, ``c2f4:S`` — ``pyramid.coarse_to_fine`` with 2, 3 or 4 levels (each
     half the next: 3 = quarter, half, full), S L-BFGS steps at each coarse level (or one count
     per coarse level, coarsest first: ``c2f3:200-100``), then full size until the loss;
   * ``adam:LR`` — our Adam loop on the same loss at a tuned learning rate (checks that L-BFGS is
     the better choice; the Adam loop reads the loss every 10 steps, so it stops at a multiple of 10);
   * any of these with ``@bf16`` (e.g. ``c2f3:20@bf16``) — VGG-19 computes in bfloat16
     (``precision="bfloat16"``; losses float32). Its own loss is then only approximately the
     tutorial's, so whether it has reached the target is judged on its image by the float32 loss
     (``StopAtLoss``; judging not timed).

``speedup`` is the tutorial's time ÷ the best configuration's time. Because the machine may be
shared, it also prints ``speedup_cpu`` (the same from this process's CPU seconds, which other
processes barely change) and ``work_speedup``: the tutorial's steps ÷ our VGG-19 evaluations, counted in
full-size equivalents (an evaluation at half size counts ¼) — a ratio that load on the machine does
not change. A configuration that does not reach the loss within ``--max-steps`` full-size
iterations reports ``null``.
"""

from __future__ import annotations

import argparse
import time

import common
import tf_tutorial


class StopAtLoss:
    """``callback`` and ``should_stop`` for a run that ends when the full-size loss reaches ``target``.

    With ``judge`` (a function image → float32 loss), the run's own losses only say when to look:
    from the first full-size step whose own loss is within ``JUDGE_MARGIN`` of the target, each
    step's image is judged by ``judge``, and that loss decides. Time spent judging is not counted,
    as the tutorial's checkpoint losses are not.
    """

    JUDGE_MARGIN = 1.05

    def __init__(self, target: float, final_level: float | None = None, judge=None) -> None:
        self.target, self.final_level, self.judge = target, final_level, judge
        self.start, self.start_cpu = time.perf_counter(), time.process_time()
        self.paused = self.paused_cpu = 0.0
        self.seconds = self.cpu_seconds = None
        self.step = None
        self.best = float("inf")
        self.judged = 0

    def callback(self, step, losses, image) -> None:
        if self.final_level is not None and losses.get("level") != self.final_level:
            return
        loss = losses["total"]
        if self.judge is not None:
            if loss > self.JUDGE_MARGIN * self.target:
                return
            t, c = time.perf_counter(), time.process_time()
            loss = self.judge(image)
            self.judged += 1
            self.paused += time.perf_counter() - t
            self.paused_cpu += time.process_time() - c
        self.best = min(self.best, loss)
        if self.seconds is None and loss <= self.target:
            self.seconds = time.perf_counter() - self.start - self.paused
            self.cpu_seconds = time.process_time() - self.start_cpu - self.paused_cpu
            self.step = step

    def should_stop(self) -> bool:
        return self.seconds is not None


def main() -> None:
    parser = argparse.ArgumentParser(description="Time to the TF tutorial's final loss: tutorial vs ours.")
    parser.add_argument("--size", type=int, default=128, help="longest side in pixels")
    parser.add_argument("--reference-steps", type=int, default=1000, help="the tutorial's Adam steps (K)")
    parser.add_argument("--max-steps", type=int, default=300, help="our cap on full-size L-BFGS iterations")
    parser.add_argument("--configs", default="lbfgs,c2f2:20,c2f3:20,c2f3:50,adam:0.2",
                        help="comma-separated: lbfgs; c2fL:S (L levels, S L-BFGS steps per coarse level, or S1-S2-… "
                        "one per coarse level); "
                        "adam:LR (our Adam loop at learning rate LR, at most --reference-steps steps); "
                        "each optionally with @bf16 (VGG-19 in bfloat16, judged in float32), @tf (optimizer "
                        "lbfgs-tf: the library's TensorFlow L-BFGS instead of scipy's) or @bf16+tf")
    parser.add_argument("--target-loss", type=float, default=None,
                        help="skip the tutorial's run: use this loss (from an earlier run's target_loss)")
    parser.add_argument("--reference-seconds", type=float, default=None,
                        help="with --target-loss: the earlier run's reference_seconds (for `speedup`)")
    parser.add_argument("--reference-cpu-seconds", type=float, default=None,
                        help="with --target-loss: the earlier run's reference_cpu_seconds (for `speedup_cpu`)")
    parser.add_argument("--adjacent-steps", type=int, default=0,
                        help="time this many tutorial steps before and after each of our configurations, in the "
                        "same process, for a speed-up against the tutorial's step time measured beside ours "
                        "(`speedup_adjacent`: robust to the machine's speed drifting between runs)")
    args = parser.parse_args()
    common.setup_env()
    import numpy as np

    from nstdream_utils import nst, pyramid, weights

    content, style, cfg = tf_tutorial.prepared_pair(args.size)
    full_pixels = content.shape[0] * content.shape[1]
    # Our loss in float32, built once and outside the evaluation count: checks it equals the
    # tutorial's (step 2) and judges the bfloat16 configurations (step 3).
    exact_loss = tf_tutorial.our_loss_function(content, style, cfg, precision="float32")

    if args.target_loss is not None:  # the tutorial's numbers from an earlier run of this script
        target, curve, loss_check = args.target_loss, [], None
        reference_seconds, reference_cpu_seconds = args.reference_seconds, args.reference_cpu_seconds
    else:
        # 1. The tutorial's recipe, checkpointed ten times (loss evaluations not timed).
        tutorial = tf_tutorial.Tutorial(content, style, str(weights.resolve("vgg19")))
        curve, elapsed, elapsed_cpu, done = [], 0.0, 0.0, 0
        chunk = max(1, args.reference_steps // 10)
        while done < args.reference_steps:
            n = min(chunk, args.reference_steps - done)
            t, c = time.perf_counter(), time.process_time()
            tutorial.step(n)
            elapsed += time.perf_counter() - t
            elapsed_cpu += time.process_time() - c
            done += n
            curve.append({"step": done, "loss": tutorial.loss(), "seconds": elapsed})
        target, reference_seconds, reference_cpu_seconds = curve[-1]["loss"], elapsed, elapsed_cpu
        final_image = tutorial.image_array()

        # 2. Same loss function?
        ours_content, ours_final = exact_loss(content), exact_loss(final_image)
        loss_check = {"tutorial_loss_content_image": tutorial.loss(content[np.newaxis]),
                      "our_loss_content_image": ours_content,
                      "tutorial_loss_final_image": target, "our_loss_final_image": ours_final}
        loss_check["max_relative_difference"] = max(
            abs(loss_check["our_loss_content_image"] - loss_check["tutorial_loss_content_image"])
            / loss_check["tutorial_loss_content_image"], abs(ours_final - target) / target)
        del tutorial

    adjacent = None
    if args.adjacent_steps:
        adjacent = tf_tutorial.Tutorial(content, style, str(weights.resolve("vgg19")))
        adjacent.step(2)  # trace and warm up

    def tutorial_step_seconds():
        if adjacent is None:
            return None
        t, c = time.perf_counter(), time.process_time()
        adjacent.step(args.adjacent_steps)
        return (time.perf_counter() - t) / args.adjacent_steps, (time.process_time() - c) / args.adjacent_steps

    step_before = tutorial_step_seconds()

    # 3. Ours, until the tutorial's final loss.
    results = {}
    with common.counted_evaluations() as counting:
        for name in [c.strip() for c in args.configs.split(",") if c.strip()]:
            spec, _, suffix = name.partition("@")
            kind, _, coarse = spec.partition(":")
            flags = set(suffix.split("+")) - {""}
            if flags - {"bf16", "tf"}:
                raise SystemExit(f"unknown suffix in {name!r}: use @bf16, @tf, @bf16+tf or nothing")
            precision = "bfloat16" if "bf16" in flags else None
            stop_judge = exact_loss if precision else None
            lbfgs = cfg.replace(optimizer="lbfgs-tf" if "tf" in flags else "lbfgs")
            counting.instances = []
            if kind == "lbfgs":
                stop = StopAtLoss(target, judge=stop_judge)
                run = nst.style_transfer(content, style, config=lbfgs, num_steps=args.max_steps, progress=False,
                                         callback=stop.callback, should_stop=stop.should_stop, precision=precision)
                detail = {"iterations": len(run.history["total"]) - 1}
            elif kind in ("c2f2", "c2f3", "c2f4") and coarse.replace("-", "").isdigit():
                levels = int(kind[-1])
                stop = StopAtLoss(target, final_level=float(levels - 1), judge=stop_judge)
                coarse_steps = [int(c) for c in coarse.split("-")]
                if len(coarse_steps) not in (1, levels - 1):
                    raise SystemExit(f"{name!r}: give one step count, or one per coarse level ({levels - 1})")
                steps = (coarse_steps * (levels - 1))[:levels - 1] + [args.max_steps]
                run = pyramid.coarse_to_fine(content, style, config=lbfgs, optimizer=lbfgs.optimizer, levels=levels,
                                             steps_per_level=steps,
                                             progress=False, callback=stop.callback, should_stop=stop.should_stop,
                                             precision=precision)
                per_level = np.bincount(np.asarray(run.history["level"], int))
                detail = {"steps_per_level": steps, "iterations_per_level": [int(n) - 1 for n in per_level]}
            elif kind == "adam":
                stop = StopAtLoss(target, judge=stop_judge)
                run = nst.style_transfer(content, style, config=cfg, learning_rate=float(coarse),
                                         num_steps=args.reference_steps, progress=False, precision=precision,
                                         callback=stop.callback, should_stop=stop.should_stop)
                detail = {"steps": len(run.history["total"])}
            else:
                raise SystemExit(f"unknown config {name!r}: use lbfgs, c2f2:S, c2f3:S, c2f4:S or adam:LR")
            if precision:
                detail["precision"], detail["judged_images"] = precision, stop.judged
            detail["optimizer"] = run.config.optimizer  # what ran (coarse_to_fine's optimizer= overrides the config's)
            work = counting.full_size_evaluations(full_pixels)
            step_after = tutorial_step_seconds()
            if step_after and stop.seconds:
                wall, cpu = ((a + b) / 2 for a, b in zip(step_before, step_after))
                detail.update(tutorial_step_seconds_adjacent=wall, tutorial_step_cpu_seconds_adjacent=cpu,
                              speedup_adjacent=args.reference_steps * wall / stop.seconds,
                              speedup_cpu_adjacent=args.reference_steps * cpu / stop.cpu_seconds)
            step_before = step_after
            results[name] = {"seconds": stop.seconds, "cpu_seconds": stop.cpu_seconds,
                             "reached": stop.seconds is not None,
                             "best_full_size_loss": stop.best, "full_size_evaluations": work,
                             "speedup": reference_seconds / stop.seconds if stop.seconds and reference_seconds else None,
                             "speedup_cpu": (reference_cpu_seconds / stop.cpu_seconds
                                             if stop.seconds and reference_cpu_seconds else None),
                             "work_speedup": args.reference_steps / work if stop.seconds else None, **detail}

    reached = {k: v for k, v in results.items() if v["reached"]}
    best = min(reached, key=lambda k: reached[k]["seconds"]) if reached else None
    common.emit({
        "benchmark": "nst_time_to_quality", "size": args.size, "shape": list(content.shape[:2]),
        "reference_steps": args.reference_steps, "reference_seconds": reference_seconds, "target_loss": target,
        "best": best, "ours_seconds": reached[best]["seconds"] if best else None,
        "speedup": results[best]["speedup"] if best else None,
        "speedup_cpu": results[best]["speedup_cpu"] if best else None,
        "reference_cpu_seconds": reference_cpu_seconds,
        "work_speedup": results[best]["work_speedup"] if best else None,
        "configs": results, "loss_check": loss_check, "tutorial_curve": curve, "machine": common.machine(),
    })


if __name__ == "__main__":
    main()
