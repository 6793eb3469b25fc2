"""Import files of ``/api/v1/models`` items (one JSON object a line, gzipped or not).

This is the format of existing crawls such as the real 2023 crawl in
``../shared/civitai-samples/models/``. A ``{"items": [...]}`` JSON page is accepted too. Models
give rows in ``models``, ``model_versions`` and ``model_tags``; their preview images go to
``images`` with ``source = "model_preview"`` and the version's ``createdAt`` as upload time.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from .. import limits
from ..snapshot import Snapshot
from .common import finish, input_description, open_text, start_import
from .parse import Hasher, RecordError, parse_model

log = logging.getLogger(__name__)
#: Pending rows (all tables) that trigger writing a part; bounds memory on big files.
PART_ROWS = 250_000


def iter_records(path: Path) -> Iterator[tuple[int, Any, str | None]]:
    """``(line_number, parsed_or_raw_text, json_error)`` for every record of the file.

    JSON lines are the norm; a page ``{"items": [...]}`` (on one line or pretty-printed) is
    expanded into its items.
    """
    first = True
    with open_text(path) as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as err:
                if first and line.strip() in ("{", "["):
                    yield from _document(path)
                    return
                yield number, line.rstrip("\n"), f"line {number}: {err.msg}"
                continue
            finally:
                first = False
            if isinstance(value, dict) and isinstance(value.get("items"), list) \
                    and "id" not in value:
                for item in value["items"]:
                    yield number, item, None
            else:
                yield number, value, None


def _document(path: Path) -> Iterator[tuple[int, Any, str | None]]:
    """Items of a file holding one pretty-printed JSON document (a page or a list)."""
    with open_text(path) as handle:
        try:
            document = json.load(handle)
        except json.JSONDecodeError as err:
            yield err.lineno, None, f"the file is not JSON lines nor one JSON document: {err.msg}"
            return
    items = document.get("items", []) if isinstance(document, dict) else document
    for number, item in enumerate(items if isinstance(items, list) else [], start=1):
        yield number, item, None


def import_models_jsonl(path: Path, out: Path, hasher: Hasher | None = None,
                        part_rows: int = PART_ROWS) -> Snapshot:
    """Convert the models file at ``path`` into a snapshot at ``out``; returns it validated."""
    path, out = Path(path), Path(out)
    if not path.is_file():
        raise FileNotFoundError(f"no models file at {path}; pass a .jsonl or .jsonl.gz of "
                                "/api/v1/models items")
    started = time.monotonic()
    sink = start_import(out, hasher)
    hasher = sink.hasher
    records = 0
    latest: datetime | None = None
    for number, record, json_error in iter_records(path):
        records += 1
        if json_error is not None:
            sink.reject("model", RecordError("bad_json", json_error), record)
            continue
        try:
            parsed = parse_model(record, hasher, source="models_jsonl")
        except RecordError as err:
            sink.reject("model", RecordError(err.reason, f"record {number}: {err.detail}"),
                        record)
            continue
        sink.add_model(parsed)
        created = parsed.model["created_at"]
        if created is not None and (latest is None or created > latest):
            latest = created
        sink.flush_when_full(part_rows)
    source = {
        "kind": "import",
        "importer": "models-jsonl",
        "name": f"/api/v1/models items from {path.name}",
        "dataset": path.name.split(".")[0],  # exact dataset id, matched by data/claims.yaml
        "input": input_description(path),
        "records_read": records,
        "note": "snapshot_date is the latest model-version createdAt in the file (the crawl date "
                "is not in the data)",
    }
    snapshot = finish(out, sink, sink.next_part, source,
                      snapshot_date=latest.date().isoformat() if latest else None,
                      extra={"not_measurable": limits.for_import(latest, "models"),
                             "not_measurable_note": limits.import_note(latest)})
    log.info("imported %s records from %s in %.1f s: %s", f"{records:,}", path.name,
             time.monotonic() - started, snapshot.manifest["counts"])
    return snapshot
