"""Resumable HTTP downloads with progress and checksum verification (httpx, Range requests).

Bytes go to ``<dest>.part`` first; a rerun (or a retry after a dropped connection) asks for the
rest with ``Range: bytes=N-`` and appends, and only a complete file whose size and SHA-256 match
what the registry pinned is renamed to ``dest``. A file that fails its checksum is deleted and
refused, never imported.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import httpx
from tqdm.auto import tqdm

from ..snapshot import sha256_file

log = logging.getLogger(__name__)


class DownloadError(RuntimeError):
    """A download that did not complete (network, HTTP status); rerunning resumes it."""


class ChecksumError(ValueError):
    """Downloaded content that does not match the registry's pinned checksum or digest."""


def _refusal(url: str, status: int) -> str:
    hints = {
        401: "the server wants credentials: set HF_TOKEN (Hugging Face) and accept the dataset's "
             "terms on its page",
        403: "access refused: accept the dataset's terms on its page while logged in, and set "
             "HF_TOKEN to a token of that account",
        404: "not found: the pinned revision or file may have moved; check the registry entry",
        416: "the server cannot resume this file; delete the .part file and run again",
    }
    return f"GET {url} answered HTTP {status}: " + hints.get(
        status, "try again later; rerunning resumes the download")


def _fetch_once(client: httpx.Client, url: str, part: Path, headers: dict[str, str],
                size: int | None, progress: bool) -> None:
    have = part.stat().st_size if part.exists() else 0
    if size is not None and have == size:
        return
    # byte ranges count stored bytes: ask for them as stored (no transfer compression), and
    # write what arrives as it arrives so a dropped connection loses nothing already received
    request = {"Accept-Encoding": "identity", **headers}
    if have:
        request["Range"] = f"bytes={have}-"
    with client.stream("GET", url, headers=request) as response:
        if response.status_code == 206:
            start = response.headers.get("Content-Range", "").removeprefix("bytes ").split("-")[0]
            if start != str(have):
                raise DownloadError(f"GET {url}: the server resumed at byte {start!r}, not {have}")
            mode = "ab"
        elif response.status_code == 200:
            have, mode = 0, "wb"  # the server ignored Range: start again
        else:
            raise DownloadError(_refusal(url, response.status_code))
        length = response.headers.get("Content-Length")
        total = size if size is not None else (have + int(length) if length else None)
        with open(part, mode) as handle, tqdm(
                total=total, initial=have, unit="B", unit_scale=True, desc=part.name[:-5],
                disable=None if progress else True, leave=False) as bar:
            for chunk in response.iter_raw():
                handle.write(chunk)
                bar.update(len(chunk))
            handle.flush()
            os.fsync(handle.fileno())


def download(url: str, dest: Path, *, sha256: str | None = None, size: int | None = None,
             headers: dict[str, str] | None = None, attempts: int = 3, progress: bool = True,
             timeout: float = 60.0) -> Path:
    """Download ``url`` to ``dest`` (resuming a ``.part`` left by an earlier run); return it.

    ``sha256`` and ``size``, when the registry pins them, are checked before ``dest`` appears.
    Each of ``attempts`` resumes where the last one stopped.
    """
    dest = Path(dest)
    if dest.is_file() and (sha256 is None or sha256_file(dest) == sha256):
        log.info("%s already downloaded", dest.name)
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    error: Exception | None = None
    with httpx.Client(follow_redirects=True, timeout=timeout) as client:
        for attempt in range(1, max(1, attempts) + 1):
            try:
                _fetch_once(client, url, part, headers or {}, size, progress)
                error = None
                break
            except httpx.HTTPError as err:
                error = err
                log.warning("download of %s interrupted (attempt %d of %d): %s", dest.name,
                            attempt, attempts, type(err).__name__)
            except DownloadError:
                raise
    got = part.stat().st_size if part.exists() else 0
    if error is not None:
        raise DownloadError(f"download of {url} stopped after {got:,} bytes "
                            f"({type(error).__name__}); run the same command again to resume "
                            f"from {part}") from error
    if size is not None and got != size:
        raise DownloadError(f"{part} has {got:,} bytes, expected {size:,}; run the same command "
                            "again to resume")
    if sha256 is not None:
        actual = sha256_file(part)
        if actual != sha256:
            part.unlink()
            raise ChecksumError(
                f"checksum mismatch for {url}: sha256 {actual} is not the pinned {sha256}; the "
                "download was deleted and nothing was imported. Run again to re-download; if it "
                "persists the source changed and the registry entry must be reviewed")
    os.replace(part, dest)
    return dest
