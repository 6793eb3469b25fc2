"""Progress: a tqdm bar (items/s, elapsed) on a terminal, quiet periodic log lines otherwise."""

from __future__ import annotations

import logging
import sys
import time

from tqdm import tqdm

log = logging.getLogger(__name__)


class Progress:
    """Counts collected items; shows a bar on a TTY, else logs every ``every`` seconds."""

    def __init__(self, label: str, initial: int = 0, every: float = 60.0,
                 tty: bool | None = None):
        self.label = label
        self.count = initial
        self._start = time.monotonic()
        self._base = initial
        self._every = every
        self._last = self._start
        use_bar = sys.stderr.isatty() if tty is None else tty
        self._bar = tqdm(total=None, initial=initial, unit=" items", desc=label,
                         dynamic_ncols=True) if use_bar else None

    def update(self, items: int, pages: int) -> None:
        self.count += items
        if self._bar is not None:
            self._bar.update(items)
            self._bar.set_postfix(pages=pages, refresh=False)
            return
        now = time.monotonic()
        if now - self._last >= self._every:
            self._last = now
            log.info("%s: %s items, %s pages, %.1f items/s, %.0f s elapsed", self.label,
                     f"{self.count:,}", f"{pages:,}", self.rate(), now - self._start)

    def rate(self) -> float:
        elapsed = time.monotonic() - self._start
        return (self.count - self._base) / elapsed if elapsed > 0 else 0.0

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
