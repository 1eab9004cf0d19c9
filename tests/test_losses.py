"""losses: the paper's worked Gram example and every loss against a NumPy reference."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from nstdream_utils import losses

RNG = np.random.default_rng(0)


def np_gram(f: np.ndarray) -> np.ndarray:
    flat = f.reshape(-1, f.shape[-1]).astype(np.float64)
    return flat.T @ flat


def test_paper_gram_example():
    # V = [[1, 2], [3, 4]]: 2 positions × 2 channels → G = VᵀV = [[10, 14], [14, 20]] (paper Eq 4).
    np.testing.assert_array_equal(losses.gram_matrix([[1.0, 2.0], [3.0, 4.0]]).numpy(), [[10, 14], [14, 20]])


def test_gram_all_ones_counts_positions():
    g = losses.gram_matrix(np.ones((5, 7, 3), np.float32)).numpy()
    np.testing.assert_array_equal(g, np.full((3, 3), 35.0))


@pytest.mark.parametrize("shape", [(6, 4), (5, 7, 8), (1, 5, 7, 8)])
def test_gram_matches_numpy(shape):
    f = RNG.normal(size=shape).astype(np.float32)
    np.testing.assert_allclose(losses.gram_matrix(f).numpy(), np_gram(f), rtol=1e-5, atol=1e-4)


def test_gram_batch_and_normalisations():
    f = RNG.normal(size=(2, 4, 5, 3)).astype(np.float32)
    g = losses.gram_matrix(f).numpy()
    assert g.shape == (2, 3, 3)
    np.testing.assert_allclose(g[1], np_gram(f[1]), rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(losses.gram_matrix(f[0], normalize="hw").numpy(), np_gram(f[0]) / 20, rtol=1e-5)
    np.testing.assert_allclose(losses.gram_matrix(f[0], normalize="chw").numpy(), np_gram(f[0]) / 60, rtol=1e-5)


@pytest.mark.parametrize("normalize", [None, "hw"])
def test_gram_gradient_matches_numpy(normalize):
    # The custom one-product gradient dF = F(dG + dGᵀ) against the analytic gradient of Σ W∘G.
    f = RNG.normal(size=(2, 3, 4, 5)).astype(np.float32)
    w = RNG.normal(size=(2, 5, 5)).astype(np.float32)  # not symmetric, so dG ≠ dGᵀ
    x = tf.constant(f)
    with tf.GradientTape() as tape:
        tape.watch(x)
        value = tf.reduce_sum(losses.gram_matrix(x, normalize=normalize) * w)
    grad = tape.gradient(value, x).numpy()
    flat = f.reshape(2, 12, 5).astype(np.float64)
    expected = (flat @ (w + w.transpose(0, 2, 1))).reshape(f.shape) / (12 if normalize else 1)
    np.testing.assert_allclose(grad, expected, rtol=1e-4, atol=1e-4)


def test_gram_ignores_spatial_layout():
    f = RNG.normal(size=(8, 8, 4)).astype(np.float32)
    shuffled = RNG.permutation(f.reshape(64, 4)).reshape(8, 8, 4)
    np.testing.assert_allclose(losses.gram_matrix(shuffled).numpy(), losses.gram_matrix(f).numpy(), rtol=1e-5)


def test_normalised_gram_does_not_depend_on_size():
    tile = RNG.normal(size=(4, 4, 3)).astype(np.float32)
    big = np.tile(tile, (3, 3, 1))
    np.testing.assert_allclose(losses.gram_matrix(big, normalize="hw").numpy(),
                               losses.gram_matrix(tile, normalize="hw").numpy(), rtol=1e-5)


def test_gram_rejects_bad_input():
    with pytest.raises(ValueError, match="normalize"):
        losses.gram_matrix(np.ones((2, 2)), normalize="max")
    with pytest.raises(ValueError, match="shape"):
        losses.gram_matrix(np.ones((2,)))


def test_content_loss_reductions():
    f = RNG.normal(size=(1, 5, 6, 7)).astype(np.float32)
    p = RNG.normal(size=(1, 5, 6, 7)).astype(np.float32)
    sq = (f.astype(np.float64) - p) ** 2
    np.testing.assert_allclose(losses.content_loss(f, p).numpy(), 0.5 * sq.sum(), rtol=1e-5)
    np.testing.assert_allclose(losses.content_loss(f, p, reduction="sum").numpy(), sq.sum(), rtol=1e-5)
    np.testing.assert_allclose(losses.content_loss(f, p, reduction="mean").numpy(), sq.mean(), rtol=1e-5)
    assert losses.content_loss(f, f).numpy() == 0.0


def test_style_layer_loss_reductions():
    f = RNG.normal(size=(6, 5, 4)).astype(np.float32)
    a = RNG.normal(size=(6, 5, 4)).astype(np.float32)
    g, t = np_gram(f), np_gram(a)
    sq = ((g - t) ** 2).sum()
    m, n = 30, 4
    got = losses.style_layer_loss(g, t, reduction="gatys", num_positions=m).numpy()
    np.testing.assert_allclose(got, sq / (4 * n**2 * m**2), rtol=1e-5)
    got = losses.style_layer_loss(g, t, reduction="keras", num_positions=50176).numpy()
    np.testing.assert_allclose(got, sq / (4 * 9 * 50176.0**2), rtol=1e-5)
    np.testing.assert_allclose(losses.style_layer_loss(g, t, reduction="sum").numpy(), sq, rtol=1e-5)
    np.testing.assert_allclose(losses.style_layer_loss(g, t, reduction="mean").numpy(), sq / 16, rtol=1e-5)
    with pytest.raises(ValueError, match="num_positions"):
        losses.style_layer_loss(g, t, reduction="gatys")


def test_style_loss_weights_layers():
    feats = {n: RNG.normal(size=(1, 4, 4, 3)).astype(np.float32) for n in ("a", "b")}
    targets = {n: np_gram(RNG.normal(size=(4, 4, 3))) for n in ("a", "b")}
    weights = {"a": 0.25, "b": 2.0}
    expected = sum(w * ((np_gram(feats[n]) - targets[n]) ** 2).sum() / (4 * 9 * 16**2) for n, w in weights.items())
    got = losses.style_loss(feats, targets, weights, reduction="gatys").numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    assert losses.style_loss(feats, {n: np_gram(feats[n]) for n in feats}, weights).numpy() == pytest.approx(0, abs=1e-6)


def test_total_variation_keras_and_tf():
    x = RNG.uniform(size=(1, 6, 7, 3)).astype(np.float32)
    a = (x[:, :-1, :-1] - x[:, 1:, :-1]) ** 2
    b = (x[:, :-1, :-1] - x[:, :-1, 1:]) ** 2
    np.testing.assert_allclose(losses.total_variation_loss(x).numpy(), ((a + b) ** 1.25).sum(), rtol=1e-5)
    tv = np.abs(np.diff(x, axis=1)).sum() + np.abs(np.diff(x, axis=2)).sum()
    np.testing.assert_allclose(losses.total_variation_loss(x, kind="tf").numpy(), tv, rtol=1e-5)
    assert losses.total_variation_loss(np.full((5, 5, 3), 0.3, np.float32)).numpy() == 0.0


@pytest.mark.parametrize("kind, shape, power", [("keras", (1, 6, 7, 3), 1.25), ("keras", (2, 5, 4, 3), 2.0),
                                                ("keras", (1, 2, 9, 1), 1.25), ("tf", (1, 6, 7, 3), 1.25),
                                                ("tf", (2, 5, 4, 3), 1.25), ("tf", (1, 2, 9, 1), 1.25)])
def test_total_variation_gradient_equals_autodiff_of_the_slices(kind, shape, power):
    # The hand-written gradients (padded maps) against TensorFlow's autodiff of the plain formula.
    x = tf.constant(RNG.uniform(size=shape).astype(np.float32))
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        ours = losses.total_variation_loss(x, kind=kind, power=power) * 3.0
        plain = losses.total_variation_by_slices(x, kind=kind, power=power) * 3.0
    np.testing.assert_allclose(ours.numpy(), plain.numpy(), rtol=1e-6)
    np.testing.assert_allclose(tape.gradient(ours, x).numpy(), tape.gradient(plain, x).numpy(), rtol=1e-5, atol=1e-6)
    flat = tf.fill(shape, 0.3)
    with tf.GradientTape() as tape:
        tape.watch(flat)
        zero = losses.total_variation_loss(flat, kind=kind, power=power)
    assert not np.any(tape.gradient(zero, flat).numpy())


def test_total_variation_by_slices_is_the_formula_by_hand():
    # The reference itself, against NumPy: it must not share a mistake with the library's kernels.
    x = RNG.uniform(size=(1, 4, 5, 3)).astype(np.float32)
    dy, dx = x[:, :-1, :-1] - x[:, 1:, :-1], x[:, :-1, :-1] - x[:, :-1, 1:]
    keras = np.sum((dy ** 2 + dx ** 2) ** 1.25)
    tf_kind = np.abs(np.diff(x, axis=1)).sum() + np.abs(np.diff(x, axis=2)).sum()
    assert float(losses.total_variation_by_slices(x, kind="keras")) == pytest.approx(keras, rel=1e-5)
    assert float(losses.total_variation_by_slices(x, kind="tf")) == pytest.approx(tf_kind, rel=1e-5)


def test_total_loss_is_weighted_sum():
    got = losses.total_loss(tf.constant(2.0), tf.constant(3.0), content_weight=10.0, style_weight=100.0,
                            tv=tf.constant(5.0), tv_weight=0.5)
    assert float(got) == pytest.approx(20 + 300 + 2.5)


def test_dream_loss_is_sum_of_means():
    acts = [RNG.normal(size=(1, 4, 4, 8)).astype(np.float32), RNG.normal(size=(1, 2, 2, 16)).astype(np.float32)]
    np.testing.assert_allclose(losses.dream_loss(acts).numpy(), sum(a.mean() for a in acts), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(losses.dream_loss({"x": acts[0]}).numpy(), acts[0].mean(), rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------- the paper preset's whole loss


@pytest.mark.needs_weights
def test_paper_nst_loss_equals_numpy_keras_io_formula(astronaut, triangle):
    """``nst.NSTLoss`` of the ``paper`` preset against keras-io's formula, written out in NumPy (float64)
    on the same VGG-19 features:

    α Σ(F−P)² (block5_conv2)  +  β Σ_l ⅕ Σ(G_l−A_l)² / (4·3²·(HW)²)  (block1..5_conv1, G = FᵀF)
    +  λ Σ ((x_{i,j}−x_{i+1,j})² + (x_{i,j}−x_{i,j+1})²)^1.25  (x in 0..255),

    with α = 2.5e-8, β = 1e-6, λ = 1e-6 written here, not read from the preset. float32 sums over
    ~10⁵ terms carry a relative error of about 1e-6; rtol 1e-4 leaves a wide margin.
    """
    from nstdream_utils import nst, presets

    cfg = presets.PAPER.nst.replace(size=48)
    content, style = nst.prepare_images(astronaut, triangle, cfg)
    loss = nst.NSTLoss(content, style, cfg)
    rng = np.random.default_rng(0)
    x = np.clip(content + rng.normal(0, 0.1, content.shape), 0, 1).astype(np.float32)
    terms = {k: float(v) for k, v in loss(tf.constant(x[None] * 255.0)).items()}

    def features(image):
        return {k: v.numpy()[0].astype(np.float64) for k, v in loss.extractor(image[None]).items()}

    f_x, f_c, f_s = features(x), features(content), features(style)
    content_term = 2.5e-8 * np.sum((f_x["block5_conv2"] - f_c["block5_conv2"]) ** 2)
    positions = 48 * 48

    def gram(f):
        flat = f.reshape(-1, f.shape[-1])
        return flat.T @ flat

    style_layers = [f"block{b}_conv1" for b in range(1, 6)]
    style_term = 1e-6 * sum(0.2 * np.sum((gram(f_x[n]) - gram(f_s[n])) ** 2) / (4.0 * 3**2 * positions**2)
                            for n in style_layers)
    pixels = x.astype(np.float64) * 255.0
    a = (pixels[:-1, :-1] - pixels[1:, :-1]) ** 2
    b = (pixels[:-1, :-1] - pixels[:-1, 1:]) ** 2
    tv_term = 1e-6 * np.sum((a + b) ** 1.25)
    np.testing.assert_allclose([terms["content"], terms["style"], terms["tv"]], [content_term, style_term, tv_term],
                               rtol=1e-4)
    np.testing.assert_allclose(terms["total"], content_term + style_term + tv_term, rtol=1e-4)
