"""Agreement statistics on textbook examples, and the reliability commands end to end."""

import numpy as np
import pandas as pd
import pytest

from civitai_study.cli import main
from civitai_study.coding.codebook import load_codebook
from civitai_study.coding.reliability import (
    agreement,
    cohen_kappa,
    krippendorff_alpha,
    read_codings,
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
