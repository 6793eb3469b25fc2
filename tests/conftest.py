"""Shared fixtures: paths, a small synthetic snapshot, and the optional real 2023 crawl."""

from __future__ import annotations

from pathlib import Path

import pytest

from civitai_study.synthetic import SampleConfig, write_sample

ROOT = Path(__file__).resolve().parents[1]
SHARED_SAMPLES = ROOT.parent / "shared" / "civitai-samples"
REAL_MODELS = SHARED_SAMPLES / "models" / "dfanr_v1_models_2023-07-04.jsonl.gz"


@pytest.fixture(scope="session")
def small_sample(tmp_path_factory) -> Path:
    """A small synthetic snapshot (fast to make, same generator as the default)."""
    out = tmp_path_factory.mktemp("sample") / "snap"
    write_sample(out, SampleConfig(n_images=4000, n_models=400, seed=7))
    return out


@pytest.fixture(scope="session")
def real_models_file() -> Path:
    if not REAL_MODELS.is_file():
        pytest.skip(f"real 2023 crawl not found at {REAL_MODELS} (../shared is absent)")
    return REAL_MODELS
