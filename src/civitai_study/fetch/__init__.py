"""``civitai-study acquire NAME --out DIR``: fetch a registered dataset, verify it, import it.

Steps: download (resumable, with progress; :mod:`.download` or :mod:`.hub`), verify the records
against the registry's count and canonical digest (:mod:`.digest`), run the matching importer,
and record in the manifest what was acquired and how it was checked. Downloads are kept in a cache
folder beside ``DIR`` (``.downloads/NAME``) so a rerun resumes or reuses them.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

from ..snapshot import MANIFEST, Snapshot, load_snapshot, sha256_file, write_manifest
from .digest import RecordDigest
from .download import ChecksumError, DownloadError, download
from .registry import REGISTRY, Dataset, get

__all__ = ["REGISTRY", "ChecksumError", "Dataset", "DownloadError", "acquire_dataset",
           "default_cache", "verify_records"]
log = logging.getLogger(__name__)


def default_cache(out: Path, name: str) -> Path:
    """Where downloads of ``name`` are kept for the snapshot ``out``: ``OUT/../.downloads/NAME``."""
    return Path(out).parent / ".downloads" / name


def verify_records(entry: Dataset, digest: RecordDigest) -> str:
    """Check ``digest`` against the registry; returns how it was checked, raises on mismatch."""
    problems = []
    if entry.expected_records is not None and digest.count != entry.expected_records:
        problems.append(f"{digest.count:,} records instead of {entry.expected_records:,}")
    if entry.record_digest is not None and digest.hexdigest != entry.record_digest:
        problems.append(f"record digest {digest.hexdigest} instead of {entry.record_digest}")
    if problems:
        raise ChecksumError(
            f"checksum mismatch for {entry.name}: the download holds " + " and ".join(problems)
            + "; it was deleted and nothing was imported. Run again to re-download; if it "
            "persists the source changed and the registry entry must be reviewed")
    if entry.record_digest is None:
        return "not pinned in the registry: digest recorded here for the first time"
    return "matches the registry's pinned count and record digest"


def _check_out(out: Path) -> None:
    """Refuse, before downloading anything, an ``out`` that holds a crawl or other files."""
    manifest = out / MANIFEST
    if manifest.is_file():
        try:
            kind = json.loads(manifest.read_text(encoding="utf-8")).get("source", {}).get("kind")
        except (json.JSONDecodeError, AttributeError):
            kind = None
        if kind == "collect":
            raise ValueError(f"{out} holds a crawl; acquire into another folder instead of "
                             "overwriting it")
    elif out.is_dir() and any(out.iterdir()):
        raise ValueError(f"{out} is not empty and holds no snapshot; choose an empty or new "
                         "folder for --out")


def _table_digest(folder: Path) -> RecordDigest:
    from ..importers.image_tables import iter_rows

    return RecordDigest().update(iter_rows(folder))


def _quiet_http_log() -> None:
    """httpx logs every request URL at INFO; progress is shown by the bar instead."""
    logging.getLogger("httpx").setLevel(logging.WARNING)


def _fetch(entry: Dataset, cache: Path, url: str | None, hf_endpoint: str | None,
           progress: bool, attempts: int) -> tuple[Path, RecordDigest, dict[str, Any]]:
    """Download and unpack ``entry``; the importer's input, the records' digest, a description."""
    if entry.kind == "github-archive":
        from .archive import archive_to_jsonl

        archive = download(url or entry.location,
                           cache / f"{entry.name}-{(entry.revision or 'head')[:12]}.tar.gz",
                           sha256=entry.archive_sha256, attempts=attempts, progress=progress)
        records = cache / entry.records_name
        try:
            digest, counts = archive_to_jsonl(archive, records)
        except (OSError, EOFError, ValueError) as err:
            archive.unlink(missing_ok=True)
            raise ChecksumError(f"{archive.name} is not a readable tar.gz archive of the crawl "
                                f"({err}); it was deleted, run again to re-download") from None
        described = {"archive": {"name": archive.name, "bytes": archive.stat().st_size,
                                 "sha256": sha256_file(archive)}, "archive_contents": counts}
        try:
            verify_records(entry, digest)
        except ChecksumError:
            records.unlink(missing_ok=True)
            archive.unlink(missing_ok=True)
            raise
        return records, digest, described
    if entry.kind == "hf-dataset":
        from .hub import fetch_hub_dataset

        folder, described = fetch_hub_dataset(entry, cache, endpoint=hf_endpoint,
                                              progress=progress, attempts=attempts)
        digest = _table_digest(folder)
        try:
            verify_records(entry, digest)
        except ChecksumError:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return folder, digest, described
    raise ValueError(f"registry entry {entry.name} has unknown kind {entry.kind!r}")


def acquire_dataset(dataset: str | Dataset, out: Path | str, *, cache: Path | str | None = None,
                    url: str | None = None, hf_endpoint: str | None = None,
                    progress: bool = True, attempts: int = 3) -> Snapshot | None:
    """Fetch, verify and import ``dataset`` into the snapshot ``out``.

    ``url`` replaces the archive's location (a mirror; the pinned digest still applies) and
    ``hf_endpoint`` the Hugging Face endpoint. Returns ``None`` (after downloading) for a dataset
    that no importer reads yet.
    """
    entry = get(dataset) if isinstance(dataset, str) else dataset
    out = Path(out)
    _check_out(out)
    if url is not None and entry.kind != "github-archive":
        raise ValueError(f"--url replaces an archive's location; {entry.name} comes from the "
                         "Hugging Face hub: use --hf-endpoint for a mirror of the hub")
    _quiet_http_log()
    cache = Path(cache) if cache is not None else default_cache(out, entry.name)
    path, digest, described = _fetch(entry, cache, url, hf_endpoint, progress, attempts)
    if entry.importer is None:
        log.warning("%s downloaded to %s, but no importer reads its layout yet", entry.name, path)
        return None
    from ..importers import run_importer

    snapshot = run_importer(entry.importer, path, out)
    manifest = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    manifest["source"]["dataset"] = entry.name
    manifest["acquired"] = {
        "dataset": entry.name, "title": entry.title, "location": entry.location,
        "downloaded_from": "the registry's location" if url is None else
        "a mirror given with --url (records checked against the registry as usual)",
        "revision": described.get("revision", entry.revision), "licence": entry.licence,
        "access": entry.access, "records": digest.count, "record_digest": digest.hexdigest,
        "verification": verify_records(entry, digest), "digest_note": entry.digest_note,
        **{k: v for k, v in described.items() if k != "revision"},
    }
    if entry.expected_rows:
        got = {t: manifest.get("counts", {}).get(t) for t in entry.expected_rows}
        manifest["acquired"]["expected_rows"] = {
            "expected": dict(sorted(entry.expected_rows.items())), "match": got ==
            entry.expected_rows}
        if got != entry.expected_rows:
            log.warning("%s imported as %s rows, the registry expects %s: the importer's rules "
                        "changed since the registry entry was written", entry.name, got,
                        entry.expected_rows)
    write_manifest(out, manifest)
    log.info("acquired %s: %s records verified", entry.name, f"{digest.count:,}")
    return load_snapshot(out) if snapshot is not None else None
