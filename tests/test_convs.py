"""Convolution formulations (nstdream_utils.convs): each equals tf.nn.conv2d and its autodiff
gradient, tuning picks and caches one per shape, and the tuned VGG-19 and Inception v3 (batch
normalisations folded, average poolings moved) equal the Keras models."""

from __future__ import annotations

import itertools
import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from nstdream_utils import convs, models

FORMULATIONS = [convs.Formulation(f, b) for f, b in itertools.product(("conv", "transpose"), ("transpose", "conv"))]


@pytest.fixture
def fresh_choices(monkeypatch):
    """An empty choice cache for this test (the process-wide one is left as it was)."""
    monkeypatch.setattr(convs, "_CHOSEN", {})


def test_flipped_rotates_and_swaps_channels():
    k = np.arange(3 * 3 * 2 * 4, dtype=np.float32).reshape(3, 3, 2, 4)
    kt = convs.flipped(k).numpy()
    assert kt.shape == (3, 3, 4, 2)
    for i, j, c, o in itertools.product(range(3), range(3), range(2), range(4)):
        assert kt[i, j, o, c] == k[2 - i, 2 - j, c, o]


@pytest.mark.parametrize("formulation", FORMULATIONS, ids=lambda f: f"{f.forward}-{f.backward}")
@pytest.mark.parametrize("kernel_size", [(1, 1), (3, 3), (5, 5), (1, 7), (7, 1)], ids=str)
def test_every_formulation_equals_conv2d_and_its_gradient(formulation, kernel_size):
    rng = np.random.default_rng(sum(kernel_size))
    x = tf.constant(rng.normal(size=(2, 9, 7, 5)), tf.float32)
    k = tf.constant(rng.normal(size=(*kernel_size, 5, 6)), tf.float32)
    upstream = tf.constant(rng.normal(size=(2, 9, 7, 6)), tf.float32)

    def value_and_grad(fn):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = fn(x)
            loss = tf.reduce_sum(y * upstream)
        return y, tape.gradient(loss, x)

    y_ref, dx_ref = value_and_grad(lambda v: tf.nn.conv2d(v, k, 1, "SAME"))
    y, dx = value_and_grad(lambda v: convs.conv(v, k, convs.flipped(k), formulation))
    np.testing.assert_allclose(y.numpy(), y_ref.numpy(), rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(dx.numpy(), dx_ref.numpy(), rtol=1e-5, atol=1e-4)
    # The input gradient of a 'SAME' convolution is the convolution of the upstream gradient with k̃.
    np.testing.assert_allclose(dx.numpy(), tf.nn.conv2d(upstream, convs.flipped(k), 1, "SAME").numpy(),
                               rtol=1e-5, atol=1e-4)


def test_choose_times_once_per_shape_and_follows_the_margin(fresh_choices, monkeypatch):
    k = tf.random.stateless_normal([3, 3, 8, 16], seed=[1, 2])
    kt = convs.flipped(k)
    monkeypatch.setattr(convs, "MARGIN", 1e9)  # nothing is that much faster: the default stays
    assert convs.choose([1, 12, 10, 8], k, kt) == convs.DEFAULT
    monkeypatch.setattr(convs, "MARGIN", 0.0)  # anything beats zero time: but the shape is cached
    assert convs.choose([1, 12, 10, 8], k, kt) == convs.DEFAULT
    chosen = convs.choose([1, 12, 11, 8], k, kt)  # the faster of the alternatives, whichever
    assert chosen.forward in ("transpose", "winograd") and chosen.backward in ("conv", "winograd")
    assert set(convs.chosen()) == {(12, 10, 3, 3, 8, 16, "float32"), (12, 11, 3, 3, 8, 16, "float32")}


@pytest.fixture
def choice_cache(fresh_choices, monkeypatch, tmp_path):
    """The cache of choices in a file of this test's own; returns its path."""
    path = tmp_path / "cache" / "conv_formulations.json"
    monkeypatch.setenv(convs.CACHE_ENV, str(path))
    return path


def _forget_this_process(monkeypatch):
    monkeypatch.setattr(convs, "_CHOSEN", {})  # as a new process starts


def test_choose_remembers_choices_for_the_next_process(choice_cache, monkeypatch):
    k = tf.random.stateless_normal([3, 3, 8, 16], seed=[1, 2])
    monkeypatch.setattr(convs, "MARGIN", 0.0)  # an alternative always wins: the choice differs from DEFAULT
    first = convs.choose([1, 12, 10, 8], k, convs.flipped(k))
    assert first != convs.DEFAULT
    stored = json.loads(choice_cache.read_text())
    assert stored["machines"][convs.machine_key()] == {"12 10 3 3 8 16 float32": list(first)}
    _forget_this_process(monkeypatch)

    def no_timing(fn):
        raise AssertionError("a remembered choice is timed again")

    monkeypatch.setattr(convs, "_median_cpu_seconds", no_timing)
    assert convs.choose([1, 12, 10, 8], k, convs.flipped(k)) == first
    with pytest.raises(AssertionError, match="timed again"):  # a new shape is still timed
        convs.choose([1, 12, 9, 8], k, convs.flipped(k))


def test_choice_cache_keeps_each_machine_apart_and_survives_corruption(choice_cache, monkeypatch):
    k = tf.random.stateless_normal([3, 3, 4, 4], seed=[1, 2])
    this_machine, timings = convs.machine_key(), []
    monkeypatch.setattr(convs, "_median_cpu_seconds", lambda fn: timings.append(fn) or 1.0)
    convs.choose([1, 8, 8, 4], k, convs.flipped(k))
    assert timings  # timed: nothing remembered yet
    _forget_this_process(monkeypatch)
    monkeypatch.setattr(convs, "machine_key", lambda: "another machine")
    timings.clear()
    convs.choose([1, 8, 8, 4], k, convs.flipped(k))
    assert timings  # another machine's key does not reuse this one's choice
    assert set(json.loads(choice_cache.read_text())["machines"]) == {this_machine, "another machine"}
    for bad in ("{not json", '{"version": 99, "machines": {}}', '{"version": 1, "machines": {"another machine": '
                '{"8 8 3 3 4 4 float32": ["winograd", "nonsense"]}}}', '{"version": 1, "machines": {"another machine": []}}'):
        choice_cache.write_text(bad)
        _forget_this_process(monkeypatch)
        timings.clear()
        assert convs.choose([1, 8, 8, 4], k, convs.flipped(k)) == convs.DEFAULT  # all times equal: the default
        assert timings  # a corrupt or foreign cache is ignored, then rewritten valid
        assert json.loads(choice_cache.read_text())["version"] == 1


def test_choice_cache_off_and_unwritable(fresh_choices, monkeypatch, tmp_path):
    k = tf.random.stateless_normal([3, 3, 4, 4], seed=[1, 2])
    monkeypatch.setenv(convs.CACHE_ENV, "0")
    assert convs.cache_file() is None
    convs.choose([1, 8, 8, 4], k, convs.flipped(k))
    assert not list(tmp_path.iterdir())
    blocker = tmp_path / "a file"
    blocker.write_text("")
    monkeypatch.setenv(convs.CACHE_ENV, str(blocker / "cache.json"))  # its folder cannot be made
    _forget_this_process(monkeypatch)
    assert isinstance(convs.choose([1, 8, 8, 4], k, convs.flipped(k)), convs.Formulation)  # no error
    assert not (blocker / "cache.json").exists() and blocker.is_file()
    monkeypatch.delenv(convs.CACHE_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert convs.cache_file() == tmp_path / "xdg" / "nstdream" / "conv_formulations.json"


def test_choose_offers_winograd_for_3x3_float32_only(fresh_choices, monkeypatch):
    offered = []
    monkeypatch.setattr(convs, "_fastest", lambda default, alternatives: offered.append(sorted(alternatives)))
    for kernel_size, dtype in (((3, 3), tf.float32), ((5, 5), tf.float32), ((3, 3), tf.bfloat16)):
        k = tf.cast(tf.random.stateless_normal([*kernel_size, 4, 4], seed=[5, 6]), dtype)
        assert convs.choose([1, 8, 8, 4], k, convs.flipped(k)) == convs.DEFAULT
    assert offered == [["transpose", "winograd"], ["conv", "winograd"], ["transpose"], ["conv"],
                       ["transpose"], ["conv"]]


@pytest.mark.parametrize("shape", [(1, 8, 8, 16, 24), (2, 9, 7, 5, 6), (1, 1, 1, 3, 2), (1, 2, 5, 4, 4)], ids=str)
def test_winograd_equals_conv2d_forward_flipped_and_through_conv(shape):
    b, h, w, c_in, c_out = shape
    rng = np.random.default_rng(h * w)
    x = tf.constant(rng.normal(size=(b, h, w, c_in)), tf.float32)
    k = tf.constant(rng.normal(size=(3, 3, c_in, c_out)), tf.float32)
    dy = tf.constant(rng.normal(size=(b, h, w, c_out)), tf.float32)
    u = convs.winograd_kernel(k)
    assert u.shape == (16, c_in, c_out)
    tol = {"rtol": 1e-5, "atol": 1e-5 * 3 * np.sqrt(9 * c_in)}
    np.testing.assert_allclose(convs.winograd(x, u).numpy(), tf.nn.conv2d(x, k, 1, "SAME").numpy(), **tol)
    np.testing.assert_allclose(convs.winograd(dy, u, flip=True).numpy(),
                               tf.nn.conv2d(dy, convs.flipped(k), 1, "SAME").numpy(), **tol)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        y = convs.conv(x, k, None, convs.Formulation("winograd", "winograd"), winograd_kernel=u)
        y_ref = tf.nn.conv2d(x, k, 1, "SAME")
        loss, loss_ref = tf.reduce_sum(y * dy), tf.reduce_sum(y_ref * dy)
    np.testing.assert_allclose(y.numpy(), y_ref.numpy(), **tol)
    np.testing.assert_allclose(tape.gradient(loss, x).numpy(), tape.gradient(loss_ref, x).numpy(), **tol)


def test_choose_caps_the_timed_size_and_skips_unknown_sizes(fresh_choices):
    k = tf.random.stateless_normal([3, 3, 4, 4], seed=[3, 4])
    convs.choose([1, 4 * convs.TUNE_SIDE, 20, 4], k, convs.flipped(k))
    assert list(convs.chosen()) == [(convs.TUNE_SIDE, 20, 3, 3, 4, 4, "float32")]
    assert convs.choose([1, None, 20, 4], k, convs.flipped(k)) == convs.DEFAULT
    assert len(convs.chosen()) == 1


@pytest.mark.parametrize("value, gpu, expected", [("0", False, False), ("off", False, False), ("1", True, True),
                                                  ("", False, True), ("", True, False)])
def test_enabled_reads_the_environment_then_the_device(monkeypatch, value, gpu, expected):
    monkeypatch.setenv("NSTDREAM_CONV_TUNING", value)
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: ["GPU:0"] if gpu else [])
    assert convs.enabled() is expected


LAYERS = ("block5_conv2", "block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1", "block5_conv1")


PICKS = {"default": (), "transpose-conv": ("transpose", "conv"), "winograd": ("winograd",)}


@pytest.mark.parametrize("pick", list(PICKS))
def test_tuned_vgg19_equals_the_keras_model_forward_and_backward(weights_dir, astronaut, fresh_choices,
                                                                 monkeypatch, pick):
    # Each direction takes the first of PICKS[pick] that choose offers (not timed: all kernels run).
    monkeypatch.setattr(convs, "_fastest", lambda default, alternatives: next(
        (k for k in PICKS[pick] if k in alternatives), None))
    extractor = models.vgg19_features(LAYERS, weights=weights_dir)
    assert isinstance(extractor.forward, convs.TunedGraph)
    image = tf.constant(astronaut[np.newaxis, 100:147, 80:141])  # 47×61: odd sizes through four poolings

    def run(fn):
        with tf.GradientTape() as tape:
            tape.watch(image)
            feats = fn(image)
            loss = tf.add_n([tf.reduce_mean(tf.square(tf.cast(f, tf.float32))) for f in feats])
        return [f.numpy() for f in feats], tape.gradient(loss, image).numpy()

    ours, grad = run(lambda im: [extractor(im)[n] for n in LAYERS])
    ref, grad_ref = run(lambda im: extractor.model(extractor.preprocess(im), training=False))
    for name, a, b in zip(LAYERS, ours, ref):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-3 * float(np.abs(b).max()), err_msg=name)
    np.testing.assert_allclose(grad, grad_ref, rtol=1e-4, atol=1e-4 * float(np.abs(grad_ref).max()))
    expected = {"default": convs.DEFAULT, "transpose-conv": convs.Formulation("transpose", "conv"),
                "winograd": convs.Formulation("winograd", "winograd")}[pick]
    assert set(convs.chosen().values()) == {expected}
    assert len(convs.chosen()) == 9  # VGG-19's distinct (map size, kernel) pairs up to block5_conv2


def test_tuning_off_runs_the_keras_model(weights_dir, monkeypatch):
    monkeypatch.setenv("NSTDREAM_CONV_TUNING", "0")
    assert models.vgg19_features(["block1_conv1"], weights=weights_dir).forward is None


def test_networks_with_other_layers_are_not_tuned():
    inputs = keras.Input((None, None, 3))
    hidden = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inputs)
    assert convs.TunedGraph.build(keras.Model(inputs, hidden)) is not None
    for other in (keras.layers.Conv2D(4, 3, padding="same", activation="tanh"), keras.layers.Dropout(0.5),
                  keras.layers.Activation("sigmoid"), keras.layers.DepthwiseConv2D(3, padding="same")):
        assert convs.TunedGraph.build(keras.Model(inputs, other(hidden))) is None, other


def test_random_weights_graph_rewrites_equal_keras_and_only_where_they_are_exact():
    rng = np.random.default_rng(7)
    inputs = keras.Input((None, None, 6))
    head = keras.layers.Conv2D(8, 3, padding="same", use_bias=False)(inputs)
    folded = keras.layers.Activation("relu")(keras.layers.BatchNormalization()(head))  # folded
    biased = keras.layers.BatchNormalization()(keras.layers.Conv2D(8, 1, use_bias=True)(folded))  # kept
    pooled = keras.layers.AveragePooling2D(3, strides=1, padding="same")(folded)
    moved = keras.layers.Conv2D(4, 1, activation="relu")(pooled)  # the pooling moves after it
    shared = keras.layers.AveragePooling2D(3, strides=1, padding="same")(biased)
    kept = keras.layers.Conv2D(4, 1)(shared)  # the pooling is read twice: it stays
    outputs = keras.layers.Concatenate()([moved, kept, shared])
    model = keras.Model(inputs, [outputs, head])  # head is an output too: its norm is not folded
    for layer in model.layers:
        for weight in layer.weights:
            values = rng.normal(size=weight.shape)
            weight.assign(np.abs(values) + 0.1 if "variance" in weight.name else values)
    graph = convs.TunedGraph.build(model)
    plans = {layer.name: plan for layer, plan in graph._plan.items()}
    assert [p.norm is not None for p in plans.values()] == [False, False, False, False]
    assert sum(p.pool_after is not None for p in plans.values()) == 1

    # Without `head` among the outputs, its batch normalisation folds.
    model = keras.Model(inputs, outputs)
    graph = convs.TunedGraph.build(model)
    assert sum(p.norm is not None for p in graph._plan.values()) == 1
    x = tf.constant(rng.normal(size=(2, 11, 9, 6)), tf.float32)
    np.testing.assert_allclose(graph(x)[0].numpy(), model(x, training=False).numpy(), rtol=1e-4, atol=1e-4)


def test_inception_v3_folds_every_batch_norm_and_moves_every_average_pooling(weights_dir):
    graph = models.inception_features(["mixed3", "mixed5"], weights=weights_dir).forward
    plans = list(graph._plan.values())
    assert len(plans) == 50  # Inception v3's convolutions up to mixed5
    assert sum(p.norm is not None for p in plans) == 50
    assert sum(p.pool_after is not None for p in plans) == 5  # the pooling branch of mixed0-2, 4, 5


def _dream_features_and_gradient(fn, image):
    with tf.GradientTape() as tape:
        tape.watch(image)
        feats = [tf.cast(f, tf.float32) for f in fn(image)]
        loss = tf.add_n([tf.reduce_mean(f) for f in feats])  # the dream loss
    return [f.numpy() for f in feats], tape.gradient(loss, image).numpy()


def _cosine(a, b) -> float:
    return float(np.sum(a * b) / (np.linalg.norm(a) * np.linalg.norm(b)))


def _keras_run(extractor):
    return lambda im: extractor.model(extractor.preprocess(im), training=False)


def _tuned_run(extractor):
    return lambda im: [extractor(im)[n] for n in extractor.layers]


def test_tuned_inception_v3_equals_the_keras_model_forward_and_backward(weights_dir, astronaut):
    extractor = models.inception_features(["mixed3", "mixed5"], weights=weights_dir)
    image = tf.constant(astronaut[np.newaxis, 40:263, 60:301])  # 223×241: odd sizes through the stem
    ours, grad = _dream_features_and_gradient(_tuned_run(extractor), image)
    ref, grad_ref = _dream_features_and_gradient(_keras_run(extractor), image)
    for a, b in zip(ours, ref):
        assert np.abs(a - b).max() <= 1e-5 * np.abs(b).max()
    # A ReLU whose input sits within rounding of zero can switch either way, so single gradient
    # entries move by up to a percent of the largest (Keras' own do as much under a 10⁻⁶ change of
    # the input); the gradient as a whole agrees.
    assert _cosine(grad, grad_ref) > 1 - 1e-5
    assert np.abs(grad - grad_ref).mean() <= 3e-3 * np.abs(grad_ref).mean()


def test_tuned_inception_v3_in_bfloat16_is_as_close_to_float32_as_keras_in_bfloat16(weights_dir, astronaut):
    image = tf.constant(astronaut[np.newaxis, 40:263, 60:301])
    ref, grad_ref = _dream_features_and_gradient(
        _keras_run(models.inception_features(["mixed3", "mixed5"], weights=weights_dir)), image)
    bf16 = models.inception_features(["mixed3", "mixed5"], weights=weights_dir, precision="bfloat16")
    assert isinstance(bf16.forward, convs.TunedGraph)
    keras_bf16, keras_grad = _dream_features_and_gradient(_keras_run(bf16), image)
    ours, grad = _dream_features_and_gradient(_tuned_run(bf16), image)
    for a, k, b in zip(ours, keras_bf16, ref):
        assert np.abs(a - b).mean() <= 1.5 * np.abs(k - b).mean()
        assert np.abs(a - b).max() <= 2.5 * np.abs(k - b).max()
    assert _cosine(grad, grad_ref) >= _cosine(keras_grad, grad_ref) - 0.01


def test_a_first_call_inside_a_tf_function_tunes_and_equals_the_keras_model(weights_dir, fresh_choices):
    # Tuning runs eagerly while the function traces: the kernels it times must not be the trace's tensors.
    extractor = models.vgg19_features(["block2_conv1"], weights=weights_dir)
    image = tf.random.stateless_uniform([1, 40, 52, 3], seed=[5, 6])
    ours = tf.function(lambda im: extractor(im)["block2_conv1"])(image).numpy()
    ref = extractor.model(extractor.preprocess(image), training=False).numpy()
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-3 * float(np.abs(ref).max()))
    assert len(convs.chosen()) == 3  # block1_conv1, block1_conv2, block2_conv1


def test_an_extractor_first_built_in_a_later_trace_of_a_function_still_runs(weights_dir, monkeypatch):
    # tf.function forbids new variables after its first trace: the folded kernels are then constants.
    models._load(models._inception, "inception_v3", weights_dir)  # the Keras model exists: only kernels are new
    monkeypatch.setattr(convs, "_KERNELS", convs.weakref.WeakKeyDictionary())
    image = tf.random.stateless_uniform([1, 96, 96, 3], seed=[7, 8])

    @tf.function
    def mean_feature(x, build):
        if build:
            return tf.reduce_mean(models.inception_features(["mixed0"], weights=weights_dir)(x)["mixed0"])
        return tf.reduce_mean(x)

    mean_feature(image, False)
    ours = float(mean_feature(image, True))
    extractor = models.inception_features(["mixed0"], weights=weights_dir)
    ref = float(tf.reduce_mean(extractor.model(extractor.preprocess(image), training=False)))
    assert ours == pytest.approx(ref, rel=1e-5)


def test_a_first_call_in_a_later_trace_of_a_function_tunes_without_new_variables(weights_dir, fresh_choices):
    extractor = models.vgg19_features(["block1_conv2"], weights=weights_dir)
    image = tf.random.stateless_uniform([1, 36, 44, 3], seed=[9, 10])

    @tf.function
    def mean_feature(x, use):
        return tf.reduce_mean(extractor(x)["block1_conv2"]) if use else tf.reduce_mean(x)

    mean_feature(image, False)
    ours = float(mean_feature(image, True))  # tuning times kernels now, inside the second trace
    ref = float(tf.reduce_mean(extractor.model(extractor.preprocess(image), training=False)))
    assert ours == pytest.approx(ref, rel=1e-5)
    assert len(convs.chosen()) == 2
