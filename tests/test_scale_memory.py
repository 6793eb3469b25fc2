"""Bounded memory at scale: DuckDB limits, the disk-backed duplicate check, the BlurHash sample."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest

from civitai_study import duck
from civitai_study.figures.tables import blurhash_sample
from civitai_study.importers.parse import parse_image
from civitai_study.importers.sink import Sink
from civitai_study.pseudonymise import Pseudonymiser
from civitai_study.snapshot import load_snapshot


@pytest.fixture()
def small_snap(small_sample):
    return load_snapshot(small_sample)


def test_connections_get_a_memory_limit_and_a_spill_folder(monkeypatch, tmp_path):
    monkeypatch.setenv(duck.MEMORY_ENV, "300MB")
    monkeypatch.setenv(duck.TEMP_ENV, str(tmp_path / "spill"))
    con = duck.connect()
    limit = con.execute("SELECT current_setting('memory_limit')").fetchone()[0]
    temp = con.execute("SELECT current_setting('temp_directory')").fetchone()[0]
    assert limit.replace(" ", "").upper() in {"286.1MIB", "300.0MB", "286MIB", "300MB"}
    assert temp == str(tmp_path / "spill")
    assert (tmp_path / "spill").is_dir()
    assert con.execute("SELECT current_setting('TimeZone')").fetchone()[0] == "UTC"
    # freed memory goes back to the system between queries (the kernel's next step needs it)
    assert con.execute("SELECT current_setting('allocator_background_threads')").fetchone()[0]


def test_a_bad_memory_limit_names_the_fix(monkeypatch):
    monkeypatch.setenv(duck.MEMORY_ENV, "lots")
    with pytest.raises(ValueError, match="not a size.*2GB"):
        duck.connect()


def test_snapshot_connections_are_bounded(small_snap, monkeypatch):
    monkeypatch.setenv(duck.MEMORY_ENV, "512MB")
    con = small_snap.connect()
    limit = con.execute("SELECT current_setting('memory_limit')").fetchone()[0]
    assert limit.replace(" ", "").upper() in {"488.2MIB", "512.0MB", "488MIB", "512MB"}


def _image(i: int) -> dict:
    return parse_image({"id": i, "createdAt": "2024-01-02T03:04:05Z", "nsfwLevel": 1,
                        "username": "someone"}, Pseudonymiser(b"k" * 32))


def test_duplicates_against_written_parts_are_found_on_disk(tmp_path):
    sink = Sink(tmp_path, Pseudonymiser(b"k" * 32))
    for i in (1, 2, 3, 2):  # 2 repeated within the batch
        sink.add_image(_image(i))
    assert sink.duplicates["images"] == 1
    sink.flush(0)
    assert sink.seen["images"] == set(), "ids of written parts are not kept in memory"
    for i in (3, 4, 1, 5):  # 1 and 3 are already on disk
        assert sink.add_image(_image(i))
    sink.flush(1)
    assert sink.duplicates["images"] == 3
    assert sink.late_duplicates["images"] == 2
    assert sink.accepted["images"] == 5
    ids = sorted(i for p in sorted((tmp_path / "images").glob("*.parquet"))
                 for i in pq.read_table(p).column("id").to_pylist())
    assert ids == [1, 2, 3, 4, 5]


def test_blurhash_sample_matches_the_full_window(small_snap):
    """The bounded top-N aggregate picks exactly the rows a window over every row picks."""
    con = small_snap.connect()
    fast = blurhash_sample(con, per_level=8, seed=7)
    slow = con.execute("""
        SELECT nsfw_level, blurhash, width, height FROM (
          SELECT CAST(nsfw_level AS INTEGER) AS nsfw_level, blurhash, width, height,
                 row_number() OVER (PARTITION BY nsfw_level ORDER BY hash(id + 7), id) AS r
          FROM images WHERE blurhash IS NOT NULL AND nsfw_level IN (1, 2, 4, 8, 16))
        WHERE r <= 8 ORDER BY nsfw_level, r""").df()
    assert fast.equals(slow)
    assert len(fast) == 40
