"""Project-level promises: pinned environment, citation metadata, data dictionary, layout."""

import os
import zipfile
from pathlib import Path

import jsonschema
import pytest
import yaml

from civitai_study.lockfile import read_environment, read_lock
from civitai_study.schema import TABLES, data_dictionary_markdown

ROOT = Path(__file__).resolve().parents[1]


def test_environment_yml_agrees_with_lock():
    lock, env = read_lock(ROOT / "requirements.lock"), read_environment(ROOT / "environment.yml")
    missing = sorted(set(lock) - set(env))
    extra = sorted(set(env) - set(lock))
    differ = sorted(n for n in set(lock) & set(env) if lock[n] != env[n])
    assert not (missing or extra or differ), (
        f"environment.yml disagrees with requirements.lock: missing {missing}, extra {extra}, "
        f"different versions {differ}; run `make environment.yml`")


def test_lock_pins_the_named_packages():
    lock = read_lock(ROOT / "requirements.lock")
    for name in ("jupyterlab", "pandas", "statsmodels", "matplotlib", "wordcloud", "papermill",
                 "nbval", "duckdb", "pyarrow", "httpx", "tenacity", "ahocorasick-rs", "numba"):
        assert name in lock, f"{name} is not pinned in requirements.lock"


def _cff_schema() -> dict:
    wheels = sorted((ROOT / ".venv" / "cff").glob("cffconvert-*.whl"))
    if not wheels:
        if os.environ.get("CI"):
            pytest.fail("the CFF 1.2 schema wheel is missing from .venv/cff; `make setup` "
                        "downloads it (requirements-cff.lock)")
        pytest.skip("CFF schema wheel not downloaded; `make setup` fetches it")
    with zipfile.ZipFile(wheels[0]) as archive:
        return yaml.safe_load(archive.read("cffconvert/schemas/1.2.0/schema.json"))


def test_citation_cff_is_valid_and_cites_the_paper():
    data = yaml.safe_load((ROOT / "CITATION.cff").read_text(encoding="utf-8"))
    schema = _cff_schema()
    jsonschema.validate(data, schema)
    assert data["cff-version"] == "1.2.0"
    refs = data["references"]
    assert any("2505.04600" in str(ref.get("url", "")) and
               {a.get("family-names") for a in ref["authors"]} >= {"Wagner", "Cetinic"}
               for ref in refs)


def test_data_dictionary_lists_every_column():
    text = (ROOT / "data" / "README.md").read_text(encoding="utf-8")
    assert data_dictionary_markdown() in text, (
        "data/README.md is out of date with schema.py; paste "
        "civitai_study.schema.data_dictionary_markdown() into it")
    for table, columns in TABLES.items():
        for col in columns:
            assert f"| `{col.name}` |" in text, f"{table}.{col.name} missing from data/README.md"


def test_top_level_layout():
    for name in ("notebooks", "data", "figures", "environment.yml", "tests", "README.md",
                 "CITATION.cff", "src/civitai_study", "pyproject.toml", "Makefile", ".ci/run",
                 "LICENSE", "benchmarks"):
        assert (ROOT / name).exists(), f"{name} is missing from the repository root"


def test_calibration_rows_name_their_source():
    import csv

    for path in sorted((ROOT / "data" / "calibration").glob("*.csv")):
        with open(path, newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        assert rows, f"{path.name} is empty"
        assert all(row.get("source") for row in rows), f"{path.name} has rows without a source"
