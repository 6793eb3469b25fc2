"""Steps every importer shares: a staged output folder, opening (gzipped) input safely, checking
the input's format before work starts, the manifest, and the swap into place.

An import builds its snapshot in a hidden sibling of ``--out`` (:mod:`civitai_study.staging`)
and swaps it in only when it is complete and holds rows, so a failed import never destroys the
snapshot already there. Input that breaks off (an interrupted download) keeps the records read
before the break and says so; undecodable input names the file and the line.
"""

from __future__ import annotations

import contextvars
import gzip
import io
import json
import os
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .. import __version__, staging
from ..schema import TABLES
from ..snapshot import MANIFEST, Snapshot, load_snapshot, row_counts, sha256_file, write_manifest
from .parse import Hasher
from .parts import QUARANTINE_DIR, ensure_all_tables, quarantine_summary
from .sink import Sink

TOOL = {"name": "civitai-study", "version": __version__}
#: Names in a snapshot folder that an import replaces; anything else there is the user's and kept.
LAYOUT = frozenset({MANIFEST, QUARANTINE_DIR, *TABLES, *(f"{t}.parquet" for t in TABLES)})


class ImportInputError(ValueError):
    """The input is not what the importer reads; the message names the file and the fix."""


class InputTruncated(RuntimeError):
    """The input ended early; the records before the break were kept (and the message says so)."""


@dataclass
class _ImportState:
    out: Path
    truncated: list[tuple[Path, int]] = field(default_factory=list)


_CURRENT: contextvars.ContextVar[_ImportState | None] = contextvars.ContextVar(
    "civitai_study_import", default=None)


def prepare_out(out: Path) -> Path:
    """Check ``out`` and return a fresh staging folder beside it; ``out`` itself is untouched
    until :func:`finish` swaps the complete snapshot in.

    Files named like snapshot tables in a folder that is not a snapshot (no manifest) are a
    user's own and are never replaced: such a folder is refused.
    """
    out = Path(out)
    if out.is_dir() and not (out / MANIFEST).is_file():
        clash = sorted(n for n in os.listdir(out) if n in LAYOUT)
        if clash:
            raise FileExistsError(f"{out} holds {', '.join(clash)} but is not a snapshot (no "
                                  f"{MANIFEST}); nothing was changed. Pass --out a new or empty "
                                  "folder")
    return staging.begin(out)


class _TolerantGzip(io.RawIOBase):
    """Raw gzip bytes that end (instead of raising ``EOFError``) where the file breaks off."""

    def __init__(self, path: Path):
        self.path = path
        self._gz = gzip.open(path, "rb")
        self.truncated = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        if self.truncated:
            return 0
        try:
            data = self._gz.read(len(buffer))
        except EOFError:
            self.truncated = True
            return 0
        except (gzip.BadGzipFile, zlib.error) as err:
            raise ImportInputError(f"{self.path} is not a readable gzip file ({err}); "
                                   "re-download it or pass the uncompressed file") from None
        buffer[:len(data)] = data
        return len(data)

    def close(self) -> None:
        self._gz.close()
        super().close()


class InputText:
    """A text file for importers: lines are counted, bad bytes name the file and line, and a
    gzip stream that breaks off ends cleanly (recorded for :func:`finish`)."""

    def __init__(self, path: Path):
        self.path = path
        with open(path, "rb") as probe:
            magic = probe.read(2)
        self._raw = _TolerantGzip(path) if magic == b"\x1f\x8b" else None
        self._bin = io.BufferedReader(self._raw) if self._raw else open(path, "rb")  # noqa: SIM115
        self.lines = 0  # complete lines read so far

    def _decode(self, data: bytes, first_line: int) -> str:
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as err:
            line = first_line + data.count(b"\n", 0, err.start)
            hint = (" (the name ends in .gz but the file is not gzip-compressed)"
                    if self.path.name.endswith(".gz") and self._raw is None else "")
            raise ImportInputError(
                f"{self.path}: line {line} is not UTF-8 text (byte 0x{data[err.start]:02x})"
                f"{hint}; is this the right file for this importer?") from None

    def _note_truncation(self) -> None:
        if self._raw is not None and self._raw.truncated:
            state = _CURRENT.get()
            if state is not None and all(p != self.path for p, _ in state.truncated):
                state.truncated.append((self.path, self.lines))

    def __iter__(self):
        while True:
            line = self.readline()
            if not line:
                return
            yield line

    def readline(self, size: int = -1) -> str:
        line = self._decode(self._bin.readline(size), self.lines + 1)
        if line.endswith("\n"):
            self.lines += 1
        else:
            self._note_truncation()
        return line

    def read(self, size: int = -1) -> str:
        data = self._bin.read(size)
        text = self._decode(data, self.lines + 1)
        self.lines += data.count(b"\n")
        self._note_truncation()
        return text

    def close(self) -> None:
        self._bin.close()

    def __enter__(self) -> InputText:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_text(path: Path) -> InputText:
    """Open a text file, transparently gunzipping it (detected by magic bytes, not suffix)."""
    return InputText(Path(path))


#: Columns (lower-cased; any one of each group) an image table needs.
IMAGE_TABLE_COLUMNS = (("id", "imageid", "image_id", "url"), ("createdat", "created_at"))


def check_format(importer: str, path: Path) -> None:
    """Refuse input of the wrong format before anything is written, naming what is expected."""
    path = Path(path)
    if str(path).startswith("hf:") or not path.exists():
        return  # fetched later / reported missing by the importer itself
    if path.is_file() and path.stat().st_size == 0:
        raise ImportInputError(f"{path} is empty; pass the file the {importer} importer reads")
    if importer == "models-jsonl":
        _check_models_jsonl(path)
    else:
        _check_image_table(importer, path)


def _check_models_jsonl(path: Path) -> None:
    expected = ("one /api/v1/models item (a JSON object with an \"id\") per line, or a page "
                "{\"items\": [...]}")
    with open_text(path) as handle:
        first = ""
        for line in handle:
            if line.strip():
                first = line.strip()
                break
    if not first:
        raise ImportInputError(f"{path} holds no records; the models-jsonl importer expects "
                               f"{expected}")
    if first in ("{", "["):
        return  # one pretty-printed document: read as a whole by the importer
    try:
        value = json.loads(first)
    except json.JSONDecodeError:
        raise ImportInputError(f"{path}: the first line is not JSON; the models-jsonl importer "
                               f"expects {expected}") from None
    if isinstance(value, list):
        raise ImportInputError(
            f"{path} holds a JSON array on one line; the models-jsonl importer expects "
            f"{expected} (convert it with `jq -c '.[]' {path.name}`)")
    if not isinstance(value, dict):
        raise ImportInputError(f"{path}: the first record is a JSON {type(value).__name__}, "
                               f"not an object; the models-jsonl importer expects {expected}")


def _check_image_table(importer: str, path: Path) -> None:
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    from .image_tables import _files

    for file in _files(path):
        name = file.name.lower()
        try:
            if name.endswith(".parquet"):
                columns = pq.read_schema(file).names
            elif name.endswith((".csv", ".csv.gz")):
                with pacsv.open_csv(file) as reader:
                    columns = reader.schema.names
            else:
                raise ImportInputError(f"{file}: not a .parquet or .csv file; the {importer} "
                                       "importer reads Parquet or CSV image tables")
        except (pa.ArrowException, OSError, EOFError) as err:
            first = str(err).splitlines()[0] if str(err) else type(err).__name__
            raise ImportInputError(f"{file} is not a readable table ({first}); pass the "
                                   f"{importer} Parquet/CSV files") from None
        lower = {str(c).lower() for c in columns}
        missing = [group for group in IMAGE_TABLE_COLUMNS if not lower & set(group)]
        if missing:
            need = "; ".join(" or ".join(group) for group in missing)
            raise ImportInputError(
                f"{file} lacks the column(s) {need} (found: {', '.join(map(str, columns[:12]))}"
                f"{' ...' if len(columns) > 12 else ''}); the {importer} importer expects an "
                "image table with id (or url) and createdAt columns")


def input_description(path: Path) -> dict[str, Any]:
    """Name, size and sha256 of an input file, so the manifest says exactly what was imported."""
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file())
        return {"name": path.name, "files": [input_description(p) for p in files]}
    return {"name": path.name, "bytes": path.stat().st_size, "sha256": sha256_file(path)}


def start_import(out: Path, hasher: Hasher | None) -> Sink:
    """Open a staging folder beside ``out`` and return a sink writing into it, hashing names with
    ``hasher`` (default: the project's key from the environment or the local key file)."""
    from ..pseudonymise import Pseudonymiser, load_or_create_key

    hasher = hasher or Pseudonymiser(load_or_create_key())
    stage = prepare_out(Path(out))
    _CURRENT.set(_ImportState(out=Path(out)))
    return Sink(stage, hasher)


def abort(out: Path) -> None:
    """Forget a failed import: remove its staging folder; ``out`` was never touched."""
    staging.discard(staging.staging_path(Path(out)))
    _CURRENT.set(None)


def finish(out: Path, sink: Sink, next_index: int, source: dict[str, Any],
           snapshot_date: str | None = None, extra: dict[str, Any] | None = None) -> Snapshot:
    """Flush the sink, give every table a part, write the manifest, validate the snapshot and swap
    it into ``out``.

    A snapshot without a single image or model is refused (the input was of the wrong format);
    input that broke off is kept, swapped in, and then reported as :class:`InputTruncated`.
    ``snapshot_date`` is when the data was crawled (when known); the import date is kept apart.
    """
    out, stage = Path(out), sink.root
    state = _CURRENT.get()
    truncated = list(state.truncated) if state is not None else []
    try:
        sink.flush(next_index)
        ensure_all_tables(stage, next_index + 1)
        quarantine = quarantine_summary(stage)
        counts = row_counts(stage)
        if counts["images"] == 0 and counts["models"] == 0:
            reasons = ", ".join(f"{k} {v:,}" for k, v in quarantine.get("by_reason", {}).items())
            raise ImportInputError(
                f"no record of {source.get('input', {}).get('name', 'the input')} could be "
                f"imported ({quarantine.get('total', 0):,} rejected"
                f"{': ' + reasons if reasons else ''}); is it the format the "
                f"{source.get('importer', 'chosen')} importer reads? {out} was left unchanged")
        manifest = {
            "synthetic": False,
            "source": source,
            "snapshot_date": snapshot_date or "unknown",
            "imported_on": datetime.now(UTC).date().isoformat(),
            "tool": TOOL,
            "duplicates_dropped": dict(sorted(sink.duplicates.items())),
            "quarantine": quarantine,
            **(extra or {}),
        }
        if truncated:
            manifest["input_truncated"] = {p.name: {"complete_lines": n} for p, n in truncated}
        write_manifest(stage, manifest)
        load_snapshot(stage)
        # A truncated input never replaces a snapshot the user already had: its records go to a
        # sibling folder instead, and the complete snapshot in ``out`` stays as it was.
        target = partial_target(out) if truncated and has_snapshot(out) else out
        keep = (sorted(n for n in os.listdir(target) if n not in LAYOUT)
                if target.is_dir() else [])
        staging.commit(stage, target, keep=keep)
    except BaseException:
        abort(out)
        raise
    _CURRENT.set(None)
    snapshot = load_snapshot(target)
    if truncated:
        path, lines = truncated[0]
        kept = (f"kept in {target} ({out} still holds the snapshot it had)" if target != out
                else f"kept in {out}")
        raise InputTruncated(
            f"{path} ended early after {lines:,} complete lines (an interrupted download?); the "
            f"records read before the break were {kept} and the broken tail is in "
            f"{target / QUARANTINE_DIR}; re-download the file and import again")
    return snapshot


def has_snapshot(folder: Path) -> bool:
    """Whether ``folder`` already holds a snapshot (a manifest)."""
    return (Path(folder) / "manifest.json").is_file()


def partial_target(out: Path) -> Path:
    """Where a truncated import goes when ``out`` already holds a snapshot: ``OUT.partial``."""
    return out.parent / f"{out.name}.partial"
