"""Losses of neural style transfer (Al-Khazraji, Abbas & Jamil 2022, after Gatys et al. 2016: Eqs 3–6) and
DeepDream, pure functions of channels-last float32 tensors. Taught in notebooks 01, 02, 05 and 08."""

from collections.abc import Mapping, Sequence

import tensorflow as tf


def _check(name: str, value, choices) -> None:
    if value not in choices:
        raise ValueError(f"{name}={value!r} is not one of {list(choices)}")


@tf.custom_gradient
def _gram_flat(flat: tf.Tensor):
    """``FᵀF`` of ``[P, C]`` or ``[B, P, C]``, with the gradient ``F (dG + dGᵀ)`` in one matrix product."""

    def grad(d_gram):
        return tf.matmul(flat, d_gram + tf.linalg.matrix_transpose(d_gram))

    return tf.matmul(flat, flat, transpose_a=True), grad


def gram_matrix(features, *, normalize: str | None = None) -> tf.Tensor:
    """Gram matrix (Eq 4): :math:`G_{cc'} = \\sum_p F_{pc} F_{pc'}`, ``FᵀF`` with F positions × channels.
    ``features``: float ``[P, C]``, ``[H, W, C]`` or ``[B, H, W, C]``; ``normalize``: None (Eq 4), ``"hw"``
    (÷ H·W, TF tutorial) or ``"chw"`` (÷ C·H·W, d2l). Returns float32 ``[C, C]`` (``[B, C, C]`` for B > 1)."""
    _check("normalize", normalize, (None, "hw", "chw"))
    f = tf.cast(tf.convert_to_tensor(features), tf.float32)
    if f.shape.rank not in (2, 3, 4):
        raise ValueError(f"features must be [P, C], [H, W, C] or [B, H, W, C]; got shape {f.shape}")
    f = f[(tf.newaxis,) * (4 - f.shape.rank)] if f.shape.rank < 4 else f  # [1, 1, P, C], [1, H, W, C]
    shape = tf.shape(f)
    single = f.shape[0] == 1  # one image: a plain matrix product, faster than a batched one
    gram = _gram_flat(tf.reshape(f, [shape[1] * shape[2], shape[3]] if single
                                 else [shape[0], shape[1] * shape[2], shape[3]]))
    positions = tf.cast(shape[1] * shape[2], tf.float32)
    if normalize == "hw":
        gram = gram / positions
    elif normalize == "chw":
        gram = gram / (positions * tf.cast(shape[3], tf.float32))
    return gram


def content_loss(features, target, *, reduction: str = "half_sum") -> tf.Tensor:
    """Content loss (Eq 3) between features F and target P, float ``[..., H, W, C]``; float32 scalar ≥ 0.
    ``reduction``: ``"half_sum"`` ½Σ(F−P)² (the paper), ``"sum"`` Σ(F−P)² (keras-io), ``"mean"`` (TF tutorial)."""
    _check("reduction", reduction, ("half_sum", "sum", "mean"))
    diff = tf.square(tf.cast(features, tf.float32) - tf.cast(target, tf.float32))
    if reduction == "mean":
        return tf.reduce_mean(diff)
    total = tf.reduce_sum(diff)
    return 0.5 * total if reduction == "half_sum" else total


def style_layer_loss(gram, target_gram, *, reduction: str = "gatys", num_positions=None,
                     num_channels=None) -> tf.Tensor:
    """One layer's style loss (Eq 5) between Gram matrices G and A ``[C, C]``; float32 scalar ≥ 0. ``reduction``:
    ``"gatys"`` Σ(G−A)² / (4 N² M²), N = ``num_channels`` (default: C), M = ``num_positions`` (the layer's H·W);
    ``"keras"`` Σ(G−A)² / (4·3²·M²), M the *image's* H·W (keras-io); ``"sum"``; ``"mean"``."""
    _check("reduction", reduction, ("sum", "mean", "gatys", "keras"))
    sq = tf.square(tf.cast(gram, tf.float32) - tf.cast(target_gram, tf.float32))
    if reduction == "mean":
        return tf.reduce_mean(sq)
    total = tf.reduce_sum(sq)
    if reduction == "sum":
        return total
    if num_positions is None:
        raise ValueError(f"reduction={reduction!r} needs num_positions (H·W of the layer)")
    m = tf.cast(num_positions, tf.float32)
    n = tf.constant(3.0) if reduction == "keras" else \
        tf.cast(num_channels if num_channels is not None else tf.shape(gram)[-1], tf.float32)
    return total / (4.0 * tf.square(n) * tf.square(m))


def style_loss(features: Mapping[str, tf.Tensor], target_grams: Mapping[str, tf.Tensor],
               layer_weights: Mapping[str, float], *, reduction: str = "gatys",
               gram_normalize: str | None = None, image_positions=None) -> tf.Tensor:
    """Style loss :math:`L_{style} = \\sum_l w_l E_l` (Eq 5) over ``layer_weights`` (layer → w_l); float32 ≥ 0.
    ``features``: layer → float ``[1, H, W, C]``; ``target_grams``: layer → ``[C, C]`` (``gram_normalize``d);
    ``image_positions``: the input image's H·W (``reduction="keras"`` needs it)."""
    if reduction == "keras" and image_positions is None:
        raise ValueError('reduction="keras" needs image_positions (H·W of the input image)')
    total = tf.constant(0.0)
    for name, weight in layer_weights.items():
        shape = tf.shape(features[name])
        e = style_layer_loss(gram_matrix(features[name], normalize=gram_normalize), target_grams[name],
                             reduction=reduction, num_channels=shape[-1],
                             num_positions=image_positions if reduction == "keras" else shape[-3] * shape[-2])
        total = total + float(weight) * e
    return total


def total_variation_loss(image, *, kind: str = "keras", power: float = 1.25) -> tf.Tensor:
    """Total variation of an image, float ``[B, H, W, C]`` or ``[H, W, C]``; float32 scalar ≥ 0, 0 if constant.
    ``kind="keras"``: :math:`\\sum_{i,j} ((x_{i,j}-x_{i+1,j})^2 + (x_{i,j}-x_{i,j+1})^2)^{power}` (keras-io);
    ``kind="tf"``: :math:`\\sum |\\Delta_y x| + \\sum |\\Delta_x x|` (``tf.image.total_variation``).
    Gradients by hand (:func:`total_variation_by_slices` is the autodiff reference)."""
    x = _tv_batch(image, kind)
    return _tf_tv(x) if kind == "tf" else _keras_tv(x, tf.constant(power, tf.float32))


def total_variation_by_slices(image, *, kind: str = "keras", power: float = 1.25) -> tf.Tensor:
    """:func:`total_variation_loss` as the formula reads, left to autodiff: the reference for its gradients."""
    x = _tv_batch(image, kind)
    if kind == "tf":
        return tf.reduce_sum(tf.image.total_variation(x))
    a = tf.square(x[:, :-1, :-1, :] - x[:, 1:, :-1, :])
    b = tf.square(x[:, :-1, :-1, :] - x[:, :-1, 1:, :])
    return tf.reduce_sum(tf.pow(a + b, power))


def _tv_batch(image, kind: str) -> tf.Tensor:
    _check("kind", kind, ("keras", "tf"))
    x = tf.cast(image, tf.float32)
    return x[tf.newaxis] if x.shape.rank == 3 else x


@tf.custom_gradient
def _tf_tv(x: tf.Tensor):
    """Σ|Δy| + Σ|Δx| of ``[B, H, W, C]``, its gradient from padded sign maps, not autodiff's scatters."""
    dy, dx = x[:, 1:] - x[:, :-1], x[:, :, 1:] - x[:, :, :-1]
    loss = tf.reduce_sum(tf.abs(dy)) + tf.reduce_sum(tf.abs(dx))

    def grad(upstream):
        sy, sx = upstream * tf.sign(dy), upstream * tf.sign(dx)
        return (tf.pad(sy, [[0, 0], [1, 0], [0, 0], [0, 0]]) - tf.pad(sy, [[0, 0], [0, 1], [0, 0], [0, 0]])
                + tf.pad(sx, [[0, 0], [0, 0], [1, 0], [0, 0]]) - tf.pad(sx, [[0, 0], [0, 0], [0, 1], [0, 0]]))

    return loss, grad


@tf.custom_gradient
def _keras_tv(x: tf.Tensor, power: tf.Tensor):
    """Σ (dy² + dx²)^power of ``[B, H, W, C]``; with g = 2·power·(dy²+dx²)^(power−1) a pixel gets g·(dy+dx)."""
    corner = x[:, :-1, :-1, :]
    dy, dx = corner - x[:, 1:, :-1, :], corner - x[:, :-1, 1:, :]
    s = tf.square(dy) + tf.square(dx)
    loss = tf.reduce_sum(tf.pow(s, power))

    def grad(upstream):
        g = upstream * 2.0 * power * tf.pow(s, power - 1.0)
        gy, gx = g * dy, g * dx
        dx_total = (tf.pad(gy + gx, [[0, 0], [0, 1], [0, 1], [0, 0]])
                    - tf.pad(gy, [[0, 0], [1, 0], [0, 1], [0, 0]])
                    - tf.pad(gx, [[0, 0], [0, 1], [1, 0], [0, 0]]))
        return dx_total, None

    return loss, grad


def total_loss(content: tf.Tensor, style: tf.Tensor, *, content_weight: float, style_weight: float,
               tv=None, tv_weight: float = 0.0) -> tf.Tensor:
    """Total loss (Eq 6): α·L_content + β·L_style (+ tv_weight·TV), from scalars; α = ``content_weight``."""
    loss = content_weight * content + style_weight * style
    if tv is not None and tv_weight:
        loss = loss + tv_weight * tv
    return loss


def dream_loss(activations: Sequence[tf.Tensor] | Mapping[str, tf.Tensor]) -> tf.Tensor:
    """DeepDream loss :math:`L_{dream} = \\sum_l \\operatorname{mean}(a^l)`, maximised (TF DeepDream tutorial).
    ``activations``: a list or dict of float ``[1, H, W, C]`` (e.g. Inception v3's ``mixed3``); float32 scalar."""
    values = activations.values() if isinstance(activations, Mapping) else activations
    return tf.add_n([tf.reduce_mean(tf.cast(a, tf.float32)) for a in values])


def resize_mask(mask, features) -> tf.Tensor:
    """A mask ``[H0, W0]`` in [0, 1] resized (bilinear) to the positions of ``features`` ``[1, H, W, C]``."""
    m = tf.cast(mask, tf.float32)[tf.newaxis, ..., tf.newaxis]
    return tf.image.resize(m, tf.shape(features)[1:3])


def guided_dream_loss(activations: Mapping[str, tf.Tensor], guides: Mapping[str, tf.Tensor]) -> tf.Tensor:
    """Guided DeepDream, maximised: each position's dot product with the guide's best-matching feature vector.
    ``activations``: layer → float ``[1, H, W, C]``; ``guides``: layer → float ``[Q, C]``; ``q*`` not differentiated.

    .. math:: L = \\sum_l \\operatorname{mean}_p\\, a^l_p \\cdot g^l_{q^*(p)},
              \\quad q^*(p) = \\arg\\max_q a^l_p \\cdot g^l_q
    """
    total = tf.constant(0.0)
    for name, guide in guides.items():
        a = tf.cast(activations[name], tf.float32)
        a = tf.reshape(a, [-1, tf.shape(a)[-1]])  # [P, C]
        best = tf.gather(guide, tf.argmax(tf.matmul(a, guide, transpose_b=True), axis=1))  # [P, C]
        total += tf.reduce_mean(tf.reduce_sum(a * best, axis=-1))
    return total
