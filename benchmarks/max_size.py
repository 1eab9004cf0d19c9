"""The largest NST (coarse-to-fine) and DeepDream (tiled) images that complete here, with peak memory.

    .venv/bin/python benchmarks/max_size.py [--nst-sizes 1024,2048] [--dream-sizes 2048,4096]

Each size runs in its own subprocess (this file with ``--child``), so each peak resident memory
(``resource.getrusage``'s ``ru_maxrss``) belongs to one run alone:

* NST: ``pyramid.coarse_to_fine`` on the TF tutorial's loss, three levels (quarter, half, full
  size), very few L-BFGS steps per level (``--nst-steps``, default 5,3,2: the full-size level
  evaluates its starting image and takes one iteration); ``--nst-loop tf`` runs the
  library's TensorFlow L-BFGS (``optimizer="lbfgs-tf"``) instead of scipy's L-BFGS-B;
* DeepDream: ``dream.deep_dream`` with tiles of ``--tile-size`` (default 512) and a random roll,
  ``--dream-steps`` steps (default 2) at one octave.

A child watches the machine's available memory and stops itself (status ``"aborted: low
memory"``) if it falls below ``--min-free-gib``, so a run that would not fit gives up before the
kernel's out-of-memory killer picks a process on a shared machine. Prints one JSON line: per
run, ``completed``, ``seconds``, ``peak_rss_gib`` and the output shape, plus the largest size
that completed for each task.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time

import common


def available_gib() -> float:
    """``MemAvailable`` from /proc/meminfo, in GiB (NaN where there is none)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return float("nan")


def watch_memory(min_free_gib: float, record: dict) -> None:
    """Exit this process (code 3, after printing ``record``) if available memory drops too low."""
    def run():
        while True:
            free = available_gib()
            if free < min_free_gib:
                record.update(completed=False, status="aborted: low memory", available_gib=free,
                              peak_rss_gib=common.peak_rss_mib() / 1024)
                common.emit(record)
                os._exit(3)
            time.sleep(0.5)

    threading.Thread(target=run, daemon=True).start()


def child(task: str, size: int, args) -> None:
    common.setup_env()
    record = {"task": task, "size": size, "available_gib_at_start": available_gib()}
    watch_memory(args.min_free_gib, record)
    from nstdream_utils import dream, images, presets, pyramid

    content = images.load_image(common.CONTENT)
    start = time.perf_counter()
    if task == "nst":
        steps = [int(s) for s in args.nst_steps.split(",")]
        cfg = presets.TF_TUTORIAL.nst.replace(size=size, square=True,
                                              optimizer="lbfgs-tf" if args.nst_loop == "tf" else "lbfgs")
        result = pyramid.coarse_to_fine(content, images.load_image(common.STYLE), config=cfg, optimizer=cfg.optimizer,
                                        levels=len(steps),
                                        steps_per_level=steps, progress=False)
        record.update(levels=len(steps), steps_per_level=steps, final_loss=result.final_loss,
                      lbfgs=args.nst_loop)
    else:
        cfg = presets.QUICK.dream.replace(size=size, square=True, num_steps=args.dream_steps,
                                          tile_size=args.tile_size, octaves=(0,))
        result = dream.deep_dream(content, config=cfg, progress=False)
        record.update(steps=args.dream_steps, tile_size=args.tile_size, final_loss=result.final_loss)
    record.update(completed=result.status == "completed", status=result.status,
                  seconds=time.perf_counter() - start, shape=list(result.image.shape),
                  peak_rss_gib=common.peak_rss_mib() / 1024)
    common.emit(record)


def main() -> None:
    parser = argparse.ArgumentParser(description="Largest NST and DeepDream sizes that complete, with peak memory.")
    parser.add_argument("--nst-sizes", default="1024,2048")
    parser.add_argument("--dream-sizes", default="2048,4096")
    parser.add_argument("--nst-steps", default="5,3,2", help="L-BFGS steps per level, coarsest first")
    parser.add_argument("--dream-steps", type=int, default=2)
    parser.add_argument("--tile-size", type=int, default=512)
    parser.add_argument("--nst-loop", choices=("scipy", "tf"), default="scipy",
                        help="L-BFGS engine: scipy's L-BFGS-B (optimizer lbfgs) or the TensorFlow one (lbfgs-tf)")
    parser.add_argument("--min-free-gib", type=float, default=1.0, help="stop a child below this much free memory")
    parser.add_argument("--timeout", type=int, default=3600, help="seconds per child")
    parser.add_argument("--child", choices=("nst", "dream"), help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.size, args)
        return

    runs = []
    for task, sizes in (("nst", args.nst_sizes), ("dream", args.dream_sizes)):
        for size in [int(s) for s in sizes.split(",") if s]:
            command = [sys.executable, __file__, "--child", task, "--size", str(size), "--nst-steps", args.nst_steps,
                       "--dream-steps", str(args.dream_steps), "--nst-loop", args.nst_loop, "--tile-size", str(args.tile_size),
                       "--min-free-gib", str(args.min_free_gib)]
            try:
                done = subprocess.run(command, capture_output=True, text=True, timeout=args.timeout)
                lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
                record = json.loads(lines[-1]) if lines else {"task": task, "size": size, "completed": False}
                record["returncode"] = done.returncode
                if done.returncode and not lines:
                    record["status"] = f"failed (exit {done.returncode}): {done.stderr.strip()[-300:]}"
            except subprocess.TimeoutExpired:
                record = {"task": task, "size": size, "completed": False, "status": f"timeout after {args.timeout} s"}
            runs.append(record)
    largest = {task: max((r["size"] for r in runs if r["task"] == task and r.get("completed")), default=None)
               for task in ("nst", "dream")}
    common.setup_env()
    common.emit({"benchmark": "max_size", "largest_nst": largest["nst"], "largest_dream": largest["dream"],
                 "runs": runs, "machine": common.machine()})


if __name__ == "__main__":
    main()
