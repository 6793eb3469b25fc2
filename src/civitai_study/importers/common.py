"""Steps every importer shares: a clean output folder, opening (gzipped) input, the manifest."""

from __future__ import annotations

import gzip
import io
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from .. import __version__
from ..schema import TABLES
from ..snapshot import MANIFEST, Snapshot, load_snapshot, sha256_file, write_manifest
from .parse import Hasher
from .parts import QUARANTINE_DIR, ensure_all_tables, quarantine_summary
from .sink import Sink

TOOL = {"name": "civitai-study", "version": __version__}


def prepare_out(out: Path) -> None:
    """Empty the snapshot layout in ``out`` (tables, quarantine, manifest), nothing else.

    An import always writes a complete snapshot; stale parts from an earlier run would otherwise be
    mixed into it (and a single ``<table>.parquet`` would shadow the new parts).
    """
    out.mkdir(parents=True, exist_ok=True)
    for table in TABLES:
        single = out / f"{table}.parquet"
        if single.is_file():
            single.unlink()
        folder = out / table
        if folder.is_dir():
            for part in folder.glob("part-*"):
                part.unlink()
    quarantine = out / QUARANTINE_DIR
    if quarantine.is_dir():
        for part in quarantine.glob("*.jsonl"):
            part.unlink()
    (out / MANIFEST).unlink(missing_ok=True)


def open_text(path: Path) -> IO[str]:
    """Open a text file, transparently gunzipping it (detected by magic bytes, not suffix)."""
    with open(path, "rb") as probe:
        magic = probe.read(2)
    if magic == b"\x1f\x8b":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8")
    return open(path, encoding="utf-8")


def input_description(path: Path) -> dict[str, Any]:
    """Name, size and sha256 of an input file, so the manifest says exactly what was imported."""
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file())
        return {"name": path.name, "files": [input_description(p) for p in files]}
    return {"name": path.name, "bytes": path.stat().st_size, "sha256": sha256_file(path)}


def start_import(out: Path, hasher: Hasher | None) -> Sink:
    """Empty ``out``'s snapshot layout and return a sink hashing names with ``hasher`` (default:
    the project's key from the environment or the local key file)."""
    from ..pseudonymise import Pseudonymiser, load_or_create_key

    prepare_out(out)
    return Sink(out, hasher or Pseudonymiser(load_or_create_key()))


def finish(out: Path, sink: Sink, next_index: int, source: dict[str, Any],
           snapshot_date: str | None = None, extra: dict[str, Any] | None = None) -> Snapshot:
    """Flush the sink, give every table a part, write the manifest and validate the snapshot.

    ``snapshot_date`` is when the data was crawled (when known); the import date is kept apart.
    """
    sink.flush(next_index)
    ensure_all_tables(out, next_index + 1)
    manifest = {
        "synthetic": False,
        "source": source,
        "snapshot_date": snapshot_date or "unknown",
        "imported_on": datetime.now(UTC).date().isoformat(),
        "tool": TOOL,
        "duplicates_dropped": dict(sorted(sink.duplicates.items())),
        "quarantine": quarantine_summary(out),
        **(extra or {}),
    }
    write_manifest(out, manifest)
    return load_snapshot(out)
