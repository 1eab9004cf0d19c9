"""The ``nstdream`` command: argument parsing and error messages only; the work is in the library.

Paths, parameters and output folders are checked before TensorFlow is imported, so a mistake fails
in well under a second with one line ``error: <file>: <what is wrong> — <how to fix>`` and exit code
2 (the traceback only with ``--debug``). A run whose loss becomes NaN/Inf writes its last finite
image and exits 1. Ctrl-C writes the current image and the metrics so far, then exits 130; a second
Ctrl-C exits at once.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

from . import files, images, presets
from .errors import InputError, NonFiniteLossError, NstdreamError

EXIT_ERROR, EXIT_NONFINITE, EXIT_INTERRUPTED = 2, 1, 130


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value


def _layers(text: str) -> tuple[str, ...]:
    return tuple(name.strip() for name in text.split(",") if name.strip())


def _common(p: argparse.ArgumentParser, *, nst: bool, dream: bool) -> None:
    p.add_argument("-o", "--output", required=True, help="output PNG")
    p.add_argument("--preset", default="quick", help="paper, tf-tutorial or quick (default)")
    p.add_argument("--size", type=_positive_int, help="longest side in pixels (NST size for pipeline)")
    p.add_argument("--steps", type=_positive_int, help="iterations (both stages for pipeline)")
    p.add_argument("--lr", type=_positive_float, help="learning rate (NST) / step size (dream)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--metrics", help="write metrics JSON here")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    if nst:
        p.add_argument("--optimizer", choices=presets.OPTIMIZERS)
    if dream:
        p.add_argument("--layers", type=_layers, help="Inception layers, e.g. mixed3,mixed5")
        p.add_argument("--octaves", type=_positive_int, help="number of octaves ending at full size")
        p.add_argument("--tile-size", type=int, help="dream tile by tile above this size (0: never)")
    if nst and dream:
        p.add_argument("--nst-steps", type=_positive_int)
        p.add_argument("--dream-steps", type=_positive_int)
        p.add_argument("--dream-size", type=_positive_int)
        p.add_argument("--dream-lr", type=_positive_float, help="DeepDream step size")
        p.add_argument("--stylized", help="where to write the NST image (default: OUTPUT_stylized.png)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nstdream", description=__doc__.split("\n")[0])
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
    sub.add_parser("info", help="versions, devices, weights and presets")
    p = sub.add_parser("data", help="regenerate the bundled images")
    p.add_argument("what", choices=["styles", "content"])
    p.add_argument("--out", help="folder (default: data/styles or data/content)")
    p = sub.add_parser("batch", help="run a grid of notebook runs (papermill; local or Dask)")
    p.add_argument("grid", help="grid YAML file")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--workers", type=_positive_int)
    p.add_argument("--scheduler", help="Dask scheduler address, e.g. tcp://host:8786")
    p.add_argument("--retries", type=int, default=0)
    p.add_argument("--dry-run", action="store_true")
    return parser


# ---------------------------------------------------------------- checks before TensorFlow loads
def _check_inputs(args) -> None:
    for attr in ("content", "style", "image"):
        if getattr(args, attr, None) is not None:
            images.validate_image_path(getattr(args, attr))
    files.check_output_path(args.output, suffixes=(".png",))
    if args.metrics:
        files.check_output_path(args.metrics, suffixes=(".json",))
    if getattr(args, "stylized", None):
        files.check_output_path(args.stylized, suffixes=(".png",))
    preset = presets.get_preset(args.preset)
    if args.command in ("style", "pipeline"):
        presets.validate_nst(preset.nst.replace(size=args.size, num_steps=getattr(args, "nst_steps", None)
                                                or args.steps, optimizer=args.optimizer, learning_rate=args.lr))
    if args.command in ("dream", "pipeline"):
        dream_lr = args.lr if args.command == "dream" else args.dream_lr
        presets.validate_dream(preset.dream.replace(layers=args.layers, step_size=dream_lr,
                                                    num_steps=getattr(args, "dream_steps", None) or args.steps))


def _install_sigint() -> None:
    """First Ctrl-C: KeyboardInterrupt (the loop stops and results are saved). Second: exit at once."""

    def second(signum, frame):
        os._exit(EXIT_INTERRUPTED)

    def first(signum, frame):
        signal.signal(signal.SIGINT, second)
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, first)


def _stage_metrics(result, image) -> dict:
    history = dict(result.history)
    main = "total" if "total" in history else "loss"
    h, w = image.shape[:2]
    out = {"loss": history[main], "final_loss": history[main][-1] if history[main] else None,
           "seconds": history["seconds"][-1] if history.get("seconds") else 0.0, "size": [w, h],
           "steps": len(history[main]), "status": result.status}
    out.update({k: v for k, v in history.items() if k not in (main, "seconds")})
    return out


def _write_outputs(args, image, metrics: dict) -> None:
    images.save_image(image, args.output)
    if args.metrics:
        files.write_json(metrics, args.metrics)


def _run_style(args) -> int:
    from . import nst

    content, style = images.load_image(args.content), images.load_image(args.style)
    result = nst.style_transfer(content, style, config=args.preset, size=args.size, num_steps=args.steps,
                                optimizer=args.optimizer, learning_rate=args.lr, seed=args.seed,
                                progress=not args.no_progress)
    _write_outputs(args, result.image, {"preset": args.preset, **_stage_metrics(result, result.image)})
    return EXIT_INTERRUPTED if result.status == "interrupted" else 0


def _run_dream(args) -> int:
    from . import dream

    result = dream.deep_dream(images.load_image(args.image), config=args.preset, size=args.size,
                              num_steps=args.steps, step_size=args.lr, layers=args.layers, octaves=args.octaves,
                              tile_size=args.tile_size, seed=args.seed, progress=not args.no_progress)
    _write_outputs(args, result.image, {"preset": args.preset, **_stage_metrics(result, result.image)})
    return EXIT_INTERRUPTED if result.status == "interrupted" else 0


def _run_pipeline(args) -> int:
    from . import pipeline

    stylized_path = args.stylized or str(Path(args.output).with_name(Path(args.output).stem + "_stylized.png"))
    result = pipeline.run_pipeline(
        images.load_image(args.content), images.load_image(args.style), preset=args.preset, nst_size=args.size,
        nst_steps=args.nst_steps or args.steps, optimizer=args.optimizer, learning_rate=args.lr,
        dream_size=args.dream_size, dream_steps=args.dream_steps or args.steps, dream_step_size=args.dream_lr,
        layers=args.layers, octaves=args.octaves, seed=args.seed, progress=not args.no_progress)
    images.save_image(result.stylized, stylized_path)
    metrics = {"preset": args.preset, "status": result.status, "stylized": stylized_path,
               "nst": _stage_metrics(result.nst, result.stylized)}
    if result.dream is not None:
        metrics["dream"] = _stage_metrics(result.dream, result.dreamed)
    _write_outputs(args, result.dreamed if result.dreamed is not None else result.stylized, metrics)
    return EXIT_INTERRUPTED if result.status == "interrupted" else 0


def _run_weights(args) -> int:
    from . import weights

    if args.action == "fetch":
        for name, path in weights.fetch(args.dir).items():
            print(f"{name}: {path}")
        return 0
    rows = weights.check(args.dir)
    for row in rows:
        print(f"{'ok ' if row['ok'] else 'BAD'} {row['name']}: {row.get('path') or '-'} — {row['message']}")
    return 0 if all(r["ok"] for r in rows) else EXIT_ERROR


def _run_info(args) -> int:
    from . import device, weights

    print(device.format_report())
    print("weights:")
    for row in weights.check():
        print(f"  {'ok ' if row['ok'] else 'BAD'} {row['name']}: {row.get('path') or '-'}")
    print("presets:")
    for preset in presets.PRESETS.values():
        print(presets.describe(preset))
    return 0


def _run_data(args) -> int:
    from . import data

    written = data.write_styles(args.out) if args.what == "styles" else data.write_content(args.out)
    for path in written:
        print(path)
    return 0


def _run_batch(args) -> int:
    from . import batch

    return batch.main_from_args(args)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``nstdream`` console script; returns the exit code."""
    args = build_parser().parse_args(argv)
    runners = {"style": _run_style, "dream": _run_dream, "pipeline": _run_pipeline, "weights": _run_weights,
               "info": _run_info, "data": _run_data, "batch": _run_batch}
    try:
        if args.command in ("style", "dream", "pipeline"):
            _check_inputs(args)
            _install_sigint()
        return runners[args.command](args)
    except NonFiniteLossError as exc:
        if exc.last_image is not None:
            images.save_image(exc.last_image, args.output)
            if args.metrics:
                files.write_json({"status": "nonfinite", "error": exc.one_line(), "step": exc.step,
                                  "history": exc.history}, args.metrics)
        print(f"error: {exc.one_line()} (last finite image written to {args.output})", file=sys.stderr)
        if args.debug:
            raise
        return EXIT_NONFINITE
    except NstdreamError as exc:
        if args.debug:
            raise
        print(f"error: {exc.one_line()}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
