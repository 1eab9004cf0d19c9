"""The TensorFlow style-transfer tutorial's recipe, re-implemented faithfully as the baseline.

Source: tensorflow/docs ``site/en/tutorials/generative/style_transfer.ipynb`` — the recipe most
people copy. Kept as the tutorial writes it: a ``StyleContentModel`` that re-runs VGG-19 on the
image every step and returns Gram matrices (÷ number of positions) and content features;
``style_content_loss`` with mean squared errors, style weight 1e-2 ÷ 5 layers, content weight 1e4;
``tf.image.total_variation`` with weight 30; Adam(lr 0.02, β₁ 0.99, ε 0.1); ``clip_0_1``; and a
``@tf.function train_step``. Two deliberate differences, neither of which changes the maths: the
VGG-19 weights come from the local file instead of a download, and the images are the ones
``nst.prepare_images`` gives (content at the configured size, style resized to the content's
shape) so that our loss and this one can be compared on the same inputs.

Run alone, it runs the recipe for ``--steps`` steps and prints one JSON line: the tutorial's loss
and ours (``presets.TF_TUTORIAL.nst``) on the content image and on the final image, and the time::

    .venv/bin/python benchmarks/tf_tutorial.py --size 128 --steps 20
"""

from __future__ import annotations

import argparse
import time

import common

CONTENT_LAYERS = ["block5_conv2"]
STYLE_LAYERS = ["block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1", "block5_conv1"]


class Tutorial:
    """The tutorial's model, loss and ``train_step`` for one content/style pair.

    Args:
        content_image, style_image: float32 ``[H, W, 3]`` in [0, 1].
        weights_path: the VGG-19 "notop" weights file.
    """

    def __init__(self, content_image, style_image, weights_path: str) -> None:
        import tensorflow as tf

        num_content_layers = len(CONTENT_LAYERS)
        num_style_layers = len(STYLE_LAYERS)

        def vgg_layers(layer_names):
            """Creates a VGG model that returns a list of intermediate output values."""
            vgg = tf.keras.applications.VGG19(include_top=False, weights=weights_path)
            vgg.trainable = False
            outputs = [vgg.get_layer(name).output for name in layer_names]
            return tf.keras.Model([vgg.input], outputs)

        def gram_matrix(input_tensor):
            result = tf.linalg.einsum("bijc,bijd->bcd", input_tensor, input_tensor)
            input_shape = tf.shape(input_tensor)
            num_locations = tf.cast(input_shape[1] * input_shape[2], tf.float32)
            return result / num_locations

        class StyleContentModel(tf.keras.models.Model):
            def __init__(self, style_layers, content_layers):
                super().__init__()
                self.vgg = vgg_layers(style_layers + content_layers)
                self.style_layers = style_layers
                self.content_layers = content_layers
                self.num_style_layers = len(style_layers)
                self.vgg.trainable = False

            def call(self, inputs):
                "Expects float input in [0,1]"
                inputs = inputs * 255.0
                preprocessed_input = tf.keras.applications.vgg19.preprocess_input(inputs)
                outputs = self.vgg(preprocessed_input)
                style_outputs, content_outputs = (outputs[:self.num_style_layers],
                                                  outputs[self.num_style_layers:])
                style_outputs = [gram_matrix(style_output) for style_output in style_outputs]
                content_dict = {content_name: value
                                for content_name, value in zip(self.content_layers, content_outputs)}
                style_dict = {style_name: value
                              for style_name, value in zip(self.style_layers, style_outputs)}
                return {"content": content_dict, "style": style_dict}

        extractor = StyleContentModel(STYLE_LAYERS, CONTENT_LAYERS)
        content_image = tf.constant(content_image[tf.newaxis], tf.float32)
        style_image = tf.constant(style_image[tf.newaxis], tf.float32)
        style_targets = extractor(style_image)["style"]
        content_targets = extractor(content_image)["content"]

        image = tf.Variable(content_image)

        def clip_0_1(image):
            return tf.clip_by_value(image, clip_value_min=0.0, clip_value_max=1.0)

        opt = tf.keras.optimizers.Adam(learning_rate=0.02, beta_1=0.99, epsilon=1e-1)
        style_weight = 1e-2
        content_weight = 1e4

        def style_content_loss(outputs):
            style_outputs = outputs["style"]
            content_outputs = outputs["content"]
            style_loss = tf.add_n([tf.reduce_mean((style_outputs[name] - style_targets[name]) ** 2)
                                   for name in style_outputs.keys()])
            style_loss *= style_weight / num_style_layers
            content_loss = tf.add_n([tf.reduce_mean((content_outputs[name] - content_targets[name]) ** 2)
                                     for name in content_outputs.keys()])
            content_loss *= content_weight / num_content_layers
            loss = style_loss + content_loss
            return loss

        total_variation_weight = 30

        @tf.function()
        def train_step(image):
            with tf.GradientTape() as tape:
                outputs = extractor(image)
                loss = style_content_loss(outputs)
                loss += total_variation_weight * tf.image.total_variation(image)
            grad = tape.gradient(loss, image)
            opt.apply_gradients([(grad, image)])
            image.assign(clip_0_1(image))

        @tf.function()
        def loss_of(image):  # the tutorial's loss, evaluated without an update (for reporting)
            return (style_content_loss(extractor(image))
                    + total_variation_weight * tf.image.total_variation(image))[0]

        self.image, self.train_step, self._loss_of = image, train_step, loss_of

    def step(self, n: int = 1) -> None:
        """Run ``n`` training steps (the tutorial's inner loop)."""
        for _ in range(n):
            self.train_step(self.image)

    def loss(self, image=None) -> float:
        """The tutorial's total loss of ``image`` (default: the current image), ``[1, H, W, 3]``."""
        import tensorflow as tf

        x = self.image if image is None else tf.constant(image, tf.float32)
        return float(self._loss_of(tf.reshape(x, [1, *x.shape[-3:]])))

    def image_array(self):
        """The current image as float32 ``[H, W, 3]``."""
        return self.image.numpy()[0]


def prepared_pair(size: int):
    """The benchmark's content and style images at ``size`` as ``nst`` prepares them, and the config."""
    from nstdream_utils import images, nst, presets

    cfg = presets.TF_TUTORIAL.nst.replace(size=size)
    content, style = nst.prepare_images(images.load_image(common.CONTENT), images.load_image(common.STYLE), cfg)
    return content, style, cfg


def our_loss_function(content, style, cfg, *, precision: str | None = None):
    """Our library's total loss (``nst.NSTLoss``, targets computed once, traced) as a function of an
    image ``[H, W, 3]`` in [0, 1] → float; ``precision`` as in ``nst.NSTLoss``."""
    import numpy as np
    import tensorflow as tf

    from nstdream_utils import nst

    loss_fn = nst.NSTLoss(content, style, cfg, precision=precision)
    total = tf.function(lambda x: loss_fn(x)["total"])
    return lambda image: float(total(tf.constant(np.asarray(image, np.float32)[np.newaxis] * cfg.pixel_scale)))


def our_loss(content, style, cfg, image) -> float:
    """Our library's total loss (``nst.NSTLoss``) of ``image`` ``[H, W, 3]`` in [0, 1]."""
    return our_loss_function(content, style, cfg)(image)


def main() -> None:
    parser = argparse.ArgumentParser(description="Run the TF tutorial recipe; compare its loss with ours.")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    common.setup_env()
    from nstdream_utils import weights

    content, style, cfg = prepared_pair(args.size)
    tutorial = Tutorial(content, style, str(weights.resolve("vgg19")))
    loss_start = tutorial.loss()
    start = time.perf_counter()
    tutorial.step(args.steps)
    seconds = time.perf_counter() - start
    final = tutorial.image_array()
    loss_final = tutorial.loss()
    ours_start, ours_final = our_loss(content, style, cfg, content), our_loss(content, style, cfg, final)
    common.emit({"benchmark": "tf_tutorial", "size": args.size, "shape": list(content.shape[:2]),
                 "steps": args.steps, "seconds": seconds, "tutorial_loss_content_image": loss_start,
                 "our_loss_content_image": ours_start, "tutorial_loss_final": loss_final,
                 "our_loss_final": ours_final,
                 "max_relative_difference": max(abs(ours_start - loss_start) / loss_start,
                                                abs(ours_final - loss_final) / loss_final)})


if __name__ == "__main__":
    main()
