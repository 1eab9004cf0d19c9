"""Maintainer commands for the course notebooks: navigation cells, the setup cell, the contents page, checks.

A course notebook is ``NN_snake_case.ipynb``; its first cell is markdown with a ``# `` title and a ``> `` summary
line. The navigation cells (second and last) and the setup cell (the first code cell) are generated. Use:
``python tools/notebooks.py nav|normalize|check [NOTEBOOK ...]`` or ``contents [DIR]`` (DIR/README.md).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Iterable, Sequence
from urllib.parse import quote

import nbformat

from nstdream_utils.files import atomic_write_text
from nstdream_utils.notebooks import NAV_MARKER, is_nav_cell, normalized, notebook_paths, read, write

#: The repository the badges open and the setup cell clones; a fork changes it, then runs ``nav``.
REPOSITORY_URL = "https://github.com/nstdream/nstdream"
BRANCH = "main"
SETUP_ID = "setup"
CONTENTS_START, CONTENTS_END = "<!-- contents:start -->", "<!-- contents:end -->"


def heading(path: str | os.PathLike) -> tuple[str, str]:
    """The first ``# `` and ``>`` lines of the first markdown cell, unmarked; else the file stem and ''."""
    lines = next((cell.source.splitlines() for cell in read(path).cells if cell.cell_type == "markdown"), [])
    title = next((line[2:].strip() for line in lines if line.startswith("# ")), "")
    summary = next((line[1:].strip() for line in lines if line.startswith(">")), "")
    return title or Path(path).stem.replace("_", " "), summary


def _link(target: Path, here: Path) -> str:
    return Path(os.path.relpath(target, here.parent)).as_posix()


def badges(path: Path, *, repository: str = REPOSITORY_URL, branch: str = BRANCH) -> str:
    """The "Open in Colab" and "Launch Binder" badges of the notebook at ``path`` in ``repository``."""
    slug = repository.removeprefix("https://github.com/").strip("/")
    file = "/".join(Path(path).resolve().parts[-2:])  # the notebooks' folder is at the repository root
    colab = f"https://colab.research.google.com/github/{slug}/blob/{branch}/{file}"
    binder = f"https://mybinder.org/v2/gh/{slug}/{branch}?labpath={quote(file, safe='')}"
    return (f"[![Open in Colab](https://colab.research.google.com/assets/colab-badge.svg)]({colab}) "
            f"[![Launch Binder](https://mybinder.org/badge_logo.svg)]({binder})")


def is_setup_cell(cell) -> bool:
    return cell.cell_type == "code" and cell.get("id") == SETUP_ID


def add_navigation(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Put a navigation cell (neighbours, contents, badges) second and last in each notebook and the setup cell
    first among its code cells (kept with its outputs when current); return the files changed."""
    paths = [Path(p) for p in paths]
    titles = [heading(p)[0] for p in paths]
    changed = []
    for index, path in enumerate(paths):
        parts = [f"< [{titles[index - 1]}]({_link(paths[index - 1], path)})"] if index else []
        parts.append(f"[Contents]({_link(paths[0].parent / 'README.md', path)})")
        parts += [f"[{titles[index + 1]}]({_link(paths[index + 1], path)}) >"] if index + 1 < len(paths) else []
        source = f"{NAV_MARKER}\n" + " · ".join(parts) + "\n\n" + badges(path)
        nb = read(path)
        setup = next((cell for cell in nb.cells if is_setup_cell(cell) and cell.source == setup_source()),
                     nbformat.v4.new_code_cell(setup_source(), id=SETUP_ID))
        cells = [cell for cell in nb.cells if not is_nav_cell(cell) and not is_setup_cell(cell)]
        first_code = next((i for i, c in enumerate(cells) if c.cell_type == "code"), len(cells))
        cells.insert(first_code, setup)
        nb.cells = [*cells[:1], nbformat.v4.new_markdown_cell(source, id="nav-top"), *cells[1:],
                    nbformat.v4.new_markdown_cell(source, id="nav-bottom")]
        if write(nb, path):
            changed.append(path)
    return changed


#: The setup cell: where ``nstdream_utils`` is missing it installs the checkout it is in (or clones
#: ``{repository}`` and moves to its ``notebooks``), with ``[cpu]`` TensorFlow only where there is none.
SETUP_TEMPLATE = """\
# Setup: where the course is missing (Colab, a fresh Binder) this installs it and the network weights,
# a few minutes once; where it is installed it does nothing.
import importlib.util, os, pathlib, subprocess, sys

if importlib.util.find_spec("nstdream_utils") is None:
    tomls = [folder / "pyproject.toml" for folder in [pathlib.Path.cwd(), *pathlib.Path.cwd().parents]]
    checkout = next((toml.parent for toml in tomls if toml.is_file() and 'name = "nstdream"' in toml.read_text()), None)
    if checkout is None:  # this notebook alone: get the whole course, and run from its notebooks folder
        checkout = pathlib.Path("nstdream").resolve()
        if not checkout.is_dir():
            subprocess.run(["git", "clone", "-q", "--depth", "1", "{repository}", str(checkout)], check=True)
        os.chdir(checkout / "notebooks")
    extra = "" if importlib.util.find_spec("tensorflow") else "[cpu]"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-e", f"{{checkout}}{{extra}}"], check=True)
    sys.path.insert(0, str(checkout))
    subprocess.run([sys.executable, "-m", "nstdream_utils.cli", "weights", "fetch"], check=True)"""


def setup_source(repository: str = REPOSITORY_URL) -> str:
    return SETUP_TEMPLATE.format(repository=repository)


def write_contents(notebooks_dir: str | os.PathLike = "notebooks") -> Path:
    """Write ``1. [Title](file.ipynb) — summary`` per notebook between the contents markers of
    ``notebooks_dir/README.md``, keeping the text around them (a README without them is written whole)."""
    readme = Path(notebooks_dir) / "README.md"
    items = [f"{number}. [{title}]({_link(path, readme)})" + (f" — {summary}" if summary else "")
             for number, path in enumerate(notebook_paths(notebooks_dir), start=1) for title, summary in [heading(path)]]
    block = "\n".join([CONTENTS_START, *items, CONTENTS_END])
    old = readme.read_text(encoding="utf-8") if readme.exists() else ""
    head, start, rest = old.partition(CONTENTS_START)
    _, end, tail = rest.partition(CONTENTS_END)
    text = head + block + tail if start and end else f"# Notebooks\n\n{block}\n"
    if text != old:
        atomic_write_text(text, readme)
    return readme


def normalize(path: str | os.PathLike) -> bool:
    """Normalise a notebook file in place; True when it changed."""
    return write(normalized(read(path)), path)


def check(path: str | os.PathLike) -> list[str]:
    """What stops this notebook from being committed, one short sentence each ([] when fine)."""
    path = Path(path)
    try:
        nb = read(path)
    except Exception as exc:  # noqa: BLE001 — any unreadable file is one problem to report
        return [f"cannot be read as a notebook ({type(exc).__name__}: {exc})"]
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    first = nb.cells[0].source.splitlines() if nb.cells and nb.cells[0].cell_type == "markdown" else []
    titled, megabytes = any(line.startswith("# ") for line in first), path.stat().st_size / 2**20
    problems = [problem for found, problem in [
        (megabytes > 2, f"file is {megabytes:.1f} MB, over 2 MB — show smaller images"),
        ("kernelspec" not in nb.metadata, "no kernelspec in metadata — save it once from Jupyter with the Python 3 kernel"),
        (not titled, "first cell is not the title cell ('# NN · Title' then a '> summary' line)"),
        (titled and not any(line.startswith(">") for line in first), "title cell has no one-line '> summary'"),
        (not any("parameters" in cell.metadata.get("tags", []) for cell in code),
         "no code cell tagged 'parameters' — papermill cannot set its parameters"),
        (code and not any(cell.outputs for cell in code), "no outputs — execute it with `make notebooks`"),
    ] if found]
    for i, cell in enumerate(nb.cells):
        problems += [problem for found, problem in [
            (not cell.source.strip(), f"cell {i} is empty"),
            ("injected-parameters" in cell.metadata.get("tags", []),
             f"cell {i} is papermill's injected-parameters cell — run normalize"),
            (is_setup_cell(cell) and cell.source != setup_source(),
             f"cell {i}, the setup cell, differs from its template — run `python tools/notebooks.py nav`"),
        ] if found]
        problems += [f"cell {i} stores an error output ({output.ename}: {output.evalue})"
                     for output in cell.get("outputs", []) if output.output_type == "error"]
    if not problems and path.read_text(encoding="utf-8") != nbformat.writes(normalized(nb)) + "\n":
        problems.append(f"not normalised — run `python tools/notebooks.py normalize {path}`")
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python tools/notebooks.py", description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=["nav", "contents", "normalize", "check"])
    parser.add_argument("paths", nargs="*", help="notebooks (default: notebooks/NN_*.ipynb), or a folder")
    args = parser.parse_args(argv)
    if args.command == "contents":
        for folder in args.paths or ["notebooks"]:
            print(f"wrote {write_contents(folder)}")
        return 0
    paths = [Path(p) for p in args.paths] or notebook_paths("notebooks")
    missing = [p for p in paths if not p.is_file()]
    if not paths or missing:
        print(f"error: {missing[0] if missing else 'notebooks/NN_*.ipynb'}: no such notebook", file=sys.stderr)
        return 1
    if args.command == "check":
        problems = [f"{path}: {problem}" for path in paths for problem in check(path)]
        sys.stdout.writelines(f"{problem}\n" for problem in problems)
        return int(bool(problems))
    changed = add_navigation(paths) if args.command == "nav" else [p for p in paths if normalize(p)]
    for path in paths:
        print(f"{'updated' if path in changed else 'unchanged'} {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
