import csv
from pathlib import Path

import pytest

from civitai_study.calibration import derive_from_crawl

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_committed_calibration_matches_the_real_crawl(real_models_file, tmp_path):
    summary = derive_from_crawl(real_models_file, tmp_path)
    assert summary["n_models"] == 17982 and summary["n_poi"] == 2452
    for name in ("model_type_mix.csv", "preview_nsfw_share_by_month.csv",
                 "model_tag_frequencies.csv", "prompt_phrase_frequencies.csv"):
        fresh = (tmp_path / name).read_text(encoding="utf-8")
        committed = (ROOT / "data" / "calibration" / name).read_text(encoding="utf-8")
        assert fresh == committed, f"data/calibration/{name} differs from a fresh derivation"
    with open(tmp_path / "preview_nsfw_share_by_month.csv", newline="") as handle:
        shares = {r["month"]: float(r["share_above_pg"]) for r in csv.DictReader(handle)}
    assert shares["2022-11"] == pytest.approx(0.102, abs=1e-3)  # as in shared/docs/study.md
