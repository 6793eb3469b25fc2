"""The models-jsonl importer: the real 2023 crawl end to end, plus small drifted files."""

from __future__ import annotations

import gzip
import json
import re
from collections import Counter
from pathlib import Path

import pytest

from civitai_study.cli import main
from civitai_study.importers.models_jsonl import import_models_jsonl
from civitai_study.pseudonymise import Pseudonymiser
from civitai_study.snapshot import load_snapshot

REAL = (Path(__file__).resolve().parents[1].parent / "shared" / "civitai-samples" / "models"
        / "dfanr_v1_models_2023-07-04.jsonl.gz")
HASH = Pseudonymiser(b"test key")


def _direct_counts(path: Path) -> dict:
    """Count the file without the importer: what the snapshot must agree with."""
    types: Counter[str] = Counter()
    poi = versions = previews = 0
    usernames: set[str] = set()
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        for line in handle:
            item = json.loads(line)
            types[item["type"]] += 1
            poi += item["poi"] is True
            usernames.add(item["creator"]["username"])
            versions += len(item["modelVersions"])
            previews += sum(len(v["images"]) for v in item["modelVersions"])
    return {"types": types, "poi": poi, "versions": versions, "previews": previews,
            "usernames": usernames}


@pytest.mark.slow
def test_real_2023_crawl_imports_completely(tmp_path):
    if not REAL.is_file():
        pytest.skip(f"real 2023 crawl not found at {REAL} (../shared is absent)")
    out = tmp_path / "snap"
    snapshot = import_models_jsonl(REAL, out, hasher=HASH)
    direct = _direct_counts(REAL)

    loaded = load_snapshot(out, verify_checksums=True)
    counts = loaded.manifest["counts"]
    assert counts["models"] == 17_982
    assert counts["model_versions"] == direct["versions"]
    assert counts["images"] == direct["previews"]
    assert loaded.manifest["quarantine"]["total"] == 0
    assert loaded.manifest["duplicates_dropped"] == {}
    assert loaded.manifest["source"]["dataset"] == "dfanr_v1_models_2023-07-04"
    # every claim measured on this crawl (data/claims.yaml) is comparable and reproduces
    from civitai_study import claims
    table = claims.load_claims()
    ours = table[table["dataset"] == "dfanr_v1_models_2023-07-04"]
    estimates = claims.run_estimates(loaded.connect(), list(ours["quantity"]))
    verdicts = claims.compare_claims(ours, estimates, loaded)
    assert (verdicts["verdict"] == "comparable").all(), verdicts[["id", "verdict"]]
    for row in verdicts.itertuples(index=False):
        assert row.this_run == pytest.approx(row.claim_value, rel=0.001, abs=0.0005), row.id

    con = snapshot.connect()
    by_type = dict(con.execute("SELECT type, count(*) FROM models GROUP BY 1").fetchall())
    assert by_type == dict(direct["types"])
    assert con.execute("SELECT count(*) FROM models WHERE poi").fetchone()[0] == direct["poi"]
    # previews: all from model_preview, dated by their version, levels from legacy strings
    assert con.execute("SELECT count(*) FROM images WHERE source <> 'model_preview' "
                   "OR model_id IS NULL OR blurhash IS NULL").fetchone()[0] == 0
    assert con.execute("SELECT count(*) FROM images i JOIN model_versions v "
                   "ON i.model_version_id = v.id WHERE i.created_at <> v.created_at"
                   ).fetchone()[0] == 0
    levels = {r[0] for r in con.execute("SELECT DISTINCT nsfw_level FROM images").fetchall()}
    assert levels <= {1, 2, 4, 8}
    assert con.execute("SELECT count(*) FROM model_tags WHERE tag <> lower(tag)").fetchone()[0] == 0
    assert con.execute("SELECT count(*) FROM models m WHERE created_at <> (SELECT min(created_at) "
                   "FROM model_versions v WHERE v.model_id = m.id)").fetchone()[0] == 0
    # Usernames are stored only as keyed hashes. (Searching the Parquet bytes for raw names is
    # ill-posed: a creator called "civitai" also appears in prompts and model names, as content.)
    hashes = con.execute("SELECT DISTINCT creator_hash FROM models UNION "
                         "SELECT DISTINCT username_hash FROM images").fetchall()
    assert all(h is None or re.fullmatch(r"[0-9a-f]{16}", h) for (h,) in hashes)
    names = {u for u in direct["usernames"] if u}
    assert not names & {h for (h,) in hashes}
    # and no raw name in the text files written beside the tables (manifest, quarantine)
    text = "".join(p.read_text(encoding="utf-8") for p in out.rglob("*")
                   if p.is_file() and p.suffix in (".json", ".jsonl"))
    assert not [u for u in sorted(names) if len(u) > 6 and f'"{u}"' in text]


def _model(model_id: int, **extra) -> dict:
    item = {
        "id": model_id, "name": f"m{model_id}", "type": "LORA", "poi": False, "nsfw": True,
        "creator": {"username": "Alice_Secret", "image": None}, "tags": ["Woman", "woman"],
        "stats": {"downloadCount": None, "thumbsUpCount": 3},
        "allowCommercialUse": ["Image", "Rent"],
        "modelVersions": [{
            "id": model_id * 10, "createdAt": "2024-03-01T00:00:00.000Z", "baseModel": "SDXL 1.0",
            "trainedWords": ["tw"], "nsfwLevel": 31,
            "images": [{"id": model_id * 100, "nsfwLevel": 8, "hash": "UABC", "width": 1,
                        "height": 2},
                       {"url": "no id (2026 shape)", "nsfwLevel": 4}],
        }],
    }
    item.update(extra)
    return item


def test_small_drifted_file_with_bad_lines(tmp_path, monkeypatch):
    monkeypatch.setenv("CIVITAI_STUDY_HASH_KEY", "test key")  # never create a key in $HOME
    src = tmp_path / "models.jsonl"
    lines = [json.dumps(_model(1)), "{not json", json.dumps(_model(2, nsfwLevel=31)),
             json.dumps(_model(1)),
             json.dumps({"name": "no id", "creator": {"username": "Alice_Secret"}}),
             '{"id": 9, "creator": {"username": "Alice_Secret"}, broken', ""]
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "snap"
    assert main(["import", "models-jsonl", str(src), "--out", str(out)]) == 0
    snap = load_snapshot(out)
    counts = snap.manifest["counts"]
    assert counts["models"] == 2 and counts["images"] == 2 and counts["model_tags"] == 2
    assert snap.manifest["duplicates_dropped"] == {"models": 1}
    quarantine = snap.manifest["quarantine"]
    assert quarantine["by_reason"] == {"bad_json": 2, "missing_id": 3}
    text = "".join(p.read_text() for p in (out / "quarantine").glob("*.jsonl"))
    assert "Alice_Secret" not in text and "username_hash" in text
    row = snap.connect().execute("SELECT nsfw_level, download_count FROM models WHERE id = 2"
                             ).fetchone()
    assert row == (31, None)
