"""Run the course notebooks with papermill and render them into one HTML report.

``make report`` calls ``python -m nstdream_utils.report --preset quick --out build``: every
``notebooks/NN_*.ipynb`` runs (in its own folder, so ``../data/...`` works) into
``build/notebooks/``, then each executed notebook becomes one self-contained page (figures stay
embedded as data URIs) under ``build/report/``, next to an ``index.html`` table of contents.

``make notebooks`` calls ``python -m nstdream_utils.report --in-place``: each notebook runs with
its default parameters and, only when every cell succeeded, replaces the committed file with the
normalised result (see :mod:`nstdream_utils.notebooks`).

Parameters reach a notebook only when its ``parameters`` cell defines them (``preset`` included),
and always as values: papermill writes them as Python literals into an injected cell.
"""

from __future__ import annotations

import argparse
import ast
import base64
import contextlib
import datetime as dt
import difflib
import html
import math
import mimetypes
import numbers
import os
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import nbformat

from nstdream_utils import notebooks as nbtools
from nstdream_utils.errors import InputError, MissingFileError, NstdreamError
from nstdream_utils.files import atomic_write_text

REPORT_TITLE = "Neural style transfer, then DeepDream"
# The kernel must draw figures inline whatever the calling shell says (the Makefile exports
# MPLBACKEND=Agg, under which plt.show() would store no figure); the debugger's frozen-modules
# warning is noise on every kernel start.
KERNEL_ENV = {
    "MPLBACKEND": "module://matplotlib_inline.backend_inline",
    "PYDEVD_DISABLE_FILE_VALIDATION": "1",
}
# The kernel process's own log is noise here: a warning on every start that its local TCP sockets
# are unencrypted, and "KeyboardInterrupt caught in kernel" when jupyter_client's shutdown SIGINT
# races a busy kernel. Cell errors still arrive through the notebook, so keep only critical lines.
KERNEL_ARGUMENTS = ["--IPKernelApp.log_level=CRITICAL"]


class NotebookError(NstdreamError, RuntimeError):
    """A notebook cell failed while papermill ran it.

    Attributes: ``notebook`` (the source notebook), ``cell_index`` (0-based index in the source
    notebook's cells, ``None`` if unknown), ``source_line`` (first line of the cell), ``ename`` and
    ``evalue`` (the exception), ``output_path`` (the partly executed notebook kept for inspection).
    """

    def __init__(self, notebook: Path, *, cell_index: int | None, source_line: str, ename: str,
                 evalue: str, output_path: Path) -> None:
        self.notebook, self.cell_index, self.source_line = notebook, cell_index, source_line
        self.ename, self.evalue, self.output_path = ename, evalue, output_path
        cell = "a cell" if cell_index is None else f"cell {cell_index}"
        if source_line:
            cell += f" (`{_shorten(source_line, 80)}`)"
        value = _shorten(evalue, 200)
        super().__init__(
            f"{cell} raised {ename}" + (f": {value}" if value else ""),
            where=_display(notebook),
            fix=f"the partly executed notebook is {output_path}; fix the cell and run again",
        )


def _display(path: Path) -> str:
    """``path`` relative to the working directory when it lies below it (shorter messages)."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _shorten(text: str, limit: int) -> str:
    """One line of at most ``limit`` characters (ANSI colour codes removed)."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(text))
    text = " ".join(line.strip() for line in text.splitlines() if line.strip())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# ------------------------------------------------------------------------------------ parameters


def _plain(name: str, value: Any) -> Any:
    """``value`` as a plain literal papermill can write (numpy scalars become int/float)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        return bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, (list, tuple)):
        return [_plain(name, item) for item in value]
    if isinstance(value, dict) and all(isinstance(key, str) for key in value):
        return {key: _plain(name, item) for key, item in value.items()}
    raise InputError(
        f"parameter {name!r} is a {type(value).__name__}",
        fix="pass plain values only: None, bool, int, float, str, or lists/dicts of them",
    )


def declared_parameters(notebook: str | os.PathLike) -> set[str]:
    """Names defined in the notebook's ``parameters`` cell (via ``papermill.inspect_notebook``).

    Without a kernelspec papermill cannot tell the language; the cell is then read as Python.
    """
    import papermill

    try:
        return set(papermill.inspect_notebook(str(notebook)))
    except ValueError:
        nb = nbformat.read(notebook, as_version=4)
        cell = next((c for c in nb.cells if c.cell_type == "code"
                     and "parameters" in c.metadata.get("tags", [])), None)
        try:
            tree = ast.parse(cell.source) if cell is not None else ast.Module(body=[], type_ignores=[])
        except SyntaxError as exc:
            raise InputError(f"its parameters cell is not valid Python ({exc.msg}, line {exc.lineno})",
                             where=str(notebook), fix="keep one `name = literal  # comment` per line") from exc
        names = set()
        for node in tree.body:
            targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
            names.update(t.id for t in targets if isinstance(t, ast.Name))
        return names


# ------------------------------------------------------------------------------------- execution


@contextlib.contextmanager
def _kernel_environment() -> Iterator[None]:
    """Set :data:`KERNEL_ENV` for the kernels started inside the block, then restore."""
    values = dict(KERNEL_ENV)
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _first_line(source: str) -> str:
    return next((line.strip() for line in str(source or "").splitlines() if line.strip()), "")


def _source_index(source_nb, executed_index: int, injected: bool) -> int:
    """Map an index in the executed notebook back to the source notebook.

    Papermill inserts its injected-parameters cell right after the ``parameters`` cell (or
    overwrites one already there).
    """
    tags = [c.metadata.get("tags", []) for c in source_nb.cells]
    if not injected or any("injected-parameters" in t for t in tags):
        return executed_index
    tagged = [i for i, t in enumerate(tags) if "parameters" in t]
    return executed_index - 1 if tagged and executed_index > tagged[0] else executed_index


def _running_cell(output_path: Path) -> tuple[int | None, str]:
    """The cell papermill marked as running in a partly executed notebook (for kernel deaths)."""
    try:
        nb = nbformat.read(output_path, as_version=4)
    except Exception:  # noqa: BLE001 — no partial notebook: report without a cell
        return None, ""
    cells = [c for c in nb.cells if not {"injected-parameters", "papermill-error-cell-tag"}
             & set(c.metadata.get("tags", []))]
    for index, cell in enumerate(cells):
        if cell.metadata.get("papermill", {}).get("status") == "running":
            return index, _first_line(cell.source)
    return None, ""


def _execute(source: Path, output: Path, parameters: Mapping[str, Any], kernel_name: str, *,
             run_from: Path | None = None) -> None:
    """Run one notebook with papermill; raise :class:`NotebookError` naming the failing cell.

    The kernel runs in ``source``'s folder; papermill reads ``run_from`` (a cleaned copy of
    ``source``) when given, else ``source``.
    """
    import papermill
    from jupyter_client.kernelspec import NoSuchKernel
    from papermill.exceptions import PapermillExecutionError

    source = source.resolve()
    run_from = (run_from or source).resolve()
    output.parent.mkdir(parents=True, exist_ok=True)
    try:
        with _kernel_environment():
            papermill.execute_notebook(
                str(run_from), str(output.resolve()), parameters=dict(parameters),
                kernel_name=kernel_name, progress_bar=False, log_output=False, cwd=str(source.parent),
                extra_arguments=list(KERNEL_ARGUMENTS),
            )
    except PapermillExecutionError as exc:
        source_nb = nbformat.read(run_from, as_version=4)
        index = _source_index(source_nb, exc.cell_index, injected=bool(parameters))
        raise NotebookError(source, cell_index=index, source_line=_first_line(exc.source),
                            ename=exc.ename, evalue=exc.evalue, output_path=output) from exc
    except NoSuchKernel as exc:
        raise NstdreamError(f"no Jupyter kernel named {kernel_name!r}", where=_display(source),
                            fix="run `make setup` (it installs the 'python3' kernel into .venv)") from exc
    except (NstdreamError, KeyboardInterrupt):
        raise
    except Exception as exc:  # kernel died, timed out, ...: still name the cell it was running
        index, line = _running_cell(output)
        raise NotebookError(source, cell_index=index, source_line=line, ename=type(exc).__name__,
                            evalue=str(exc), output_path=output) from exc


def _existing(paths: Sequence[str | os.PathLike]) -> list[Path]:
    paths = [Path(p) for p in paths]
    for path in paths:
        if not path.is_file():
            raise MissingFileError("no such notebook", where=str(path),
                                   fix="pass notebooks that exist, e.g. notebooks/01_*.ipynb")
    return paths


def _progress(enabled: bool, number: int, total: int, name: str):
    """Print ``[2/7] 02_x.ipynb …`` on stderr; the returned function ends the line."""
    if not enabled:
        return lambda status: None
    print(f"[{number}/{total}] {name} …", end="", file=sys.stderr, flush=True)
    start = time.perf_counter()
    return lambda status: print(f" {status} ({time.perf_counter() - start:.1f} s)", file=sys.stderr, flush=True)


def run_notebooks(notebooks: Sequence[str | os.PathLike], out_dir: str | os.PathLike, *,
                  parameters: Mapping[str, Any] | None = None, preset: str | None = None,
                  kernel_name: str = "python3", progress: bool = True) -> list[Path]:
    """Execute each notebook with papermill into ``out_dir``; return the executed notebooks' paths.

    Args:
        notebooks: notebook files, run in this order, each with its own folder as working directory.
        out_dir: where the executed copies go (same file names).
        parameters: values for the notebooks' ``parameters`` cells; each notebook gets only the
            names its own ``parameters`` cell defines. A name no notebook defines is an error.
        preset: passed as ``preset`` to the notebooks whose ``parameters`` cell defines ``preset``
            (it wins over a ``preset`` in ``parameters``).
        kernel_name: the Jupyter kernel to run them on.
        progress: print one line per notebook on stderr.

    Raises:
        NotebookError: a cell failed; names the notebook, the cell and the exception. The partly
            executed notebook stays in ``out_dir``.
        InputError: a parameter that no notebook defines, or one that is not a plain value.
        MissingFileError: a notebook that does not exist.
    """
    paths = _existing(notebooks)
    values = {name: _plain(name, value) for name, value in (parameters or {}).items()}
    declared = {path: declared_parameters(path) for path in paths}  # checked before anything runs
    known = set().union(*declared.values()) if declared else set()
    for name in values:
        if name not in known:
            close = difflib.get_close_matches(name, sorted(known), n=1)
            raise InputError(f"no notebook's parameters cell defines {name!r}",
                             fix=f"did you mean {close[0]!r}?" if close else
                             f"defined parameters: {', '.join(sorted(known)) or 'none'}")
    out_dir = Path(out_dir)
    executed = []
    for number, path in enumerate(paths, start=1):
        given = {name: value for name, value in values.items() if name in declared[path]}
        if preset is not None and "preset" in declared[path]:
            given["preset"] = preset
        output = out_dir / path.name
        done = _progress(progress, number, len(paths), path.name)
        try:
            _execute(path, output, given, kernel_name)
        except BaseException:
            done("failed")
            raise
        done("done")
        executed.append(output)
    return executed


def execute_in_place(paths: Sequence[str | os.PathLike], *, kernel_name: str = "python3",
                     progress: bool = True) -> list[Path]:
    """Re-execute notebooks with their default parameters and store the normalised result in place.

    Papermill runs a normalised copy (so a stray injected-parameters cell cannot change the
    "default" results) into a temporary folder; only when all cells succeed is the original
    replaced (atomically) by the normalised output. On a failure the original is untouched and the
    :class:`NotebookError` names the partly executed copy (kept in the temporary folder).
    """
    paths = _existing(paths)
    work = Path(tempfile.mkdtemp(prefix="nstdream-notebooks-"))
    for number, path in enumerate(paths, start=1):
        output, clean = work / path.name, work / f"input-{path.name}"
        nbtools.write(nbtools.normalized(nbtools.read(path)), clean)
        done = _progress(progress, number, len(paths), path.name)
        try:
            _execute(path, output, {}, kernel_name, run_from=clean)
        except BaseException:
            done("failed")
            raise
        nbtools.write(nbtools.normalized(nbtools.read(output)), path)
        output.unlink()
        clean.unlink()
        done("done")
    with contextlib.suppress(OSError):
        work.rmdir()
    return paths


# ------------------------------------------------------------------------------------------- HTML


def _link_pages(nb, names: set[str]) -> None:
    """In markdown cells, point links to sibling notebooks at their pages and README.md at index.html."""
    def replace(match: re.Match) -> str:
        target, anchor = match.group(1), match.group(2) or ""
        if target == "README.md":
            return f"](index.html{anchor})"
        if target.endswith(".ipynb") and target[:-6] in names:
            return f"]({target[:-6]}.html{anchor})"
        return match.group(0)

    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source = re.sub(r"\]\(([^)\s#/]+)(#[^)\s]*)?\)", replace, cell.source)


_MARKDOWN_IMAGE = re.compile(r'(!\[[^\]]*\]\(\s*)([^)\s]+)|(<img\b[^>]*?\bsrc=")([^"]+)')


def _embed_markdown_images(nb, source_dir: Path) -> None:
    """Inline images that markdown cells load from disk (``![x](../data/a.png)``, ``<img src=...>``).

    nbconvert's own ``embed_images`` refuses files outside the notebook's folder, and the course
    keeps its pictures in ``../data``. Only relative links to existing image files are inlined.
    """
    def replace(match: re.Match) -> str:
        prefix, src = (match.group(1), match.group(2)) if match.group(1) else (match.group(3), match.group(4))
        if re.match(r"^(?:[a-z][a-z0-9+.-]*:|/|#)", src, flags=re.I):  # data:, https:, attachment:, absolute
            return match.group(0)
        path = source_dir / src.split("#")[0].split("?")[0]
        mime = mimetypes.guess_type(path.name)[0] or ""
        if not mime.startswith("image/") or not path.is_file():
            return match.group(0)
        return f"{prefix}data:{mime};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"

    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source = _MARKDOWN_IMAGE.sub(replace, cell.source)


def _build_date() -> str:
    """Now in UTC, or ``SOURCE_DATE_EPOCH`` when set (reproducible builds)."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    when = (dt.datetime.fromtimestamp(int(epoch), dt.timezone.utc) if epoch and epoch.isdigit()
            else dt.datetime.now(dt.timezone.utc))
    return when.strftime("%Y-%m-%d %H:%M UTC")


_INDEX_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1f2328;
       background: #fff; margin: 0; }
main { max-width: 52rem; margin: 2.5rem auto; padding: 0 1.25rem; line-height: 1.5; }
h1 { font-size: 2rem; margin-bottom: .25rem; }
.meta { color: #57606a; margin-top: 0; }
ol.toc { padding-left: 1.5rem; }
ol.toc li { margin: .6rem 0; }
ol.toc a { font-weight: 600; color: #0969da; text-decoration: none; }
ol.toc a:hover { text-decoration: underline; }
.summary { display: block; color: #3d444d; }
.duration { color: #57606a; font-size: .9em; }
"""


def _index_html(pages: list[dict], *, preset: str, built: str, title: str) -> str:
    items = []
    for page in pages:
        duration = f' <span class="duration">({page["duration"]:.0f} s)</span>' if page["duration"] else ""
        summary = f'<span class="summary">{html.escape(page["summary"])}</span>' if page["summary"] else ""
        items.append(f'<li><a href="{html.escape(page["href"])}">{html.escape(page["title"])}</a>'
                     f"{duration}{summary}</li>")
    toc = "\n".join(items)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)} — report</title>
<style>{_INDEX_CSS}</style>
</head>
<body>
<main>
<h1>{html.escape(title)}</h1>
<p class="meta">Report built with the <strong>{html.escape(preset)}</strong> preset on {html.escape(built)}.</p>
<h2>Contents</h2>
<ol class="toc">
{toc}
</ol>
</main>
</body>
</html>
"""


def render_html(executed: Sequence[str | os.PathLike], report_dir: str | os.PathLike, *,
                preset: str | None = None, title: str = REPORT_TITLE) -> Path:
    """Render executed notebooks to one self-contained page each, plus ``index.html``; return it.

    Pages use nbconvert's ``lab`` template; output figures are already base64 data URIs and stay
    embedded, and images that markdown cells load from disk (``../data/...`` included) are embedded
    too. Links between the notebooks (the navigation cells) are rewritten to point at the pages.
    ``index.html`` lists every page with its H1 title and ``>`` summary, the preset (by default the
    ``preset`` parameter papermill passed, else "default") and the build date (UTC, or
    ``SOURCE_DATE_EPOCH``). Files are written atomically.
    """
    from nbconvert import HTMLExporter

    paths = _existing(executed)
    report_dir = Path(report_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    exporter = HTMLExporter(template_name="lab", embed_images=True)
    names = {path.stem for path in paths}
    pages, presets = [], set()
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        run = nb.metadata.get("papermill", {})
        if "preset" in (run.get("parameters") or {}):
            presets.add(str(run["parameters"]["preset"]))
        page_title = nbtools.title_of(nb, default=path.stem.replace("_", " "))
        # Relative image links in markdown are relative to the source notebook, not the executed copy.
        source_dir = Path(run["input_path"]).parent if run.get("input_path") else path.parent
        _link_pages(nb, names)
        _embed_markdown_images(nb, source_dir)
        nbtools.drop_tf_log(nb)
        body, _ = exporter.from_notebook_node(
            nb, resources={"metadata": {"name": page_title, "path": str(source_dir)}})
        page = atomic_write_text(body, report_dir / f"{path.stem}.html")
        duration = run.get("duration")
        pages.append({"href": page.name, "title": page_title, "summary": nbtools.summary_of(nb),
                      "duration": duration if isinstance(duration, (int, float)) and math.isfinite(duration) else None})
    if preset is None:
        preset = presets.pop() if len(presets) == 1 else "default"
    index = _index_html(pages, preset=preset, built=_build_date(), title=title)
    return atomic_write_text(index, report_dir / "index.html")


# ------------------------------------------------------------------------------------------ build


def _check_preset(preset: str) -> None:
    """Fail early, before any notebook runs, on a preset name the library does not know."""
    try:
        from nstdream_utils.presets import PRESETS
    except ImportError:  # presets not importable here: the notebooks' prepare cell checks it
        return
    if preset not in PRESETS:
        close = difflib.get_close_matches(preset, list(PRESETS), n=1)
        raise InputError(f"unknown preset {preset!r}",
                         fix=f"did you mean {close[0]!r}?" if close else f"choose one of {', '.join(PRESETS)}")


def build_report(*, preset: str = "quick", out: str | os.PathLike = "build",
                 notebooks_dir: str | os.PathLike = "notebooks",
                 notebooks: Sequence[str | os.PathLike] | None = None,
                 parameters: Mapping[str, Any] | None = None, kernel_name: str = "python3",
                 progress: bool = True) -> Path:
    """Run every ``NN_*.ipynb`` in ``notebooks_dir`` (or just ``notebooks``) into ``out/notebooks/``
    and render ``out/report/index.html``; return that path.

    Raises :class:`NotebookError` on the first failing cell (the report is not rendered).
    """
    _check_preset(preset)
    paths = [Path(p) for p in notebooks] if notebooks else nbtools.notebook_paths(notebooks_dir)
    if not paths:
        raise MissingFileError("no notebooks match NN_*.ipynb", where=str(notebooks_dir),
                               fix="run from the repository root or pass --notebooks-dir")
    out = Path(out)
    executed = run_notebooks(paths, out / "notebooks", parameters=parameters, preset=preset,
                             kernel_name=kernel_name, progress=progress)
    return render_html(executed, out / "report", preset=preset)


# -------------------------------------------------------------------------------------------- CLI


def _parameter(text: str) -> tuple[str, Any]:
    """``NAME=VALUE`` → (name, value); VALUE is a Python literal (``3``, ``0.5``, ``[1, 2]``) or a string."""
    name, sep, raw = text.partition("=")
    if not sep or not name.isidentifier():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    try:
        return name, ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        return name, raw


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m nstdream_utils.report",
        description="Run the course notebooks with papermill and render build/report/index.html, "
                    "or (--in-place) re-execute them with their defaults for commit.")
    parser.add_argument("notebooks", nargs="*", metavar="NOTEBOOK",
                        help="notebooks to run (default: every NN_*.ipynb in --notebooks-dir)")
    parser.add_argument("--preset", default=None, help="preset passed to notebooks that take one (default: quick)")
    parser.add_argument("--out", default="build", help="output folder (default: build)")
    parser.add_argument("--notebooks-dir", default="notebooks", help="default: notebooks")
    parser.add_argument("--in-place", action="store_true",
                        help="re-execute with default parameters and store the normalised outputs in place")
    parser.add_argument("-p", "--parameter", action="append", type=_parameter, default=[], metavar="NAME=VALUE",
                        help="a value for notebooks whose parameters cell defines NAME (repeatable)")
    parser.add_argument("--kernel", default="python3", help="Jupyter kernel name (default: python3)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    args = parser.parse_args(argv)
    if args.in_place and (args.preset or args.parameter):
        parser.error("--in-place runs each notebook with its default parameters; drop --preset and -p")
    try:
        if args.in_place:
            paths = args.notebooks or nbtools.notebook_paths(args.notebooks_dir)
            if not paths:
                raise MissingFileError("no notebooks match NN_*.ipynb", where=args.notebooks_dir,
                                       fix="run from the repository root or pass --notebooks-dir")
            for path in execute_in_place(paths, kernel_name=args.kernel, progress=not args.quiet):
                print(f"executed {path}")
        else:
            index = build_report(preset=args.preset or "quick", out=args.out,
                                 notebooks_dir=args.notebooks_dir, notebooks=args.notebooks or None,
                                 parameters=dict(args.parameter), kernel_name=args.kernel,
                                 progress=not args.quiet)
            print(f"report: {index}")
    except NstdreamError as exc:
        print(f"error: {exc.one_line()}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
