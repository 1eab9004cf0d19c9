"""The paper's claim, tested as the paper states it.

Al-Khazraji, Abbas & Jamil (2022) conclude that the "distorted" style images — they name
*circular* and *spiral* — give a higher NST loss and a lower DeepDream loss than the "clear" ones,
*triangle* and *3D squares*. Written down before any run is looked at:

- **H1** NST loss(distorted) > NST loss(clear);
- **H2** dream loss(distorted) < dream loss(clear).

Each is tested one-sided with a permutation test stratified by content photo: within each photo
the two labels are shuffled among its styles (every arrangement when there are at most a million,
else 20,000 seeded ones), so a photo whose losses are all large cannot drive the result. The
statistic is the mean over photos of mean log loss(distorted) − mean log loss(clear): its
exponential is the geometric-mean ratio distorted ÷ clear, reported with a bootstrap 95 %
confidence interval over photos. Verdicts are worded by the evidence: *supported* (p < α in the
claimed direction), *contradicted* (p < α in the opposite direction), else *not supported*.

Runs that did not converge are left out by a rule fixed in advance (:func:`stable`), not by hand.

Secondary analysis: a continuous "distortion" score of each style image (edge density,
spectral entropy) is first checked against the paper's labels, then correlated with both losses
(Spearman's ρ within each photo, averaged; the same stratified permutation).

Taught in notebook 07; ``python -m nstdream_utils.reproduction claim`` makes the runs.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence

import numpy as np

from .errors import InputError

DISTORTED = ("circular", "spiral")
"""The styles the paper's conclusion calls distorted."""
CLEAR = ("triangle", "3d_squares")
"""The styles it calls clear."""

HYPOTHESES = {
    "H1": ("nst", +1, "NST loss(distorted) > NST loss(clear)"),
    "H2": ("dream", -1, "dream loss(distorted) < dream loss(clear)"),
}
"""Name → (loss, claimed sign of log distorted − log clear, statement)."""

ALPHA = 0.05
STABILITY_FACTOR = 1.5
STABILITY_TAIL = 0.1
STABILITY_RULE = (f"a run is unstable when its NST loss anywhere in the last {STABILITY_TAIL:.0%} of its "
                  f"iterations exceeds {STABILITY_FACTOR}× the smallest loss there (or is not finite)")

NST_KEYS = ("nst_loss_1000", "nst_loss_final")
DREAM_KEYS = ("dream_loss_900", "dream_loss_final")
_EXACT_MAX = 1_000_000
_SAMPLES = 20_000


# --------------------------------------------------------------------------------------------------
# Distortion scores of a style image and rank correlation
# --------------------------------------------------------------------------------------------------


def spearman(x: Sequence[float], y: Sequence[float], *, exact_max: int = 8, seed: int = 0) -> dict:
    """Spearman's rank correlation of ``x`` and ``y`` with two p-values.

    ``p_value`` is ``scipy.stats.spearmanr``'s (a t approximation, poor for small n: with n = 4
    and ρ = 1 it says p = 0). ``p_permutation`` counts the pairings of ``y`` with ``x`` whose |ρ| is
    at least as large: exact (all n! pairings) for n ≤ ``exact_max``, else estimated from 20,000 seeded
    random ones as (k + 1) / 20,001, so it is never 0.
    With n = 4 the smallest possible two-sided permutation p is 2/24 ≈ 0.083: four points can never
    be "significant" at 0.05.

    Returns:
        ``{"rho", "p_value", "p_permutation", "n"}``; ``rho`` is None (no correlation defined) when
        n < 3 or one of the two has no spread.
    """
    from scipy import stats

    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    n = int(len(x))
    if n < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return {"rho": None, "p_value": None, "p_permutation": None, "n": n}
    result = stats.spearmanr(x, y)
    rho = float(result.statistic)
    rank_x = stats.rankdata(x)
    rank_y = stats.rankdata(y)
    if n <= exact_max:
        pairings = np.array(list(itertools.permutations(rank_y)))
    else:
        rng = np.random.default_rng(seed)
        pairings = np.array([rng.permutation(rank_y) for _ in range(20_000)])
    cx = rank_x - rank_x.mean()
    cy = pairings - pairings.mean(axis=1, keepdims=True)
    rhos = (cy @ cx) / (np.sqrt((cy ** 2).sum(axis=1)) * np.sqrt((cx ** 2).sum()))
    extreme = int(np.sum(np.abs(rhos) >= abs(rho) - 1e-12))
    # Exact: a fraction of all pairings. Sampled: (k + 1) / (N + 1), never 0 (Phipson & Smyth 2010).
    p_perm = extreme / len(rhos) if n <= exact_max else (extreme + 1) / (len(rhos) + 1)
    return {"rho": rho, "p_value": float(result.pvalue), "p_permutation": p_perm, "n": n}


_LUMA = np.array([0.299, 0.587, 0.114])  # ITU-R BT.601, as PIL's "L" mode


def _luminance(image: object, *, where: str) -> np.ndarray:
    """Check an image and return its luminance resampled to about 256×256 pixels, float64 in ``[0, 1]``."""
    from PIL import Image

    array = np.asarray(image)
    if array.ndim == 4 and array.shape[0] == 1:
        array = array[0]
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if not (array.ndim == 2 or (array.ndim == 3 and array.shape[-1] == 3)):
        fix = "drop the alpha channel: image[..., :3]" if array.ndim == 3 and array.shape[-1] == 4 else (
            "pass one RGB image [H, W, 3] (or [1, H, W, 3], or greyscale [H, W])")
        raise InputError(f"expected shape [H, W, 3], got {array.shape}", where=where, fix=fix)
    if min(array.shape[:2]) < 4:
        raise InputError(f"image of shape {array.shape} is too small", where=where, fix="use ≥ 4×4 pixels")
    if array.dtype == np.uint8:
        array = array / 255.0
    elif np.issubdtype(array.dtype, np.floating):
        array = array.astype(np.float64)
    else:
        raise InputError(f"expected float values in [0, 1] or uint8, got dtype {array.dtype}", where=where,
                         fix="convert with image.astype('float32') / 255")
    if not np.all(np.isfinite(array)):
        raise InputError("the image contains NaN or Inf", where=where, fix="pass a finite image")
    low, high = float(array.min()), float(array.max())
    if low < -1e-3 or high > 1 + 1e-3:
        raise InputError(f"values span [{low:.4g}, {high:.4g}], expected [0, 1]", where=where,
                         fix="divide by 255 if it holds 0–255 values, or np.clip(image, 0, 1)")
    luminance = array if array.ndim == 2 else array @ _LUMA
    # Resample to ~256×256 keeping the aspect ratio (PIL filters are anti-aliased when shrinking).
    height, width = luminance.shape
    scale = math.sqrt(256 * 256 / (height * width))
    shape = (max(4, round(width * scale)), max(4, round(height * scale)))
    resample = Image.Resampling.BOX if shape[0] * shape[1] < height * width else Image.Resampling.BILINEAR
    resized = Image.fromarray(np.clip(luminance, 0, 1).astype(np.float32)).resize(shape, resample)
    return np.asarray(resized, dtype=np.float64)


def distortion_score(image: object) -> float:
    """How busy an image is: the mean Sobel gradient magnitude of its luminance, ÷ 8 (edge density).

    The luminance (BT.601) is first resampled to about 256×256 pixels, so the score does not depend
    on resolution (within a few per cent). A flat image scores 0; a luminance change of 1/255 per
    pixel scores 1/255. Ranks ``data.GRADED_STYLES`` in their order for sizes ≥ 64 px.

    Args:
        image: float ``[H, W, 3]`` (or ``[1, H, W, 3]``, or greyscale ``[H, W]``) in ``[0, 1]``, or uint8.

    Raises:
        InputError: wrong shape, dtype, non-finite values or values outside ``[0, 1]``.
    """
    from scipy import ndimage

    luminance = _luminance(image, where="distortion_score")
    gradient_y = ndimage.sobel(luminance, axis=0, mode="reflect")
    gradient_x = ndimage.sobel(luminance, axis=1, mode="reflect")
    return float(np.mean(np.hypot(gradient_x, gradient_y)) / 8.0)


def spectral_entropy(image: object) -> float:
    """Normalised entropy of the luminance power spectrum, in ``[0, 1]``: 0 = flat or one frequency, 1 = white noise.

    The luminance as in :func:`distortion_score`, mean removed and Hann-windowed; the constant term
    is left out. Takes the same images and raises the same errors as :func:`distortion_score`.
    """
    luminance = _luminance(image, where="spectral_entropy")
    window = np.outer(np.hanning(luminance.shape[0]), np.hanning(luminance.shape[1]))
    centred = (luminance - np.sum(luminance * window) / np.sum(window)) * window
    power = np.abs(np.fft.fft2(centred)) ** 2
    power[0, 0] = 0.0
    total = float(power.sum())
    if total <= 1e-12 * power.size:
        return 0.0
    probability = power.ravel() / total
    probability = probability[probability > 0]
    return float(-np.sum(probability * np.log(probability)) / math.log(power.size - 1))


def style_scores(styles: Iterable[str], score=None) -> dict[str, float]:
    """``score`` (default :func:`distortion_score`) of each saved style image."""
    from . import data, images

    score = score or distortion_score
    return {s: score(images.load_image(data.style_path(s))) for s in styles}


# --------------------------------------------------------------------------------------------------
# Which runs count
# --------------------------------------------------------------------------------------------------


def stable(curve: Sequence[float | None] | None) -> bool | None:
    """Did the NST loss settle? False when, over the last :data:`STABILITY_TAIL` of the iterations,
    the largest loss exceeds :data:`STABILITY_FACTOR` × the smallest (a spike or an oscillation that
    has not died out) or one is not finite; None when there is no curve to judge (e.g. the paper's
    printed numbers)."""
    if not curve:
        return None
    tail = [math.inf if v is None or not math.isfinite(v) else float(v)
            for v in curve[-max(2, math.ceil(len(curve) * STABILITY_TAIL)):]]
    return max(tail) <= STABILITY_FACTOR * min(tail)


def _loss(record: dict, keys: Sequence[str]) -> float | None:
    for key in keys:
        value = record.get(key)
        if value is not None and math.isfinite(float(value)) and float(value) > 0:
            return float(value)
    return None


def table(records: Iterable[dict]) -> dict:
    """Sort run records into what the tests use.

    Returns:
        ``{"cells": {content: {style: {"nst", "dream"}}}`` (the mean of the log losses over a
        cell's runs, e.g. seeds; unstable runs left out), ``"unstable"`` (names of the runs left
        out), ``"runs"`` (number of runs used)}. ``original`` runs are ignored.
    """
    groups: dict[tuple[str, str], list[tuple[float, float]]] = {}
    unstable = []
    for record in records:
        content, style = str(record.get("content", "")), record.get("style")
        if style is None or style == "original" or record.get("status", "completed") != "completed":
            continue
        nst, dream = _loss(record, NST_KEYS), _loss(record, DREAM_KEYS)
        if nst is None or dream is None:
            continue
        if stable(record.get("nst_loss")) is False:
            unstable.append(f"{content}__{style}" + (f" (seed {record['seed']})" if "seed" in record else ""))
            continue
        groups.setdefault((content, style), []).append((math.log(nst), math.log(dream)))
    cells: dict[str, dict[str, dict[str, float]]] = {}
    for (content, style), values in sorted(groups.items()):
        logs = np.mean(values, axis=0)
        cells.setdefault(content, {})[style] = {"nst": float(logs[0]), "dream": float(logs[1])}
    return {"cells": cells, "unstable": unstable, "runs": sum(len(v) for v in groups.values())}


# --------------------------------------------------------------------------------------------------
# The label test (primary)
# --------------------------------------------------------------------------------------------------


def _verdict(p: float | None, p_opposite: float | None, alpha: float, p_min: float = 0.0) -> str:
    if p is None:
        return "cannot be tested: no photo has both a distorted and a clear style"
    if p < alpha:
        return f"supported (p = {p:.2g} < {alpha})"
    if p_opposite is not None and p_opposite < alpha:
        return f"contradicted at p < {alpha} (p = {p_opposite:.2g} the other way)"
    if p_min >= alpha and p <= p_opposite:
        return f"not supported: the claimed direction, but these data cannot reach p < {alpha} (p = {p:.2g})"
    return f"not supported (p = {p:.2g})"


def label_test(cells: dict, loss: str, sign: int, *, alpha: float = ALPHA, n_boot: int = 10_000,
               seed: int = 0) -> dict:
    """Permutation test of log loss(distorted) − log loss(clear), stratified by photo, one-sided.

    Args:
        cells: :func:`table`'s ``cells``.
        loss: ``"nst"`` or ``"dream"``.
        sign: +1 when the claim says distorted is higher, −1 when lower.

    Returns:
        ``{"effect"`` (mean over photos of the log difference), ``"ratio"`` (its exponential: the
        geometric-mean ratio distorted ÷ clear), ``"ci"`` ((low, high) bootstrap 95 % interval of
        the ratio over photos; None with fewer than 2 photos), ``"p"`` (one-sided, claimed
        direction), ``"p_opposite"``, ``"p_min"`` (the share of arrangements at the extreme of the
        null: no p in the claimed direction can be smaller here), ``"arrangements"``, ``"exact"``,
        ``"photos"``, ``"verdict"``}.
    """
    strata = []  # (log losses, which are distorted) per photo with both labels
    for styles in cells.values():
        names = [s for s in styles if s in DISTORTED or s in CLEAR]
        distorted = np.array([s in DISTORTED for s in names])
        if 0 < distorted.sum() < len(names):
            strata.append((np.array([styles[s][loss] for s in names]), distorted))
    if not strata:
        return {"effect": None, "ratio": None, "ci": None, "p": None, "p_opposite": None, "arrangements": 0,
                "exact": True, "photos": 0, "verdict": _verdict(None, None, alpha)}
    observed = np.array([v[d].mean() - v[~d].mean() for v, d in strata])
    effect = float(observed.mean())
    # Each photo's statistic under every choice of which of its styles carry the label "distorted".
    per_stratum = []
    for values, distorted in strata:
        k, n = int(distorted.sum()), len(values)
        picks = np.array([values[list(c)].sum() for c in itertools.combinations(range(n), k)])
        per_stratum.append(picks / k - (values.sum() - picks) / (n - k))
    count = math.prod(len(e) for e in per_stratum)
    rng = np.random.default_rng(seed)
    exact = count <= _EXACT_MAX
    if exact:
        null = np.zeros(1)
        for e in per_stratum:
            null = (null[:, None] + e[None, :]).ravel()
        null /= len(per_stratum)
    else:
        null = np.mean([rng.choice(e, _SAMPLES) for e in per_stratum], axis=0)
    tol = 1e-9 * max(1.0, abs(effect))

    def p_value(direction: int) -> float:
        k = int(np.sum(direction * null >= direction * effect - tol))
        return k / len(null) if exact else (k + 1) / (len(null) + 1)

    ci = None
    if len(observed) >= 2:
        boot = observed[rng.integers(0, len(observed), (n_boot, len(observed)))].mean(axis=1)
        ci = (math.exp(float(np.percentile(boot, 2.5))), math.exp(float(np.percentile(boot, 97.5))))
    p, p_opposite = p_value(sign), p_value(-sign)
    extreme = sign * null
    p_min = float(np.mean(extreme >= extreme.max() - tol))
    return {"effect": effect, "ratio": math.exp(effect), "ci": ci, "p": p, "p_opposite": p_opposite,
            "p_min": p_min, "arrangements": len(null), "exact": exact, "photos": len(observed),
            "verdict": _verdict(p, p_opposite, alpha, p_min)}


# --------------------------------------------------------------------------------------------------
# Continuous scores (secondary)
# --------------------------------------------------------------------------------------------------

SCORES = {"edge density": distortion_score, "spectral entropy": spectral_entropy}
"""The continuous distortion scores of the secondary analysis."""


def agrees_with_labels(scores: dict[str, float]) -> bool | None:
    """Does a score put both distorted styles above both clear ones? None if a paper style is missing."""
    if any(s not in scores for s in DISTORTED + CLEAR):
        return None
    return min(scores[s] for s in DISTORTED) > max(scores[s] for s in CLEAR)


def score_test(cells: dict, scores: dict[str, float], loss: str, sign: int, *, alpha: float = ALPHA,
               seed: int = 0) -> dict:
    """Spearman's ρ between a style score and a loss within each photo (≥ 3 styles), averaged over
    photos; one-sided permutation p in the claimed ``sign``, losses shuffled within each photo.

    Returns:
        ``{"rho", "photos", "p", "p_opposite", "verdict"}`` (``rho`` None when no photo has 3 styles).
    """
    from scipy import stats

    strata = []
    for styles in cells.values():
        names = [s for s in styles if s in scores]
        if len(names) >= 3:
            strata.append((stats.rankdata([scores[s] for s in names]), stats.rankdata([styles[s][loss] for s in names])))
    if not strata:
        return {"rho": None, "photos": 0, "p": None, "p_opposite": None, "verdict": _verdict(None, None, alpha)}
    rng = np.random.default_rng(seed)

    def mean_rho(shuffled: bool) -> np.ndarray:
        total = 0.0
        for x, y in strata:
            y = rng.permuted(np.tile(y, (_SAMPLES, 1)), axis=1) if shuffled else y[None, :]
            cx, cy = x - x.mean(), y - y.mean(axis=1, keepdims=True)
            total = total + (cy @ cx) / (np.linalg.norm(cx) * np.linalg.norm(cy, axis=1) + 1e-300)
        return total / len(strata)

    rho, null = float(mean_rho(False)[0]), mean_rho(True)

    def p_value(direction: int) -> float:
        return (int(np.sum(direction * null >= direction * rho - 1e-12)) + 1) / (len(null) + 1)

    p, p_opposite = p_value(sign), p_value(-sign)
    return {"rho": rho, "photos": len(strata), "p": p, "p_opposite": p_opposite,
            "verdict": _verdict(p, p_opposite, alpha)}


# --------------------------------------------------------------------------------------------------
# Everything at once
# --------------------------------------------------------------------------------------------------


def evaluate(records: Iterable[dict], *, scores: dict[str, dict[str, float]] | None = None,
             alpha: float = ALPHA, seed: int = 0) -> dict:
    """H1 and H2 on ``records`` (run records: ``content``, ``style``, the loss keys and the NST
    curve ``nst_loss``), then the secondary analysis with each score.

    Args:
        scores: score name → style → value (default: :data:`SCORES` of the saved style images
            present in the records).

    Returns:
        ``{"runs", "photos", "unstable", "hypotheses": {"H1", "H2"}`` (each :func:`label_test` plus
        ``"statement"``), ``"scores": {name: {"values", "agrees_with_labels", "nst", "dream"}}``
        (each :func:`score_test`)}.
    """
    records = list(records)
    sorted_runs = table(records)
    cells = sorted_runs["cells"]
    hypotheses = {name: {"statement": text, **label_test(cells, loss, sign, alpha=alpha, seed=seed)}
                  for name, (loss, sign, text) in HYPOTHESES.items()}
    if scores is None:
        styles = sorted({s for styles in cells.values() for s in styles})
        scores = {name: style_scores(styles, function) for name, function in SCORES.items()}
    secondary = {name: {"values": values, "agrees_with_labels": agrees_with_labels(values),
                        "nst": score_test(cells, values, "nst", +1, alpha=alpha, seed=seed),
                        "dream": score_test(cells, values, "dream", -1, alpha=alpha, seed=seed)}
                 for name, values in scores.items()}
    return {"runs": sorted_runs["runs"], "photos": len(cells), "unstable": sorted_runs["unstable"],
            "hypotheses": hypotheses, "scores": secondary}


def ratio_text(result: dict) -> str:
    """A label test's ratio distorted ÷ clear with its 95 % interval, to 2 decimals."""
    if result["ratio"] is None:
        return "n/a"
    ci = f" [{result['ci'][0]:.2f}, {result['ci'][1]:.2f}]" if result["ci"] else ""
    return f"{result['ratio']:.2f}{ci}"


def claim_text(label: str, result: dict) -> str:
    """An :func:`evaluate` result as a few lines: each hypothesis's ratio, p and verdict, then the scores."""
    lines = [f"{label}: {result['runs']} runs on {result['photos']} photo(s); "
             f"{len(result['unstable'])} unstable left out" + (f" ({', '.join(result['unstable'])})"
                                                               if result["unstable"] else "")]
    for name, h in result["hypotheses"].items():
        lines.append(f"  {name} {h['statement']}: distorted ÷ clear {ratio_text(h)} → {h['verdict']}")
    for name, s in result["scores"].items():
        agrees = {True: "orders the paper's styles as its labels", False: "does NOT order them as the labels",
                  None: "paper styles missing"}[s["agrees_with_labels"]]
        rho = lambda r: "n/a" if r["rho"] is None else f"{r['rho']:+.2f}"  # noqa: E731
        lines.append(f"  {name} ({agrees}): rho with NST loss {rho(s['nst'])} → {s['nst']['verdict']}; "
                     f"with dream loss {rho(s['dream'])} → {s['dream']['verdict']}")
    return "\n".join(lines)
