"""DeepDream (TF tutorial): gradient *ascent* of Inception v3's mean activations, each step adding ``step_size`` ×
the gradient ÷ its std to the image in [-1, 1]; octaves at growing scales; tiles bound the memory. Notebook 05."""

import numpy as np
import tensorflow as tf

from . import device, images, losses, models
from ._loop import Recorder, RunResult, run_steps
from .presets import DreamConfig, dream_config

resolve_config = dream_config  # a preset name or DreamConfig plus overrides (None keeps) → a DreamConfig

INCEPTION_MIN_SIZE = 75  # Inception v3 needs at least 75×75 pixels; smaller images are upscaled first


class DreamResult(RunResult):
    """What :func:`deep_dream` returns: ``image`` at the working size; ``history["loss"][i]``: before update i."""


def prepare_image(image, cfg: DreamConfig) -> np.ndarray:
    """Resize to the configured size (exact square or longest side), at least 75 px on each side."""
    x = images.resize(np.asarray(image, np.float32), size=(cfg.size,) * 2 if cfg.square else cfg.size)
    return images.ensure_min_size(x, INCEPTION_MIN_SIZE)


FLOAT16_LOSS_SCALE = 2.0 ** 12  # the loss × this through a float16 network: its gradient (≈ 10⁻³) would underflow


def _gradient_fn(extractor: models.FeatureExtractor, guides: dict | None):
    """``gradient(x, crop) -> (loss, d loss / d x)`` of the (guided) dream loss of ``crop(x)``, x in [-1, 1]."""
    scale = FLOAT16_LOSS_SCALE if getattr(extractor, "compute_dtype", None) == "float16" else 1.0

    def gradient(x, crop=tf.identity):
        with tf.GradientTape() as tape:
            tape.watch(x)
            activations = extractor((crop(x)[tf.newaxis] + 1.0) / 2.0)
            loss = losses.dream_loss(activations) if guides is None else losses.guided_dream_loss(activations, guides)
            scaled = loss * scale
        return loss, tape.gradient(scaled, x) / scale

    return gradient


def _ascend(img: tf.Tensor, grad: tf.Tensor, cfg: DreamConfig) -> tf.Tensor:
    """One step up: the gradient ÷ its standard deviation (if ``normalize_gradient``), clipped to [-1, 1]."""
    grad = grad / (tf.math.reduce_std(grad) + 1e-8) if cfg.normalize_gradient else grad
    return tf.clip_by_value(img + cfg.step_size * grad, -1.0, 1.0)


def make_step(extractor: models.FeatureExtractor, cfg: DreamConfig, guides: dict | None = None):
    """One traced ascent step on a whole image: ``step(img [H, W, 3] in [-1, 1]) -> (loss, new img)``."""
    gradient = _gradient_fn(extractor, guides)

    @tf.function(input_signature=[tf.TensorSpec([None, None, 3], tf.float32)])
    def step(img):
        loss, grad = gradient(img)
        return loss, _ascend(img, grad, cfg)

    return step


def make_tiled_step(extractor: models.FeatureExtractor, cfg: DreamConfig, guides: dict | None = None):
    """The ascent step with the gradient tile by tile after a random roll: ``step(img, shift) -> (loss, img)``."""
    tile, gradient = cfg.tile_size, _gradient_fn(extractor, guides)

    @tf.function(input_signature=[tf.TensorSpec([None, None, 3], tf.float32), tf.TensorSpec([2], tf.int32)])
    def step(img, shift):
        rolled = tf.roll(img, shift=shift, axis=[0, 1])
        grads, total, count = tf.zeros_like(rolled), tf.constant(0.0), tf.constant(0.0)
        h, w = tf.shape(rolled)[0], tf.shape(rolled)[1]
        # The last tile in each direction ends at the image edge (overlapping its neighbour), so
        # no piece is ever smaller than a tile — Inception v3 cannot take pieces under 75 px.
        for y in tf.minimum(tf.range(0, h, tile), tf.maximum(h - tile, 0)):
            for x in tf.minimum(tf.range(0, w, tile), tf.maximum(w - tile, 0)):
                loss, grad = gradient(rolled, lambda r: r[y:y + tile, x:x + tile])
                grads = grads + grad
                total += loss
                count += 1.0
        return total / count, _ascend(img, tf.roll(grads, shift=-shift, axis=[0, 1]), cfg)

    return step


def deep_dream(image, *, config: DreamConfig | str = "quick", seed: int = 0, progress: bool = True,
               log_every: int = 0, frame_every: int = 0, callback=None, should_stop=None, weights=None,
               precision: str | None = None, guide=None, **overrides) -> DreamResult:
    """Dream on ``image`` (float ``[H, W, 3]`` in [0, 1], any size), octave by octave; ``guide`` (the same or None):
    maximise the match with its features. ``seed``: the tiles' rolls. The rest as ``nst.style_transfer``."""
    cfg = resolve_config(config, **overrides)
    models.check_precision(precision)  # a bad precision fails here, before any work
    device.setup()
    device.seed_everything(seed)
    base = prepare_image(image, cfg)
    extractor = models.inception_features(cfg.layers, weights=weights, precision=precision)
    guides = None if guide is None else {  # the guide's features at the dream's size, [positions, channels]
        name: tf.reshape(f, [-1, f.shape[-1]]) for name, f in extractor(prepare_image(guide, cfg)[np.newaxis]).items()}
    whole_step = make_step(extractor, cfg, guides)
    tiled_step = make_tiled_step(extractor, cfg, guides) if cfg.tile_size else None  # traced at its first call
    rng = np.random.default_rng(seed)
    state = {"img": tf.constant(base * 2.0 - 1.0)}  # Inception's range, [-1, 1]
    recorder = Recorder(num_steps=cfg.num_steps * len(cfg.octaves), get_image=lambda: (state["img"].numpy() + 1) / 2,
                        progress=progress, desc="DeepDream", log_every=log_every, frame_every=frame_every,
                        callback=callback, main_key="loss")

    def step(i: int) -> dict:
        if state["tiles"]:
            shift = rng.integers(-cfg.tile_size, cfg.tile_size, size=2).astype(np.int32)
            loss, state["img"] = tiled_step(state["img"], tf.constant(shift))
        else:
            loss, state["img"] = whole_step(state["img"])
        return {"loss": loss}

    def octaves() -> None:
        for n in cfg.octaves:
            hw = np.maximum(np.round(np.array(base.shape[:2], np.float64) * cfg.octave_scale ** n),
                            INCEPTION_MIN_SIZE).astype(int)
            state["img"], state["tiles"] = tf.image.resize(state["img"], hw), cfg.tile_size and max(hw) > cfg.tile_size
            run_steps(step, recorder, num_steps=cfg.num_steps, should_stop=should_stop,
                      image_ok=lambda: bool(tf.reduce_all(tf.math.is_finite(state["img"]))))

    recorder.run(octaves)
    out = tf.image.resize(state["img"], base.shape[:2]) if len(cfg.octaves) > 1 else state["img"]
    return DreamResult(image=np.clip((out.numpy() + 1) / 2, 0, 1).astype(np.float32), history=recorder.history,
                       config=cfg, frames=recorder.frames, status=recorder.status)
