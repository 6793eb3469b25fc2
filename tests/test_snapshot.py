import json
import shutil

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from civitai_study.schema import TABLES, arrow_schema, conform
from civitai_study.snapshot import SnapshotError, load_snapshot, write_snapshot


def _minimal_tables():
    images = pa.table({
        "id": [1, 2], "created_at": pa.array([0, 86_400_000_000], pa.timestamp("us", tz="UTC")),
        "nsfw_level": pa.array([1, 8], pa.int16()), "prompt": ["a", None],
        "negative_prompt": [None, "b"], "base_model": ["SD 1.5", "SDXL 1.0"],
        "username_hash": ["h1", "h2"], "post_id": [10, 11], "like_count": [0, 1],
        "heart_count": [0, 0], "laugh_count": [0, 0], "cry_count": [0, 0],
        "comment_count": [0, 0], "width": pa.array([512, 512], pa.int32()),
        "height": pa.array([768, 768], pa.int32()), "source": ["test", "test"],
    })
    models = pa.table({
        "id": [5], "name": ["m"], "type": ["LORA"], "nsfw": [False],
        "nsfw_level": pa.array([1], pa.int16()), "poi": [True], "creator_hash": ["c"],
        "created_at": pa.array([0], pa.timestamp("us", tz="UTC")), "download_count": [3],
    })
    versions = pa.table({
        "id": [50], "model_id": [5], "base_model": ["SD 1.5"],
        "created_at": pa.array([0], pa.timestamp("us", tz="UTC")),
        "trained_words": pa.array([["w"]], pa.list_(pa.string())),
        "nsfw_level": pa.array([1], pa.int16()),
    })
    tags = pa.table({"model_id": [5, 5], "tag": ["celebrity", "woman"]})
    return {"images": images, "models": models, "model_versions": versions, "model_tags": tags}


def test_roundtrip_counts_and_checksums(tmp_path):
    snap = write_snapshot(tmp_path / "s", _minimal_tables(), {"source": {"kind": "test"}})
    assert snap.manifest["counts"] == {"images": 2, "models": 1, "model_versions": 1,
                                       "model_tags": 2}
    assert set(snap.manifest["files"]) == {f"{t}.parquet" for t in TABLES}
    load_snapshot(tmp_path / "s", verify_checksums=True)
    con = snap.connect()
    assert con.execute("SELECT count(*) FROM images WHERE nsfw_level = 8").fetchone()[0] == 1


def test_optional_columns_are_filled_with_nulls(tmp_path):
    snap = write_snapshot(tmp_path / "s", _minimal_tables(), {"source": {"kind": "test"}})
    table = snap.read_table("images")
    assert table.schema == arrow_schema("images")
    assert table.column("blurhash").null_count == 2


def test_missing_table_is_named(tmp_path):
    write_snapshot(tmp_path / "s", _minimal_tables(), {"source": {"kind": "test"}})
    (tmp_path / "s" / "model_tags.parquet").unlink()
    with pytest.raises(SnapshotError, match="model_tags"):
        load_snapshot(tmp_path / "s")


def test_missing_column_is_named(tmp_path):
    write_snapshot(tmp_path / "s", _minimal_tables(), {"source": {"kind": "test"}})
    path = tmp_path / "s" / "models.parquet"
    pq.write_table(pq.read_table(path).drop(["poi"]), path)
    with pytest.raises(SnapshotError, match=r"'poi'"):
        load_snapshot(tmp_path / "s")


def test_wrong_type_is_named(tmp_path):
    write_snapshot(tmp_path / "s", _minimal_tables(), {"source": {"kind": "test"}})
    path = tmp_path / "s" / "images.parquet"
    table = pq.read_table(path)
    idx = table.schema.get_field_index("nsfw_level")
    table = table.set_column(idx, "nsfw_level", pa.array(["PG", "X"]))
    pq.write_table(table, path)
    with pytest.raises(SnapshotError, match=r"images\.nsfw_level.*string"):
        load_snapshot(tmp_path / "s")


def test_checksum_mismatch_detected(tmp_path):
    write_snapshot(tmp_path / "s", _minimal_tables(), {"source": {"kind": "test"}})
    path = tmp_path / "s" / "model_tags.parquet"
    pq.write_table(pa.table({"model_id": [5], "tag": ["x"]}), path)
    with pytest.raises(SnapshotError, match="sha256"):
        load_snapshot(tmp_path / "s", verify_checksums=True)


def test_parts_directory_layout(tmp_path):
    write_snapshot(tmp_path / "s", _minimal_tables(), {"source": {"kind": "test"}})
    parts = tmp_path / "s" / "images"
    parts.mkdir()
    shutil.move(str(tmp_path / "s" / "images.parquet"), parts / "part-00000.parquet")
    again = load_snapshot(tmp_path / "s")
    assert again.files["images"] == [parts / "part-00000.parquet"]
    assert again.connect().execute("SELECT count(*) FROM images").fetchone()[0] == 2


def test_not_a_snapshot(tmp_path):
    with pytest.raises(SnapshotError, match="civitai-study sample"):
        load_snapshot(tmp_path / "absent")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SnapshotError, match="manifest.json"):
        load_snapshot(tmp_path / "empty")
    (tmp_path / "empty" / "manifest.json").write_text(json.dumps({"schema_version": 99}))
    with pytest.raises(SnapshotError, match="schema_version"):
        load_snapshot(tmp_path / "empty")


def test_conform_rejects_missing_required():
    with pytest.raises(ValueError, match="'tag'"):
        conform("model_tags", pa.table({"model_id": [1]}))


def test_corrupt_parquet_is_a_snapshot_error(tmp_path):
    write_snapshot(tmp_path / "s", _minimal_tables(), {"source": {"kind": "test"}})
    (tmp_path / "s" / "models.parquet").write_bytes(b"not parquet")
    with pytest.raises(SnapshotError, match="models.parquet is not a readable Parquet file"):
        load_snapshot(tmp_path / "s")
