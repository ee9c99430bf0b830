"""Every docstring example of the package runs and prints what it shows.

The two examples that fit models for several seconds run in the slow tier; the others (about 10 s
together on one core) run in the default run, so an example that drifts from the code fails here.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import mdlprob

#: Examples that train for several seconds (measured: LatentHead 9.4 s, EarlyFusion 3.2 s).
SLOW = {"mdlprob.heads._latent.LatentHead", "mdlprob.fusion._early.EarlyFusion"}


def _doctests() -> list[doctest.DocTest]:
    finder = doctest.DocTestFinder(exclude_empty=True)
    found = []
    for info in pkgutil.walk_packages(mdlprob.__path__, "mdlprob."):
        module = importlib.import_module(info.name)
        found += [t for t in finder.find(module, module=module) if t.examples]
    return sorted(found, key=lambda t: t.name)


@pytest.mark.parametrize(
    "test", [pytest.param(t, id=t.name, marks=[pytest.mark.slow] if t.name in SLOW else []) for t in _doctests()]
)
def test_docstring_example(test):
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    report: list[str] = []
    runner.run(test, out=report.append)
    assert runner.failures == 0, "".join(report)


def test_the_examples_are_found():
    names = {t.name for t in _doctests()}
    assert "mdlprob.models._factor_model.FactorModel" in names and SLOW <= names
