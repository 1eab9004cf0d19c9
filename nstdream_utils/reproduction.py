"""Reproduce the paper's numbers: every loss Al-Khazraji, Abbas & Jamil (2022) print, beside ours.

One command makes them all (about an hour on 2 CPU cores; resumable)::

    python -m nstdream_utils.reproduction run --preset paper --out results/paper

For each content × style it runs the paper's pipeline (``pipeline.run_pipeline``: NST, resize to
299×299, DeepDream) and writes ``<out>/<content>__<style>.json`` (parameters, both loss curves,
``nst_loss_1000``, ``dream_loss_900``, seconds, the md5 of both weight files) and two small PNGs;
it dreams on each unstylised content too (``<content>__original.json``); last it writes
``<out>/summary.json`` with the paper's numbers beside ours. Each run's files are written
atomically as soon as it ends, and a run whose JSON and PNGs exist (with the same parameters) is
skipped, so a crashed or interrupted job resumes where it stopped.

Numbers: ``history["total"][k]`` is the NST loss *before* update ``k`` — what keras-io prints at
"iteration k+1" — so "the loss after 1000 iterations" is ``history["total"][999]``;
``history["loss"][900]`` is the DeepDream tutorial's "step 900".

Taught in notebook 06.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import platform
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import files
from .data import PAPER_STYLES

# --------------------------------------------------------------------------------------------------
# The paper's numbers
# --------------------------------------------------------------------------------------------------

PAPER_NST_LOSS_10000: dict[str, float] = {
    "triangle": 10431.64,
    "circular": 23225.48,
    "spiral": 40709.7,
    "3d_squares": 1788.9,
}
"""NST loss after 10,000 iterations, per style image, as printed in the paper (its Figs 6–9)."""

PAPER_DREAM_LOSS_900: dict[str, float] = {
    "triangle": 3.8166,
    "3d_squares": 3.1598,
    "circular": 3.0736,
    "spiral": 3.0087,
}
"""DeepDream loss at step 900 (step size 0.005, 1000 steps, 299×299) on each stylised image."""

PAPER_ORIGINAL_DREAM_LOSS_900: float = 3.6324
"""DeepDream loss at step 900 on the unstylised content image."""

PAPER_CLAIM = "distorted (busy) images give higher NST loss and lower dream loss"

NST_INDEX = 999
"""``history["total"][999]``: the loss keras-io prints at iteration 1000 (before that update)."""

DREAM_INDEX = 900
"""``history["loss"][900]``: the DeepDream tutorial's "step 900"."""

ORIGINAL = "original"
"""The pseudo-style name of the dream on the unstylised content image."""


# --------------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------------


def _at(values: Sequence[float | None] | None, index: int) -> float | None:
    """``values[index]`` as a float, or None when the list is shorter or the value is not finite."""
    if not values or len(values) <= index or values[index] is None:
        return None
    value = float(values[index])
    return value if math.isfinite(value) else None


def _last(values: Sequence[float | None] | None) -> float | None:
    return _at(values, len(values) - 1) if values else None


def run_name(content: str, style: str) -> str:
    """The file stem of one run: ``<content>__<style>`` (``style`` may be ``"original"``)."""
    return f"{content}__{style}"


def versions() -> dict[str, str]:
    """Versions of Python, NumPy, TensorFlow, Keras and this package (imports TensorFlow)."""
    import keras
    import tensorflow as tf

    from . import __version__

    return {"python": platform.python_version(), "numpy": np.__version__, "tensorflow": tf.__version__,
            "keras": keras.__version__, "nstdream": __version__}


def weights_md5() -> dict[str, dict[str, str]]:
    """File name and md5 of the VGG-19 and Inception v3 weight files in use (``weights.resolve``)."""
    from . import weights

    out = {}
    for name in ("vgg19", "inception_v3"):
        path = weights.resolve(name)
        out[name] = {"file": path.name, "md5": weights.md5(path)}
    return out


def resolve_configs(preset: str = "paper", *, nst_steps: int | None = None, dream_steps: int | None = None,
                    nst_size: int | None = None, dream_size: int | None = None):
    """The (NSTConfig, DreamConfig) a run uses: the preset's, with the given overrides (None keeps)."""
    from .presets import get_preset, validate_dream, validate_nst

    chosen = get_preset(preset)
    nst_cfg = validate_nst(chosen.nst.replace(num_steps=nst_steps, size=nst_size))
    dream_cfg = validate_dream(chosen.dream.replace(num_steps=dream_steps, size=dream_size))
    return nst_cfg, dream_cfg


def _parameters(preset: str, nst_cfg, dream_cfg, seed: int) -> dict[str, Any]:
    return files.to_jsonable({"preset": preset, "seed": seed, "nst": dataclasses.asdict(nst_cfg),
                              "dream": dataclasses.asdict(dream_cfg)})


def _read_json(path: Path) -> dict | None:
    import json

    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _done(out: Path, name: str, pngs: Iterable[str], parameters: dict) -> dict | None:
    """The stored record of run ``name`` if its JSON and PNGs exist and its parameters match."""
    record = _read_json(out / f"{name}.json")
    if record is None or record.get("status") != "completed" or record.get("parameters") != parameters:
        return None
    if not all((out / png).is_file() for png in pngs):
        return None
    return record


# --------------------------------------------------------------------------------------------------
# The runner
# --------------------------------------------------------------------------------------------------


def run_paper(out_dir: str | Path = "results/paper", *, preset: str = "paper",
              styles: Sequence[str] = PAPER_STYLES, contents: Sequence[str] = ("astronaut",),
              nst_steps: int | None = None, dream_steps: int | None = None, nst_size: int | None = None,
              dream_size: int | None = None, recompute: bool = False, seed: int = 0,
              log: Callable[[str], None] | None = print) -> dict:
    """Run the paper's experiments (every content × style, plus a dream on each content) and summarise.

    Args:
        out_dir: folder for the JSONs, PNGs and ``summary.json`` (created if missing).
        preset: ``"paper"`` (the paper's sizes and steps), ``"quick"`` or ``"tf-tutorial"``.
        styles: style names (``data.STYLE_NAMES``); the paper's four by default.
        contents: content names (``data.CONTENT_NAMES``); the first one fills the summary's tables.
        nst_steps, dream_steps, nst_size, dream_size: override the preset (None keeps it).
        recompute: run again even when a run's files exist.
        seed: seeds both stages of every run.
        log: called with one line per run (None: silent).

    Returns:
        The summary (also written to ``<out_dir>/summary.json``), see :func:`summarize`.

    Note:
        Each run's files are written as soon as it ends; a run whose JSON (status completed, same
        parameters) and PNGs exist is read back instead of recomputed. ``summary["ran"]`` lists the
        runs this call computed.
    """
    from . import data, images, pipeline
    from .dream import deep_dream

    say = log or (lambda line: None)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    nst_cfg, dream_cfg = resolve_configs(preset, nst_steps=nst_steps, dream_steps=dream_steps,
                                         nst_size=nst_size, dream_size=dream_size)
    parameters = _parameters(str(preset), nst_cfg, dream_cfg, seed)
    for name in styles:
        data.style_path(name)  # fail before any compute on a bad or missing name
    for name in contents:
        data.content_path(name)
    md5s = weights_md5()
    records: dict[str, dict] = {}
    ran: list[str] = []

    for content in contents:
        content_image = images.load_image(data.content_path(content))
        for style in styles:
            name = run_name(content, style)
            pngs = (f"{name}__stylized.png", f"{name}__dreamed.png")
            record = None if recompute else _done(out, name, pngs, parameters)
            if record is not None:
                say(f"{name}: done before, skipped")
                records[name] = record
                continue
            start = time.perf_counter()
            result = pipeline.run_pipeline(content_image, images.load_image(data.style_path(style)),
                                           preset=preset, nst_size=nst_cfg.size,
                                           nst_steps=nst_cfg.num_steps, dream_size=dream_cfg.size,
                                           dream_steps=dream_cfg.num_steps, seed=seed, progress=False)
            seconds = time.perf_counter() - start
            images.save_image(result.stylized, out / pngs[0])
            images.save_image(result.dreamed, out / pngs[1])
            nst_loss = result.nst.history["total"]
            dream_loss = result.dream.history["loss"]
            record = files.to_jsonable({
                "content": content, "style": style, "status": result.status, "parameters": parameters,
                "nst_loss": nst_loss, "nst_content_loss": result.nst.history["content"],
                "nst_style_loss": result.nst.history["style"], "nst_tv_loss": result.nst.history["tv"],
                "nst_loss_1000": _at(nst_loss, NST_INDEX), "nst_loss_final": _last(nst_loss),
                "dream_loss": dream_loss, "dream_loss_900": _at(dream_loss, DREAM_INDEX),
                "dream_loss_final": _last(dream_loss), "seconds": seconds, "weights": md5s,
                "images": {"stylized": pngs[0], "dreamed": pngs[1]},
            })
            files.write_json(record, out / f"{name}.json")
            records[name] = record
            ran.append(name)
            say(f"{name}: nst loss {_fmt(record['nst_loss_final'])} after {len(nst_loss)} steps, "
                f"dream loss {_fmt(record['dream_loss_final'])} after {len(dream_loss)} steps, "
                f"{seconds:.0f} s")

        name = run_name(content, ORIGINAL)
        pngs = (f"{name}__dreamed.png",)
        record = None if recompute else _done(out, name, pngs, parameters)
        if record is not None:
            say(f"{name}: done before, skipped")
        else:
            start = time.perf_counter()
            result = deep_dream(content_image, config=dream_cfg, seed=seed, progress=False)
            seconds = time.perf_counter() - start
            images.save_image(result.image, out / pngs[0])
            dream_loss = result.history["loss"]
            record = files.to_jsonable({
                "content": content, "style": ORIGINAL, "status": result.status, "parameters": parameters,
                "dream_loss": dream_loss, "dream_loss_900": _at(dream_loss, DREAM_INDEX),
                "dream_loss_final": _last(dream_loss), "seconds": seconds, "weights": md5s,
                "images": {"dreamed": pngs[0]},
            })
            files.write_json(record, out / f"{name}.json")
            ran.append(name)
            say(f"{name}: dream loss {_fmt(record['dream_loss_final'])} after {len(dream_loss)} steps, "
                f"{seconds:.0f} s")
        records[name] = record

    summary = summarize(records, preset=str(preset), parameters=parameters, contents=contents,
                        styles=styles, md5s=md5s)
    files.write_json(summary, out / "summary.json")
    summary["ran"] = ran
    say(f"summary: {out / 'summary.json'} ({len(ran)} runs computed, {len(records) - len(ran)} reused)")
    return summary


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"


def summarize(records: dict[str, dict], *, preset: str, parameters: dict, contents: Sequence[str],
              styles: Sequence[str], md5s: dict) -> dict:
    """The summary of a set of runs: per style the first content's numbers beside the paper's.

    Returns:
        A dict with ``preset``, ``parameters`` (``preset``, ``seed``, ``nst`` and ``dream`` configs),
        ``weights`` (file and md5 per network), ``versions``, ``content`` (the first content),
        ``contents``, ``styles`` (style → ``nst_loss_1000``, ``dream_loss_900``, ``nst_loss_final``,
        ``dream_loss_final``, ``paper_nst_loss_10000``, ``paper_dream_loss_900``, ``by_content``),
        ``original_dream_loss_900`` (+ ``original_by_content``), ``paper`` (all the paper's numbers)
        and ``runs`` (the file stem of every run).
    """
    first = contents[0]
    keys = ("nst_loss_1000", "nst_loss_final", "dream_loss_900", "dream_loss_final")
    per_style = {}
    for style in styles:
        by_content = {c: {k: records[run_name(c, style)].get(k) for k in keys} for c in contents}
        per_style[style] = {**by_content[first], "by_content": by_content,
                            "paper_nst_loss_10000": PAPER_NST_LOSS_10000.get(style),
                            "paper_dream_loss_900": PAPER_DREAM_LOSS_900.get(style)}
    originals = {c: {k: records[run_name(c, ORIGINAL)].get(k) for k in ("dream_loss_900", "dream_loss_final")}
                 for c in contents}
    return files.to_jsonable({
        "preset": preset, "parameters": parameters, "weights": md5s, "versions": versions(),
        "content": first, "contents": list(contents), "styles": per_style,
        "original_dream_loss_900": originals[first]["dream_loss_900"],
        "original_dream_loss_final": originals[first]["dream_loss_final"],
        "original_by_content": originals,
        "paper": {"nst_loss_10000": PAPER_NST_LOSS_10000, "dream_loss_900": PAPER_DREAM_LOSS_900,
                  "original_dream_loss_900": PAPER_ORIGINAL_DREAM_LOSS_900},
        "runs": sorted(records),
    })


# --------------------------------------------------------------------------------------------------
# python -m nstdream_utils.reproduction
# --------------------------------------------------------------------------------------------------


def _names(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.replace(",", " ").split() if part.strip())


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m nstdream_utils.reproduction run [--preset paper] [--out results/paper] ...``."""
    from .errors import NstdreamError

    parser = argparse.ArgumentParser(prog="python -m nstdream_utils.reproduction",
                                     description="Reproduce the paper's numbers beside ours.")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run every content × style and the original dreams; write summary.json")
    run.add_argument("--preset", default="paper", help="paper (default), quick or tf-tutorial")
    run.add_argument("--out", default="results/paper", help="output folder (default results/paper)")
    run.add_argument("--contents", default="astronaut", help="content names, comma-separated")
    run.add_argument("--styles", default=",".join(PAPER_STYLES), help="style names, comma-separated")
    run.add_argument("--nst-steps", type=int, default=None, help="override the preset's NST steps")
    run.add_argument("--dream-steps", type=int, default=None, help="override the preset's dream steps")
    run.add_argument("--nst-size", type=int, default=None, help="override the NST size (px)")
    run.add_argument("--dream-size", type=int, default=None, help="override the dream size (px)")
    run.add_argument("--seed", type=int, default=0)
    run.add_argument("--recompute", action="store_true", help="run again even when results exist")
    args = parser.parse_args(argv)
    try:
        if args.command == "run":
            run_paper(args.out, preset=args.preset, styles=_names(args.styles), contents=_names(args.contents),
                      nst_steps=args.nst_steps, dream_steps=args.dream_steps, nst_size=args.nst_size,
                      dream_size=args.dream_size, recompute=args.recompute, seed=args.seed,
                      log=lambda line: print(line, flush=True))
    except NstdreamError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
