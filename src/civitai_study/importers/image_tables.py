"""Import the authors' published image tables: Civ-40K / Civ-40M and Civiverse-6M.

Both are flat tables of ``/images`` records (Parquet or CSV, one file or a folder of them) with
columns as described in ``../shared/docs/study.md``: camelCase API names such as ``createdAt``,
``positivePrompt``, ``browsingLevel``, and a username that the authors already hashed. We re-hash
that value with our own key, so every snapshot uses one pseudonym scheme and the authors' hashes
cannot be linked. Files are streamed in batches, so the 40-million-row tables never sit in memory.

With ``hf:OWNER/NAME`` as the path the dataset is fetched from Hugging Face (needs the
``huggingface_hub`` package, a network, the dataset's terms accepted and ``HF_TOKEN`` set).
"""

from __future__ import annotations

import ast
import json
import logging
import os
import re
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from .. import limits
from ..snapshot import Snapshot
from .common import finish, input_description, start_import
from .parse import (
    Hasher,
    RecordError,
    image_level,
    is_missing,
    nsfw_flag,
    to_int,
    to_str,
    to_timestamp,
)

log = logging.getLogger(__name__)
BATCH_ROWS = 50_000
PART_ROWS = 500_000
DATASETS = {
    "civ40k": "Civ-40K / Civ-40M (pm-paper-datasets)",
    "civiverse": "Civiverse-6M (latentcanon)",
}
STAT_KEYS = {"like_count": "likeCount", "heart_count": "heartCount", "laugh_count": "laughCount",
             "cry_count": "cryCount", "comment_count": "commentCount"}
_ID_IN_URL = re.compile(r"/(\d+)\.(?:jpe?g|png|webp|gif|mp4|webm)(?:\?|$)", re.IGNORECASE)


def _files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    found = sorted(p for p in path.rglob("*") if p.is_file() and (
        p.suffix.lower() in (".parquet", ".csv") or p.name.lower().endswith(".csv.gz")))
    if not found:
        raise FileNotFoundError(f"no .parquet or .csv files under {path}")
    return found


def iter_rows(path: Path, batch_rows: int = BATCH_ROWS) -> Iterator[dict[str, Any]]:
    """Rows of every Parquet/CSV file under ``path`` as dicts, batch by batch."""
    for file in _files(path):
        name = file.name.lower()
        if name.endswith(".parquet"):
            batches = pq.ParquetFile(file).iter_batches(batch_size=batch_rows)
        elif name.endswith((".csv", ".csv.gz")):
            batches = pacsv.open_csv(
                file, parse_options=pacsv.ParseOptions(newlines_in_values=True),
                convert_options=pacsv.ConvertOptions(strings_can_be_null=True),
                read_options=pacsv.ReadOptions(block_size=1 << 24))
        else:
            raise ValueError(f"{file}: not a .parquet or .csv file")
        for batch in batches:
            yield from pa.Table.from_batches([batch]).to_pylist()


def _get(row: dict[str, Any], *names: str) -> Any:
    """First non-missing value among ``names`` in a row whose keys are lower-cased."""
    for name in names:
        value = row.get(name.lower())
        if not is_missing(value):
            return value
    return None


#: Columns (lower-cased) that :func:`parse_table_row` reads; any other column of the input is
#: reported in the manifest as ``ignored_columns`` with its count of non-empty cells.
READ_COLUMNS = frozenset(c.lower() for c in (
    "id", "imageId", "image_id", "url", "createdAt", "created_at", "statsSummary", "stats", "Meta",
    "browsingLevel", "nsfwLevel", "nsfw", "positivePrompt", "prompt", "negativePrompt",
    "negative_prompt", "baseModel", "base_model", "usernameHash", "username_hash", "username",
    "postId", "post_id", "width", "height", "hash", "blurhash", "type", "mediaType", "media_type",
    *STAT_KEYS.values()))


def count_ignored(row: dict[str, Any], ignored: dict[str, int]) -> None:
    """Add ``row``'s columns that no field is read from to ``ignored`` (non-empty cells)."""
    for name, value in row.items():
        if str(name).lower() not in READ_COLUMNS:
            ignored[str(name)] = ignored.get(str(name), 0) + (not is_missing(value))


#: Key of a parsed row listing cells that could not be read (popped by the importer, counted).
UNREADABLE = "_unreadable_cells"


def _mapping(value: Any, name: str, unreadable: list[str]) -> dict[str, Any]:
    """``statsSummary``/``Meta`` cells: a dict, JSON text or a Python-literal dict.

    A non-empty cell that is none of these is noted in ``unreadable`` (the row is kept, its
    stats or prompt stay null, and the importer counts the cells in the manifest).
    """
    if isinstance(value, dict):
        return value
    if is_missing(value):
        return {}
    if isinstance(value, str):
        for loader in (json.loads, ast.literal_eval):
            try:
                parsed = loader(value)
            except (ValueError, SyntaxError, MemoryError, RecursionError):
                continue
            if isinstance(parsed, dict):
                return parsed
    unreadable.append(name)
    return {}


def _image_id(row: dict[str, Any]) -> int | None:
    value = _get(row, "id", "imageId", "image_id")
    if value is not None:
        return to_int(value, "id", required=True)
    match = _ID_IN_URL.search(str(_get(row, "url") or ""))
    return int(match.group(1)) if match else None


def parse_table_row(row: dict[str, Any], hasher: Hasher, source: str) -> dict[str, Any]:
    """One row of a published image table as an ``images`` row (column names case-insensitive)."""
    row = {str(k).lower(): v for k, v in row.items()}
    image_id = _image_id(row)
    if image_id is None:
        raise RecordError("missing_id", "no id column and no numeric file name in url")
    unreadable: list[str] = []
    stats = _mapping(_get(row, "statsSummary", "stats"), "statsSummary", unreadable)
    meta = _mapping(_get(row, "Meta", "meta"), "Meta", unreadable)
    rating = {"browsingLevel": _get(row, "browsingLevel"), "nsfwLevel": _get(row, "nsfwLevel"),
              "nsfw": _get(row, "nsfw")}
    level = image_level(rating)
    out = {
        "id": image_id,
        "created_at": to_timestamp(_get(row, "createdAt", "created_at"), "created_at",
                                   required=True),
        "nsfw_level": level,
        "nsfw_flag": nsfw_flag(rating),
        "prompt": to_str(_get(row, "positivePrompt", "prompt") or meta.get("prompt")),
        "negative_prompt": to_str(_get(row, "negativePrompt", "negative_prompt")
                                  or meta.get("negativePrompt")),
        "base_model": to_str(_get(row, "baseModel", "base_model")),
        "username_hash": hasher(to_str(_get(row, "usernameHash", "username_hash", "username"))),
        "post_id": to_int(_get(row, "postId", "post_id"), "post_id"),
        "width": to_int(_get(row, "width"), "width"),
        "height": to_int(_get(row, "height"), "height"),
        "source": source,
        "model_id": None,
        "model_version_id": None,
        "blurhash": to_str(_get(row, "hash", "blurhash")),
        "media_type": to_str(_get(row, "type", "mediaType", "media_type")),
    }
    for column, key in STAT_KEYS.items():
        value = _get(row, key)
        out[column] = to_int(value if value is not None else stats.get(key), column)
    if unreadable:
        out[UNREADABLE] = unreadable
    return out


def _fetch_from_hub(name: str) -> Path:
    """Download a Hugging Face dataset by name (online, terms accepted, token in env)."""
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise RuntimeError("fetching hf:" + name + " needs the huggingface_hub package; install "
                           "it, or download the files and pass their folder") from None
    token = os.environ.get("HF_TOKEN") or os.environ.get("HUGGING_FACE_HUB_TOKEN")
    return Path(snapshot_download(repo_id=name, repo_type="dataset", token=token,
                                  allow_patterns=["*.parquet", "*.csv", "*.csv.gz"]))


def exact_dataset(importer: str, rows: int) -> str:
    """The dataset an import is of: Civ-40M only when it holds the full collection's rows."""
    if importer == "civiverse":
        return "Civiverse-6M"
    return "Civ-40M" if rows >= 40_000_000 else "Civ-40K"


def import_image_table(dataset: str, path: Path | str, out: Path | str,
                       hasher: Hasher | None = None, part_rows: int = PART_ROWS) -> Snapshot:
    """Convert a Civ-40K/40M (``civ40k``) or Civiverse-6M (``civiverse``) table into a snapshot."""
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; choose one of {', '.join(DATASETS)}")
    text = str(path)
    path = _fetch_from_hub(text[3:]) if text.startswith("hf:") else Path(path)
    out = Path(out)
    if not path.exists():
        raise FileNotFoundError(f"no {DATASETS[dataset]} data at {path}; pass a .parquet/.csv "
                                "file, a folder of them, or hf:OWNER/NAME")
    started = time.monotonic()
    sink = start_import(out, hasher)
    hasher = sink.hasher
    rows = 0
    latest: datetime | None = None
    unreadable: dict[str, int] = {}
    ignored: dict[str, int] = {}
    for number, row in enumerate(iter_rows(path), start=1):
        rows += 1
        count_ignored(row, ignored)
        try:
            parsed = parse_table_row(row, hasher, dataset)
        except RecordError as err:
            sink.reject("image", RecordError(err.reason, f"row {number}: {err.detail}"), row)
            continue
        for cell in parsed.pop(UNREADABLE, ()):
            unreadable[cell] = unreadable.get(cell, 0) + 1
        sink.add_image(parsed)
        if latest is None or parsed["created_at"] > latest:
            latest = parsed["created_at"]
        sink.flush_when_full(part_rows)
    source = {
        "kind": "import",
        "importer": dataset,
        "name": DATASETS[dataset],
        # the exact dataset (claims are matched on it): the published Civ-40K table is a
        # 40,000-row subset of the authors' Civ-40M collection (over 40 million rows)
        "dataset": exact_dataset(dataset, rows),
        "input": {"name": text} if text.startswith("hf:") else input_description(path),
        "records_read": rows,
        # rows kept, but these cells could not be read (their stats or prompt stay null)
        "unreadable_cells": dict(sorted(unreadable.items())),
        # columns no snapshot field is read from, with their non-empty cells: kept on record
        "ignored_columns": dict(sorted(ignored.items())),
        "note": "username hashes of the dataset were re-hashed with this project's key; "
                "snapshot_date is the latest createdAt in the data",
    }
    snapshot = finish(out, sink, sink.next_part, source,
                      snapshot_date=latest.date().isoformat() if latest else None,
                      extra={"not_measurable": limits.for_import(latest, "images"),
                             "not_measurable_note": limits.import_note(latest)})
    log.info("imported %s rows of %s in %.1f s", f"{rows:,}", dataset, time.monotonic() - started)
    return snapshot
