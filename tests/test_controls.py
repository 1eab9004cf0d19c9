"""Controls beyond the paper: colour preservation, style blends, style scale, spatial masks, guided DeepDream.

Each test measures the property its control promises, on the real networks at 48–80 px with a few
L-BFGS or ascent steps; the CLI tests check the flags and the one-line refusals before any network loads.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nstdream_utils import cli, images, presets
from nstdream_utils.errors import InputError

REPO = Path(__file__).resolve().parents[1]
CONTENT = REPO / "data" / "content" / "chelsea.png"
STYLE = REPO / "data" / "styles" / "spiral.png"
SMALL = dict(size=48, num_steps=10, progress=False)


def load(folder: str, name: str) -> np.ndarray:
    return images.load_image(REPO / "data" / folder / f"{name}.png")


def chroma_distance(image: np.ndarray, content: np.ndarray) -> float:
    """Mean |(Cb, Cr) − (Cb, Cr) of the content| over pixels."""
    return float(np.abs(images.rgb_to_ycbcr(image)[..., 1:] - images.rgb_to_ycbcr(content)[..., 1:]).mean())


def spectral_centroid(image: np.ndarray) -> float:
    """Power-weighted mean radial frequency (cycles per pixel) of the luminance, DC removed.

    A robust proxy for pattern size: larger patterns put their power at lower frequencies. The
    centroid averages over the whole spectrum instead of trusting one peak bin, which is noisy on a
    48 px image.
    """
    y = images.rgb_to_ycbcr(image)[..., 0]
    power = np.abs(np.fft.fft2(y - y.mean())) ** 2
    fy, fx = np.meshgrid(np.fft.fftfreq(y.shape[0]), np.fft.fftfreq(y.shape[1]), indexing="ij")
    return float((np.hypot(fy, fx) * power).sum() / power.sum())


# ------------------------------------------------------------------------------ library
@pytest.mark.needs_weights
def test_luminance_keeps_the_content_colours(weights_dir):
    from nstdream_utils import nst

    content, style = load("content", "astronaut"), load("styles", "spiral")
    plain = nst.style_transfer(content, style, **SMALL)
    kept = nst.style_transfer(content, style, preserve_color="luminance", **SMALL)
    small = nst.prepare_images(content, style, plain.config)[0]
    d_plain, d_kept = chroma_distance(plain.image, small), chroma_distance(kept.image, small)
    print(f"chroma distance to the content: plain {d_plain:.4f}, luminance {d_kept:.4f}")
    assert d_kept < 0.01 < d_plain and d_kept < d_plain / 3


def test_histogram_matching_moves_the_style_colours_to_the_contents():
    from nstdream_utils import nst

    content, style = load("content", "astronaut"), load("styles", "spiral")
    cfg = presets.QUICK.nst.replace(size=64, preserve_color="histogram")
    small, matched = nst.prepare_images(content, style, cfg)
    raw = nst.prepare_images(content, style, presets.QUICK.nst.replace(size=64))[1]

    def stats_error(image):  # largest error of the RGB mean and covariance against the content's
        x, c = image.reshape(-1, 3), small.reshape(-1, 3)
        return max(np.abs(x.mean(0) - c.mean(0)).max(), np.abs(np.cov(x.T) - np.cov(c.T)).max())

    print(f"colour statistics error: style {stats_error(raw):.4f}, matched {stats_error(matched):.4f}")
    assert stats_error(matched) < stats_error(raw) / 3


@pytest.mark.slow
@pytest.mark.needs_weights
def test_a_styles_loss_falls_as_its_weight_rises(weights_dir):
    from nstdream_utils import nst

    content, a, b = load("content", "chelsea"), load("styles", "spiral"), load("styles", "checkerboard")
    losses = {}
    for w in (0.2, 0.8):
        result = nst.style_transfer(content, [a, b], style_blend=(w, 1 - w), **SMALL)
        cfg = result.config
        small, (sa, sb) = nst.prepare_images(content, [a, b], cfg)
        x = result.image[np.newaxis] * cfg.pixel_scale
        losses[w] = [float(nst.NSTLoss(small, s, cfg.replace(style_blend=(1.0,)))(x)["style"]) for s in (sa, sb)]
    print(f"style loss to (A, B): w_A=0.2 {losses[0.2]}, w_A=0.8 {losses[0.8]}")
    assert losses[0.8][0] < losses[0.2][0] and losses[0.8][1] > losses[0.2][1]


@pytest.mark.slow
@pytest.mark.needs_weights
def test_a_larger_style_scale_gives_larger_patterns(weights_dir):
    from nstdream_utils import nst

    content, style = load("content", "chelsea"), load("styles", "checkerboard")
    centroid = {f: spectral_centroid(nst.style_transfer(content, style, style_scale=f,
                                                        **{**SMALL, "size": 64}).image) for f in (0.5, 2.0)}
    print(f"spectral centroid (cycles/px): scale 0.5 {centroid[0.5]:.4f}, scale 2 {centroid[2.0]:.4f}")
    assert centroid[2.0] < centroid[0.5]


@pytest.mark.needs_weights
def test_outside_the_mask_the_content_stays(weights_dir):
    from nstdream_utils import nst

    content, style = load("content", "chelsea"), load("styles", "spiral")
    mask = np.zeros((30, 40), np.float32)
    mask[:, 20:] = 1.0  # right half styled
    result = nst.style_transfer(content, style, mask=mask, **SMALL)
    small = nst.prepare_images(content, style, result.config)[0]
    change = np.abs(result.image - small).mean(axis=-1)
    w = change.shape[1]
    inside, outside = change[:, w // 2 + 4:].mean(), change[:, :w // 2 - 4].mean()
    print(f"mean |output − content|: inside {inside:.4f}, outside {outside:.4f}")
    assert outside < inside / 3


@pytest.mark.needs_weights
def test_a_guided_dream_moves_towards_the_guide(weights_dir):
    from nstdream_utils import dream, models

    image, guide = load("content", "chelsea"), load("styles", "spiral")
    cfg = dream.resolve_config("quick", size=80, num_steps=10, layers=("mixed3",))
    extractor = models.inception_features(cfg.layers)

    def mean_feature(x):
        return extractor(dream.prepare_image(x, cfg)[np.newaxis])["mixed3"].numpy().mean(axis=(0, 1, 2))

    def cosine(u, v):
        return float(u @ v / np.linalg.norm(u) / np.linalg.norm(v))

    target = mean_feature(guide)
    plain = dream.deep_dream(image, config=cfg, progress=False).image
    guided = dream.deep_dream(image, config=cfg, guide=guide, progress=False).image
    c_plain, c_guided = cosine(mean_feature(plain), target), cosine(mean_feature(guided), target)
    print(f"cosine to the guide's mean mixed3 feature: start {cosine(mean_feature(image), target):.3f}, "
          f"plain {c_plain:.3f}, guided {c_guided:.3f}")
    assert c_guided > c_plain


# ------------------------------------------------------------------------------ command line
def run_cli(argv, capsys) -> tuple[int, str]:
    capsys.readouterr()
    code = cli.main([str(a) for a in argv])
    return code, capsys.readouterr().err


@pytest.fixture
def masks(tmp_path) -> dict[str, Path]:
    """Mask PNGs: half (right half white, 30 × 40, another size than the output), black, white."""
    half = np.zeros((30, 40, 3), np.float32)
    half[:, 20:] = 1.0
    out = {"half": half, "black": np.zeros((8, 8, 3), np.float32), "white": np.ones((8, 8, 3), np.float32)}
    for name, image in out.items():
        images.save_image(image, tmp_path / f"{name}.png")
    return {name: tmp_path / f"{name}.png" for name in out}


@pytest.fixture
def no_network(monkeypatch):
    """Fail a test that would get as far as loading a network."""
    def refuse(names):
        raise AssertionError(f"{names} would load before the refusal")
    monkeypatch.setattr(cli, "_check_weights", refuse)


@pytest.mark.parametrize("extra, line", [
    (["--style-weights", "0.7,x"],
     "error: --style-weights: expected numbers separated by commas, got '0.7,x' — see `nstdream style --help`"),
    (["--style-weights", "-1"],
     "error: style_blend: style weights must be numbers ≥ 0, not all 0, got (-1.0,) — pass e.g. 0.7,0.3"),
    (["--style-scale", "0"], "error: --style-scale: must be a finite number > 0, got 0 — see `nstdream style --help`"),
    (["--preserve-color", "hue"],
     "error: --preserve-color: unknown choice 'hue' — choose one of luminance, histogram"),
])
def test_style_controls_are_refused_in_one_line_before_any_network(extra, line, no_network, tmp_path, capsys):
    code, err = run_cli(["style", CONTENT, STYLE, "-o", tmp_path / "o.png", *extra], capsys)
    assert code == cli.EXIT_ERROR
    assert err.strip() == line


@pytest.mark.parametrize("extra, line", [
    (["--style", STYLE, "--style-weights", "0.7"],
     "error: style_blend: 1 weights for 2 style images — give one weight per style image (2)"),
    (["--mask", "MASK:black"],
     "error: mask: the image is all black — paint white where the style goes and black where the content stays"),
    (["--mask", "MASK:white"],
     "error: mask: the image is all white — paint white where the style goes and black where the content stays"),
    (["--mask", "MASK:half", "--levels", "2"],
     "error: levels: mask with levels=2: coarse to fine takes none of these — run one level (levels=1) with these, "
     "or drop them"),
])
def test_the_library_refuses_style_controls_in_one_line(extra, line, masks, tmp_path, capsys):
    extra = [str(masks[a[5:]]) if str(a).startswith("MASK:") else a for a in extra]
    code, err = run_cli(["style", CONTENT, STYLE, "-o", tmp_path / "o.png", *extra], capsys)
    assert code == cli.EXIT_ERROR
    assert err.strip() == line


@pytest.mark.parametrize("argv", [
    ["style", CONTENT, STYLE, "--mask", "missing.png"],
    ["style", CONTENT, STYLE, "--style", "missing.png"],
    ["dream", CONTENT, "--guide", "missing.png"],
])
def test_a_missing_control_image_is_refused_in_one_line(argv, no_network, tmp_path, capsys):
    code, err = run_cli([*argv, "-o", tmp_path / "o.png"], capsys)
    lines = err.strip().splitlines()
    assert code == cli.EXIT_ERROR and len(lines) == 1
    assert lines[0].startswith("error: missing.png") and " — " in lines[0], err


def test_the_library_refuses_bad_controls_before_any_network():
    from nstdream_utils import nst

    image = np.zeros((40, 40, 3), np.float32)
    with pytest.raises(InputError, match="2 weights for 1 style images"):
        nst.style_transfer(image, image, style_blend=(0.5, 0.5), weights="/nonexistent")
    with pytest.raises(InputError, match="style_scale must be a positive number"):
        nst.style_transfer(image, image, style_scale=-1.0, weights="/nonexistent")
    with pytest.raises(InputError, match="all black"):
        nst.style_transfer(image, image, mask=np.zeros((5, 5)), weights="/nonexistent")
    with pytest.raises(InputError, match="unknown preserve_color"):
        presets.validate_nst(presets.NSTConfig(preserve_color="hue"))


@pytest.mark.needs_weights
def test_style_flags_run_together(weights_dir, masks, tmp_path, capsys):
    out = tmp_path / "out.png"
    code, err = run_cli(["style", CONTENT, STYLE, "--style", REPO / "data" / "styles" / "checkerboard.png",
                         "--style-weights", "0.7,0.3", "--style-scale", "0.75", "--preserve-color", "luminance",
                         "--mask", masks["half"], "-o", out, "--size", "48", "--steps", "2", "--no-progress"], capsys)
    assert code == 0, err
    written = images.load_image(out)
    assert written.shape == (32, 48, 3)
    content = images.resize(images.load_image(CONTENT), exact=(32, 48))
    assert chroma_distance(written, content) < 0.01  # luminance only: the content's colours


@pytest.mark.needs_weights
def test_dream_guide_flag_runs(weights_dir, tmp_path, capsys):
    out = tmp_path / "out.png"
    code, err = run_cli(["dream", CONTENT, "--guide", STYLE, "-o", out, "--size", "75", "--steps", "2",
                         "--no-progress"], capsys)
    assert code == 0, err
    assert images.load_image(out).shape[1] == 112  # longest side 75 → upscaled so the short side is 75
