"""The public API: every name in ``jaxopt_lite.__all__`` exists once, and every
public function documents its update rule with a ``$$`` math block.

Exempt from the ``$$`` rule: classes (NamedTuple states, result and
configuration types such as ``Checkpoint``) and non-callable objects (type
aliases such as ``ScalarOrSchedule``); they still need a docstring (see
``tests/test_docs.py``).
"""

from __future__ import annotations

import inspect

import pytest

import jaxopt_lite

PUBLIC = list(jaxopt_lite.__all__)


def _is_exempt(obj: object) -> bool:
    return inspect.isclass(obj) or not callable(obj)


def test_all_has_no_duplicates():
    duplicates = sorted({name for name in PUBLIC if PUBLIC.count(name) > 1})
    assert not duplicates, f"names listed twice in jaxopt_lite.__all__: {duplicates}"


@pytest.mark.parametrize("name", PUBLIC)
def test_public_function_docstring_has_math_block(name: str):
    assert hasattr(jaxopt_lite, name), (
        f"jaxopt_lite.__all__ lists {name!r}, which does not exist"
    )
    obj = getattr(jaxopt_lite, name)
    if _is_exempt(obj):
        pytest.skip(f"{name} is a class or a type alias (exempt from the $$ rule)")
    doc = inspect.getdoc(obj) or ""
    assert doc.strip(), f"jaxopt_lite.{name} has no docstring"
    assert doc.count("$$") >= 2, (
        f"jaxopt_lite.{name}'s docstring needs the update rule in a $$ ... $$ block"
    )
    summary = doc.strip().splitlines()[0]
    assert summary.rstrip().endswith("."), (
        f"jaxopt_lite.{name}: the one-line summary should be one sentence "
        f"ending with a period: {summary!r}"
    )


@pytest.mark.parametrize("name", PUBLIC)
def test_public_docstring_uses_no_restructuredtext_roles(name: str):
    doc = inspect.getdoc(getattr(jaxopt_lite, name, None)) or ""
    for role in (":func:`", ":class:`", ":math:`", ":meth:`", ".. math::"):
        assert role not in doc, (
            f"jaxopt_lite.{name}'s docstring uses {role!r}; use Markdown "
            "(`name`, $...$, $$...$$) instead"
        )
