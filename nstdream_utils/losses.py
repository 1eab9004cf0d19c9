"""Loss functions of neural style transfer and DeepDream, as pure functions of tensors.

The paper's equations (Al-Khazraji, Abbas & Jamil 2022, after Gatys et al. 2016):

* Eq 3, content loss: :math:`L_{content} = \\tfrac12 \\sum_{i,j} (F^l_{ij} - P^l_{ij})^2`
* Eq 4, Gram matrix: :math:`G^l_{ij} = \\sum_k F^l_{ik} F^l_{jk}` (channels i, j; positions k)
* Eq 5, style loss: :math:`E_l = \\frac{1}{4 N_l^2 M_l^2} \\sum_{i,j} (G^l_{ij} - A^l_{ij})^2`,
  :math:`L_{style} = \\sum_l w_l E_l`
* Eq 6, total loss: :math:`L = \\alpha L_{content} + \\beta L_{style}` (+ total variation, optional)
* DeepDream: :math:`L_{dream} = \\sum_l \\operatorname{mean}(a^l)`, maximised; guided by an image:
  :func:`guided_dream_loss`.
* Spatial control (Gatys et al. 2017): Gram matrices of masked features, :func:`resize_mask`.

Feature maps are channels-last, float32. Nothing here knows about models or optimisers.
Taught in notebooks 01 (Gram matrices), 02 (content and style loss) and 05 (DeepDream loss); total variation in 08.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import tensorflow as tf

GRAM_NORMALIZATIONS = (None, "hw", "chw")
CONTENT_REDUCTIONS = ("half_sum", "sum", "mean")
STYLE_REDUCTIONS = ("sum", "mean", "gatys", "keras")
TV_KINDS = ("keras", "tf")


def _check_choice(name: str, value, choices) -> None:
    if value not in choices:
        raise ValueError(f"{name}={value!r} is not one of {list(choices)}")


@tf.custom_gradient
def _gram_flat(flat: tf.Tensor):
    """``Fᵀ F`` for ``flat`` of shape ``[P, C]`` → ``[C, C]`` (``[B, P, C]`` → ``[B, C, C]``), with a
    one-product gradient.

    The gradient of ``G = Fᵀ F`` is ``dF = F (dG + dGᵀ)``: one matrix product. Autodiff of
    ``tf.einsum``/``tf.matmul`` computes one product per operand (two, although both are ``F``) plus
    transposed copies; this form makes the NST step 4–7 % cheaper (``benchmarks/gram_gradient.py``).
    A single image goes in as ``[P, C]``: TensorFlow's plain matrix product is faster than its batched
    one at these shapes (≈ 1 % of a 128 px NST step).
    """

    def grad(d_gram):
        return tf.matmul(flat, d_gram + tf.linalg.matrix_transpose(d_gram))

    return tf.matmul(flat, flat, transpose_a=True), grad


def gram_matrix(features, *, normalize: str | None = None) -> tf.Tensor:
    """Gram matrix of a feature map: inner products between channels, summed over positions.

    .. math:: G_{cc'} = \\sum_p F_{pc} F_{pc'} \\quad (= F^\\top F \\text{ with } F \\text{ as positions} \\times \\text{channels})

    Args:
        features: float tensor, ``[P, C]`` (positions × channels, as in the paper's 2×2 example),
            ``[H, W, C]`` or ``[B, H, W, C]``.
        normalize: ``None`` (the paper's Eq 4, a plain sum), ``"hw"`` (÷ number of positions, as
            the TensorFlow style-transfer tutorial) or ``"chw"`` (÷ C·H·W, as d2l).

    Returns:
        float32 ``[C, C]``; ``[B, C, C]`` for a batch of more than one image.

    Example:
        >>> gram_matrix([[1., 2.], [3., 4.]]).numpy()   # the paper's worked example
        array([[10., 14.],
               [14., 20.]], dtype=float32)
    """
    _check_choice("normalize", normalize, GRAM_NORMALIZATIONS)
    f = tf.cast(tf.convert_to_tensor(features), tf.float32)
    rank = f.shape.rank
    if rank == 2:
        f = f[tf.newaxis, tf.newaxis]  # [1, 1, P, C]
    elif rank == 3:
        f = f[tf.newaxis]
    elif rank != 4:
        raise ValueError(f"features must be [P, C], [H, W, C] or [B, H, W, C]; got shape {f.shape}")
    shape = tf.shape(f)
    single = f.shape[0] == 1  # [P, C]: a plain matrix product, and no batch axis to drop afterwards
    gram = _gram_flat(tf.reshape(f, [shape[1] * shape[2], shape[3]] if single
                                 else [shape[0], shape[1] * shape[2], shape[3]]))
    positions = tf.cast(shape[1] * shape[2], tf.float32)
    if normalize == "hw":
        gram = gram / positions
    elif normalize == "chw":
        gram = gram / (positions * tf.cast(shape[3], tf.float32))
    return gram


def content_loss(features, target, *, reduction: str = "half_sum") -> tf.Tensor:
    """Content loss, the paper's Eq 3: squared distance between a feature map and its target.

    Args:
        features: float ``[..., H, W, C]``, features F of the generated image.
        target: same shape, features P of the content image.
        reduction: ``"half_sum"`` = ½Σ(F−P)² (paper, Gatys), ``"sum"`` = Σ(F−P)² (keras-io example),
            ``"mean"`` = mean((F−P)²) (TensorFlow tutorial).

    Returns:
        float32 scalar, ≥ 0; 0 when ``features`` equals ``target``.
    """
    _check_choice("reduction", reduction, CONTENT_REDUCTIONS)
    diff = tf.square(tf.cast(features, tf.float32) - tf.cast(target, tf.float32))
    if reduction == "mean":
        return tf.reduce_mean(diff)
    total = tf.reduce_sum(diff)
    return 0.5 * total if reduction == "half_sum" else total


def style_layer_loss(gram, target_gram, *, reduction: str = "gatys", num_positions=None,
                     num_channels=None) -> tf.Tensor:
    """One layer's style loss E_l, the paper's Eq 5: squared distance between two Gram matrices.

    Args:
        gram, target_gram: float32 ``[C, C]`` Gram matrices G (generated) and A (style image).
        reduction: ``"gatys"`` = Σ(G−A)² / (4 N² M²) with N = ``num_channels``, M = ``num_positions``
            (paper Eq 5); ``"keras"`` = Σ(G−A)² / (4·3²·M²) (keras-io ``neural_style_transfer.py``,
            which uses the number of *colour* channels, 3, for N and the number of *image* pixels
            for M, at every layer); ``"sum"``; ``"mean"`` (TF tutorial).
        num_positions: M: H·W of the layer for ``"gatys"``, of the input image for ``"keras"``.
        num_channels: N = C of the layer (needed by ``"gatys"``; default: from ``gram``).

    Returns:
        float32 scalar ≥ 0.
    """
    _check_choice("reduction", reduction, STYLE_REDUCTIONS)
    sq = tf.square(tf.cast(gram, tf.float32) - tf.cast(target_gram, tf.float32))
    if reduction == "mean":
        return tf.reduce_mean(sq)
    total = tf.reduce_sum(sq)
    if reduction == "sum":
        return total
    if num_positions is None:
        raise ValueError(f"reduction={reduction!r} needs num_positions (H·W of the layer)")
    m = tf.cast(num_positions, tf.float32)
    if reduction == "keras":
        n = tf.constant(3.0)
    else:
        n = tf.cast(num_channels if num_channels is not None else tf.shape(gram)[-1], tf.float32)
    return total / (4.0 * tf.square(n) * tf.square(m))


def style_loss(features: Mapping[str, tf.Tensor], target_grams: Mapping[str, tf.Tensor],
               layer_weights: Mapping[str, float], *, reduction: str = "gatys",
               gram_normalize: str | None = None, image_positions=None) -> tf.Tensor:
    """Style loss over several layers: L_style = Σ_l w_l E_l (paper Eq 5).

    Args:
        features: layer name → float ``[1, H, W, C]`` features of the generated image.
        target_grams: layer name → ``[C, C]`` Gram matrix of the style image (same normalisation).
        layer_weights: layer name → w_l.
        reduction, gram_normalize: as in :func:`style_layer_loss` and :func:`gram_matrix`.
        image_positions: H·W of the input image (needed by ``reduction="keras"``).

    Returns:
        float32 scalar ≥ 0.
    """
    if reduction == "keras" and image_positions is None:
        raise ValueError('reduction="keras" needs image_positions (H·W of the input image)')
    total = tf.constant(0.0)
    for name, weight in layer_weights.items():
        f = features[name]
        shape = tf.shape(f)
        e = style_layer_loss(gram_matrix(f, normalize=gram_normalize), target_grams[name],
                             reduction=reduction,
                             num_positions=image_positions if reduction == "keras" else shape[-3] * shape[-2],
                             num_channels=shape[-1])
        total = total + float(weight) * e
    return total


def total_variation_loss(image, *, kind: str = "keras", power: float = 1.25) -> tf.Tensor:
    """Total variation of an image: a smoothness penalty on neighbouring pixels.

    Args:
        image: float ``[B, H, W, 3]`` or ``[H, W, 3]`` in the optimiser's pixel scale.
        kind: ``"keras"`` = Σ ((x[i,j]−x[i+1,j])² + (x[i,j]−x[i,j+1])²)^power over the
            (H−1)×(W−1) grid (keras-io example, power 1.25); ``"tf"`` = Σ|Δy| + Σ|Δx|
            (``tf.image.total_variation``, the TensorFlow tutorial).
        power: exponent of the ``"keras"`` kind.

    Returns:
        float32 scalar ≥ 0; 0 for a constant image.
    """
    x = _tv_batch(image, kind)
    if kind == "tf":
        return _tf_tv(x)
    return _keras_tv(x, tf.constant(power, tf.float32))


def total_variation_by_slices(image, *, kind: str = "keras", power: float = 1.25) -> tf.Tensor:
    """:func:`total_variation_loss` as its formula reads, slices differentiated by autodiff: the
    reference that its hand-written gradients are tested and benchmarked against (same arguments)."""
    x = _tv_batch(image, kind)
    if kind == "tf":
        return tf.reduce_sum(tf.image.total_variation(x))
    a = tf.square(x[:, :-1, :-1, :] - x[:, 1:, :-1, :])
    b = tf.square(x[:, :-1, :-1, :] - x[:, :-1, 1:, :])
    return tf.reduce_sum(tf.pow(a + b, power))


def _tv_batch(image, kind: str) -> tf.Tensor:
    """Both total variations' argument check: ``kind`` one of :data:`TV_KINDS`; ``image`` as float32 ``[B, H, W, C]``."""
    _check_choice("kind", kind, TV_KINDS)
    x = tf.cast(image, tf.float32)
    return x[tf.newaxis] if x.shape.rank == 3 else x


@tf.custom_gradient
def _tf_tv(x: tf.Tensor):
    """Σ|x[i+1,j]−x[i,j]| + Σ|x[i,j+1]−x[i,j]| for ``x`` ``[B, H, W, C]`` (``tf.image.total_variation``
    summed over the batch), with a gradient of two padded sign maps per axis instead of
    ``StridedSliceGrad`` scatters: pixel (i, j) receives ``sign(Δ)`` of the difference that ends
    at it and ``−sign(Δ)`` of the one that starts at it (0 where Δ = 0, as autodiff's ``Abs``)."""
    dy, dx = x[:, 1:] - x[:, :-1], x[:, :, 1:] - x[:, :, :-1]
    loss = tf.reduce_sum(tf.abs(dy)) + tf.reduce_sum(tf.abs(dx))

    def grad(upstream):
        sy, sx = upstream * tf.sign(dy), upstream * tf.sign(dx)
        return (tf.pad(sy, [[0, 0], [1, 0], [0, 0], [0, 0]]) - tf.pad(sy, [[0, 0], [0, 1], [0, 0], [0, 0]])
                + tf.pad(sx, [[0, 0], [0, 0], [1, 0], [0, 0]]) - tf.pad(sx, [[0, 0], [0, 0], [0, 1], [0, 0]]))

    return loss, grad


@tf.custom_gradient
def _keras_tv(x: tf.Tensor, power: tf.Tensor):
    """Σ ((x[i,j]−x[i+1,j])² + (x[i,j]−x[i,j+1])²)^power for ``x`` ``[B, H, W, C]``, with a gradient
    that pads three maps instead of scattering into ``x`` once per slice (``StridedSliceGrad``).

    With ``dy = x[i,j]−x[i+1,j]``, ``dx = x[i,j]−x[i,j+1]`` and ``g = 2·power·(dy²+dx²)^(power−1)``,
    pixel (i, j) receives ``g·(dy+dx)`` as the corner, ``−g·dy`` from the pixel above and ``−g·dx``
    from the one to its left.
    """
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
    """Total NST loss, the paper's Eq 6: α·L_content + β·L_style (+ tv_weight·TV).

    Args:
        content: scalar L_content; style: scalar L_style; tv: scalar total variation or None.
        content_weight: α; style_weight: β; tv_weight: weight of ``tv``.
    """
    loss = content_weight * content + style_weight * style
    if tv is not None and tv_weight:
        loss = loss + tv_weight * tv
    return loss


def dream_loss(activations: Sequence[tf.Tensor] | Mapping[str, tf.Tensor]) -> tf.Tensor:
    """DeepDream loss: the sum over chosen layers of each layer's mean activation.

    .. math:: L_{dream} = \\sum_l \\frac{1}{|a^l|} \\sum a^l

    Args:
        activations: list (or dict) of float ``[1, H, W, C]`` activations, e.g. Inception v3's
            ``mixed3`` and ``mixed5``.

    Returns:
        float32 scalar, maximised by gradient *ascent* (TensorFlow DeepDream tutorial).
    """
    values = activations.values() if isinstance(activations, Mapping) else activations
    return tf.add_n([tf.reduce_mean(tf.cast(a, tf.float32)) for a in values])


def resize_mask(mask, features) -> tf.Tensor:
    """A mask ``[H0, W0]`` in [0, 1] resized (bilinear) to a feature map's positions: ``[1, H, W, 1]``.

    Spatial control (Gatys et al. 2017): the Gram matrix of ``features * resize_mask(mask, features)``
    sums only over the positions the mask keeps, :math:`G_{cc'} = \\sum_p m_p^2 F_{pc} F_{pc'}`.
    """
    m = tf.cast(mask, tf.float32)[tf.newaxis, ..., tf.newaxis]
    return tf.image.resize(m, tf.shape(features)[1:3])


def guided_dream_loss(activations: Mapping[str, tf.Tensor], guides: Mapping[str, tf.Tensor]) -> tf.Tensor:
    """Guided DeepDream (the original DeepDream notebook): for each position, the dot product of the
    image's feature vector with the guide's best-matching one, averaged, summed over layers.

    .. math:: L = \\sum_l \\operatorname{mean}_p\\, a^l_p \\cdot g^l_{q^*(p)}, \\quad
              q^*(p) = \\arg\\max_q a^l_p \\cdot g^l_q

    Args:
        activations: layer → float ``[1, H, W, C]`` of the image.
        guides: layer → float ``[Q, C]``, the guide image's feature vectors (positions × channels).

    Returns:
        float32 scalar, maximised; the match ``q*`` is not differentiated (as in the notebook).
    """
    total = tf.constant(0.0)
    for name, guide in guides.items():
        a = tf.cast(activations[name], tf.float32)
        a = tf.reshape(a, [-1, tf.shape(a)[-1]])  # [P, C]
        best = tf.gather(guide, tf.argmax(tf.matmul(a, guide, transpose_b=True), axis=1))  # [P, C]
        total += tf.reduce_mean(tf.reduce_sum(a * best, axis=-1))
    return total
