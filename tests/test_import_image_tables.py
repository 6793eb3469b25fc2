"""civ40k and civiverse importers on small local files in the published column layouts."""

from __future__ import annotations

import pandas as pd
import pytest

from civitai_study.cli import main
from civitai_study.importers.image_tables import import_image_table
from civitai_study.pseudonymise import Pseudonymiser
from civitai_study.snapshot import load_snapshot

HASH = Pseudonymiser(b"test key")


def civ40k_frame() -> pd.DataFrame:
    """Columns as on the Civ-40K card (../shared/docs/study.md), invented values."""
    return pd.DataFrame({
        "id": [11, 12, 13, 13, 14],
        "createdAt": ["2022-11-16 23:48:47.429000+00:00", "2023-05-01T10:00:00Z",
                      "2024-03-20T00:00:00Z", "2024-03-20T00:00:00Z", "never"],
        "url": ["https://image.civitai.com/x/a/width=450/11.jpeg"] * 5,
        "positivePrompt": ["a, b", None, "c", "c", "d"],
        "negativePrompt": ["n", "n", None, None, "n"],
        "nsfw": [False, True, True, True, False],
        "browsingLevel": [1, 4, 16, 16, 1],
        "statsSummary": ['{"likeCount": 3, "heartCount": 1}', "{'likeCount': 5}", None, None,
                         None],
        "usernameHash": ["abc123", "def456", "abc123", "abc123", "zzz"],
    })


def test_civ40k_parquet(tmp_path):
    src = tmp_path / "civ40k.parquet"
    civ40k_frame().to_parquet(src)
    snap = import_image_table("civ40k", src, tmp_path / "snap", hasher=HASH)
    assert snap.manifest["counts"]["images"] == 3
    assert snap.manifest["duplicates_dropped"] == {"images": 1}
    assert snap.manifest["quarantine"]["by_reason"] == {"bad_created_at": 1}
    assert snap.manifest["snapshot_date"] == "2024-03-20"
    # a small civ40k import is the Civ-40K subset, never the Civ-40M collection (claims match it)
    assert snap.manifest["source"]["dataset"] == "Civ-40K"
    rows = snap.connect().execute(
        "SELECT id, nsfw_level, like_count, heart_count, username_hash, source FROM images "
        "ORDER BY id").fetchall()
    assert rows == [(11, 1, 3, 1, HASH("abc123"), "civ40k"), (12, 4, 5, None, HASH("def456"),
                    "civ40k"), (13, 16, None, None, HASH("abc123"), "civ40k")]


def test_civiverse_csv_folder_via_cli(tmp_path, monkeypatch):
    monkeypatch.setenv("CIVITAI_STUDY_HASH_KEY", "test key")
    folder = tmp_path / "civiverse"
    folder.mkdir()
    frame = pd.DataFrame({
        "createdAt": ["2023-10-02T00:00:00.000Z", "2024-04-30T23:59:59.000Z",
                      "2024-01-01T00:00:00Z"],
        "url": ["https://image.civitai.com/x/u1/width=512/101.jpeg",
                "https://image.civitai.com/x/u2/original=true/102.png",
                "https://image.civitai.com/x/u3/no-id-here.jpeg"],
        "positivePrompt": ["score_9, a\nmultiline prompt", "b", "c"],
        "negativePrompt": ["", "x", "y"],
        "nsfw": [True, False, True],
        "nsfwLevel": ["Mature", "None", "X"],
        "browsingLevel": [None, 1, 8],
        "likeCount": [4, 0, 1],
        "username": ["h1", "h2", "h3"],
        "Model": ["ponyDiffusionV6XL", "sdxl", "sd15"],
        "Meta": ['{"seed": 12859270413054550000, "prompt": "ignored"}', None, None],
        "Resource1": ["lora:1", None, None],
    })
    frame.iloc[:2].to_csv(folder / "part1.csv", index=False)
    frame.iloc[2:].to_csv(folder / "part2.csv", index=False)
    out = tmp_path / "snap"
    assert main(["import", "civiverse", str(folder), "--out", str(out)]) == 0
    snap = load_snapshot(out, verify_checksums=True)
    rows = snap.connect().execute("SELECT id, nsfw_level, like_count, prompt FROM images "
                                  "ORDER BY id").fetchall()
    assert rows == [(101, 4, 4, "score_9, a\nmultiline prompt"), (102, 1, 0, "b")]
    assert snap.manifest["quarantine"]["by_reason"] == {"missing_id": 1}
    assert snap.manifest["source"]["importer"] == "civiverse"
    assert snap.manifest["source"]["dataset"] == "Civiverse-6M"
    assert snap.manifest["counts"]["models"] == 0  # image-only dataset, tables still valid


def test_missing_input_is_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="no Civiverse-6M"):
        import_image_table("civiverse", tmp_path / "nothing", tmp_path / "snap", hasher=HASH)


def test_hf_name_downloads_through_huggingface_hub(tmp_path, monkeypatch):
    """``hf:OWNER/NAME`` goes through huggingface_hub (stubbed here: tests stay offline)."""
    import huggingface_hub

    folder = tmp_path / "hub"
    folder.mkdir()
    civ40k_frame().to_parquet(folder / "part.parquet")
    calls = {}

    def fake_download(**kwargs):
        calls.update(kwargs)
        return str(folder)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_download)
    monkeypatch.setenv("HF_TOKEN", "hf-secret-token")
    snap = import_image_table("civ40k", "hf:pm-paper-datasets/Civ-40K", tmp_path / "snap",
                              hasher=HASH)
    assert calls["repo_id"] == "pm-paper-datasets/Civ-40K" and calls["repo_type"] == "dataset"
    assert calls["token"] == "hf-secret-token"
    assert snap.manifest["counts"]["images"] == 3
    assert "hf-secret-token" not in (tmp_path / "snap" / "manifest.json").read_text()


def test_unreadable_stats_cells_are_counted_not_silent(tmp_path):
    frame = civ40k_frame()
    frame["statsSummary"] = ["not a mapping", '{"likeCount": 3}', None, None, "[1, 2]"]
    frame.loc[4, "createdAt"] = "2024-04-01T00:00:00Z"
    src = tmp_path / "civ40k.parquet"
    frame.to_parquet(src)
    snap = import_image_table("civ40k", src, tmp_path / "snap", hasher=HASH)
    assert snap.manifest["source"]["unreadable_cells"] == {"statsSummary": 2}
    assert snap.manifest["counts"]["images"] == 4  # rows are kept
