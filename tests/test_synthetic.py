import hashlib

import numpy as np
import pytest

from civitai_study.nsfw import NSFW_DEFINITIONS
from civitai_study.snapshot import load_snapshot
from civitai_study.synthetic import (
    SampleConfig,
    fit_nsfw_trend,
    load_calibration,
    months_between,
    write_sample,
)


def _digests(root):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.glob("*")) if p.is_file()}


def test_same_seed_gives_identical_files(tmp_path):
    cfg = SampleConfig(n_images=3000, n_models=300, seed=11)
    write_sample(tmp_path / "a", cfg)
    write_sample(tmp_path / "b", cfg)
    assert _digests(tmp_path / "a") == _digests(tmp_path / "b")
    write_sample(tmp_path / "c", SampleConfig(n_images=3000, n_models=300, seed=12))
    assert _digests(tmp_path / "a") != _digests(tmp_path / "c")


def test_sample_is_labelled_synthetic_and_records_truth(small_sample):
    snap = load_snapshot(small_sample, verify_checksums=True)
    assert snap.is_synthetic
    assert "SYNTHETIC" in snap.label and "SYNTHETIC" in snap.describe()
    truth = snap.manifest["truth"]["nsfw_above_pg_logit"]
    assert truth["slope_per_year"] > 0 and truth["time_origin"] == "2022-11"
    assert snap.manifest["counts"]["images"] == 4000
    assert snap.manifest["counts"]["models"] == 400


def test_window_levels_and_columns(small_sample):
    con = load_snapshot(small_sample).connect()
    lo, hi = con.execute("SELECT min(created_at), max(created_at) FROM images").fetchone()
    assert str(lo)[:7] == "2022-11" and str(hi)[:7] == "2025-05"
    for table in ("models", "model_versions"):
        latest = con.execute(f"SELECT max(created_at) FROM {table}").fetchone()[0]
        assert str(latest)[:7] <= "2025-05", f"{table} dated after the snapshot window"
    levels = {r[0] for r in con.execute("SELECT DISTINCT nsfw_level FROM images").fetchall()}
    assert levels <= {0, 1, 2, 4, 8, 16}
    assert con.execute("SELECT count(*) FROM images WHERE source <> 'synthetic'").fetchone()[0] == 0
    # every model has a version and every tag belongs to a model
    assert con.execute("SELECT count(*) FROM models WHERE id NOT IN "
                       "(SELECT model_id FROM model_versions)").fetchone()[0] == 0
    assert con.execute("SELECT count(*) FROM model_tags WHERE model_id NOT IN "
                       "(SELECT id FROM models)").fetchone()[0] == 0
    # hashed names only
    assert con.execute("SELECT count(*) FROM images WHERE username_hash LIKE '%synthetic%'"
                       ).fetchone()[0] == 0


def test_nsfw_share_rises_as_calibrated(small_sample):
    con = load_snapshot(small_sample).connect()
    mask = NSFW_DEFINITIONS["above_pg"]
    flag = f"((nsfw_level & {mask}) <> 0)::int"
    early, late = con.execute(
        f"SELECT avg(CASE WHEN created_at < '2023-07-01' THEN {flag} END),"
        f" avg(CASE WHEN created_at >= '2024-11-01' THEN {flag} END) FROM images").fetchone()
    assert early < 0.5 < late


def test_calibration_fit_is_reasonable():
    b0, b1 = fit_nsfw_trend(load_calibration())
    p0 = 1 / (1 + np.exp(-b0))
    assert 0.1 < p0 < 0.4 and 0.5 < b1 < 3


def test_months_between():
    assert months_between("2022-11", "2023-02") == ["2022-11", "2022-12", "2023-01", "2023-02"]


def test_too_small_sample_is_refused(tmp_path):
    with pytest.raises(ValueError, match="at least"):
        write_sample(tmp_path / "x", SampleConfig(n_images=10, n_models=5))


def test_unchanged_sample_is_not_rewritten(tmp_path):
    cfg = SampleConfig(n_images=2000, n_models=200, seed=3)
    write_sample(tmp_path / "s", cfg)
    target = tmp_path / "s" / "images.parquet"
    before = target.stat().st_mtime_ns
    write_sample(tmp_path / "s", cfg)
    assert target.stat().st_mtime_ns == before
    write_sample(tmp_path / "s", SampleConfig(n_images=2000, n_models=200, seed=4))
    assert target.stat().st_mtime_ns != before
    # a damaged file is regenerated
    target.write_bytes(b"broken")
    snap = write_sample(tmp_path / "s", SampleConfig(n_images=2000, n_models=200, seed=4))
    assert snap.manifest["counts"]["images"] == 2000
