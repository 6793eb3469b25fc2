"""One redaction policy at every exit: terms, handles found at run time, written tables,
private researcher lists, safe mode, word clouds, calibration exclusions, the report."""

import re

import pandas as pd
import pytest

from civitai_study import calibration
from civitai_study.coding.codebook import load_codebook
from civitai_study.figures.wordclouds import term_frequencies
from civitai_study.notebook import private_folder, setup
from civitai_study.paths import ROOT
from civitai_study.redact import MASK, RedactionPolicy, build_policy
from civitai_study.snapshot import load_snapshot

HANDLE = "synthetic_creator_00003"  # an invented creator of the synthetic generator


@pytest.fixture(scope="module")
def policy(small_sample):
    return build_policy(load_snapshot(small_sample))


def test_policy_masks_codebook_slurs_and_handles_found_at_run_time(policy):
    assert {"slut", "femoid"} <= policy.terms
    assert policy.creator_hashes, "creators' pseudonyms are read from the snapshot"
    assert policy.is_handle(HANDLE) and policy.is_handle(HANDLE.upper())
    assert not policy.is_handle("masterpiece") and not policy.is_handle("8")
    frame = pd.DataFrame({"term": ["anime", "slut", HANDLE, "anime"], "n": [4, 3, 2, 1],
                          "population": ["all models", "all models", f"models by {HANDLE}",
                                         "all models"]})
    out = policy.frame(frame)
    assert out["term"].tolist() == ["anime", f"{MASK} #1", f"{MASK} #2", "anime"]
    assert out["population"].tolist()[2] == f"models by {MASK}"
    assert out["n"].tolist() == [4, 3, 2, 1]
    assert policy.text(f"a slut drawn by {HANDLE}") == f"a {MASK} drawn by {MASK}"


def test_display_can_be_turned_off_but_written_tables_stay_redacted(small_sample, tmp_path):
    ctx = setup(str(small_sample), str(tmp_path / "out"), quiet=True, redact=False)
    frame = pd.DataFrame({"term": ["slut", HANDLE, "anime"], "n": [1, 2, 3]})
    assert ctx.redaction.frame(frame)["term"].tolist() == ["slut", HANDLE, "anime"]
    path = ctx.write_table(frame, "terms.csv")
    written = path.read_text(encoding="utf-8")
    assert "slut" not in written and HANDLE not in written and "anime" in written
    assert not list(path.parent.glob(".*.tmp")), "staged file swapped into place"


def test_unredacted_lists_only_in_an_explicit_private_folder(small_sample, tmp_path):
    frame = pd.DataFrame({"term": ["slut"], "n": [1]})
    ctx = setup(str(small_sample), str(tmp_path / "out"), quiet=True)
    assert ctx.write_private(frame, "coding_candidates.csv") is None
    assert not (tmp_path / "out" / "tables" / "coding_candidates.csv").exists()
    ctx = setup(str(small_sample), str(tmp_path / "out"), quiet=True,
                private_dir=str(tmp_path / "private"))
    path = ctx.write_private(frame, "coding_candidates.csv")
    assert path == tmp_path / "private" / "coding_candidates.csv"
    assert "slut" in path.read_text(encoding="utf-8")
    with pytest.raises(ValueError, match="inside the repository"):
        private_folder(ROOT / "data" / "derived")
    assert private_folder(ROOT / "private" / "x").is_relative_to(ROOT / "private")
    assert "private/" in (ROOT / ".gitignore").read_text(encoding="utf-8").split()


def test_safe_mode_masks_explicit_vocabulary_but_keeps_levels_and_categories(small_sample):
    snapshot = load_snapshot(small_sample)
    book = load_codebook()
    safe = build_policy(snapshot, book, safe_mode=True)
    acts = next(c for c in book.categories if c.id == "sexual_acts").terms[0].term
    assert safe.masks(acts) and not build_policy(snapshot, book).masks(acts)
    for kept in ("XXX", "nsfw", "body", "sexual_acts", "masterpiece"):
        assert not safe.masks(kept), kept
    assert "safe mode" in safe.summary()
    rule = "; ".join(next(c for c in book.categories if c.id == "sexual_acts").include)
    shown_words = set(re.findall(r"[\w-]+", safe.text(rule).lower()))
    assert acts not in shown_words and MASK in safe.text(rule)
    assert safe.text("nsfw models vs other models") == "nsfw models vs other models"


def test_word_clouds_get_the_whole_policy(policy):
    """Notebook 05's clouds once received only the tag-based names: slurs showed through."""
    terms = pd.DataFrame({"category": ["misogyny", "misogyny"], "term": ["slut", "chad"],
                          "field": ["prompt", "prompt"], "n_documents": [9, 3]})
    freqs = term_frequencies(terms, "misogyny", "prompt", sensitive=policy.masked)
    assert "slut" not in freqs and "chad" in freqs


def test_without_the_key_handles_are_not_checked():
    off = RedactionPolicy(terms=frozenset({"x"}))
    assert not off.is_handle("anyone") and "not checkable" in off.summary()


def test_calibration_keeps_no_typed_list_of_handles_or_names():
    assert not hasattr(calibration, "EXCLUDED_TERMS")
    assert calibration.STOPWORD_PHRASES <= {"d", "of", "and", "at", "wearing a", "medium"}
    found = calibration.identifying_terms(
        {"someartist_x", "anime", "was"}, {"anime": {"a": 1, "b": 1, "c": 1}},
        {"art by jane roe", "by one"}, {"facemodel v1", "plain"})
    assert "someartist_x" in found.handles and "anime" not in found.handles
    assert "was" not in found.handles, "too short to identify anyone"
    assert "jane roe" in found.artists and "facemodel v1" in found.models
    assert "plain" not in found.models


def test_report_stages_real_results_with_their_banner(tmp_path):
    from civitai_study.report import stage_real_results

    assert stage_real_results(tmp_path / "book", tmp_path / "none") == []
    results = tmp_path / "real"
    (results / "notebooks").mkdir(parents=True)
    (results / "figures").mkdir()
    (results / "tables").mkdir()
    nb = ROOT / "notebooks" / "03_trend_regression.ipynb"
    (results / "notebooks" / nb.name).write_bytes(nb.read_bytes())
    toc = stage_real_results(tmp_path / "book", results)
    assert toc[0]["file"] == "real-2023/index"
    page = (tmp_path / "book" / "real-2023" / "index.md").read_text(encoding="utf-8")
    assert "17,982 models" in page and "187,256 preview images" in page and "40 million" in page


def test_candidates_command_redacts_and_keeps_the_raw_list_private(small_sample, tmp_path):
    from civitai_study.cli import main

    out, private = tmp_path / "cand.csv", tmp_path / "private"
    assert main(["coding", "candidates", "--data", str(small_sample), "--out", str(out),
                 "--top", "30", "--private-dir", str(private)]) == 0
    shown, raw = pd.read_csv(out), pd.read_csv(private / "cand.csv")
    policy = build_policy(load_snapshot(small_sample))
    assert shown["term"].astype(str).tolist() == policy.labels(raw["term"].astype(str).tolist())


def test_audit_fails_closed_without_its_crawl(tmp_path, capsys):
    """An audit that had nothing to search for must not report success."""
    from civitai_study import audit

    assert audit.main(["--crawl", str(tmp_path / "missing.jsonl.gz"), str(tmp_path)]) == 2
    assert "not found" in capsys.readouterr().err


def test_pseudonym_set_is_exact_and_compact():
    """Creators' pseudonyms are held as 8-byte numbers (flat memory at millions of creators),
    with exact membership and strings kept for any other format."""
    import duckdb
    import numpy as np

    from civitai_study.pseudonymise import SYNTHETIC_KEY, Pseudonymiser
    from civitai_study.redact import PseudonymSet

    hasher = Pseudonymiser(SYNTHETIC_KEY)
    pseudonyms = [hasher(f"creator_{i}") for i in range(5000)]
    odd = ["unknown", "ABCDEF0123456789", "0123", "ffffffffffffffff"]
    con = duckdb.connect()
    con.execute("CREATE TABLE t (p VARCHAR)")
    con.executemany("INSERT INTO t VALUES (?)", [(p,) for p in [*pseudonyms, *odd, None,
                                                               pseudonyms[0]]])
    for made in (PseudonymSet.from_query(con, "SELECT p FROM t"),
                 PseudonymSet.of([*pseudonyms, *odd])):
        assert len(made) == len(pseudonyms) + len(odd) and made
        assert all(p in made for p in [*pseudonyms, *odd])
        assert hasher("creator_5000") not in made and "0000000000000000" not in made
        assert "abcdef0123456789" not in made, "upper-case kept as its own string, not folded"
        assert None not in made and 7 not in made
    assert not PseudonymSet() and "0000000000000000" not in PseudonymSet()
    assert PseudonymSet.of([None, pseudonyms[0]]) == PseudonymSet.of([pseudonyms[0]])
    assert PseudonymSet.of(pseudonyms) != PseudonymSet.of(pseudonyms[1:])
    big = PseudonymSet(np.arange(1_000_000, dtype=np.uint64))
    assert big._codes.nbytes == 8_000_000
