"""Gated Hugging Face datasets: list the pinned revision's files with ``huggingface_hub``, then
download them resumably (:mod:`.download`) and check each against its LFS SHA-256.

The authors' datasets are gated: the account behind ``HF_TOKEN`` must have accepted the terms on
the dataset's page. A refusal is reported as exactly that, with the steps to fix it.
"""

from __future__ import annotations

import fnmatch
import os
from pathlib import Path
from typing import Any

from .download import DownloadError, download
from .registry import Dataset

DEFAULT_ENDPOINT = "https://huggingface.co"


def _token() -> str | None:
    return os.environ.get("HF_TOKEN") or os.environ.get("HUGGING_FACE_HUB_TOKEN") or None


def _refused(entry: Dataset, token: str | None, endpoint: str, what: str) -> DownloadError:
    page = f"{endpoint.rstrip('/')}/datasets/{entry.location}"
    why = ("HF_TOKEN is not set" if token is None else
           "the account of HF_TOKEN has not been granted access (or the token is wrong)")
    return DownloadError(
        f"Hugging Face refused {entry.location} ({what}): the dataset is gated and {why}. Log in "
        f"at {page}, accept its terms, create a read token and export HF_TOKEN=<token>, then run "
        "the same command again")


def fetch_hub_dataset(entry: Dataset, cache: Path, *, endpoint: str | None = None,
                      progress: bool = True, attempts: int = 3) -> tuple[Path, dict[str, Any]]:
    """Download the data files of ``entry`` into ``cache/<commit>/``; returns the folder and a
    description (resolved commit, files with sizes and SHA-256) for the manifest."""
    from huggingface_hub import HfApi, hf_hub_url
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        RepositoryNotFoundError,
    )

    token = _token()
    endpoint = endpoint or os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT
    api = HfApi(endpoint=endpoint, token=token or False)
    try:
        info = api.dataset_info(entry.location, revision=entry.revision, files_metadata=True)
    except GatedRepoError:
        raise _refused(entry, token, endpoint, "gated") from None
    except RepositoryNotFoundError:
        raise _refused(entry, token, endpoint, "not found or not visible to this token") from None
    except HfHubHTTPError as err:
        raise DownloadError(f"Hugging Face answered an error for {entry.location}: "
                            f"{str(err).splitlines()[0]}; try again later") from None
    wanted = sorted((s for s in info.siblings or []
                     if any(fnmatch.fnmatch(s.rfilename, p) for p in entry.patterns)),
                    key=lambda s: s.rfilename)
    if not wanted:
        raise DownloadError(f"{entry.location} at {info.sha} has no files matching "
                            f"{', '.join(entry.patterns)}; check the registry entry")
    folder = cache / (info.sha or "main")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    files = []
    for sibling in wanted:
        url = hf_hub_url(entry.location, sibling.rfilename, repo_type="dataset",
                         revision=info.sha, endpoint=endpoint)
        sha = sibling.lfs.sha256 if sibling.lfs else None
        path = download(url, folder / sibling.rfilename, sha256=sha, size=sibling.size,
                        headers=headers, attempts=attempts, progress=progress)
        files.append({"name": sibling.rfilename, "bytes": path.stat().st_size,
                      "sha256": sha or "(not an LFS file: size checked only)"})
    return folder, {"revision": info.sha, "files": files}
