"""Run a notebook over a grid of parameters with papermill on Dask.

``nstdream batch GRID.yaml --out DIR [--workers N] [--scheduler ADDRESS] [--retries N] [--dry-run]``

**The grid file** (YAML, read with ``yaml.safe_load`` only)::

    notebook: ../notebooks/06_nst_to_deepdream.ipynb   # optional; this is the default
    parameters:                 # scalars are fixed; every list is an axis of a Cartesian product
      content: [../data/content/astronaut.png, ../data/content/chelsea.png]
      style: [../data/styles/triangle.png, ../data/styles/spiral.png]
      size: 64
    runs:                       # optional explicit runs: each dict is merged over every combination
      - {nst_steps: 5}
    outputs: [stylized.png, dreamed.png]   # optional: images each run must write (the default)

Relative paths (``notebook:`` and file parameters) are looked up in the YAML's folder first, then
in the repository holding this package, then in its ``notebooks/`` folder (paths as the notebooks
write them, ``../data/...``), then in the working directory. The last key of
``parameters`` varies fastest and ``runs`` is the innermost axis. A list inside a ``runs`` entry is
passed as it is; in ``parameters`` write a one-element list of lists (``layers: [[mixed3, mixed5]]``)
to pass one list value.

**Checked before anything runs** (one :class:`~nstdream_utils.errors.InputError` naming the key and
the run, exit code 2, nothing written): every key must be defined by the notebook's ``parameters``
cell (``papermill.inspect_notebook``); a value must have the type of the notebook's default (an int
is accepted, and passed as a float, where the default is a float); a *file parameter* — a string
default ending in an image suffix or naming a file beside the notebook (``content``, ``style``), or a
``""`` default given an image path (``style2``, ``mask``, ``guide``) — must name an image that
opens; a ``preset`` must exist; values respect :data:`MINIMUMS`. ``output_dir`` is set by the batch
(each run's folder); ``progress`` is False unless the grid sets it. A grid of more than
:data:`MAX_RUNS` runs (counted without expanding it) needs ``max_runs=`` / ``--max-runs``.

**The output folder**::

    DIR/manifest.json          every run: parameters, status, attempts, seconds, finished, error
    DIR/summary.csv            one row per run: parameters, final losses, time
    DIR/contact_sheet.png      the last output image of every run, labelled by what varies
    DIR/runs/<run_id>/         the executed notebook, its images and metrics.json

A run id is ``<index>-<values that vary>-<8 hex digits of a hash of the notebook name and the
parameters>``, e.g. ``001-astronaut-spiral-3f9c2a71``.

**Resume.** Running the same grid again skips every run whose outputs are complete
(:func:`check_outputs`, judged on the files, not the manifest); the others run again, each at most
``1 + retries`` times per call. A run executes in ``runs/.<run_id>.tmp-<pid>/`` and is renamed to
``runs/<run_id>/`` when papermill returns, so a killed run leaves no half-written run folder; stale
temporary folders are removed at the next start, and a complete run folder is never replaced.

**Dask.** Runs go to the Dask cluster at ``scheduler`` (its workers need this package and the grid's
files at the same paths), else to a ``distributed.LocalCluster`` of ``workers`` single-threaded
processes (default: 1 on a CPU, one per GPU, each worker seeing one GPU); Dask's worker processes end
with the batch. Each run is :func:`nstdream_utils.report.execute_notebook` (papermill, parameters as
literals, the notebook's folder as working directory). A failing run records the exception and the
failing cell in the manifest and the batch goes on.

Imports ``files``, ``images``, ``presets`` and ``report``, never TensorFlow (each run's kernel does).
Taught in notebook 09 (the appendix), which runs notebook 06 over grids.
"""

from __future__ import annotations

import ast
import csv
import datetime as dt
import difflib
import hashlib
import io
import itertools
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from . import files, images, presets, report
from .errors import InputError, MissingFileError, NstdreamError

__all__ = [
    "GridSpec", "Run", "BatchResult", "count_runs", "expand_grid", "load_grid", "validate", "run_batch",
    "check_outputs", "execute_run", "main_from_args", "DEFAULT_NOTEBOOK", "DEFAULT_OUTPUTS",
]

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_NOTEBOOK = "notebooks/06_nst_to_deepdream.ipynb"
DEFAULT_OUTPUTS = ("stylized.png", "dreamed.png")
METRICS_FILE = "metrics.json"
STAGE_ORDER = ("nst", "dream")  # summary columns: these stages first, in pipeline order
GRID_KEYS = ("notebook", "parameters", "runs", "outputs")
RESERVED = "output_dir"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
KERNEL_NAME = "python3"
# Kernel environment as in a report (report._kernel_environment); arguments like
# report.KERNEL_ARGUMENTS, but keeping ipykernel's errors for the run's log.
KERNEL_ARGUMENTS = ["--IPKernelApp.log_level=ERROR"]
#: Largest grid file read (bytes), and most values its YAML may expand to, aliases counted as copies.
MAX_GRID_BYTES = 1 << 20
MAX_GRID_NODES = 100_000
#: Most runs a grid may have unless ``max_runs=`` (``--max-runs``) allows more.
MAX_RUNS = 10_000
#: Lower bounds the notebook's own checks need: one NST or DeepDream step cannot show the loss
#: falling or rising, and Inception v3 needs 75 px.
MINIMUMS = {"nst_steps": 2, "dream_steps": 2, "dream_size": 75, "seed": 0}
#: How long to try to reach a ``--scheduler`` address before giving up (seconds).
SCHEDULER_TIMEOUT_S = 30
_SCHEDULER = re.compile(r"(?:(?:tcp|tls|ws|wss|ucx|inproc)://)?(?:[A-Za-z0-9_.-]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?")
_TEMP = re.compile(r"^\.(?P<run_id>.+)\.(?:tmp|old)-(?P<pid>\d+)$")
_NO_DEFAULT = object()


# ------------------------------------------------------------------------------------ the grid


@dataclass(frozen=True)
class GridSpec:
    """A grid: the notebook to run, its parameters (lists are axes), explicit runs, expected outputs.

    Attributes:
        notebook: the notebook file (absolute).
        parameters: name → value; a list is an axis of the Cartesian product.
        runs: explicit runs, each merged over every combination of ``parameters``.
        outputs: image files (in the run folder) a complete run has written; the last one goes on
            the contact sheet.
        base_dir: the folder relative paths are looked up in first (the YAML's folder).
        source: the YAML file, or None for a grid given as a dict.
    """

    notebook: Path
    parameters: dict[str, Any] = field(default_factory=dict)
    runs: tuple[dict[str, Any], ...] = ()
    outputs: tuple[str, ...] = DEFAULT_OUTPUTS
    base_dir: Path = field(default_factory=Path.cwd)
    source: Path | None = None

    @property
    def where(self) -> str:
        """How error messages name this grid: its file, or ``grid``."""
        return str(self.source) if self.source else "grid"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, base_dir: str | os.PathLike | None = None,
                  source: str | os.PathLike | None = None) -> "GridSpec":
        """Check a grid's structure (not its values) and resolve its notebook.

        Raises:
            InputError: not a mapping, an unknown top-level key, a bad ``parameters``/``runs``/
                ``outputs`` shape, an empty axis, no runs at all.
            MissingFileError: the notebook cannot be found.
        """
        where = str(source) if source else "grid"
        base = Path(base_dir) if base_dir is not None else Path.cwd()
        _check_structure(data, where)
        notebook = _find_file(data.get("notebook") or DEFAULT_NOTEBOOK, base, where=where, key="notebook",
                              fix="give `notebook:` a path relative to the grid file or the repository")
        if notebook.suffix != ".ipynb":
            raise InputError(f"notebook {notebook.name!r} is not a .ipynb file", where=where,
                             fix="point `notebook:` at a Jupyter notebook")
        outputs = tuple(data.get("outputs") or DEFAULT_OUTPUTS)
        return cls(notebook=notebook, parameters=dict(data.get("parameters") or {}),
                   runs=tuple(dict(r) for r in data.get("runs") or ()), outputs=outputs,
                   base_dir=base.resolve(), source=Path(source) if source else None)


def _plain_name(name: Any) -> bool:
    """A file name that stays in its folder: no separator, not ``.`` or ``..``, no NUL."""
    return (isinstance(name, str) and name not in ("", ".", "..")
            and not any(c in name for c in ("/", "\\", "\0")))


def count_runs(spec: GridSpec | Mapping[str, Any]) -> int:
    """How many runs a grid has, without expanding it: the product of its axis lengths times its ``runs``."""
    if isinstance(spec, GridSpec):
        parameters, runs = spec.parameters, spec.runs
    else:
        parameters, runs = dict(spec.get("parameters") or {}), spec.get("runs") or []
    return math.prod(len(v) for v in parameters.values() if isinstance(v, list)) * max(1, len(runs))


def _check_structure(data: Any, where: str) -> None:
    """Raise InputError when ``data`` is not a well-formed grid (values are not checked here)."""
    if not isinstance(data, Mapping):
        raise InputError(f"a grid must be a mapping with `parameters:` (got {type(data).__name__})",
                         where=where, fix="see examples/grid_small.yaml")
    for key in data:
        if key not in GRID_KEYS:
            close = difflib.get_close_matches(str(key), GRID_KEYS, n=1)
            raise InputError(f"unknown top-level key {key!r}", where=where,
                             fix=f"did you mean {close[0]!r}?" if close else f"use {', '.join(GRID_KEYS)}")
    parameters, runs = data.get("parameters") or {}, data.get("runs") or []
    if not isinstance(parameters, Mapping):
        raise InputError("`parameters:` must be a mapping name: value", where=where,
                         fix="write one `name: value` (or `name: [v1, v2]`) per line")
    if not isinstance(runs, list) or not all(isinstance(r, Mapping) for r in runs):
        raise InputError("`runs:` must be a list of mappings", where=where,
                         fix="write each run as `- {name: value, ...}`")
    for mapping in [parameters, *runs]:
        for key in mapping:
            if not isinstance(key, str) or not key.isidentifier():
                raise InputError(f"parameter name {key!r} is not a Python identifier", where=where,
                                 fix="use the names of the notebook's parameters cell")
    for key, value in parameters.items():
        if isinstance(value, list) and not value:
            raise InputError(f"parameter {key!r} is an empty list, which gives no runs", where=where,
                             fix=f"give {key!r} at least one value")
    outputs = data.get("outputs")
    if outputs is not None and (not isinstance(outputs, list) or not outputs
                                or not all(_plain_name(o) for o in outputs)):
        raise InputError("`outputs:` must be a list of file names inside the run folder (no '/', '..' or '.')",
                         where=where, fix="e.g. outputs: [stylized.png, dreamed.png]")
    if not parameters and not runs:
        raise InputError("the grid defines no runs", where=where,
                         fix="add `parameters:` (lists expand into runs) or `runs:`")


def _candidates(value: str | os.PathLike, base: Path) -> list[Path]:
    path = Path(value).expanduser()
    if path.is_absolute():
        return [path]
    folders = []
    for folder in (base, REPO_ROOT, REPO_ROOT / "notebooks", Path.cwd()):
        if folder.resolve() not in folders:
            folders.append(folder.resolve())
    return [folder / path for folder in folders]


def _find_file(value: Any, base: Path, *, where: str, fix: str, key: str | None = None) -> Path:
    """The first existing file among ``_candidates``; MissingFileError naming where it looked."""
    for candidate in _candidates(value, base):
        if candidate.is_file():
            return candidate.resolve()
    looked = ", ".join(str(c.parent) for c in _candidates(value, base))
    what = f"no such file {str(value)!r} (looked in {looked})"
    raise MissingFileError(f"{key}: {what}" if key else what, where=where, fix=fix)


def load_grid(path: str | os.PathLike) -> GridSpec:
    """Read a grid YAML file (``yaml.safe_load``) into a :class:`GridSpec`.

    Raises:
        MissingFileError: no such grid file, or its notebook is missing.
        InputError: not a regular file (a FIFO, a device, a folder), over :data:`MAX_GRID_BYTES`, not
            UTF-8, not valid YAML, a duplicate key, aliases expanding past :data:`MAX_GRID_NODES`
            values, or not a well-formed grid (with the YAML line where known).
    """
    import yaml

    path = Path(path)
    if not os.path.lexists(path):
        raise MissingFileError("no such grid file", where=str(path),
                               fix="give a YAML file, e.g. examples/grid_small.yaml")
    files.check_regular_file(path, what="grid file", max_bytes=MAX_GRID_BYTES,
                             fix="give a YAML file, e.g. examples/grid_small.yaml")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"is not UTF-8 text (byte {exc.start} is {exc.object[exc.start]:#04x})", where=str(path),
                         fix="save the grid as UTF-8 text") from None
    try:
        data = _load_yaml(text, str(path))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" at line {mark.line + 1}" if mark is not None else ""
        raise InputError(f"not valid YAML{line}: {getattr(exc, 'problem', None) or exc}", where=str(path),
                         fix="check the indentation and quoting there") from exc
    return GridSpec.from_dict(data if data is not None else {}, base_dir=path.parent, source=path)


def _load_yaml(text: str, where: str) -> Any:
    """``yaml.safe_load(text)``, refusing duplicate keys and aliases that expand past :data:`MAX_GRID_NODES`.

    Aliases are counted as the copies they stand for, so a few lines of nested anchors that would
    expand into billions of values (an "alias bomb") are refused before anything is built.
    """
    import yaml

    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_nodes(node, where)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _check_nodes(root: Any, where: str) -> None:
    """Raise InputError for a duplicate mapping key, a recursive alias, or more than MAX_GRID_NODES values."""
    import yaml

    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(node: Any) -> int:
        if id(node) in sizes:
            return sizes[id(node)]
        if id(node) in active:
            raise InputError("an alias refers to the node that contains it", where=where,
                             fix="write the values out instead of a recursive alias")
        active.add(id(node))
        total = 1
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, int] = {}
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.tag != "tag:yaml.org,2002:merge":
                    name = (key.tag, key.value)
                    if name in seen:
                        raise InputError(f"key {key.value!r} appears twice (lines {seen[name] + 1} and "
                                         f"{key.start_mark.line + 1})", where=where,
                                         fix="keep one of them: YAML would silently use the last")
                    seen[name] = key.start_mark.line
                total += size(key) + size(value)
        elif isinstance(node, yaml.SequenceNode):
            total += sum(size(item) for item in node.value)
        active.discard(id(node))
        if total > MAX_GRID_NODES:
            raise InputError(f"expands to more than {MAX_GRID_NODES:_} values (through its aliases)", where=where,
                             fix="write a smaller grid; anchors and aliases count as the copies they stand for")
        sizes[id(node)] = total
        return total

    size(root)


def _as_spec(spec: GridSpec | Mapping[str, Any] | str | os.PathLike) -> GridSpec:
    if isinstance(spec, GridSpec):
        return spec
    if isinstance(spec, Mapping):
        return GridSpec.from_dict(spec)
    return load_grid(spec)


def expand_grid(spec: GridSpec | Mapping[str, Any]) -> list[dict[str, Any]]:
    """The runs of a grid: every combination of the list-valued parameters, times ``runs``.

    Pure: values and files are not checked (see :func:`validate`).

    Args:
        spec: a :class:`GridSpec` or a dict with ``parameters`` (and optionally ``runs``).

    Returns:
        One dict per run, parameter name → value, in the grid's key order; the last list-valued
        key varies fastest, and ``runs`` entries (merged over each combination) faster still.

    Example::

        >>> expand_grid({"parameters": {"style": ["a.png", "b.png"], "size": [64, 96], "seed": 0}})
        ... # doctest: +NORMALIZE_WHITESPACE
        [{'style': 'a.png', 'size': 64, 'seed': 0}, {'style': 'a.png', 'size': 96, 'seed': 0},
         {'style': 'b.png', 'size': 64, 'seed': 0}, {'style': 'b.png', 'size': 96, 'seed': 0}]
    """
    if isinstance(spec, GridSpec):
        parameters, runs = spec.parameters, list(spec.runs)
    else:
        _check_structure(spec, "grid")
        parameters, runs = dict(spec.get("parameters") or {}), list(spec.get("runs") or [])
    axes = [key for key, value in parameters.items() if isinstance(value, list)]
    combos = []
    for values in itertools.product(*(parameters[key] for key in axes)):
        chosen = dict(zip(axes, values))
        combos.append({key: chosen.get(key, value) for key, value in parameters.items()})
    if not runs:
        return combos
    return [{**combo, **dict(run)} for combo in combos for run in runs]


# ------------------------------------------------------------------------------ validation


@dataclass(frozen=True)
class Run:
    """One run of a grid.

    Attributes:
        index: position in the grid (0-based).
        run_id: folder name under ``runs/``: ``<index>-<what varies>-<hash>``.
        parameters: the values the grid gives (as written, an int given for a float made a float).
        values: what the notebook receives: ``parameters`` with file paths made absolute, plus
            ``progress=False`` where the notebook has ``progress`` (``output_dir`` is added when
            the run executes).
        varying: the names whose values differ between the grid's runs.
        files: the names that are file parameters.
    """

    index: int
    run_id: str
    parameters: dict[str, Any]
    values: dict[str, Any]
    varying: tuple[str, ...] = ()
    files: tuple[str, ...] = ()

    def label(self, *, sep: str = " ") -> str:
        """What tells this run apart: ``content=astronaut style=spiral`` (file parameters by stem)."""
        keys = self.varying or tuple(self.parameters)
        return sep.join(f"{key}={_short_value(key, self.parameters[key], key in self.files)}"
                        if key in self.parameters else f"{key}=(default)" for key in keys)


def _short_value(key: str, value: Any, is_file: bool) -> str:
    if is_file and isinstance(value, str):
        return Path(value).stem
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _slug(run: dict[str, Any], keys: Sequence[str], file_keys: Sequence[str]) -> str:
    parts = []
    for key in keys:
        value = run.get(key)
        if key in file_keys and isinstance(value, str):
            text = Path(value).stem
        elif isinstance(value, bool):
            text = key if value else f"no-{key}"
        elif isinstance(value, (int, float)):
            text = f"{key}{_short_value(key, value, False)}"
        elif isinstance(value, str):
            text = value
        else:
            text = key
        parts.append(re.sub(r"[^A-Za-z0-9_.]+", "-", text).strip("-.") or key)
    return "-".join(parts)[:48].strip("-.") or "run"


def _run_hash(notebook: Path, parameters: Mapping[str, Any]) -> str:
    blob = json.dumps({"notebook": notebook.name, "parameters": parameters}, sort_keys=True, default=str)
    return hashlib.sha1(blob.encode("utf-8")).hexdigest()[:8]


def _declared(notebook: Path, where: str) -> dict[str, dict]:
    import papermill

    try:
        return dict(papermill.inspect_notebook(str(notebook)))
    except Exception as exc:  # noqa: BLE001 — any reason papermill cannot read it is one input error
        raise InputError(f"papermill cannot read the parameters of {notebook} ({exc})", where=where,
                         fix="give the notebook a Python kernelspec and a cell tagged 'parameters'") from exc


def _default(info: Mapping[str, Any]) -> Any:
    try:
        return ast.literal_eval(str(info.get("default")))
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return _NO_DEFAULT


def _is_file_parameter(default: Any, notebook_dir: Path) -> bool:
    """The documented rule: a string default ending in an image suffix or naming an existing file."""
    if not isinstance(default, str) or not default:
        return False
    path = Path(default)
    return path.suffix.lower() in IMAGE_SUFFIXES or (notebook_dir / path).is_file()


def _plain(value: Any) -> bool:
    if value is None or isinstance(value, (bool, int, float, str)):
        return not (isinstance(value, float) and not math.isfinite(value))
    if isinstance(value, list):
        return all(_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    return False


def _type_name(value: Any) -> str:
    return {bool: "a bool (true/false)", int: "an int", float: "a float", str: "a string",
            list: "a list", dict: "a mapping"}.get(type(value), type(value).__name__)


def _checked_value(key: str, value: Any, default: Any) -> tuple[Any, str | None, str | None]:
    """(value to pass, problem, fix): the type rule of the module docstring."""
    if not _plain(value):
        return value, f"parameter {key!r} is a {type(value).__name__} ({value!r})", \
            "give plain values: numbers, strings, true/false, null, lists or mappings (quote dates)"
    if default is _NO_DEFAULT or default is None:
        return value, None, None
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(default, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif isinstance(default, str):
        ok = isinstance(value, str)
    elif isinstance(default, (list, tuple)):
        ok = isinstance(value, list)
    elif isinstance(default, dict):
        ok = isinstance(value, dict)
    else:
        ok = True
    if ok:
        return value, None, None
    fix = f"give {_type_name(default)}"
    if isinstance(default, (int, float)) and isinstance(value, str):
        try:
            float(value)
            fix += " (unquoted; YAML reads 1e-3 as a string, write 1.0e-3)"
        except ValueError:
            pass
    return value, (f"parameter {key!r} must be {_type_name(default)} like the notebook's default "
                   f"{default!r}, got {_type_name(value)} {value!r}"), fix


def validate(spec: GridSpec | Mapping[str, Any] | str | os.PathLike, *, max_runs: int = MAX_RUNS) -> list[Run]:
    """Check every run of a grid against its notebook, before anything runs; return the runs.

    Args:
        spec: a :class:`GridSpec`, a grid dict, or the path of a grid YAML file.

    Returns:
        The :class:`Run`\\ s, in grid order, with their ids and the values the notebook will get.

    Raises:
        InputError: one message naming the grid, the run (index and what varies) and the key: a
            parameter the notebook does not define, a wrong type, a missing or unreadable file, an
            unknown preset, ``output_dir`` set in the grid, or a notebook without ``output_dir``.
        MissingFileError: the grid file or the notebook is missing.

    Example::

        >>> runs = validate("examples/grid_small.yaml")  # doctest: +SKIP
        >>> [run.run_id for run in runs]  # doctest: +SKIP
        ['000-astronaut-triangle-…', '001-astronaut-spiral-…', '002-chelsea-triangle-…', …]
    """
    spec = _as_spec(spec)
    where = spec.where
    total = count_runs(spec)
    if total > max_runs:
        raise InputError(f"the grid has {total:_} runs, over the limit of {max_runs:_}", where=where,
                         fix="use fewer or shorter axes, or raise the limit (--max-runs N, max_runs=N) if you "
                             "mean it")
    declared = _declared(spec.notebook, where)
    if RESERVED not in declared:
        raise InputError(f"the notebook {spec.notebook.name} has no parameter {RESERVED!r}", where=where,
                         fix=f"add `{RESERVED} = \"...\"` to its parameters cell: batch points it at each "
                             "run's folder, where the notebook must write its outputs")
    defaults = {name: _default(info) for name, info in declared.items()}
    file_keys = tuple(name for name, default in defaults.items()
                      if _is_file_parameter(default, spec.notebook.parent))
    grid = expand_grid(spec)
    keys = list(dict.fromkeys(key for run in grid for key in run))
    varying = tuple(key for key in keys
                    if len({json.dumps(run.get(key), sort_keys=True, default=str) for run in grid}) > 1)

    def fail(index: int, run: dict, problem: str, fix: str) -> InputError:
        shown = varying or tuple(run)
        label = ", ".join(f"{k}={run.get(k)!r}" for k in shown)
        return InputError(f"run {index} ({label}): {problem}", where=where, fix=fix)

    runs, width = [], max(3, len(str(len(grid) - 1)))
    for index, given in enumerate(grid):
        parameters, values, run_file_keys = {}, {}, []
        for key, value in given.items():
            if key == RESERVED:
                raise fail(index, given, f"parameter {key!r} is set by the batch (each run's folder)",
                           f"remove {key!r} from the grid; use --out to choose where runs go")
            if key not in declared:
                close = difflib.get_close_matches(key, list(declared), n=1)
                raise fail(index, given, f"unknown parameter {key!r}: the notebook "
                           f"{spec.notebook.name} does not define it in its parameters cell",
                           f"did you mean {close[0]!r}?" if close else
                           f"defined parameters: {', '.join(declared)}")
            value, problem, fix = _checked_value(key, value, defaults[key])
            if problem:
                raise fail(index, given, problem, fix)
            if key in MINIMUMS and isinstance(value, (int, float)) and value < MINIMUMS[key]:
                raise fail(index, given, f"parameter {key!r} is {value}, below the {MINIMUMS[key]} the notebook "
                           "needs", f"give {key} ≥ {MINIMUMS[key]}")
            parameters[key], values[key] = value, value
            if defaults[key] == "" and isinstance(value, str) and Path(value).suffix.lower() in IMAGE_SUFFIXES:
                run_file_keys.append(key)  # an optional image, given
            if (key in file_keys or key in run_file_keys) and value is not None:
                try:
                    path = _find_file(value, spec.base_dir, where=where, fix="")
                    if key in run_file_keys or Path(str(defaults[key])).suffix.lower() in IMAGE_SUFFIXES:
                        images.validate_image_path(path)
                except NstdreamError as exc:
                    raise fail(index, given, f"parameter {key!r}: {exc.what}",
                               exc.fix or "give a path relative to the grid file or the repository, "
                                          "or an absolute path") from exc
                values[key] = str(path)
            if key == "preset" and isinstance(value, str):
                try:
                    presets.get_preset(value)
                except InputError as exc:
                    raise fail(index, given, f"parameter 'preset': {exc.what}", exc.fix or "") from exc
        if "progress" in declared and "progress" not in given and isinstance(defaults["progress"], bool):
            values["progress"] = False
        shown = {**{k: defaults[k] for k in varying if k not in parameters and k in defaults}, **parameters}
        run_files = (*file_keys, *run_file_keys)
        slug = _slug(shown, varying or [k for k in parameters if k in run_files], run_files)
        run_id = f"{index:0{width}d}-{slug}-{_run_hash(spec.notebook, parameters)}"
        runs.append(Run(index=index, run_id=run_id, parameters=parameters, values=values, varying=varying,
                        files=tuple(k for k in parameters if k in run_files)))
    return runs


# ------------------------------------------------------------------------------ outputs


def _read_metrics(folder: Path) -> dict | None:
    try:
        metrics = json.loads((folder / METRICS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return metrics if isinstance(metrics, dict) else None


def final_losses(metrics: Mapping[str, Any] | None) -> dict[str, Any]:
    """``{stage: final_loss}`` for every top-level entry of a metrics dict that has a ``final_loss``."""
    if not metrics:
        return {}
    return {key: value["final_loss"] for key, value in metrics.items()
            if isinstance(value, Mapping) and "final_loss" in value}


def check_outputs(folder: str | os.PathLike, *, notebook_name: str, outputs: Sequence[str] = DEFAULT_OUTPUTS
                  ) -> str | None:
    """Why a run folder is not complete, or None when it is (the resume rule).

    Complete means: the executed notebook ``notebook_name`` parses and stores no error output;
    ``metrics.json`` parses, has ``"status": "completed"`` and at least one final loss, all finite
    numbers; every file in ``outputs`` exists and decodes as an image.
    """
    from PIL import Image

    folder = Path(folder)
    if not folder.is_dir():
        return "no run folder"
    notebook = folder / notebook_name
    try:
        import nbformat

        nb = nbformat.read(notebook, as_version=4)
    except FileNotFoundError:
        return f"no executed notebook {notebook_name}"
    except Exception as exc:  # noqa: BLE001 — any unreadable notebook makes the run incomplete
        return f"{notebook_name} does not parse ({type(exc).__name__})"
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                return f"{notebook_name} stores an error ({output.get('ename')})"
    metrics = _read_metrics(folder)
    if metrics is None:
        return f"{METRICS_FILE} is missing or does not parse"
    if metrics.get("status") != "completed":
        return f"{METRICS_FILE} has status {metrics.get('status')!r}"
    losses = final_losses(metrics)
    if not losses:
        return f"{METRICS_FILE} has no final losses"
    for stage, value in losses.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return f"{METRICS_FILE}: the final loss of {stage!r} is not a finite number ({value!r})"
    for name in outputs:
        path = folder / name
        try:
            with Image.open(path) as image:
                image.load()
        except FileNotFoundError:
            return f"{name} is missing"
        except Exception as exc:  # noqa: BLE001 — truncated or not an image
            return f"{name} does not open ({type(exc).__name__})"
    return None


# ------------------------------------------------------------------------------ one run (worker)

_EXECUTION_LOCK = threading.Lock()  # papermill changes the process's cwd and env: one run at a time


def _error(ename: str, evalue: Any, cell_index: int | None = None, cell: str = "") -> dict[str, Any]:
    return {"ename": ename, "evalue": report.shorten(evalue, 300), "cell_index": cell_index, "cell": cell}


def _install(temp: Path, final: Path, *, notebook_name: str, outputs: Sequence[str]) -> None:
    """Move a finished temporary folder to its final name; never replace a complete run folder."""
    if final.exists():
        if check_outputs(final, notebook_name=notebook_name, outputs=outputs) is None:
            shutil.rmtree(temp, ignore_errors=True)  # someone finished it meanwhile: keep theirs
            return
        old = final.with_name(f".{final.name}.old-{os.getpid()}")
        shutil.rmtree(old, ignore_errors=True)
        os.rename(final, old)
        os.rename(temp, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(temp, final)


def execute_run(task: Mapping[str, Any]) -> dict[str, Any]:
    """Execute one run with papermill in a temporary folder, then rename it into place.

    Runs on a Dask worker; returns a plain dict and never raises for a failing notebook:
    ``{"run_id", "status": "completed"|"failed", "seconds", "finished", "error", "host", "pid"}``,
    where ``error`` is None or ``{"ename", "evalue", "cell_index", "cell"}`` (``cell_index``:
    0-based, in the source notebook; ``cell``: its first line).

    Args:
        task: ``notebook`` (path), ``runs_dir``, ``run_id``, ``values`` (the parameters),
            ``outputs`` (image names), ``kernel_name``.
    """
    notebook, runs_dir, run_id = Path(task["notebook"]), Path(task["runs_dir"]), task["run_id"]
    outputs = tuple(task.get("outputs") or DEFAULT_OUTPUTS)
    temp, final = runs_dir / f".{run_id}.tmp-{os.getpid()}", runs_dir / run_id
    error = None
    with _EXECUTION_LOCK:
        shutil.rmtree(temp, ignore_errors=True)
        temp.mkdir(parents=True)
        start = time.perf_counter()
        try:
            report.execute_notebook(notebook, temp / notebook.name, parameters={**task["values"], RESERVED: str(temp)},
                                    kernel_name=task.get("kernel_name", KERNEL_NAME))
        except report.NotebookError as exc:
            error = _error(exc.ename, exc.evalue, exc.cell_index, exc.source_line)
        except NstdreamError as exc:  # no such kernel
            error = _error(type(exc).__name__, exc)
        seconds = time.perf_counter() - start
    if error is None:
        problem = check_outputs(temp, notebook_name=notebook.name, outputs=outputs)
        if problem:
            error = _error("IncompleteOutputs", f"the notebook ran but {problem}")
    _install(temp, final, notebook_name=notebook.name, outputs=outputs)
    return {"run_id": run_id, "status": "failed" if error else "completed", "seconds": round(seconds, 3),
            "finished": _now(), "error": error, "host": socket.gethostname(), "pid": os.getpid()}


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# ------------------------------------------------------------------------------ Dask


def gpu_ids() -> list[str]:
    """The GPUs to spread runs over: ``CUDA_VISIBLE_DEVICES`` when set, else ``nvidia-smi``'s list.

    Never imports TensorFlow (which would take GPU memory in the driver).
    """
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [g.strip() for g in visible.split(",") if g.strip() and g.strip() != "-1"]
    try:
        listed = subprocess.run(["nvidia-smi", "--query-gpu=index", "--format=csv,noheader"],
                                capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in listed.stdout.splitlines() if line.strip()] if listed.returncode == 0 else []


def _set_gpu(gpu: str) -> None:
    """Runs in each worker process: its notebooks' kernels inherit this one GPU."""
    os.environ["CUDA_VISIBLE_DEVICES"] = str(gpu)


def _ignore_sigint() -> None:
    """Runs in each local worker process: Ctrl-C is the batch's to handle (it closes the cluster)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _connect(workers: int, scheduler: str | None, gpus: Sequence[str]):
    """A ``distributed.Client`` on ``scheduler``, or on a LocalCluster of ``workers`` single-threaded
    processes (one GPU each where there are GPUs). InputError when the scheduler cannot be reached."""
    import logging

    from distributed import Client, LocalCluster

    cluster = None
    try:
        if scheduler:
            return Client(scheduler, timeout=f"{SCHEDULER_TIMEOUT_S}s")
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               dashboard_address=None, silence_logs=logging.ERROR)
        client = Client(cluster)
    except Exception as exc:  # noqa: BLE001 — OSError, TimeoutError, ValueError: cannot connect
        if cluster is not None:
            cluster.close()
        raise InputError(f"cannot reach the Dask scheduler ({exc})", where=scheduler or "LocalCluster",
                         fix="check the address (tcp://HOST:8786) and that `dask scheduler` runs") from exc
    client.run(_ignore_sigint)
    for slot, address in enumerate(sorted(client.scheduler_info()["workers"]) if gpus else ()):
        client.run(_set_gpu, gpus[slot % len(gpus)], workers=[address])
    return client


def _close(client) -> None:
    cluster = client.cluster
    client.close()
    if cluster is not None:
        cluster.close()


# ------------------------------------------------------------------------------ the batch


@dataclass
class BatchResult:
    """What :func:`run_batch` returns.

    Attributes:
        out: the output folder. runs: the grid's :class:`Run`\\ s. records: the manifest entries,
        in run order (``status`` ``completed``/``failed``/``pending``/``interrupted``;
        ``skipped`` true when the outputs were already complete). dry_run: nothing was run.
        workers: the Dask workers the runs were spread over.
    """

    out: Path
    runs: list[Run]
    records: list[dict[str, Any]]
    dry_run: bool = False
    workers: int = 1

    def _ids(self, test) -> list[str]:
        return [r["run_id"] for r in self.records if test(r)]

    skipped = property(lambda self: self._ids(lambda r: r.get("skipped")), doc="Runs complete already.")
    executed = property(lambda self: self._ids(lambda r: r["status"] == "completed" and not r.get("skipped")),
                        doc="Runs that ran in this call and completed.")
    failed = property(lambda self: self._ids(lambda r: r["status"] in ("failed", "interrupted")),
                      doc="Runs that still failed after their retries (or were interrupted).")
    pending = property(lambda self: self._ids(lambda r: r["status"] == "pending"),
                       doc="Runs that would run (dry run) or did not get to run.")
    ok = property(lambda self: not self.failed)
    manifest_path = property(lambda self: self.out / "manifest.json")
    summary_path = property(lambda self: self.out / "summary.csv")
    contact_sheet_path = property(lambda self: self.out / "contact_sheet.png")

    def plan(self) -> str:
        """The runs as lines ``run|skip <run_id>  <what varies>`` (what ``--dry-run`` prints)."""
        lines = []
        for run, record in zip(self.runs, self.records):
            verb = "skip" if record.get("skipped") else "run "
            note = "  (complete)" if record.get("skipped") else (
                f"  (failed before: {record['incomplete']})" if record.get("previous_status") == "failed" else "")
            lines.append(f"{verb} {run.run_id}  {run.label()}{note}")
        todo = len(self.runs) - len(self.skipped)
        lines.append(f"{todo} to run, {len(self.skipped)} complete, {len(self.runs)} in the grid → {self.out}")
        return "\n".join(lines)


def _pid_alive(pid: int) -> bool:
    """A running process on this machine; a zombie (killed, not yet reaped: ``/proc`` says Z) is not."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return True


def clean_stale(runs_dir: str | os.PathLike) -> list[Path]:
    """Remove ``.<run_id>.tmp-<pid>`` / ``.old-<pid>`` folders left by killed runs; return them.

    A folder whose pid is a live process is kept (a worker of a stopped batch may still be finishing it).
    """
    runs_dir = Path(runs_dir)
    removed = []
    for entry in sorted(runs_dir.iterdir()) if runs_dir.is_dir() else ():
        match = _TEMP.match(entry.name)
        if match and entry.is_dir() and not _pid_alive(int(match.group("pid"))):
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    return removed


def _read_manifest(out: Path) -> dict[str, dict]:
    try:
        manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
        return {r["run_id"]: r for r in manifest.get("runs", []) if isinstance(r, dict) and "run_id" in r}
    except (OSError, ValueError, AttributeError, TypeError):
        return {}  # no or damaged manifest: the run folders are the truth


def _record(run: Run, spec: GridSpec, previous: Mapping[str, Any] | None, problem: str | None) -> dict:
    previous = previous or {}
    folder = f"runs/{run.run_id}"
    record = {
        "index": run.index, "run_id": run.run_id, "parameters": run.parameters, "label": run.label(),
        "folder": folder, "notebook": f"{folder}/{spec.notebook.name}",
        "outputs": [f"{folder}/{name}" for name in spec.outputs], "metrics": f"{folder}/{METRICS_FILE}",
        "attempts": int(previous.get("attempts") or 0), "seconds": previous.get("seconds"),
        "finished": previous.get("finished"), "error": previous.get("error"),
        "previous_status": previous.get("status"),
    }
    if problem is None:
        record.update(status="completed", skipped=True, error=None)
    else:
        record.update(status="pending", skipped=False, incomplete=problem)
    return record


def _check_options(workers: int | None, scheduler: str | None, retries: int) -> None:
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise InputError(f"workers must be a whole number ≥ 1, got {workers!r}", where="--workers",
                         fix="e.g. --workers 2")
    if scheduler is not None and not _SCHEDULER.fullmatch(str(scheduler)):
        raise InputError("is not a Dask scheduler address", where=f"--scheduler {scheduler}",
                         fix="give PROTOCOL://HOST:PORT, e.g. tcp://127.0.0.1:8786")
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise InputError(f"retries must be a whole number ≥ 0, got {retries!r}", where="--retries",
                         fix="e.g. --retries 1")


def run_batch(spec_or_path: GridSpec | Mapping[str, Any] | str | os.PathLike, out: str | os.PathLike, *,
              workers: int | None = None, scheduler: str | None = None, retries: int = 0,
              dry_run: bool = False, progress: bool = True, kernel_name: str = KERNEL_NAME,
              max_runs: int = MAX_RUNS) -> BatchResult:
    """Run every incomplete run of a grid on Dask, then write the manifest, summary and contact sheet.

    Args:
        spec_or_path: a :class:`GridSpec`, a grid dict, or a grid YAML file.
        out: the output folder (created).
        workers: processes of the LocalCluster started when there is no ``scheduler`` (default: 1
            on a CPU, one per GPU, each seeing one GPU).
        scheduler: a Dask scheduler address (``tcp://host:8786``): runs go to that cluster.
        retries: run a failing run again up to this many times.
        dry_run: validate and report what would run (:meth:`BatchResult.plan`); write nothing.
        progress: a tqdm progress bar over the runs (on stderr).
        kernel_name: the Jupyter kernel the notebooks run on.
        max_runs: refuse a grid of more runs than this (:data:`MAX_RUNS` by default).

    Raises:
        InputError, MissingFileError: a bad grid or option, or an unreachable scheduler — before any
            folder is created.
        KeyboardInterrupt: after recording the finished runs (the others are marked interrupted).
    """
    spec = _as_spec(spec_or_path)
    _check_options(workers, scheduler, retries)
    runs = validate(spec, max_runs=max_runs)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError("is a file, not a folder", where=str(out), fix="give --out a folder")
    gpus = [] if scheduler else gpu_ids()
    runs_dir = out / "runs"

    def records() -> list[dict]:
        previous = _read_manifest(out)
        return [_record(run, spec, previous.get(run.run_id),
                        check_outputs(runs_dir / run.run_id, notebook_name=spec.notebook.name, outputs=spec.outputs))
                for run in runs]

    if dry_run:
        return BatchResult(out, runs, records(), dry_run=True, workers=workers or max(1, len(gpus)))
    client = _connect(workers or max(1, len(gpus)), scheduler, gpus) if scheduler else None
    try:
        runs_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        if client is not None:
            _close(client)
        raise InputError(f"cannot create the output folder ({exc})", where=str(out),
                         fix="choose a folder you can write to") from exc
    clean_stale(runs_dir)
    result = BatchResult(out, runs, records(), workers=workers or max(1, len(gpus)))
    _write_manifest(result, spec)
    todo = [(run, record) for run, record in zip(runs, result.records) if not record["skipped"]]
    try:
        if todo:
            client = client or _connect(result.workers, None, gpus)
            _execute_all(client, todo, result, spec, retries=retries, progress=progress, kernel_name=kernel_name)
    except BaseException:  # judged on the files: a run that finished before the interruption counts
        for run, record in zip(runs, result.records):
            if record["status"] in ("pending", "running"):
                done = check_outputs(runs_dir / run.run_id, notebook_name=spec.notebook.name, outputs=spec.outputs)
                record["status"] = "completed" if done is None else "interrupted"
        raise
    finally:
        if client is not None:
            _close(client)
        write_reports(result, spec)
    return result


def _execute_all(client, todo, result: BatchResult, spec: GridSpec, *, retries: int, progress: bool,
                 kernel_name: str) -> None:
    """Submit every run, collect them as they complete, resubmit failures up to ``retries``."""
    from distributed import as_completed
    from tqdm.auto import tqdm

    result.workers = len(client.scheduler_info().get("workers", {})) or result.workers
    bar = tqdm(total=len(todo), desc="nstdream batch", unit="run", disable=not progress, file=sys.stderr)
    owners: dict = {}
    tries: dict[str, int] = {}
    completed = as_completed()

    def submit(run: Run, record: dict) -> None:
        task = {"notebook": str(spec.notebook), "runs_dir": str((result.out / "runs").resolve()),
                "run_id": run.run_id, "values": run.values, "outputs": list(spec.outputs),
                "kernel_name": kernel_name}
        record["status"] = "running"
        tries[run.run_id] = tries.get(run.run_id, 0) + 1
        future = client.submit(execute_run, task, pure=False)
        owners[future] = (run, record)
        completed.add(future)

    try:
        for run, record in todo:
            submit(run, record)
        for future in completed:
            run, record = owners.pop(future)
            _collect(future, record)
            if record["status"] == "failed" and tries[run.run_id] <= retries:
                submit(run, record)
                continue
            bar.update(1)
            bar.set_postfix_str(f"{len(result.failed)} failed")
            _write_manifest(result, spec)
    finally:  # interrupted: keep what finished before the interruption was noticed
        for future, (_, record) in owners.items():
            if future.done() and not future.cancelled():
                _collect(future, record)
        bar.close()


def _collect(future, record: dict) -> None:
    """Put a finished run's outcome (or the error that ended its worker) into its manifest record."""
    try:
        outcome = future.result()
    except Exception as exc:  # noqa: BLE001 — a worker died or the scheduler went away
        outcome = {"status": "failed", "seconds": None, "finished": _now(), "error": _error(type(exc).__name__, exc)}
    record["attempts"] += 1
    record.update({k: outcome.get(k) for k in ("status", "seconds", "finished", "error")})
    record.pop("incomplete", None)


# ------------------------------------------------------------------------------ reports


def _write_manifest(result: BatchResult, spec: GridSpec) -> None:
    counts = {status: sum(r["status"] == status for r in result.records)
              for status in ("completed", "failed", "pending", "running", "interrupted")}
    files.write_json({
        "grid": str(spec.source) if spec.source else None, "notebook": str(spec.notebook),
        "outputs": list(spec.outputs), "workers": result.workers, "updated": _now(), "counts": counts,
        "runs": [{k: v for k, v in r.items() if k != "previous_status"} for r in result.records],
    }, result.manifest_path)


def write_reports(result: BatchResult, spec: GridSpec) -> None:
    """Write ``manifest.json``, ``summary.csv`` and ``contact_sheet.png`` (atomically)."""
    metrics = {run.run_id: _read_metrics(result.out / "runs" / run.run_id) for run in result.runs}
    for record in result.records:
        record["final_losses"] = final_losses(metrics[record["run_id"]]) if record["status"] == "completed" else {}
    _write_manifest(result, spec)
    files.atomic_write_text(_summary_csv(result), result.summary_path)
    files.atomic_write_bytes(_contact_sheet(result, spec), result.contact_sheet_path)


def _summary_csv(result: BatchResult) -> str:
    keys = list(dict.fromkeys(k for run in result.runs for k in run.parameters))
    found = dict.fromkeys(s for r in result.records for s in r.get("final_losses", {}))
    stages = sorted(found, key=lambda s: (STAGE_ORDER.index(s) if s in STAGE_ORDER else len(STAGE_ORDER), s))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["index", "run_id", "status", *keys, *(f"{s}_final_loss" for s in stages), "seconds",
                     "attempts", "error"])
    for run, record in zip(result.runs, result.records):
        error = record.get("error") or {}
        writer.writerow([run.index, run.run_id, record["status"], *(run.parameters.get(k, "") for k in keys),
                         *(record["final_losses"].get(s, "") for s in stages),
                         "" if record.get("seconds") is None else record["seconds"], record["attempts"],
                         f"{error.get('ename')}: {error.get('evalue')}" if error else ""])
    return buffer.getvalue()


def _contact_sheet(result: BatchResult, spec: GridSpec) -> bytes:
    """PNG bytes: the last output image of every run, titled with its index and what varies."""
    import numpy as np
    from matplotlib.figure import Figure
    from PIL import Image

    count = len(result.runs)
    ncols = min(count, max(1, math.ceil(math.sqrt(count))), 6)
    nrows = math.ceil(count / ncols)
    lines = max(len(run.varying) or 1 for run in result.runs) + 1
    figure = Figure(figsize=(2.4 * ncols, (2.4 + 0.17 * lines) * nrows), dpi=100)
    axes = figure.subplots(nrows, ncols, squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, run, record in zip(axes.ravel(), result.runs, result.records):
        title = "\n".join([f"#{run.index} {record['status']}", *run.label(sep="\n").splitlines()])
        path = result.out / "runs" / run.run_id / spec.outputs[-1]
        pixels = None
        if record["status"] == "completed":
            try:
                with Image.open(path) as image:
                    pixels = np.asarray(image.convert("RGB"))
            except Exception:  # noqa: BLE001 — shown as a grey panel
                pixels = None
        if pixels is None:
            ax.imshow(np.full((8, 8, 3), 0.85), vmin=0, vmax=1)
            ax.text(3.5, 3.5, record["status"], ha="center", va="center", fontsize=9, color="0.3")
        else:
            ax.imshow(pixels)
        ax.set_title(title, fontsize=8)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


# ------------------------------------------------------------------------------ command line


def main_from_args(args) -> int:
    """``nstdream batch``: run the grid, print a summary; 0 when every run completed, 1 otherwise.

    Input errors raise :class:`InputError` (the CLI prints one line and exits 2); Ctrl-C returns 130
    after one line saying what finished.
    """
    try:
        result = run_batch(args.grid, args.out, workers=args.workers, scheduler=args.scheduler,
                           retries=args.retries, dry_run=args.dry_run, progress=True,
                           max_runs=getattr(args, "max_runs", None) or MAX_RUNS)
    except KeyboardInterrupt:
        records = list(_read_manifest(Path(args.out)).values())
        done = sum(r.get("status") == "completed" for r in records)
        if records:
            print(f"\ninterrupted: {done} of {len(records)} runs complete, recorded in "
                  f"{Path(args.out) / 'manifest.json'}; rerun the same command to go on (complete runs are "
                  "skipped)", file=sys.stderr)
        else:
            print("\ninterrupted before the batch started: nothing written", file=sys.stderr)
        return 130
    if args.dry_run:
        print(result.plan())
        return 0
    for run, record in zip(result.runs, result.records):
        error = record.get("error")
        if record["status"] != "completed" and error:
            cell = f"cell {error['cell_index']} (`{error.get('cell')}`) " if error.get("cell_index") is not None else ""
            print(f"failed {run.run_id} after {record['attempts']} attempt(s): {cell}raised "
                  f"{error.get('ename')}: {error.get('evalue')}", file=sys.stderr)
    print(f"{len(result.runs)} runs: {len(result.executed)} ran, {len(result.skipped)} were complete, "
          f"{len(result.failed)} failed — see {result.summary_path} and {result.contact_sheet_path.name}")
    return 0 if result.ok else 1
