"""What a snapshot cannot show: after 2025-05-22 the API hides real-person and minor content.

A crawl made after that date records it in the manifest (``not_measurable``); the claims table
and notebooks 02/03 then print "not measurable in this snapshot" instead of a near-zero share.
"""

from __future__ import annotations

import json
import shutil
from types import SimpleNamespace

import pandas as pd

from civitai_study import limits
from civitai_study.claims import compare_claims
from civitai_study.importers.models_jsonl import import_models_jsonl
from civitai_study.pseudonymise import Pseudonymiser
from civitai_study.snapshot import write_manifest

HASH = Pseudonymiser(b"test key")


def test_crawl_dates_around_the_exclusion():
    assert limits.for_crawl("images", "2025-05-21") == {}
    after = limits.for_crawl("images", "2025-05-22T08:00:00+00:00")
    assert sorted(after) == ["minor_flagged_share", "real_person_share_of_images"]
    assert all(v.startswith(limits.NOT_MEASURABLE) and "2025-05-22" in v for v in after.values())
    assert "real_person_share_of_models" in limits.for_crawl("models", "2026-08-01")
    assert limits.for_import("2024-04-30") == {}
    assert "real_person_share_of_images" in limits.for_import("2025-06-01")
    assert "crawl date is not in the data" in limits.import_note("2024-04-30")


def test_older_collect_manifests_are_judged_by_their_date():
    manifest = {"source": {"kind": "collect", "endpoint": "models"}, "snapshot_date": "2026-01-05"}
    assert not limits.measurable(manifest, "real_person_share_of_models")
    assert limits.measurable({"synthetic": True}, "real_person_share_of_models")
    assert "measurable" in limits.statement({"synthetic": True})


def test_claims_say_not_measurable_instead_of_a_share():
    fields = {"importer": "models-jsonl", "dataset": "x", "nsfw_definition": None,
              "denominator": None, "counted_unit": None}
    claims = pd.DataFrame([
        {"id": "a", "claim": "13.6% poi", "quantity": "models.poi_share", "value": 0.136,
         "unit": "share of models", "source": "s", "population": "p", **fields},
        {"id": "b", "claim": "n images", "quantity": "images.n_total", "value": 10,
         "unit": "images", "source": "s", "population": "p", **fields}])
    snapshot = SimpleNamespace(manifest={"not_measurable": limits.for_crawl("models",
                                                                            "2026-02-01"),
                                         "source": {"kind": "collect"}},
                               is_synthetic=False, label="a 2026 crawl")
    table = compare_claims(claims, {"models.poi_share": 0.0001, "images.n_total": 5}, snapshot)
    poi, total = table.to_dict("records")
    assert pd.isna(poi["this_run"]) and poi["verdict"].startswith(limits.NOT_MEASURABLE)
    assert total["this_run"] == 5 and not total["verdict"].startswith(limits.NOT_MEASURABLE)


def test_importers_record_the_limit(tmp_path, monkeypatch):
    item = {"id": 1, "name": "m", "type": "LORA", "poi": False, "nsfw": False,
            "creator": {"username": "x"}, "tags": [], "stats": {},
            "modelVersions": [{"id": 2, "createdAt": "2025-07-01T00:00:00Z", "images": []}]}
    path = tmp_path / "m.jsonl"
    path.write_text(json.dumps(item) + "\n", encoding="utf-8")
    manifest = import_models_jsonl(path, tmp_path / "snap", hasher=HASH).manifest
    assert "real_person_share_of_models" in manifest["not_measurable"]
    item["modelVersions"][0]["createdAt"] = "2023-01-01T00:00:00Z"
    path.write_text(json.dumps(item) + "\n", encoding="utf-8")
    manifest = import_models_jsonl(path, tmp_path / "snap2", hasher=HASH).manifest
    assert manifest["not_measurable"] == {}
    assert "crawl date is not in the data" in manifest["not_measurable_note"]


def test_notebook_02_prints_not_measurable(small_sample, tmp_path):
    from civitai_study.paths import NOTEBOOKS_DIR
    from civitai_study.runner import execute_one

    snap = tmp_path / "post"
    shutil.copytree(small_sample, snap)
    manifest = json.loads((snap / "manifest.json").read_text(encoding="utf-8"))
    manifest["not_measurable"] = limits.for_crawl("models", "2026-01-02")
    write_manifest(snap, manifest)
    executed = tmp_path / "02.ipynb"
    execute_one(NOTEBOOKS_DIR / "02_descriptive_statistics.ipynb", executed,
                {"data_dir": str(snap), "out_dir": str(tmp_path / "out")}, progress=False)
    text = executed.read_text(encoding="utf-8")
    assert f"real-person share of models: {limits.NOT_MEASURABLE}" in text
    assert f"real-person shares by group: {limits.NOT_MEASURABLE}" in text
