"""Run the course notebooks with papermill and build the report site from them.

``make report``: notebooks into ``build/notebooks/``, then with ``docs/*.md`` into the offline site ``build/report/``
(Sphinx with myst-nb, configured in ``site/``). ``make notebooks``: ``--in-place``."""

import argparse
import ast
import contextlib
import os
import re
import shutil
import string
import sys
import tempfile
from pathlib import Path
from typing import Any, Mapping, Sequence

import nbformat
import numpy as np
from jupyter_client import AsyncKernelManager

from nstdream_utils import notebooks as nbtools
from nstdream_utils.errors import InputError, MissingFileError, NstdreamError, did_you_mean
from nstdream_utils.presets import get_preset

# Figures inline whatever the shell says (the Makefile exports MPLBACKEND=Agg); no debugger warning; no kernel log.
KERNEL_ENV = {"MPLBACKEND": "module://matplotlib_inline.backend_inline", "PYDEVD_DISABLE_FILE_VALIDATION": "1"}
SITE_DIR = Path(__file__).resolve().parent.parent / "site"
_IMAGE = re.compile(r"!\[[^\]]*\]\(([^)\s#]+)")  # a markdown image's target


class NotebookError(NstdreamError, RuntimeError):
    """A cell failed or the kernel died; ``cell_index`` counts the source's cells (None: unknown)."""

    def __init__(self, notebook: Path, cell_index: int | None, source_line: str, ename: str, evalue: str,
                 output_path: Path) -> None:
        self.notebook, self.cell_index, self.source_line = notebook, cell_index, source_line
        self.ename, self.evalue, self.output_path = ename, evalue, output_path
        cell = "a cell" if cell_index is None else f"cell {cell_index}"
        cell += f" (`{shorten(source_line, 80)}`)" if source_line else ""
        value = shorten(evalue, 200)
        super().__init__(f"{cell} raised {ename}" + (f": {value}" if value else ""), where=str(notebook),
                         fix=f"the partly executed notebook is {output_path}; fix the cell and run again")


def shorten(text: str, limit: int) -> str:
    """One line of at most ``limit`` characters (ANSI colour codes removed)."""
    text = " ".join(line.strip() for line in re.sub(r"\x1b\[[0-9;]*m", "", str(text)).splitlines() if line.strip())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _plain(name: str, value: Any) -> Any:
    """``value`` as a literal papermill can write (NumPy scalars become Python ones); InputError otherwise."""
    value = value.item() if isinstance(value, np.generic) else value
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(name, item) for item in value]
    if isinstance(value, dict) and all(isinstance(key, str) for key in value):
        return {key: _plain(name, item) for key, item in value.items()}
    raise InputError(f"parameter {name!r} is a {type(value).__name__}",
                     fix="pass plain values only: None, bool, int, float, str, or lists/dicts of them")


def declared_parameters(notebook: str | os.PathLike) -> dict[str, Any]:
    """Name → literal default (else None) of each name the ``parameters`` cell assigns; InputError if not Python."""
    cells = nbformat.read(notebook, as_version=4).cells
    try:
        tree = ast.parse(next((c.source for c in cells if "parameters" in c.metadata.get("tags", [])), ""))
    except SyntaxError as exc:
        raise InputError(f"its parameters cell is not valid Python ({exc.msg}, line {exc.lineno})",
                         where=str(notebook), fix="keep one `name = literal  # comment` per line") from exc
    defaults = {}
    for node in (node for node in tree.body if isinstance(node, ast.Assign)):
        for name in (target.id for target in node.targets if isinstance(target, ast.Name)):
            defaults[name] = None  # not a literal: any value goes
            with contextlib.suppress(ValueError, TypeError):
                defaults[name] = ast.literal_eval(node.value)
    return defaults


def _failed_cell(output: Path) -> tuple[int | None, str]:
    """(index in the source, first line) of the last cell papermill started in ``output``, or (None, '')."""
    with contextlib.suppress(Exception):  # no partial notebook: report without a cell
        cells = [c for c in nbformat.read(output, as_version=4).cells
                 if not nbtools.PAPERMILL_TAGS & set(c.metadata.get("tags", []))]
        for index in reversed(range(len(cells))):
            if cells[index].metadata.get("papermill", {}).get("start_time"):
                return index, next((line.strip() for line in cells[index].source.splitlines() if line.strip()), "")
    return None, ""


class _KernelManager(AsyncKernelManager):
    async def start_kernel(self, **kw: Any) -> None:
        await super().start_kernel(env={**os.environ, **KERNEL_ENV}, **kw)


def execute_notebook(source: Path, output: Path, parameters: Mapping[str, Any], kernel_name: str = "python3", *,
                     run_from: nbformat.NotebookNode | None = None, progress: str = "") -> None:
    """Papermill ``source`` (or ``run_from``, its copy) in its folder into ``output``; NotebookError if a cell fails."""
    import papermill
    from jupyter_client.kernelspec import NoSuchKernel
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    try:
        papermill.execute_notebook(
            run_from or str(Path(source).resolve()), str(output.resolve()), parameters=dict(parameters),
            kernel_name=kernel_name, cwd=str(Path(source).resolve().parent), start_timeout=180,
            progress_bar={"desc": progress} if progress else False,
            extra_arguments=["--IPKernelApp.log_level=CRITICAL"],
            kernel_manager_class=_KernelManager)
    except NoSuchKernel as exc:
        raise NstdreamError(f"no Jupyter kernel named {kernel_name!r}", where=str(source),
                            fix="run `make setup` (it installs the 'python3' kernel into .venv)") from exc
    except Exception as exc:  # a cell raised (papermill's error names it), or the kernel died or timed out
        raise NotebookError(source, *_failed_cell(output), getattr(exc, "ename", type(exc).__name__),
                            getattr(exc, "evalue", str(exc)), output) from exc


def _existing(paths: Sequence[str | os.PathLike]) -> list[Path]:
    paths = [Path(p) for p in paths]
    if not paths:
        raise MissingFileError("no notebooks match NN_*.ipynb",
                               fix="run from the repository root or pass --notebooks-dir")
    for path in (path for path in paths if not path.is_file()):
        raise MissingFileError("no such notebook", where=str(path), fix="pass notebooks that exist")
    return paths


def run_notebooks(notebooks: Sequence[str | os.PathLike], out_dir: str | os.PathLike, *,
                  parameters: Mapping[str, Any] | None = None, preset: str | None = None,
                  kernel_name: str = "python3", progress: bool = True) -> list[Path]:
    """Run each notebook into ``out_dir`` with those ``parameters`` (and ``preset``) its parameters cell defines."""
    paths = _existing(notebooks)
    values = {name: _plain(name, value) for name, value in (parameters or {}).items()}
    declared = {path: declared_parameters(path) for path in paths}
    known = set().union(*declared.values())
    if unknown := sorted(values.keys() - known):
        defined = f"defined: {', '.join(sorted(known)) or 'none'}"
        raise InputError(f"no notebook's parameters cell defines {unknown[0]!r}",
                         fix=did_you_mean(unknown[0], sorted(known), defined))
    for number, path in enumerate(paths, start=1):
        given = {name: value for name, value in values.items() if name in declared[path]}
        given.update({"preset": preset} if preset is not None and "preset" in declared[path] else {})
        execute_notebook(path, Path(out_dir) / path.name, parameters=given, kernel_name=kernel_name,
                         progress=f"[{number}/{len(paths)}] {path.name}" if progress else "")
    return [Path(out_dir) / path.name for path in paths]


def execute_in_place(paths: Sequence[str | os.PathLike], *, kernel_name: str = "python3",
                     progress: bool = True) -> list[Path]:
    """Re-execute notebooks (normalised copies) with their defaults and store the normalised results in place."""
    paths = _existing(paths)
    work = Path(tempfile.mkdtemp(prefix="nstdream-notebooks-"))
    for number, path in enumerate(paths, start=1):
        execute_notebook(path, work / path.name, parameters={}, kernel_name=kernel_name,
                         run_from=nbtools.normalized(nbtools.read(path)),
                         progress=f"[{number}/{len(paths)}] {path.name}" if progress else "")
        nbtools.write(nbtools.normalized(nbtools.read(work / path.name)), path)
    shutil.rmtree(work)
    return paths


def render_site(executed: Sequence[str | os.PathLike], report_dir: str | os.PathLike, *, preset: str | None = None,
                notebooks_dir: str | os.PathLike = "notebooks") -> Path:
    """Build the site ``report_dir`` from executed notebooks (no nav cells) and the course's docs; its index.html."""
    from sphinx.cmd.build import build_main
    paths, root, report_dir = _existing(executed), Path(notebooks_dir).resolve().parent, Path(report_dir)
    notebooks_subdir, docs = Path(notebooks_dir).resolve().name, sorted((root / "docs").glob("*.md"))
    with tempfile.TemporaryDirectory(prefix="nstdream-site-") as tmp:
        src = Path(tmp) / "src"
        shutil.copytree(SITE_DIR, src, ignore=shutil.ignore_patterns("index.md", "__pycache__"))
        images = set()  # those the pages show from the course folder: copied in
        (src / notebooks_subdir).mkdir()
        for path in paths:
            nb = nbformat.read(path, as_version=4)
            nb.cells = [cell for cell in nb.cells if not nbtools.is_nav_cell(cell)]
            for cell in nb.cells:
                if cell.cell_type == "code":
                    cell.outputs = nbtools.clean_outputs(cell.outputs)
                images.update((root / notebooks_subdir / image).resolve() for image in _IMAGE.findall(cell.source))
            nbformat.write(nb, src / notebooks_subdir / path.name)
        (src / "docs").mkdir()
        for doc in docs:
            images.update((root / "docs" / image).resolve() for image in _IMAGE.findall(doc.read_text("utf-8")))
            shutil.copyfile(doc, src / "docs" / doc.name)
        for image in (image for image in images if image.is_file() and image.is_relative_to(root)):
            (src / image.relative_to(root)).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(image, src / image.relative_to(root))
        (src / "index.md").write_text(string.Template((SITE_DIR / "index.md").read_text("utf-8")).substitute(
            built_with=f"the **{preset}** preset" if preset else "the notebooks' default parameters",
            notebooks="\n".join(f"{notebooks_subdir}/{path.stem}" for path in paths),
            docs="\n".join(f"docs/{doc.stem}" for doc in docs)), "utf-8")
        if build_main(["-b", "html", "-q", "-d", str(Path(tmp) / "doctrees"), str(src), str(Path(tmp) / "html")]):
            raise NstdreamError("sphinx-build failed (its messages are above)", where=str(report_dir))
        shutil.rmtree(report_dir, ignore_errors=True)
        shutil.copytree(Path(tmp) / "html", report_dir)
    return report_dir / "index.html"


def build_report(*, preset: str = "quick", out: str | os.PathLike = "build", notebooks_dir: str | os.PathLike =
                 "notebooks", notebooks: Sequence[str | os.PathLike] | None = None,
                 parameters: Mapping[str, Any] | None = None, kernel_name: str = "python3", execute: bool = True,
                 progress: bool = True) -> Path:
    """Run the notebooks into ``out/notebooks/`` (if ``execute``), build ``out/report/``; return its index.html."""
    paths = notebooks or nbtools.notebook_paths(notebooks_dir)
    if execute:
        get_preset(preset)  # before anything runs
        paths = run_notebooks(paths, Path(out) / "notebooks", parameters=parameters, preset=preset,
                              kernel_name=kernel_name, progress=progress)
    return render_site(paths, Path(out) / "report", preset=preset if execute else None, notebooks_dir=notebooks_dir)


def _parameter(text: str) -> tuple[str, Any]:
    """``NAME=VALUE`` → (name, value); VALUE a Python literal (``3``, ``[1, 2]``), else the string."""
    name, sep, raw = text.partition("=")
    if not sep or not name.isidentifier():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    with contextlib.suppress(ValueError, SyntaxError):
        return name, ast.literal_eval(raw)
    return name, raw


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nstdream_utils.report", description=__doc__.split("\n")[0])
    add = parser.add_argument
    add("notebooks", nargs="*", metavar="NOTEBOOK",
        help="notebooks to run (default: every NN_*.ipynb in --notebooks-dir)")
    add("--preset", help="preset passed to notebooks that take one (default: quick)")
    add("--out", default="build", help="output folder (default: build)")
    add("--notebooks-dir", default="notebooks", help="default: notebooks")
    add("--in-place", action="store_true", help="re-execute with defaults and store the normalised outputs in place")
    add("--no-execute", action="store_true", help="build the site from the notebooks as they are, running nothing")
    add("-p", "--parameter", action="append", type=_parameter, default=[], metavar="NAME=VALUE",
        help="a value for notebooks whose parameters cell defines NAME (repeatable)")
    add("--kernel", default="python3", help="Jupyter kernel name (default: python3)")
    add("-q", "--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    if args.in_place and (args.preset or args.parameter):
        parser.error("--in-place runs each notebook with its default parameters; drop --preset and -p")
    if args.no_execute and (args.in_place or args.preset or args.parameter):
        parser.error("--no-execute runs nothing; drop --in-place, --preset and -p")
    try:
        if args.in_place:
            paths = args.notebooks or nbtools.notebook_paths(args.notebooks_dir)
            for path in execute_in_place(paths, kernel_name=args.kernel, progress=not args.quiet):
                print(f"executed {path}")
        else:
            print("report:", build_report(
                preset=args.preset or "quick", out=args.out, notebooks_dir=args.notebooks_dir,
                notebooks=args.notebooks, parameters=dict(args.parameter), kernel_name=args.kernel,
                execute=not args.no_execute, progress=not args.quiet))
    except NstdreamError as exc:
        print(f"error: {exc.one_line()}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
