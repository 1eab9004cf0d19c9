"""models: real VGG-19 / Inception v3 weights, layer names, and a NumPy check of block1_conv1."""

from __future__ import annotations

import platform
import warnings

import h5py
import numpy as np
import pytest

from nstdream_utils import device, errors, models, presets, weights


def test_vgg19_file_is_the_verified_keras_file(weights_dir):
    path = weights.resolve("vgg19")
    assert weights.md5(path) == "253f8cb515780f3b799900260a226db6"


def test_block1_conv1_matches_numpy_convolution(weights_dir, astronaut):
    from nstdream_utils import images

    image = images.resize(astronaut, exact=(16, 16))
    got = models.vgg19_features(["block1_conv1"])(image[None])["block1_conv1"].numpy()[0]
    with h5py.File(weights.resolve("vgg19"), "r") as f:
        group = f["block1_conv1"]
        names = [n.decode() if isinstance(n, bytes) else n for n in group.attrs["weight_names"]]
        kernel, bias = (np.asarray(group[n]) for n in names)  # kernel [3, 3, 3, 64] (HWIO), bias [64]
    x = image.astype(np.float64) * 255.0
    x = x[..., ::-1] - np.array([103.939, 116.779, 123.68])  # caffe: BGR minus ImageNet's mean BGR pixel
    padded = np.pad(x, ((1, 1), (1, 1), (0, 0)))
    expected = np.zeros((16, 16, 64))
    for dy in range(3):
        for dx in range(3):
            expected += padded[dy:dy + 16, dx:dx + 16] @ kernel[dy, dx]
    expected = np.maximum(expected + bias, 0.0)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-2)


def _h5_weights(path, layer: str) -> list[np.ndarray]:
    with h5py.File(path, "r") as f:
        group = f[layer]
        return [np.asarray(group[n.decode() if isinstance(n, bytes) else n]) for n in group.attrs["weight_names"]]


def test_inception_first_layer_matches_numpy_conv_batch_norm_relu(weights_dir, astronaut):
    """Inception v3's stem (3×3 conv, stride 2, 'valid', no bias → batch norm without scale, ε 1e-3 → ReLU)."""
    from nstdream_utils import images

    size = 21  # → (21 − 3) / 2 + 1 = 10 positions per side
    image = images.resize(astronaut, exact=(size, size))
    got = _inception_stem()(models.inception_preprocess(image[None])).numpy()[0]
    path = weights.resolve("inception_v3")
    (kernel,) = _h5_weights(path, "conv2d")  # [3, 3, 3, 32] (HWIO)
    beta, mean, variance = _h5_weights(path, "batch_normalization")  # [32] each
    x = image.astype(np.float64) * 2.0 - 1.0  # [0, 1] → [-1, 1]
    conv = np.zeros((10, 10, 32))
    for dy in range(3):
        for dx in range(3):
            conv += x[dy:dy + 19:2, dx:dx + 19:2] @ kernel[dy, dx]
    expected = np.maximum((conv - mean) / np.sqrt(variance + 1e-3) + beta, 0.0)
    assert got.shape == expected.shape == (10, 10, 32)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def _inception_stem():
    """The Keras model up to the first ReLU (Keras numbers layer names per process, so found by type)."""
    import keras

    base = models._load("inception_v3", None)
    conv, norm, relu = base.layers[1:4]
    assert (type(conv), type(norm), type(relu)) == (keras.layers.Conv2D, keras.layers.BatchNormalization,
                                                    keras.layers.Activation)
    assert not conv.use_bias and not norm.scale and norm.epsilon == 1e-3
    return keras.Model(base.input, relu.output)


def test_vgg19_returns_named_layers_with_shapes(weights_dir):
    extractor = models.vgg19_features(["block1_conv1", "block5_conv2"])
    out = extractor(np.zeros((1, 64, 48, 3), np.float32))
    assert list(out) == ["block1_conv1", "block5_conv2"]
    assert out["block1_conv1"].shape == (1, 64, 48, 64)
    assert out["block5_conv2"].shape == (1, 4, 3, 512)


def test_inception_returns_mixed_layers(weights_dir):
    out = models.inception_features(["mixed3", "mixed5"])(np.full((1, 299, 299, 3), 0.5, np.float32))
    assert out["mixed3"].shape == (1, 17, 17, 768) and out["mixed5"].shape == (1, 17, 17, 768)
    assert np.isfinite(out["mixed5"].numpy()).all() and float(out["mixed5"].numpy().mean()) > 0


def test_unknown_layer_lists_valid_ones():
    with pytest.raises(errors.InputError, match="did you mean 'block5_conv") as info:
        models.vgg19_features(["block5_conv9"])
    assert "block1_conv1" in str(info.value)
    with pytest.raises(errors.InputError, match="mixed3"):
        models.inception_features(["mixed33"])


def test_layer_table_has_16_convs_and_5_pools(weights_dir):
    rows = models.layer_table("vgg19")
    assert sum(r["type"] == "Conv2D" for r in rows) == 16
    assert sum(r["type"] == "MaxPooling2D" for r in rows) == 5
    assert {r["paper_name"] for r in rows if r["name"] == "block5_conv2"} == {"conv5_2"}
    assert len(presets.VGG19_LAYERS) == 21


def test_bfloat16_features_are_float32_and_close_to_float32(weights_dir, astronaut):
    import keras

    from nstdream_utils import images

    image = images.resize(astronaut, exact=(64, 64))[None]
    before = keras.mixed_precision.global_policy().name
    exact = models.vgg19_features(["block1_conv1", "block5_conv2"], precision="float32")
    bf16 = models.vgg19_features(["block1_conv1", "block5_conv2"], precision="bfloat16")
    assert keras.mixed_precision.global_policy().name == before  # building did not change the global policy
    assert bf16.model.get_layer("block1_conv1").compute_dtype == "bfloat16"
    assert exact.model.get_layer("block1_conv1").compute_dtype == "float32"
    want, got = exact(image), bf16(image)
    for name in want:
        assert got[name].dtype == "float32"
        scale = float(np.abs(want[name].numpy()).max())
        error = float(np.abs(got[name].numpy() - want[name].numpy()).max()) / scale
        assert 0 < error < 0.05, (name, error)  # bfloat16 keeps ~3 significant digits: close, not equal


def test_bfloat16_inception_is_close_to_float32(weights_dir, astronaut):
    from nstdream_utils import images

    image = images.resize(astronaut, exact=(96, 96))[None]
    want = models.inception_features(["mixed3", "mixed5"], precision="float32")(image)
    bf16 = models.inception_features(["mixed3", "mixed5"], precision="bfloat16")
    assert bf16.model.get_layer("mixed5").compute_dtype == "bfloat16"
    got = bf16(image)
    for name in want:  # DeepDream's loss is the mean activation: compare means
        exact, fast = float(want[name].numpy().mean()), float(got[name].numpy().mean())
        assert exact > 0 and fast != exact and abs(fast - exact) < 0.02 * exact, (name, fast, exact)


def test_unknown_precision_is_an_input_error():
    with pytest.raises(errors.InputError, match="unknown precision 'half'") as info:
        models.vgg19_features(["block1_conv1"], precision="half")
    assert "bfloat16" in info.value.fix
    with pytest.raises(errors.InputError, match="unknown precision"):
        models.inception_features(["mixed3"], precision=["bfloat16"])


AVX2_ONLY = frozenset({"fpu", "sse2", "avx", "avx2", "fma", "avx512f"})  # AVX-512 without its BF16/FP16 parts


def test_slow_precision_names_the_missing_instructions():
    reason = device.slow_precision("bfloat16", flags=AVX2_ONLY, gpu=False)
    assert reason.startswith("this CPU has no bfloat16 instructions (avx512_bf16 or amx_bf16)")
    assert f"about {device.CPU_EMULATION_COST['bfloat16']:g}× the CPU time of float32" in reason
    assert "float16 instructions (amx_fp16), so TensorFlow emulates" in device.slow_precision(
        "float16", flags=AVX2_ONLY, gpu=False)
    assert "(amx_fp16), so TensorFlow emulates" in device.slow_precision(
        "float16", flags=AVX2_ONLY | {"avx512_fp16"}, gpu=False)  # AVX512-FP16 alone: slower than float32
    assert device.slow_precision("float16", flags=AVX2_ONLY | {"avx512_fp16", "amx_fp16"}, gpu=False) is None
    for native in ("avx512_bf16", "amx_bf16"):
        assert device.slow_precision("bfloat16", flags=AVX2_ONLY | {native}, gpu=False) is None
        assert device.slow_precision("float16", flags=AVX2_ONLY | {native}, gpu=False) is not None
    assert device.slow_precision("bfloat16", flags=AVX2_ONLY, gpu=True) is None  # a GPU computes it
    assert device.slow_precision("float32", flags=AVX2_ONLY, gpu=False) is None
    assert device.slow_precision(None, flags=AVX2_ONLY, gpu=False) is None
    assert device.slow_precision("bfloat16", flags=frozenset(), gpu=False) is None  # flags unknown: no claim


@pytest.mark.skipif(platform.system() != "Linux" or platform.machine() != "x86_64", reason="reads x86 /proc/cpuinfo")
def test_cpu_flags_reads_this_cpu():
    flags = device.cpu_flags()
    assert {"sse2", "fpu"} <= flags  # every x86-64 CPU has them
    assert all(f == f.strip() and f for f in flags)


@pytest.fixture
def emulating_cpu(monkeypatch):
    """A CPU without bfloat16/float16 instructions and no GPU, and no precision warned about yet."""
    monkeypatch.setattr(models, "_WARNED", set())
    monkeypatch.setattr(device, "cpu_flags", lambda: AVX2_ONLY)
    monkeypatch.setattr(device, "is_gpu", lambda: False)
    return monkeypatch


def test_emulated_precision_warns_once_and_still_runs(emulating_cpu):
    with pytest.warns(errors.PerformanceWarning, match=r"^precision bfloat16: this CPU has no bfloat16 "
                      r"instructions .* use float32 \(the default\) on this machine$"):
        assert models.check_precision("bfloat16") == "mixed_bfloat16"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any further warning would fail here
        assert models.check_precision("bfloat16") == "mixed_bfloat16"  # once per process
        assert models.check_precision("float32") == "float32"
        assert models.check_precision(None) is None
    with pytest.warns(errors.PerformanceWarning, match="^precision float16: "):
        models.check_precision("float16")


def test_native_precision_does_not_warn(emulating_cpu):
    emulating_cpu.setattr(device, "cpu_flags", lambda: AVX2_ONLY | {"avx512_bf16", "amx_fp16"})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert models.check_precision("bfloat16") == "mixed_bfloat16"
        assert models.check_precision("float16") == "mixed_float16"


def test_report_says_which_16bit_precisions_are_slower_than_float32(monkeypatch):
    for extra, expected in (({"avx512_bf16", "avx512_fp16"}, "bfloat16 native, float16 emulated (slower than float32)"),
                            (set(), "bfloat16 emulated (slower than float32), float16 emulated (slower than float32)"),
                            ({"amx_bf16", "amx_fp16"}, "bfloat16 native, float16 native")):
        monkeypatch.setattr(device, "cpu_flags", lambda extra=extra: AVX2_ONLY | extra)
        assert device.report()["cpu_16bit"] == expected
