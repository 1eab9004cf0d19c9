"""Reproduce the paper's numbers (Al-Khazraji, Abbas & Jamil 2022) beside ours: a batch grid of notebook 06
over content × style photos, a dream on each unstylised photo, a summary, and ``docs/reproduction.md``.
Taught in notebook 07."""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from . import __version__, batch, claim, data, device, files, images, weights
from .errors import NstdreamError
from .presets import get_preset, resolve

# The paper's printed losses: NST after 10,000 iterations per style; DeepDream at step 900 (step size 0.005,
# 299×299) on each stylised image and on the unstylised photo.
PAPER_NST_LOSS_10000 = {"triangle": 10431.64, "circular": 23225.48, "spiral": 40709.7, "3d_squares": 1788.9}
PAPER_DREAM_LOSS_900 = {"triangle": 3.8166, "circular": 3.0736, "spiral": 3.0087, "3d_squares": 3.1598}
PAPER_ORIGINAL_DREAM_LOSS_900 = 3.6324
NST_INDEX, DREAM_INDEX = 999, 899  # keras-io's loss printed at iteration 1000, the tutorial's "Step 900"
ORIGINAL = "original"  # the pseudo-style of the dream on the unstylised photo
REPO = Path(__file__).resolve().parents[1]
COMMAND = ("python -m nstdream_utils.reproduction run --preset paper --out results/paper "
           "--styles triangle,circular,spiral,3d_squares")
CLAIM_DIR = "results/claim"
CLAIM_COMMAND = ("python -m nstdream_utils.reproduction run --preset quick --out results/claim "
                 "--contents astronaut,chelsea,coffee,rocket,camera")


def _at(values: Sequence[float | None] | None, index: int) -> float | None:
    """``values[index]`` as a float; None when out of range or not finite."""
    value = values[index] if values and -len(values) <= index < len(values) else None
    return float(value) if value is not None and math.isfinite(value) else None


def run_name(content: str, style: str) -> str:
    """The file stem of one run: ``<content>__<style>`` (``style`` may be ``"original"``)."""
    return f"{content}__{style}"


def provenance(command: str | None = None) -> dict:
    """What made a result: the git commit (``dirty`` when the package, notebooks or data differ from it),
    versions, the machine (CPU, cores, the vector flags that change float rounding, GPUs), the command."""
    import keras
    import tensorflow as tf

    def git(*args: str) -> str | None:
        done = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True) if shutil.which("git") else None
        return done.stdout.strip() if done and done.returncode == 0 else None

    changed = git("status", "--porcelain", "--untracked-files=no", "--", "nstdream_utils", "notebooks", "data",
                  "pyproject.toml")
    flags = device.cpu_flags() & {"avx2", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16", "amx_fp16"}
    return {"commit": git("rev-parse", "HEAD"), "dirty": None if changed is None else bool(changed),
            "versions": {"python": sys.version.split()[0], "numpy": np.__version__,
                         "tensorflow": tf.__version__, "keras": keras.__version__, "nstdream": __version__},
            "machine": {"cpu": device.cpu_model(), "cores": os.cpu_count(), "cpu_flags": sorted(flags),
                        "gpus": [getattr(g, "name", str(g)) for g in device.gpus()]},
            "command": command or "python -c 'nstdream_utils.reproduction.run_paper(...)'"}


def resolve_configs(preset: str = "paper", *, nst_steps: int | None = None, dream_steps: int | None = None,
                    nst_size: int | None = None, dream_size: int | None = None, learning_rate: float | None = None):
    """The (NSTConfig, DreamConfig) of a run: the preset's, with the overrides that are not None (InputError)."""
    chosen = resolve(preset, nst={"num_steps": nst_steps, "size": nst_size, "learning_rate": learning_rate},
                     dream={"num_steps": dream_steps, "size": dream_size})
    return chosen.nst, chosen.dream


def _record(out: Path, content: str, style: str, made: dict, dream: list, **run) -> dict:
    """Write ``<out>/<content>__<style>.json``: ``run``, the dream curve with its values at step 900 and at the end,
    and ``made``."""
    record = files.to_jsonable({"content": content, "style": style, **run, "dream_loss": dream,
                                "dream_loss_900": _at(dream, DREAM_INDEX), "dream_loss_final": _at(dream, -1), **made})
    files.write_json(record, out / f"{run_name(content, style)}.json")
    return record


def _batch_record(out: Path, content: str, style: str, run_id: str, made: dict) -> dict:
    """Turn batch run ``run_id`` (its metrics.json and PNGs) into a record and two PNGs in ``out``."""
    folder, name = out / "batch" / "runs" / run_id, run_name(content, style)
    metrics = json.loads((folder / "metrics.json").read_text(encoding="utf-8"))
    pngs = {kind: f"{name}__{kind}.png" for kind in ("stylized", "dreamed")}
    for kind, png in pngs.items():
        files.atomic_write_bytes((folder / f"{kind}.png").read_bytes(), out / png)
    nst, loss = metrics["nst"], metrics["nst"]["loss"]
    eq6 = [0.5 * c + s for c, s in zip(nst["content_loss"], nst["style_loss"])]  # the paper's Eq 6: ½, no TV
    return _record(out, content, style, made, metrics["dream"]["loss"], status=metrics["status"], error=None,
                   nst_loss=loss, nst_loss_1000=_at(loss, NST_INDEX), nst_loss_final=_at(loss, -1),
                   nst_loss_eq6_1000=_at(eq6, NST_INDEX), images=pngs, batch_run=run_id,
                   **{f"nst_{term}_loss": nst[f"{term}_loss"] for term in ("content", "style", "tv")},
                   seconds=nst["seconds"] + metrics["dream"]["seconds"])


def run_paper(out_dir: str | Path = "results/paper", *, preset: str = "paper",
              styles: Sequence[str] = data.PAPER_STYLES, contents: Sequence[str] = ("astronaut",),
              nst_steps: int | None = None, dream_steps: int | None = None, nst_size: int | None = None,
              dream_size: int | None = None, learning_rate: float | None = None, recompute: bool = False,
              seed: int = 0, log: Callable[[str], None] | None = print, workers: int | None = None,
              scheduler: str | None = None, command: str | None = None) -> dict:
    """Run every content × style as one batch of notebook 06 (``batch.run_batch`` in ``<out_dir>/batch`` on
    ``workers`` local processes or the Dask ``scheduler``; it skips complete runs), turn each into a record and
    two PNGs, dream on each content here, and write ``summary.json``. The preset and its overrides (None keeps)
    make the configs; ``recompute`` deletes these runs first; ``log`` gets each failure and the summary (None:
    no progress bar). Returns the summary with ``ran`` (computed now) and ``failed`` (name → the batch's error)."""
    from .dream import deep_dream

    say, out = log or (lambda line: None), Path(out_dir)
    nst_cfg, dream_cfg = resolve_configs(preset, nst_steps=nst_steps, dream_steps=dream_steps, nst_size=nst_size,
                                         dream_size=dream_size, learning_rate=learning_rate)
    parameters = files.to_jsonable({"preset": preset, "seed": seed, "nst": dataclasses.asdict(nst_cfg),
                                    "dream": dataclasses.asdict(dream_cfg)})
    pairs = [(c, s) for c in contents for s in styles]
    given = {} if learning_rate is None else {"learning_rate": float(learning_rate)}
    spec = batch.GridSpec.from_dict({"notebook": "notebooks/06_nst_to_deepdream.ipynb", "parameters": {
        "preset": preset, "size": nst_cfg.size, "nst_steps": nst_cfg.num_steps, "dream_size": dream_cfg.size,
        "dream_steps": dream_cfg.num_steps, "seed": seed, **given},
        "runs": [{"content": os.path.relpath(data.content_path(c), REPO),  # the run ids hold no checkout path
                  "style": os.path.relpath(data.style_path(s), REPO)} for c, s in pairs]}, base_dir=REPO)
    for run in batch.validate(spec) if recompute else ():  # these runs afresh
        shutil.rmtree(out / "batch" / "runs" / run.run_id, ignore_errors=True)
    paths = {name: weights.resolve(name) for name in ("vgg19", "inception_v3")}
    made = {"parameters": parameters, "provenance": provenance(command),
            "weights": {name: {"file": path.name, "md5": weights.md5(path)} for name, path in paths.items()}}
    result = batch.run_batch(spec, out / "batch", workers=workers, scheduler=scheduler, progress=log is not None)
    old = {run_name(r["content"], r["style"]): r for r in load_records(out) if r["parameters"] == parameters}
    records, ran, failed = {}, [], {}
    for (content, style), entry in zip(pairs, result.records):
        name, run_id = run_name(content, style), entry["run_id"]
        if entry["status"] != "completed":
            failed[name] = entry.get("error") or entry["status"]  # the batch's error: ename, evalue, cell
            (out / f"{name}.json").unlink(missing_ok=True)  # no record of an earlier run stands in for it
            say(f"{name}: batch run {run_id} failed, left out: {failed[name]}")
        elif entry.get("skipped") and old.get(name, {}).get("batch_run") == run_id:
            records[name] = old[name]
        else:
            records[name] = _batch_record(out, content, style, run_id, made)
            ran.extend([] if entry.get("skipped") else [name])
    for content in contents:
        name = run_name(content, ORIGINAL)
        png = f"{name}__dreamed.png"
        if not recompute and name in old and (out / png).is_file():
            records[name] = old[name]
            continue
        dreamed = deep_dream(images.load_image(data.content_path(content)), config=dream_cfg, seed=seed,
                             progress=False)
        images.save_image(dreamed.image, out / png)
        records[name] = _record(out, content, ORIGINAL, made, dreamed.history["loss"], status=dreamed.status,
                                seconds=dreamed.history["seconds"][-1], images={"dreamed": png})
        ran.append(name)
    # the first content's losses per style (None: failed), also at the top level (summary["triangle"])
    first = {r["style"]: r for r in records.values() if r["content"] == contents[0]}
    keys = ("nst_loss_1000", "nst_loss_eq6_1000", "nst_loss_final", "dream_loss_900", "dream_loss_final")
    per_style = {s: {k: first.get(s, {}).get(k) for k in keys} for s in styles}
    summary = files.to_jsonable({
        **{s: {k: entry[k] for k in ("nst_loss_1000", "dream_loss_900")} for s, entry in per_style.items()},
        **{f"original_{k}": first.get(ORIGINAL, {}).get(k) for k in keys[3:]}, **made, "preset": preset,
        "versions": made["provenance"]["versions"], "content": contents[0], "contents": list(contents),
        "styles": per_style, "runs": sorted(records)})
    files.write_json(summary, out / "summary.json")
    say(f"summary: {out / 'summary.json'} ({len(ran)} runs computed, {len(failed)} failed)")
    return {**summary, "ran": ran, "failed": failed}


def load_summary(out_dir: str | Path = "results/paper") -> dict:
    """``<out_dir>/summary.json`` (FileNotFoundError before the runs are made)."""
    return json.loads((Path(out_dir) / "summary.json").read_text(encoding="utf-8"))


def load_records(out_dir: str | Path = "results/paper") -> list[dict]:
    """Every completed run record (``<content>__<style>.json``, originals included) in ``out_dir``."""
    records = [json.loads(path.read_text(encoding="utf-8")) for path in sorted(Path(out_dir).glob("*__*.json"))]
    return [r for r in records if r.get("status") == "completed"]


def paper_records() -> list[dict]:
    """The paper's own numbers as run records (one per paper style), for ``claim.evaluate``."""
    return [{"content": "paper", "style": s, "nst_loss_1000": PAPER_NST_LOSS_10000[s],
             "dream_loss_900": PAPER_DREAM_LOSS_900[s]} for s in data.PAPER_STYLES]


def sig(value: float | None, digits: int = 4) -> str:
    """``value`` to ``digits`` significant digits with thousands separators (``sig(10431.64) == "10,430"``,
    ``sig(3.81662) == "3.817"``); ``"n/a"`` for None or not finite."""
    if value is None or not math.isfinite(float(value)):
        return "n/a"
    rounded = float(f"{float(value):.{digits}g}")
    return f"{rounded:,.0f}" if abs(rounded) >= 10 ** (digits - 1) else f"{rounded:.{digits}g}"


def ranks(values: Sequence[float | None]) -> list[int | None]:
    """Rank of each value, 1 = highest (ties share the lower rank); None stays None."""
    return [None if v is None else 1 + sum(o is not None and o > v for o in values) for v in values]


def summary_tables(summary: dict, *, ours_key_nst: str = "nst_loss_1000",
                   ours_key_dream: str = "dream_loss_900") -> tuple[list[dict], list[dict]]:
    """Table 1 (NST loss) and Table 2 (dream loss, with the ``original`` row): per paper style ``style``,
    ``paper``, ``ours`` (``summary[...][ours_key_*]``; the ``*_final`` keys for short runs), ``ratio``
    (ours ÷ paper; in Table 1 only after 10,000 iterations), ``eq6``, ``paper_rank``, ``our_rank``."""
    ours = {**summary.get("styles", {}), ORIGINAL: {k[9:]: v for k, v in summary.items() if k.startswith("original_")}}
    like_for_like = summary.get("parameters", {}).get("nst", {}).get("num_steps") == 10_000
    tables, dream = [], {**PAPER_DREAM_LOSS_900, ORIGINAL: PAPER_ORIGINAL_DREAM_LOSS_900}
    for paper, key, ratio in ((PAPER_NST_LOSS_10000, ours_key_nst, like_for_like), (dream, ours_key_dream, True)):
        names = [n for n in paper if n in ours]
        values = [ours[n].get(key) for n in names]
        eq6 = [ours[n].get("nst_loss_eq6_1000") if paper is PAPER_NST_LOSS_10000 else None for n in names]
        tables.append([{"style": n, "paper": paper[n], "ours": o, "ratio": o / paper[n] if ratio and o is not None
                        else None, "eq6": e, "paper_rank": pr, "our_rank": orank} for n, o, e, pr, orank
                       in zip(names, values, eq6, ranks([paper[n] for n in names]), ranks(values))])
    return tables[0], tables[1]


def text_table(rows: list[dict], paper_label: str = "paper", ours_label: str = "ours") -> str:
    """:func:`summary_tables` rows as fixed-width text; Eq 6 and ratio columns only where they have values."""
    columns = [("style", lambda r: r["style"]), (paper_label, lambda r: f"{r['paper']:,}"),
               (ours_label, lambda r: sig(r["ours"])), ("ours, paper's Eq 6", lambda r: sig(r["eq6"])),
               ("ours ÷ paper", lambda r: sig(r["ratio"], 3)), ("paper rank", lambda r: str(r["paper_rank"])),
               ("our rank", lambda r: str(r["our_rank"] or "n/a"))]
    optional = ("ours, paper's Eq 6", "ours ÷ paper")
    columns = [(name, cell) for name, cell in columns if name not in optional or any(cell(r) != "n/a" for r in rows)]
    table = [[name for name, _ in columns]] + [[cell(r) for _, cell in columns] for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    return "\n".join("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))
                     for row in table)


def recipe_comparison(*, recipes: Sequence[str] = ("paper", "tf-tutorial"), styles: Sequence[str] = data.PAPER_STYLES,
                      content: str = "astronaut", size: int = 64, num_steps: int = 20, seed: int = 0) -> dict:
    """Each recipe's own NST on ``styles`` at one square size and step count: per recipe its final ``losses``,
    ``log10_median``, ``magnitude_gap`` (decades from ``log10_paper_median``) and ``spearman`` with the paper's;
    ``closest_scale`` and ``best_order`` name the recipes closest to the paper's (NonFiniteLossError: diverged)."""
    from . import nst

    photo, paper = images.load_image(data.content_path(content)), [PAPER_NST_LOSS_10000[s] for s in styles]
    paper_median = float(np.log10(np.median(paper)))
    out = {"styles": list(styles), "paper": dict(zip(styles, paper)), "recipes": {}}
    for recipe in recipes:
        cfg = get_preset(recipe).nst.replace(size=size, num_steps=num_steps, square=True)
        losses = {s: _at(nst.style_transfer(photo, images.load_image(data.style_path(s)), config=cfg, seed=seed,
                                            progress=False).history["total"], -1) for s in styles}
        finite = [v for v in losses.values() if v is not None and v > 0]
        median = float(np.log10(np.median(finite))) if finite else None
        out["recipes"][recipe] = {
            "losses": losses, "log10_median": median, "log10_paper_median": paper_median,
            "magnitude_gap": None if median is None else abs(median - paper_median),
            "spearman": claim.spearman(paper, [np.nan if v is None else v for v in losses.values()])}
    gaps = {r: v["magnitude_gap"] for r, v in out["recipes"].items() if v["magnitude_gap"] is not None}
    rhos = {r: v["spearman"]["rho"] for r, v in out["recipes"].items() if v["spearman"]["rho"] is not None}
    return {**out, "closest_scale": min(gaps, key=gaps.get, default=None),
            "best_order": max(rhos, key=rhos.get, default=None)}


DOC = """\
# Reproducing the paper's numbers

<!-- Generated by `python -m nstdream_utils.reproduction markdown`; edit nstdream_utils/reproduction.py. -->

Every loss that Al-Khazraji, Abbas & Jamil (2022) print, beside ours: `{command}`; the claim: `{claim_command}`.
Each content × style is a run of notebook 06 in a batch grid; notebook 07 explains the method and why the
numbers differ.

## The claim: *distorted* styles (circular, spiral) against *clear* ones (triangle, 3D squares)

{hypotheses}
- **Test:** one-sided permutation test (α = {alpha}), stratified by photo, of the mean log loss(distorted) −
  mean log loss(clear); its exponential is the ratio distorted ÷ clear [bootstrap 95 % interval over photos].
- **Stability rule:** {rule}; such runs are left out.
- **Secondary:** each distortion score of the style images against each loss (mean within-photo Spearman ρ).

```text
{claims}
```

## Tables 1 and 2 · NST loss, DeepDream loss at step 900

*paper's Eq 6*: the paper's own total at our iterate. Rank 1 = highest; ρ with the paper's: NST {rho1}; dream {rho2}.

```text
{table1}

{table2}
```

## How our numbers were made

- Photo `{s[content]}`, preset `{p[preset]}`, seed {p[seed]}: NST {nst[size]} px × {nst[num_steps]:,} steps of
  {nst[optimizer]} (lr {nst[learning_rate]:g}), DeepDream {p[dream][size]} px × {p[dream][num_steps]:,} steps of \
{p[dream][step_size]:g}.
- Claim runs: photos {photos}, preset `{c[preset]}`, seed {c[seed]}: NST {c[nst][size]} px × {c[nst][num_steps]:,} steps
  of {c[nst][optimizer]}, DeepDream {c[dream][size]} px × {c[dream][num_steps]:,} steps; the replicates are the photos.
- `history["total"][999]` is keras-io's printed loss at iteration 1000, `history["loss"][899]` the tutorial's
  "Step 900".
- Weights: {weights} (Inception v3: Google's 2015-12-05 release, not Keras' `imagenet` file); {versions}.
{made_by}
"""


def write_docs(out_dir: str | Path = "results/paper", path: str | Path = "docs/reproduction.md") -> Path:
    """Render ``path`` from the runs in ``out_dir`` and :data:`CLAIM_DIR`: every number comes from their files."""
    summary, claimed = load_summary(out_dir), load_summary(CLAIM_DIR)
    c = claimed["parameters"]
    records = [r for r in load_records(out_dir) if r["parameters"] == summary["parameters"]]
    claims = {f"our {c['preset']} runs ({CLAIM_DIR})": [r for r in load_records(CLAIM_DIR) if r["parameters"] == c],
              f"our {summary['preset']} runs ({out_dir})": records, "the paper's printed numbers": paper_records()}
    tables = summary_tables(summary)
    rho = [claim.spearman([r["paper"] for r in t], [r["ours"] for r in t]) for t in tables]
    made = dict.fromkeys(f"- Made by commit `{p['commit'][:10]}`{' (uncommitted changes)' * bool(p['dirty'])} on "
                         f"{p['machine']['cpu']} ({p['machine']['cores']} cores): `{p['command']}`."
                         for p in (r["provenance"] for r in records))
    text = DOC.format(
        command=COMMAND, claim_command=CLAIM_COMMAND, alpha=claim.ALPHA, rule=claim.STABILITY_RULE, s=summary,
        hypotheses="\n".join(f"- **{name}** {text}." for name, (_, _, text) in claim.HYPOTHESES.items()),
        claims="\n".join(claim.claim_text(label, claim.evaluate(runs)) for label, runs in claims.items()),
        rho1=f"{sig(rho[0]['rho'], 3)} (n = {rho[0]['n']})",
        rho2=f"{sig(rho[1]['rho'], 3)} (n = {rho[1]['n']}; exact permutation p = {sig(rho[1]['p_permutation'], 2)})",
        table1=text_table(tables[0], "paper (10,000 it)", f"ours ({summary['parameters']['nst']['num_steps']:,} it)"),
        table2=text_table(tables[1]), made_by="\n".join(made), photos=", ".join(claimed["contents"]), c=c,
        p=summary["parameters"], nst=summary["parameters"]["nst"],
        weights=", ".join(f"`{w['file']}` (md5 `{w['md5']}`)" for w in summary["weights"].values()),
        versions=", ".join(f"{k} {v}" for k, v in summary["versions"].items()) + " in float32 on a CPU")
    return files.atomic_write_text(text, path)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m nstdream_utils.reproduction run|markdown [options]`` (``--help`` for each)."""
    parser = argparse.ArgumentParser(prog="python -m nstdream_utils.reproduction",
                                     description="Reproduce the paper's numbers beside ours.")
    sub = parser.add_subparsers(dest="action", required=True)
    run = sub.add_parser("run", help="every content × style (notebook 06 through batch) and the original dreams")
    run.add_argument("--preset", default="paper", help="paper (default), quick or tf-tutorial")
    run.add_argument("--contents", default="astronaut", type=lambda v: v.split(","),
                     help="content names, comma-separated")
    run.add_argument("--styles", default=",".join(data.STYLE_NAMES), type=lambda v: v.split(","),
                     help="style names, comma-separated (default: all)")
    for flag in ("--nst-steps", "--dream-steps", "--nst-size", "--dream-size", "--seed", "--workers"):
        run.add_argument(flag, type=int, default=0 if flag == "--seed" else None)
    run.add_argument("--lr", type=float, dest="learning_rate")
    run.add_argument("--recompute", action="store_true", help="run again even when results exist")
    run.add_argument("--scheduler", help="a Dask scheduler address, tcp://HOST:8786 (default: a local cluster)")
    markdown = sub.add_parser("markdown", aliases=["docs"], help="render docs/reproduction.md from <out>")
    markdown.add_argument("--doc", default="docs/reproduction.md")
    for command in (run, markdown):
        command.add_argument("--out", default="results/paper", help="results folder (default results/paper)")
    options = vars(parser.parse_args(raw := list(sys.argv[1:] if argv is None else argv)))
    action, out, doc = options.pop("action"), options.pop("out"), options.pop("doc", None)
    try:
        if action != "run":
            print(write_docs(out, doc))
            return 0
        summary = run_paper(out, **options, command=shlex.join(["python", "-m", "nstdream_utils.reproduction", *raw]))
    except NstdreamError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if summary["failed"]:
        print(f"error: {len(summary['failed'])} runs failed: {', '.join(summary['failed'])}", file=sys.stderr)
    return 1 if summary["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
