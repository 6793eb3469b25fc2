"""Agreement statistics on textbook examples, and the reliability commands end to end."""

import numpy as np
import pandas as pd
import pytest

from civitai_study.cli import main
from civitai_study.coding.codebook import load_codebook
from civitai_study.coding.reliability import (
    NOT_RELIABLE,
    agreement,
    auto_vs_coders,
    bootstrap_alpha,
    cohen_kappa,
    krippendorff_alpha,
    read_codings,
    trend_gate,
    unreliable_categories,
)
from civitai_study.paths import DATA_DIR

DEMO = DATA_DIR / "coding" / "demo_double_coded.csv"


def test_cohen_kappa_textbook():
    # 50 units: both yes 20, A yes/B no 5, A no/B yes 10, both no 15 -> p_o .7, p_e .5, kappa .4
    a = [1] * 20 + [1] * 5 + [0] * 10 + [0] * 15
    b = [1] * 20 + [0] * 5 + [1] * 10 + [0] * 15
    assert cohen_kappa(a, b) == pytest.approx(0.4)
    assert cohen_kappa([1, 0, 1], [1, 0, 1]) == pytest.approx(1.0)


def test_krippendorff_alpha_textbook():
    # Krippendorff (2011), "Computing Krippendorff's alpha-reliability": 4 coders, 12 units,
    # missing values; nominal alpha = 0.743, interval alpha = 0.849
    n = np.nan
    data = np.array([[1, 2, 3, 3, 2, 1, 4, 1, 2, n, n, n],
                     [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, n, 3],
                     [n, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, n],
                     [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, n]])
    assert krippendorff_alpha(data) == pytest.approx(0.743, abs=5e-4)
    assert krippendorff_alpha(data, "interval") == pytest.approx(0.849, abs=5e-4)


def test_alpha_undefined_without_variation():
    assert np.isnan(krippendorff_alpha(np.ones((2, 5))))


def test_agreement_and_automatic_coder():
    book = load_codebook()
    cats = book.category_ids
    rows = []
    texts = {"d1": "1girl, solo, masterpiece", "d2": "a cat on a sofa", "d3": "nsfw, 1girl"}
    truth = {"d1": {"booru", "quality"}, "d2": set(), "d3": {"booru", "body"}}
    for coder in ("a", "b", "c"):
        for doc, text in texts.items():
            codes = {c: int(c in truth[doc]) for c in cats}
            if coder == "c" and doc == "d2":
                codes["booru"] = 1  # one dissent: majority still 0
            rows.append({"document_id": doc, "coder": coder, "text": text, **codes})
    table = agreement(pd.DataFrame(rows), book).set_index("category")
    assert table.loc["body", "krippendorff_alpha"] == pytest.approx(1.0)
    assert np.isnan(table.loc["body", "cohen_kappa"])  # three coders: kappa not defined
    assert table.loc["booru", "n_consensus_positive"] == 2
    assert table.loc["booru", "auto_precision"] == pytest.approx(1.0)
    assert table.loc["booru", "auto_recall"] == pytest.approx(1.0)


def test_demo_file_is_labelled_and_runs(tmp_path, capsys):
    book = load_codebook()
    frame = pd.read_csv(DEMO)
    assert frame["provenance"].str.startswith("DEMONSTRATION ONLY").all()
    codings = read_codings([DEMO], book)
    assert codings["coder"].nunique() == 2
    out = tmp_path / "agreement.csv"
    assert main(["coding", "agreement", str(DEMO), "--out", str(out)]) == 0
    table = pd.read_csv(out)
    assert set(table["category"]) == set(book.category_ids)
    assert table["cohen_kappa"].notna().any()


def test_export_sample_writes_identical_sheets(small_sample, tmp_path):
    assert main(["coding", "export-sample", "--data", str(small_sample), "--out", str(tmp_path),
                 "--coders", "x", "y", "--per-stratum", "3"]) == 0
    x = pd.read_csv(tmp_path / "coding_sample_x.csv")
    y = pd.read_csv(tmp_path / "coding_sample_y.csv")
    assert len(x) > 0 and x["document_id"].tolist() == y["document_id"].tolist()
    assert x["stratum"].value_counts().max() <= 3
    assert x[load_codebook().category_ids].isna().all().all()  # blank for the coder


def test_bad_codes_are_rejected(tmp_path):
    book = load_codebook()
    bad = pd.read_csv(DEMO)
    bad.loc[0, "booru"] = 7
    path = tmp_path / "bad.csv"
    bad.to_csv(path, index=False)
    with pytest.raises(ValueError, match="1, 0 or blank"):
        read_codings([path], book)


def _two_coders(extra_rows=()):
    """Two coders who disagree on 'booru' for d2 (a tie); an optional adjudicator."""
    book = load_codebook()
    texts = {"d1": "1girl, solo, masterpiece", "d2": "a cat on a sofa", "d3": "nsfw, 1girl",
             "d4": "a dog"}
    truth = {"d1": {"booru", "quality"}, "d2": set(), "d3": {"booru", "body"}, "d4": set()}
    rows = []
    for coder in ("a", "b"):
        for doc, text in texts.items():
            codes = {c: int(c in truth[doc]) for c in book.category_ids}
            if coder == "b" and doc == "d2":
                codes["booru"] = 1
            rows.append({"document_id": doc, "coder": coder, "text": text, **codes})
    for doc, booru in extra_rows:
        codes = {c: int(c in truth[doc]) for c in book.category_ids}
        rows.append({"document_id": doc, "coder": "adjudicator", "text": texts[doc], **codes,
                     "booru": booru})
    return book, pd.DataFrame(rows)


def test_ties_are_adjudicated_not_dropped():
    book, codings = _two_coders()
    present = agreement(codings, book, n_boot=50).set_index("category")
    assert present.loc["booru", "n_ties"] == 1 and present.loc["booru", "tie_rule"] == "present"
    # tie settled as present: the automatic coder (booru absent in "a cat on a sofa") misses it
    assert present.loc["booru", "auto_recall"] == pytest.approx(2 / 3)
    absent = agreement(codings, book, tie_rule="absent", n_boot=50).set_index("category")
    assert absent.loc["booru", "auto_recall"] == pytest.approx(1.0)
    assert absent.loc["booru", "n_consensus_positive"] == 2
    book, codings = _two_coders([("d2", 0)])
    judged = agreement(codings, book, n_boot=50).set_index("category")
    assert judged.loc["booru", "n_ties_adjudicated"] == 1
    assert judged.loc["booru", "tie_rule"] == "adjudicator"
    assert judged.loc["booru", "auto_recall"] == pytest.approx(1.0)
    assert judged.loc["booru", "n_coders"] == 2  # the adjudicator is not a coder in alpha
    with pytest.raises(ValueError, match="tie rule"):
        agreement(codings, book, tie_rule="coin")


def test_automatic_coder_against_each_human():
    book, codings = _two_coders()
    each = auto_vs_coders(codings, book).set_index(["category", "coder"])
    assert each.loc[("booru", "a"), "cohen_kappa"] == pytest.approx(1.0)
    # b: auto says 0,0 / b says 1,0 on d2,d4; auto 1,1 / b 1,1 on d1,d3: p_o 3/4, p_e 1/2
    assert each.loc[("booru", "b"), "cohen_kappa"] == pytest.approx(0.5)
    table = agreement(codings, book, n_boot=50).set_index("category")
    assert table.loc["booru", "auto_kappa_min"] == pytest.approx(0.5)
    assert table.loc["booru", "auto_kappa_max"] == pytest.approx(1.0)


def test_alpha_interval_and_trend_gate():
    rng = np.random.default_rng(3)
    truth = rng.integers(0, 2, 200).astype(float)
    noisy = np.where(rng.random(200) < 0.1, 1 - truth, truth)
    matrix = np.vstack([truth, noisy])
    low, high = bootstrap_alpha(matrix, n_boot=300, seed=1)
    alpha = krippendorff_alpha(matrix)
    assert low < alpha < high and 0.6 < low and high < 0.95
    assert bootstrap_alpha(matrix, n_boot=300, seed=1) == (low, high)  # seeded
    assert trend_gate(0.66) == NOT_RELIABLE
    assert trend_gate(0.7) == "reliable enough for a trend claim"
    assert trend_gate(float("nan")).startswith("not reliable")
    book = load_codebook()
    table = agreement(read_codings([DEMO], book), book, n_boot=100)
    gated = unreliable_categories(table)
    assert set(gated) == set(table.loc[table["krippendorff_alpha"].fillna(0) < 0.667,
                                       "category"])
    assert (table.set_index("category").loc[gated, "trend_claim"].str.startswith(
        "not reliable")).all()
