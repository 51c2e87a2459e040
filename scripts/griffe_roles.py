"""A griffe extension for the documentation: Sphinx roles in docstrings as Markdown.

The docstrings name things the way Sphinx does (``:class:`~actorcluster.errors.UsageError```,
``:meth:`cleanup```); mkdocstrings renders Markdown, where those would show as typed.
This turns each role into inline code (``UsageError``; ``~`` keeps the last part, as in
Sphinx), so the reference reads as the source means it.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_ROLE = re.compile(r":(?:py:)?(?:class|meth|func|attr|mod|data|exc|obj|const):`(~?)([^`]+)`")


def _code(match: re.Match[str]) -> str:
    short, target = match.group(1), match.group(2)
    if "<" in target and target.endswith(">"):  # :class:`text <target>`
        return f"`{target.split('<', 1)[0].strip()}`"
    return f"`{target.rsplit('.', 1)[-1] if short else target}`"


class SphinxRoles(griffe.Extension):
    """Rewrite Sphinx roles as inline code in every docstring."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        """Rewrite ``obj``'s docstring (it is parsed later, when rendered)."""
        if obj.docstring is not None:
            obj.docstring.value = _ROLE.sub(_code, obj.docstring.value)
