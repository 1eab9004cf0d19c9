"""The paper's claim (:data:`HYPOTHESES`) tested as it states it, then style-image scores against both losses."""

import collections
import itertools
import math
from collections.abc import Iterable, Sequence

import numpy as np
from PIL import Image
from scipy import ndimage, stats

from . import data, images
from .errors import InputError

DISTORTED, CLEAR = ("circular", "spiral"), ("triangle", "3d_squares")  # the paper's labels of its styles
HYPOTHESES = {"H1": ("nst", +1, "NST loss(distorted) > NST loss(clear)"),  # (loss, claimed sign, statement)
              "H2": ("dream", -1, "dream loss(distorted) < dream loss(clear)")}
ALPHA = 0.05
STABILITY_FACTOR, STABILITY_TAIL = 1.5, 0.1
STABILITY_RULE = (f"a run is unstable when its NST loss anywhere in the last {STABILITY_TAIL:.0%} of its "
                  f"iterations exceeds {STABILITY_FACTOR}× the smallest loss there (or is not finite)")
_EXACT_MAX, _SAMPLES = 1_000_000, 20_000  # label test: every arrangement up to _EXACT_MAX, else _SAMPLES seeded ones


def spearman(x: Sequence[float], y: Sequence[float]) -> dict:
    """Spearman's ``rho``, scipy's ``p_value`` and ``n`` of the pairs without a None; None if n < 3 or no spread."""
    pairs = [(a, b) for a, b in zip(x, y, strict=True) if a is not None and b is not None]
    x, y = np.array(pairs, np.float64).reshape(-1, 2).T
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return {"rho": None, "p_value": None, "n": len(x)}
    result = stats.spearmanr(x, y)
    return {"rho": float(result.statistic), "p_value": float(result.pvalue), "n": len(x)}


def _luminance(image: object, where: str) -> np.ndarray:
    """The BT.601 luminance resampled to about 256×256 px (aspect kept), float64 in [0, 1]."""
    array = np.asarray(image)
    array = array[0] if array.ndim == 4 and array.shape[0] == 1 else array
    if not (array.ndim == 2 or (array.ndim == 3 and array.shape[-1] == 3)):
        fix = ("drop the alpha channel: image[..., :3]" if array.ndim == 3 and array.shape[-1] == 4
               else "pass one RGB image [H, W, 3] (or [1, H, W, 3], or greyscale [H, W])")
        raise InputError(f"expected shape [H, W, 3], got {array.shape}", where=where, fix=fix)
    if min(array.shape[:2]) < 4:
        raise InputError(f"image of shape {array.shape} is too small", where=where, fix="use ≥ 4×4 pixels")
    if array.dtype != np.uint8 and not np.issubdtype(array.dtype, np.floating):
        raise InputError(f"expected float values in [0, 1] or uint8, got dtype {array.dtype}", where=where,
                         fix="convert with image.astype('float32') / 255")
    array = array / 255.0 if array.dtype == np.uint8 else array.astype(np.float64)
    if not np.all(np.isfinite(array)) or array.min() < -1e-3 or array.max() > 1 + 1e-3:
        raise InputError(f"values span [{array.min():.4g}, {array.max():.4g}], expected finite values in [0, 1]",
                         where=where, fix="divide by 255 if it holds 0–255 values, or np.clip(image, 0, 1); "
                         "for NaN or Inf, check what made the image")
    luminance = array if array.ndim == 2 else array @ np.array([0.299, 0.587, 0.114])
    scale = math.sqrt(256 * 256 / luminance.size)  # keeps the aspect ratio; PIL's BOX anti-aliases
    shape = (max(4, round(luminance.shape[1] * scale)), max(4, round(luminance.shape[0] * scale)))
    resample = Image.Resampling.BOX if shape[0] * shape[1] < luminance.size else Image.Resampling.BILINEAR
    return np.asarray(Image.fromarray(np.clip(luminance, 0, 1).astype(np.float32)).resize(shape, resample), np.float64)


def distortion_score(image: object) -> float:
    """Edge density: the mean Sobel magnitude ÷ 8 of the luminance at ~256×256 px (0 flat, 1/255 for a 1/255 ramp).
    ``image``: float [H, W, 3], [1, H, W, 3] or [H, W] in [0, 1], or uint8, ≥ 4×4 px; else InputError."""
    luminance = _luminance(image, "distortion_score")
    return float(np.mean(ndimage.generic_gradient_magnitude(luminance, ndimage.sobel, mode="reflect")) / 8.0)


def spectral_entropy(image: object) -> float:
    """Normalised entropy of the luminance power spectrum (Hann window, no DC) in [0, 1]; images as distortion_score."""
    luminance = _luminance(image, "spectral_entropy")
    window = np.outer(np.hanning(luminance.shape[0]), np.hanning(luminance.shape[1]))
    power = np.abs(np.fft.fft2((luminance - np.sum(luminance * window) / np.sum(window)) * window)) ** 2
    power[0, 0] = 0.0
    return 0.0 if power.sum() <= 1e-12 * power.size else float(stats.entropy(power.ravel()) / math.log(power.size - 1))


SCORES = {"edge density": distortion_score, "spectral entropy": spectral_entropy}


def style_scores(styles: Iterable[str], score=distortion_score) -> dict[str, float]:
    """``score`` of each saved style image."""
    return {s: score(images.load_image(data.style_path(s))) for s in styles}


def agrees_with_labels(scores: dict[str, float]) -> bool | None:
    """Does a score put both distorted styles above both clear ones? None if a paper style is missing."""
    missing = any(s not in scores for s in DISTORTED + CLEAR)
    return None if missing else min(scores[s] for s in DISTORTED) > max(scores[s] for s in CLEAR)


def stable(curve: Sequence[float | None] | None) -> bool | None:
    """Whether an NST loss curve passes :data:`STABILITY_RULE` (over its last 2 values at least); None if empty."""
    if not curve:
        return None
    tail = [math.inf if v is None or not math.isfinite(v) else float(v)
            for v in curve[-max(2, math.ceil(len(curve) * STABILITY_TAIL)):]]
    return max(tail) <= STABILITY_FACTOR * min(tail)


def table(records: Iterable[dict]) -> dict:
    """``{"cells": {content: {style: {"nst", "dream"}}}, "unstable", "runs"}``: mean log losses of stable runs."""
    groups, unstable = collections.defaultdict(list), []
    for record in records:
        content, style = str(record.get("content", "")), record.get("style")
        # each loss: the first finite positive one of its two keys
        nst, dream = (next((float(record[k]) for k in keys if 0 < (record.get(k) or 0) < math.inf), None)
                      for keys in (("nst_loss_1000", "nst_loss_final"), ("dream_loss_900", "dream_loss_final")))
        if style in (None, "original") or record.get("status", "completed") != "completed" or None in (nst, dream):
            continue
        if stable(record.get("nst_loss")) is False:
            unstable.append(f"{content}__{style}" + (f" (seed {record['seed']})" if "seed" in record else ""))
        else:
            groups[content, style].append((math.log(nst), math.log(dream)))
    cells = collections.defaultdict(dict)
    for (content, style), values in sorted(groups.items()):
        cells[content][style] = dict(zip(("nst", "dream"), np.mean(values, axis=0).tolist()))
    return {"cells": dict(cells), "unstable": unstable, "runs": sum(map(len, groups.values()))}


_UNTESTABLE = {"photos": 0, "p": None, "p_opposite": None, "p_min": None,
               "verdict": "cannot be tested: no photo has both a distorted and a clear style"}


def _test(statistic: float, photos: int, null: np.ndarray, sign: int, sampled: bool, tol: float) -> dict:
    """One-sided ``p`` (``sampled``: (k + 1) / (N + 1)), ``p_opposite``, ``p_min`` (the least p possible), verdict."""
    p, p_opposite = ((int(np.sum(d * null >= d * statistic - tol)) + sampled) / (len(null) + sampled)
                     for d in (sign, -sign))
    p_min = float(np.mean(sign * null >= (sign * null).max() - tol))
    verdicts = ((p < ALPHA, f"supported (p = {p:.2g} < {ALPHA})"),
                (p_opposite < ALPHA, f"contradicted at p < {ALPHA} (p = {p_opposite:.2g} the other way)"),
                (p_min >= ALPHA and p <= p_opposite,
                 f"not supported: the claimed direction, but these data cannot reach p < {ALPHA} (p = {p:.2g})"),
                (True, f"not supported (p = {p:.2g})"))
    return {"photos": photos, "p": p, "p_opposite": p_opposite, "p_min": p_min,
            "verdict": next(text for holds, text in verdicts if holds)}


def label_test(cells: dict, loss: str, sign: int) -> dict:
    """Photo-stratified permutation test of log ``loss`` distorted − clear: effect, ratio, ci; :func:`_test`'s."""
    observed, nulls = [], []  # per photo with both labels: its statistic, and its value for every "distorted" pick
    for styles in cells.values():
        names = [s for s in styles if s in DISTORTED + CLEAR]
        values, distorted = np.array([styles[s][loss] for s in names]), np.array([s in DISTORTED for s in names])
        k, n = int(distorted.sum()), len(names)
        if 0 < k < n:
            picks = np.array([values[list(c)].sum() for c in itertools.combinations(range(n), k)])
            observed.append(values[distorted].mean() - values[~distorted].mean())
            nulls.append(picks / k - (values.sum() - picks) / (n - k))
    if not nulls:
        return {"effect": None, "ratio": None, "ci": None, "arrangements": 0, "exact": True, **_UNTESTABLE}
    rng, exact, observed = np.random.default_rng(0), math.prod(map(len, nulls)) <= _EXACT_MAX, np.array(observed)
    null = (sum(np.ix_(*nulls)).ravel() / len(nulls) if exact  # every combination of the photos' picks
            else np.mean([rng.choice(e, _SAMPLES) for e in nulls], axis=0))
    effect = float(observed.mean())
    ci = None if len(observed) < 2 else tuple(math.exp(bound) for bound in stats.bootstrap(
        (observed,), np.mean, n_resamples=10_000, method="percentile", rng=rng).confidence_interval)
    return {"effect": effect, "ratio": math.exp(effect), "ci": ci, "arrangements": len(null), "exact": exact,
            **_test(effect, len(observed), null, sign, not exact, 1e-9 * max(1.0, abs(effect)))}


def score_test(cells: dict, scores: dict[str, float], loss: str, sign: int) -> dict:
    """Mean Spearman ``rho`` of ``scores`` and ``loss`` in photos of ≥ 3 styles vs 20,000 shuffles; :func:`_test`'s."""
    rng, rhos = np.random.default_rng(0), []
    for styles in cells.values():
        if len(names := [s for s in styles if s in scores]) >= 3:  # row 0: the observed order, then the shuffles
            x, y = stats.rankdata([scores[s] for s in names]), stats.rankdata([styles[s][loss] for s in names])
            ys = np.vstack([y, rng.permuted(np.tile(y, (_SAMPLES, 1)), axis=1)])
            cx, cy = x - x.mean(), ys - ys.mean(axis=1, keepdims=True)
            rhos.append((cy @ cx) / (np.linalg.norm(cx) * np.linalg.norm(cy, axis=1) + 1e-300))
    if not rhos:
        return {"rho": None, **_UNTESTABLE}
    mean = np.mean(rhos, axis=0)
    return {"rho": float(mean[0]), **_test(float(mean[0]), len(rhos), mean[1:], sign, True, 1e-12)}


def evaluate(records: Iterable[dict]) -> dict:
    """:func:`label_test` of each hypothesis and :func:`score_test` of each of :data:`SCORES` on run records."""
    used = table(records)
    cells = used["cells"]
    styles = sorted({s for styles in cells.values() for s in styles})
    scores = {name: style_scores(styles, function) for name, function in SCORES.items()}
    return {"runs": used["runs"], "photos": len(cells), "unstable": used["unstable"],
            "hypotheses": {name: {"statement": text, **label_test(cells, loss, sign)}
                           for name, (loss, sign, text) in HYPOTHESES.items()},
            "scores": {name: {"values": values, "agrees_with_labels": agrees_with_labels(values),
                              **{loss: score_test(cells, values, loss, sign) for loss, sign, _ in HYPOTHESES.values()}}
                       for name, values in scores.items()}}


def claim_text(label: str, result: dict) -> str:
    """An :func:`evaluate` result as lines: each hypothesis's ratio [95 % interval] and verdict, then the scores."""
    unstable = result["unstable"]
    lines = [f"{label}: {result['runs']} runs on {result['photos']} photo(s); {len(unstable)} unstable left out"
             + (f" ({', '.join(unstable)})" if unstable else "")]
    for name, h in result["hypotheses"].items():
        ci = f" [{h['ci'][0]:.2f}, {h['ci'][1]:.2f}]" if h["ci"] else ""
        ratio = "n/a" if h["ratio"] is None else f"{h['ratio']:.2f}{ci}"
        lines.append(f"  {name} {h['statement']}: distorted ÷ clear {ratio} → {h['verdict']}")
    for name, s in result["scores"].items():
        agrees = {True: "orders the paper's styles as its labels", False: "does NOT order them as the labels",
                  None: "paper styles missing"}[s["agrees_with_labels"]]
        rho = {k: "n/a" if s[k]["rho"] is None else f"{s[k]['rho']:+.2f}" for k in ("nst", "dream")}
        lines.append(f"  {name} ({agrees}): rho with NST loss {rho['nst']} → {s['nst']['verdict']}; "
                     f"with dream loss {rho['dream']} → {s['dream']['verdict']}")
    return "\n".join(lines)
