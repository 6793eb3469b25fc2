"""Durable Parquet parts and quarantine files: the on-disk half of crash-safe ingest.

Each batch becomes ``DIR/<table>/part-NNNNNN.parquet`` (and ``DIR/quarantine/part-NNNNNN.jsonl``),
written to a temporary name, fsynced and renamed, so a part either exists completely or not at
all. The collector advances its checkpoint only after a batch's parts are durable, and on resume
deletes parts numbered at or past the checkpoint (written but never acknowledged).
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from ..schema import TABLES, arrow_schema, conform
from ..snapshot import IMAGE_ROW_GROUP
from .parse import Hasher, RecordError, scrub_usernames

QUARANTINE_DIR = "quarantine"
PART_RE = re.compile(r"^part-(\d{6})\.(parquet|jsonl)$")


def fsync_dir(path: Path) -> None:
    """Make a rename inside ``path`` durable (no-op where directories cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def durable_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically and durably (tmp file, fsync, rename, fsync dir)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def rows_to_table(table: str, rows: list[dict[str, Any]]) -> pa.Table:
    """Row dicts → an Arrow table in the snapshot schema."""
    return conform(table, pa.Table.from_pylist(rows, schema=arrow_schema(table)))


def write_part(root: Path, table: str, index: int, rows: list[dict[str, Any]]) -> Path:
    """Write one durable Parquet part of ``table``."""
    folder = root / table
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"part-{index:06d}.parquet"
    tmp = path.with_name(path.name + ".tmp")
    # row groups of ~100k rows: the unit DuckDB reads in parallel and skips by statistics
    pq.write_table(rows_to_table(table, rows), tmp, compression="zstd",
                   row_group_size=IMAGE_ROW_GROUP)
    with open(tmp, "rb+") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    fsync_dir(folder)
    return path


def ensure_all_tables(root: Path, index: int) -> None:
    """Give every table at least one (possibly empty) part so the snapshot loader accepts it."""
    for table in TABLES:
        folder = root / table
        if not (folder.is_dir() and any(folder.glob("part-*.parquet"))):
            write_part(root, table, index, [])


def remove_parts_from(root: Path, first: int) -> list[Path]:
    """Delete parts (and temp files) numbered ``>= first``: written but never checkpointed."""
    removed = []
    for folder in [root / t for t in TABLES] + [root / QUARANTINE_DIR]:
        if not folder.is_dir():
            continue
        for path in folder.iterdir():
            match = PART_RE.match(path.name)
            if path.name.endswith(".tmp") or (match and int(match.group(1)) >= first):
                path.unlink()
                removed.append(path)
    return removed


class Quarantine:
    """Records that failed to parse, kept raw (usernames hashed) with the reason."""

    def __init__(self, hasher: Hasher):
        self._hasher = hasher
        self.pending: list[dict[str, Any]] = []

    def add(self, kind: str, error: RecordError | str, raw: Any) -> None:
        reason = error.reason if isinstance(error, RecordError) else str(error)
        detail = error.detail if isinstance(error, RecordError) else ""
        self.pending.append({"kind": kind, "reason": reason, "detail": detail,
                             "record": scrub_usernames(raw, self._hasher)})

    def flush(self, root: Path, index: int) -> Path | None:
        """Write the pending records as ``quarantine/part-NNNNNN.jsonl`` (durable)."""
        if not self.pending:
            return None
        text = "".join(json.dumps(r, ensure_ascii=False, sort_keys=True, default=str) + "\n"
                       for r in self.pending)
        path = root / QUARANTINE_DIR / f"part-{index:06d}.jsonl"
        durable_write_bytes(path, text.encode("utf-8"))
        self.pending = []
        return path


def quarantine_summary(root: Path) -> dict[str, Any]:
    """Counts of quarantined records by kind and reason, read back from the files on disk."""
    by_reason: Counter[str] = Counter()
    by_kind: Counter[str] = Counter()
    files = []
    folder = root / QUARANTINE_DIR
    for path in sorted(folder.glob("*.jsonl")) if folder.is_dir() else []:
        files.append(path.relative_to(root).as_posix())
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                if line.strip():
                    record = json.loads(line)
                    by_reason[record.get("reason", "unknown")] += 1
                    by_kind[record.get("kind", "unknown")] += 1
    return {"total": sum(by_reason.values()), "by_reason": dict(sorted(by_reason.items())),
            "by_kind": dict(sorted(by_kind.items())), "files": files}
