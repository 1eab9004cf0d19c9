"""The ``nstdream`` command: argument parsing and error messages only; the work is in the library.

Everything is checked before TensorFlow loads: a mistake is one line ``error: <where>: <what> — <fix>``, exit 2
(the traceback with ``--debug``). A NaN/Inf loss writes the last finite image, exit 1; Ctrl-C writes the current
image and metrics, exit 130, a second Ctrl-C exits at once. See ``docs/robustness.md``.
"""

from __future__ import annotations

import argparse
import os
import re
import runpy
import signal
import sys
import threading
import warnings
from pathlib import Path

from . import data, device, files, images, presets, weights
from .errors import InputError, MissingFileError, NonFiniteLossError, NstdreamError, PerformanceWarning

EXIT_OK, EXIT_NONFINITE, EXIT_ERROR, EXIT_INTERRUPTED = 0, 1, 2, 130
EXIT_FAILURE = 1  # an unexpected error (a bug or an environment failure), as for a NaN run
#: The largest image side (px) accepted; NST at 4096 px already needs tens of GB. NSTDREAM_MAX_SIZE overrides it.
MAX_SIZE, MAX_SIZE_VAR = 4096, "NSTDREAM_MAX_SIZE"


def _arg(cast, expected: str, must=lambda value: None):
    """An argparse type: ``cast(text)``, else "expected <expected>"; "must be <must(value)>" unless that is None."""
    def parse(text: str):
        try:
            value = cast(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if reason := must(value):
            raise argparse.ArgumentTypeError(f"must be {reason}, got {value if cast is int else text}")
        return value
    return parse


_POSITIVE = _arg(int, "a whole number", lambda n: "> 0" if n <= 0 else None)
_NONNEGATIVE = _arg(int, "a whole number", lambda n: "≥ 0" if n < 0 else None)
_SEED = _arg(int, "a whole number", lambda n: "≥ 0" if n < 0 else "below 2**32" if n >= 2**32 else None)
_RATE = _arg(float, "a number", lambda x: None if 0 < x < float("inf") else "a finite number > 0")
_WEIGHTS = _arg(lambda text: tuple(float(w) for w in text.split(",")), "numbers separated by commas")
_STEPS = lambda text: tuple(_POSITIVE(n) for n in text.split(","))  # noqa: E731
_LAYERS = lambda text: tuple(n.strip() for n in text.split(",") if n.strip())  # noqa: E731

COMMANDS = {"style": "neural style transfer", "dream": "DeepDream (gradient ascent)",
            "pipeline": "NST, then resize, then DeepDream (the paper's pipeline)",
            "weights": "check or fetch the ImageNet weight files", "info": "versions, devices, weights and presets",
            "data": "regenerate the bundled images", "batch": "run a grid of notebook runs (papermill on Dask)"}
RUNS, NST, DREAM = ("style", "dream", "pipeline"), ("style", "pipeline"), ("dream", "pipeline")
# Library parameter names -> the option that sets them, for errors raised by the library.
_OPTION_NAMES = {"layers": "--layers", "levels": "--levels", "steps_per_level": "--level-steps",
                 "tile_size": "--tile-size", "style_blend": "--style-weights", "style_scale": "--style-scale", "mask": "--mask"}


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line ``error: <arg>: <what> — <fix>``, exit code 2."""

    examples: dict[str, str] = {}  # option -> an example, for the fix of an error in it (``build_parser``)

    def error(self, message: str):  # type: ignore[override]
        where, what, fix = self.prog, message, f"see `{self.prog} --help`"
        if match := re.fullmatch(r"argument (\S+): (.*)", message, flags=re.S):
            where, what = self.prog if match[1] == "command" else match[1], match[2]
            if choice := re.fullmatch(r"invalid choice: (.*) \(choose from (.*)\)", what, flags=re.S):
                what, fix = f"unknown choice {choice[1]}", f"choose one of {choice[2].replace(chr(39), '')}"
            elif where in self.examples:
                fix = f"pass e.g. {self.examples[where]}"
        elif match := re.fullmatch(r"the following arguments are required: (.*)", message, flags=re.S):
            where, what = match[1], "required but missing"
            fix = f"give {'it' if ',' not in where else 'them'}; see `{self.prog} --help`"
            if where == "command":
                where, what = self.prog, "no command given"
                fix = f"give one of {', '.join(COMMANDS)}; see `nstdream --help`"
        elif match := re.fullmatch(r"unrecognized arguments: (.*)", message, flags=re.S):
            where, what = match[1], "unknown option or extra argument"
        _print_error(f"{where}: {what} — {fix}")
        self.exit(EXIT_ERROR)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="nstdream", description=__doc__.split("\n")[0])
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)
    parser.subcommands = {name: sub.add_parser(name, help=text) for name, text in COMMANDS.items()}

    def add(commands, flags: str, example=None, **keywords):  # example: for the fix of an error in this option
        for name in commands:
            parser.subcommands[name].add_argument(*flags.split(), **keywords)
        if example is not None:
            _Parser.examples[flags.replace(" ", "/")] = f"{flags.split()[0]} {example}"

    add(NST, "content"), add(NST, "style"), add(("dream",), "image")
    add(RUNS, "-o --output", "out.png", required=True, help="output PNG")
    add(RUNS, "--preset", "quick", default="quick", help="paper, tf-tutorial or quick (default)")
    add(RUNS, "--size", 256, type=_POSITIVE, help="longest side in px (default: the preset's; NST's for pipeline)")
    add(RUNS, "--square", action="store_true", help="resize to SIZE × SIZE (the paper's square images)")
    add(RUNS, "--steps", 100, type=_POSITIVE, help="iterations (both stages for pipeline)")
    add(RUNS, "--lr", 0.01, type=_RATE, help="learning rate (NST) / step size (dream)")
    add(RUNS, "--seed", 0, type=_SEED, default=0)
    add(RUNS, "--metrics", "run.json", help="write metrics JSON here")
    add(RUNS, "--no-progress", action="store_true", help="no progress bar")
    add(RUNS, "--log-every", 10, type=_NONNEGATIVE, default=0, help="print `step N | loss x` every N steps (0: never)")
    add(RUNS, "--precision", choices=("float32", "bfloat16", "float16"), help="what the networks compute in "
        "(default: float32; float16 on tensor-core GPUs); bfloat16 is faster on CPUs with AVX512-BF16 or AMX")
    add(NST, "--optimizer", "adam", choices=presets.OPTIMIZERS, help="NST optimiser (default: the preset's; "
        "lbfgs with --levels)")
    add(NST, "--levels", 3, type=_POSITIVE, default=1, help="coarse-to-fine NST from 1/2^(N-1) of the size, each "
        "level starting from the last (default 1: full size only)")
    add(NST, "--level-steps", "200,100,100", type=_STEPS, help="with --levels N: steps per level, coarsest first "
        "(default: 100 at full and half size, doubling at each coarser level)")
    add(NST, "--style", action="append", default=[], dest="more_styles", metavar="IMAGE",
        help="another style image to blend with STYLE (repeatable)")
    add(NST, "--style-weights", "0.7,0.3", type=_WEIGHTS, help="one weight per style image, STYLE first")
    add(NST, "--style-scale", 0.5, type=_RATE, help="style image at F × the output size (F > 1: larger patterns)")
    add(NST, "--preserve-color", choices=presets.PRESERVE_COLORS, help="keep the content's colours")
    add(NST, "--mask", help="image, white where the style goes, black where the content stays")
    add(DREAM, "--layers", "mixed3,mixed5", type=_LAYERS, help="Inception layers, e.g. mixed3,mixed5")
    add(DREAM, "--octaves", 3, type=_POSITIVE, help="number of octaves ending at full size")
    add(DREAM, "--guide", help="guide image: dream towards its features instead of the mean activation")
    add(("dream",), "--tile-size", 512, type=_NONNEGATIVE, help="dream tile by tile above this size (0: never)")
    add(("pipeline",), "--nst-steps", 100, type=_POSITIVE), add(("pipeline",), "--dream-steps", 100, type=_POSITIVE)
    add(("pipeline",), "--dream-size", 299, type=_POSITIVE, help="DeepDream longest side")
    add(("pipeline",), "--dream-lr", 0.01, type=_RATE, help="DeepDream step size")
    add(("pipeline",), "--stylized", "stylized.png", help="where to write the NST image (default: OUTPUT_stylized.png)")
    add(("weights",), "action", choices=["check", "fetch"])
    add(("weights",), "--dir", help="folder to check / to fetch into (default: the Keras cache)")
    add(("data",), "what", choices=["styles", "content"])
    add(("data",), "--out", help="folder (default: data/styles or data/content)")
    add(("batch",), "grid", help="grid YAML file"), add(("batch",), "--out", required=True, help="output folder")
    add(("batch",), "--workers", 2, type=_POSITIVE, help="local Dask processes (default: 1 on a CPU, one per GPU)")
    add(("batch",), "--scheduler", help="Dask scheduler address, e.g. tcp://host:8786")
    add(("batch",), "--retries", 1, type=_NONNEGATIVE, default=0, help="rerun a failing run up to N times")
    add(("batch",), "--dry-run", action="store_true", help="list the runs, run nothing")
    add(("batch",), "--max-runs", 20000, type=_POSITIVE, help="refuse a grid of more runs than this (default 10000)")
    # also accepted after the command: SUPPRESS keeps the value given before it
    add(COMMANDS, "--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks")
    return parser


def _print_error(line: str) -> None:
    print(f"error: {' '.join(line.split())}", file=sys.stderr)


# ---------------------------------------------------------------- checks before TensorFlow loads
def _inputs(args) -> list[str]:
    """The input image paths: content, style, image, mask, guide, then the extra styles."""
    paths = [getattr(args, attr, None) for attr in ("content", "style", "image", "mask", "guide")]
    return [path for path in paths + getattr(args, "more_styles", []) if path is not None]


def _is_input(args, path: str) -> bool:
    return os.path.realpath(path) in {os.path.realpath(p) for p in _inputs(args)}


def _check_levels(args) -> None:
    """Refuse ``--levels`` with options it does not take, and ``--level-steps`` that do not fit it."""
    levels, level_steps = args.levels, args.level_steps
    steps = "--nst-steps" if getattr(args, "nst_steps", None) else "--steps" if args.steps else None
    controls = [flag for flag, value in (("--style", args.more_styles), ("--style-weights", args.style_weights),
                                         ("--style-scale", args.style_scale), ("--mask", args.mask),
                                         ("--preserve-color", args.preserve_color)) if value]
    if levels > 1 and controls:
        raise InputError(f"is not combined with --levels {levels}", where=controls[0],
                         fix="drop --levels (one level), or the option")
    if levels == 1 and level_steps is not None:
        raise InputError("needs --levels 2 or more (it gives the steps of each level)", where="--level-steps",
                         fix=f"add --levels {len(level_steps)}, or use --steps")
    if levels > 1 and steps:
        raise InputError(f"counts the NST steps of a one-level run; with --levels {levels} each level has its own "
                         "count", where=steps, fix="give the steps of each level, coarsest first, with --level-steps"
                         + ", and DeepDream's with --dream-steps" * (args.command == "pipeline"))
    if levels > 1 and level_steps is not None and len(level_steps) != levels:
        raise InputError(f"has {len(level_steps)} step counts for --levels {levels}", where="--level-steps",
                         fix=f"give {levels} counts, coarsest first, e.g. "
                         + ",".join(map(str, presets.default_steps(levels))))


def _configs(args) -> presets.Preset:
    """The preset with the options applied (``presets.resolve``). ``--size`` is the longest side unless
    ``--square``; without either, the preset's own size and shape."""
    def square(size):
        return True if args.square else None if size is None else False

    nst = dream = None
    if args.command != "dream":
        _check_levels(args)
        nst = dict(size=args.size, square=square(args.size), num_steps=getattr(args, "nst_steps", None) or args.steps,
                   optimizer=args.optimizer, learning_rate=args.lr, levels=args.levels,
                   steps_per_level=args.level_steps, preserve_color=args.preserve_color,
                   style_blend=args.style_weights, style_scale=args.style_scale)
    if args.command != "style":
        size, lr = (args.size, args.lr) if args.command == "dream" else (args.dream_size, args.dream_lr)
        dream = dict(size=size, square=square(size), layers=args.layers, step_size=lr, octaves=args.octaves,
                     num_steps=getattr(args, "dream_steps", None) or args.steps, tile_size=getattr(args, "tile_size", None))
    preset = presets.resolve(args.preset, nst=nst, dream=dream)
    presets.check_styles(preset.nst, 1 + len(getattr(args, "more_styles", [])))
    return preset


def _check_inputs(args) -> presets.Preset:
    """Check image paths, sizes, output paths and parameters (milliseconds; no TensorFlow); the resolved preset."""
    for path in _inputs(args):
        images.validate_image_path(path)
    try:
        limit = int(os.environ.get(MAX_SIZE_VAR) or MAX_SIZE)
    except ValueError:
        raise InputError(f"must be a whole number of pixels, got {os.environ[MAX_SIZE_VAR]!r}", where=MAX_SIZE_VAR,
                         fix=f"unset it (default {MAX_SIZE}) or set e.g. {MAX_SIZE_VAR}=8192") from None
    for option in ("--size", "--dream-size", "--tile-size"):  # sides too large for memory
        if (value := getattr(args, option[2:].replace("-", "_"), None)) is not None and value > limit:
            hint = "" if option != "--size" else "; --tile-size dreams a large image tile by tile" \
                if args.command == "dream" else "; --levels N reaches a given size with less compute"
            raise InputError(f"{value} px is over the largest side accepted, {limit} px (larger images do not fit "
                             "in memory)", where=option, fix=f"use {option} {limit} or less{hint}; to allow more, "
                             f"set {MAX_SIZE_VAR}")
    files.check_output_path(args.output, suffixes=(".png",))
    if args.metrics:
        files.check_output_path(args.metrics, suffixes=(".json",))
    if args.command == "pipeline":
        given, output = args.stylized, Path(args.output)
        args.stylized = given or str(output.with_name(output.stem + "_stylized.png"))  # from here on, the path
        if os.path.abspath(files.check_output_path(args.stylized)) == os.path.abspath(output):
            raise InputError("is the same file as -o/--output, so the DeepDream image would overwrite it",
                             where=f"--stylized {given}", fix="give the stylised image another name")
        if given is None and _is_input(args, args.stylized):
            raise InputError("the stylised image's default name is an input image, which would be overwritten",
                             where=args.stylized, fix="name the stylised image with --stylized")
    preset = _configs(args)
    if preset.nst.levels > 1:  # the level sizes, from the content image's header
        info = images.image_info(args.content)
        shape = (info["height"], info["width"])[::-1 if info["orientation"] in (5, 6, 7, 8) else 1]
        try:
            presets.level_shapes(presets.full_shape(shape, preset.nst), args.levels)
        except InputError as exc:
            raise InputError(exc.what, where="--levels", fix="use fewer levels or a larger --size (the coarsest "
                             f"side must be at least {presets.MIN_LEVEL_SIDE} px)") from None
    if getattr(args, "mask", None):
        try:
            presets.check_mask(images.load_image(args.mask))
        except InputError as exc:
            raise InputError(exc.what, where=f"--mask {args.mask}", fix=exc.fix) from None
    return preset


def _check_weights(names: tuple[str, ...]) -> None:
    """Refuse a weight file that is present but fails its md5 check (a missing one is left to the model build)."""
    for row in weights.check():
        if row["name"] in names and row["found"] and not row["ok"]:
            weights.resolve(row["name"], download=False)  # raises the WeightsError naming the fix


# ---------------------------------------------------------------- runs
class _Interrupts:
    """Ctrl-C: the first asks the loop to stop after its step (before the loop, it stops at once); the second exits."""

    loop_started = requested = False
    previous = None

    def install(self) -> None:
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self._first)

    def restore(self) -> None:
        if self.previous is not None and not self.requested:
            signal.signal(signal.SIGINT, self.previous)

    def should_stop(self) -> bool:  # polled by the loop before each step
        self.loop_started = True
        return self.requested

    def _first(self, signum, frame) -> None:
        self.requested = True
        signal.signal(signal.SIGINT, lambda signum, frame: os._exit(EXIT_INTERRUPTED))
        if not self.loop_started:
            raise KeyboardInterrupt
        print("\nnstdream: stopping after this step and saving; press Ctrl-C again to quit at once",
              file=sys.stderr, flush=True)


def _stage_metrics(history: dict, image, status: str) -> dict:
    history = dict(history or {})
    main = "total" if "total" in history else "loss"
    losses = list(history.get(main, []))
    return {"loss": losses, "final_loss": losses[-1] if losses else None,
            "seconds": history["seconds"][-1] if history.get("seconds") else 0.0,
            "size": [image.shape[1], image.shape[0]], "steps": len(losses), "status": status,
            **{k: v for k, v in history.items() if k not in (main, "seconds")}}


def _write(image, path: str, written: list[str]) -> None:
    images.save_image(image, path)
    written.append(path)


def _finish(args, image, metrics: dict, status: str, written: list[str]) -> int:
    if status == "interrupted" and _is_input(args, args.output):
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


def _run(args, preset: presets.Preset, interrupts: _Interrupts, written: list[str]) -> int:
    """Load the images, check the weights, run the command, write the image and metrics."""
    load = images.load_image
    first = load(args.image if args.command == "dream" else args.content)
    styles = [load(path) for path in (args.style, *args.more_styles)] if args.command != "dream" else [None]
    style = styles if len(styles) > 1 else styles[0]
    keywords = {name: load(getattr(args, name)) for name in ("mask", "guide") if getattr(args, name, None)}
    keywords.update(seed=args.seed, progress=not args.no_progress, log_every=args.log_every,
                    should_stop=interrupts.should_stop, precision=args.precision)
    _check_weights({"style": ("vgg19",), "dream": ("inception_v3",)}.get(args.command, ("vgg19", "inception_v3")))
    from . import dream, pipeline, pyramid

    metrics = {"preset": args.preset, "precision": args.precision}
    levels = {} if preset.nst.levels == 1 else \
        {"levels": preset.nst.levels, "steps_per_level": list(preset.nst.steps_per_level)}
    if args.command == "dream":
        result = dream.deep_dream(first, config=preset.dream, **keywords)
    elif args.command == "style":
        result = pyramid.stylize(first, style, config=preset.nst, **keywords)
    if args.command != "pipeline":
        metrics.update(levels, **_stage_metrics(result.history, result.image, result.status))
        return _finish(args, result.image, metrics, result.status, written)
    result = pipeline.run_pipeline(first, style, config=preset, **keywords)
    if result.status != "interrupted" or not _is_input(args, args.stylized):
        _write(result.stylized, args.stylized, written)
    metrics.update(status=result.status, stylized=args.stylized,
                   nst={**levels, **_stage_metrics(result.nst.history, result.stylized, result.nst.status)})
    if result.dream is not None:
        metrics["dream"] = _stage_metrics(result.dream.history, result.dreamed, result.dream.status)
    final = result.stylized if result.dream is None else result.dreamed
    metrics.update(seconds=sum(metrics[k]["seconds"] for k in ("nst", "dream") if k in metrics),
                   size=[final.shape[1], final.shape[0]])
    return _finish(args, final, metrics, result.status, written)


def _run_tool(args) -> int:
    """``weights``, ``info``, ``data`` and ``batch``."""
    if args.command == "weights" and args.action == "fetch":
        for name, path in weights.fetch(args.dir).items():
            print(f"{name}: {path}")
    elif args.command == "weights":
        rows = weights.check(args.dir)
        for row in rows:
            print(f"{'ok ' if row['ok'] else 'BAD'} {row['name']}: {row.get('path') or '-'} — {row['message']}")
        return EXIT_OK if all(r["ok"] for r in rows) else EXIT_ERROR
    elif args.command == "info":
        print(device.format_report(), "weights:", sep="\n")
        for row in weights.check():
            print(f"  {'ok ' if row['ok'] else 'BAD'} {row['name']}: {row.get('path') or '-'}")
        print("presets:", *map(presets.describe, presets.PRESETS.values()), sep="\n")
    elif args.command == "data" and args.what == "content":
        for path in data.write_content(args.out):
            print(path)
    elif args.command == "data":
        if not data.STYLE_SCRIPT.is_file():
            raise MissingFileError("the style generator is not installed with the package", where=str(
                data.STYLE_SCRIPT), fix="run it in a checkout: git clone the repository, then `python data/make_styles.py`")
        return runpy.run_path(str(data.STYLE_SCRIPT))["main"]([] if args.out is None else ["--out", args.out])
    else:
        from . import batch

        return batch.main_from_args(args)
    return EXIT_OK


def _nonfinite(args, exc: NonFiniteLossError, written: list[str]) -> int:
    """Write the last finite image (and the metrics up to the bad step), never over an input image; exit code 1."""
    if _is_input(args, args.output):
        _print_error(f"{args.output}: stopped at step {exc.step}: {exc.what}; nothing written, since -o names an "
                     f"input image, which a failed run never replaces — {exc.fix}")
        return EXIT_NONFINITE
    nst_result = getattr(exc, "nst_result", None)  # pipeline: NST finished, DeepDream blew up
    if nst_result is not None and not _is_input(args, args.stylized):
        try:
            _write(nst_result.image, args.stylized, written)
        except (NstdreamError, OSError) as error:
            _print_error(f"{args.stylized}: could not write the stylised image ({error})")
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


def _report(args, exc: BaseException) -> int:
    """Print the one line for an error that ended the command; its exit code."""
    if isinstance(exc, NstdreamError):
        if args.command in RUNS and exc.where in _OPTION_NAMES:  # name the option, not the library's parameter
            option = _OPTION_NAMES[exc.where]
            exc = NstdreamError(re.sub(rf"\b{exc.where}\b", option, exc.what), where=option, fix=exc.fix)
        _print_error(exc.one_line())
        return EXIT_ERROR
    if isinstance(exc, KeyboardInterrupt):
        print("interrupted before the first step: nothing written", file=sys.stderr)
        return EXIT_INTERRUPTED
    if isinstance(exc, OSError):  # disk full, folder removed during the run, ...
        _print_error(f"{exc.filename or getattr(args, 'output', None) or 'nstdream'}: {exc.strerror or exc} — check "
                     "the disk space and the folder's permissions; rerun with --debug for the traceback")
        return EXIT_ERROR
    _print_error(f"nstdream {args.command}: unexpected {type(exc).__name__}: {exc} — rerun with --debug for the "
                 "traceback and report it")
    return EXIT_FAILURE


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
    interrupts, written, show_warning = _Interrupts(), [], warnings.showwarning

    def one_line_warning(message, category, *rest, **keywords):  # the library's PerformanceWarning: one line
        if not issubclass(category, PerformanceWarning):
            return show_warning(message, category, *rest, **keywords)
        print(f"warning: --{' '.join(str(message).split())}", file=sys.stderr)

    warnings.showwarning = one_line_warning
    try:
        if args.command not in RUNS:
            return _run_tool(args)
        preset = _check_inputs(args)
        interrupts.install()
        return _run(args, preset, interrupts, written)
    except (Exception, KeyboardInterrupt) as exc:
        code = _nonfinite(args, exc, written) if isinstance(exc, NonFiniteLossError) else None
        if args.debug:
            raise
        return _report(args, exc) if code is None else code
    finally:
        interrupts.restore()
        warnings.showwarning = show_warning


if __name__ == "__main__":
    sys.exit(main())
