"""Execute the tutorials (jupytext percent scripts) into notebooks for the documentation site.

``make notebooks`` runs this locally; the docs build (``make docs``, CI) only renders the
committed notebooks under ``docs/tutorials/`` and never executes anything.

Each ``tutorials/NN_name.py`` is read with jupytext, executed in a fresh ipykernel with
nbclient (figures are shown inline, at a reduced resolution to keep the files small) and
written to ``docs/tutorials/NN_name.ipynb`` with the volatile metadata stripped. A tutorial
that needs shared data or a package that is absent is skipped with a message and its
previous notebook, if any, is kept.

Usage::

    MDLPROB_DATA=/path/to/shared/data python docs/scripts/execute_tutorials.py [--full] [NAMES...]

By default each tutorial runs in its full mode, except those in :data:`FAST_ONLY`, whose full
mode takes too long for a routine rebuild and which run in their fast mode
(``MDLPROB_TUTORIAL_FAST=1``); ``--fast`` runs every tutorial in its fast mode. The mode is
recorded in the notebook's metadata (``metadata.mdlprob.mode``).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "tutorials"
TARGET = ROOT / "docs" / "tutorials"
#: Inline figures at this resolution (the inline backend's default is 100 dpi at 2x for retina).
FIGURE_DPI = 72
#: Tutorials executed in their fast mode by default, and why.
FAST_ONLY = {"02_missing_mri_sequence": "its full mode needs about a quarter of an hour of one core"}


def missing_requirement(path: Path) -> str | None:
    """Why ``path`` cannot run here (absent data or package), or None."""
    text = path.read_text()
    sys.path.insert(0, str(ROOT))
    from mdlprob.datasets._paths import data_root

    if "tcga_survival(" in text and not (data_root() / "tcga_mcat_sig").is_dir():
        return f"needs the shared TCGA tables: no folder {data_root() / 'tcga_mcat_sig'} (set MDLPROB_DATA)"
    if "citeseq_pbmc(" in text:
        if importlib.util.find_spec("scanpy") is None:
            return "needs scanpy (pip install scanpy)"
        if not (data_root() / "citefuse_eccite_pbmc").is_dir():
            return f"needs the shared CiteFuse data: no folder {data_root() / 'citefuse_eccite_pbmc'} (set MDLPROB_DATA)"
    return None


def strip_volatile(notebook, *, fast: bool) -> None:
    """Drop what changes from run to run without changing the content (timings, ids, versions)."""
    notebook.metadata = {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
                         "language_info": {"name": "python"}, "mdlprob": {"mode": "fast" if fast else "full"}}
    for index, cell in enumerate(notebook.cells):
        cell.id = f"cell-{index}"
        cell.metadata = {}


def execute(path: Path, *, fast: bool, timeout: int) -> Path:
    import jupytext
    import nbformat
    from nbclient import NotebookClient

    notebook = jupytext.read(path)
    # Inline figures, smaller, and no tqdm notice: run before the tutorial's own cells, removed again afterwards.
    setup = nbformat.v4.new_code_cell(
        "import warnings\n"
        "warnings.filterwarnings('ignore', message='IProgress not found')  # tqdm without ipywidgets\n"
        "%matplotlib inline\n"
        "%config InlineBackend.figure_formats = ['png']\n"
        f"%config InlineBackend.rc = {{'figure.dpi': {FIGURE_DPI}}}")
    notebook.cells.insert(0, setup)
    with tempfile.TemporaryDirectory() as work:
        # Figures and models go to the kernel's folder, work; the relative name keeps the notebooks free of temporary paths.
        env = {"MDLPROB_TUTORIAL_FAST": "1" if fast else "0", "MDLPROB_TUTORIAL_OUT": "tutorial_output",
               "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
        saved = {key: os.environ.get(key) for key in [*env, "MPLBACKEND"]}
        os.environ.update(env)
        os.environ.pop("MPLBACKEND", None)  # let ipykernel choose its inline backend
        try:
            client = NotebookClient(notebook, timeout=timeout, kernel_name="python3", record_timing=False,
                                    resources={"metadata": {"path": work}})
            client.execute()
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
    notebook.cells.pop(0)
    strip_volatile(notebook, fast=fast)
    TARGET.mkdir(parents=True, exist_ok=True)
    out = TARGET / f"{path.stem}.ipynb"
    nbformat.write(notebook, out)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("names", nargs="*", help="tutorial file names or stems (default: all)")
    parser.add_argument("--fast", action="store_true", help="every tutorial in its fast mode (MDLPROB_TUTORIAL_FAST=1)")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per cell (default 1800)")
    args = parser.parse_args(argv)
    paths = sorted(SOURCE.glob("[0-9]*.py"))
    if args.names:
        wanted = {Path(name).stem for name in args.names}
        unknown = wanted - {p.stem for p in paths}
        if unknown:
            parser.error(f"no tutorial named {sorted(unknown)} in {SOURCE}; choose from {[p.stem for p in paths]}")
        paths = [p for p in paths if p.stem in wanted]
    failed = []
    for path in paths:
        reason = missing_requirement(path)
        if reason:
            print(f"skip {path.name}: {reason}", flush=True)
            continue
        fast = args.fast or path.stem in FAST_ONLY
        if fast and not args.fast:
            print(f"{path.name}: fast mode ({FAST_ONLY[path.stem]})", flush=True)
        start = time.perf_counter()
        try:
            out = execute(path, fast=fast, timeout=args.timeout)
        except Exception as err:  # report every tutorial, fail at the end
            print(f"FAILED {path.name}: {type(err).__name__}: {str(err)[-2000:]}", flush=True)
            failed.append(path.name)
            continue
        size = out.stat().st_size / 1024
        print(f"{path.name} -> {out.relative_to(ROOT)} ({'fast' if fast else 'full'} mode, "
              f"{time.perf_counter() - start:.0f} s, {size:.0f} KB)", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
