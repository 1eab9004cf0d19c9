"""The ``nstdream`` command: argument parsing and error messages; the work is in the library. A mistake is one line
``error: <where>: <what> — <fix>``, exit 2 (paths and options checked before TensorFlow loads). A NaN/Inf loss writes
the last finite image, exit 1; Ctrl-C writes the current image and metrics, exit 130 (``docs/robustness.md``)."""

import argparse
import os
import re
import runpy
import signal
import sys
import threading
import warnings
from pathlib import Path
from types import SimpleNamespace

from . import data, device, files, images, presets, weights
from .errors import InputError, MissingFileError, NonFiniteLossError, NstdreamError, PerformanceWarning

EXIT_OK, EXIT_NONFINITE, EXIT_FAILURE, EXIT_ERROR, EXIT_INTERRUPTED = 0, 1, 1, 2, 130  # FAILURE: a bug, as NaN
MAX_SIZE = 4096  # the largest image side (px) accepted; NST at 4096 px already needs tens of GB


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
_SIDE = _arg(int, "a whole number", lambda n: "> 0" if n <= 0 else None if n <= MAX_SIZE else (
    f"at most {MAX_SIZE} px, as larger images do not fit in memory (--levels or --tile-size reach large sizes)"))
_NONNEGATIVE = _arg(int, "a whole number", lambda n: "≥ 0" if n < 0 else None)
_SEED = _arg(int, "a whole number", lambda n: "≥ 0" if n < 0 else "below 2**32" if n >= 2**32 else None)
_RATE = _arg(float, "a number", lambda x: None if 0 < x < float("inf") else "a finite number > 0")
_WEIGHTS = _arg(lambda text: tuple(float(w) for w in text.split(",")), "numbers separated by commas")
_STEPS = lambda text: tuple(_POSITIVE(n) for n in text.split(","))  # noqa: E731
_LAYERS = lambda text: tuple(n.strip() for n in text.split(",") if n.strip())  # noqa: E731

COMMANDS = {"style": "neural style transfer", "dream": "DeepDream (gradient ascent)", "pipeline": "NST, then DeepDream",
            "weights": "check or fetch the ImageNet weight files", "info": "versions, devices, weights and presets",
            "data": "regenerate the bundled images", "batch": "run a grid of notebook runs (papermill on Dask)"}
RUNS, NST, DREAM = ("style", "dream", "pipeline"), ("style", "pipeline"), ("dream", "pipeline")


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line ``error: <arg>: <what> — <fix>``, exit code 2."""

    def error(self, message: str):  # type: ignore[override]
        where, what, fix = self.prog, message, f"see `{self.prog} --help`"
        if match := re.fullmatch(r"argument (\S+): (.*)", message, flags=re.S):
            where, what = self.prog if match[1] == "command" else match[1], match[2]
        if choice := re.fullmatch(r"invalid choice: (.*) \(choose from (.*)\)", what, flags=re.S):
            what, fix = f"unknown choice {choice[1]}", f"choose one of {choice[2].replace(chr(39), '')}"
        _print_error(f"{where}: {what} — {fix}")
        self.exit(EXIT_ERROR)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="nstdream", description=__doc__.split("\n")[0])
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)
    parser.subcommands = {name: sub.add_parser(name, help=text) for name, text in COMMANDS.items()}

    def add(commands, flags: str, **keywords):
        for name in commands:
            parser.subcommands[name].add_argument(*flags.split(), **keywords)

    add(NST, "content"), add(NST, "style"), add(("dream",), "image")
    add(RUNS, "-o --output", required=True, help="output PNG")
    add(RUNS, "--preset", default="quick", help="paper, tf-tutorial or quick (default)")
    add(RUNS, "--size", type=_SIDE, help="longest side in px (default: the preset's; NST's for pipeline)")
    add(RUNS, "--square", action="store_true", help="resize to SIZE × SIZE (the paper's square images)")
    add(RUNS, "--steps", type=_POSITIVE, help="iterations (both stages for pipeline)")
    add(RUNS, "--lr", type=_RATE, help="learning rate (NST) / step size (dream)")
    add(RUNS, "--seed", type=_SEED, default=0)
    add(RUNS, "--metrics", help="write metrics JSON here")
    add(RUNS, "--no-progress", action="store_true", help="no progress bar")
    add(RUNS, "--log-every", type=_NONNEGATIVE, default=0, help="print `step N | loss x` every N steps (0: never)")
    add(RUNS, "--precision", choices=("float32", "bfloat16", "float16"), help="default: float32 (float16 on "
        "tensor-core GPUs); bfloat16 is fast on CPUs with AVX512-BF16 or AMX")
    add(NST, "--optimizer", choices=presets.OPTIMIZERS, help="default: the preset's; lbfgs with --levels")
    add(NST, "--levels", type=_POSITIVE, default=1, help="coarse-to-fine NST from 1/2^(N-1) of the size")
    add(NST, "--level-steps", type=_STEPS, help="with --levels N: steps per level, coarsest first")
    add(NST, "--style", action="append", default=[], dest="more_styles", metavar="IMAGE", help="one more (repeatable)")
    add(NST, "--style-weights", type=_WEIGHTS, help="one weight per style image, STYLE first")
    add(NST, "--style-scale", type=_RATE, help="style image at F × the output size (F > 1: larger patterns)")
    add(NST, "--preserve-color", choices=presets.PRESERVE_COLORS, help="keep the content's colours")
    add(NST, "--mask", help="image, white where the style goes, black where the content stays")
    add(DREAM, "--layers", type=_LAYERS, help="Inception layers, e.g. mixed3,mixed5")
    add(DREAM, "--octaves", type=_POSITIVE, help="number of octaves ending at full size")
    add(DREAM, "--guide", help="guide image: dream towards its features instead of the mean activation")
    add(("dream",), "--tile-size", type=_NONNEGATIVE, help="dream tile by tile above this size (0: never)")
    add(("pipeline",), "--nst-steps", type=_POSITIVE), add(("pipeline",), "--dream-steps", type=_POSITIVE)
    add(("pipeline",), "--dream-size", type=_SIDE, help="DeepDream longest side")
    add(("pipeline",), "--dream-lr", type=_RATE, help="DeepDream step size")
    add(("pipeline",), "--stylized", help="where to write the NST image (default: OUTPUT_stylized.png)")
    add(("weights",), "action", choices=["check", "fetch"])
    add(("weights",), "--dir", help="folder to check / to fetch into (default: the Keras cache)")
    add(("data",), "what", choices=["styles", "content"])
    add(("data",), "--out", help="folder (default: data/styles or data/content)")
    add(("batch",), "grid", help="grid YAML file"), add(("batch",), "--out", required=True, help="output folder")
    add(("batch",), "--workers", type=_POSITIVE, help="local Dask processes (default: 1 on a CPU, one per GPU)")
    add(("batch",), "--scheduler", help="Dask scheduler address, e.g. tcp://host:8786")
    add(("batch",), "--retries", type=_NONNEGATIVE, default=0, help="rerun a failing run up to N times")
    add(("batch",), "--dry-run", action="store_true", help="list the runs, run nothing")
    add(("batch",), "--max-runs", type=_POSITIVE, help="refuse a grid of more runs than this (default 10000)")
    # also accepted after the command: SUPPRESS keeps the value given before it
    add(COMMANDS, "--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks")
    return parser


def _print_error(line: str) -> None:
    print(f"error: {' '.join(line.split())}", file=sys.stderr)


def _is_input(args, path: str) -> bool:
    """Whether ``path`` is an input image (content, style, image, mask, guide or an extra style)."""
    paths = [getattr(args, attr, None) for attr in ("content", "style", "image", "mask", "guide")]
    return os.path.realpath(path) in {os.path.realpath(p) for p in paths + getattr(args, "more_styles", []) if p}


def _configs(args) -> presets.Preset:
    """The preset with the options applied; without ``--size`` or ``--square``, the preset's own size and shape."""
    def square(size):
        return True if args.square else None if size is None else False

    nst = dream = None
    if args.command != "dream":
        nst = dict(size=args.size, square=square(args.size), num_steps=getattr(args, "nst_steps", None) or args.steps,
                   optimizer=args.optimizer, learning_rate=args.lr, levels=args.levels,
                   steps_per_level=args.level_steps, preserve_color=args.preserve_color,
                   style_blend=args.style_weights, style_scale=args.style_scale)
    if args.command != "style":
        size, lr = (args.size, args.lr) if args.command == "dream" else (args.dream_size, args.dream_lr)
        dream = dict(size=size, square=square(size), layers=args.layers, step_size=lr, octaves=args.octaves,
                     num_steps=getattr(args, "dream_steps", None) or args.steps,
                     tile_size=getattr(args, "tile_size", None))
    return presets.resolve(args.preset, nst=nst, dream=dream)


def _check_inputs(args) -> presets.Preset:
    """Check image paths, output paths and options (no TensorFlow; the library checks the rest); the preset."""
    files.check_output_path(args.output, suffixes=(".png",))
    if args.metrics:
        files.check_output_path(args.metrics, suffixes=(".json",))
    if args.command == "pipeline":
        output = Path(args.output)
        stylized = args.stylized or str(output.with_name(output.stem + "_stylized.png"))
        files.check_output_path(stylized)
        if os.path.realpath(stylized) == os.path.realpath(output) or not args.stylized and _is_input(args, stylized):
            raise InputError("is the same file as -o/--output or an input image, which it would overwrite",
                             where=f"--stylized {stylized}", fix="give the stylised image another name with --stylized")
        args.stylized = stylized  # from here on, the path
    preset = _configs(args)
    steps = "--nst-steps" if getattr(args, "nst_steps", None) else "--steps" if args.steps else None
    if preset.nst.levels > 1 and steps:
        raise InputError(f"counts the NST steps of a one-level run; with --levels {preset.nst.levels} each level has "
                         "its own count", where=steps, fix="give the steps of each level, coarsest first, with "
                         "--level-steps" + ", and DeepDream's with --dream-steps" * (args.command == "pipeline"))
    return preset


def _check_weights(names: tuple[str, ...]) -> None:
    """Refuse a weight file that is present but fails its md5 check (a missing one is left to the model build)."""
    for row in weights.check():
        if row["name"] in names and row["found"] and not row["ok"]:
            weights.resolve(row["name"], download=False)  # raises the WeightsError naming the fix


class _Interrupts:
    """Ctrl-C: the first asks the loop to stop after its step (before the loop, it stops at once); the second exits."""

    loop_started = requested = False

    def __init__(self) -> None:
        main_thread = threading.current_thread() is threading.main_thread()
        self.previous = signal.signal(signal.SIGINT, self._first) if main_thread else None

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


def _stage_metrics(stage) -> dict:
    """The metrics of one stage (a result with ``history``, ``image`` and ``status``)."""
    history = dict(stage.history or {})
    losses = list(history.pop("total" if "total" in history else "loss", []))
    seconds = history.pop("seconds", None) or [0.0]
    return {"loss": losses, "final_loss": losses[-1] if losses else None, "seconds": seconds[-1],
            "size": [stage.image.shape[1], stage.image.shape[0]], "steps": len(losses), "status": stage.status,
            **history}


def _run(args, preset: presets.Preset, interrupts: _Interrupts) -> int:
    """Load the images, check the weights, run the command, write the images and metrics; the exit code.
    A run that did not complete (NaN/Inf, Ctrl-C) never replaces an input image."""
    load, command, error = images.load_image, args.command, None
    first = load(args.image if command == "dream" else args.content)
    styles = [load(path) for path in (args.style, *args.more_styles)] if command != "dream" else [None]
    keywords = {name: load(getattr(args, name)) for name in ("mask", "guide") if getattr(args, name, None)}
    keywords.update(seed=args.seed, progress=not args.no_progress, log_every=args.log_every,
                    should_stop=interrupts.should_stop, precision=args.precision)
    _check_weights({"style": ("vgg19",), "dream": ("inception_v3",)}.get(command, ("vgg19", "inception_v3")))
    from . import dream, pipeline, pyramid
    style, stage = styles if len(styles) > 1 else styles[0], "dream" if command == "dream" else "nst"
    try:
        if command == "dream":
            stages = {stage: dream.deep_dream(first, config=preset.dream, **keywords)}
        elif command == "style":
            stages = {stage: pyramid.stylize(first, style, config=preset.nst, **keywords)}
        else:
            result = pipeline.run_pipeline(first, style, config=preset, **keywords)
            stages = {"nst": result.nst, **({"dream": result.dream} if result.dream is not None else {})}
    except NonFiniteLossError as exc:
        error, failed = exc, SimpleNamespace(history=exc.history, image=exc.last_image, status="nonfinite")
        done = getattr(exc, "nst_result", None)  # pipeline: NST finished, DeepDream blew up
        stages = {"nst": done, "dream": failed} if done else {stage: failed}
    parts, last = {name: _stage_metrics(result) for name, result in stages.items()}, list(stages)[-1]
    if "nst" in parts and preset.nst.levels > 1:
        parts["nst"].update(levels=preset.nst.levels, steps_per_level=list(preset.nst.steps_per_level))
    metrics = {"preset": args.preset, "precision": args.precision, **parts[last]}
    if command == "pipeline":
        metrics = {"preset": args.preset, "precision": args.precision, "stylized": args.stylized, **parts,
                   "seconds": sum(part["seconds"] for part in parts.values()), "size": parts[last]["size"]}
    metrics.update(status="nonfinite" if error else stages[last].status)
    metrics.update({"step": error.step, "error": error.one_line()} if error else {})
    unfinished, written = metrics["status"] != "completed", []
    if not (unfinished and _is_input(args, args.output)):
        saves = [(stages["nst"].image, args.stylized)] if command == "pipeline" and not (
            unfinished and _is_input(args, args.stylized)) else []
        for image, path in [*saves, (stages[last].image, args.output)]:
            images.save_image(image, path)
            written.append(path)
        if args.metrics:
            files.write_json(metrics, args.metrics)
            written.append(args.metrics)
    if error:
        saved = f"wrote the last finite image to {', '.join(written)}" if written else \
            "nothing written, since -o names an input image, which a failed run never replaces"
        _print_error(f"{args.output}: stopped at step {error.step}: {error.what}; {saved} — {error.fix}")
        if args.debug:
            raise error
        return EXIT_NONFINITE
    print(f"wrote {', '.join(written)}" if written else f"interrupted: {args.output} not written, since it is an "
          "input image, which only a finished run replaces", file=sys.stderr)
    if unfinished and written:
        print("interrupted: the files hold the image and metrics at that step", file=sys.stderr)
    return EXIT_INTERRUPTED if unfinished else EXIT_OK


def _run_tool(args) -> int:
    """``weights``, ``info``, ``data`` and ``batch``."""
    if args.command == "weights" and args.action == "fetch":
        print(*(f"{name}: {path}" for name, path in weights.fetch(args.dir).items()), sep="\n")
    elif args.command == "weights":
        rows = weights.check(args.dir)
        print(*(f"{'ok ' if r['ok'] else 'BAD'} {r['name']}: {r.get('path') or '-'} — {r['message']}" for r in rows),
              sep="\n")
        return EXIT_OK if all(r["ok"] for r in rows) else EXIT_ERROR
    elif args.command == "info":
        print(device.format_report(), "weights:",
              *(f"  {'ok ' if row['ok'] else 'BAD'} {row['name']}: {row.get('path') or '-'}" for row in weights.check()),
              sep="\n")
        print("presets:", *map(presets.describe, presets.PRESETS.values()), sep="\n")
    elif args.command == "data" and args.what == "content":
        print(*data.write_content(args.out), sep="\n")
    elif args.command == "data":
        if not data.STYLE_SCRIPT.is_file():
            raise MissingFileError("the style generator is not installed with the package",
                                   where=str(data.STYLE_SCRIPT), fix="in a checkout: `python data/make_styles.py`")
        return runpy.run_path(str(data.STYLE_SCRIPT))["main"]([] if args.out is None else ["--out", args.out])
    else:
        from . import batch
        return batch.main_from_args(args)
    return EXIT_OK


def _report(args, exc: BaseException) -> int:
    """Print the one line for an error that ended the command; its exit code."""
    if isinstance(exc, NstdreamError):
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
    interrupts, show_warning = None, warnings.showwarning

    def one_line_warning(message, category, *rest, **keywords):  # the library's PerformanceWarning: one line
        if not issubclass(category, PerformanceWarning):
            return show_warning(message, category, *rest, **keywords)
        print(f"warning: --{' '.join(str(message).split())}", file=sys.stderr)

    warnings.showwarning = one_line_warning
    try:
        if args.command not in RUNS:
            return _run_tool(args)
        preset = _check_inputs(args)
        interrupts = _Interrupts()
        return _run(args, preset, interrupts)
    except (Exception, KeyboardInterrupt) as exc:
        if args.debug:
            raise
        return _report(args, exc)
    finally:
        if interrupts is not None:
            interrupts.restore()
        warnings.showwarning = show_warning


if __name__ == "__main__":
    sys.exit(main())
