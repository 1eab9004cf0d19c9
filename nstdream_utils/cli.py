"""The ``nstdream`` command: argument parsing and error messages only; the work is in the library.

Paths, parameters and output folders are checked before TensorFlow is imported, so a mistake fails
in well under a second with one line ``error: <file>: <what is wrong> — <how to fix>`` and exit code
2 (the traceback only with ``--debug``). A run whose loss becomes NaN/Inf writes its last finite
image and exits 1. Ctrl-C writes the current image and the metrics so far, then exits 130; a second
Ctrl-C exits at once. Every file is written atomically. See ``docs/robustness.md``.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import os
import re
import signal
import sys
import threading
import warnings
from pathlib import Path

from . import files, images, presets
from .errors import InputError, NonFiniteLossError, NstdreamError, PerformanceWarning

EXIT_OK, EXIT_NONFINITE, EXIT_ERROR, EXIT_INTERRUPTED = 0, 1, 2, 130
#: Exit code for an unexpected error (a bug or an environment failure), as for a NaN run.
EXIT_FAILURE = 1

# An example value per option, for the "how to fix" half of an argparse error.
_EXAMPLES = {
    "--size": "--size 256", "--steps": "--steps 100", "--lr": "--lr 0.01", "--seed": "--seed 0",
    "--octaves": "--octaves 3", "--layers": "--layers mixed3,mixed5", "--optimizer": "--optimizer adam",
    "--preset": "--preset quick", "--tile-size": "--tile-size 512", "-o/--output": "-o out.png",
    "--metrics": "--metrics run.json", "--nst-steps": "--nst-steps 100", "--dream-steps": "--dream-steps 100",
    "--dream-size": "--dream-size 299", "--dream-lr": "--dream-lr 0.01", "--log-every": "--log-every 10",
    "--stylized": "--stylized stylized.png", "--workers": "--workers 2", "--retries": "--retries 1",
    "--levels": "--levels 3", "--max-runs": "--max-runs 20000", "--level-steps": "--level-steps 200,100,100",
    "--style-weights": "--style-weights 0.7,0.3", "--style-scale": "--style-scale 0.5",
}

# Library parameter names -> the option that sets them, for errors raised by the library.
_OPTION_NAMES = {"layers": "--layers", "levels": "--levels", "steps_per_level": "--level-steps",
                 "tile_size": "--tile-size", "style_blend": "--style-weights", "style_scale": "--style-scale",
                 "mask": "--mask"}

#: Largest image side (px) that ``--size``, ``--dream-size`` and ``--tile-size`` accept; the environment
#: variable ``NSTDREAM_MAX_SIZE`` overrides it. NST at 4096 px already needs tens of GB.
MAX_SIZE = 4096
MAX_SIZE_VAR = "NSTDREAM_MAX_SIZE"


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line ``error: <arg>: <what> — <fix>``, exit code 2."""

    def error(self, message: str):  # type: ignore[override]
        where, what, fix = self.prog, message, f"see `{self.prog} --help`"
        if match := re.fullmatch(r"argument (\S+): (.*)", message, flags=re.S):
            where, what = match[1], match[2]
            if where == "command":
                where = self.prog
            if choice := re.fullmatch(r"invalid choice: (.*) \(choose from (.*)\)", what, flags=re.S):
                what = f"unknown choice {choice[1]}"
                fix = f"choose one of {choice[2].replace(chr(39), '')}"
            elif where in _EXAMPLES:
                fix = f"pass e.g. {_EXAMPLES[where]}"
        elif match := re.fullmatch(r"the following arguments are required: (.*)", message, flags=re.S):
            where, what = match[1], "required but missing"
            fix = f"give {'it' if ',' not in where else 'them'}; see `{self.prog} --help`"
            if where == "command":
                where, what = self.prog, "no command given"
                fix = "give one of style, dream, pipeline, weights, info, data, batch; see `nstdream --help`"
        elif match := re.fullmatch(r"unrecognized arguments: (.*)", message, flags=re.S):
            where, what = match[1], "unknown option or extra argument"
        _print_error(f"{where}: {what} — {fix}")
        self.exit(EXIT_ERROR)


def _print_error(line: str) -> None:
    print(f"error: {' '.join(line.split())}", file=sys.stderr)


def _show_warning(message, category, filename, lineno, file=None, line=None, *, default=None):
    """Print the library's :class:`PerformanceWarning` as one line ``warning: --<option> …``; others as usual."""
    if issubclass(category, PerformanceWarning):
        print(f"warning: --{' '.join(str(message).split())}", file=sys.stderr)
    elif default is not None:
        default(message, category, filename, lineno, file, line)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
    return value


def _nonnegative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be ≥ 0, got {value}")
    return value


def _seed(text: str) -> int:
    value = _nonnegative_int(text)
    if value >= 2**32:
        raise argparse.ArgumentTypeError(f"must be below 2**32, got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value


def _weight_list(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers separated by commas, got {text!r}") from None


def _step_list(text: str) -> tuple[int, ...]:
    return tuple(_positive_int(part.strip()) for part in text.split(","))


def _layers(text: str) -> tuple[str, ...]:
    return tuple(name.strip() for name in text.split(",") if name.strip())


def _debug_flag(p: argparse.ArgumentParser) -> None:
    # Also accepted after the command (``nstdream style ... --debug``); SUPPRESS keeps the global value.
    p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks")


def _common(p: argparse.ArgumentParser, *, nst: bool, dream: bool) -> None:
    p.add_argument("-o", "--output", required=True, help="output PNG")
    p.add_argument("--preset", default="quick", help="paper, tf-tutorial or quick (default)")
    p.add_argument("--size", type=_positive_int,
                   help="longest side in pixels, keeping the aspect ratio (default: the preset's size and "
                        "shape; NST size for pipeline)")
    p.add_argument("--square", action="store_true", help="resize to SIZE × SIZE (the paper's square images)")
    p.add_argument("--steps", type=_positive_int, help="iterations (both stages for pipeline)")
    p.add_argument("--lr", type=_positive_float, help="learning rate (NST) / step size (dream)")
    p.add_argument("--seed", type=_seed, default=0)
    p.add_argument("--metrics", help="write metrics JSON here")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--log-every", type=_nonnegative_int, default=0,
                   help="print `step N | loss x` every N steps (default 0: never)")
    p.add_argument("--precision", choices=("float32", "bfloat16", "float16"),
                   help="what the networks compute in (default: float32; float16 on tensor-core GPUs); "
                        "bfloat16 is faster on CPUs with AVX512-BF16 or AMX")
    if nst:
        p.add_argument("--optimizer", choices=presets.OPTIMIZERS,
                       help="NST optimiser (default: the preset's; lbfgs with --levels)")
        p.add_argument("--levels", type=_positive_int, default=1,
                       help="coarse-to-fine NST: optimise at 1/2^(N-1) of the size first, doubling up to full "
                            "size, each level starting from the last (default 1: full size only)")
        p.add_argument("--level-steps", type=_step_list,
                       help="with --levels N: steps per level, coarsest first, e.g. 200,100,100 "
                            "(default: 100 at full size, 100 at half, doubling at each coarser level)")
        p.add_argument("--style", action="append", default=[], dest="more_styles", metavar="IMAGE",
                       help="another style image to blend with STYLE (repeatable)")
        p.add_argument("--style-weights", type=_weight_list,
                       help="one weight per style image, STYLE first, e.g. 0.7,0.3 (default: 1 each)")
        p.add_argument("--style-scale", type=_positive_float,
                       help="style image at F × the output size: F > 1 larger patterns, F < 1 smaller (default 1)")
        p.add_argument("--preserve-color", choices=presets.PRESERVE_COLORS,
                       help="keep the content's colours: luminance-only transfer, or the style's colours matched")
        p.add_argument("--mask", help="image, white where the style goes, black where the content stays")
    if dream:
        p.add_argument("--layers", type=_layers, help="Inception layers, e.g. mixed3,mixed5")
        p.add_argument("--octaves", type=_positive_int, help="number of octaves ending at full size")
        p.add_argument("--guide", help="guide image: dream towards its features instead of the mean activation")
    if dream and not nst:
        p.add_argument("--tile-size", type=_nonnegative_int, help="dream tile by tile above this size (0: never)")
    if nst and dream:
        p.add_argument("--nst-steps", type=_positive_int)
        p.add_argument("--dream-steps", type=_positive_int)
        p.add_argument("--dream-size", type=_positive_int, help="DeepDream longest side")
        p.add_argument("--dream-lr", type=_positive_float, help="DeepDream step size")
        p.add_argument("--stylized", help="where to write the NST image (default: OUTPUT_stylized.png)")
    _debug_flag(p)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="nstdream", description=__doc__.split("\n")[0])
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("style", help="neural style transfer")
    p.add_argument("content"), p.add_argument("style")
    _common(p, nst=True, dream=False)
    p = sub.add_parser("dream", help="DeepDream (gradient ascent)")
    p.add_argument("image")
    _common(p, nst=False, dream=True)
    p = sub.add_parser("pipeline", help="NST, then resize, then DeepDream (the paper's pipeline)")
    p.add_argument("content"), p.add_argument("style")
    _common(p, nst=True, dream=True)
    p = sub.add_parser("weights", help="check or fetch the ImageNet weight files")
    p.add_argument("action", choices=["check", "fetch"])
    p.add_argument("--dir", help="folder to check / to fetch into (default: the Keras cache)")
    _debug_flag(p)
    p = sub.add_parser("info", help="versions, devices, weights and presets")
    _debug_flag(p)
    p = sub.add_parser("data", help="regenerate the bundled images")
    p.add_argument("what", choices=["styles", "content"])
    p.add_argument("--out", help="folder (default: data/styles or data/content)")
    _debug_flag(p)
    p = sub.add_parser("batch", help="run a grid of notebook runs (papermill on Dask)")
    p.add_argument("grid", help="grid YAML file")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--workers", type=_positive_int,
                   help="processes of the local Dask cluster (default: 1 on a CPU, one per GPU)")
    p.add_argument("--scheduler", help="Dask scheduler address, e.g. tcp://host:8786")
    p.add_argument("--retries", type=_nonnegative_int, default=0, help="rerun a failing run up to N times")
    p.add_argument("--dry-run", action="store_true", help="list the runs, run nothing")
    p.add_argument("--max-runs", type=_positive_int, help="refuse a grid of more runs than this (default 10000)")
    _debug_flag(p)
    parser.subcommands = sub.choices  # name -> subparser, for errors found after parsing
    return parser


# ---------------------------------------------------------------- checks before TensorFlow loads
def _stylized_path(args) -> str:
    output = Path(args.output)
    return args.stylized or str(output.with_name(output.stem + "_stylized.png"))


def _configs(args) -> tuple[presets.Preset, presets.NSTConfig, presets.DreamConfig]:
    """The preset with the command line's sizes, steps, rates and layers applied, validated.

    ``--size`` is the longest side with the aspect ratio kept (``square=False``) unless ``--square``;
    without either, the preset's own size and shape.
    """
    preset = presets.get_preset(args.preset)
    square = True if args.square else None
    nst_cfg, dream_cfg = preset.nst, preset.dream
    if args.command in ("style", "pipeline"):
        _check_level_options(args)
        nst_cfg = presets.validate_nst(nst_cfg.replace(
            size=args.size, square=square if square or args.size is None else False,
            num_steps=getattr(args, "nst_steps", None) or args.steps,
            optimizer=args.optimizer or ("lbfgs" if args.levels > 1 else None), learning_rate=args.lr,
            preserve_color=args.preserve_color, style_blend=args.style_weights, style_scale=args.style_scale))
        presets.check_styles(nst_cfg, 1 + len(args.more_styles))
    if args.command in ("dream", "pipeline"):
        dream_size = args.size if args.command == "dream" else args.dream_size
        dream_lr = args.lr if args.command == "dream" else args.dream_lr
        dream_cfg = presets.validate_dream(dream_cfg.replace(
            size=dream_size, square=square if square or dream_size is None else False,
            layers=args.layers, step_size=dream_lr,
            num_steps=getattr(args, "dream_steps", None) or args.steps,
            tile_size=getattr(args, "tile_size", None)))
    return dataclasses.replace(preset, nst=nst_cfg, dream=dream_cfg), nst_cfg, dream_cfg


def _check_level_options(args) -> None:
    """``--levels`` and ``--level-steps`` agree with each other and with ``--steps``/``--nst-steps``."""
    controls = [flag for flag, value in (("--style", args.more_styles), ("--style-weights", args.style_weights),
                                         ("--style-scale", args.style_scale), ("--preserve-color", args.preserve_color),
                                         ("--mask", args.mask)) if value]
    if args.levels > 1 and controls:
        raise InputError(f"is not combined with --levels {args.levels} yet", where=controls[0],
                         fix="drop --levels (one level), or the option")
    if args.levels == 1:
        if args.level_steps is not None:
            raise InputError("needs --levels 2 or more (it gives the steps of each level)",
                             where="--level-steps", fix=f"add --levels {len(args.level_steps)}, or use --steps")
        return
    steps_option = "--nst-steps" if getattr(args, "nst_steps", None) else "--steps" if args.steps else None
    if steps_option:
        fix = "give the steps of each level, coarsest first, with --level-steps"
        if args.command == "pipeline":
            fix += ", and DeepDream's with --dream-steps"
        raise InputError(f"counts the NST steps of a one-level run; with --levels {args.levels} each level has "
                         "its own count", where=steps_option, fix=fix)
    if args.level_steps is not None and len(args.level_steps) != args.levels:
        example = ",".join(str(n) for n in presets.default_steps(args.levels))
        raise InputError(f"has {len(args.level_steps)} step counts for --levels {args.levels}",
                         where="--level-steps", fix=f"give {args.levels} counts, coarsest first, e.g. {example}")


def _check_level_shapes(args, nst_cfg: presets.NSTConfig) -> None:
    """Refuse ``--levels`` whose coarsest level would be too small, from the content image's header."""
    if args.levels == 1:
        return
    info = images.image_info(args.content)
    height, width = (info["width"], info["height"]) if info["orientation"] in (5, 6, 7, 8) else \
        (info["height"], info["width"])
    try:
        presets.level_shapes(presets.full_shape((height, width), nst_cfg), args.levels)
    except InputError as exc:
        raise InputError(exc.what, where="--levels", fix=f"use fewer levels or a larger --size "
                         f"(the coarsest side must be at least {presets.MIN_LEVEL_SIDE} px)") from None


def _max_size() -> int:
    text = os.environ.get(MAX_SIZE_VAR, "")
    try:
        return int(text) if text else MAX_SIZE
    except ValueError:
        raise InputError(f"must be a whole number of pixels, got {text!r}", where=MAX_SIZE_VAR,
                         fix=f"unset it (default {MAX_SIZE}) or set e.g. {MAX_SIZE_VAR}=8192") from None


def _check_sizes(args) -> None:
    """Refuse an image side too large for memory before anything loads (``MAX_SIZE``, overridable)."""
    limit = _max_size()
    for option in ("--size", "--dream-size", "--tile-size"):
        value = getattr(args, option[2:].replace("-", "_"), None)
        if value is not None and value > limit:
            fix = f"use {option} {limit} or less"
            if option == "--size" and args.command != "dream":
                fix += "; --levels N reaches a given size with less compute"
            elif option == "--size":
                fix += "; --tile-size dreams a large image tile by tile"
            raise InputError(f"{value} px is over the largest side accepted, {limit} px (larger images do not fit "
                             "in memory)", where=option, fix=f"{fix}; to allow more, set {MAX_SIZE_VAR}")


def _inputs(args) -> set[str]:
    """The real paths of the command's input images."""
    paths = [getattr(args, attr, None) for attr in ("content", "style", "image", "mask", "guide")]
    return {os.path.realpath(path) for path in paths + getattr(args, "more_styles", []) if path is not None}


def _check_inputs(args) -> presets.Preset:
    """Check image paths, output paths and parameters (milliseconds; no TensorFlow)."""
    for path in [getattr(args, attr, None) for attr in ("content", "style", "image", "mask", "guide")] \
            + getattr(args, "more_styles", []):
        if path is not None:
            images.validate_image_path(path)
    _check_sizes(args)
    files.check_output_path(args.output, suffixes=(".png",))
    if args.metrics:
        files.check_output_path(args.metrics, suffixes=(".json",))
    if args.command == "pipeline":
        stylized = files.check_output_path(_stylized_path(args), suffixes=(".png",))
        if os.path.abspath(stylized) == os.path.abspath(args.output):
            raise InputError("is the same file as -o/--output, so the DeepDream image would overwrite it",
                             where=f"--stylized {args.stylized}", fix="give the stylised image another name")
        if args.stylized is None and os.path.realpath(stylized) in _inputs(args):
            raise InputError("the stylised image's default name is an input image, which would be overwritten",
                             where=str(stylized), fix="name the stylised image with --stylized")
    preset, nst_cfg, _ = _configs(args)
    if args.command in ("style", "pipeline"):
        _check_level_shapes(args, nst_cfg)
        if args.mask:
            try:
                presets.check_mask(images.load_image(args.mask))
            except InputError as exc:
                raise InputError(exc.what, where=f"--mask {args.mask}", fix=exc.fix) from None
    return preset


def _controls(args) -> dict:
    """The style images (a list when --style adds some), mask and guide images, loaded."""
    out = {}
    if getattr(args, "more_styles", None):
        out["style_image"] = [images.load_image(p) for p in [args.style, *args.more_styles]]
    if getattr(args, "mask", None):
        out["mask"] = images.load_image(args.mask)
    if getattr(args, "guide", None):
        out["guide"] = images.load_image(args.guide)
    return out


def _check_weights(names: tuple[str, ...]) -> None:
    """Refuse a weight file that is present but fails its md5 check, before TensorFlow is imported.

    A file that is missing is left to ``weights.resolve`` at model build (it may still download it).
    """
    from . import weights

    for row in weights.check():
        if row["name"] in names and row["found"] and not row["ok"]:
            weights.resolve(row["name"], download=False)  # raises the WeightsError naming the fix


# ---------------------------------------------------------------- Ctrl-C
class _Interrupts:
    """Ctrl-C handling: the first asks the loop to stop after its current step (or, before the loop
    starts, stops at once); the second exits at once with code 130."""

    def __init__(self) -> None:
        self.loop_started = False
        self.requested = False
        self.previous = None

    def install(self) -> None:
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self._first)

    def restore(self) -> None:
        if self.previous is not None and not self.requested:
            signal.signal(signal.SIGINT, self.previous)

    def should_stop(self) -> bool:
        """Polled by the loop before each step (``should_stop=``)."""
        self.loop_started = True
        return self.requested

    def _first(self, signum, frame) -> None:
        self.requested = True
        signal.signal(signal.SIGINT, self._second)
        if not self.loop_started:
            raise KeyboardInterrupt
        print("\nnstdream: stopping after this step and saving; press Ctrl-C again to quit at once",
              file=sys.stderr, flush=True)

    @staticmethod
    def _second(signum, frame) -> None:
        os._exit(EXIT_INTERRUPTED)


# ---------------------------------------------------------------- runs
def _stage_metrics(history: dict, image, status: str) -> dict:
    history = dict(history or {})
    main = "total" if "total" in history else "loss"
    losses = list(history.get(main, []))
    h, w = image.shape[:2]
    out = {"loss": losses, "final_loss": losses[-1] if losses else None,
           "seconds": history["seconds"][-1] if history.get("seconds") else 0.0, "size": [w, h],
           "steps": len(losses), "status": status}
    out.update({k: v for k, v in history.items() if k not in (main, "seconds")})
    return out


def _level_metrics(args) -> dict:
    """``levels`` and ``steps_per_level`` of a coarse-to-fine run (nothing for a one-level run)."""
    if args.levels == 1:
        return {}
    return {"levels": args.levels, "steps_per_level": presets.level_steps(args.level_steps, args.levels)}


def _write(image, path: str, written: list[str]) -> None:
    images.save_image(image, path)
    written.append(path)


def _finish(args, image, metrics: dict, status: str, written: list[str]) -> int:
    if status == "interrupted" and os.path.realpath(args.output) in _inputs(args):
        print(f"interrupted: {args.output} not written, since it is an input image, which only a finished run "
              "replaces", file=sys.stderr)
        return EXIT_INTERRUPTED
    _write(image, args.output, written)
    if args.metrics:
        files.write_json(metrics, args.metrics)
        written.append(args.metrics)
    print(f"wrote {', '.join(written)}", file=sys.stderr)
    if status == "interrupted":
        print("interrupted: the files hold the image and metrics at that step", file=sys.stderr)
        return EXIT_INTERRUPTED
    return EXIT_OK


def _run_style(args, preset, interrupts, written) -> int:
    content, style = images.load_image(args.content), images.load_image(args.style)
    controls = _controls(args)
    style = controls.pop("style_image", style)
    _check_weights(("vgg19",))
    from . import pyramid

    result = pyramid.stylize(content, style, **controls, levels=args.levels, steps_per_level=args.level_steps,
                             optimizer=preset.nst.optimizer, config=preset.nst, seed=args.seed,
                             progress=not args.no_progress, log_every=args.log_every,
                             should_stop=interrupts.should_stop, precision=args.precision)
    metrics = {"preset": args.preset, "precision": args.precision, **_level_metrics(args),
               **_stage_metrics(result.history, result.image, result.status)}
    return _finish(args, result.image, metrics, result.status, written)


def _run_dream(args, preset, interrupts, written) -> int:
    image = images.load_image(args.image)
    controls = _controls(args)
    _check_weights(("inception_v3",))
    from . import dream

    result = dream.deep_dream(image, **controls, config=preset.dream, octaves=args.octaves, seed=args.seed,
                              progress=not args.no_progress, log_every=args.log_every,
                              should_stop=interrupts.should_stop, precision=args.precision)
    metrics = {"preset": args.preset, "precision": args.precision,
               **_stage_metrics(result.history, result.image, result.status)}
    return _finish(args, result.image, metrics, result.status, written)


def _run_pipeline(args, preset, interrupts, written) -> int:
    content, style = images.load_image(args.content), images.load_image(args.style)
    controls = _controls(args)
    style = controls.pop("style_image", style)
    _check_weights(("vgg19", "inception_v3"))
    from . import pipeline

    result = pipeline.run_pipeline(content, style, **controls, preset=preset, octaves=args.octaves, seed=args.seed,
                                   progress=not args.no_progress, log_every=args.log_every,
                                   should_stop=interrupts.should_stop, precision=args.precision,
                                   levels=args.levels, steps_per_level=args.level_steps,
                                   optimizer=preset.nst.optimizer)
    stylized_path = _stylized_path(args)
    if result.status != "interrupted" or os.path.realpath(stylized_path) not in _inputs(args):
        _write(result.stylized, stylized_path, written)
    metrics = {"preset": args.preset, "precision": args.precision, "status": result.status, "stylized": stylized_path,
               "nst": {**_level_metrics(args), **_stage_metrics(result.nst.history, result.stylized,
                                                               result.nst.status)}}
    final = result.stylized
    if result.dream is not None:
        final = result.dreamed
        metrics["dream"] = _stage_metrics(result.dream.history, result.dreamed, result.dream.status)
    metrics["seconds"] = sum(metrics[k]["seconds"] for k in ("nst", "dream") if k in metrics)
    metrics["size"] = [final.shape[1], final.shape[0]]
    return _finish(args, final, metrics, result.status, written)


def _run_weights(args) -> int:
    from . import weights

    if args.action == "fetch":
        for name, path in weights.fetch(args.dir).items():
            print(f"{name}: {path}")
        return EXIT_OK
    rows = weights.check(args.dir)
    for row in rows:
        print(f"{'ok ' if row['ok'] else 'BAD'} {row['name']}: {row.get('path') or '-'} — {row['message']}")
    return EXIT_OK if all(r["ok"] for r in rows) else EXIT_ERROR


def _run_info(args) -> int:
    from . import device, weights

    print(device.format_report())
    print("weights:")
    for row in weights.check():
        print(f"  {'ok ' if row['ok'] else 'BAD'} {row['name']}: {row.get('path') or '-'}")
    print("presets:")
    for preset in presets.PRESETS.values():
        print(presets.describe(preset))
    return EXIT_OK


def _run_data(args) -> int:
    import runpy

    from . import data
    from .errors import MissingFileError

    if args.what == "content":
        for path in data.write_content(args.out):
            print(path)
        return EXIT_OK
    if not data.STYLE_SCRIPT.is_file():
        raise MissingFileError("the style generator is not installed with the package", where=str(data.STYLE_SCRIPT),
                               fix="run it in a checkout: git clone the repository, then `python data/make_styles.py`")
    return runpy.run_path(str(data.STYLE_SCRIPT))["main"]([] if args.out is None else ["--out", args.out])


def _run_batch(args) -> int:
    from . import batch

    return batch.main_from_args(args)


def _nonfinite(args, exc: NonFiniteLossError, written: list[str]) -> int:
    """Write the last finite image (and the metrics up to the bad step); exit code 1."""
    nst_result = getattr(exc, "nst_result", None)  # pipeline: NST finished, DeepDream blew up
    inputs = _inputs(args)
    if os.path.realpath(args.output) in inputs:
        _print_error(f"{args.output}: stopped at step {exc.step}: {exc.what}; nothing written, since -o names an "
                     f"input image, which a failed run never replaces — {exc.fix}")
        return EXIT_NONFINITE
    if nst_result is not None and os.path.realpath(_stylized_path(args)) not in inputs:
        try:
            _write(nst_result.image, _stylized_path(args), written)
        except (NstdreamError, OSError) as error:
            _print_error(f"{_stylized_path(args)}: could not write the stylised image ({error})")
    if exc.last_image is not None:
        try:
            _write(exc.last_image, args.output, written)
            if args.metrics:
                stage = _stage_metrics(exc.history, exc.last_image, "nonfinite")
                if args.command == "pipeline":
                    stage = {"nst" if "total" in (exc.history or {}) else "dream": stage,
                             "size": stage["size"], "seconds": stage["seconds"]}
                files.write_json({"preset": args.preset, "status": "nonfinite", "step": exc.step,
                                  "error": exc.one_line(), **stage}, args.metrics)
                written.append(args.metrics)
        except (NstdreamError, OSError) as error:
            _print_error(f"{args.output}: could not write the last finite image ({error})")
    saved = f"wrote the last finite image to {', '.join(written)}" if written else "nothing was written"
    _print_error(f"{args.output}: stopped at step {exc.step}: {exc.what}; {saved} — {exc.fix}")
    return EXIT_NONFINITE


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``nstdream`` console script; returns the exit code."""
    parser = build_parser()
    try:
        args, extra = parser.parse_known_args(argv)
        if extra:
            parser.subcommands.get(args.command, parser).error(f"unrecognized arguments: {' '.join(extra)}")
    except SystemExit as exc:  # --help (0) or a parse error (2), already printed
        return exc.code if isinstance(exc.code, int) else EXIT_ERROR
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    runners = {"weights": _run_weights, "info": _run_info, "data": _run_data, "batch": _run_batch}
    interrupts, written = _Interrupts(), []
    previous_show_warning = warnings.showwarning
    warnings.showwarning = functools.partial(_show_warning, default=previous_show_warning)
    try:
        if args.command in ("style", "dream", "pipeline"):
            preset = _check_inputs(args)
            interrupts.install()
            run = {"style": _run_style, "dream": _run_dream, "pipeline": _run_pipeline}[args.command]
            return run(args, preset, interrupts, written)
        return runners[args.command](args)
    except NonFiniteLossError as exc:
        code = _nonfinite(args, exc, written)
        if args.debug:
            raise
        return code
    except NstdreamError as exc:
        if args.debug:
            raise
        where, what = exc.where, exc.what
        if args.command in ("style", "dream", "pipeline") and exc.where in _OPTION_NAMES:
            where = _OPTION_NAMES[exc.where]
            what = re.sub(rf"\b{exc.where}\b", where, what)
        _print_error(f"{where}: {what}" + (f" — {exc.fix}" if exc.fix else "") if where else exc.one_line())
        return EXIT_ERROR
    except KeyboardInterrupt:
        if args.debug:
            raise
        print("interrupted before the first step: nothing written", file=sys.stderr)
        return EXIT_INTERRUPTED
    except OSError as exc:  # disk full, folder removed during the run, ...
        if args.debug:
            raise
        where = exc.filename or getattr(args, "output", None) or "nstdream"
        _print_error(f"{where}: {exc.strerror or exc} — check the disk space and the folder's permissions; "
                     "rerun with --debug for the traceback")
        return EXIT_ERROR
    except Exception as exc:  # noqa: BLE001 — a bug: still one line, the traceback with --debug
        if args.debug:
            raise
        _print_error(f"nstdream {args.command}: unexpected {type(exc).__name__}: {exc} — rerun with --debug "
                     "for the traceback and report it")
        return EXIT_FAILURE
    finally:
        interrupts.restore()
        warnings.showwarning = previous_show_warning


if __name__ == "__main__":
    sys.exit(main())
