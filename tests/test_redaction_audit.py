"""Redaction audit on the real 2023 crawl: the whole pipeline, then every output is searched.

What must not appear is derived at test time from the raw crawl (codebook slurs, names of real
people from the poi models' names and tags, every creator username, prompts of 40+ characters
verbatim), independently of the redaction policy that made the outputs. Skips without the crawl.
The scanner itself is tested on invented text below, so it also runs without the crawl.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from civitai_study.audit import Forbidden, forbidden_from_crawl, person_name, scan_folder
from civitai_study.paths import ROOT


def test_scanner_finds_whole_words_and_verbatim_prompts(tmp_path):
    prompt = "an invented prompt of more than forty characters, copied whole"
    forbidden = Forbidden(min_prompt=40, prompt_heads={prompt[:40]})
    forbidden.terms["name"] = {"jane roe"}
    forbidden.terms["username"] = {"someone_x"}
    (tmp_path / "clean.csv").write_text("term,n\njaner roes,1\nsomeone,2\n", encoding="utf-8")
    (tmp_path / "leak.csv").write_text(f"term,n\nJane  Roe,1\n\"{prompt}\",2\n",
                                       encoding="utf-8")
    (tmp_path / "nb.ipynb").write_text(
        '{"cells": [{"cell_type": "code", "source": "someone_x", "outputs": [{"text": '
        '"made by SOMEONE_X"}]}]}', encoding="utf-8")
    hits = {(h.kind, h.file, h.where) for h in scan_folder(tmp_path, forbidden)}
    assert hits == {("name", "leak.csv", "file"), ("prompt", "leak.csv", "file"),
                    ("username", "nb.ipynb", "cell 0 output")}
    assert person_name("Jane Roe - LoRA v2.1 (SD 1.5)") == "jane roe"


def _run(*args: str, timeout: int = 900) -> None:
    done = subprocess.run([sys.executable, "-m", "civitai_study.cli", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout, check=False)
    assert done.returncode == 0, f"{' '.join(args)} failed:\n{done.stdout[-2000:]}" \
                                 f"\n{done.stderr[-2000:]}"


@pytest.mark.slow
def test_real_crawl_outputs_leak_nothing(real_models_file, tmp_path):
    """One pipeline run on the real crawl (redaction on, the default), then the teaching
    notebooks with the most vocabulary (02, 04, 05) in safe mode; zero hits of every kind."""
    from civitai_study.report import stage
    from civitai_study.runner import execute_one
    from civitai_study.teaching import build_teaching

    snapshot, out = tmp_path / "snapshot", tmp_path / "out"
    _run("import", "models-jsonl", str(real_models_file), "--out", str(snapshot))
    _run("run", "--data", str(snapshot), "--out", str(out))
    forbidden = forbidden_from_crawl(real_models_file)
    counts = forbidden.counts()
    assert counts["slur"] >= 10 and counts["name"] >= 100 and counts["username"] >= 4000
    assert counts["prompt"] >= 10_000
    assert len(list((out / "figures").glob("*.png"))) >= 10
    # The report's landing page, figure index and staged notebooks (staging is cheap; the
    # HTML build adds only theme files around the same text).
    stage(out / "report", notebooks_dir=out / "notebooks", figures_dir=out / "figures",
          tables_dir=out / "tables", results_dir=tmp_path / "no-results")
    hits = scan_folder(out, forbidden)
    assert not hits, f"{len(hits)} leak(s): " + "; ".join(
        f"{h.kind} in {h.file} ({h.where})" for h in hits[:20])
    assert (out / "report" / "index.md").is_file()

    teaching, safe = tmp_path / "teaching", tmp_path / "safe"
    build_teaching(teaching)
    for name in ("02_descriptive_statistics", "04_qualitative_coding", "05_figures"):
        execute_one(teaching / f"{name}.ipynb", safe / "notebooks" / f"{name}.ipynb",
                    {"data_dir": str(snapshot), "out_dir": str(safe), "seed": 20250507},
                    False)
    hits = scan_folder(safe, forbidden)
    assert not hits, f"{len(hits)} leak(s) in safe mode: " + "; ".join(
        f"{h.kind} in {h.file} ({h.where})" for h in hits[:20])
    assert not (safe / "figures" / "fig_wordclouds_by_category.png").exists()

