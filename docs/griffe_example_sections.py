"""Griffe extension: read a Google-style ``Example:`` header as ``Examples:``.

The project's docstring template (CONTRIBUTING.md) heads its doctests with
``Example:``. Griffe's Google parser only knows the plural ``Examples:`` as a
section and would otherwise render the doctest as a quoted admonition. This
extension renames the header before the docstring is parsed, so mkdocstrings
shows the example as highlighted Python console code.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_EXAMPLE_HEADER = re.compile(r"^(\s*)Example:[ \t]*$", re.MULTILINE)


class ExampleSections(griffe.Extension):
    """Rename ``Example:`` section headers to ``Examples:``."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        del kwargs
        if obj.docstring is not None:
            obj.docstring.value = _EXAMPLE_HEADER.sub(
                r"\1Examples:", obj.docstring.value
            )
