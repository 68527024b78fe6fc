"""How many steps a compiled chunk of `fit` or a round of `sweep` runs.

Without a fixed ``chunk_size`` the drivers pace their chunks by measured
time: the first holds one history row and is timed alone, and every later one
is sized from the rate of the last to take about `TARGET_SECONDS`, so the host
regains control (progress, callbacks, checkpoints, Ctrl-C) about once a second
whatever the model. A chunk's row buffers are sized once, by `capacity`.
"""

from __future__ import annotations

import math

TARGET_SECONDS = 1.0  # a paced chunk aims at about this much device time
# Without chunk_size a chunk grows to about a second of work, up to this many
# steps (the size of its row buffers).
MAX_CHUNK_STEPS = 2**16


def capacity(chunk_size: int | None, total_steps: int, log_every: int) -> int:
    """The most steps one chunk runs: ``chunk_size``, or a power of two of rows
    (so that runs of similar lengths share a compilation)."""
    if chunk_size is not None:
        return min(chunk_size, total_steps)
    rows = 1 << (math.ceil(total_steps / log_every) - 1).bit_length()
    return min(rows, max(1, MAX_CHUNK_STEPS // log_every)) * log_every


def paced(steps: int, elapsed: float, unit: int, cap: int) -> int:
    """The steps of the next chunk, when one of ``steps`` took ``elapsed``
    seconds: about `TARGET_SECONDS` of work, in whole rows of ``unit`` steps,
    at least one row and at most ``cap``."""
    fits = steps * TARGET_SECONDS / max(elapsed, 1e-6)
    return min(cap, max(1, int(fits) // unit) * unit)
