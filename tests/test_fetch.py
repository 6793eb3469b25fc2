"""``civitai-study acquire``: registry, resumable download, checksum refusal, the gated hub.

Everything is served from 127.0.0.1 (tests/local_files_server.py). The archives are built at test
time from ../shared/civitai-samples (the real 2023 crawl) in the layout of its original GitHub
repository; the tests skip when ../shared is absent. Nothing from it is written to the repository.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import json
import sys
import tarfile
from pathlib import Path

import pandas as pd
import pytest

from civitai_study.cli import main
from civitai_study.fetch import (
    REGISTRY,
    ChecksumError,
    Dataset,
    DownloadError,
    acquire_dataset,
    default_cache,
)
from civitai_study.fetch.digest import RecordDigest
from civitai_study.fetch.download import download
from civitai_study.nsfw import LEGACY_STRING_LEVELS

sys.path.insert(0, str(Path(__file__).resolve().parent))
from conftest import REAL_MODELS, SHARED_SAMPLES  # noqa: E402
from local_files_server import FileServer  # noqa: E402

SAMPLE254 = SHARED_SAMPLES / "models" / "dfanr_v1_models_2023-07-04_sample254.json"
PREVIEWS = SHARED_SAMPLES / "images" / "dfanr_v1_model_preview_images_2023-07-04.jsonl.gz"
COMMIT = REGISTRY["real-2023"].revision
ARCHIVE_PATH = f"/dfanr/CivitaiModelList/archive/{COMMIT}.tar.gz"


@pytest.fixture(autouse=True)
def hash_key(monkeypatch):
    monkeypatch.setenv("CIVITAI_STUDY_HASH_KEY", "test key")
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)


@pytest.fixture
def server():
    state = FileServer()
    base = state.start()
    yield state, base
    state.stop()


def _models() -> list[dict]:
    if not SAMPLE254.is_file():
        pytest.skip(f"real 2023 crawl not found at {SAMPLE254} (../shared is absent)")
    return json.loads(SAMPLE254.read_text(encoding="utf-8"))["items"]


def crawl_archive(models: list[dict]) -> bytes:
    """A tarball laid out like github.com/dfanr/CivitaiModelList at the pinned commit: one JSON
    file per model, Markdown beside it (skipped), and one model saved twice (counted once)."""
    buffer = io.BytesIO()
    root = f"CivitaiModelList-{COMMIT}"
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        def add(name: str, data: bytes) -> None:
            info = tarfile.TarInfo(f"{root}/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))

        add("README.md", b"crawl")
        for model in models:
            folder = f"models/{model['type']}/{'nsfw' if model['nsfw'] else 'normal'}"
            data = json.dumps(model, ensure_ascii=False).encode("utf-8")
            add(f"{folder}/json/[{model['type']}].[{model['id']}].json", data)
            add(f"{folder}/markdown/[{model['type']}].[{model['id']}].md", b"# model")
        add(f"models/{models[0]['type']}/normal/json/copy.json",
            json.dumps(models[0], indent=2).encode("utf-8"))
    return buffer.getvalue()


def small_entry(base: str, models: list[dict]) -> Dataset:
    """The real-2023 entry pointed at the local server, pinned to the small archive's records."""
    versions = [v for m in models for v in m["modelVersions"]]
    return dataclasses.replace(REGISTRY["real-2023"], location=base + ARCHIVE_PATH,
                               expected_records=len(models),
                               record_digest=RecordDigest().update(models).hexdigest,
                               expected_rows={"models": len(models),
                                              "model_versions": len(versions),
                                              "images": sum(len(v["images"]) for v in versions)})


def test_acquire_end_to_end_resuming_a_dropped_download(server, tmp_path):
    state, base = server
    models = _models()
    archive = crawl_archive(models)
    state.files[ARCHIVE_PATH] = archive
    state.drop_after[ARCHIVE_PATH] = len(archive) // 3
    snap = acquire_dataset(small_entry(base, models), tmp_path / "real", progress=False)
    ranges = [r for p, r in state.requests if p == ARCHIVE_PATH]
    assert ranges == [None, f"bytes={len(archive) // 3}-"]  # resumed, not restarted
    manifest = snap.manifest
    assert manifest["counts"]["models"] == len(models) == 254
    assert manifest["quarantine"]["total"] == 0
    acquired = manifest["acquired"]
    assert acquired["dataset"] == "real-2023" and acquired["revision"] == COMMIT
    # the claims about the 2023 crawl recognise it (their comparable_when is its file name)
    assert "dfanr_v1_models_2023-07-04" in json.dumps(manifest["source"])
    assert manifest["source"]["dataset"] == "real-2023"
    assert acquired["records"] == 254 and acquired["verification"].startswith("matches")
    assert acquired["expected_rows"]["match"] is True
    assert acquired["archive_contents"] == {"duplicate_records": 1, "model_files": 255}
    assert acquired["archive"]["sha256"] == hashlib.sha256(archive).hexdigest()
    assert str(tmp_path) not in json.dumps(manifest)  # no absolute paths


def test_interrupted_download_resumes_on_the_next_run(server, tmp_path):
    state, base = server
    content = bytes(range(256)) * 4000
    state.files["/f.bin"] = content
    state.drop_after["/f.bin"] = 300_000
    dest = tmp_path / "f.bin"
    with pytest.raises(DownloadError, match="run the same command again to resume"):
        download(base + "/f.bin", dest, attempts=1, progress=False)
    part = tmp_path / "f.bin.part"
    assert part.stat().st_size == 300_000 and not dest.exists()
    download(base + "/f.bin", dest, sha256=hashlib.sha256(content).hexdigest(), attempts=1,
             progress=False)
    assert dest.read_bytes() == content and not part.exists()
    assert state.requests[-1] == ("/f.bin", "bytes=300000-")


def test_archive_checksum_mismatch_is_refused(server, tmp_path):
    state, base = server
    state.files["/f.bin"] = b"x" * 1000
    with pytest.raises(ChecksumError, match="checksum mismatch .* nothing was imported"):
        download(base + "/f.bin", tmp_path / "f.bin", sha256="0" * 64, progress=False)
    assert not list(tmp_path.iterdir())  # neither the file nor a .part is left


def test_cli_refuses_records_that_do_not_match_the_pinned_digest(server, tmp_path, capsys):
    """A mirror serving other records (here 254 of the 17,982 models) is refused by content."""
    state, base = server
    state.files[ARCHIVE_PATH] = crawl_archive(_models())
    out = tmp_path / "real"
    code = main(["acquire", "real-2023", "--out", str(out), "--url", base + ARCHIVE_PATH,
                 "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2
    assert "checksum mismatch for real-2023" in err and "254 records instead of 17,982" in err
    assert "nothing was imported" in err
    assert not out.exists()
    assert not any(default_cache(out, "real-2023").iterdir())  # the bad download was deleted


def test_registry_digest_matches_the_shared_crawl():
    """The pinned record digest of real-2023 is that of the 17,982 models in ../shared."""
    if not REAL_MODELS.is_file():
        pytest.skip(f"real 2023 crawl not found at {REAL_MODELS} (../shared is absent)")
    digest = RecordDigest()
    with gzip.open(REAL_MODELS, "rt", encoding="utf-8") as handle:
        digest.update(json.loads(line) for line in handle)
    entry = REGISTRY["real-2023"]
    assert (digest.count, digest.hexdigest) == (entry.expected_records, entry.record_digest)


def civ40k_parquet(n: int = 200) -> bytes:
    """Civ-40K columns filled from the first ``n`` real preview images of ../shared."""
    if not PREVIEWS.is_file():
        pytest.skip(f"real 2023 crawl not found at {PREVIEWS} (../shared is absent)")
    rows = []
    with gzip.open(PREVIEWS, "rt", encoding="utf-8") as handle:
        for line in handle:
            image = json.loads(line)
            meta = image.get("meta") or {}
            rows.append({
                "id": image["id"],
                "createdAt": str(pd.Timestamp(image["_modelVersionCreatedAt"])),
                "url": image["url"], "positivePrompt": meta.get("prompt"),
                "negativePrompt": meta.get("negativePrompt"), "nsfw": image["nsfw"] != "None",
                "browsingLevel": LEGACY_STRING_LEVELS[image["nsfw"]], "statsSummary": None,
                "usernameHash": hashlib.sha256(str(image["_creator"]).encode()).hexdigest()[:16],
            })
            if len(rows) == n:
                break
    buffer = io.BytesIO()
    pd.DataFrame(rows).to_parquet(buffer, index=False)
    return buffer.getvalue()


def test_gated_hub_dataset_refused_then_acquired_with_a_token(server, tmp_path, monkeypatch):
    state, base = server
    sha = "a1" * 20
    state.add_hub_dataset("pm-paper-datasets/Civ-40K", sha,
                          {"data/train-00000-of-00001.parquet": civ40k_parquet()}, "hf_secret")
    with pytest.raises(DownloadError, match="gated and HF_TOKEN is not set.*accept its terms"):
        acquire_dataset("civ-40k", tmp_path / "civ", hf_endpoint=base, progress=False)
    assert main(["acquire", "civ-40k", "--out", str(tmp_path / "civ"), "--hf-endpoint", base,
                 "--no-progress"]) == 1
    monkeypatch.setenv("HF_TOKEN", "hf_secret")
    snap = acquire_dataset("civ-40k", tmp_path / "civ", hf_endpoint=base, progress=False)
    manifest = snap.manifest
    assert manifest["counts"]["images"] == 200 and manifest["quarantine"]["total"] == 0
    acquired = manifest["acquired"]
    assert acquired["revision"] == sha and acquired["records"] == 200
    assert acquired["record_digest"].startswith("multiset-sha256:")
    assert acquired["verification"].startswith("not pinned")
    assert "hf_secret" not in json.dumps(manifest)


def test_out_holding_other_files_is_refused_before_any_download(server, tmp_path):
    state, base = server
    out = tmp_path / "busy"
    out.mkdir()
    (out / "notes.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(ValueError, match="not empty and holds no snapshot"):
        acquire_dataset(dataclasses.replace(REGISTRY["real-2023"], location=base + "/x.tar.gz"),
                        out, progress=False)
    assert state.requests == [] and (out / "notes.txt").read_text(encoding="utf-8") == "mine"
    with pytest.raises(ValueError, match="unknown dataset 'nope'"):
        acquire_dataset("nope", tmp_path / "new")
