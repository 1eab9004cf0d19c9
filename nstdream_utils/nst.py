"""Neural style transfer (Gatys et al. 2016, Eqs 2–6): an image whose VGG-19 features match a content image's and
whose Gram matrices match a style image's, by SGD (Eq 2, ``x ← x − η_t ∇L(x)``), Adam or L-BFGS. Notebooks 03, 04."""

import keras
import numpy as np
import tensorflow as tf

from . import device, images, losses, models, optim
from ._loop import Recorder, RunResult, run_steps
from .errors import InputError
from .presets import NSTConfig, check_checkpointable, check_mask, check_styles, nst_config

resolve_config = nst_config  # a preset name or NSTConfig plus overrides (None keeps) → an NSTConfig

VGG19_MIN_SIZE = 32  # smallest side fed to VGG-19: 2×2 positions at block5 after four 2× poolings


class NSTResult(RunResult):
    """What :func:`style_transfer` returns; ``history``: ``total``, ``content``, ``style``, ``tv`` (, ``retries``)."""

    main_key = "total"


def prepare_images(content_image, style_image, cfg: NSTConfig):
    """The content at ``cfg.size``, the style(s) at ``cfg.style_scale ×`` its shape: ``[H, W, 3]``, ≥ 32 px a side."""
    content = images.resize(np.asarray(content_image, np.float32), size=(cfg.size,) * 2 if cfg.square else cfg.size)
    content = images.ensure_min_size(content, VGG19_MIN_SIZE)
    shape = tuple(max(VGG19_MIN_SIZE, round(side * cfg.style_scale)) for side in content.shape[:2])
    styles = []
    for style in style_image if isinstance(style_image, (list, tuple)) else [style_image]:
        style = images.resize(np.asarray(style, np.float32), exact=shape)
        styles.append(images.match_colors(style, content) if cfg.preserve_color == "histogram" else style)
    return content, styles if isinstance(style_image, (list, tuple)) else styles[0]


class NSTLoss:
    """The total loss of Eq 6 (+ keras-io's TV) for one content/style pair, targets computed once. Called on the
    image ``[1, H, W, 3]`` (``pixel_scale`` × RGB in [0, 1]): the weighted terms ``{"total", "content", "style",
    "tv"}``, float32 scalars. Several content layers: their mean. Styles blend as ``Σ_k w_k L_style(x, style_k)``;
    plain-sum Gram targets are rescaled by ``M_content / M_style``. A ``mask`` ``[H, W]`` in [0, 1] (Gatys et al.
    2017) gives features ``F ⊙ m_l`` and targets × ``mean(m_l²)``, and adds ``mask_weight · mean((1 − m)(x − c)²)``
    to the content term."""

    def __init__(self, content: np.ndarray, style, cfg: NSTConfig, *, mask: np.ndarray | None = None,
                 weights=None, precision: str | None = None) -> None:
        self.cfg = cfg
        self.extractor = models.vgg19_features(tuple(cfg.content_layers) + tuple(cfg.style_layers),
                                               weights=weights, precision=precision)
        content_features = self.extractor(content[np.newaxis])
        self.content_targets = {n: tf.constant(content_features[n]) for n in cfg.content_layers}
        styles = style if isinstance(style, (list, tuple)) else [style]
        self.masks = {n: losses.resize_mask(mask, content_features[n]) for n in cfg.style_layers if mask is not None}
        self.content_image = tf.constant(content[np.newaxis])
        self.outside = tf.constant(1.0 - mask[np.newaxis, ..., np.newaxis], tf.float32) if mask is not None else None
        self.blend = []  # (w_k, {layer: target Gram of style k})
        for weight, image in zip(cfg.style_blend or [1.0] * len(styles), styles):
            features = self.extractor(image[np.newaxis])
            targets = {}
            for n in cfg.style_layers:
                gram = losses.gram_matrix(features[n], normalize=cfg.gram_normalize)
                if cfg.gram_normalize is None:  # a plain sum over positions: count them as the output's
                    gram *= float(content_features[n].shape[1] * content_features[n].shape[2]) / \
                        float(features[n].shape[1] * features[n].shape[2])
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
        terms = {"content": cfg.content_weight * content, "style": cfg.style_weight * style, "tv": cfg.tv_weight * tv}
        if self.outside is not None:  # the mask's pixel term counts as content
            kept = tf.square(image / cfg.pixel_scale - self.content_image) * self.outside
            terms["content"] += cfg.mask_weight * tf.reduce_mean(kept)
        return {"total": terms["content"] + terms["style"] + terms["tv"], **terms}

    def value_and_gradient(self, image: tf.Tensor) -> tuple[dict[str, tf.Tensor], tf.Tensor]:
        """The terms and ``d total / d image`` (float32), by a loss scale in float16; call it in a ``tf.function``."""
        if self.loss_scale is None:
            with tf.GradientTape() as tape:
                tape.watch(image)
                terms = self(image)
            return terms, tape.gradient(terms["total"], image)
        return self.loss_scale.value_and_gradient(self, image)


def _initial_image(content: np.ndarray, style: np.ndarray, cfg: NSTConfig, seed: int) -> np.ndarray:
    """The start, float32 ``[1, H, W, 3]`` in ``[0, pixel_scale]``: the content, the style or seeded noise."""
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


def _gradient_loop(loss_fn: NSTLoss, x0: np.ndarray, cfg: NSTConfig, recorder: Recorder,
                   should_stop=None, checkpoint: optim.Checkpoint | None = None) -> np.ndarray:
    """SGD (keras-io's Eq 2 step) or Adam, clipped when ``cfg.clip``; the last finite image ÷ pixel_scale."""
    # The SGD guard: after an update that raised the loss over factor × (or to NaN), go back to the kept image,
    # its loss and gradient, and halve the rate for the rest of the run. Until then, the plain loop's steps.
    guard = cfg.sgd_guard_factor if cfg.optimizer == "sgd" else None
    image = tf.Variable(x0)
    state = {"image": image}  # what a checkpoint saves
    if guard is not None:
        state.update(kept_image=tf.Variable(x0), kept_grad=tf.Variable(tf.zeros_like(x0)), rate=tf.Variable(1.0),
                     **{f"kept_{k}": tf.Variable(np.float32(np.inf)) for k in ("total", "content", "style", "tv")})
    shown = state.get("kept_image", image)  # the image returned: with the guard, the last one kept
    recorder.get_image = lambda: shown.numpy()[0] / cfg.pixel_scale
    lr = effective_learning_rate(cfg, x0.shape[1] * x0.shape[2])
    if cfg.lr_decay_rate:
        lr = keras.optimizers.schedules.ExponentialDecay(lr, decay_steps=cfg.lr_decay_steps,
                                                         decay_rate=cfg.lr_decay_rate)
    optimizer = keras.optimizers.SGD(learning_rate=lr) if cfg.optimizer == "sgd" else \
        keras.optimizers.Adam(learning_rate=lr, beta_1=cfg.adam_beta1, epsilon=cfg.adam_epsilon)
    optimizer.build([image])  # create its slots now, so the step below is traced once, not twice

    def blew_up(total: tf.Tensor) -> tf.Tensor:  # never before a loss is kept
        return tf.math.is_finite(state["kept_total"]) & tf.logical_not(total <= guard * state["kept_total"])

    @tf.function
    def step():
        terms, grad = loss_fn.value_and_gradient(image)
        if guard is not None:
            retry = blew_up(terms["total"])
            if retry:  # undo the previous update; take it again from the kept image at half the rate
                image.assign(state["kept_image"])
                grad = tf.identity(state["kept_grad"])
                terms = {k: tf.identity(state[f"kept_{k}"]) for k in terms}
                state["rate"].assign(state["rate"] / 2)
            else:  # keep this image as the one to come back to
                state["kept_image"].assign(image)
                state["kept_grad"].assign(grad)
                for k, v in terms.items():
                    state[f"kept_{k}"].assign(v)
            grad = state["rate"] * grad  # plain SGD: scaling the gradient scales the step
        optimizer.apply_gradients([(grad, image)])
        if cfg.clip:
            image.assign(tf.clip_by_value(image, 0.0, cfg.pixel_scale))
        return terms if guard is None else {**terms, "retries": tf.cast(retry, tf.float32)}

    done = checkpoint.restore(cfg, state, optimizer, recorder) if checkpoint else 0
    recorder.run(lambda: run_steps(lambda i: step(), recorder, num_steps=cfg.num_steps - done, should_stop=should_stop,
                                   image_ok=lambda: bool(tf.reduce_all(tf.math.is_finite(shown))),
                                   on_sync=checkpoint.maybe_save if checkpoint else None))
    if checkpoint and recorder.status == "completed":
        checkpoint.path.unlink(missing_ok=True)
    recorder.traces = step.experimental_get_tracing_count()
    if guard is not None and recorder.steps_done:  # check the last update once; undo it if it blew up
        if bool(blew_up(loss_fn(image)["total"])):
            image.assign(shown)
        recorder.last_good = image.numpy()[0] / cfg.pixel_scale
    return recorder.last_good


def loop_for(optimizer: str):
    """The loop that runs ``optimizer``: ``optim.lbfgs_loop``, ``optim.lbfgs_tf_loop`` or ``_gradient_loop``."""
    return {"lbfgs": optim.lbfgs_loop, "lbfgs-tf": optim.lbfgs_tf_loop}.get(optimizer, _gradient_loop)


def style_transfer(content_image, style_image, *, config: NSTConfig | str = "quick", seed: int = 0,
                   progress: bool = True, log_every: int = 0, frame_every: int = 0, callback=None,
                   should_stop=None, weights=None, precision: str | None = None, mask=None, checkpoint=None,
                   checkpoint_every: int = 500, **overrides) -> NSTResult:
    """Stylise ``content_image`` with ``style_image`` (the paper's NST), at full size in one level.

    ``content_image``, ``style_image`` (or a list, blended by ``style_blend``): float ``[H, W, 3]`` in [0, 1].
    ``config``: a preset or an :class:`NSTConfig`, ``**overrides`` its fields. ``log_every``, ``frame_every``: every
    N steps (0: never); ``callback(step, losses, image)``; ``should_stop()``: True ends the run. ``mask``: ``[H, W]``
    in [0, 1], white where the style goes. ``checkpoint``: a ``.npz`` (SGD, Adam) saved every ``checkpoint_every``
    steps, resumed if it exists. Status ``"interrupted"`` after Ctrl-C or a stop. InputError before any network
    is built; NonFiniteLossError for a NaN/Inf loss or image."""
    cfg = resolve_config(config, **overrides)
    styles = list(style_image) if isinstance(style_image, (list, tuple)) else [style_image]
    check_styles(cfg, len(styles))
    mask = check_mask(mask) if mask is not None else None
    if cfg.levels > 1:
        raise InputError(f"levels={cfg.levels}: style_transfer runs one level", where="levels",
                         fix="run several levels with pyramid.coarse_to_fine or pipeline.run_pipeline")
    if checkpoint is not None:
        check_checkpointable(cfg, "checkpoint")
    models.check_precision(precision)  # a bad precision fails here, before any work
    device.setup()
    device.seed_everything(seed)
    content, styles = prepare_images(content_image, styles, cfg)
    if mask is not None:  # to the content's size, as one channel
        mask = np.clip(images.resize(np.repeat(mask[..., None], 3, axis=-1), exact=content.shape[:2])[..., 0], 0, 1)
    loss_fn = NSTLoss(content, styles, cfg, mask=mask, weights=weights, precision=precision)
    x0 = _initial_image(content, styles[0], cfg, seed)
    recorder = Recorder(num_steps=cfg.num_steps, get_image=lambda: x0[0] / cfg.pixel_scale, progress=progress,
                        desc=f"NST ({cfg.optimizer})", log_every=log_every, frame_every=frame_every, callback=callback)
    saving = {"checkpoint": optim.Checkpoint(checkpoint, checkpoint_every)} if checkpoint is not None else {}
    image = loop_for(cfg.optimizer)(loss_fn, x0, cfg, recorder, should_stop=should_stop, **saving)
    if cfg.preserve_color == "luminance":  # after the run: the output's luminance Y, the content's Cb, Cr
        image = images.keep_colors(np.clip(image, 0, 1), content)
    return NSTResult(image=np.clip(image, 0, 1).astype(np.float32), history=recorder.history, config=cfg,
                     frames=recorder.frames, status=recorder.status)
