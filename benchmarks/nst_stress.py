"""Does every NST preset converge on every photo and style? A stress matrix of runs, one JSON line.

    .venv/bin/python benchmarks/nst_stress.py [--presets quick,paper,tf-tutorial] [--photos all]
        [--styles all] [--sizes 64,96,128,224] [--steps 30] [--runs FILE.jsonl] [--shard K/N]

Runs ``nst.style_transfer`` for every preset × photo × style × size, each for ``--steps`` steps
from the content image, and counts the runs that

* **diverged**: a loss or the image became NaN/Inf (``NonFiniteLossError``);
* **spiked**: some loss in the history is above the first one (the loss before any update);
* **ended above start**: the last loss is above the first one.

Presets: ``quick``, ``paper`` (with its step guard, ``sgd_guard_factor``), ``tf-tutorial``, and
``paper-keras`` / ``quick-sgd`` — the paper preset with the guard off (exactly keras-io's recipe)
and SGD with keras-io's schedule at lr 10 and quick's size, no guard — for like-for-like
comparisons. ``--size`` overrides each preset's size (longest side, aspect kept).

Photos: the five in ``data/content`` and, when scikit-image is installed (its files ship with the
package; nothing is downloaded), its ``motorcycle`` and its full-size ``rocket`` (640×427, in place
of ``data/content``'s 512×342 copy); and ``portrait``: the astronaut resized to 600×512 (height ×
width) to have one portrait shape. Seven photos in all.
Styles: the eight in ``data/styles`` plus generated high-energy images (:func:`generated_styles`):
three-colour sine stripes, fine checkerboards and saturated noise at several frequencies.

The full matrix takes hours. ``--runs FILE.jsonl`` appends one line per finished run (with the commit,
CPU and learning rate that made it) and skips the runs already in the file at the preset's learning rate
(:func:`at_rate`), so a stopped matrix goes on where it stopped; ``--shard K/N`` runs one N-th of the
matrix (K from 0; every size in each shard), so N processes on one file, with the same photos and styles,
share the matrix (each appends whole lines).
The JSON line counts every run of the matrix found in the file, including runs made by earlier
invocations.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import common
import numpy as np

PRESETS = ("quick", "paper", "tf-tutorial")
EXTRA_PRESETS = ("paper-keras", "quick-sgd")
SGD_BASELINE_LR = 10.0  # the unguarded SGD baseline's rate at 224² (quick-sgd, nst_quick_default.py)
SIMD_NOTED = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_fp16")  # what tells the CPU kinds apart


def generated_styles(side: int = 256) -> dict[str, np.ndarray]:
    """High-energy styles as float32 ``[side, side, 3]`` in [0, 1].

    * ``sine_stripes``: three saturated colours, each channel ``0.5 + 0.5·sin(2π·f·x + phase)`` with
      f = 12 periods per image and phases 0, 2π/3, 4π/3 (period ≈ 21 px at 256);
    * ``checker_2`` / ``checker_4``: black-and-white squares 2 and 4 px wide;
    * ``noise_1`` / ``noise_4`` / ``noise_16``: uniform RGB noise in cells of 1, 4 and 16 px,
      each channel 0 or 1 (fully saturated), seeded.
    """
    yy, xx = np.mgrid[0:side, 0:side].astype(np.float32)
    out: dict[str, np.ndarray] = {}
    phases = np.array([0.0, 2 * np.pi / 3, 4 * np.pi / 3], np.float32)
    out["sine_stripes"] = 0.5 + 0.5 * np.sin(2 * np.pi * 12 * (xx + 0.5 * yy)[..., None] / side + phases)
    for cell in (2, 4):
        board = ((yy // cell + xx // cell) % 2).astype(np.float32)
        out[f"checker_{cell}"] = np.repeat(board[..., None], 3, axis=2)
    rng = np.random.default_rng(0)
    for cell in (1, 4, 16):
        coarse = (rng.uniform(size=(-(-side // cell), -(-side // cell), 3)) > 0.5).astype(np.float32)
        out[f"noise_{cell}"] = np.repeat(np.repeat(coarse, cell, axis=0), cell, axis=1)[:side, :side]
    return {k: v.astype(np.float32) for k, v in out.items()}


def photos() -> dict[str, np.ndarray]:
    """The photos: ``data/content``'s, scikit-image's ``rocket`` and ``motorcycle`` if installed, and a
    600×512 portrait (see the module docstring)."""
    from nstdream_utils import data, images

    out = {name: images.load_image(data.content_path(name)) for name in data.CONTENT_NAMES}
    try:
        import skimage.data

        out["rocket"] = np.asarray(skimage.data.rocket(), np.float32) / 255.0
        out["motorcycle"] = np.asarray(skimage.data.stereo_motorcycle()[0], np.float32) / 255.0
    except Exception:  # noqa: BLE001 - optional extra photos; the JSON line says which ran
        pass
    out["portrait"] = images.resize(out["astronaut"], exact=(600, 512))
    return out


def styles() -> dict[str, np.ndarray]:
    """The eight bundled styles and :func:`generated_styles`."""
    from nstdream_utils import data, images

    out = {name: images.load_image(data.style_path(name)) for name in data.STYLE_NAMES}
    return {**out, **generated_styles()}


def preset_config(name: str):
    """The NST config a ``--presets`` name stands for (see the module docstring)."""
    import dataclasses

    from nstdream_utils import presets

    if name == "paper-keras":
        return dataclasses.replace(presets.PAPER.nst, sgd_guard_factor=None)
    if name == "quick-sgd":
        return dataclasses.replace(presets.PAPER.nst, size=presets.QUICK.nst.size, sgd_guard_factor=None,
                                   learning_rate=SGD_BASELINE_LR)
    return presets.get_preset(name).nst


def run_one(content: np.ndarray, style: np.ndarray, cfg, size: int, steps: int) -> dict:
    """One run: ``{"diverged", "spiked", "above_start", "first", "final", "seconds", "retries"}``."""
    from nstdream_utils import nst
    from nstdream_utils.errors import NonFiniteLossError

    start = time.perf_counter()
    try:
        result = nst.style_transfer(content, style, config=cfg, size=size, num_steps=steps, progress=False)
        total = result.history["total"]
        retries = int(sum(result.history.get("retries", [])))
    except NonFiniteLossError:
        return {"diverged": True, "spiked": True, "above_start": True, "first": None, "final": None,
                "seconds": time.perf_counter() - start, "retries": 0}
    return {"diverged": False, "spiked": bool(max(total) > total[0]), "above_start": bool(total[-1] > total[0]),
            "first": total[0], "final": total[-1], "seconds": time.perf_counter() - start, "retries": retries}


def _pick(requested: str, available: dict) -> dict:
    if requested == "all":
        return available
    names = requested.split(",")
    unknown = [n for n in names if n not in available]
    if unknown:
        raise SystemExit(f"unknown name(s) {unknown}; choose from {sorted(available)}")
    return {n: available[n] for n in names}


def at_rate(run: dict, rates: dict[str, float]) -> bool:
    """Whether a run was made at the learning rate ``rates`` gives its preset (a run without one is taken to)."""
    return run.get("learning_rate", rates.get(run["preset"])) == rates.get(run["preset"])


def _done(path: Path | None, rates: dict[str, float]) -> dict[tuple, dict]:
    """The runs already in ``--runs`` at their preset's learning rate (``at_rate``), by (preset, photo, style,
    size, steps); a torn last line is ignored."""
    done = {}
    if path is not None and path.exists():
        for line in path.read_text().splitlines():
            try:
                r = json.loads(line)
                if at_rate(r, rates):
                    done[(r["preset"], r["photo"], r["style"], r["size"], r["steps"])] = r
            except (json.JSONDecodeError, KeyError, TypeError):
                continue
    return done


def summarize(runs: list[dict]) -> dict:
    """Counts per preset: runs, diverged, spiked, ended above start, runs with a guard retry, largest last ÷ first."""
    by_preset: dict[str, dict] = {}
    for r in runs:
        c = by_preset.setdefault(r["preset"], {"runs": 0, "diverged": 0, "spiked": 0, "ended_above_start": 0,
                                               "runs_with_retries": 0, "final_over_first_max": 0.0, "seconds": 0.0})
        c["runs"] += 1
        c["diverged"] += r["diverged"]
        c["spiked"] += r["spiked"]
        c["ended_above_start"] += r["above_start"]
        c["runs_with_retries"] += r["retries"] > 0
        c["seconds"] += r["seconds"]
        if not r["diverged"]:
            c["final_over_first_max"] = max(c["final_over_first_max"], r["final"] / r["first"])
    return by_preset


def main() -> None:
    parser = argparse.ArgumentParser(description="NST stress matrix: presets × photos × styles × sizes.")
    parser.add_argument("--presets", default=",".join(PRESETS),
                        help=f"comma-separated, from {', '.join(PRESETS + EXTRA_PRESETS)}")
    parser.add_argument("--photos", default="all")
    parser.add_argument("--styles", default="all")
    parser.add_argument("--sizes", default="64,96,128,224")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--runs", type=Path, help="JSONL file: append each run, skip runs already in it")
    parser.add_argument("--shard", default="0/1", help="K/N: run the K-th of N parts of the matrix (K from 0)")
    parser.add_argument("--failures", action="store_true", help="list each run that diverged, spiked or ended above")
    args = parser.parse_args()
    common.setup_env()
    shard, n_shards = (int(x) for x in args.shard.split("/"))
    if not 0 <= shard < n_shards:
        raise SystemExit(f"--shard K/N needs 0 ≤ K < N, got {args.shard}")

    content_images, style_images = _pick(args.photos, photos()), _pick(args.styles, styles())
    sizes = [int(s) for s in args.sizes.split(",")]
    matrix = [(preset, photo, style, size, args.steps) for preset in args.presets.split(",")
              for photo in content_images for style in style_images for size in sizes]
    configs = {preset: preset_config(preset) for preset in args.presets.split(",")}
    rates = {preset: float(cfg.learning_rate) for preset, cfg in configs.items()}
    done = _done(args.runs, rates)
    machine = common.machine()
    commit = common.commit()
    start = time.perf_counter()
    for i, key in enumerate(matrix):
        if (i // len(sizes) + i % len(sizes)) % n_shards != shard or key in done:  # every size in every shard
            continue
        preset, photo, style, size, steps = key
        r = run_one(content_images[photo], style_images[style], configs[preset], size, steps)
        r.update(preset=preset, photo=photo, style=style, size=size, steps=steps, learning_rate=rates[preset],
                 commit=commit, cpu=machine["cpu"], cpu_simd=[f for f in machine["cpu_simd"] if f in SIMD_NOTED])
        done[key] = r
        if args.runs is not None:
            with open(args.runs, "a+b") as f:
                torn = False  # the last line cut off by a killed run: start on a new line
                if f.seek(0, 2) > 0:
                    f.seek(-1, 2)
                    torn = f.read(1) != b"\n"
                f.write(b"\n" * torn + (json.dumps(r) + "\n").encode())
    done = {**done, **_done(args.runs, rates)}  # runs other shards finished meanwhile
    runs = [done[k] for k in matrix if k in done]
    record = {"benchmark": "nst_stress", **machine, "steps": args.steps, "sizes": sizes,
              "photos": list(content_images), "styles": list(style_images), "presets": summarize(runs),
              "runs_in_matrix": len(matrix), "runs_found": len(runs),
              "commits": sorted({r.get("commit", "unknown") for r in runs}),
              "cpus": sorted({r.get("cpu", "unknown") for r in runs}), "seconds": time.perf_counter() - start}
    if args.failures:
        record["failures"] = ["/".join(map(str, k[:4])) for k in matrix
                              if k in done and (done[k]["diverged"] or done[k]["spiked"] or done[k]["above_start"])]
    common.emit(record)


if __name__ == "__main__":
    main()
