"""The coder: word boundaries, fields kept apart, exact counts on a hand-built snapshot."""

from __future__ import annotations

import gzip
import json
import time
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from civitai_study.cli import main
from civitai_study.coding.codebook import load_codebook
from civitai_study.coding.coder import code_snapshot
from civitai_study.coding.matcher import Matcher
from civitai_study.snapshot import write_snapshot

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "civitai-samples"
PREVIEWS = SHARED / "images" / "dfanr_v1_model_preview_images_2023-07-04.jsonl.gz"


@pytest.fixture(scope="module")
def book():
    return load_codebook()


@pytest.fixture(scope="module")
def matcher(book):
    return Matcher(book)


def terms(matcher, text):
    return {t for _, t in matcher.code_text(text)}


@pytest.mark.parametrize("text", ["woman", "a woman reading manga", "mango, human, germany",
                                  "<lora:man_style:0.8>", "manly", "woman_on_beach"])
def test_man_never_matches_inside_other_words(matcher, text):
    assert "man" not in terms(matcher, text)


@pytest.mark.parametrize("text", ["man", "a man, city", "(man:1.2)", "old_man", "MAN", "men"])
def test_man_matches_as_a_word(matcher, text):
    assert "man" in terms(matcher, text)


def test_multi_word_terms_stay_within_a_phrase(matcher):
    assert "large breasts" not in terms(matcher, "large, breasts")
    assert "large breasts" in terms(matcher, "(large_breasts:1.3)")


def test_variants_and_pony_tags(matcher):
    found = terms(matcher, "score_9, score_8_up, source_anime, rating_explicit, masterpeice")
    assert {"score 9", "score 8 up", "source anime", "rating explicit", "masterpiece"} <= found


def test_pattern_rules(matcher):
    assert "photo of <Name>" in terms(matcher, "photo of Ana Example, smiling")
    assert "photo of <Name>" not in terms(matcher, "photo of a woman")
    assert "age under 18" in terms(matcher, "15yo, portrait")
    assert "age under 18" not in terms(matcher, "25 years old")


def _ts(text):
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture(scope="module")
def hand_snapshot(tmp_path_factory):
    images = pa.table({
        "id": [1, 2, 3, 4, 5],
        "created_at": [_ts("2023-01-15"), _ts("2023-01-20"), _ts("2023-02-03"),
                       _ts("2023-02-10"), _ts("2023-02-11")],
        "nsfw_level": [1, 8, 16, 1, 2],
        "prompt": ["1girl, solo, woman reading manga",
                   "(masterpiece:1.2), large breasts, nsfw, <lora:man_x:0.8>",
                   "score_9, score_8_up, source_anime, rating_explicit, 1girl, sex",
                   None, "photo of Ana Example, celebrity, man"],
        "negative_prompt": ["loli, worst quality", None, "man", "bad hands", ""],
        "base_model": ["SD 1.5"] * 5, "username_hash": ["u"] * 5, "post_id": [1] * 5,
        "like_count": [0] * 5, "heart_count": [0] * 5, "laugh_count": [0] * 5,
        "cry_count": [0] * 5, "comment_count": [0] * 5, "width": [512] * 5,
        "height": [512] * 5, "source": ["test"] * 5,
    })
    models = pa.table({
        "id": [1, 2], "name": ["Celebrity Lookalike LoRA", "Anime Style"],
        "type": ["LORA", "Checkpoint"], "nsfw": [False, True], "nsfw_level": [None, None],
        "poi": [True, False], "creator_hash": ["c", "d"],
        "created_at": [_ts("2023-01-05"), _ts("2023-02-01")], "download_count": [1, 2],
    })
    versions = pa.table({
        "id": [10, 11], "model_id": [1, 2], "base_model": ["SD 1.5", "SD 1.5"],
        "created_at": [_ts("2023-01-05"), _ts("2023-02-01")],
        "trained_words": pa.array([["ana example", "1girl"], []], pa.list_(pa.string())),
        "nsfw_level": [None, None],
    })
    tags = pa.table({"model_id": [1, 1, 2, 2], "tag": ["celebrity", "woman", "anime", "hentai"]})
    root = tmp_path_factory.mktemp("hand") / "snap"
    return write_snapshot(root, {"images": images, "models": models, "model_versions": versions,
                                 "model_tags": tags}, {"synthetic": True})


@pytest.fixture(scope="module")
def coded(hand_snapshot, book):
    return code_snapshot(hand_snapshot, book, batch_rows=2)  # tiny batches: streaming path


def test_term_counts_equal_hand_counts(coded):
    counts = coded.term_counts(include_zero=False)
    got = {(r.field, r.term): r.n_documents for r in counts.itertuples()}
    expected = {
        ("prompt", "1girl"): 2, ("prompt", "solo"): 1, ("prompt", "woman"): 1,
        ("prompt", "masterpiece"): 1, ("prompt", "large breasts"): 1,
        ("prompt", "nsfw"): 1, ("prompt", "score 9"): 1, ("prompt", "score 8 up"): 1,
        ("prompt", "source anime"): 1, ("prompt", "rating explicit"): 1, ("prompt", "sex"): 1,
        ("prompt", "photo of"): 1, ("prompt", "photo of <Name>"): 1, ("prompt", "celebrity"): 1,
        ("prompt", "man"): 1,
        ("negative_prompt", "loli"): 1, ("negative_prompt", "worst quality"): 1,
        ("negative_prompt", "man"): 1, ("negative_prompt", "bad hands"): 1,
        ("model_name", "celebrity"): 1, ("model_name", "lookalike"): 1,
        ("model_tags", "celebrity"): 1, ("model_tags", "woman"): 1, ("model_tags", "hentai"): 1,
        ("trained_words", "1girl"): 1,
    }
    assert got == expected


def test_negative_prompts_kept_apart(coded):
    totals = coded.category_totals().set_index(["field", "category"])
    assert totals.loc[("prompt", "age"), "n_documents"] == 0
    assert totals.loc[("negative_prompt", "age"), "n_documents"] == 1


def test_documents_without_text_are_counted(coded):
    fields = coded.fields_summary().set_index("field")
    assert fields.loc["prompt", "n_empty"] == 1
    assert fields.loc["negative_prompt", "n_empty"] == 2
    assert fields.loc["trained_words", "n_empty"] == 1
    assert fields.loc["prompt", "n_with_adapter"] == 1


def test_monthly_shares_equal_hand_counts(coded):
    table = coded.categories_by_month()
    prompt = table[table["field"] == "prompt"].set_index(["month", "category"])
    assert prompt.loc[("2023-01", "booru"), "n_total"] == 2
    assert prompt.loc[("2023-01", "booru"), "n_documents"] == 1
    assert prompt.loc[("2023-01", "booru"), "share"] == pytest.approx(0.5)
    assert prompt.loc[("2023-02", "sexual_acts"), "n_documents"] == 1
    assert prompt.loc[("2023-02", "real_person"), "n_documents"] == 1
    assert prompt.loc[("2023-02", "gender"), "n_documents"] == 1
    levels = coded.categories_by_level()
    x = levels[(levels["field"] == "prompt") & (levels["nsfw_level"] == "XXX")]
    assert x.set_index("category").loc["sexual_acts", "n_documents"] == 1


def test_cooccurrence(coded):
    co = coded.cooccurrence("prompt").set_index(["category_a", "category_b"])
    assert co.loc[("booru", "quality"), "n_documents"] == 1  # document 3
    assert co.loc[("booru", "booru"), "n_documents"] == 2


def test_flags_and_cli(hand_snapshot, tmp_path, book, capsys):
    flags = tmp_path / "flags.parquet"
    code_snapshot(hand_snapshot, book, fields=("prompt",), flags_path=flags)
    table = pd.read_parquet(flags)
    assert len(table) == 4 and set(table["field"]) == {"prompt"}
    assert main(["code", "--data", str(hand_snapshot.root), "--out", str(tmp_path)]) == 0
    terms_csv = pd.read_csv(tmp_path / "tables" / "coded_terms.csv")
    assert list(terms_csv.columns) == ["category", "term", "field", "n_documents"]
    months = pd.read_csv(tmp_path / "tables" / "coded_categories_by_month.csv")
    assert list(months.columns[:5]) == ["month", "category", "field", "n_documents", "share"]


def _real_prompts(path: Path) -> tuple[list, list]:
    prompts, negatives = [], []
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        for line in handle:
            meta = json.loads(line).get("meta") or {}
            prompts.append(meta.get("prompt") if isinstance(meta.get("prompt"), str) else None)
            neg = meta.get("negativePrompt")
            negatives.append(neg if isinstance(neg, str) else None)
    return prompts, negatives


def test_real_2023_preview_prompts_are_coded(matcher):
    if not PREVIEWS.is_file():
        pytest.skip(f"real 2023 preview images not found at {PREVIEWS} (../shared is absent)")
    start = time.perf_counter()
    prompts, negatives = _real_prompts(PREVIEWS)
    for texts in (prompts, negatives):
        n_coded = 0
        for i in range(0, len(texts), 50_000):
            chunk = pa.array(texts[i:i + 50_000], type=pa.string())
            hits = matcher.match(chunk)
            assert hits.n_docs == len(chunk)
            n_coded += int(hits.nonempty.sum())
        assert n_coded == sum(1 for t in texts if t)
    flags = matcher.category_flags(matcher.match(pa.array(prompts[:20_000], type=pa.string())))
    assert flags[:, matcher.categories.index("booru")].mean() > 0.2
    assert time.perf_counter() - start < 40
