"""How a run reports its progress, between compiled chunks only.

On a terminal, a tqdm bar over steps with the latest loss and evaluation
metrics; elsewhere (a notebook without widgets, redirected logs, a batch
job), a short line about every `LOG_SECONDS` through the ``"jaxopt_lite"``
logger, so a long run is never silent. An interrupted run says so loudly.
"""

from __future__ import annotations

import importlib.util
import logging
import sys
import time
from typing import Any

LOG_SECONDS = 10.0  # without a bar: a progress line at most this often
logger = logging.getLogger("jaxopt_lite")


def emit(text: str, level: int = logging.INFO) -> None:
    """Log ``text``; when logging is not configured at all (no handler on our
    logger or above it), write it to stderr, so it is seen by default."""
    if logger.hasHandlers():
        logger.log(level, text)
    else:
        print(f"[jaxopt_lite] {text}", file=sys.stderr, flush=True)


def _show(postfix: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.4g}" for k, v in postfix.items())


class Progress:
    """A tqdm bar, log lines, or nothing (``mode`` from `wanted`)."""

    @staticmethod
    def wanted(progress: bool | None) -> str:
        """``"bar"``, ``"log"`` or ``"off"`` for ``progress``: ``None`` is a bar
        when stderr is a terminal and tqdm is installed, else log lines;
        ``True`` without tqdm is an error."""
        if progress is False:
            return "off"
        available = importlib.util.find_spec("tqdm") is not None
        if progress is None:
            return "bar" if available and sys.stderr.isatty() else "log"
        if not available:
            raise ImportError(
                "progress=True needs tqdm: pip install 'jaxopt-lite[progress]'."
            )
        return "bar"

    def __init__(self, mode: str, total: int, initial: int, desc: str):
        self.mode, self.total, self.step, self.desc = mode, total, initial, desc
        self._bar: Any = None
        self._start = self._logged = time.perf_counter()
        self._first = self._initial = initial
        self._timed = False
        self._postfix: dict[str, float] = {}
        if mode == "bar":
            from tqdm.auto import tqdm

            self._bar = tqdm(total=total, initial=initial, desc=desc, unit="step")

    def update(self, steps: int, postfix: dict[str, float]) -> None:
        """``steps`` more steps were done; ``postfix``: the latest metrics."""
        if not self._timed:  # the rate leaves out the first (compiled) chunk
            self._timed, self._start = True, time.perf_counter()
            self._first = self.step + steps
        self.step += steps
        self._postfix = postfix or self._postfix
        if self._bar is not None:
            self._bar.set_postfix({k: f"{v:.4g}" for k, v in postfix.items()})
            self._bar.update(steps)
        elif self.mode == "log" and time.perf_counter() - self._logged >= LOG_SECONDS:
            self._line()

    def _line(self) -> None:
        now = time.perf_counter()
        self._logged = now
        done = self.step - self._first
        metrics = _show(self._postfix)
        emit(
            f"{self.desc}: step {self.step}/{self.total}"
            + (f", {metrics}" if metrics else "")
            + (f" ({done / max(now - self._start, 1e-9):.4g} steps/s)" if done else "")
        )

    def close(self, interrupted: bool = False, resume: str = "", why: str = "") -> None:
        """End the bar (or write the last line); say loudly when the run was
        interrupted (by ``why``, Ctrl-C by default), and how to resume it."""
        if self._bar is not None:
            self._bar.close()
        elif self.mode == "log" and self.step > self._initial:
            self._line()
        if interrupted:
            emit(
                f"{self.desc} was interrupted ({why or 'Ctrl-C'}) at step "
                f"{self.step} of {self.total}; the result holds the work finished "
                "until then" + (f"; {resume}" if resume else "."),
                logging.WARNING,
            )
