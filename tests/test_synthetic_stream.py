"""The streaming generator: bounded-memory parts, byte-identical per seed, distinct prompts."""

from __future__ import annotations

import pyarrow.parquet as pq

from civitai_study.synthetic import SampleConfig
from civitai_study.synthetic_stream import write_large_sample


def test_same_seed_same_bytes_in_parts_of_the_asked_size(tmp_path):
    config = SampleConfig(n_images=20_000, n_models=300, seed=11)
    a = write_large_sample(tmp_path / "a", config, part_rows=8_000)
    b = write_large_sample(tmp_path / "b", config, part_rows=8_000)
    assert a.manifest["files"] == b.manifest["files"]
    parts = a.files["images"]
    assert [pq.ParquetFile(p).metadata.num_rows for p in parts] == [8_000, 8_000, 4_000]
    assert a.manifest["counts"]["images"] == 20_000
    assert a.is_synthetic and "SYNTHETIC" in a.label
    other = write_large_sample(tmp_path / "c", SampleConfig(n_images=20_000, n_models=300,
                                                            seed=12), part_rows=8_000)
    assert other.manifest["files"] != a.manifest["files"]


def test_prompts_are_distinct_and_rows_in_time_order(tmp_path):
    snap = write_large_sample(tmp_path / "s", SampleConfig(n_images=20_000, n_models=300),
                              part_rows=8_000)
    con = snap.connect()
    n, distinct, with_prompt, ordered, ids_unique = con.execute("""
        SELECT count(*), count(DISTINCT prompt), count(prompt),
               bool_and(created_at >= prev), count(DISTINCT id) = count(*)
        FROM (SELECT *, lag(created_at, 1, created_at) OVER (ORDER BY id) AS prev
              FROM images)""").fetchone()
    assert n == 20_000 and ordered and ids_unique
    assert distinct > 0.99 * with_prompt > 0.85 * n


def test_an_existing_identical_snapshot_is_kept(tmp_path):
    config = SampleConfig(n_images=5_000, n_models=200)
    first = write_large_sample(tmp_path / "s", config, part_rows=4_000)
    stamp = first.files["images"][0].stat().st_mtime_ns
    write_large_sample(tmp_path / "s", config, part_rows=4_000)
    assert first.files["images"][0].stat().st_mtime_ns == stamp


def test_sample_stream_on_the_command_line(tmp_path):
    from civitai_study.cli import main

    assert main(["sample", "--out", str(tmp_path / "s"), "--images", "5000", "--models", "200",
                 "--stream"]) == 0
    assert sorted(p.name for p in (tmp_path / "s" / "images").iterdir()) == ["part-000000.parquet"]
    assert not (tmp_path / "s.partial").exists()
