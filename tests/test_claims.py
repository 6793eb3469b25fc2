"""The claims file is valid and comparability follows the population, not the number."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from civitai_study import claims
from civitai_study.snapshot import write_snapshot


def _snapshot(path, source: dict, synthetic: bool = False):
    rng = np.random.default_rng(1)
    n = 20
    images = pa.table({
        "id": np.arange(n), "created_at": pa.array(
            np.datetime64("2023-01-05", "us").astype(np.int64) + np.arange(n) * 10**9,
            type=pa.timestamp("us", tz="UTC")),
        "nsfw_level": rng.choice([1, 2], n).astype(np.int16), "prompt": ["p"] * n,
        "negative_prompt": ["n"] * n, "base_model": ["SD 1.5"] * n, "username_hash": ["u"] * n,
        "post_id": np.ones(n), "like_count": np.ones(n), "heart_count": np.ones(n),
        "laugh_count": np.ones(n), "cry_count": np.ones(n), "comment_count": np.ones(n),
        "width": np.ones(n), "height": np.ones(n), "source": ["t"] * n})
    models = pa.table({"id": [1, 2], "name": ["a", "b"], "type": ["LORA"] * 2,
                       "nsfw": [True, False], "nsfw_level": pa.nulls(2, pa.int16()),
                       "poi": [True, False], "creator_hash": ["c", "c"],
                       "created_at": images.column("created_at")[:2],
                       "download_count": [5, 7]})
    versions = pa.table({"id": [9], "model_id": [1], "base_model": ["SD 1.5"],
                         "created_at": images.column("created_at")[:1],
                         "trained_words": pa.array([["x"]]), "nsfw_level": pa.nulls(1, pa.int16())})
    tags = pa.table({"model_id": [1, 1, 2], "tag": ["celebrity", "woman", "Woman"]})
    return write_snapshot(path, {"images": images, "models": models, "model_versions": versions,
                                 "model_tags": tags}, {"source": source, "synthetic": synthetic})


_JSONL_SOURCE = {"kind": "import", "importer": "models-jsonl",
                 "name": "/api/v1/models items from dfanr_v1_models_2023-07-04.jsonl.gz",
                 "input": {"name": "dfanr_v1_models_2023-07-04.jsonl.gz"}}


def test_repository_claims_file_is_valid():
    table = claims.load_claims()
    assert table["id"].is_unique
    assert table["source"].notna().all() and table["population"].notna().all()


def test_verdicts_follow_population(tmp_path):
    table = claims.load_claims()
    same = _snapshot(tmp_path / "a", _JSONL_SOURCE)
    est = claims.run_estimates(same.connect(), list(table["quantity"]))
    assert est["models.tag_count[woman]"] == 2 and est["models.n_poi"] == 1
    out = claims.compare_claims(table, est, same).set_index("id")
    assert out.loc["crawl2023-poi", "verdict"] == "comparable"
    assert out.loc["wei-deepfakes", "verdict"].startswith("not comparable")
    assert out.loc["ghosh-bounties", "verdict"].startswith("no estimate")
    synthetic = _snapshot(tmp_path / "b", {**_JSONL_SOURCE, "kind": "synthetic"},
                          synthetic=True)
    out = claims.compare_claims(table, est, synthetic).set_index("id")
    assert out.loc["crawl2023-poi", "verdict"].startswith("not comparable")


def test_bad_claims_file_names_the_problem(tmp_path):
    bad = tmp_path / "claims.yaml"
    bad.write_text("- id: x\n  claim: y\n", encoding="utf-8")
    with pytest.raises(claims.ClaimsError, match="entry 1 lacks"):
        claims.load_claims(bad)


def test_format_value():
    assert claims.format_value(0.1363, "share of models") == "13.6%"
    assert claims.format_value(17982.0) == "17,982"
    assert claims.format_value(None) == "-"


def test_null_fields_never_make_a_claim_comparable(tmp_path):
    """A YAML null importer (no importer reads the claim's data) never makes a claim comparable."""
    table = claims.load_claims()
    snap = _snapshot(tmp_path / "a", {"kind": "import", "importer": "civ40k",
                                      "name": "Civ-40K / Civ-40M (pm-paper-datasets)",
                                      "records_read": 20})
    est = claims.run_estimates(snap.connect(), list(table["quantity"]))
    out = claims.compare_claims(table, est, snap).set_index("id")
    for claim_id in table[table["importer"].isna()]["id"]:
        assert not out.loc[claim_id, "verdict"].startswith("comparable"), claim_id


def test_civ40k_import_is_never_comparable_to_a_civ40m_claim(tmp_path):
    """The civ40k importer's display name contains "Civ-40M"; the verdict must not care."""
    table = claims.load_claims()
    for source in ({"kind": "import", "importer": "civ40k", "dataset": "Civ-40K",
                    "name": "Civ-40K / Civ-40M (pm-paper-datasets) Civ-40M", "records_read": 20},
                   {"kind": "import", "importer": "civ40k", "records_read": 20,
                    "name": "Civ-40K / Civ-40M (pm-paper-datasets)"}):
        snap = _snapshot(tmp_path / source.get("dataset", "old"), source)
        assert claims.snapshot_origin(snap) == {"importer": "civ40k", "dataset": "Civ-40K"}
        est = claims.run_estimates(snap.connect(), list(table["quantity"]),
                                   {"images.nsfw_or_per_year": 2.0, "images.growth_ratio": 3.0})
        out = claims.compare_claims(table, est, snap).set_index("id")
        civ40m = table.loc[table["dataset"] == "Civ-40M", "id"]
        assert {"paper-images", "paper-finding-1", "paper-finding-1b"} <= set(civ40m)
        for claim_id in civ40m:
            verdict = out.loc[claim_id, "verdict"]
            assert verdict == "not comparable (dataset differs: Civ-40M vs Civ-40K)", verdict


def test_verdict_checks_definition_denominator_and_unit(tmp_path):
    """Same importer and dataset are not enough: definition, denominator and unit must match."""
    table = claims.load_claims().set_index("id")
    snap = _snapshot(tmp_path / "a", {"kind": "import", "importer": "civ40k",
                                      "dataset": "Civ-40M", "name": "x"})
    est = {"images.nsfw_or_per_year": 2.0, "images.n_total": 20.0}
    base = table.loc[["paper-finding-1", "paper-images"]].reset_index()
    out = claims.compare_claims(base, est, snap).set_index("id")
    assert out.loc["paper-finding-1", "verdict"] == "comparable (qualitative claim)"
    assert out.loc["paper-images", "verdict"] == "comparable"
    out = claims.compare_claims(base, est, snap, definition="r_plus").set_index("id")
    assert out.loc["paper-finding-1", "verdict"] == (
        "not comparable (nsfw definition differs: above_pg vs r_plus)")
    for field, value, words in (("denominator", "all images", "denominator differs"),
                                ("counted_unit", "model versions", "counted unit differs")):
        changed = base.copy()
        changed.loc[changed["id"] == "paper-finding-1", field] = value
        out = claims.compare_claims(changed, est, snap).set_index("id")
        assert out.loc["paper-finding-1", "verdict"].startswith(f"not comparable ({words}")


def test_every_claim_has_the_comparability_fields():
    raw = claims.yaml.safe_load(claims.CLAIMS_YAML.read_text(encoding="utf-8"))
    for entry in raw:
        assert set(claims.MATCH_FIELDS) <= set(entry), entry["id"]
        assert "comparable_when" not in entry, entry["id"]
        base = entry["quantity"].split("[")[0]
        assert base in claims.ESTIMATE_PROPERTIES or base == "bounties.nsfw_share", base


def test_overall_nsfw_share_uses_dated_images_on_both_sides(tmp_path):
    import pyarrow.parquet as pq

    snap = _snapshot(tmp_path / "a", {"kind": "import", "name": "x"})
    path = tmp_path / "a" / "images.parquet"
    data = pq.read_table(path)
    level = pa.array([2, 2, 1, 2] + [2] * 16, pa.int16())
    created = data.column("created_at").to_pylist()
    created[0] = created[1] = None  # two undated NSFW images
    data = data.set_column(data.schema.get_field_index("nsfw_level"), "nsfw_level", level)
    data = data.set_column(data.schema.get_field_index("created_at"), "created_at",
                           pa.array(created, pa.timestamp("us", tz="UTC")))
    pq.write_table(data, path)
    est = claims.run_estimates(snap.connect(), ["images.nsfw_share"])
    assert est["images.nsfw_share"] == pytest.approx(17 / 18)
