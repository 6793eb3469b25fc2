"""The crawl's checkpoint: which cursor comes next and which parts are already durable.

Written atomically (temp file, fsync, rename) and only after the parts it counts are durable, so
after a crash or ``kill -9`` the checkpoint never points past data that is not on disk.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..importers.parts import durable_write_bytes

CHECKPOINT = "checkpoint.json"
STATE_DIR = ".collect"


@dataclass
class CrawlState:
    """Everything needed to resume; counters cover the parts written so far."""

    endpoint: str
    request: dict[str, Any]
    window: dict[str, str | None]
    started_at: str
    cursor: str | None = None
    next_part: int = 0
    pages: int = 0
    empty_pages: int = 0
    requests: int = 0
    retries: int = 0
    accepted: int = 0
    outside_window: int = 0
    duplicates: dict[str, int] = field(default_factory=dict)
    clamp_observed: int = 0
    clamp_above_pg13: int = 0
    runs: int = 0
    done: bool = False
    stopped: str | None = None

    @staticmethod
    def path(out: Path) -> Path:
        return out / STATE_DIR / CHECKPOINT

    @classmethod
    def load(cls, out: Path) -> CrawlState | None:
        path = cls.path(out)
        if not path.is_file():
            return None
        return cls(**json.loads(path.read_text(encoding="utf-8")))

    def save(self, out: Path) -> None:
        text = json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"
        durable_write_bytes(self.path(out), text.encode("utf-8"))

    def same_crawl(self, endpoint: str, request: dict[str, Any],
                   window: dict[str, str | None]) -> bool:
        return (self.endpoint, self.request, self.window) == (endpoint, request, window)
