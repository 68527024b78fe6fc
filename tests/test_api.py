"""The public API: every name in ``jaxopt_lite.__all__`` exists once, and every
public function that has an update rule documents it in a ``$$`` math block.

An update rule exists for what layer 1 builds: transforms, optimizers,
schedules and combinators (``jaxopt_lite._transforms``, ``_optimizers``,
``_schedules``, ``_combinators``). Functions that only read a state back
(`current_learning_rate`, `ema_of`, `slow_params_of`, `pruning_masks_of`),
the drivers and the checkpoint functions need no math; classes and type
aliases neither. All of them still need a docstring (see
``tests/test_docs.py``).
"""

from __future__ import annotations

import inspect

import pytest

import jaxopt_lite

PUBLIC = list(jaxopt_lite.__all__)


def _is_exempt(obj: object) -> bool:
    return inspect.isclass(obj) or not callable(obj)


_RULE_LAYERS = tuple(
    f"jaxopt_lite.{layer}."
    for layer in ("_transforms", "_optimizers", "_schedules", "_combinators")
)
_READERS = {"current_learning_rate", "ema_of", "slow_params_of", "pruning_masks_of"}


def _has_update_rule(name: str) -> bool:
    obj = getattr(jaxopt_lite, name)
    return (
        not _is_exempt(obj)
        and obj.__module__.startswith(_RULE_LAYERS)
        and name not in _READERS
    )


PUBLIC_FUNCTIONS = [
    name for name in PUBLIC if hasattr(jaxopt_lite, name) and _has_update_rule(name)
]


def test_all_has_no_duplicates():
    duplicates = sorted({name for name in PUBLIC if PUBLIC.count(name) > 1})
    assert not duplicates, f"names listed twice in jaxopt_lite.__all__: {duplicates}"


def test_all_names_exist():
    absent = [name for name in PUBLIC if not hasattr(jaxopt_lite, name)]
    assert not absent, f"jaxopt_lite.__all__ lists names that do not exist: {absent}"


@pytest.mark.parametrize("name", PUBLIC_FUNCTIONS)
def test_public_function_docstring_has_math_block(name: str):
    obj = getattr(jaxopt_lite, name)
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
