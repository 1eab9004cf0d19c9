"""Neural style transfer: optimise an image so its VGG-19 features match a content image's and its
Gram matrices match a style image's (Gatys et al. 2016; the paper's Eqs 2–6).

One entry point, :func:`style_transfer`, with four optimisers behind it:

* ``"sgd"`` — plain gradient descent, the paper's Eq 2 (keras-io example: SGD with exponential decay),
  optionally guarded against a step that blows the loss up (``NSTConfig.sgd_guard_factor``);
* ``"adam"`` — the TensorFlow tutorial's choice;
* ``"lbfgs"`` — Gatys' choice, scipy's L-BFGS-B driving a ``tf.function`` value-and-gradient;
* ``"lbfgs-tf"`` — the same method in TensorFlow (:func:`_lbfgs_tf_loop`): no scipy, no float64
  copies; faster where an evaluation is cheap (VGG-19 in bfloat16 on an AMX CPU: ``docs/benchmarks.md``).

Content features and style Gram matrices are computed once, before the loop; each step then runs
VGG-19 once, on the image being optimised. Taught in notebooks 03 (the loop) and 04 (the optimisers).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
import tensorflow as tf

from . import device, files, images, losses, models
from ._loop import Recorder, RunResult, run_steps
from .errors import InputError
from .presets import NSTConfig, check_mask, check_styles, get_preset, validate_nst

VGG19_MIN_SIZE = 32
"""VGG-19 needs at least 16 px per side to reach block5 (four 2× poolings); smaller images are upscaled to 32."""


class NSTResult(RunResult):
    """What :func:`style_transfer` returns: ``image``, ``history``, ``config`` (an :class:`NSTConfig`),
    ``frames``, ``status`` and ``final_loss`` (see :class:`_loop.RunResult`).

    ``history`` holds ``total``, ``content``, ``style``, ``tv`` (the weighted terms, each evaluated
    before that step's update, as keras-io prints them) and ``seconds`` (elapsed); guarded SGD adds
    ``retries`` (1 at a step that undid the previous update, else 0; :func:`_guarded_sgd_loop`).
    """

    main_key = "total"


def resolve_config(config: NSTConfig | str = "quick", **overrides) -> NSTConfig:
    """An NST configuration from a preset name or config, with ``overrides`` (None = keep), validated."""
    cfg = get_preset(config).nst if isinstance(config, str) else config
    return validate_nst(cfg.replace(**overrides))


def prepare_images(content_image, style_image, cfg: NSTConfig):
    """Resize the content image to the configured size (at least 32 px per side), and the style image
    (or each of a list of them) to ``cfg.style_scale ×`` the content's size (at least 32 px per side).

    With ``cfg.preserve_color == "histogram"`` each style image's colours are then matched to the
    content's mean and covariance (``images.match_colors``).

    Returns:
        The content, float32 ``[H, W, 3]`` in [0, 1], and the style image (a list for a list).
    """
    content = np.asarray(content_image, np.float32)
    content = images.resize(content, exact=(cfg.size, cfg.size)) if cfg.square \
        else images.resize(content, longest_side=cfg.size)
    content = images.ensure_min_size(content, VGG19_MIN_SIZE)  # VGG-19's 4 poolings before block5
    shape = tuple(max(VGG19_MIN_SIZE, round(side * cfg.style_scale)) for side in content.shape[:2])
    styles = []
    for style in style_image if isinstance(style_image, (list, tuple)) else [style_image]:
        style = images.resize(np.asarray(style, np.float32), exact=shape)
        styles.append(images.match_colors(style, content) if cfg.preserve_color == "histogram" else style)
    return content, styles if isinstance(style_image, (list, tuple)) else styles[0]


class NSTLoss:
    """The total loss of Eq 6 for one content/style pair, with targets precomputed once.

    Call it on the optimised image (``pixel_scale`` × [0, 1] RGB, ``[1, H, W, 3]``) to get the
    weighted terms ``{"total", "content", "style", "tv"}`` as float32 scalars, or use
    :meth:`value_and_gradient` for the gradient too. ``precision`` (``models.vgg19_features``) sets
    what VGG-19 computes in; the losses are always float32. ``loss_scale`` is the
    :class:`models.LossScale` of a float16 network, else None.

    Controls (``NSTConfig``): ``style`` may be a list of images, blended as
    ``L_style = Σ_k w_k L_style(x, style_k)`` with ``w = cfg.style_blend``; a style image of another
    size than the content (``cfg.style_scale``) has its plain-sum Gram matrices rescaled by
    ``M_content / M_style`` (positions per layer), so they count per position as the output's do.
    A ``mask`` ``[H, W]`` in [0, 1] at the content's size (Gatys et al. 2017) multiplies the output's features by the
    mask resized to each style layer, ``F ⊙ m_l``, and each target by ``mean(m_l²)``, so the style
    is matched only where the mask is white; where it is black the pixel term
    ``cfg.mask_weight · mean((1 − m)(x − c)²)`` keeps the content (added to the ``"content"`` term).
    """

    def __init__(self, content: np.ndarray, style, cfg: NSTConfig, *, mask: np.ndarray | None = None,
                 weights=None, precision: str | None = None) -> None:
        self.cfg = cfg
        self.extractor = models.vgg19_features(tuple(cfg.content_layers) + tuple(cfg.style_layers),
                                               weights=weights, precision=precision)
        content_features = self.extractor(content[np.newaxis])
        self.content_targets = {n: tf.constant(content_features[n]) for n in cfg.content_layers}
        styles = style if isinstance(style, (list, tuple)) else [style]
        self.masks = {n: losses.resize_mask(mask, content_features[n]) for n in cfg.style_layers} \
            if mask is not None else {}
        self.content_image = tf.constant(content[np.newaxis])
        self.outside = tf.constant(1.0 - mask[np.newaxis, ..., np.newaxis], tf.float32) if mask is not None else None
        self.blend = []  # (w_k, {layer: target Gram of style k})
        for weight, image in zip(cfg.style_blend or [1.0] * len(styles), styles):
            features = self.extractor(image[np.newaxis])
            targets = {}
            for n in cfg.style_layers:
                gram = losses.gram_matrix(features[n], normalize=cfg.gram_normalize)
                if cfg.gram_normalize is None:  # a plain sum over positions: count them as the output's
                    gram *= _positions(content_features[n]) / _positions(features[n])
                if n in self.masks:
                    gram *= tf.reduce_mean(tf.square(self.masks[n]))
                targets[n] = tf.constant(gram)
            self.blend.append((float(weight), targets))
        # float16's range needs a loss scale for the gradient; bfloat16 and float32 have float32's range.
        self.loss_scale = models.LossScale() if self.extractor.compute_dtype == "float16" else None

    def __call__(self, image: tf.Tensor) -> dict[str, tf.Tensor]:
        cfg = self.cfg
        features = self.extractor(image / cfg.pixel_scale)
        content = tf.add_n([losses.content_loss(features[n], self.content_targets[n],
                                                reduction=cfg.content_reduction)
                            for n in cfg.content_layers]) / len(cfg.content_layers)
        styled = {n: features[n] * self.masks[n] for n in self.masks} if self.masks else features
        style = tf.add_n([weight * losses.style_loss(
            styled, targets, cfg.style_layers, reduction=cfg.style_reduction, gram_normalize=cfg.gram_normalize,
            image_positions=tf.shape(image)[1] * tf.shape(image)[2]) for weight, targets in self.blend])
        tv = losses.total_variation_loss(image, kind=cfg.tv_kind, power=cfg.tv_power) \
            if cfg.tv_weight else tf.constant(0.0)
        terms = {"content": cfg.content_weight * content, "style": cfg.style_weight * style,
                 "tv": cfg.tv_weight * tv}
        if self.outside is not None:  # the mask's pixel term counts as content
            kept = tf.square(image / cfg.pixel_scale - self.content_image) * self.outside
            terms["content"] += cfg.mask_weight * tf.reduce_mean(kept)
        return {"total": terms["content"] + terms["style"] + terms["tv"], **terms}

    def value_and_gradient(self, image: tf.Tensor) -> tuple[dict[str, tf.Tensor], tf.Tensor]:
        """The weighted terms (as ``__call__``) and ``d total / d image`` (float32, ``image``'s shape).

        Where VGG-19 computes in float16 (``precision="float16"``, or the ``mixed_float16`` policy
        that ``device.setup`` turns on on tensor-core GPUs), the backward pass would overflow
        float16's range (65,504) for losses as large as the TF tutorial's (≈ 10¹⁰): the gradient
        is then computed with a dynamic loss scale (:class:`models.LossScale`). Otherwise it is plain
        autodiff. Call it inside a ``tf.function``.
        """
        if self.loss_scale is None:
            with tf.GradientTape() as tape:
                tape.watch(image)
                terms = self(image)
            return terms, tape.gradient(terms["total"], image)
        return self.loss_scale.value_and_gradient(self, image)


def _positions(features: tf.Tensor) -> float:
    """H·W of a ``[1, H, W, C]`` feature map."""
    return float(features.shape[1] * features.shape[2])


def _initial_image(content: np.ndarray, style: np.ndarray, cfg: NSTConfig, seed: int) -> np.ndarray:
    if cfg.init == "content":
        start = content
    elif cfg.init == "style":
        start = images.resize(style, exact=content.shape[:2])
    else:
        start = np.random.default_rng(seed).uniform(0, 1, content.shape).astype(np.float32)
    return (start * cfg.pixel_scale)[np.newaxis].astype(np.float32)


def effective_learning_rate(cfg: NSTConfig, num_pixels: int) -> float:
    """``cfg.learning_rate`` scaled to an image of ``num_pixels`` (see ``NSTConfig.lr_reference_pixels``)."""
    if cfg.lr_reference_pixels and cfg.optimizer == "sgd":
        return float(cfg.learning_rate) * num_pixels / cfg.lr_reference_pixels
    return float(cfg.learning_rate)


def _make_optimizer(cfg: NSTConfig, num_pixels: int):
    import keras

    lr = effective_learning_rate(cfg, num_pixels)
    if cfg.lr_decay_rate:
        lr = keras.optimizers.schedules.ExponentialDecay(lr, decay_steps=cfg.lr_decay_steps,
                                                         decay_rate=cfg.lr_decay_rate)
    if cfg.optimizer == "sgd":
        return keras.optimizers.SGD(learning_rate=lr)
    return keras.optimizers.Adam(learning_rate=lr, beta_1=cfg.adam_beta1, epsilon=cfg.adam_epsilon)


class Checkpoint:
    """The state of a gradient loop (SGD or Adam) in one ``.npz`` file, saved every ``every`` steps.

    It holds the loop's variables (the image and, for the guarded SGD, the kept image, gradient,
    losses and rate), the optimiser's variables (its step count, which drives the learning-rate
    decay, and Adam's moments), the history so far and the config. A loop that finds the file
    continues from it, so an interrupted run ends with the same history as an uninterrupted one
    (the ``seconds`` aside). The file is removed when the run completes.
    """

    def __init__(self, path: str | os.PathLike, every: int = 500) -> None:
        if not isinstance(every, int) or every < 1:
            raise InputError(f"checkpoint_every must be an int ≥ 1, got {every!r}", where="checkpoint_every")
        self.path, self.every, self.saved_at = Path(path), every, 0

    @staticmethod
    def _fingerprint(cfg: NSTConfig) -> str:
        import json

        return json.dumps(files.to_jsonable({**dataclasses.asdict(cfg), "num_steps": None}), sort_keys=True)

    def restore(self, cfg: NSTConfig, variables: dict, optimizer, recorder: Recorder) -> int:
        """Load the saved state into ``variables``, ``optimizer`` and ``recorder``; return the steps done (0: none)."""
        import json

        if not self.path.is_file():
            return 0
        with np.load(self.path, allow_pickle=False) as saved:
            if str(saved["config"]) != self._fingerprint(cfg):
                raise InputError("the checkpoint was made with another configuration", where=str(self.path),
                                 fix="delete it to start again, or use the configuration it was made with")
            for name, variable in variables.items():
                variable.assign(saved[f"var_{name}"])
            for i, variable in enumerate(optimizer.variables):
                variable.assign(saved[f"opt_{i}"])
            recorder.resume(json.loads(str(saved["history"])))
        self.saved_at = recorder.steps_done
        return self.saved_at

    def maybe_save(self, cfg: NSTConfig, variables: dict, optimizer, recorder: Recorder) -> None:
        """Save when ``every`` steps have passed since the last save (called at the loop's sync points)."""
        import io
        import json

        if recorder.steps_done - self.saved_at < self.every:
            return
        buffer = io.BytesIO()
        np.savez(buffer, config=self._fingerprint(cfg), history=json.dumps(recorder.history),
                 **{f"var_{name}": v.numpy() for name, v in variables.items()},
                 **{f"opt_{i}": v.numpy() for i, v in enumerate(optimizer.variables)})
        files.atomic_write_bytes(buffer.getvalue(), self.path)
        self.saved_at = recorder.steps_done

    def finish(self, recorder: Recorder) -> None:
        if recorder.status == "completed":
            self.path.unlink(missing_ok=True)


def _run_gradient_steps(step, cfg: NSTConfig, recorder: Recorder, variables: dict, optimizer, should_stop,
                        image_ok, checkpoint: Checkpoint | None) -> None:
    """Run ``step`` for the config's steps, continuing from ``checkpoint`` and saving to it when given."""
    done = checkpoint.restore(cfg, variables, optimizer, recorder) if checkpoint else 0
    on_sync = (lambda: checkpoint.maybe_save(cfg, variables, optimizer, recorder)) if checkpoint else None
    run_steps(lambda i: step(), recorder, num_steps=cfg.num_steps - done, should_stop=should_stop,
              image_ok=image_ok, on_sync=on_sync)
    recorder.close()
    if checkpoint:
        checkpoint.finish(recorder)


def _gradient_loop(loss_fn: NSTLoss, x0: np.ndarray, cfg: NSTConfig, recorder: Recorder,
                   should_stop=None, checkpoint: Checkpoint | None = None) -> np.ndarray:
    """SGD or Adam on a ``tf.Variable``: one traced ``tf.function`` step, no retracing.

    With ``cfg.sgd_guard_factor`` set and ``cfg.optimizer == "sgd"``, the step is
    :func:`_guarded_sgd_loop`'s instead; otherwise each step is exactly ``x ← x − lr_t · ∇L(x)``
    (keras-io's recipe for SGD).
    """
    if cfg.optimizer == "sgd" and cfg.sgd_guard_factor is not None:
        return _guarded_sgd_loop(loss_fn, x0, cfg, recorder, should_stop, checkpoint)
    image = tf.Variable(x0)
    recorder.get_image = lambda: image.numpy()[0] / cfg.pixel_scale
    optimizer = _make_optimizer(cfg, x0.shape[1] * x0.shape[2])
    optimizer.build([image])  # create its slots now, so the step below is traced once, not twice

    @tf.function
    def step():
        terms, grad = loss_fn.value_and_gradient(image)
        optimizer.apply_gradients([(grad, image)])
        if cfg.clip:
            image.assign(tf.clip_by_value(image, 0.0, cfg.pixel_scale))
        return terms

    _run_gradient_steps(step, cfg, recorder, {"image": image}, optimizer, should_stop,
                        lambda: bool(tf.reduce_all(tf.math.is_finite(image))), checkpoint)
    recorder.traces = step.experimental_get_tracing_count()
    return recorder.last_good


def _guarded_sgd_loop(loss_fn: NSTLoss, x0: np.ndarray, cfg: NSTConfig, recorder: Recorder,
                      should_stop=None, checkpoint: Checkpoint | None = None) -> np.ndarray:
    """SGD with keras-io's schedule, plus a guard that undoes an update that blew the loss up.

    Each step evaluates ``L(x)`` and ``∇L(x)`` at the current image ``x``. If the previous update
    raised the loss by more than ``factor = cfg.sgd_guard_factor`` — ``L(x) > factor · L(x_kept)``,
    or ``L(x)`` is NaN/Inf — the step undoes it (``x ← x_kept``, with that image's loss and
    gradient) and halves the rate, ``rate ← rate / 2``; otherwise it keeps ``x`` as ``x_kept``.
    Then it updates ``x ← x − rate · lr_t · ∇L(x)``, where ``lr_t`` is keras-io's decayed rate and
    ``rate`` starts at 1. The halving persists for the rest of the run: a rate that blew up once
    would blow up again. While no update blows up, the steps are exactly :func:`_gradient_loop`'s.

    The history's ``total``, ``content``, ``style``, ``tv`` are the losses of the images kept (a
    retried step records the loss of the image it went back to, so the blown-up loss never
    appears), and ``retries`` is 1 at a step that undid the previous update, else 0. After the
    last step one more evaluation checks the last update; the image returned is the last one kept.
    """
    factor = float(cfg.sgd_guard_factor)
    image = tf.Variable(x0)
    kept_image = tf.Variable(x0)  # the image the latest kept step started from
    kept_grad = tf.Variable(tf.zeros_like(x0))  # its gradient
    kept = {k: tf.Variable(np.inf, dtype=tf.float32) for k in ("total", "content", "style", "tv")}  # its losses
    rate = tf.Variable(1.0)  # the multiplier of keras-io's learning rate; halved at each retry
    recorder.get_image = lambda: kept_image.numpy()[0] / cfg.pixel_scale
    optimizer = _make_optimizer(cfg, x0.shape[1] * x0.shape[2])
    optimizer.build([image])

    def blew_up(total: tf.Tensor) -> tf.Tensor:
        """True when ``total`` is NaN/Inf or above ``factor ×`` the kept loss (never before a loss is kept)."""
        return tf.math.is_finite(kept["total"]) & tf.logical_not(total <= factor * kept["total"])

    @tf.function
    def step():
        terms, grad = loss_fn.value_and_gradient(image)
        retry = blew_up(terms["total"])
        if retry:  # undo the previous update; take it again from the kept image at half the rate
            image.assign(kept_image)
            grad = tf.identity(kept_grad)
            terms = {k: tf.identity(v) for k, v in kept.items()}
            rate.assign(rate / 2)
        else:  # keep this image as the one to come back to
            kept_image.assign(image)
            kept_grad.assign(grad)
            for k, v in kept.items():
                v.assign(terms[k])
        optimizer.apply_gradients([(rate * grad, image)])  # plain SGD: scaling the gradient scales the step
        if cfg.clip:
            image.assign(tf.clip_by_value(image, 0.0, cfg.pixel_scale))
        return {**terms, "retries": tf.cast(retry, tf.float32)}

    state = {"image": image, "kept_image": kept_image, "kept_grad": kept_grad, "rate": rate,
             **{f"kept_{k}": v for k, v in kept.items()}}
    _run_gradient_steps(step, cfg, recorder, state, optimizer, should_stop,
                        lambda: bool(tf.reduce_all(tf.math.is_finite(kept_image))), checkpoint)
    recorder.traces = step.experimental_get_tracing_count()
    if recorder.steps_done:  # check the last update once (eagerly); undo it if it blew up
        if bool(blew_up(loss_fn(image)["total"])):
            image.assign(kept_image)
        recorder.last_good = image.numpy()[0] / cfg.pixel_scale
    return recorder.last_good


class _StopLBFGS(Exception):
    pass


def _lbfgs_loop(loss_fn: NSTLoss, x0: np.ndarray, cfg: NSTConfig, recorder: Recorder,
                should_stop=None) -> np.ndarray:
    """scipy's L-BFGS-B on a ``tf.function`` value-and-gradient.

    The history has one entry per iteration: the loss at the iterate it starts from (the initial
    image first), like the gradient loops' "loss before the update".
    """
    import scipy.optimize

    shape = x0.shape
    current = {"x": x0.ravel().astype(np.float64)}
    recorder.get_image = lambda: (current["x"].reshape(shape)[0] / cfg.pixel_scale).astype(np.float32)

    @tf.function(input_signature=[tf.TensorSpec(shape, tf.float32)])
    def value_and_grad(x):
        return loss_fn.value_and_gradient(x)

    evaluated: dict = {}

    def fun(flat: np.ndarray):
        terms, grad = value_and_grad(tf.constant(flat.reshape(shape), tf.float32))
        evaluated["x"], evaluated["terms"] = flat.copy(), {k: float(v) for k, v in terms.items()}
        return evaluated["terms"]["total"], grad.numpy().ravel().astype(np.float64)

    def on_iterate(xk) -> None:
        x = np.asarray(getattr(xk, "x", xk))
        if not np.array_equal(evaluated.get("x"), x):
            fun(x)
        current["x"] = x.copy()
        if recorder.steps_done < cfg.num_steps:
            recorder.record([evaluated["terms"]], image_ok=bool(np.isfinite(x).all()))
            if recorder.wants_frame(recorder.steps_done - 1):
                recorder.keep_frame()
        if recorder.steps_done >= cfg.num_steps or (should_stop is not None and should_stop()):
            raise _StopLBFGS

    status = "completed"
    try:
        on_iterate(current["x"])  # the initial image is iteration 0
        n = current["x"].size  # arrays, not a list of n pairs: scipy would convert that pixel by pixel
        bounds = scipy.optimize.Bounds(np.zeros(n), np.full(n, float(cfg.pixel_scale))) if cfg.clip else None
        scipy.optimize.minimize(fun, current["x"], jac=True, method="L-BFGS-B", bounds=bounds,
                                callback=on_iterate, options={"maxiter": cfg.num_steps, "maxcor": 20})
    except _StopLBFGS:
        status = "interrupted" if recorder.steps_done < cfg.num_steps else "completed"
    except KeyboardInterrupt:
        status = "interrupted"
    finally:
        recorder.close(status)
    return recorder.get_image()


LBFGS_TF_MEMORY = 10
"""(s, y) pairs kept by :func:`_lbfgs_tf_loop`: 2·m·n float32 of history (1 GiB at 2048² with m = 10)."""


def _lbfgs_direction(g: tf.Tensor, free: tf.Tensor, pairs: list, first_scale: float) -> tf.Tensor:
    """L-BFGS's two-loop recursion on the free variables: the search direction, ``-H·g``.

    Args:
        g: the gradient, float32 ``[1, H, W, 3]``; free: 1 where a pixel may move, 0 where it is pinned.
        pairs: the (s, y, 1 / sᵀy) history, oldest first; first_scale: the step's scale without history.
    """
    q = g * free
    alphas = []
    for s, y, rho in reversed(pairs):
        alphas.append(rho * tf.reduce_sum(s * q))
        q -= alphas[-1] * y
    if pairs:
        s, y, _ = pairs[-1]
        r = q * (tf.reduce_sum(s * y) / tf.reduce_sum(y * y))
    else:
        r = q * (first_scale / (tf.reduce_max(tf.abs(q)) + 1e-30))
    for (s, y, rho), a in zip(pairs, reversed(alphas)):
        r += s * (a - rho * tf.reduce_sum(y * r))
    return -r * free


def _lbfgs_tf_loop(loss_fn: NSTLoss, x0: np.ndarray, cfg: NSTConfig, recorder: Recorder, should_stop=None, *,
                   memory: int = LBFGS_TF_MEMORY, first_step: float = 0.05, max_backtracks: int = 20) -> np.ndarray:
    """L-BFGS in TensorFlow with the [0, pixel_scale] box by projection; same contract as :func:`_lbfgs_loop`.

    Pixels at a bound whose gradient pushes outwards are frozen for the step; the trial point is
    clipped into the box; the step is accepted by Armijo backtracking from t = 1; the very first
    step moves no pixel more than ``first_step`` (in [0, 1] units). Image, gradient and history
    stay float32 tensors on the device; a few scalars per iteration come back to the host.
    Measured against scipy (``benchmarks/lbfgs_tf.py``, ``docs/benchmarks.md``): a few
    to 25 % more evaluations to the same loss, without scipy's ≈ 0.2–0.4 s per iteration at 512².
    """
    shape = x0.shape
    low, high = (0.0, float(cfg.pixel_scale)) if cfg.clip else (-np.inf, np.inf)
    spec = tf.TensorSpec(shape, tf.float32)

    @tf.function(input_signature=[spec])
    def value_and_grad(x):
        return loss_fn.value_and_gradient(x)

    @tf.function(input_signature=[spec, spec])
    def free_mask(x, g):
        pinned = tf.logical_or(tf.logical_and(x <= low, g > 0), tf.logical_and(x >= high, g < 0))
        return tf.cast(tf.logical_not(pinned), tf.float32)

    state = {"x": tf.constant(x0, tf.float32)}
    recorder.get_image = lambda: state["x"].numpy()[0] / cfg.pixel_scale
    status = "completed"
    def record(terms) -> None:
        recorder.record([terms], image_ok=True)
        if recorder.wants_frame(recorder.steps_done - 1):
            recorder.keep_frame()

    try:
        terms, g = value_and_grad(state["x"])
        f = float(terms["total"])
        record(terms)
        pairs: list = []
        while recorder.steps_done < cfg.num_steps:
            if should_stop is not None and should_stop():
                status = "interrupted"
                break
            x = state["x"]
            free = free_mask(x, g)
            d = _lbfgs_direction(g, free, pairs, first_step * cfg.pixel_scale)
            if not float(tf.reduce_sum(g * d)) < 0:  # not a descent direction: restart from the gradient
                pairs.clear()
                d = _lbfgs_direction(g, free, pairs, first_step * cfg.pixel_scale)
            t = 1.0
            for _ in range(max_backtracks):
                x_new = tf.clip_by_value(x + t * d, low, high) if cfg.clip else x + t * d
                terms_new, g_new = value_and_grad(x_new)
                f_new = float(terms_new["total"])
                if np.isfinite(f_new) and f_new <= f + 1e-4 * float(tf.reduce_sum(g * (x_new - x))):
                    break
                t *= 0.5
            else:
                break  # no decrease along the direction: converged as far as float32 allows
            s, y = x_new - x, g_new - g
            sy = float(tf.reduce_sum(s * y))
            if sy > 1e-10 * float(tf.reduce_sum(y * y)):
                pairs = (pairs + [(s, y, 1.0 / sy)])[-memory:]
            state["x"], g, f = x_new, g_new, f_new
            record(terms_new)
    except KeyboardInterrupt:
        status = "interrupted"
    finally:
        recorder.close(status)
    return recorder.get_image()


def loop_for(optimizer: str):
    """The loop that runs ``optimizer``: :func:`_lbfgs_loop`, :func:`_lbfgs_tf_loop` or :func:`_gradient_loop`."""
    return {"lbfgs": _lbfgs_loop, "lbfgs-tf": _lbfgs_tf_loop}.get(optimizer, _gradient_loop)


def style_transfer(content_image, style_image, *, config: NSTConfig | str = "quick", size: int | None = None,
                   num_steps: int | None = None, optimizer: str | None = None,
                   learning_rate: float | None = None, seed: int = 0, progress: bool = True,
                   log_every: int = 0, frame_every: int = 0, callback=None, should_stop=None,
                   weights=None, precision: str | None = None, mask=None, preserve_color: str | None = None,
                   style_blend=None, style_scale: float | None = None, checkpoint=None,
                   checkpoint_every: int = 500) -> NSTResult:
    """Stylise ``content_image`` with ``style_image`` (the paper's NST).

    Args:
        content_image, style_image: float ``[H, W, 3]`` in [0, 1] (any sizes; resized here);
            ``style_image`` may be a list of images, blended with weights ``style_blend``.
        config: a preset name (``"paper"``, ``"tf-tutorial"``, ``"quick"``) or an :class:`NSTConfig`.
        size, num_steps, optimizer, learning_rate: override the config (None keeps it).
        seed: seeds NumPy/TensorFlow (noise init); same seed, same result.
        progress: show a tqdm progress bar.
        log_every: print ``step N | loss x`` every N steps (0: never).
        frame_every: keep the image every N steps in ``result.frames`` (0: never).
        callback: ``callback(step, losses, image)`` every 10 steps.
        should_stop: polled every step; returning True ends the run (status ``"interrupted"``).
        weights: VGG-19 weights file or folder (default: ``weights.resolve``).
        precision: what VGG-19 computes in — ``"float32"``, ``"bfloat16"`` (about 1.8× faster on
            CPUs with AVX512-BF16, 3.4× with AMX, ``docs/benchmarks.md``), ``"float16"`` (GPUs) — or None
            for the global Keras policy (``device.setup``). Losses are float32 either way.
        mask: ``[H, W]`` or ``[H, W, 3]`` in [0, 1], any size: white where the style goes, black where
            the content stays (see :class:`NSTLoss`); neither all black nor all white.
        preserve_color, style_blend, style_scale: override the config's (``NSTConfig``).
        checkpoint: a ``.npz`` path (SGD and Adam only): the run saves its state there every
            ``checkpoint_every`` steps and, when the file exists, continues from it (:class:`Checkpoint`).

    Returns:
        An :class:`NSTResult`. Ctrl-C (KeyboardInterrupt) also returns one, with status ``"interrupted"``.

    Raises:
        InputError: a bad parameter (checked before any network is built).
        NonFiniteLossError: the loss became NaN/Inf; ``.last_image`` is the last finite image.
    """
    cfg = resolve_config(config, size=size, num_steps=num_steps, optimizer=optimizer, learning_rate=learning_rate,
                         preserve_color=preserve_color, style_scale=style_scale,
                         style_blend=None if style_blend is None else tuple(style_blend))
    styles = list(style_image) if isinstance(style_image, (list, tuple)) else [style_image]
    check_styles(cfg, len(styles))
    mask = check_mask(mask) if mask is not None else None
    models.check_precision(precision)  # a bad precision fails here, before any work
    device.setup()
    device.seed_everything(seed)
    content, styles = prepare_images(content_image, styles, cfg)
    if mask is not None:  # to the content's size, as one channel
        mask = np.clip(images.resize(np.repeat(mask[..., None], 3, axis=-1), exact=content.shape[:2])[..., 0], 0, 1)
    loss_fn = NSTLoss(content, styles, cfg, mask=mask, weights=weights, precision=precision)
    x0 = _initial_image(content, styles[0], cfg, seed)
    recorder = Recorder(num_steps=cfg.num_steps, get_image=lambda: x0[0] / cfg.pixel_scale, progress=progress,
                        desc=f"NST ({cfg.optimizer})", log_every=log_every, frame_every=frame_every,
                        callback=callback, main_key="total")
    loop = loop_for(cfg.optimizer)
    if checkpoint is None:
        image = loop(loss_fn, x0, cfg, recorder, should_stop=should_stop)
    elif loop is _gradient_loop:
        image = loop(loss_fn, x0, cfg, recorder, should_stop=should_stop,
                     checkpoint=Checkpoint(checkpoint, checkpoint_every))
    else:
        raise InputError(f"checkpoints are kept for sgd and adam, not {cfg.optimizer}", where="checkpoint",
                         fix="leave checkpoint unset, or use optimizer='sgd' or 'adam'")
    if cfg.preserve_color == "luminance":  # after the run: the output's luminance Y, the content's Cb, Cr
        image = images.keep_colors(np.clip(image, 0, 1), content)
    return NSTResult(image=np.clip(image, 0, 1).astype(np.float32), history=recorder.history, config=cfg,
                     frames=recorder.frames, status=recorder.status)
