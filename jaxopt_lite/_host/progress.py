"""A progress bar for the drivers, updated between compiled chunks only."""

from __future__ import annotations

import importlib.util
import sys
from typing import Any


class Progress:
    """A tqdm bar over steps, or nothing when disabled."""

    @staticmethod
    def wanted(progress: bool | None) -> bool:
        """Resolve ``progress=None`` (a bar when stderr is a terminal and tqdm
        is installed); ``True`` without tqdm is an error."""
        if progress is False:
            return False
        available = importlib.util.find_spec("tqdm") is not None
        if progress is None:
            return available and sys.stderr.isatty()
        if not available:
            raise ImportError(
                "progress=True needs tqdm: pip install 'jaxopt-lite[progress]'."
            )
        return progress

    def __init__(self, enabled: bool, total: int, initial: int, desc: str):
        self._bar: Any = None
        if enabled:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=total, initial=initial, desc=desc, unit="step")

    def update(self, steps: int, postfix: dict[str, float]) -> None:
        if self._bar is not None:
            postfix_text = {k: f"{v:.4g}" for k, v in postfix.items()}
            self._bar.set_postfix(postfix_text, refresh=False)
            self._bar.update(steps)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
