"""Runs the Python code blocks of the documentation, page by page, in order.

The pages are README.md and every ``docs/**/*.md`` (found by glob, so a new
page is covered without listing it here). The blocks of one page run top to
bottom in one namespace, as a reader would paste them; each page starts from
an empty namespace. The rule for authors (CONTRIBUTING.md, "Docs"):

* a fenced block whose language is ``python`` (or ``py``) runs;
* one whose fence is directly preceded by the line ``<!-- docs: not run -->``
  (blank lines allowed in between) is shown but not run;
* any other fence (```text, ```bash, a bare ```) is never run.

Run as a script (``python tests/docs_code.py [PAGE ...]``) it executes the
pages with 8 simulated CPU devices (for docs/multi-device.md), warnings as
errors, XLA's slower optimization passes off and the working directory in a
temporary folder, and prints one JSON
object: ``{page: {"ok": bool, "seconds": float, "error": str}}`` (plus
``facts`` and ``output`` for the pages in `FACTS`). The
device count must be set before JAX starts, hence a separate process
(tests/test_docs.py starts it).
"""

from __future__ import annotations

import pathlib
import re
from typing import NamedTuple

ROOT = pathlib.Path(__file__).resolve().parents[1]
NOT_RUN = "<!-- docs: not run -->"
RUN_LANGUAGES = ("python", "py")
_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")


class Block(NamedTuple):
    """One fenced code block: where it starts and whether it runs."""

    line: int  # 1-based line of the opening fence
    language: str
    runs: bool
    code: str


def pages() -> list[pathlib.Path]:
    """README.md, then every Markdown page under docs/, sorted."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def blocks(text: str) -> list[Block]:
    """The fenced code blocks of a Markdown page, in order."""
    lines = text.splitlines()
    found: list[Block] = []
    i = 0
    while i < len(lines):
        match = _FENCE.match(lines[i])
        if match is None:
            i += 1
            continue
        indent, fence = match["indent"], match["fence"]
        info = match["info"].strip()
        language = info.split()[0].lstrip("{.").rstrip("}") if info else ""
        end = i + 1
        while end < len(lines):
            close = _FENCE.match(lines[end])
            if (
                close is not None
                and close["fence"][0] == fence[0]
                and len(close["fence"]) >= len(fence)
                and not close["info"].strip()
            ):
                break
            end += 1
        body = [line.removeprefix(indent) for line in lines[i + 1 : end]]
        previous = next((s.strip() for s in reversed(lines[:i]) if s.strip()), "")
        runs = language in RUN_LANGUAGES and previous != NOT_RUN
        found.append(Block(i + 1, language, runs, "\n".join(body) + "\n"))
        i = end + 1
    return found


# Values a page's code computes, read from its namespace once it has run and
# reported with its outcome, so that tests/test_docs.py checks them against
# what the page's text says (expression -> a JSON value).
FACTS = {
    "docs/full-batch.md": (
        "str(result.status)",
        "list(batch.steps.shape)",
        "list(solve(targets).shape)",
        "float(box.params.max())",
    ),
    "docs/migration.md": (
        "str(result.status)",  # the jaxopt.LBFGS section's
        "str(result_gd.status)",
        "str(sol.status)",
        "float(abs(ref.x - ours.params).max())",
    ),
}


def run_page(path: pathlib.Path) -> dict:
    """Execute the runnable blocks of one page in one fresh namespace, and
    return it.

    Each block is compiled with the page's path and padded so that a
    traceback points at the page's own line numbers.
    """
    namespace: dict = {"__name__": "__docs__"}
    for block in blocks(path.read_text(encoding="utf-8")):
        if block.runs:
            source = "\n" * block.line + block.code
            exec(compile(source, str(path), "exec"), namespace)
    return namespace


def _main(argv: list[str]) -> int:
    import os

    os.environ["XLA_FLAGS"] = (
        os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
    )
    os.environ["JAX_PLATFORMS"] = "cpu"
    os.environ.setdefault("MPLBACKEND", "Agg")

    import contextlib
    import io
    import json
    import tempfile
    import time
    import traceback
    import warnings

    import jax

    # The pages are small programs whose cost is XLA compilation: compiling
    # with fewer optimization passes halves the time of this run and changes
    # nothing the pages show.
    jax.config.update("jax_disable_most_optimizations", True)
    selected = [ROOT / a for a in argv] if argv else pages()
    report = {}
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)
        for path in selected:
            name = path.relative_to(ROOT).as_posix()
            start = time.perf_counter()
            error = ""
            facts = {}
            output = io.StringIO()
            with warnings.catch_warnings(), contextlib.redirect_stdout(output):
                warnings.simplefilter("error")
                try:
                    namespace = run_page(path)
                    for expression in FACTS.get(name, ()):
                        facts[expression] = eval(expression, namespace)
                except Exception:
                    error = traceback.format_exc(limit=-3)
            # A page may switch on float64 (as the float64 FAQ does): the next
            # page starts from JAX's defaults again.
            jax.config.update("jax_enable_x64", False)
            seconds = round(time.perf_counter() - start, 2)
            report[name] = {"ok": not error, "seconds": seconds, "error": error}
            if name in FACTS:  # with what the page printed
                report[name].update(facts=facts, output=output.getvalue())
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(_main(sys.argv[1:]))
