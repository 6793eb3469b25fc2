"""Validation study tooling, the validity gate and the parallel coder (issue 10).

All prompts here are constructed; no real record is used or written.
"""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from civitai_study.coding.codebook import load_codebook
from civitai_study.coding.matcher import Matcher
from civitai_study.coding.parallel_coder import code_column, plan_units
from civitai_study.coding.validation import (
    ADJUDICATED,
    disagreements,
    final_verdicts,
    prompt_sha256,
    read_judgments,
    validity_table,
    wilson,
)
from civitai_study.coding.validity import (
    UNRELIABLE,
    alpha_unreliable_in,
    gate,
    gate_lines,
    load_validity,
    unreliable_for_trends,
)
from civitai_study.paths import DERIVED_DIR

CATS = ["age", "gender"]


def _units() -> pd.DataFrame:
    rows = [("u1", "match", "gender", "woman", "p1"), ("u2", "match", "gender", "man", "p2"),
            ("u3", "match", "age", "teen", "p3"), ("u4", "random", "random", "", "p4"),
            ("u5", "random", "random", "", "p5")]
    return pd.DataFrame(rows, columns=["unit_id", "stratum", "category", "matched_terms",
                                       "prompt_sha256"])


def _write(path: Path, rows: list[tuple[str, str, str]]) -> Path:
    pd.DataFrame(rows, columns=["unit_id", "category", "verdict"]).to_csv(path, index=False)
    return path


class TestJudgments:
    def test_hash_is_sha256_of_utf8(self):
        assert prompt_sha256("a") == (
            "ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb")

    def test_read_expand_and_adjudicate(self, tmp_path):
        a = _write(tmp_path / "judge-A.csv", [("u1", "gender", "yes"), ("u2", "gender", "no"),
                                               ("u3", "age", "yes"), ("u4", "gender", "yes"),
                                               ("u5", "none", "yes"), ("u9", "age", "yes"),
                                               ("u1", "gender", "maybe")])
        b = _write(tmp_path / "judge-B.csv", [("u1", "gender", "yes"), ("u2", "gender", "yes"),
                                               ("u3", "age", "yes"), ("u4", "gender", "yes"),
                                               ("u4", "age", "yes"), ("u5", "none", "yes")])
        judgments, skipped = read_judgments(_units(), {"A": a, "B": b}, CATS)
        assert skipped == {"unknown unit": 1, "bad verdict": 1, "bad category": 0}
        assert "prompt" not in judgments.columns
        # random units are judged on every category
        p5 = judgments[(judgments["prompt_sha256"] == "p5")]
        assert set(p5["category"]) == set(CATS) and set(p5["verdict"]) == {"no"}
        open_keys = disagreements(judgments)
        assert sorted(open_keys["prompt_sha256"]) == ["p2", "p4"]
        adj = pd.DataFrame([{"prompt_sha256": "p2", "stratum": "match", "category": "gender",
                             "judge": ADJUDICATED, "verdict": "no"}])
        final = final_verdicts(pd.concat([judgments, adj]))
        assert final.set_index(["prompt_sha256", "category"]).loc[("p2", "gender"),
                                                                  "verdict"] == "no"

    def test_missing_columns_named(self, tmp_path):
        bad = tmp_path / "judge-A.csv"
        bad.write_text("unit,verdict\nu1,yes\n")
        with pytest.raises(ValueError, match="unit_id"):
            read_judgments(_units(), {"A": bad}, CATS)


class TestValidityTable:
    def test_precision_and_recall_with_wilson(self):
        rows = []
        for k in range(10):  # 9 of 10 strong gender matches are right
            rows.append((f"m{k}", "match", "gender", "A", "yes" if k < 9 else "no"))
        for k in range(4):  # random units: 4 carry gender, the coder flags 3 of them
            rows.append((f"r{k}", "random", "gender", "A", "yes"))
            rows.append((f"r{k}", "random", "age", "A", "no"))
        judgments = pd.DataFrame(rows, columns=["prompt_sha256", "stratum", "category", "judge",
                                                "verdict"])
        codes = {f"m{k}": ({"gender"}, set()) for k in range(10)}
        codes.update({f"r{k}": ({"gender"} if k < 3 else set(), set()) for k in range(4)})
        table = validity_table(judgments, codes, CATS).set_index(["category", "tier"])
        g = table.loc[("gender", "strong")]
        assert g["n_judged"] == 10 and g["n_yes"] == 9  # random units: recall only
        assert g["precision"] == pytest.approx(9 / 10)
        low, high = wilson(9, 10)[1:]
        assert (g["precision_low"], g["precision_high"]) == pytest.approx((low, high))
        assert g["recall"] == pytest.approx(3 / 4) and g["n_random_positive"] == 4
        assert np.isnan(table.loc[("age", "strong"), "recall"])

    def test_wilson_matches_statsmodels_shape(self):
        p, low, high = wilson(45, 50)
        assert low < p < high and 0.78 < low < 0.80
        assert all(np.isnan(x) for x in wilson(0, 0))


class TestGate:
    def test_low_bound_below_080_is_unreliable(self):
        validity = pd.DataFrame([
            {"category": "gender", "n_judged": 50, "precision": 0.96, "precision_low": 0.87,
             "precision_high": 0.99, "recall": 0.9, "recall_low": 0.8, "recall_high": 0.95},
            {"category": "age", "n_judged": 50, "precision": 0.84, "precision_low": 0.71,
             "precision_high": 0.92, "recall": 0.5, "recall_low": 0.3, "recall_high": 0.7}])
        table = gate(["age", "gender", "booru"], validity).set_index("category")
        assert bool(table.loc["gender", "reliable"])
        assert not table.loc["age", "reliable"] and table.loc["age", "note"] == UNRELIABLE
        assert not table.loc["booru", "reliable"]  # unmeasured: no claim
        lines = gate_lines(table.reset_index())
        assert any(line.startswith("age: precision 0.84") and UNRELIABLE in line
                   for line in lines)

    def test_one_list_of_categories_below_either_gate(self):
        """Notebooks 04 and 05 grey out the same categories: below the precision gate, below
        the reliability alpha (from the agreement table or the within-level trends table)."""
        validity = gate(["age", "body", "gender"], pd.DataFrame([
            {"category": "gender", "n_judged": 50, "precision": 0.96, "precision_low": 0.87,
             "precision_high": 0.99},
            {"category": "body", "n_judged": 50, "precision": 0.95, "precision_low": 0.85,
             "precision_high": 0.98}]))
        assert unreliable_for_trends(validity) == ["age"]  # unmeasured
        within = pd.DataFrame({"category": ["body", "gender", "age"],
                               "trend_claim": ["not reliable enough for a trend claim (alpha)",
                                               "trend claim allowed", None]})
        assert alpha_unreliable_in(within) == ["body"]
        assert alpha_unreliable_in(None) == [] == alpha_unreliable_in(within[["category"]])
        assert unreliable_for_trends(validity, alpha_unreliable_in(within)) == ["age", "body"]
        assert unreliable_for_trends(validity, {"gender"}) == ["age", "gender"]

    def test_committed_validity_table_has_the_columns(self):
        path = DERIVED_DIR / "coding_validity.csv"
        if not path.is_file():
            pytest.skip("data/derived/coding_validity.csv not committed yet")
        frame = pd.read_csv(path)
        for column in ["category", "n_judged", "precision", "precision_low", "precision_high",
                       "recall", "recall_low", "recall_high"]:
            assert column in frame.columns
        assert len(load_validity()) == len(load_codebook().categories)


class TestParallelCoder:
    @pytest.fixture()
    def parts(self, tmp_path) -> list[Path]:
        rng = np.random.default_rng(3)
        vocab = ["1girl", "woman", "chainsaw man", "(nsfw:0)", "teen", "photo of Ana Example",
                 "<lora:x [a, man]:1>", "masterpiece", "large breasts", "smile", "young"]
        paths = []
        for k in range(3):
            texts = [", ".join(rng.choice(vocab, size=rng.integers(0, 6)))
                     for _ in range(700)]
            texts[::50] = [None] * len(texts[::50])
            ids = np.arange(k * 1000, k * 1000 + len(texts))
            path = tmp_path / f"part-{k}.parquet"
            pq.write_table(pa.table({"id": ids, "prompt": pa.array(texts, pa.string())}), path,
                           row_group_size=300)
            paths.append(path)
        return paths

    def test_units_cover_every_row_in_order(self, parts):
        units = plan_units(parts, rows=128)
        assert sum(u.length for u in units) == 2100
        assert [u.path for u in units] == sorted(u.path for u in units)

    def test_executors_give_identical_output(self, parts):
        book = load_codebook()
        serial = code_column(parts, book, unit_rows=128)
        with ThreadPoolExecutor(2) as threads:
            threaded = code_column(parts, book, executor=threads, unit_rows=128)
        with ProcessPoolExecutor(2) as processes:
            parallel = code_column(parts, book, executor=processes, unit_rows=128)
        for other in (threaded, parallel):
            assert other.table.equals(serial.table)
            assert (other.term_docs == serial.term_docs).all()
        sink_a, sink_b = pa.BufferOutputStream(), pa.BufferOutputStream()
        pq.write_table(serial.table, sink_a)
        pq.write_table(parallel.table, sink_b)
        assert sink_a.getvalue().to_pybytes() == sink_b.getvalue().to_pybytes()

    def test_equals_one_batch_matcher(self, parts):
        book = load_codebook()
        result = code_column(parts, book, unit_rows=128)
        whole = pa.concat_tables([pq.read_table(p) for p in parts])
        matcher = Matcher(book)
        flags = matcher.category_flags(matcher.match(whole.column("prompt")))
        bits = (flags.astype(np.int64) @ (1 << np.arange(flags.shape[1]))).astype(np.int32)
        assert (result.table.column("categories").to_numpy() == bits).all()
        assert result.table.column("doc_id").to_pylist() == whole.column("id").to_pylist()


class TestGreyedFigure:
    def test_unreliable_category_is_grey_and_never_the_finding(self):
        from civitai_study.figures import coded
        from civitai_study.figures.style import finding_of

        months = [f"2024-{m:02d}" for m in range(1, 13)]
        frame = pd.DataFrame({"month": months * 2, "category": ["a"] * 12 + ["b"] * 12,
                              "field": "prompt", "n_documents": 1,
                              "share": [0.1] * 12 + [0.1 * k for k in range(12)]})
        foot = {"source_label": "test", "synthetic": True}
        fig = coded.categories_over_time(frame, unreliable={"b"}, **foot)
        assert "'b'" not in finding_of(fig)
        labels = {line.get_label(): line.get_color()
                  for line in fig.axes[0].get_lines()}
        assert labels["b: " + UNRELIABLE] == "#b0b0b0"
        validity = pd.DataFrame({"category": ["a"], "precision": [0.95], "recall": [0.5]})
        fig = coded.categories_over_time(frame, validity=validity, **foot)
        assert "a; P 0.95, R 0.50" in [line.get_label() for line in fig.axes[0].get_lines()]
        fig = coded.categories_over_time(frame, unreliable={"a", "b"}, **foot)
        assert "no trend is claimed" in finding_of(fig)


class TestExcerpt:
    def test_late_term_is_shown(self):
        from civitai_study.coding.validation import excerpt, term_position

        book = load_codebook()
        prompt = "masterpiece, " * 80 + "slutty dress, street"
        position = term_position(prompt, book, "misogyny", ["slut"])
        assert position == prompt.index("slutty")
        text = excerpt(prompt, position)
        assert len(text) <= 600 and "slutty" in text and text.startswith("masterpiece")
        assert excerpt("short prompt", None) == "short prompt"
        assert excerpt(prompt, None) == prompt[:600]


def test_committed_judgments_hold_no_prompt_text():
    from civitai_study.coding.validation import JUDGMENT_COLUMNS
    from civitai_study.paths import DATA_DIR

    path = DATA_DIR / "coding" / "validation_judgments.csv"
    if not path.is_file():
        pytest.skip("no judgments committed")
    frame = pd.read_csv(path, dtype=str)
    assert list(frame.columns) == JUDGMENT_COLUMNS
    assert frame["prompt_sha256"].str.fullmatch(r"[0-9a-f]{64}").all()
    assert set(frame["verdict"]) <= {"yes", "no"}
    assert frame["judge"].isin(["A", "B", "adjudicated"]).all()
