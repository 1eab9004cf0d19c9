"""A notebook over a grid of parameters, papermill on Dask (``nstdream batch``): ``OUT/runs/<run_id>/`` (made in a
temporary folder, then renamed; complete ones skipped), ``manifest.json``, ``summary.csv``, ``contact_sheet.png``."""

from __future__ import annotations

import contextlib
import csv
import functools
import hashlib
import io
import itertools
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import nbformat
from PIL import Image, ImageDraw

from . import files, images, presets, report
from .errors import InputError, MissingFileError, NstdreamError, did_you_mean

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_NOTEBOOK = "notebooks/06_nst_to_deepdream.ipynb"
DEFAULT_OUTPUTS = ("stylized.png", "dreamed.png")
GRID_KEYS = ("notebook", "parameters", "runs", "outputs")
RESERVED = "output_dir"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
MAX_GRID_BYTES = 1 << 20
MAX_DEPTH = 10  # of lists and mappings in a grid
MAX_RUNS = 10_000  # unless max_runs= (--max-runs) allows more
MINIMUMS = {"nst_steps": 2, "dream_steps": 2, "dream_size": 75, "seed": 0}  # the notebook's own checks need these
SCHEDULER_TIMEOUT_S = 30
_ISO = "%Y-%m-%dT%H:%M:%S%z"  # local time and its UTC offset
_TYPES = {bool: "a bool (true/false)", int: "an int", float: "a float", str: "a string", list: "a list",
          dict: "a mapping"}
_LOCK = threading.Lock()  # papermill changes the process's working folder: one run at a time per process


@dataclass(frozen=True)
class GridSpec:
    """A grid of checked shape; relative paths are looked up first in ``base_dir``."""

    notebook: Path
    parameters: dict[str, Any]
    runs: tuple[dict[str, Any], ...]
    outputs: tuple[str, ...]  # images a complete run writes; the last goes on the contact sheet
    base_dir: Path
    source: Path | None = None

    @classmethod
    def from_dict(cls, grid: Any, *, base_dir: str | os.PathLike | None = None,
                  source: Path | None = None) -> GridSpec:
        """Check a grid's shape (not its values) and find its notebook: InputError, MissingFileError."""
        where, base = str(source or "grid"), Path(base_dir or Path.cwd()).resolve()
        bad = functools.partial(InputError, where=where)

        def walk(value: Any, key: str, depth: int) -> None:  # plain values, the message naming the innermost key
            if depth > MAX_DEPTH:
                raise bad(f"{key!r} is nested too deeply (over {MAX_DEPTH} levels)", fix="write a flatter grid")
            if isinstance(value, (Mapping, list)):
                for name, item in value.items() if isinstance(value, Mapping) else ((key, item) for item in value):
                    if not isinstance(name, str):
                        raise bad(f"{key!r} has a key {name!r} that is not a string", fix="quote the key")
                    walk(item, name, depth + 1)
            elif not isinstance(value, (type(None), bool, int, float, str)) or (
                    isinstance(value, float) and not math.isfinite(value)):
                raise bad(f"{key!r}: {report.shorten(repr(value), 80)} is not a plain value",
                          fix="give finite numbers, strings, true/false, null, lists or mappings")

        if not isinstance(grid, Mapping):
            raise bad(f"a grid must be a mapping with `parameters:` (got {type(grid).__name__})",
                      fix="see examples/grid_small.yaml")
        walk(grid, "grid", 0)
        if unknown := [key for key in grid if key not in GRID_KEYS]:
            raise bad(f"unknown top-level key {unknown[0]!r}",
                      fix=did_you_mean(unknown[0], GRID_KEYS, f"use {', '.join(GRID_KEYS)}"))
        parameters, runs, outputs = grid.get("parameters") or {}, grid.get("runs") or [], grid.get("outputs")
        if not isinstance(parameters, Mapping) or not isinstance(runs, list) or not all(
                isinstance(r, Mapping) for r in runs):
            raise bad("`parameters:` must be a mapping name: value, `runs:` a list of mappings",
                      fix="write `parameters: {name: value, name: [v1, v2]}`, `runs: [{name: value}]`")
        if empty := [key for key, value in parameters.items() if value == []]:
            raise bad(f"parameter {empty[0]!r} is an empty list, which gives no runs", fix="give it at least one value")
        if outputs is not None and not (isinstance(outputs, list) and outputs and all(
                isinstance(o, str) and o not in ("", ".", "..") and not set("/\\\0") & set(o) for o in outputs)):
            raise bad("`outputs:` must be a list of file names inside the run folder (no '/', '..' or '.')",
                      fix="e.g. outputs: [stylized.png, dreamed.png]")
        if not parameters and not runs:
            raise bad("the grid defines no runs", fix="add `parameters:` (lists expand into runs) or `runs:`")
        notebook = _find_file(str(grid.get("notebook") or DEFAULT_NOTEBOOK), base, where=where)
        return cls(notebook, dict(parameters), tuple(map(dict, runs)), tuple(outputs or DEFAULT_OUTPUTS), base, source)


def _find_file(value: str, base: Path, *, where: str) -> Path:
    """The first file among ``base``'s, the repository's, the notebooks' and the working folder's ``value``."""
    path = Path(value).expanduser()  # an absolute path stays itself below
    candidates = [folder / path for folder in (base, REPO_ROOT, REPO_ROOT / "notebooks", Path.cwd())]
    for candidate in candidates:
        if candidate.is_file():
            return candidate.resolve()
    looked = ", ".join(dict.fromkeys(str(c.resolve().parent) for c in candidates))
    raise MissingFileError(f"no such file {value!r} (looked in {looked})", where=where,
                           fix="give a path relative to the grid file or the repository, or an absolute path")


def load_grid(grid: GridSpec | Mapping[str, Any] | str | os.PathLike) -> GridSpec:
    """A grid as a :class:`GridSpec`: a mapping checked, a YAML file read (no anchors, aliases, duplicate keys)."""
    if isinstance(grid, (GridSpec, Mapping)):
        return grid if isinstance(grid, GridSpec) else GridSpec.from_dict(grid)
    import yaml
    path, bad = Path(grid), functools.partial(InputError, where=str(grid))
    files.check_regular_file(path, what="grid file", max_bytes=MAX_GRID_BYTES, fix="give a YAML file")

    class Loader(yaml.SafeLoader):
        def construct_mapping(self, node, deep=False):
            lines: dict[str, int] = {}
            for key in (key for key, _ in node.value if isinstance(key, yaml.ScalarNode)):
                if key.value in lines:
                    raise bad(f"key {key.value!r} appears twice (lines {lines[key.value]} and "
                              f"{key.start_mark.line + 1})", fix="keep one of them: YAML would silently use the last")
                lines[key.value] = key.start_mark.line + 1
            return super().construct_mapping(node, deep)

    Loader.add_constructor("tag:yaml.org,2002:timestamp", Loader.construct_scalar)
    try:
        text = path.read_bytes().decode("utf-8")
        for event in yaml.parse(text, Loader=Loader):  # before composing: an alias bomb is never expanded
            if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
                raise bad(f"line {event.start_mark.line + 1} has a YAML anchor or alias",
                          fix="write the values out: a grid needs no anchors (&name) or aliases (*name)")
        grid = Loader(text).get_single_data()
    except UnicodeDecodeError as exc:
        raise bad(f"is not UTF-8 (byte {exc.start} is {exc.object[exc.start]:#04x})", fix="save it as UTF-8") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise bad(f"not valid YAML{f' at line {mark.line + 1}' if mark else ''}: "
                  f"{getattr(exc, 'problem', None) or exc}", fix="check the indentation and quoting there") from exc
    except RecursionError:
        raise bad("is nested too deeply to read", fix="write a flatter grid") from None
    return GridSpec.from_dict({} if grid is None else grid, base_dir=path.parent, source=path)


def count_runs(spec: GridSpec | Mapping[str, Any] | str | os.PathLike) -> int:
    """How many runs a grid has, without expanding it: the product of its axis lengths times its ``runs``."""
    spec = load_grid(spec)
    return math.prod(len(v) for v in spec.parameters.values() if isinstance(v, list)) * max(1, len(spec.runs))


def expand_grid(spec: GridSpec | Mapping[str, Any] | str | os.PathLike) -> list[dict[str, Any]]:
    """The runs, unchecked: each combination of the list-valued parameters (the last fastest) × ``runs``."""
    spec = load_grid(spec)
    axes = [key for key, value in spec.parameters.items() if isinstance(value, list)]
    return [{**spec.parameters, **dict(zip(axes, values)), **run}
            for values in itertools.product(*(spec.parameters[k] for k in axes)) for run in spec.runs or [{}]]


@dataclass(frozen=True)
class Run:
    """``parameters`` as the grid gives them; ``values`` as the notebook gets them (absolute paths)."""

    index: int
    run_id: str  # <index>-<what varies>-<hash>
    parameters: dict[str, Any]
    values: dict[str, Any]
    varying: tuple[str, ...] = ()  # the grid's keys that differ between runs
    files: tuple[str, ...] = ()  # the file parameters

    def label(self, *, sep: str = " ") -> str:
        """``content=astronaut style=spiral``: what varies, files by stem."""
        return sep.join(f"{key}={_short(self.parameters[key], key in self.files)}" if key in self.parameters
                        else f"{key}=(default)" for key in self.varying or tuple(self.parameters))


def _short(value: Any, is_file: bool = False) -> str:
    if is_file and isinstance(value, str):
        return Path(value).stem
    return f"{value:g}" if isinstance(value, float) else str(value)


def _check(key: str, value: Any, defaults: Mapping[str, Any], notebook: Path) -> Any:
    """``value`` checked (declared, the default's type, MINIMUMS, a preset) as the notebook gets it: InputError."""
    if key == RESERVED:
        raise InputError(f"parameter {key!r} is set by the batch (each run's folder)",
                         fix=f"remove {key!r} from the grid; use --out to choose where runs go")
    if key not in defaults:
        raise InputError(f"unknown parameter {key!r}: the notebook {notebook.name} does not define it in its "
                         "parameters cell", fix=did_you_mean(key, defaults, f"defined: {', '.join(defaults)}"))
    default = defaults[key]
    kind = list if isinstance(default, tuple) else type(default)
    value = float(value) if kind is float and type(value) is int else value
    if kind in _TYPES and not (isinstance(value, kind) and (kind is bool or not isinstance(value, bool))):
        number = isinstance(value, str) and re.fullmatch(r"\s*[-+]?[\d.]+(e[-+]?\d+)?\s*", value, re.I)
        raise InputError(f"parameter {key!r} must be {_TYPES[kind]} like the notebook's default {default!r}, got "
                         f"{_TYPES.get(type(value), type(value).__name__)} {value!r}", fix=f"give {_TYPES[kind]}"
                         + (" (unquoted; YAML reads 1e-3 as a string, write 1.0e-3)" if number else ""))
    if key in MINIMUMS and isinstance(value, (int, float)) and value < MINIMUMS[key]:
        raise InputError(f"parameter {key!r} is {value}, below the {MINIMUMS[key]} the notebook needs",
                         fix=f"give {key} ≥ {MINIMUMS[key]}")
    if key == "preset" and isinstance(value, str):
        presets.get_preset(value)
    return value


def validate(spec: GridSpec | Mapping[str, Any] | str | os.PathLike, *, max_runs: int = MAX_RUNS) -> list[Run]:
    """The runs, checked against the notebook's ``parameters`` cell, files found: InputError naming the run."""
    spec = load_grid(spec)
    bad = functools.partial(InputError, where=str(spec.source or "grid"))
    if (total := count_runs(spec)) > max_runs:
        raise bad(f"the grid has {total:_} runs, over the limit of {max_runs:_}",
                  fix="use fewer or shorter axes, or raise the limit (--max-runs N, max_runs=N) if you mean it")
    try:
        defaults = report.declared_parameters(spec.notebook)
    except (OSError, ValueError) as exc:  # not a notebook (InputError: its parameters cell is not Python)
        raise bad(f"cannot read the parameters of {spec.notebook}: {getattr(exc, 'what', exc)}",
                  fix=getattr(exc, "fix", None) or "give a Jupyter notebook with a cell tagged 'parameters'") from exc
    if RESERVED not in defaults:
        raise bad(f"the notebook {spec.notebook.name} has no parameter {RESERVED!r}",
                  fix=f"add `{RESERVED} = \"...\"` to its parameters cell: each run's folder, for its outputs")
    file_defaults = [name for name, default in defaults.items() if isinstance(default, str) and default and (
        Path(default).suffix.lower() in IMAGE_SUFFIXES or (spec.notebook.parent / default).is_file())]
    grid = expand_grid(spec)
    keys = dict.fromkeys(key for run in grid for key in run)
    varying = tuple(k for k in keys if len({json.dumps(run.get(k), sort_keys=True) for run in grid}) > 1)
    quiet = {"progress": False} if isinstance(defaults.get("progress"), bool) else {}  # no progress bars in a batch
    runs, width = [], max(3, len(str(len(grid) - 1)))
    for index, given in enumerate(grid):
        parameters, values, file_keys = {}, dict(quiet), []
        try:
            for key, value in given.items():
                parameters[key] = values[key] = value = _check(key, value, defaults, spec.notebook)
                default = defaults[key]
                image = isinstance(default, str) and Path(default or value).suffix.lower() in IMAGE_SUFFIXES
                if key in file_defaults or (default == "" and image):
                    file_keys.append(key)
                    values[key] = str(_find_file(value, spec.base_dir, where=""))
                    if image:
                        images.validate_image_path(values[key])
        except NstdreamError as exc:
            label = ", ".join(f"{k}={given.get(k)!r}" for k in varying or given)
            what = exc.what if exc.where is None else f"parameter {key!r}: {exc.what}"
            raise bad(f"run {index} ({label}): {what}", fix=exc.fix) from exc
        shown = {**{k: defaults[k] for k in varying if k not in parameters and k in defaults}, **parameters}
        slug = "-".join(_short(v, k in file_defaults or k in file_keys) if isinstance(v := shown.get(k), str)
                        else f"{k}{_short(v)}" for k in varying or file_keys)  # what varies, else the files
        slug = re.sub(r"[^A-Za-z0-9_.]+", "-", slug)[:48].strip("-.") or "run"
        blob = json.dumps({"notebook": spec.notebook.name, "parameters": parameters}, sort_keys=True)
        run_id = f"{index:0{width}d}-{slug}-{hashlib.sha1(blob.encode()).hexdigest()[:8]}"
        runs.append(Run(index, run_id, parameters, values, varying, tuple(file_keys)))
    return runs


def check_outputs(folder: str | os.PathLike, *, notebook_name: str, outputs: Sequence[str]) -> tuple[str | None, dict]:
    """(why the run folder is incomplete, {}) or (None, each stage's final loss from ``metrics.json``)."""
    try:
        nb = nbformat.read(Path(folder, notebook_name), as_version=4)
        metrics = json.loads(Path(folder, "metrics.json").read_text(encoding="utf-8"))
        losses = {k: v["final_loss"] for k, v in metrics.items() if isinstance(v, Mapping) and "final_loss" in v}
        for name in outputs:
            with Image.open(Path(folder, name)) as image:
                image.load()  # a truncated image fails here
    except Exception as exc:  # noqa: BLE001 — missing, unreadable or truncated: the run is incomplete
        return f"{type(exc).__name__}: {report.shorten(str(exc), 200)}", {}
    if errors := [o.get("ename") for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]:
        return f"{notebook_name} stores an error ({errors[0]})", {}
    if metrics.get("status") != "completed" or not losses or not all(
            type(loss) in (int, float) and math.isfinite(loss) for loss in losses.values()):
        return "metrics.json is not completed, or without finite final losses", {}
    return None, losses


def _error(ename: str, evalue: Any, cell_index: int | None = None, cell: str = "") -> dict[str, Any]:
    return {"ename": ename, "evalue": report.shorten(evalue, 300), "cell_index": cell_index, "cell": cell}


def execute_run(notebook: str, runs_dir: str, run_id: str, values: Mapping[str, Any], outputs: Sequence[str],
                retries: int = 0) -> dict[str, Any]:
    """On a worker: papermill in a temporary folder, up to ``1 + retries`` times, renamed into place: the record."""
    notebook, temp = Path(notebook), Path(runs_dir, f".{run_id}.tmp-{os.getpid()}")
    for attempt in range(1, max(retries, 0) + 2):
        with _LOCK:
            shutil.rmtree(temp, ignore_errors=True)
            temp.mkdir(parents=True)
            start, losses = time.perf_counter(), {}
            try:
                report.execute_notebook(notebook, temp / notebook.name, parameters={**values, RESERVED: str(temp)})
                problem, losses = check_outputs(temp, notebook_name=notebook.name, outputs=outputs)
                error = problem and _error("IncompleteOutputs", f"the notebook ran but {problem}")
            except report.NotebookError as exc:
                error = _error(exc.ename, exc.evalue, exc.cell_index, exc.source_line)
            except NstdreamError as exc:  # no such kernel
                error = _error(type(exc).__name__, exc)
            seconds = time.perf_counter() - start
        if not error:
            break
    shutil.rmtree(Path(runs_dir, run_id), ignore_errors=True)  # an earlier, incomplete run
    os.rename(temp, Path(runs_dir, run_id))
    return {"status": "failed" if error else "completed", "attempts": attempt, "seconds": round(seconds, 3),
            "finished": time.strftime(_ISO), "error": error, "final_losses": losses}


def gpu_ids() -> list[str]:
    """The GPUs to spread runs over: ``CUDA_VISIBLE_DEVICES`` when set, else one per ``nvidia-smi -L`` GPU."""
    if (visible := os.environ.get("CUDA_VISIBLE_DEVICES")) is not None:
        return [gpu.strip() for gpu in visible.split(",") if gpu.strip() not in ("", "-1")]
    try:  # no nvidia-smi, or one that fails or hangs: no GPUs
        listed = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [str(index) for index in range(len(re.findall(r"^GPU \d+:", listed, re.M)))]


def _local_worker(gpu: str | None) -> None:
    """In a local worker: Ctrl-C is the batch's to handle; its kernels see only ``gpu`` (None: all GPUs)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = gpu


def _connect(workers: int, scheduler: str | None, gpus: Sequence[str]):
    """A Dask client on ``scheduler``, else on a LocalCluster of ``workers`` processes: InputError if it fails."""
    from distributed import Client
    try:  # the workers log nothing below CRITICAL: a heartbeat to a scheduler that Ctrl-C ended is no news
        client = Client(scheduler, timeout=f"{SCHEDULER_TIMEOUT_S}s") if scheduler else Client(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0", silence_logs="CRITICAL")
    except Exception as exc:  # noqa: BLE001 — OSError, TimeoutError, ValueError: cannot connect
        where = f"--scheduler {scheduler}" if scheduler else "LocalCluster"
        raise InputError(f"cannot reach the Dask scheduler ({exc})", where=where,
                         fix="check the address (tcp://HOST:8786) and that `dask scheduler` runs") from exc
    for slot, address in enumerate([] if scheduler else sorted(client.scheduler_info()["workers"])):
        client.run(_local_worker, gpus[slot % len(gpus)] if gpus else None, workers=[address])
    return client


@dataclass
class BatchResult:
    """The runs and their manifest records (``status`` completed/failed/pending/interrupted, ``skipped``)."""

    out: Path
    runs: list[Run]
    records: list[dict[str, Any]]
    workers: int = 1

    skipped = property(lambda self: [r["run_id"] for r in self.records if r["skipped"]])
    executed = property(lambda self: [r["run_id"] for r in self.records if r["status"] == "completed"
                                      and not r["skipped"]])
    failed = property(lambda self: [r["run_id"] for r in self.records if r["status"] in ("failed", "interrupted")])
    ok = property(lambda self: not self.failed)


def _read_manifest(out: Path) -> dict[str, dict]:
    """The manifest's records by run id; none if it is missing or damaged (the run folders are the truth)."""
    with contextlib.suppress(OSError, ValueError, TypeError, KeyError):
        return {r["run_id"]: r for r in json.loads((out / "manifest.json").read_text(encoding="utf-8"))["runs"]}
    return {}


def run_batch(spec_or_path: GridSpec | Mapping[str, Any] | str | os.PathLike, out: str | os.PathLike, *,
              workers: int | None = None, scheduler: str | None = None, retries: int = 0,
              dry_run: bool = False, progress: bool = True, max_runs: int = MAX_RUNS) -> BatchResult:
    """Run the incomplete runs on Dask (``scheduler``, else ``workers`` local processes: one per GPU or 1), then
    write the reports (``dry_run``: nothing). InputError, MissingFileError before writing; Ctrl-C after recording."""
    from distributed import as_completed
    from tqdm.auto import tqdm
    spec = load_grid(spec_or_path)
    runs, out = validate(spec, max_runs=max_runs), Path(out)
    gpus, runs_dir, previous, records = [] if scheduler else gpu_ids(), out / "runs", _read_manifest(out), []
    done = functools.partial(check_outputs, notebook_name=spec.notebook.name, outputs=spec.outputs)
    for run in runs:
        old, (problem, losses) = previous.get(run.run_id, {}), done(runs_dir / run.run_id)
        records.append({"index": run.index, "run_id": run.run_id, "label": run.label(), "folder": f"runs/{run.run_id}",
                        "parameters": run.parameters, "status": "pending" if problem else "completed",
                        "skipped": not problem, "attempts": old.get("attempts") or 0, "seconds": old.get("seconds"),
                        "finished": old.get("finished"), "error": problem and old.get("error"),
                        "final_losses": losses, "incomplete": problem})
    result = BatchResult(out, runs, records, workers=workers or max(1, len(gpus)))
    todo = [(run, record) for run, record in zip(runs, records) if not record["skipped"]]
    if dry_run:
        return result
    client = _connect(result.workers, scheduler, gpus) if todo else None  # unreachable: nothing written
    try:
        runs_dir.mkdir(parents=True, exist_ok=True)
        for temp in runs_dir.glob(".*.tmp-*"):  # left by killed runs
            shutil.rmtree(temp, ignore_errors=True)
        _write_reports(result, spec, final=False)
        if client is not None:
            result.workers = len(client.scheduler_info().get("workers", {})) or result.workers
            futures = {client.submit(execute_run, str(spec.notebook), str(runs_dir.resolve()), run.run_id, run.values,
                                     spec.outputs, retries, pure=False): record for run, record in todo}
            for future in tqdm(as_completed(futures), total=len(todo), desc="nstdream batch", unit="run",
                               disable=not progress, file=sys.stderr):
                try:
                    outcome = future.result()
                except Exception as exc:  # noqa: BLE001 — a worker died or the scheduler went away
                    outcome = {"status": "failed", "attempts": 1, "seconds": None, "finished": time.strftime(_ISO),
                               "error": _error(type(exc).__name__, exc), "final_losses": {}}
                record = futures[future]
                record.update(outcome, incomplete=None, attempts=record["attempts"] + outcome["attempts"])
                _write_reports(result, spec, final=False)
    except BaseException:  # judged on the files: a run that finished before the interruption counts
        for run, record in todo:
            if record["status"] == "pending":
                problem, record["final_losses"] = done(runs_dir / run.run_id)
                record["status"] = "interrupted" if problem else "completed"
        raise
    finally:
        if client is not None:
            with contextlib.suppress(Exception):  # a busy or dead worker must not keep Ctrl-C from ending the batch
                client.close(timeout=10)
        if runs_dir.is_dir():
            _write_reports(result, spec)
    return result


def _write_reports(result: BatchResult, spec: GridSpec, *, final: bool = True) -> None:
    """``manifest.json``; if ``final``, also ``summary.csv`` and ``contact_sheet.png`` (each run's last output)."""
    files.write_json({"grid": spec.source, "notebook": spec.notebook, "outputs": spec.outputs,
                      "updated": time.strftime(_ISO), "workers": result.workers, "runs": result.records},
                     result.out / "manifest.json")
    if not final:
        return
    keys = dict.fromkeys(k for run in result.runs for k in run.parameters)
    stages = dict.fromkeys(f"{s}_final_loss" for r in result.records for s in r["final_losses"])
    writer = csv.DictWriter(text := io.StringIO(), ["index", "run_id", "status", *keys, *stages, "seconds",
                                                    "attempts", "error"], extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows({**r["parameters"], **{f"{s}_final_loss": v for s, v in r["final_losses"].items()}, **r,
                      "error": f"{r['error']['ename']}: {r['error']['evalue']}" if r["error"] else ""}
                     for r in result.records)
    files.atomic_write_text(text.getvalue(), result.out / "summary.csv")
    side, ncols, head = 200, min(6, math.ceil(math.sqrt(len(result.runs)))), 14 * (2 + len(result.runs[0].varying))
    sheet = Image.new("RGB", (ncols * side, math.ceil(len(result.runs) / ncols) * (head + side)), "white")
    for slot, (run, record) in enumerate(zip(result.runs, result.records)):
        x, y = slot % ncols * side, slot // ncols * (head + side)
        ImageDraw.Draw(sheet).multiline_text((x + 4, y + 4), f"#{run.index} {record['status']}\n"
                                             + run.label(sep="\n"), fill="black", font_size=11)
        with contextlib.suppress(OSError), Image.open(result.out / "runs" / run.run_id / spec.outputs[-1]) as image:
            image.thumbnail((side - 8, side - 8))  # a failed run has no image
            sheet.paste(image.convert("RGB"), (x + 4, y + head))
    sheet.save(png := io.BytesIO(), format="PNG")
    files.atomic_write_bytes(png.getvalue(), result.out / "contact_sheet.png")


def main_from_args(args) -> int:
    """``nstdream batch``: 0 when every run completed, 1 otherwise, 130 on Ctrl-C (one line says what finished)."""
    try:
        result = run_batch(args.grid, args.out, workers=args.workers, scheduler=args.scheduler,
                           retries=args.retries, dry_run=args.dry_run, max_runs=args.max_runs or MAX_RUNS)
    except KeyboardInterrupt:
        done = [r.get("status") == "completed" for r in _read_manifest(Path(args.out)).values()]
        print(f"\ninterrupted: {sum(done)} of {len(done)} runs complete, see {Path(args.out, 'manifest.json')}; "
              "rerun the same command to go on (complete runs are skipped)" if done else
              "\ninterrupted before the batch started: nothing written", file=sys.stderr)
        return 130
    for r in result.records:  # as the manifest records them
        if args.dry_run:
            print(f"{'skip' if r['skipped'] else 'run '} {r['run_id']}  {r['label']}"
                  + ("  (complete)" if r["skipped"] else f"  (failed before: {r['incomplete']})" if r["error"] else ""))
        elif r["status"] != "completed" and (error := r["error"]):
            cell = f"cell {error['cell_index']} (`{error['cell']}`) " if error.get("cell_index") is not None else ""
            print(f"failed {r['run_id']} after {r['attempts']} attempt(s): {cell}raised "
                  f"{error['ename']}: {error['evalue']}", file=sys.stderr)
    if args.dry_run:
        print(f"{len(result.runs) - len(result.skipped)} to run, {len(result.skipped)} complete, "
              f"{len(result.runs)} in the grid → {result.out}")
        return 0
    print(f"{len(result.runs)} runs: {len(result.executed)} ran, {len(result.skipped)} were complete, "
          f"{len(result.failed)} failed — see {result.out / 'summary.csv'} and contact_sheet.png")
    return 0 if result.ok else 1
