"""The numbers of Al-Khazraji, Abbas & Jamil (2022) beside ours, from notebook 06 run as a batch. Notebook 07."""

import argparse
import dataclasses
import json
import math
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np

from . import __version__, batch, claim, data, device, files, images, weights
from .errors import NstdreamError
from .presets import check_checkpointable, get_preset, resolve

# The paper's printed losses: NST after 10,000 iterations; DeepDream at step 900 (step size 0.005, 299×299).
PAPER_NST_LOSS_10000 = {"triangle": 10431.64, "circular": 23225.48, "spiral": 40709.7, "3d_squares": 1788.9}
PAPER_DREAM_LOSS_900 = {"triangle": 3.8166, "circular": 3.0736, "spiral": 3.0087, "3d_squares": 3.1598}
PAPER_ORIGINAL_DREAM_LOSS_900 = 3.6324
NST_INDEX, DREAM_INDEX = 999, 899  # keras-io's loss printed at iteration 1000, the tutorial's "Step 900"
ORIGINAL = "original"  # the pseudo-style of the dream on the unstylised photo
REPO = Path(__file__).resolve().parents[1]
COMMAND = ("python -m nstdream_utils.reproduction run --preset paper --out results/paper "
           "--styles triangle,circular,spiral,3d_squares --contents astronaut,chelsea,coffee")
CLAIM_DIR = "results/claim"
CLAIM_COMMAND = ("python -m nstdream_utils.reproduction run --preset quick --out results/claim "
                 "--contents astronaut,chelsea,coffee,rocket,camera")
LONG_DIR, LR_DIR, LR_RATES = "results/paper_10k", "results/lr_study", (1.0, 3.0, 10.0, 30.0, 100.0)
LONG_COMMAND = (f"python -m nstdream_utils.reproduction run --preset paper --out {LONG_DIR} "
                "--styles triangle,circular,spiral,3d_squares --nst-steps 10000 --checkpoints")
LR_COMMAND = f"python -m nstdream_utils.reproduction lr-study --out {LR_DIR}"


def _at(values: Sequence[float | None] | None, index: int) -> float | None:
    """``values[index]`` as a float; None when out of range or not finite."""
    value = values[index] if values and -len(values) <= index < len(values) else None
    return float(value) if value is not None and math.isfinite(value) else None


def run_name(content: str, style: str) -> str:
    """The file stem of one run: ``<content>__<style>`` (``style`` may be ``"original"``)."""
    return f"{content}__{style}"


def resolve_configs(preset: str = "paper", *, nst_steps: int | None = None, dream_steps: int | None = None,
                    nst_size: int | None = None, dream_size: int | None = None, learning_rate: float | None = None):
    """The (NSTConfig, DreamConfig) of a run: the preset's, with the overrides that are not None (InputError)."""
    chosen = resolve(preset, nst={"num_steps": nst_steps, "size": nst_size, "learning_rate": learning_rate},
                     dream={"num_steps": dream_steps, "size": dream_size})
    return chosen.nst, chosen.dream


def _made(preset: str, seed: int, nst_cfg, dream_cfg, command: str | None) -> dict:
    """The parameters, weights and provenance (commit, dirty: files differ from it, versions, machine) of a run."""
    import keras
    import tensorflow as tf

    def git(*args: str) -> str | None:
        done = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True) if shutil.which("git") else None
        return done.stdout.strip() if done and done.returncode == 0 else None

    changed = git("status", "--porcelain", "--untracked-files=no", "--", "nstdream_utils", "notebooks", "data",
                  "pyproject.toml")
    flags = device.cpu_flags() & {"avx2", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16", "amx_fp16"}
    paths = {name: weights.resolve(name) for name in ("vgg19", "inception_v3")}
    parameters = files.to_jsonable({"preset": preset, "seed": seed, "nst": dataclasses.asdict(nst_cfg),
                                    "dream": dataclasses.asdict(dream_cfg)})
    return {"parameters": parameters, "provenance": {
        "commit": git("rev-parse", "HEAD"), "dirty": None if changed is None else bool(changed),
        "versions": {"python": sys.version.split()[0], "numpy": np.__version__, "tensorflow": tf.__version__,
                     "keras": keras.__version__, "nstdream": __version__},
        "machine": {"cpu": device.cpu_model(), "cores": os.cpu_count(), "cpu_flags": sorted(flags),
                    "gpus": [getattr(g, "name", str(g)) for g in device.gpus()]},
        "command": command or "python -c 'nstdream_utils.reproduction.run_paper(...)'"},
        "weights": {name: {"file": path.name, "md5": weights.md5(path)} for name, path in paths.items()}}


def _record(out: Path, content: str, style: str, made: dict, dream: list, nst: dict | None = None, **run) -> dict:
    """Write ``<out>/<content>__<style>.json``: ``run``, the dream and ``nst`` curves and their values we report."""
    if nst:
        eq6 = [0.5 * c + s for c, s in zip(nst["content_loss"], nst["style_loss"])]  # the paper's Eq 6: ½, no TV
        run.update({f"nst_{term}_loss": nst[f"{term}_loss"] for term in ("content", "style", "tv")},
                   nst_loss=nst["loss"], nst_loss_1000=_at(nst["loss"], NST_INDEX), nst_loss_final=_at(nst["loss"], -1),
                   nst_loss_eq6_1000=_at(eq6, NST_INDEX), nst_loss_eq6_final=_at(eq6, -1))
    record = files.to_jsonable({"content": content, "style": style, **run, "dream_loss": dream,
                                "dream_loss_900": _at(dream, DREAM_INDEX), "dream_loss_final": _at(dream, -1), **made})
    files.write_json(record, out / f"{run_name(content, style)}.json")
    return record


def run_paper(out_dir: str | Path = "results/paper", *, preset: str = "paper",
              styles: Sequence[str] = data.PAPER_STYLES, contents: Sequence[str] = ("astronaut",),
              recompute: bool = False, seed: int = 0, log: Callable | None = print, workers: int | None = None,
              scheduler: str | None = None, command: str | None = None, checkpoints: bool = False,
              **overrides) -> dict:
    """Notebook 06 on each content × style (a resumable batch), a dream on each content; the summary, ran, failed.
    ``checkpoints``: each NST saves itself to ``<out_dir>/checkpoints`` every 500 steps, and a run stopped part-way
    through its NST goes on from there when the command is run again (the file goes when its NST completes)."""
    from .dream import deep_dream
    say, out = log or (lambda line: None), Path(out_dir)
    nst_cfg, dream_cfg = resolve_configs(preset, **overrides)
    pairs = [(c, s) for c in contents for s in styles]
    saved = {pair: out / "checkpoints" / f"{run_name(*pair)}.npz" for pair in pairs}
    if checkpoints:
        check_checkpointable(nst_cfg, f"checkpoints (preset {preset})")
        (out / "checkpoints").mkdir(parents=True, exist_ok=True)
    made = _made(preset, seed, nst_cfg, dream_cfg, command)
    given = {} if overrides.get("learning_rate") is None else {"learning_rate": float(nst_cfg.learning_rate)}
    spec = batch.GridSpec.from_dict({"notebook": "notebooks/06_nst_to_deepdream.ipynb", "parameters": {
        "preset": preset, "size": nst_cfg.size, "nst_steps": nst_cfg.num_steps, "dream_size": dream_cfg.size,
        "dream_steps": dream_cfg.num_steps, "seed": seed, **given},
        "runs": [{"content": os.path.relpath(data.content_path(c), REPO),  # the run ids hold no checkout path
                  "style": os.path.relpath(data.style_path(s), REPO),
                  **({"checkpoint": os.path.relpath(saved[c, s].resolve(), REPO / "notebooks")} if checkpoints else {})}
                 for c, s in pairs]}, base_dir=REPO)
    for run in batch.validate(spec) if recompute else ():  # these runs afresh
        shutil.rmtree(out / "batch" / "runs" / run.run_id, ignore_errors=True)
    for path in saved.values() if recompute else ():
        path.unlink(missing_ok=True)
    result = batch.run_batch(spec, out / "batch", workers=workers, scheduler=scheduler, progress=log is not None)
    old = {run_name(r["content"], r["style"]): r for r in load_records(out, made["parameters"])}
    records, ran, failed = {}, [], {}
    for (content, style), entry in zip(pairs, result.records):
        name, run_id = run_name(content, style), entry["run_id"]
        if entry["status"] != "completed":
            failed[name] = entry.get("error") or entry["status"]  # the batch's error: ename, evalue, cell
            (out / f"{name}.json").unlink(missing_ok=True)  # no record of an earlier run stands in for it
            say(f"{name}: batch run {run_id} failed, left out: {failed[name]}")
        elif entry.get("skipped") and old.get(name, {}).get("batch_run") == run_id:
            records[name] = old[name]
        else:  # notebook 06's metrics.json and PNGs become a record and two PNGs here
            folder = out / "batch" / "runs" / run_id
            metrics = json.loads((folder / "metrics.json").read_text(encoding="utf-8"))
            pngs = {kind: f"{name}__{kind}.png" for kind in ("stylized", "dreamed")}
            for kind, png in pngs.items():
                files.atomic_write_bytes((folder / f"{kind}.png").read_bytes(), out / png)
            records[name] = _record(out, content, style, made, metrics["dream"]["loss"], metrics["nst"], error=None,
                                    status=metrics["status"], images=pngs, batch_run=run_id,
                                    seconds=metrics["nst"]["seconds"] + metrics["dream"]["seconds"])
            ran.extend([] if entry.get("skipped") else [name])
    for content in contents:
        name, png = run_name(content, ORIGINAL), f"{content}__{ORIGINAL}__dreamed.png"
        if recompute or name not in old or not (out / png).is_file():
            dreamed = deep_dream(images.load_image(data.content_path(content)), config=dream_cfg, seed=seed,
                                 progress=False)
            images.save_image(dreamed.image, out / png)
            old[name] = _record(out, content, ORIGINAL, made, dreamed.history["loss"], status=dreamed.status,
                                seconds=dreamed.history["seconds"][-1], images={"dreamed": png})
            ran.append(name)
        records[name] = old[name]
    # the first content's losses per style (None: failed), also at the top level (summary["triangle"])
    dream_keys = ("dream_loss_900", "dream_loss_final")
    keys = ("nst_loss_1000", "nst_loss_eq6_1000", "nst_loss_final", "nst_loss_eq6_final", *dream_keys)
    first = {s: records.get(run_name(contents[0], s), {}) for s in (*styles, ORIGINAL)}
    per_style = {s: {k: first[s].get(k) for k in keys} for s in styles}
    summary = files.to_jsonable({
        **{s: {k: entry[k] for k in ("nst_loss_1000", "dream_loss_900")} for s, entry in per_style.items()},
        **{f"original_{k}": first[ORIGINAL].get(k) for k in dream_keys}, **made, "preset": preset,
        "versions": made["provenance"]["versions"], "content": contents[0], "contents": list(contents),
        "styles": per_style, "runs": sorted(records)})
    files.write_json(summary, out / "summary.json")
    say(f"summary: {out / 'summary.json'} ({len(ran)} runs computed, {len(failed)} failed)")
    return {**summary, "ran": ran, "failed": failed}


def lr_study(out_dir: str | Path = LR_DIR, *, rates: Sequence[float] = LR_RATES,
             styles: Sequence[str] = data.PAPER_STYLES, content: str = "astronaut", **kwargs) -> dict:
    """The paper preset's NST at each of ``rates`` (1,000 iterations) into ``<out_dir>/lr<rate>`` by
    :func:`run_paper`, the dream cut to 2 steps (only NST is studied); ``{rate: run_paper's result}``."""
    return {rate: run_paper(Path(out_dir) / f"lr{rate:g}", styles=styles, contents=(content,), learning_rate=rate,
                            dream_steps=2, **kwargs) for rate in rates}


def lr_table(out_dir: str | Path = LR_DIR) -> tuple[str, list[dict], float | None] | None:
    """The study's table of final NST loss per rate (each of :data:`LR_RATES` and any other run) and style (``*``:
    unstable by ``claim.STABILITY_RULE``), its records, and the rate it picks: the lowest median final loss among
    the rates whose every style ran and is stable (None if no rate qualifies). None before any run."""
    found = {float(f.name[2:]): {r["style"]: r for r in load_records(f) if r["style"] != ORIGINAL}
             for f in Path(out_dir).glob("lr*") if f.is_dir() and re.fullmatch(r"lr\d+(\.\d+)?", f.name)}
    found = {rate: runs for rate, runs in sorted(found.items()) if runs}
    if not found:
        return None
    lines, medians = [f"{'lr':>5}" + "".join(f"{s:>12}" for s in data.PAPER_STYLES)], {}
    missing = [rate for rate in LR_RATES if rate not in found]
    for rate, runs in sorted({**dict.fromkeys(missing, {}), **found}.items()):
        ok = {s: s in runs and bool(claim.stable(runs[s]["nst_loss"])) for s in data.PAPER_STYLES}
        cells = ["not run" if s not in runs else sig(runs[s]["nst_loss_final"]) + "*" * (not ok[s])
                 for s in data.PAPER_STYLES]
        lines.append(f"{rate:>5g}" + "".join(f"{c:>12}" for c in cells))
        if all(ok.values()):
            medians[rate] = float(np.median([runs[s]["nst_loss_final"] for s in data.PAPER_STYLES]))
    picked = min(medians, key=medians.get, default=None)
    lines.append("* unstable by the stability rule; " + ("no rate has all four styles run and stable" if picked is None
                 else f"picked: lr {picked:g}, the lowest median final loss of the rates with all four stable"
                 + (f" (so far: lr {', '.join(f'{r:g}' for r in missing)} not run)" if missing else ""))
                 + f"; the paper preset uses lr {get_preset('paper').nst.learning_rate:g}")
    return "\n".join(lines), [r for runs in found.values() for r in runs.values()], picked


def load_summary(out_dir: str | Path = "results/paper") -> dict:
    """``<out_dir>/summary.json`` (FileNotFoundError before the runs are made)."""
    return json.loads((Path(out_dir) / "summary.json").read_text(encoding="utf-8"))


def load_records(out_dir: str | Path = "results/paper", parameters: dict | None = None) -> list[dict]:
    """Every completed run record (originals included) in ``out_dir``; only those of ``parameters`` if given."""
    records = [json.loads(path.read_text(encoding="utf-8")) for path in sorted(Path(out_dir).glob("*__*.json"))]
    return [r for r in records if r.get("status") == "completed" and parameters in (None, r["parameters"])]


def at_last_iteration(records: Iterable[dict]) -> list[dict]:
    """``records`` with the NST loss after their last iteration where the claim test reads the one after 1,000."""
    return [{**r, "nst_loss_1000": r.get("nst_loss_final")} for r in records]


def paper_records() -> list[dict]:
    """The paper's own numbers as run records (one per paper style), for ``claim.evaluate``."""
    return [{"content": "paper", "style": s, "nst_loss_final": PAPER_NST_LOSS_10000[s],
             "dream_loss_900": PAPER_DREAM_LOSS_900[s]} for s in data.PAPER_STYLES]


def sig(value: float | None, digits: int = 4) -> str:
    """``value`` to ``digits`` significant digits, thousands separated (10431.64 → "10,430"); "n/a" if not finite."""
    if value is None or not math.isfinite(float(value)):
        return "n/a"
    rounded = float(f"{float(value):.{digits}g}")
    return f"{rounded:,.0f}" if abs(rounded) >= 10 ** (digits - 1) else f"{rounded:.{digits}g}"


def summary_tables(summary: dict, *, ours_key_nst: str = "nst_loss_1000", ours_key_dream: str = "dream_loss_900",
                   ours_key_eq6: str | None = "nst_loss_eq6_1000") -> tuple[list[dict], list[dict]]:
    """Tables 1 (NST) and 2 (dream, with original): style, paper, ours, ratio, eq6, paper_rank, our_rank per row."""
    ours = {**summary.get("styles", {}), ORIGINAL: {k[9:]: v for k, v in summary.items() if k.startswith("original_")}}
    nst_ratio = summary.get("parameters", {}).get("nst", {}).get("num_steps") == 10_000  # like for like
    tables, dream = [], {**PAPER_DREAM_LOSS_900, ORIGINAL: PAPER_ORIGINAL_DREAM_LOSS_900}
    for paper, key, ratio, eq6 in ((PAPER_NST_LOSS_10000, ours_key_nst, nst_ratio, ours_key_eq6),
                                   (dream, ours_key_dream, True, None)):
        names = [n for n in paper if n in ours]
        values = [ours[n].get(key) for n in names]
        tables.append([{"style": n, "paper": paper[n], "ours": o, "eq6": ours[n].get(eq6),
                        "ratio": o / paper[n] if ratio and o is not None else None,
                        "paper_rank": 1 + sum(paper[m] > paper[n] for m in names),  # 1 = highest; ties share
                        "our_rank": None if o is None else 1 + sum(v is not None and v > o for v in values)}
                       for n, o in zip(names, values)])
    return tables[0], tables[1]


def text_table(rows: list[dict], paper_label: str = "paper", ours_label: str = "ours") -> str:
    """:func:`summary_tables` rows as fixed-width text; the Eq 6 and ratio columns only where they have values."""
    columns = {"style": ("style", str), "paper": (paper_label, "{:,}".format), "ours": (ours_label, sig),
               "eq6": ("ours, paper's Eq 6", sig), "ratio": ("ours ÷ paper", lambda v: sig(v, 3)),
               "paper_rank": ("paper rank", str), "our_rank": ("our rank", lambda v: str(v or "n/a"))}
    keys = [k for k in columns if k not in ("eq6", "ratio") or any(r[k] is not None for r in rows)]
    table = [[columns[k][0] for k in keys]] + [[columns[k][1](r[k]) for k in keys] for r in rows]
    widths = [max(map(len, column)) for column in zip(*table)]
    return "\n".join("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))
                     for row in table)


def recipe_comparison(*, size: int = 64, num_steps: int = 20, seed: int = 0) -> dict:
    """The paper's and the TF tutorial's NST on the astronaut: losses, log10 medians, gaps, ρ; the closest recipes."""
    from . import nst
    recipes, styles = ("paper", "tf-tutorial"), data.PAPER_STYLES
    photo, paper = images.load_image(data.content_path("astronaut")), [PAPER_NST_LOSS_10000[s] for s in styles]
    paper_median, found = float(np.log10(np.median(paper))), {}
    for recipe in recipes:
        cfg = get_preset(recipe).nst.replace(size=size, num_steps=num_steps, square=True)
        losses = {s: _at(nst.style_transfer(photo, images.load_image(data.style_path(s)), config=cfg, seed=seed,
                                            progress=False).history["total"], -1) for s in styles}
        finite = [v for v in losses.values() if v is not None and v > 0]
        median = float(np.log10(np.median(finite))) if finite else None
        found[recipe] = {"losses": losses, "log10_median": median, "log10_paper_median": paper_median,
                         "magnitude_gap": None if median is None else abs(median - paper_median),
                         "spearman": claim.spearman(paper, [np.nan if v is None else v for v in losses.values()])}
    gaps = {r: v["magnitude_gap"] for r, v in found.items() if v["magnitude_gap"] is not None}
    rhos = {r: v["spearman"]["rho"] for r, v in found.items() if v["spearman"]["rho"] is not None}
    return {"styles": list(styles), "paper": dict(zip(styles, paper)), "recipes": found,
            "closest_scale": min(gaps, key=gaps.get, default=None), "best_order": max(rhos, key=rhos.get, default=None)}


_TESTS = """- **Test:** one-sided permutation test (α = 0.05, labels permuted within each photo) of the mean over photos
  of mean log loss(distorted) − mean log loss(clear); its exponential, the ratio distorted ÷ clear, has a bootstrap
  95 % interval over photos. One photo allows p ≥ 1/6. *Contradicted*: p < α the other way.
- **Secondary:** each distortion score of the style images, first checked against the labels, then its Spearman ρ
  with each loss within each photo, averaged over photos, tested against shuffles within each photo."""


def write_docs(out_dir: str | Path = "results/paper", path: str | Path = "docs/reproduction.md") -> Path:
    """Render ``path`` from the runs in ``out_dir`` and :data:`CLAIM_DIR`: every number comes from their files."""
    summary, claimed = load_summary(out_dir), load_summary(CLAIM_DIR)
    ours = {f"our {s['preset']} runs ({folder})": load_records(folder, s["parameters"])
            for s, folder in ((claimed, CLAIM_DIR), (summary, out_dir))}
    table1, table2 = summary_tables(summary)
    table1 = text_table(table1, "paper (10,000 it)", f"ours ({summary['parameters']['nst']['num_steps']:,} it)")
    study, long_text = lr_table(), "Not run yet."
    claims = list(ours.items())
    made_by = [*(r for runs in ours.values() for r in runs), *(study[1] if study else ())]
    if (Path(LONG_DIR) / "summary.json").is_file():  # the claim and Tables 1 and 2 at the last iteration
        long_summary = load_summary(LONG_DIR)
        long_records = load_records(LONG_DIR, long_summary["parameters"])
        made_by += long_records
        claims.append((f"our paper runs, 10,000 iterations ({LONG_DIR})", at_last_iteration(long_records)))
        long_tables = summary_tables(long_summary, ours_key_nst="nst_loss_final", ours_key_eq6="nst_loss_eq6_final")
        long_text = "\n".join(["```text", text_table(long_tables[0], "paper (10,000 it)", "ours (10,000 it)"), "",
                               text_table(long_tables[1]), "```"])
    claims.append(("the paper's printed numbers", paper_records()))
    made = ["- Weights: " + ", ".join(f"`{w['file']}` (md5 `{w['md5']}`)" for w in summary["weights"].values())
            + "; " + ", ".join(f"{k} {v}" for k, v in summary["versions"].items()) + ", float32 on a CPU."]
    made += dict.fromkeys(f"- Made by commit `{p['commit'][:10]}`{' (uncommitted changes)' * bool(p['dirty'])} on "
                          f"{p['machine']['cpu']} ({p['machine']['cores']} cores): `{p['command']}`."
                          for p in (r["provenance"] for r in made_by))
    sections = [
        "# Reproducing the paper's numbers",
        "<!-- Generated by `python -m nstdream_utils.reproduction markdown`; edit nstdream_utils/reproduction.py. -->",
        f"The paper's numbers beside ours: `{COMMAND}`; the claim: `{CLAIM_COMMAND}`. Each content × style is a "
        "run of notebook 06 in a batch grid (papermill on Dask), resumable; each leaves `<content>__<style>.json`.",
        "## The claim: *distorted* styles (circular, spiral) against *clear* ones (triangle, 3D squares)",
        "\n".join([*(f"- **{name}** {text}." for name, (_, _, text) in claim.HYPOTHESES.items()),
                   f"- **Stability rule:** {claim.STABILITY_RULE}; such runs are left out.", _TESTS]),
        "\n".join(["```text", *(claim.claim_text(label, claim.evaluate(runs)) for label, runs in claims), "```"]),
        f"## Tables 1 and 2 · NST loss, DeepDream loss at step 900 ({summary['content']})",
        "\n".join(["```text", table1, "", text_table(table2), "```"]),
        "## 10,000 iterations",
        f"`{LONG_COMMAND}`: the paper's length, each NST saving itself every 500 iterations; run again, a run "
        "stopped during its NST goes on from there, to the same history as a run never stopped (one stopped during "
        "its dream runs again). The loss after the last iteration:",
        long_text,
        "## Learning rate of the paper preset",
        f"`{LR_COMMAND}`: the paper preset's NST on the astronaut at lr "
        f"{', '.join(f'{r:g}' for r in LR_RATES)} by default "
        "(keras-io's is 100; the preset runs the rate picked here, with its step guard), 1,000 iterations each, "
        "final NST loss:",
        "\n".join(["```text", study[0], "```"]) if study else "Not run yet.",
        "## How our numbers were made", "\n".join(made)]
    return files.atomic_write_text("\n\n".join(sections) + "\n", path)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m nstdream_utils.reproduction run|lr-study|markdown [options]`` (``--help`` for each)."""
    parser = argparse.ArgumentParser(prog="python -m nstdream_utils.reproduction",
                                     description="Reproduce the paper's numbers beside ours.")
    sub = parser.add_subparsers(dest="action", required=True)
    run = sub.add_parser("run", help="every content × style (notebook 06 through batch) and the original dreams")
    markdown = sub.add_parser("markdown", aliases=["docs"], help="render docs/reproduction.md from <out>")
    study = sub.add_parser("lr-study", help="the paper preset's NST at each learning rate, 1,000 iterations")
    for command, folder in ((study, LR_DIR), (run, "results/paper"), (markdown, "results/paper")):
        command.add_argument("--out", default=folder, help=f"results folder (default {folder})")
    study.add_argument("--rates", default=LR_RATES, type=lambda v: [float(r) for r in v.split(",")],
                       help="comma-separated (" + ",".join(f"{r:g}" for r in LR_RATES) + ")")
    run.add_argument("--preset", default="paper", help="paper (default), quick or tf-tutorial")
    for flag, default in (("--contents", "astronaut"), ("--styles", ",".join(data.STYLE_NAMES))):
        run.add_argument(flag, default=default, type=lambda v: v.split(","), help=f"comma-separated ({default})")
    for flag in ("--nst-steps", "--dream-steps", "--nst-size", "--dream-size", "--seed"):
        run.add_argument(flag, type=int, default=0 if flag == "--seed" else None)
    run.add_argument("--lr", type=float, dest="learning_rate")
    run.add_argument("--checkpoints", action="store_true", help="save each NST every 500 steps; resume from it")
    for command in (run, study):
        command.add_argument("--workers", type=int)
        command.add_argument("--recompute", action="store_true", help="run again even when results exist")
        command.add_argument("--scheduler", help="a Dask scheduler address, tcp://HOST:8786 (default: a local cluster)")
    options = vars(parser.parse_args(raw := list(sys.argv[1:] if argv is None else argv)))
    action, out = options.pop("action"), options.pop("out")
    try:
        if action not in ("run", "lr-study"):
            print(write_docs(out))
            return 0
        command = shlex.join(["python", "-m", "nstdream_utils.reproduction", *raw])
        if action == "lr-study":
            done = lr_study(out, **options, command=command)
            summary = {"failed": {f"lr{rate:g}/{name}": error for rate, result in done.items()
                                  for name, error in result["failed"].items()}}
        else:
            summary = run_paper(out, **options, command=command)
    except NstdreamError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if summary["failed"]:
        print(f"error: {len(summary['failed'])} runs failed: {', '.join(summary['failed'])}", file=sys.stderr)
    return 1 if summary["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
