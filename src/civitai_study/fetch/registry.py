"""The datasets ``civitai-study acquire NAME`` knows: where each lives, pinned, and how to check it.

Each entry names its source and revision, its licence and access conditions, the records it should
hold and a digest of those records in canonical form (:mod:`.digest`), so an acquisition is
verified by content, not by archive bytes. ``None`` means "not known offline": it is computed at
the first acquisition and written to the snapshot's manifest, where a maintainer can copy it here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

REAL_2023_COMMIT = "294f1a35fa593cc98424bcb9aa1f1aba08ad9fe1"


@dataclass(frozen=True)
class Dataset:
    name: str
    title: str
    kind: str  # "github-archive" (a tarball of one JSON file per model) or "hf-dataset"
    location: str  # archive URL, or the Hugging Face dataset id
    revision: str | None  # git commit pinned; None = the hub's main, recorded when fetched
    licence: str
    access: str
    importer: str | None  # the importer that turns the files into a snapshot
    expected_records: int | None
    record_digest: str | None
    digest_note: str
    archive_sha256: str | None = None  # only where archive bytes are stable
    #: file name of the unpacked records (github-archive): the name the same records carry
    #: elsewhere, so claims tied to that dataset recognise them
    records_name: str = "models.jsonl.gz"
    #: rows per snapshot table expected after import (checked, reported in the manifest)
    expected_rows: dict[str, int] = field(default_factory=dict)
    patterns: tuple[str, ...] = field(default=("*.parquet", "*.csv", "*.csv.gz"))


def _gated_hf(name: str, title: str, location: str, licence: str,
              importer: str | None) -> Dataset:
    """A gated Hugging Face dataset: revision and digest are only known once fetched."""
    return Dataset(
        name=name, title=title, kind="hf-dataset", location=location, revision=None,
        licence=licence, access="gated on Hugging Face: log in, accept the terms on the dataset "
        "page, set HF_TOKEN", importer=importer, expected_records=None, record_digest=None,
        digest_note="not known offline; recorded in the manifest when fetched")


REGISTRY: dict[str, Dataset] = {d.name: d for d in (
    Dataset(
        name="real-2023",
        title="CivitAI /api/v1/models crawl of 2023-07-04 (17,982 models, 187,256 preview images)",
        kind="github-archive",
        location=f"https://github.com/dfanr/CivitaiModelList/archive/{REAL_2023_COMMIT}.tar.gz",
        revision=REAL_2023_COMMIT,
        licence="no licence in the repository; its README says the data is the official API "
                "output, shared for learning; CivitAI's terms govern the content",
        access="public GitHub repository dfanr/CivitaiModelList, no account needed",
        importer="models-jsonl",
        records_name="dfanr_v1_models_2023-07-04.jsonl.gz",
        expected_records=17_982,
        expected_rows={"models": 17_982, "model_versions": 27_018, "images": 187_256},
        record_digest="multiset-sha256:"
                      "33052f379924e6ad6eeca6fcab87abc8f4f411ff91a84fd0b71fba45f727d2fb",
        digest_note="computed offline from ../shared/civitai-samples/models/"
                    "dfanr_v1_models_2023-07-04.jsonl.gz, which SOURCES.md says holds every model "
                    "item of this commit unchanged (one line per JSON file under models/<Type>/"
                    "{normal,nsfw}/json/), 17,982 distinct model ids; not yet checked against a "
                    "download of the archive itself, which could not be reached where the digest "
                    "was computed (exact duplicate files in the archive are counted once)",
    ),
    _gated_hf("civ-40k", "Civ-40K: 40.6k image records sampled from Civ-40M (Wagner & Cetinic "
              "2025)", "pm-paper-datasets/Civ-40K", "CC BY-NC 4.0", "civ40k"),
    _gated_hf("civ-40m", "Civ-40M: image metadata of over 40 million CivitAI images (Wagner & "
              "Cetinic 2025)", "pm-paper-datasets/Civ-40M", "CC BY-NC 4.0", "civ40k"),
    _gated_hf("civ-models", "Civ-Models: over 230,000 CivitAI models (Wagner & Cetinic 2025)",
              "pm-paper-datasets/Civ-Models", "CC BY-NC 4.0", None),
    _gated_hf("civiverse-6m", "Civiverse-6M: 6.5 million CivitAI image records, Oct 2023 - Apr "
              "2024", "latentcanon/Civiverse-6M", "see the dataset card (gated)", "civiverse"),
)}


def get(name: str) -> Dataset:
    """The registry entry ``name``, or a message listing the names there are."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(REGISTRY)} "
                         "(`civitai-study acquire --list` describes them)") from None
