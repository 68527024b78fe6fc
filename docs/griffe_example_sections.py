"""Griffe extension: small fixes so docstrings render as their authors meant.

* The project's docstring template (CONTRIBUTING.md) heads its doctests with
  ``Example:``. Griffe's Google parser only knows the plural ``Examples:`` as
  a section and would render the doctest as a quoted admonition, so the
  header is renamed before the docstring is parsed.
* A wrapped line that happens to start with ``>`` (``a number\\n> 0``) would
  become a Markdown block quote; the ``>`` is escaped (doctest prompts
  ``>>>`` are left alone).
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_EXAMPLE_HEADER = re.compile(r"^(\s*)Example:[ \t]*$", re.MULTILINE)
_QUOTE_START = re.compile(r"^(\s*)>(?!>>)", re.MULTILINE)


class ExampleSections(griffe.Extension):
    """Rename ``Example:`` headers and escape stray leading ``>``."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        del kwargs
        if obj.docstring is not None:
            text = _EXAMPLE_HEADER.sub(r"\1Examples:", obj.docstring.value)
            obj.docstring.value = _QUOTE_START.sub(r"\1\\>", text)
