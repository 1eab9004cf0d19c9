"""Tests for nstdream_utils.reproduction: the resumable runner, the tables, the claim test, and the
committed paper-preset results in results/paper/."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest

from nstdream_utils import presets, reproduction
from nstdream_utils.data import PAPER_STYLES

REPO = Path(__file__).resolve().parents[1]
COMMITTED = REPO / "results" / "paper" / "summary.json"
EXPECTED_MD5 = {"vgg19": "253f8cb515780f3b799900260a226db6", "inception_v3": "c6c5a68d5832b063671faaa7de3c9ab9"}


# ------------------------------------------------------------------------------------- the runner


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, weights_dir):
    """Two styles × one content at 32 px / 75 px, 2 steps each: the runner end to end (real weights)."""
    out = tmp_path_factory.mktemp("paper")
    summary = reproduction.run_paper(out, preset="paper", styles=("triangle", "spiral"), contents=("astronaut",),
                                     **TINY, log=None)
    return out, summary


TINY = dict(nst_steps=2, dream_steps=2, nst_size=32, dream_size=75)


def test_runner_writes_every_run_and_the_summary(tiny_run):
    out, summary = tiny_run
    for stem in ("astronaut__triangle", "astronaut__spiral"):
        record = json.loads((out / f"{stem}.json").read_text())
        assert record["status"] == "completed"
        assert len(record["nst_loss"]) == 2 and len(record["dream_loss"]) == 2
        assert record["nst_loss_1000"] is None and record["dream_loss_900"] is None  # fewer steps
        assert math.isfinite(record["nst_loss_final"]) and math.isfinite(record["dream_loss_final"])
        assert record["parameters"]["nst"]["size"] == 32 and record["parameters"]["dream"]["size"] == 75
        assert {k: v["md5"] for k, v in record["weights"].items()} == EXPECTED_MD5
        assert (out / f"{stem}__stylized.png").is_file() and (out / f"{stem}__dreamed.png").is_file()
    original = json.loads((out / "astronaut__original.json").read_text())
    assert len(original["dream_loss"]) == 2 and (out / "astronaut__original__dreamed.png").is_file()
    stored = json.loads((out / "summary.json").read_text())
    for key in ("preset", "parameters", "weights", "versions", "styles", "original_dream_loss_900", "paper"):
        assert key in stored, key
    assert set(stored["styles"]) == {"triangle", "spiral"}
    for entry in stored["styles"].values():
        assert {"nst_loss_1000", "dream_loss_900", "paper_nst_loss_10000", "paper_dream_loss_900"} <= set(entry)
    assert stored["paper"]["nst_loss_10000"]["spiral"] == 40709.7
    assert stored["parameters"]["preset"] == "paper" and stored["parameters"]["nst"]["num_steps"] == 2
    assert sorted(summary["ran"]) == ["astronaut__original", "astronaut__spiral", "astronaut__triangle"]
    assert not list(out.glob(".*.tmp"))  # atomic writes leave no temporary files


def test_runner_resumes_without_recomputing(tiny_run):
    out, _ = tiny_run
    mtimes = {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.name != "summary.json"}
    again = reproduction.run_paper(out, preset="paper", styles=("triangle", "spiral"), contents=("astronaut",),
                                   **TINY, log=None)
    assert again["ran"] == []
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.name != "summary.json"} == mtimes


@pytest.mark.slow
def test_runs_through_the_batch_runner_match_in_process_runs(tiny_run, tmp_path):
    """The same two runs through `nstdream batch` (notebook 05 under papermill): same records."""
    out, _ = tiny_run
    summary = reproduction.run_paper(tmp_path, preset="paper", styles=("triangle", "spiral"), contents=("astronaut",),
                                     **TINY, log=None, workers=1)
    assert sorted(summary["ran"]) == ["astronaut__original", "astronaut__spiral", "astronaut__triangle"]
    for stem in ("astronaut__triangle", "astronaut__spiral"):
        here, there = (json.loads((folder / f"{stem}.json").read_text()) for folder in (tmp_path, out))
        assert here["batch_run"] and (tmp_path / "batch" / "runs" / here["batch_run"] / "metrics.json").is_file()
        assert here["parameters"] == there["parameters"] and here["status"] == "completed"
        for key in ("nst_loss", "nst_style_loss", "dream_loss"):
            np.testing.assert_allclose(here[key], there[key], rtol=1e-4, err_msg=key)
        assert (tmp_path / f"{stem}__stylized.png").is_file() and (tmp_path / f"{stem}__dreamed.png").is_file()
    again = reproduction.run_paper(tmp_path, preset="paper", styles=("triangle", "spiral"), contents=("astronaut",),
                                   **TINY, log=None, workers=1)
    assert again["ran"] == []  # resumable: nothing runs twice
    fresh = reproduction.run_paper(tmp_path, preset="paper", styles=("triangle",), contents=("astronaut",),
                                   **TINY, log=None, workers=1, recompute=True)
    assert sorted(fresh["ran"]) == ["astronaut__original", "astronaut__triangle"]  # the original dream too


def test_a_failed_dream_keeps_the_finished_nst(tmp_path, weights_dir, monkeypatch):
    from nstdream_utils import dream

    def broken(*args, **kwargs):
        raise KeyboardInterrupt  # as if the user pressed Ctrl-C during DeepDream

    monkeypatch.setattr(dream, "deep_dream", broken)
    with pytest.raises(KeyboardInterrupt):
        reproduction.run_paper(tmp_path, preset="paper", styles=("triangle",), contents=("astronaut",), **TINY,
                               log=None)
    assert (tmp_path / "astronaut__triangle__stylized.png").is_file()
    kept = json.loads((tmp_path / "astronaut__triangle__nst.json").read_text())
    assert len(kept["nst_loss"]) == 2 and all(math.isfinite(v) for v in kept["nst_loss"])
    assert not (tmp_path / "astronaut__triangle.json").exists()  # not a finished run: the next call redoes it
    assert reproduction.load_records(tmp_path) == []


def test_a_diverged_run_is_recorded_and_the_others_go_on(tmp_path, weights_dir, monkeypatch):
    # The paper preset's SGD guard would retry lr 1e6 at ever smaller rates: turn it off (keras-io exactly).
    keras_io = dataclasses.replace(presets.PAPER, nst=dataclasses.replace(presets.PAPER.nst, sgd_guard_factor=None))
    monkeypatch.setitem(presets.PRESETS, "paper", keras_io)
    summary = reproduction.run_paper(tmp_path, preset="paper", styles=("triangle",), contents=("astronaut",),
                                     nst_steps=4, dream_steps=2, nst_size=32, dream_size=75, learning_rate=1e6,
                                     log=None)
    record = json.loads((tmp_path / "astronaut__triangle.json").read_text())
    assert record["status"] == "diverged" and "not finite" in record["error"]
    assert record["dream_loss"] == [] and set(record["images"]) == {"stylized"}
    assert (tmp_path / "astronaut__triangle__stylized.png").is_file()
    assert summary["styles"]["triangle"]["nst_loss_final"] is None
    assert json.loads((tmp_path / "astronaut__original.json").read_text())["status"] == "completed"
    again = reproduction.run_paper(tmp_path, preset="paper", styles=("triangle",), contents=("astronaut",),
                                   nst_steps=4, dream_steps=2, nst_size=32, dream_size=75, learning_rate=1e6,
                                   log=None)
    assert again["ran"] == []  # a divergence is a result: not retried



def test_markdown_renders_from_a_run(tiny_run, tmp_path):
    out, _ = tiny_run
    doc = reproduction.write_docs(out, tmp_path / "reproduction.md")
    text = doc.read_text()
    for phrase in ("Table 1", "Table 2", "Why our numbers differ", reproduction.COMMAND, "10,431.64", "3.6324"):
        assert phrase in text, phrase


# ---------------------------------------------------------------------------------- pure helpers


def test_tables_put_the_paper_beside_ours():
    summary = {"styles": {s: {"nst_loss_1000": 2 * reproduction.PAPER_NST_LOSS_10000[s],
                              "dream_loss_900": reproduction.PAPER_DREAM_LOSS_900[s]} for s in PAPER_STYLES},
               "original_dream_loss_900": 1.0}
    table1, table2 = reproduction.summary_tables(summary)
    assert [r["style"] for r in table1] == list(PAPER_STYLES)
    assert all(r["ratio"] == pytest.approx(2.0) for r in table1)
    assert [r["paper_rank"] for r in table1] == [r["our_rank"] for r in table1]
    assert table2[-1]["style"] == "original" and table2[-1]["paper"] == 3.6324 and table2[-1]["our_rank"] == 5
    assert "| spiral | 40,709.7 | 81,420 | 2 | 1 | 1 |" in reproduction.markdown_table(table1)


def test_sig_and_ranks():
    assert reproduction.sig(10431.64) == "10,430"
    assert reproduction.sig(3.81662) == "3.817"
    assert reproduction.sig(None) == "n/a" and reproduction.sig(float("nan")) == "n/a"
    assert reproduction.ranks([3.0, None, 5.0, 1.0]) == [2, None, 1, 3]


def test_spearman_small_n_uses_an_exact_permutation_p():
    result = reproduction.spearman([1, 2, 3, 4], [10, 20, 30, 40])
    assert result["rho"] == pytest.approx(1.0) and result["n"] == 4
    assert result["p_permutation"] == pytest.approx(2 / 24)  # ρ = ±1 are 2 of the 4! pairings
    assert reproduction.spearman([1, 2], [2, 1])["rho"] is None


def test_spearman_large_n_estimates_a_permutation_p_that_is_never_zero():
    perfect = reproduction.spearman(list(range(12)), list(range(12)))
    assert perfect["rho"] == pytest.approx(1.0)
    assert perfect["p_permutation"] == pytest.approx(1 / 20_001)  # no sampled pairing reaches ρ = 1
    rng = np.random.default_rng(1)
    noise = reproduction.spearman(rng.normal(size=24), rng.normal(size=24))
    assert 0.05 < noise["p_permutation"] <= 1 and abs(noise["p_permutation"] - noise["p_value"]) < 0.05


def test_claim_test_returns_rho_in_range_with_the_right_n():
    scores = {"a": 0.01, "b": 0.02, "c": 0.03, "d": 0.04}
    records = [{"content": c, "style": s, "nst_loss_final": 100 * v + i, "dream_loss_final": 1 - 10 * v}
               for i, c in enumerate(("x", "y")) for s, v in scores.items()]
    records.append({"content": "x", "style": "original", "dream_loss_final": 5.0})  # ignored
    claim = reproduction.claim_test(records, scores=scores)
    assert claim["n"] == 8 and claim["nst"]["n"] == 8 and claim["dream"]["n"] == 8
    for key in ("nst", "dream", "nst_vs_dream"):
        assert -1.0 <= claim[key]["rho"] <= 1.0
    assert claim["nst"]["rho"] > 0.9 and claim["dream"]["rho"] == pytest.approx(-1.0)
    assert claim["holds"] and claim["verdict"].startswith("holds")


def test_claim_test_on_the_paper_numbers_scores_the_real_style_images():
    claim = reproduction.claim_test(reproduction.paper_records())
    assert claim["n"] == 4 and set(claim["scores"]) == set(PAPER_STYLES)
    assert -1.0 <= claim["nst"]["rho"] <= 1.0
    assert not claim["holds"]  # n = 4 can never reach p < 0.05 with the permutation test


# ------------------------------------------------------------------------ the committed results


def test_committed_paper_results():
    if not COMMITTED.is_file():
        pytest.skip("results/paper/summary.json not made yet: run `python -m nstdream_utils.reproduction run`")
    summary = json.loads(COMMITTED.read_text())
    assert summary["preset"] == "paper"
    assert summary["parameters"]["nst"]["num_steps"] == 1000 and summary["parameters"]["dream"]["num_steps"] == 1000
    assert set(PAPER_STYLES) <= set(summary["styles"])
    for style in PAPER_STYLES:
        entry = summary["styles"][style]
        for key in ("nst_loss_1000", "dream_loss_900"):
            assert entry[key] is not None and math.isfinite(entry[key]), (style, key)
            assert summary[style][key] == entry[key]  # the layout: a top-level key per style
    assert math.isfinite(summary["original_dream_loss_900"])
    assert {k: v["md5"] for k, v in summary["weights"].items()} == EXPECTED_MD5
    for stem in summary["runs"]:
        assert (COMMITTED.parent / f"{stem}.json").is_file()


def test_claim_text_gives_each_correlation_and_the_verdict():
    claim = reproduction.claim_test(reproduction.paper_records())
    lines = reproduction.claim_text("the paper's own numbers", claim).splitlines()
    assert lines[0] == f"the paper's own numbers (n = {claim['n']}):" and len(lines) == 5
    assert lines[1].startswith("  score vs NST loss   rho") and lines[-1] == f"  verdict: {claim['verdict']}"
