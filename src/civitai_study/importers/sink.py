"""Where parsed rows go: de-duplicated by id, batched into parts, failures into quarantine.

Shared by the importers and the collector so both count duplicates and quarantined records the
same way and write the same snapshot layout.

Duplicate ids are found in two steps so that memory stays bounded at 40M images: within the
pending batch by an in-memory set (cleared at every flush), and against the parts already on
disk by a DuckDB anti-join of the batch's ids with those parts' ``id`` column when the batch is
flushed. Rows dropped at flush are counted in ``duplicates`` (and ``late_duplicates``, so a caller
that counted them as accepted can correct its count).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow as pa

from .. import duck
from ..schema import TABLES
from .parse import Hasher, ModelRows, RecordError
from .parts import QUARANTINE_DIR, Quarantine, write_part

#: Tables whose rows are unique by ``id``.
KEYED = ("images", "models", "model_versions")


class Sink:
    """Accumulates rows for the next part; drops ids already pending or already written."""

    def __init__(self, root: Path, hasher: Hasher):
        self.root = root
        self.hasher = hasher
        self.quarantine = Quarantine(hasher)
        self.rows: dict[str, list[dict[str, Any]]] = {t: [] for t in TABLES}
        self.seen: dict[str, set[int]] = {t: set() for t in KEYED}
        self.duplicates: Counter[str] = Counter()
        #: accepted rows found, at flush, to be already on disk (a subset of ``duplicates``)
        self.late_duplicates: Counter[str] = Counter()
        self.quarantined: set[tuple[str, int]] = set()
        self.accepted: Counter[str] = Counter()
        #: next part number for callers that let the sink number its parts (the importers)
        self.next_part = 0

    def load_seen(self) -> None:
        """Prepare for resuming a crawl: ids on disk are checked at flush (never loaded into
        memory); only the (small) set of quarantined records is re-read."""
        for path in sorted((self.root / QUARANTINE_DIR).glob("part-*.jsonl")):
            for line in path.read_text(encoding="utf-8").splitlines():
                entry = json.loads(line)
                key = entry["record"].get("id") if isinstance(entry["record"], dict) else None
                if isinstance(key, int) and not isinstance(key, bool):
                    self.quarantined.add((entry["kind"], key))

    def _new(self, table: str, key: int) -> bool:
        if key in self.seen[table]:
            self.duplicates[table] += 1
            return False
        self.seen[table].add(key)
        return True

    def add_image(self, row: dict[str, Any]) -> bool:
        if not self._new("images", row["id"]):
            return False
        self.rows["images"].append(row)
        self.accepted["images"] += 1
        return True

    def add_model(self, parsed: ModelRows, kind: str = "model_preview") -> bool:
        """Add a model with its versions, tags and preview images (duplicates dropped, counted)."""
        if not self._new("models", parsed.model["id"]):
            return False
        for error, raw in parsed.bad_images:
            self.quarantine.add(kind, error, raw)
        self.rows["models"].append(parsed.model)
        self.accepted["models"] += 1
        for version in parsed.versions:
            if self._new("model_versions", version["id"]):
                self.rows["model_versions"].append(version)
        self.rows["model_tags"].extend(parsed.tags)
        for image in parsed.images:
            self.add_image(image)
        return True

    def reject(self, kind: str, error: RecordError | str, raw: Any) -> None:
        """Quarantine ``raw``, once per (kind, id) when it has an id: a re-served bad record
        is a duplicate, not a second failure."""
        key = raw.get("id") if isinstance(raw, dict) else None
        if isinstance(key, int) and not isinstance(key, bool):
            if (kind, key) in self.quarantined:
                self.duplicates["quarantined"] += 1
                return
            self.quarantined.add((kind, key))
        self.quarantine.add(kind, error, raw)

    @property
    def pending(self) -> int:
        return sum(len(r) for r in self.rows.values()) + len(self.quarantine.pending)

    def _written_ids(self, table: str, ids: list[int]) -> set[int]:
        """Which of ``ids`` are already in ``table``'s parts on disk (a DuckDB semi-join that
        reads only the parts' ``id`` column)."""
        parts = sorted((self.root / table).glob("part-*.parquet"))
        if not parts or not ids:
            return set()
        listing = "[" + ", ".join("'" + str(p).replace("'", "''") + "'" for p in parts) + "]"
        con = duck.connect()
        try:
            con.register("pending_ids", pa.table({"id": pa.array(ids, pa.int64())}))
            found = con.execute(f"""SELECT DISTINCT d.id FROM read_parquet({listing}) d
                                    SEMI JOIN pending_ids p ON d.id = p.id""").fetchall()
        finally:
            con.close()
        return {int(r[0]) for r in found}

    def _drop_written(self) -> None:
        """Remove pending rows whose id is already on disk (with the tags of such models)."""
        for table in KEYED:
            rows = self.rows[table]
            written = self._written_ids(table, [r["id"] for r in rows])
            if not written:
                continue
            self.rows[table] = [r for r in rows if r["id"] not in written]
            dropped = len(rows) - len(self.rows[table])
            self.duplicates[table] += dropped
            if table in ("images", "models"):
                self.accepted[table] -= dropped
                self.late_duplicates[table] += dropped
            if table == "models":
                self.rows["model_tags"] = [t for t in self.rows["model_tags"]
                                           if t["model_id"] not in written]

    def flush(self, index: int) -> bool:
        """Write pending rows as durable part ``index`` of each table; True if anything written.

        Rows whose id an earlier part already holds are dropped and counted first."""
        self._drop_written()
        wrote = False
        for table, rows in self.rows.items():
            if rows:
                write_part(self.root, table, index, rows)
                wrote = True
        wrote = self.quarantine.flush(self.root, index) is not None or wrote
        self.rows = {t: [] for t in TABLES}
        self.seen = {t: set() for t in KEYED}
        return wrote

    def flush_when_full(self, part_rows: int) -> None:
        """Write a part once ``part_rows`` rows are pending, numbering parts itself."""
        if self.pending >= part_rows:
            self.flush(self.next_part)
            self.next_part += 1
