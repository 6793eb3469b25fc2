"""Notebook 01's entry point: acquire(source="import"|"collect") and snapshot_overview."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd
import pytest

from civitai_study.acquire import acquire, snapshot_overview

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fake_civitai import FakeCivitai, make_images  # noqa: E402


@pytest.fixture(autouse=True)
def hash_key(monkeypatch):
    monkeypatch.setenv("CIVITAI_STUDY_HASH_KEY", "test key")


def _models_file(path: Path) -> Path:
    item = {"id": 5, "name": "m", "type": "LORA", "poi": True, "nsfw": False,
            "creator": {"username": "someone"}, "tags": ["Woman"], "stats": {},
            "modelVersions": [{"id": 50, "createdAt": "2023-02-03T00:00:00Z",
                               "images": [{"id": 500, "nsfw": "Soft"}, {"nsfw": "X"}]}]}
    path.write_text(json.dumps(item) + "\n", encoding="utf-8")
    return path


def test_acquire_import_and_overview(tmp_path):
    snap = acquire("import", tmp_path / "snap", importer="models-jsonl",
                   path=_models_file(tmp_path / "m.jsonl"))
    overview = snapshot_overview(snap)
    for key in ("counts", "levels", "images_by_month_level", "quarantine", "date_range_table",
                "conditions_table"):
        assert isinstance(overview[key], pd.DataFrame), key
    counts = dict(zip(overview["counts"]["table"], overview["counts"]["rows"], strict=True))
    assert counts == {"images": 1, "models": 1, "model_versions": 1, "model_tags": 1}
    assert overview["quarantine"].to_dict("records") == [{"reason": "missing_id", "records": 1}]
    assert tuple(overview["date_range"]) == ("2023-02-03", "2023-02-03")
    fields = dict(zip(overview["conditions_table"]["field"], overview["conditions_table"]["value"],
                      strict=True))
    assert fields["source.importer"] == "models-jsonl" and fields["tool.name"] == "civitai-study"
    json.dumps(overview["conditions"])  # printable as in the notebook


def test_acquire_collect_and_overview(tmp_path):
    fake = FakeCivitai(images=make_images(300), max_limit=100)
    url = fake.start()
    try:
        snap = acquire("collect", tmp_path / "crawl", endpoint="images", base_url=url, rate=0,
                       since=None, until="2024-01-10", max_items=None)
    finally:
        fake.stop()
    overview = snapshot_overview(snap)
    fields = dict(zip(overview["conditions_table"]["field"], overview["conditions_table"]["value"],
                      strict=True))
    assert fields["source.request.params.browsingLevel"] == "31"
    assert fields["window.until"] == "2024-01-10"
    assert "collection.started_at" in fields and fields["tool.version"]
    assert overview["images_by_month_level"]["month"].tolist() == ["2024-01"]


def test_acquire_rejects_bad_options(tmp_path):
    with pytest.raises(ValueError, match="importer="):
        acquire("import", tmp_path / "x", importer="nope", path="p")
    with pytest.raises(ValueError, match="does not take"):
        acquire("collect", tmp_path / "y", endpoint="images", pages=3)


def test_acquire_options_pick_what_each_source_takes():
    from civitai_study.acquire import acquire_options

    everything = dict(seed=1, n_images=2000, n_models=None, importer="civ40k", path="p",
                      endpoint="images", since="2024-01-01", until=None, max_items=5,
                      base_url=None, rate=None)
    assert acquire_options("sample", **everything) == {"seed": 1, "n_images": 2000}
    assert acquire_options("import", **everything) == {"importer": "civ40k", "path": "p"}
    assert acquire_options("collect", **everything) == {"endpoint": "images",
                                                        "since": "2024-01-01", "max_items": 5}
    assert acquire_options("existing", **everything) == {}
    with pytest.raises(ValueError, match="unknown source"):
        acquire_options("ftp", **everything)


def test_notebook_01_imports_by_parameter(tmp_path):
    """Notebook 01 run with source="import": the snapshot is made and described."""
    from civitai_study.paths import NOTEBOOKS_DIR
    from civitai_study.runner import execute_one

    executed = tmp_path / "nb" / "01.ipynb"
    execute_one(NOTEBOOKS_DIR / "01_data_collection.ipynb", executed,
                {"source": "import", "importer": "models-jsonl",
                 "path": str(_models_file(tmp_path / "m.jsonl")),
                 "data_dir": str(tmp_path / "snap"), "out_dir": str(tmp_path / "out")},
                progress=False)
    text = executed.read_text()
    assert "models-jsonl" in text and "quarantined records: 1" in text
    counts = pd.read_csv(tmp_path / "out" / "tables" / "snapshot_counts.csv")
    assert dict(zip(counts["table"], counts["rows"], strict=True))["models"] == 1
