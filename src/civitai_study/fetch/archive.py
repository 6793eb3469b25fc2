"""The 2023 crawl's GitHub archive (one JSON file per model) → one JSON line per model.

``dfanr/CivitaiModelList`` stores each ``/api/v1/models`` item as its own file under
``models/<Type>/{normal,nsfw}/json/`` (with Markdown renderings and screenshots beside them, which
are skipped). The lines written here are what the ``models-jsonl`` importer reads; the same pass
computes the records' digest so the registry can verify them.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import tarfile
from collections import Counter
from pathlib import Path
from typing import Any

from .digest import RecordDigest, canonical

MODEL_FILE = re.compile(r"^[^/]+/models/[^/]+/(?:normal|nsfw)/json/[^/]+\.json$")


def _records(raw: bytes) -> list[Any] | None:
    """The model item(s) of one file: a single item, a page ``{"items": [...]}`` or a list."""
    try:
        value = json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    if isinstance(value, dict) and isinstance(value.get("items"), list) and "id" not in value:
        return value["items"]
    return value if isinstance(value, list) else [value]


def archive_to_jsonl(archive: Path, dest: Path) -> tuple[RecordDigest, dict[str, int]]:
    """Write every model file of ``archive`` (a tarball) as JSON lines to ``dest`` (gzip).

    Exact duplicate records (the same model saved twice) are written once and counted; a file
    that is not JSON is written as one flattened line, so the importer quarantines and counts it
    instead of it vanishing. Returns the digest of the records written and the counts.
    """
    digest, seen, counts = RecordDigest(), set(), Counter()
    tmp = dest.with_name(dest.name + ".tmp")
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "r:*") as tar, open(tmp, "wb") as raw_out, \
            gzip.GzipFile(fileobj=raw_out, mode="wb", mtime=0) as zipped, \
            io.TextIOWrapper(zipped, encoding="utf-8", newline="\n") as out:
        for member in tar:
            if not member.isfile() or not MODEL_FILE.match(member.name):
                continue
            counts["model_files"] += 1
            handle = tar.extractfile(member)
            raw = handle.read() if handle is not None else b""
            records = _records(raw)
            if records is None:
                counts["unreadable_files"] += 1
                out.write(" ".join(raw.decode("utf-8", "replace").split()) + "\n")
                continue
            for record in records:
                key = hashlib.sha256(canonical(record)).digest()
                if key in seen:
                    counts["duplicate_records"] += 1
                    continue
                seen.add(key)
                digest.add(record)
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
    if not counts["model_files"]:
        tmp.unlink()
        raise ValueError(f"{archive.name} holds no models/<Type>/{{normal,nsfw}}/json/*.json "
                         "files: it is not an archive of dfanr/CivitaiModelList")
    os.replace(tmp, dest)
    return digest, dict(sorted(counts.items()))
