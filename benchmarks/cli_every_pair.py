"""``nstdream style PHOTO STYLE -o out.png`` with no other flag, on every photo × style pair: one JSON line.

    .venv/bin/python benchmarks/cli_every_pair.py [--photos all] [--styles all] [--out build/cli_every_pair]

The photos and styles are the stress matrix's (``nst_stress.photos()`` / ``nst_stress.styles()``:
the bundled ones, scikit-image's, a 600×512 portrait and the generated high-energy styles), written
as PNG files so that the command reads them as a user's files. Each pair runs the command as a user
types it (a new process, the default preset, ``--metrics`` added to read the losses) and counts as
**stylised** when the command exits 0, writes the PNG, and its last NST loss is finite and below its
first. The JSON line has the counts, the pairs that were not stylised, and the seconds per run;
``OUT/contact_sheet.png`` shows every output (rows: photos, columns: styles).
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from pathlib import Path

import common
import nst_stress


def run_pair(photo: Path, style: Path, out: Path) -> dict:
    """One command line; ``{"code", "stylised", "first", "final", "seconds", "error"}``."""
    metrics = out.with_suffix(".json")
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "nstdream_utils.cli", "style", str(photo), str(style), "-o", str(out),
                           "--metrics", str(metrics)], capture_output=True, text=True)
    seconds = time.perf_counter() - start
    record = {"code": done.returncode, "stylised": False, "first": None, "final": None, "seconds": seconds,
              "error": done.stderr.strip().splitlines()[-1] if done.returncode else None}
    if done.returncode == 0 and out.is_file() and metrics.is_file():
        losses = json.loads(metrics.read_text())["loss"]
        record.update(first=losses[0], final=losses[-1])
        record["stylised"] = math.isfinite(losses[-1]) and losses[-1] < losses[0]
    return record


def contact_sheet(grid: dict[str, dict[str, Path]], path: Path) -> None:
    """Every output image, one row per photo and one column per style."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    photos, styles = list(grid), list(next(iter(grid.values())))
    fig, axes = plt.subplots(len(photos), len(styles), figsize=(1.3 * len(styles), 1.3 * len(photos)), squeeze=False)
    for row, photo in enumerate(photos):
        for col, style in enumerate(styles):
            ax = axes[row][col]
            ax.set_xticks([])
            ax.set_yticks([])
            if grid[photo][style].is_file():
                ax.imshow(Image.open(grid[photo][style]).convert("RGB"))
            if row == 0:
                ax.set_title(style, fontsize=6)
            if col == 0:
                ax.set_ylabel(photo, fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", default="all")
    parser.add_argument("--styles", default="all")
    parser.add_argument("--out", default="build/cli_every_pair")
    args = parser.parse_args()
    common.setup_env()
    from nstdream_utils import images

    out = Path(args.out)
    inputs = out / "inputs"
    inputs.mkdir(parents=True, exist_ok=True)
    photo_files = {name: images.save_image(image, inputs / f"photo_{name}.png")
                   for name, image in nst_stress._pick(args.photos, nst_stress.photos()).items()}
    style_files = {name: images.save_image(image, inputs / f"style_{name}.png")
                   for name, image in nst_stress._pick(args.styles, nst_stress.styles()).items()}
    results, grid = {}, {}
    for photo, photo_file in photo_files.items():
        grid[photo] = {}
        for style, style_file in style_files.items():
            grid[photo][style] = out / f"{photo}__{style}.png"
            results[f"{photo}/{style}"] = run_pair(Path(photo_file), Path(style_file), grid[photo][style])
            print(f"{photo}/{style}: {results[f'{photo}/{style}']}", file=sys.stderr, flush=True)
    contact_sheet(grid, out / "contact_sheet.png")
    seconds = [r["seconds"] for r in results.values()]
    common.emit({"benchmark": "cli_every_pair", **common.machine(), "command": "nstdream style PHOTO STYLE -o OUT.png",
                 "photos": list(photo_files), "styles": list(style_files), "runs": len(results),
                 "stylised": sum(r["stylised"] for r in results.values()),
                 "exit_nonzero": sum(r["code"] != 0 for r in results.values()),
                 "not_stylised": [name for name, r in results.items() if not r["stylised"]],
                 "largest_final_over_first": max((r["final"] / r["first"] for r in results.values() if r["final"]),
                                                 default=None),
                 "seconds_per_run": {"min": min(seconds), "max": max(seconds), "mean": sum(seconds) / len(seconds)}})


if __name__ == "__main__":
    main()
