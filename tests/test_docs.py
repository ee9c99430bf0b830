"""The documentation site: reST math of the docstrings becomes Markdown math; `mkdocs build --strict` passes."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def _nav_pages(items) -> set[str]:
    pages = set()
    for item in items:
        value = next(iter(item.values())) if isinstance(item, dict) else item
        pages |= _nav_pages(value) if isinstance(value, list) else {value}
    return pages


def test_every_page_is_in_the_nav():
    config = yaml.load((ROOT / "mkdocs.yml").read_text(), Loader=yaml.BaseLoader)  # no !!python tags to resolve
    pages = {p.relative_to(ROOT / "docs").as_posix() for ext in ("md", "ipynb") for p in (ROOT / "docs").rglob(f"*.{ext}")}
    assert pages == _nav_pages(config["nav"]), "docs pages and the mkdocs nav differ"


def test_rst_math_and_roles_become_markdown():
    pytest.importorskip("griffe", reason="griffe comes with the docs extra: pip install -e '.[docs]'")
    sys.path.insert(0, str(ROOT / "docs" / "scripts"))
    try:
        from griffe_math import rst_to_markdown
    finally:
        sys.path.remove(str(ROOT / "docs" / "scripts"))
    text = "Model\n\n    .. math::\n\n        z \\sim \\mathcal N(0, I),\n        x = f(z)\n\n    Then :math:`q(z)` of :class:`~mdlprob.heads.LatentHead`."
    out = rst_to_markdown(text)
    assert "    $$\n    z \\sim \\mathcal N(0, I),\n    x = f(z)\n    $$" in out
    assert "Then $q(z)$ of `mdlprob.heads.LatentHead`." in out and ".. math::" not in out


@pytest.mark.slow
def test_mkdocs_build_strict(tmp_path):
    for package in ("mkdocs", "material", "mkdocstrings_handlers.python", "pymdownx", "mkdocs_jupyter"):
        if importlib.util.find_spec(package.split(".")[0]) is None:
            pytest.skip(f"{package} is not installed; the docs extra has it: pip install -e '.[docs]'")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "PYTHONPATH": str(ROOT)}
    res = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    page = (tmp_path / "site" / "reference" / "heads" / "index.html").read_text()
    assert 'id="mdlprob.heads.save_head"' in page and 'class="arithmatex"' in page
    tutorial = (tmp_path / "site" / "tutorials" / "01_quickstart" / "index.html").read_text()
    assert "data:image/png" in tutorial, "the executed tutorial notebook renders with its figure"
