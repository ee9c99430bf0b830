"""Griffe extension for the API reference: numpy docstrings' reST math and roles as Markdown.

``.. math::`` blocks become ``$$ ... $$`` and ``:math:`x``` becomes ``$x$`` (rendered by
pymdownx.arithmatex and MathJax); ``:class:`~a.B``` and the other cross-reference roles
become code spans.
"""

from __future__ import annotations

import re
import textwrap

import griffe

_ROLE = re.compile(r":(?:class|func|meth|attr|mod|data|obj|exc|ref):`~?([^`]+)`")
_MATH_ROLE = re.compile(r":math:`([^`]+)`")
_DIRECTIVE = re.compile(r"^(\s*)\.\. math::\s*(.*)$")


def rst_to_markdown(text: str) -> str:
    """The docstring ``text`` with its math directives and roles in Markdown."""
    lines, out, i = text.splitlines(), [], 0
    while i < len(lines):
        match = _DIRECTIVE.match(lines[i])
        if not match:
            out.append(lines[i])
            i += 1
            continue
        indent, body = match.group(1), [match.group(2)] if match.group(2) else []
        i += 1
        while i < len(lines) and (not lines[i].strip() or len(lines[i]) - len(lines[i].lstrip()) > len(indent)):
            body.append(lines[i])
            i += 1
        math = textwrap.dedent("\n".join(body)).strip("\n")
        out += ["", f"{indent}$$", *(indent + line for line in math.splitlines()), f"{indent}$$", ""]
    return _ROLE.sub(r"`\1`", _MATH_ROLE.sub(r"$\1$", "\n".join(out)))


class RstMath(griffe.Extension):
    """Rewrite every docstring once the object tree is built."""

    def on_object(self, *, obj: griffe.Object, **kwargs) -> None:  # noqa: ARG002 - griffe's hook signature
        if obj.docstring is not None:
            obj.docstring.value = rst_to_markdown(obj.docstring.value)
