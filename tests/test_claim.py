"""Tests for nstdream_utils.claim: the label test (H1/H2), the stability rule, the secondary score
analysis, and the rank correlation it builds on."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nstdream_utils import claim, reproduction
from nstdream_utils.data import PAPER_STYLES

LABELS = {"circular": 1, "spiral": 1, "triangle": 0, "3d_squares": 0}


def _records(photos: dict[str, dict[str, float]], *, dream: float = 3.0) -> list[dict]:
    """Run records with the given NST losses (content → style → loss) and a constant dream loss."""
    return [{"content": c, "style": s, "nst_loss_final": v, "dream_loss_final": dream, "nst_loss": [3 * v, v, v]}
            for c, losses in photos.items() for s, v in losses.items()]


def _cells(photos: dict[str, dict[str, float]]) -> dict:
    return claim.table(_records(photos))["cells"]


# ------------------------------------------------------------------------------ the label test


def test_one_photo_in_the_claimed_direction_cannot_be_significant():
    cells = _cells({"a": {"circular": 40.0, "spiral": 20.0, "triangle": 10.0, "3d_squares": 5.0}})
    result = claim.label_test(cells, "nst", +1)
    # 6 ways to pick the two "distorted" of four styles; the observed one is the most extreme.
    assert result["exact"] and result["arrangements"] == 6
    assert result["p"] == pytest.approx(1 / 6) and result["p_min"] == pytest.approx(1 / 6)
    assert result["ratio"] == pytest.approx(math.sqrt(40 * 20) / math.sqrt(10 * 5))
    assert result["ci"] is None  # no interval from one photo
    assert result["verdict"].startswith("not supported: the claimed direction")


def test_five_consistent_photos_are_supported_and_the_opposite_is_contradicted():
    photos = {f"p{i}": {"circular": 4.0 * (i + 1), "spiral": 3.0 * (i + 1), "triangle": 2.0 * (i + 1),
                        "3d_squares": 1.0 * (i + 1)} for i in range(5)}
    result = claim.label_test(_cells(photos), "nst", +1)
    assert result["arrangements"] == 6 ** 5 and result["p"] == pytest.approx(1 / 6 ** 5)
    assert result["verdict"].startswith("supported")
    low, high = result["ci"]
    assert low == pytest.approx(high) == pytest.approx(result["ratio"])  # every photo has the same ratio
    flipped = claim.label_test(_cells(photos), "nst", -1)
    assert flipped["p_opposite"] == pytest.approx(1 / 6 ** 5) and flipped["verdict"].startswith("contradicted")


def test_the_test_is_stratified_a_photo_with_large_losses_does_not_dominate():
    # Photo "big" has losses 1000× the others and the opposite order; on the log scale it is one of three.
    photos = {"a": {"circular": 4.0, "spiral": 3.0, "triangle": 2.0, "3d_squares": 1.0},
              "b": {"circular": 4.0, "spiral": 3.0, "triangle": 2.0, "3d_squares": 1.0},
              "big": {"circular": 1000.0, "spiral": 2000.0, "triangle": 3000.0, "3d_squares": 4000.0}}
    result = claim.label_test(_cells(photos), "nst", +1)
    pooled = np.mean([photos["big"][s] for s in claim.DISTORTED]) > np.mean([photos["big"][s] for s in claim.CLEAR])
    assert not pooled  # pooled raw means would follow "big" alone
    expected = (2 * math.log(math.sqrt(12) / math.sqrt(2)) + math.log(math.sqrt(2e6) / math.sqrt(12e6))) / 3
    assert result["effect"] == pytest.approx(expected)


def test_random_labels_give_no_evidence():
    rng = np.random.default_rng(0)
    photos = {f"p{i}": {s: float(rng.lognormal()) for s in PAPER_STYLES} for i in range(6)}
    result = claim.label_test(_cells(photos), "nst", +1)
    assert 0.05 < result["p"] < 0.95 and result["verdict"].startswith("not supported")
    low, high = result["ci"]
    assert low < result["ratio"] < high


def test_a_photo_without_both_labels_is_not_used():
    cells = _cells({"a": {"circular": 2.0, "spiral": 3.0}})
    assert claim.label_test(cells, "nst", +1)["verdict"].startswith("cannot be tested")


# ------------------------------------------------------------------------------ which runs count


def test_stability_rule():
    assert claim.stable(None) is None and claim.stable([]) is None
    settled = [1000.0 / (k + 1) for k in range(100)]
    assert claim.stable(settled)
    oscillating = settled[:90] + [10.0, 50.0, 12.0, 40.0, 11.0, 45.0, 10.5, 30.0, 11.0, 14.0]
    assert not claim.stable(oscillating)  # the last value is < 1.5× the minimum, but the tail is not settled
    assert not claim.stable(settled[:-1] + [float("inf")]) and not claim.stable(settled[:-1] + [None])
    assert claim.stable([5.0, 5.0])  # a short run: its last two values


def test_table_drops_unstable_runs_and_averages_repeats_on_the_log_scale():
    records = _records({"a": {"circular": 4.0, "triangle": 1.0}})
    records.append({"content": "a", "style": "spiral", "nst_loss_final": 1.0, "dream_loss_final": 3.0,
                    "nst_loss": [1.0] * 9 + [100.0, 1.0]})  # a spike in the last 10 %
    records.append({"content": "a", "style": "triangle", "nst_loss_final": 4.0, "dream_loss_final": 3.0,
                    "nst_loss": [8.0, 4.0, 4.0]})  # a second run (another seed) of a, triangle
    records.append({"content": "a", "style": "original", "dream_loss_final": 5.0})  # ignored
    records.append({"content": "a", "style": "3d_squares", "status": "diverged", "nst_loss_final": None})
    sorted_runs = claim.table(records)
    assert sorted_runs["unstable"] == ["a__spiral"] and sorted_runs["runs"] == 3
    assert set(sorted_runs["cells"]["a"]) == {"circular", "triangle"}
    assert sorted_runs["cells"]["a"]["triangle"]["nst"] == pytest.approx(math.log(2.0))  # geometric mean of 1, 4


# ---------------------------------------------------------------------- secondary: continuous scores


def test_score_test_finds_a_monotone_relation_within_photos():
    scores = {"a": 0.1, "b": 0.2, "c": 0.3, "d": 0.4, "e": 0.5}
    photos = {f"p{i}": {s: (10.0 ** i) * (1 + v) for s, v in scores.items()} for i in range(4)}
    result = claim.score_test(_cells(photos), scores, "nst", +1)
    assert result["rho"] == pytest.approx(1.0) and result["photos"] == 4
    assert result["p"] < 0.001 and result["verdict"].startswith("supported")
    assert claim.score_test(_cells(photos), scores, "nst", -1)["verdict"].startswith("contradicted")


def test_the_scores_of_the_real_style_images_against_the_paper_labels():
    edge = claim.style_scores(PAPER_STYLES)
    entropy = claim.style_scores(PAPER_STYLES, claim.spectral_entropy)
    # Edge density puts spiral (0.0369) below 3D squares (0.0382): against the paper's labels.
    assert edge["spiral"] < edge["3d_squares"] and claim.agrees_with_labels(edge) is False
    assert claim.agrees_with_labels(entropy) is True
    assert claim.agrees_with_labels({"spiral": 1.0}) is None


def test_evaluate_on_the_paper_numbers():
    result = claim.evaluate(reproduction.paper_records())
    assert result["runs"] == 4 and result["photos"] == 1 and result["unstable"] == []
    h1, h2 = result["hypotheses"]["H1"], result["hypotheses"]["H2"]
    paper = reproduction.PAPER_NST_LOSS_10000
    assert h1["ratio"] == pytest.approx(math.sqrt(paper["circular"] * paper["spiral"])
                                        / math.sqrt(paper["triangle"] * paper["3d_squares"]))
    assert h1["ratio"] > 1 and h2["ratio"] < 1  # both as the paper says, but one photo gives p ≥ 1/6
    assert h1["p"] == pytest.approx(1 / 6) and h2["p"] == pytest.approx(1 / 6)
    assert result["scores"]["spectral entropy"]["dream"]["rho"] == pytest.approx(-1.0)
    text = claim.claim_text("the paper", result).splitlines()
    assert text[0] == "the paper: 4 runs on 1 photo(s); 0 unstable left out" and len(text) == 5
    assert text[1].startswith("  H1 NST loss(distorted) > NST loss(clear): distorted ÷ clear 7.12 →")


# ------------------------------------------------------------------------------ rank correlation


def test_spearman():
    result = claim.spearman([1, 2, 3, 4], [10, 20, 30, 40])
    assert result["rho"] == pytest.approx(1.0) and result["n"] == 4 and result["p_value"] == pytest.approx(0.0)
    assert claim.spearman([4, 3, 2, 1, 0], [1, 2, 3, 4, 6])["rho"] == pytest.approx(-1.0)
    assert claim.spearman([1, 2], [2, 1])["rho"] is None and claim.spearman([1, 1, 1], [1, 2, 3])["rho"] is None
    rng = np.random.default_rng(1)
    assert claim.spearman(rng.normal(size=24), rng.normal(size=24))["p_value"] > 0.05  # noise


def test_spearman_leaves_out_pairs_with_a_missing_value():
    assert claim.spearman([1.0, None, 3.0, 4.0, 5.0], [2.0, 7.0, 1.0, 4.0, 3.0]) == \
        claim.spearman([1.0, 3.0, 4.0, 5.0], [2.0, 1.0, 4.0, 3.0])
    assert claim.spearman([1.0, 2.0, None], [3.0, 1.0, 2.0])["rho"] is None  # two pairs left: no ρ
