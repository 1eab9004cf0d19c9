"""Tests for nstdream_utils.reproduction: the grid through batch, the records, the tables, the docs, and
the committed results in results/paper/ and results/claim/."""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from nstdream_utils import batch, claim, data, files, presets, reproduction
from nstdream_utils.data import PAPER_STYLES
from nstdream_utils.errors import InputError

REPO = Path(__file__).resolve().parents[1]
PAPER_DIR, CLAIM_DIR = REPO / "results" / "paper", REPO / reproduction.CLAIM_DIR
EXPECTED_MD5 = {"vgg19": "253f8cb515780f3b799900260a226db6", "inception_v3": "c6c5a68d5832b063671faaa7de3c9ab9"}
COMMITTED = json.loads((PAPER_DIR / "astronaut__triangle.json").read_text())
PRESET_LR = f"{presets.PAPER.nst.learning_rate:g}"
RECORD_KEYS = set(COMMITTED)  # a record's keys: those of the committed runs
# lr 10: notebook 06 checks that the NST loss fell, and at the preset's 100 the guard redoes the first step at 32 px
TINY = dict(nst_steps=2, dream_steps=2, nst_size=32, dream_size=75, learning_rate=10.0)


def _fake_batch(monkeypatch, seen: dict):
    """batch.run_batch replaced: the first run completes with the committed triangle run's curves as
    notebook 06's metrics.json and PNGs, every other run fails."""

    def run_batch(spec, out, **options):
        runs = batch.validate(spec)
        seen.update(spec=spec, options=options, runs=runs)
        folder = Path(out) / "runs" / runs[0].run_id
        folder.mkdir(parents=True)
        metrics = {"status": "completed", "dream": {"loss": COMMITTED["dream_loss"], "seconds": 1.0},
                   "nst": {"loss": COMMITTED["nst_loss"], "seconds": 2.0,
                           **{f"{t}_loss": COMMITTED[f"nst_{t}_loss"] for t in ("content", "style", "tv")}}}
        (folder / "metrics.json").write_text(json.dumps(metrics))
        for kind in ("stylized", "dreamed"):
            (folder / f"{kind}.png").write_bytes((PAPER_DIR / f"astronaut__triangle__{kind}.png").read_bytes())
        error = {"ename": "NonFiniteLossError", "evalue": "step 3: the loss became inf"}
        return SimpleNamespace(records=[{"run_id": runs[0].run_id, "status": "completed", "skipped": False}]
                               + [{"run_id": r.run_id, "status": "failed", "error": error} for r in runs[1:]])

    monkeypatch.setattr(batch, "run_batch", run_batch)


def test_runs_go_through_batch_and_become_records(tmp_path, weights_dir, monkeypatch):
    """The grid is notebook 06 over content × style; a finished batch run becomes the same record as the
    committed ones (its derived numbers recomputed from the curves), a failed one is reported and left out."""
    seen = {}
    _fake_batch(monkeypatch, seen)
    (tmp_path / "astronaut__spiral.json").write_text("{}")  # an earlier run's record: gone when this one fails
    summary = reproduction.run_paper(tmp_path, styles=("triangle", "spiral"), dream_steps=2, dream_size=75,
                                     log=None, workers=2)
    assert seen["spec"].notebook.name == "06_nst_to_deepdream.ipynb" and seen["options"]["workers"] == 2
    assert seen["spec"].parameters == {"preset": "paper", "size": 224, "nst_steps": 1000, "dream_size": 75,
                                       "dream_steps": 2, "seed": 0}  # no learning_rate unless one is given
    assert [r["style"] for r in seen["spec"].runs] == ["data/styles/triangle.png", "data/styles/spiral.png"]
    assert summary["failed"]["astronaut__spiral"]["ename"] == "NonFiniteLossError"
    assert not (tmp_path / "astronaut__spiral.json").exists() and summary["styles"]["spiral"]["nst_loss_1000"] is None
    assert sorted(summary["ran"]) == ["astronaut__original", "astronaut__triangle"]
    record = json.loads((tmp_path / "astronaut__triangle.json").read_text())
    assert set(record) == RECORD_KEYS
    assert record["nst_loss_eq6_final"] == pytest.approx(
        0.5 * COMMITTED["nst_content_loss"][-1] + COMMITTED["nst_style_loss"][-1], rel=1e-12)
    for key in ("nst_loss_1000", "nst_loss_eq6_1000", "nst_loss_final", "dream_loss_900", "dream_loss_final"):
        assert record[key] == pytest.approx(COMMITTED[key], rel=1e-12), key
    assert record["batch_run"] == seen["runs"][0].run_id and record["seconds"] == 3.0
    for key in ("size", "num_steps", "optimizer", "learning_rate", "content_weight", "style_weight", "tv_weight"):
        assert record["parameters"]["nst"][key] == COMMITTED["parameters"]["nst"][key], key
    assert {k: v["md5"] for k, v in record["weights"].items()} == EXPECTED_MD5
    assert (tmp_path / "astronaut__triangle__stylized.png").read_bytes() == \
        (PAPER_DIR / "astronaut__triangle__stylized.png").read_bytes()
    original = json.loads((tmp_path / "astronaut__original.json").read_text())
    assert set(original) == set(json.loads((PAPER_DIR / "astronaut__original.json").read_text()))
    assert len(original["dream_loss"]) == 2 and all(math.isfinite(v) for v in original["dream_loss"])
    assert summary["triangle"]["nst_loss_1000"] == pytest.approx(COMMITTED["nst_loss_1000"])
    assert reproduction.load_summary(tmp_path)["runs"] == ["astronaut__original", "astronaut__triangle"]
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes leave no temporary files

    seen.clear()
    monkeypatch.setattr(batch, "run_batch", lambda spec, out, **options: seen.update(spec=spec) or 1 / 0)
    with pytest.raises(ZeroDivisionError):
        reproduction.run_paper(tmp_path, styles=("triangle",), learning_rate=5, log=None)
    assert seen["spec"].parameters["learning_rate"] == 5.0  # given: passed to notebook 06


@pytest.mark.slow
def test_a_tiny_grid_through_batch_end_to_end_and_resumed(tmp_path, weights_dir):
    """One content × one style, 2 steps each, through notebook 06 on a Dask LocalCluster; a second call
    runs nothing and rewrites no record."""
    summary = reproduction.run_paper(tmp_path, preset="paper", styles=("triangle",), **TINY, log=None, workers=1)
    assert summary["failed"] == {} and sorted(summary["ran"]) == ["astronaut__original", "astronaut__triangle"]
    record = json.loads((tmp_path / "astronaut__triangle.json").read_text())
    assert set(record) == RECORD_KEYS and record["status"] == "completed"
    assert len(record["nst_loss"]) == 2 and len(record["dream_loss"]) == 2
    assert record["nst_loss_1000"] is None and record["dream_loss_900"] is None  # fewer steps
    assert math.isfinite(record["nst_loss_final"]) and math.isfinite(record["dream_loss_final"])
    metrics = json.loads((tmp_path / "batch" / "runs" / record["batch_run"] / "metrics.json").read_text())
    assert record["nst_loss"] == metrics["nst"]["loss"] and record["dream_loss"] == metrics["dream"]["loss"]
    assert record["parameters"]["nst"]["size"] == 32 and record["parameters"]["dream"]["size"] == 75
    assert (tmp_path / "astronaut__triangle__stylized.png").is_file()
    mtimes = {p.name: p.stat().st_mtime_ns for p in tmp_path.glob("astronaut__*")}
    again = reproduction.run_paper(tmp_path, preset="paper", styles=("triangle",), **TINY, log=None, workers=1)
    assert again["ran"] == [] and {p.name: p.stat().st_mtime_ns for p in tmp_path.glob("astronaut__*")} == mtimes


@pytest.mark.slow
def test_checkpointed_runs_go_on_from_where_they_stopped(tmp_path, weights_dir):
    """With checkpoints, notebook 06 resumes an NST stopped part-way from <out>/checkpoints, to the history
    of a run never stopped, and removes the checkpoint once the run completes."""
    from nstdream_utils import images, nst

    cfg = reproduction.resolve_configs("paper", nst_steps=24, nst_size=32, learning_rate=TINY["learning_rate"])[0]
    content, style = (images.load_image(p) for p in (data.content_path("astronaut"), data.style_path("triangle")))
    whole = nst.style_transfer(content, style, config=cfg, progress=False)
    path, calls = tmp_path / "checkpoints" / "astronaut__triangle.npz", iter(range(10 ** 6))
    path.parent.mkdir()
    stopped = nst.style_transfer(content, style, config=cfg, progress=False, checkpoint=path, checkpoint_every=10,
                                 should_stop=lambda: next(calls) >= 15)  # saved at step 10, stopped at 15
    assert stopped.status == "interrupted" and path.is_file()
    summary = reproduction.run_paper(tmp_path, preset="paper", styles=("triangle",), **{**TINY, "nst_steps": 24},
                                     checkpoints=True, log=None, workers=1)
    assert summary["failed"] == {} and not path.exists()
    record = json.loads((tmp_path / "astronaut__triangle.json").read_text())
    np.testing.assert_allclose(record["nst_loss"], whole.history["total"], rtol=1e-5)  # one machine: rounding only
    executed = (tmp_path / "batch" / "runs" / record["batch_run"] / "06_nst_to_deepdream.ipynb").read_text()
    assert 'checkpoints/astronaut__triangle.npz\\"' in executed  # the parameter papermill injected
    with pytest.raises(InputError, match="sgd and adam"):
        reproduction.run_paper(tmp_path, preset="quick", styles=("triangle",), checkpoints=True, log=None)


def test_the_learning_rate_study_picks_the_lowest_stable_rate(tmp_path):
    """lr_table: final losses per rate and style, ``*`` on a run the stability rule marks, and the pick among
    the rates whose four styles all ran and are stable (synthetic curves)."""
    falling = [100.0, 50.0, 40.0, 39.0, 38.0, 37.0, 36.0, 35.0, 34.0, 33.0]
    curves = {1.0: (falling, 1.0), 3.0: (falling, 0.5), 30.0: (falling[:-1] + [80.0], 0.1)}
    for rate, (curve, scale) in curves.items():
        folder = tmp_path / f"lr{rate:g}"
        folder.mkdir()
        for style in PAPER_STYLES:
            losses = [v * scale for v in curve]
            (folder / f"astronaut__{style}.json").write_text(json.dumps(
                {"status": "completed", "style": style, "parameters": {}, "nst_loss": losses,
                 "nst_loss_final": losses[-1]}))
    (tmp_path / "lr10").mkdir()  # a rate not run yet
    (tmp_path / "lr_old").mkdir()  # not a rate: ignored
    text, records, picked = reproduction.lr_table(tmp_path)
    lines = text.splitlines()
    assert lines[0].split() == ["lr", *PAPER_STYLES] and len(records) == 12
    assert lines[1].split() == ["1", "33", "33", "33", "33"] and lines[2].split() == ["3"] + ["16.5"] * 4
    assert lines[3].split() == ["10"] + ["not", "run"] * 4 and lines[5].split() == ["100"] + ["not", "run"] * 4
    assert lines[4].split() == ["30", "8*", "8*", "8*", "8*"]  # 80 × 0.1 after a tail minimum of 3.4
    assert picked == 3.0 and lines[6].endswith("picked: lr 3, the lowest median final loss of the rates with all four "
                                               "stable (so far: lr 10, 100 not run); the paper preset uses lr " + PRESET_LR)
    assert reproduction.lr_table(tmp_path / "none") is None
    for rate in (1, 3):
        shutil.rmtree(tmp_path / f"lr{rate}")
    text, records, picked = reproduction.lr_table(tmp_path)  # only the unstable rate is left
    assert picked is None and text.splitlines()[-1] == ("* unstable by the stability rule; no rate has all four "
                                                        "styles run and stable; the paper preset uses lr " + PRESET_LR)
    assert len(text.splitlines()) == 2 + len(reproduction.LR_RATES)  # every rate of the study has a row


def test_the_lr_study_command_names_each_failed_run_with_its_rate(monkeypatch, capsys):
    seen = {}

    def lr_study(out, **options):
        seen.update(out=out, **options)
        return {rate: {"failed": {"astronaut__spiral": "NonFiniteLossError"}} for rate in options["rates"]}

    monkeypatch.setattr(reproduction, "lr_study", lr_study)
    assert reproduction.main(["lr-study", "--rates", "3,100", "--workers", "1"]) == 1
    assert seen["out"] == reproduction.LR_DIR and seen["rates"] == [3.0, 100.0] and seen["workers"] == 1
    assert seen["command"] == "python -m nstdream_utils.reproduction lr-study --rates 3,100 --workers 1"
    assert "2 runs failed: lr3/astronaut__spiral, lr100/astronaut__spiral" in capsys.readouterr().err


# ---------------------------------------------------------------------------------- pure helpers


def test_tables_put_the_paper_beside_ours():
    summary = {"styles": {s: {"nst_loss_1000": 2 * reproduction.PAPER_NST_LOSS_10000[s],
                              "dream_loss_900": reproduction.PAPER_DREAM_LOSS_900[s]} for s in PAPER_STYLES},
               "original_dream_loss_900": 1.0}
    table1, table2 = reproduction.summary_tables(summary)
    assert [r["style"] for r in table1] == list(PAPER_STYLES)
    assert all(r["ratio"] is None for r in table1)  # our 1,000 iterations beside the paper's 10,000: no ratio
    assert [r["paper_rank"] for r in table1] == [r["our_rank"] for r in table1]
    assert table2[-1]["style"] == "original" and table2[-1]["paper"] == 3.6324 and table2[-1]["our_rank"] == 5
    assert all(r["ratio"] == pytest.approx(1.0) for r in table2[:-1])  # the dream losses are like for like
    lines = reproduction.text_table(table1).splitlines()
    assert lines[0].split() == ["style", "paper", "ours", "paper", "rank", "our", "rank"]
    assert lines[3].split() == ["spiral", "40,709.7", "81,420", "1", "1"]
    summary["parameters"] = {"nst": {"num_steps": 10_000}}
    assert all(r["ratio"] == pytest.approx(2.0) for r in reproduction.summary_tables(summary)[0])


def test_sig_and_ranks():
    assert reproduction.sig(10431.64) == "10,430"
    assert reproduction.sig(3.81662) == "3.817"
    assert reproduction.sig(None) == "n/a" and reproduction.sig(float("nan")) == "n/a"
    losses = dict(zip(PAPER_STYLES, (3.0, None, 5.0, 3.0)))
    _, table2 = reproduction.summary_tables({"styles": {s: {"dream_loss_900": v} for s, v in losses.items()}})
    ranks = {r["style"]: (r["paper_rank"], r["our_rank"]) for r in table2}  # 1 = highest, ties share, None stays
    assert ranks == {"triangle": (1, 2), "circular": (4, None), "spiral": (5, 1), "3d_squares": (3, 2),
                     "original": (2, None)}


def test_resolve_configs_applies_overrides():
    nst_cfg, dream_cfg = reproduction.resolve_configs("quick", nst_steps=7, dream_size=90)
    assert (nst_cfg.num_steps, nst_cfg.size) == (7, presets.get_preset("quick").nst.size) and dream_cfg.size == 90


# ------------------------------------------------------------------------ the committed results


def test_committed_results_load():
    summary = reproduction.load_summary(PAPER_DIR)
    assert summary["preset"] == "paper" and summary["contents"] == ["astronaut", "chelsea", "coffee"]
    # made with the preset's parameters (its learning rate included), so notebook 07 and the docs describe them
    assert summary["parameters"]["nst"] == files.to_jsonable(dataclasses.asdict(presets.PAPER.nst))
    assert summary["parameters"]["nst"]["num_steps"] == 1000 and summary["parameters"]["dream"]["num_steps"] == 1000
    for style in PAPER_STYLES:
        for key in ("nst_loss_1000", "dream_loss_900"):
            assert math.isfinite(summary["styles"][style][key]), (style, key)
            assert summary[style][key] == summary["styles"][style][key]  # a top-level key per style
    assert {k: v["md5"] for k, v in summary["weights"].items()} == EXPECTED_MD5
    records = reproduction.load_records(PAPER_DIR)
    assert sorted(reproduction.run_name(r["content"], r["style"]) for r in records) == summary["runs"]
    assert len(records) == 3 * (len(PAPER_STYLES) + 1)
    table1, _ = reproduction.summary_tables(summary)
    assert table1[0]["ours"] == pytest.approx(20782.888671875) and table1[0]["eq6"] == pytest.approx(16618.85, rel=1e-6)
    claim_summary = reproduction.load_summary(CLAIM_DIR)
    assert claim_summary["contents"] == list(data.CONTENT_NAMES)
    assert set(claim_summary["styles"]) == set(data.STYLE_NAMES)
    assert claim_summary["provenance"]["command"] == reproduction.CLAIM_COMMAND
    claim_records = reproduction.load_records(CLAIM_DIR)
    assert len(claim_records) == len(data.CONTENT_NAMES) * (len(data.STYLE_NAMES) + 1)
    assert all(r["status"] == "completed" and r["provenance"]["dirty"] is False for r in claim_records)


def test_the_committed_learning_rate_study():
    """Each run of results/lr_study is the paper preset at its folder's rate, made by the study command from a
    clean commit; the paper preset takes the rate the study picks, and at that rate the study's NST is the
    committed paper-preset run's (the same notebook, parameters and seed; only the dream is cut)."""
    text, records, picked = reproduction.lr_table(REPO / reproduction.LR_DIR)
    rates = {float(r["parameters"]["nst"]["learning_rate"]) for r in records}
    assert rates == set(reproduction.LR_RATES) and picked == presets.PAPER.nst.learning_rate
    for record in records:
        nst = record["parameters"]["nst"]
        assert record["status"] == "completed" and (nst["num_steps"], nst["size"]) == (1000, 224), record["style"]
        assert record["parameters"]["preset"] == "paper" and record["weights"] == COMMITTED["weights"]
        made = record["provenance"]
        assert made["command"].startswith("python -m nstdream_utils.reproduction lr-study") and made["dirty"] is False
        folder = REPO / reproduction.LR_DIR / f"lr{nst['learning_rate']:g}"
        assert json.loads((folder / f"astronaut__{record['style']}.json").read_text()) == record
    at_pick = {r["style"]: r for r in records if r["parameters"]["nst"]["learning_rate"] == picked}
    for style in PAPER_STYLES:
        committed = json.loads((PAPER_DIR / f"astronaut__{style}.json").read_text())
        np.testing.assert_allclose(at_pick[style]["nst_loss"], committed["nst_loss"], rtol=1e-6, err_msg=style)


def test_the_long_runs_are_the_paper_preset_for_10000_iterations_and_follow_the_committed_runs():
    """The 10,000-iteration runs (`reproduction.LONG_COMMAND`) ran today's paper preset on the astronaut to 10,000
    iterations, then a dream on each image and on the photo; their first 1,000 iterations are results/paper's
    astronaut runs (the same notebook, preset and seed, made on one CPU)."""
    long_dir = REPO / reproduction.LONG_DIR
    summary = reproduction.load_summary(long_dir)
    nst_cfg, dream_cfg = reproduction.resolve_configs("paper", nst_steps=10000)
    assert summary["parameters"]["nst"] == files.to_jsonable(dataclasses.asdict(nst_cfg))
    assert summary["parameters"]["dream"] == files.to_jsonable(dataclasses.asdict(dream_cfg))
    records = {r["style"]: r for r in reproduction.load_records(long_dir, summary["parameters"])}
    assert sorted(records) == sorted([*PAPER_STYLES, reproduction.ORIGINAL])
    for style, record in records.items():
        made = record["provenance"]
        assert made["command"].startswith(reproduction.LONG_COMMAND) and made["dirty"] is False, style
        assert record["weights"] == COMMITTED["weights"] and len(record["dream_loss"]) == dream_cfg.num_steps, style
        if style != reproduction.ORIGINAL:
            committed = json.loads((PAPER_DIR / f"astronaut__{style}.json").read_text())["nst_loss"]
            assert len(record["nst_loss"]) == 10000 and record["nst_loss_final"] == record["nst_loss"][-1], style
            np.testing.assert_allclose(record["nst_loss"][:1000], committed, rtol=1e-6, err_msg=style)
    # the claim at the last iteration reads each run's NST loss after 10,000, not the one after 1,000
    cells = claim.table(reproduction.at_last_iteration(records.values()))["cells"]["astronaut"]
    assert {s: cells[s]["nst"] for s in PAPER_STYLES} == pytest.approx(
        {s: math.log(records[s]["nst_loss"][-1]) for s in PAPER_STYLES})


def _config(cls, stored: dict):
    """A config dataclass from a run record's parameters (JSON lists back to tuples)."""
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in stored.items()})


# Relative tolerances for a recomputation of committed histories, derived from measurements on one
# machine with three kernel sets against the committed runs: oneDNN AVX-512, oneDNN capped to AVX2
# (ONEDNN_MAX_CPU_ISA=AVX2) and Eigen (TF_ENABLE_ONEDNN_OPTS=0). The first 10 SGD steps of the paper
# preset differed by at most 0.025 %, 0.9 % and 2.9 % at lr 10, and 0, 1.8 % and 2.9 % at lr 100 on the
# four paper styles (rounding grows with each step); the first 20 dream steps by 0, 0.14 % and 0.32 %.
# The bounds are about 3.5× and 6× the largest seen.
NST_RTOL, DREAM_RTOL = 0.10, 0.02


@pytest.mark.slow
def test_committed_paper_runs_carry_provenance_and_recompute(weights_dir):
    """The first 10 NST steps of a committed run and the first 20 dream steps of the committed dream on
    the photo, recomputed with today's code from the parameters the runs recorded."""
    from nstdream_utils import dream, images, nst

    original = json.loads((PAPER_DIR / "astronaut__original.json").read_text())
    for record in (COMMITTED, original):
        made = record["provenance"]
        assert len(made["commit"]) == 40 and made["dirty"] is False, made
        assert made["command"].startswith(reproduction.COMMAND)
        assert made["machine"]["cpu"] and made["versions"]["tensorflow"]
    content = images.load_image(data.content_path("astronaut"))
    cfg = _config(presets.NSTConfig, COMMITTED["parameters"]["nst"]).replace(num_steps=10)
    result = nst.style_transfer(content, images.load_image(data.style_path("triangle")), config=cfg,
                                seed=COMMITTED["parameters"]["seed"], progress=False)
    np.testing.assert_allclose(result.history["total"], COMMITTED["nst_loss"][:10], rtol=NST_RTOL)
    dream_cfg = _config(presets.DreamConfig, original["parameters"]["dream"]).replace(num_steps=20)
    dreamed = dream.deep_dream(content, config=dream_cfg, seed=original["parameters"]["seed"], progress=False)
    np.testing.assert_allclose(dreamed.history["loss"], original["dream_loss"][:20], rtol=DREAM_RTOL)


def test_the_docs_come_from_the_committed_results(tmp_path, monkeypatch):
    """docs/reproduction.md is exactly what `reproduction markdown` renders from the committed results."""
    monkeypatch.chdir(REPO)
    text = reproduction.write_docs("results/paper", tmp_path / "reproduction.md").read_text()
    for phrase in ("**H1** NST loss(distorted) > NST loss(clear)", "Stability rule", reproduction.COMMAND,
                   "10,431.64", "3.6324", "ours, paper's Eq 6", "16,620", "our quick runs (results/claim): 40 runs",
                   "Made by commit `d19ec9857b`"):
        assert phrase in text, phrase
    makefile = (REPO / "Makefile").read_text()
    for command in (reproduction.COMMAND, reproduction.CLAIM_COMMAND, reproduction.LONG_COMMAND,
                    reproduction.LR_COMMAND):
        assert command.replace("python", "$(PY)", 1) in makefile, command  # `make paper` runs what the docs name
        assert command in text, command
    notebook = (REPO / "notebooks" / "07_reproducing_the_paper.ipynb").read_text()
    for command in (reproduction.COMMAND, reproduction.LONG_COMMAND, reproduction.LR_COMMAND):
        assert command in notebook, command  # notebook 07 says how each of its results was made
    assert text == (REPO / "docs" / "reproduction.md").read_text(), \
        "docs/reproduction.md is stale: run `python -m nstdream_utils.reproduction markdown`"
    written = []
    monkeypatch.setattr(reproduction, "write_docs", lambda out: written.append(out) or "docs/reproduction.md")
    assert reproduction.main(["markdown"]) == 0 and written == ["results/paper"]
