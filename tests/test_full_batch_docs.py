"""The Python code of the full-batch documentation runs (docs/full-batch.md
and the migration sections for jaxopt, scipy and optimistix) and its results
are what the text says."""

from __future__ import annotations

import pathlib
import re

import jax.numpy as jnp

DOCS = pathlib.Path(__file__).resolve().parents[1] / "docs"
_BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)
_MIGRATION_SECTIONS = ("jaxopt.LBFGS", "scipy.optimize.minimize", "optimistix")


def _run(blocks: list[str], name: str) -> dict:
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, name, "exec"), namespace)
    return namespace


def test_full_batch_page_runs(capsys):
    ns = _run(_BLOCK.findall((DOCS / "full-batch.md").read_text()), "full-batch.md")
    assert ns["result"].status == "converged"
    assert ns["batch"].steps.shape == (8,)
    assert ns["solve"](ns["targets"]).shape == (3, 3)
    assert ns["box"].params.max() == jnp.float32(0.7)  # "the bound is active"
    assert "converged" in capsys.readouterr().out


def test_migration_sections_run():
    text = (DOCS / "migration.md").read_text()
    sections = re.split(r"^#{2,3} ", text, flags=re.MULTILINE)
    blocks = [
        block
        for section in sections
        if any(key in section.splitlines()[0] for key in _MIGRATION_SECTIONS)
        for block in _BLOCK.findall(section)
    ]
    assert len(blocks) == 3
    ns = _run(blocks, "migration.md")
    assert ns["result"].status == ns["result_gd"].status == "converged"
    assert ns["sol"].status == "converged"
    assert abs(ns["ref"].x - ns["ours"].params).max() < 1e-4
