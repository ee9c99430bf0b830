"""The tutorials run end to end (fast mode) and the docs only name objects that exist."""

from __future__ import annotations

import importlib
import re
import runpy
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TUTORIALS = sorted((ROOT / "tutorials").glob("*.py"))
DOCS = sorted((ROOT / "docs").rglob("*.md"))


#: Tutorials whose fast mode still takes long, run with -m slow (make test-all), and why.
SLOW = {"04_citeseq_scanpy.py": "scanpy's neighbours and UMAP compile numba code (~40 s on 2 cores)"}


@pytest.mark.parametrize("path", [pytest.param(p, marks=pytest.mark.slow) if p.name in SLOW else p for p in TUTORIALS],
                         ids=[p.name for p in TUTORIALS])
def test_tutorial_runs(path, tmp_path, monkeypatch):
    """Run in this process so that pytest's ``filterwarnings = error`` applies to the tutorial too."""
    if "tcga_survival(" in path.read_text():
        try:
            importlib.import_module("mdlprob").datasets.tcga_survival("blca", source="mcat")
        except FileNotFoundError as err:
            pytest.skip(f"{path.name} needs the shared TCGA tables: {err}")
        from mdlprob.datasets._paths import ENV_VAR, data_root

        monkeypatch.setenv(ENV_VAR, str(data_root().resolve()))  # the tutorial runs from tmp_path
    if "citeseq_pbmc(" in path.read_text():
        pytest.importorskip("scanpy", reason=f"{path.name} needs scanpy (pip install scanpy)")
        from mdlprob.datasets._paths import ENV_VAR, data_root

        folder = data_root() / "citefuse_eccite_pbmc"
        if not folder.is_dir():
            pytest.skip(f"{path.name} needs the shared CiteFuse data: no folder {folder}")
        monkeypatch.setenv(ENV_VAR, str(data_root().resolve()))  # the tutorial runs from tmp_path
    out = tmp_path / "out"
    monkeypatch.setenv("MDLPROB_TUTORIAL_FAST", "1")
    monkeypatch.setenv("MDLPROB_TUTORIAL_OUT", str(out))
    monkeypatch.chdir(tmp_path)
    runpy.run_path(str(path), run_name="__main__")
    assert list(out.glob("*.png")), f"{path.name} wrote no figure to {out}"


def test_tutorials_exist():
    assert TUTORIALS, "no tutorials/*.py found"


@pytest.mark.parametrize("path", TUTORIALS, ids=[p.name for p in TUTORIALS])
def test_tutorial_is_jupytext_percent(path):
    jupytext = pytest.importorskip("jupytext")
    notebook = jupytext.read(path)
    kinds = {cell.cell_type for cell in notebook.cells}
    assert kinds == {"code", "markdown"}
    first = next(c for c in notebook.cells if c.cell_type == "markdown")
    assert first.source.lstrip().startswith("# "), "a tutorial starts with a markdown title"


def _resolve(dotted: str) -> object:
    """Import the longest importable module prefix of ``dotted``, then getattr the rest."""
    parts = dotted.split(".")
    obj, i = None, len(parts)
    while i > 0:
        try:
            obj = importlib.import_module(".".join(parts[:i]))
            break
        except ModuleNotFoundError:
            i -= 1
    if obj is None:
        raise ModuleNotFoundError(dotted)
    for name in parts[i:]:
        obj = getattr(obj, name)
    return obj


def _dotted_names() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for doc in DOCS:
        text = doc.read_text()
        spans = re.findall(r"```.*?```", text, flags=re.DOTALL) + re.findall(r"`[^`\n]+`", re.sub(r"```.*?```", "", text, flags=re.DOTALL))
        for span in spans:
            for name in re.findall(r"\bmdlprob(?:\.[A-Za-z_][A-Za-z0-9_]*)+", span):
                found.setdefault(name.rstrip("."), []).append(doc.relative_to(ROOT).as_posix())
    return found


def test_docs_exist():
    names = {p.relative_to(ROOT / "docs").as_posix() for p in DOCS}
    assert {"index.md", "getting_started.md", "api.md", "models/poe_vae.md"} <= names


def test_docs_name_only_existing_objects():
    """Every ``mdlprob.x.y`` in a backtick span or code block of docs/*.md resolves."""
    names = _dotted_names()
    assert len(names) > 20, "the docs should name the public API"
    missing = []
    for name, where in sorted(names.items()):
        try:
            _resolve(name)
        except (ImportError, AttributeError):
            missing.append(f"{name} ({', '.join(sorted(set(where)))})")
    assert not missing, "docs name objects that do not exist: " + "; ".join(missing)


def _split_args(text: str) -> list[str]:
    """Split a documented argument list at top-level commas."""
    parts, depth, quote, cur = [], 0, "", ""
    for ch in text:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(cur.strip())
            cur = ""
            continue
        cur += ch
    if cur.strip():
        parts.append(cur.strip())
    return parts


def _documented_signatures() -> list[tuple[str, str, str]]:
    out = []
    for doc in DOCS:
        for span in re.findall(r"`(mdlprob(?:\.[A-Za-z_]\w*)+)\(([^`]*)\)`", doc.read_text()):
            out.append((doc.relative_to(ROOT).as_posix(), *span))
    return out


def test_documented_signatures_match_code():
    """``mdlprob.f(a, *, b=1)`` in the docs has the parameters, order and defaults of the code."""
    import ast
    import inspect

    checked, wrong = 0, []
    for where, name, args in _documented_signatures():
        params = [p for p in inspect.signature(_resolve(name)).parameters.values() if p.name not in ("self", "cls")]
        expected, star = [], False
        for p in params:
            if p.kind is p.KEYWORD_ONLY and not star:
                expected.append(("*", inspect.Parameter.empty))
                star = True
            if p.kind is p.VAR_POSITIONAL:
                star = True
                expected.append(("*" + p.name, inspect.Parameter.empty))
            elif p.kind is p.VAR_KEYWORD:
                expected.append(("**" + p.name, inspect.Parameter.empty))
            else:
                expected.append((p.name, p.default))
        documented = []
        for arg in _split_args(args):
            key, sep, default = arg.partition("=")
            documented.append((key.strip(), ast.literal_eval(default.strip()) if sep else inspect.Parameter.empty))
        if documented != expected:
            wrong.append(f"{where}: {name}({args}) but the code has {inspect.signature(_resolve(name))}")
        checked += 1
    assert checked > 10
    assert not wrong, "\n".join(wrong)


#: The executed notebooks the docs render (``make notebooks``), one per tutorial.
NOTEBOOKS = ROOT / "docs" / "tutorials"


@pytest.mark.parametrize("path", TUTORIALS, ids=[p.name for p in TUTORIALS])
def test_executed_notebook_is_current(path):
    """Each tutorial has an executed notebook with figures, small, whose code is the tutorial's."""
    jupytext = pytest.importorskip("jupytext")
    nbformat = pytest.importorskip("nbformat")
    executed = NOTEBOOKS / f"{path.stem}.ipynb"
    assert executed.is_file(), f"no {executed}: run `make notebooks` and commit it"
    assert executed.stat().st_size < 400_000, f"{executed} is {executed.stat().st_size} bytes; lower the figure dpi"
    notebook = nbformat.read(executed, as_version=4)
    assert notebook.metadata.get("mdlprob", {}).get("mode") in {"fast", "full"}, f"{executed.name} does not record its mode"
    code = [c.source for c in notebook.cells if c.cell_type == "code"]
    assert code == [c.source for c in jupytext.read(path).cells if c.cell_type == "code"], (
        f"{executed.name} is stale: {path.name} changed since it was executed; run `make notebooks`")
    outputs = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"], f"{executed.name} holds an error"
    assert any("image/png" in o.get("data", {}) for o in outputs), f"{executed.name} shows no figure"
    assert f"tutorials/{executed.name}" in (ROOT / "mkdocs.yml").read_text(), f"{executed.name} is not in the nav"
