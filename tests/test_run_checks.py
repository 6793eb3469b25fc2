"""Issue 13: `run` checks its config against the notebooks' declared parameters, detects
secrets by name and by value without echoing them, and keeps kernel noise out of its output."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from civitai_study import runner
from civitai_study.parameters import (
    ConfigError,
    declared_parameters,
    is_secret_name,
    is_secret_value,
    validate_config,
)

NOTEBOOKS = runner.notebook_paths()


@pytest.mark.parametrize("name", ["password", "api_key", "apiKey", "hf_token", "client_secret",
                                  "session_cookie", "auth", "PASSWD", "private_key"])
def test_secret_names(name):
    assert is_secret_name(name)


@pytest.mark.parametrize("name", ["keyword_limit", "top_n_tags", "monkey", "tokenizer_limit",
                                  "drop_months", "definition", "private_dir"])
def test_ordinary_names_are_not_secrets(name):
    assert not is_secret_name(name)


@pytest.mark.parametrize("value", ["hf_" + "a1B2" * 8, "sk-" + "x9" * 12, "0123456789abcdef" * 2,
                                   "eyJhbGciOi.eyJzdWIiOiIx.c2lnbmF0dXJl",
                                   "-----BEGIN RSA PRIVATE KEY-----"])
def test_secret_values_are_refused_and_never_echoed(value, tmp_path):
    assert is_secret_value(value)
    with pytest.raises(ConfigError) as info:
        validate_config({"03_trend_regression": {"se_method": value}}, NOTEBOOKS)
    assert value not in str(info.value)


def test_value_equal_to_an_environment_secret(monkeypatch):
    monkeypatch.setenv("CIVITAI_API_KEY", "short-but-secret")
    assert is_secret_value("short-but-secret")


def test_declared_parameters_come_from_the_parameters_cell():
    params = declared_parameters(next(p for p in NOTEBOOKS if p.stem.startswith("03_")))
    assert params["drop_months"].default == 3
    assert params["definition"].types() == (str,)


@pytest.mark.parametrize("config, match", [
    ({"03_trend_regression": {"drop_months": "three"}}, "must be int"),
    ({"03_trend_regression": {"drop_months": True}}, "must be int"),
    ({"03_trend_regression": {"se_method": "robust"}}, "allowed values: quasi, hac"),
    ({"03_trend_regresion": {"drop_months": 2}}, "unknown notebook"),
    ({"02_descriptive_statistics": {"top_n_tag": 3}}, "top_n_tag"),
    ({"all": {"data_dir": "x"}}, "set by the runner"),
    ({"all": [1, 2]}, "mapping"),
    ({"03_trend_regression": {"min_side": -4}}, "at least 2"),
    ({"03_trend_regression": {"drop_months": -50}}, "at least 0"),
    ({"02_descriptive_statistics": {"decomposition_window": 0}}, "at least 1"),
    ({"04_qualitative_coding": {"private_dir": 3}}, "must be str"),
    ({"04_qualitative_coding": {"codebook_path": "/nonexistent/codebook.yaml"}},
     "does not exist"),
    ({"04_qualitative_coding": {"coding_files": ["../data/coding/none.csv"]}}, "does not exist"),
])
def test_config_is_validated_before_anything_runs(config, match):
    with pytest.raises(ConfigError, match=match):
        validate_config(config, NOTEBOOKS)


def test_valid_config_passes_and_all_goes_only_where_declared():
    config = {"all": {"redact": False}, "03_trend_regression": {"drop_months": 2}}
    assert validate_config(config, NOTEBOOKS) == config


def test_successful_kernel_run_prints_no_kernel_noise(tmp_path, capfd):
    nb = new_notebook(cells=[new_code_cell("x = 1\nprint(x)")],
                      metadata={"kernelspec": {"name": "civitai-study", "language": "python",
                                               "display_name": "Python (civitai-study)"}})
    src = tmp_path / "98_ok.ipynb"
    nbformat.write(nb, src)
    runner.execute_one(src, tmp_path / "out" / "98_ok.ipynb", {}, progress=False)
    captured = capfd.readouterr()
    noise = captured.out + captured.err
    assert "without encryption" not in noise and "KeyboardInterrupt" not in noise
    assert Path(tmp_path / "out" / "98_ok.ipynb").is_file()
