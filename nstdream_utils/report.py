"""Run the course notebooks with papermill and build the report site from them.

``make report`` calls ``python -m nstdream_utils.report --preset quick --out build``: every
``notebooks/NN_*.ipynb`` runs (in its own folder, so ``../data/...`` works) into
``build/notebooks/``, then Sphinx with myst-nb turns the executed notebooks and ``docs/*.md`` into
a site under ``build/report/`` (``index.html``, navigation, search, equations typeset by a bundled
MathJax): it opens from disk and loads nothing from the network. The site's configuration and
index page are in ``site/``.

``python -m nstdream_utils.report --no-execute`` builds the same site from the committed notebooks
as they are (they carry their outputs), without running anything: quick to check the site.

``make notebooks`` calls ``python -m nstdream_utils.report --in-place``: each notebook runs with
its default parameters and, only when every cell succeeded, replaces the committed file with the
normalised result (see :mod:`nstdream_utils.notebooks`).

Parameters reach a notebook only when its ``parameters`` cell defines them (``preset`` included),
and always as values: papermill writes them as Python literals into an injected cell.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import difflib
import numbers
import os
import re
import shutil
import string
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import nbformat

from nstdream_utils import notebooks as nbtools
from nstdream_utils.errors import InputError, MissingFileError, NstdreamError

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
            cell += f" (`{shorten(source_line, 80)}`)"
        value = shorten(evalue, 200)
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


def shorten(text: str, limit: int) -> str:
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


def execute_notebook(source: Path, output: Path, parameters: Mapping[str, Any], kernel_name: str = "python3", *,
                     run_from: Path | None = None, start_timeout: int = 180) -> None:
    """Run one notebook with papermill: the one place notebooks execute (report, ``--in-place``, batch).

    The kernel runs in ``source``'s folder with :data:`KERNEL_ENV`; papermill reads ``run_from`` (a
    cleaned copy of ``source``) when given, else ``source``; parameters arrive as literals.

    Raises:
        NotebookError: a cell failed, or the kernel died or timed out (naming the cell it was running).
        NstdreamError: there is no Jupyter kernel ``kernel_name``.
    """
    import papermill
    from jupyter_client.kernelspec import NoSuchKernel
    from papermill.exceptions import PapermillExecutionError

    source = Path(source).resolve()
    run_from = Path(run_from or source).resolve()
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    try:
        with _kernel_environment():
            papermill.execute_notebook(
                str(run_from), str(output.resolve()), parameters=dict(parameters),
                kernel_name=kernel_name, progress_bar=False, log_output=False, cwd=str(source.parent),
                start_timeout=start_timeout, extra_arguments=list(KERNEL_ARGUMENTS),
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
            execute_notebook(path, output, parameters=given, kernel_name=kernel_name)
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
            execute_notebook(path, output, parameters={}, kernel_name=kernel_name, run_from=clean)
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


# ------------------------------------------------------------------------------------------- site


SITE_DIR = Path(__file__).resolve().parent.parent / "site"
_LINK = re.compile(r"(!?)\[([^\]]*)\]\(([^)\s]+)\)")
_URL = re.compile(r"^(?:[a-z][a-z0-9+.-]*:|/|#)", re.I)  # https:, data:, attachment:, absolute, anchor


def _resolve_links(page: Path, src: Path, root: Path) -> None:
    """Make the relative links in the markdown of ``page`` (a notebook or a ``.md`` file in the
    site's source folder ``src``, which mirrors the course folder ``root``) work in the site.

    Images it loads from the course (``../data/...``) are copied into ``src``; links to the README
    of a folder of the site (the course's contents page, the project's README) point at the index
    page; links to other files that are not pages of the site become plain text.
    """
    def replace(match: re.Match) -> str:
        bang, label, target = match.groups()
        if _URL.match(target):
            return match.group(0)
        rel = Path(os.path.normpath(page.parent.relative_to(src) / target.split("#")[0]))
        if (src / rel).exists():
            return match.group(0)
        if bang and rel.parts[0] != ".." and (root / rel).is_file():
            (src / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(root / rel, src / rel)
            return match.group(0)
        if not bang and rel.name == "README.md" and (src / rel.parent).is_dir():
            return f"[{label}]({os.path.relpath(src / 'index.md', page.parent)})"
        return match.group(0) if bang else label

    if page.suffix == ".ipynb":
        nb = nbformat.read(page, as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "markdown":
                cell.source = _LINK.sub(replace, cell.source)
        nbformat.write(nb, page)
    else:
        page.write_text(_LINK.sub(replace, page.read_text(encoding="utf-8")), encoding="utf-8")


def render_site(executed: Sequence[str | os.PathLike], report_dir: str | os.PathLike, *,
                preset: str | None = None, root: str | os.PathLike = ".",
                notebooks_subdir: str = "notebooks") -> Path:
    """Build the report site from executed notebooks and ``root/docs/*.md``; return its ``index.html``.

    The pages are copied into a temporary Sphinx source folder beside ``site/conf.py`` and
    ``site/index.md`` (the notebooks into ``notebooks_subdir``, mirroring the course folder ``root``,
    so relative links keep working; see :func:`_resolve_links`), TensorFlow's start-up lines are
    dropped from the outputs, and ``sphinx-build -b html -q`` writes the site into ``report_dir``
    (replaced whole). myst-nb reads the notebooks without executing them. The index names
    ``preset``, or says the outputs are the notebooks' own when it is ``None``.
    """
    from sphinx.cmd.build import build_main

    paths, root, report_dir = _existing(executed), Path(root).resolve(), Path(report_dir)
    docs = sorted((root / "docs").glob("*.md"))
    with tempfile.TemporaryDirectory(prefix="nstdream-site-") as tmp:
        src = Path(tmp) / "src"
        shutil.copytree(SITE_DIR, src, ignore=shutil.ignore_patterns("index.md", "__pycache__"))
        (src / notebooks_subdir).mkdir()
        (src / "docs").mkdir()
        pages = [src / notebooks_subdir / path.name for path in paths]
        for path, page in zip(paths, pages):
            nbformat.write(nbtools.drop_badges(nbtools.drop_tf_log(nbformat.read(path, as_version=4))), page)
        pages += [Path(shutil.copyfile(doc, src / "docs" / doc.name)) for doc in docs]
        for page in pages:  # once they are all in place: links between them stay
            _resolve_links(page, src, root)
        index = string.Template((SITE_DIR / "index.md").read_text(encoding="utf-8")).substitute(
            built_with=f"the **{preset}** preset" if preset else "the notebooks' default parameters",
            notebooks="\n".join(f"{notebooks_subdir}/{path.stem}" for path in paths),
            docs="\n".join(f"docs/{doc.stem}" for doc in docs))
        (src / "index.md").write_text(index, encoding="utf-8")
        html = Path(tmp) / "html"
        if build_main(["-b", "html", "-q", "-d", str(Path(tmp) / "doctrees"), str(src), str(html)]):
            raise NstdreamError("sphinx-build failed (its messages are above)", where=str(report_dir))
        shutil.rmtree(report_dir, ignore_errors=True)
        report_dir.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(html, report_dir)
    return report_dir / "index.html"


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
                 execute: bool = True, progress: bool = True) -> Path:
    """Run every ``NN_*.ipynb`` in ``notebooks_dir`` (or just ``notebooks``) into ``out/notebooks/``
    and build the site ``out/report/``; return its ``index.html``.

    With ``execute=False`` the notebooks are taken as already executed (``preset`` and
    ``parameters`` are then not used). Raises :class:`NotebookError` on the first failing cell
    (the site is not built).
    """
    if execute:
        _check_preset(preset)
    paths = [Path(p) for p in notebooks] if notebooks else nbtools.notebook_paths(notebooks_dir)
    if not paths:
        raise MissingFileError("no notebooks match NN_*.ipynb", where=str(notebooks_dir),
                               fix="run from the repository root or pass --notebooks-dir")
    out, notebooks_dir = Path(out), Path(notebooks_dir).resolve()
    if execute:
        paths = run_notebooks(paths, out / "notebooks", parameters=parameters, preset=preset,
                              kernel_name=kernel_name, progress=progress)
    return render_site(paths, out / "report", preset=preset if execute else None,
                       root=notebooks_dir.parent, notebooks_subdir=notebooks_dir.name)


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
        description="Run the course notebooks with papermill and build the site build/report/index.html, "
                    "or (--in-place) re-execute them with their defaults for commit.")
    parser.add_argument("notebooks", nargs="*", metavar="NOTEBOOK",
                        help="notebooks to run (default: every NN_*.ipynb in --notebooks-dir)")
    parser.add_argument("--preset", default=None, help="preset passed to notebooks that take one (default: quick)")
    parser.add_argument("--out", default="build", help="output folder (default: build)")
    parser.add_argument("--notebooks-dir", default="notebooks", help="default: notebooks")
    parser.add_argument("--in-place", action="store_true",
                        help="re-execute with default parameters and store the normalised outputs in place")
    parser.add_argument("--no-execute", action="store_true",
                        help="build the site from the notebooks as they are (committed outputs), running nothing")
    parser.add_argument("-p", "--parameter", action="append", type=_parameter, default=[], metavar="NAME=VALUE",
                        help="a value for notebooks whose parameters cell defines NAME (repeatable)")
    parser.add_argument("--kernel", default="python3", help="Jupyter kernel name (default: python3)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    args = parser.parse_args(argv)
    if args.in_place and (args.preset or args.parameter):
        parser.error("--in-place runs each notebook with its default parameters; drop --preset and -p")
    if args.no_execute and (args.in_place or args.preset or args.parameter):
        parser.error("--no-execute runs nothing; drop --in-place, --preset and -p")
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
                                 execute=not args.no_execute, progress=not args.quiet)
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
