"""Issue 13: every subcommand answers bad input with one clear line, never a traceback.

Exit 2 means bad usage or input, 1 a runtime failure; the message starts with ``error:``, names
the thing that is wrong, and nothing in stderr is a Python traceback.
"""

from __future__ import annotations

import argparse
import gzip
import socket
import sys
import time
from pathlib import Path

import pytest

from civitai_study.cli import CONTENT_WARNING, build_parser, main

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fake_civitai import FakeCivitai, make_images  # noqa: E402


@pytest.fixture(autouse=True)
def _env(tmp_path, monkeypatch):
    monkeypatch.setenv("CIVITAI_STUDY_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("CIVITAI_STUDY_HASH_KEY", "test key")
    monkeypatch.delenv("CIVITAI_API_KEY", raising=False)


def dead_url() -> str:
    """A local URL where nothing listens (connection refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/api/v1"


def _files(tmp: Path) -> dict[str, str]:
    (tmp / "bad.yml").write_text("all: [\n")
    (tmp / "type.yml").write_text("03_trend_regression:\n  drop_months: three\n")
    (tmp / "unknown.yml").write_text("99_nothing: {a: 1}\n")
    (tmp / "misspelt.yml").write_text("02_descriptive_statistics: {top_n_tag: 3}\n")
    (tmp / "secret.yml").write_text("all:\n  password: hunter2\n")
    (tmp / "garbage.gz").write_bytes(gzip.compress(b"\xb9\xb9\xb9\n"))
    (tmp / "notgz.jsonl.gz").write_bytes(b"\xb9\x00\xff" * 50)
    (tmp / "empty.jsonl").write_bytes(b"")
    (tmp / "array.jsonl").write_text('[{"id": 1}]\n')
    (tmp / "wrong.csv").write_text("a,b\n1,2\n")
    (tmp / "codebook.yaml").write_text("terms: [\n")
    (tmp / "afile").write_text("x")
    return {k: str(tmp / k) for k in ("bad.yml", "type.yml", "unknown.yml", "misspelt.yml",
                                      "secret.yml", "garbage.gz", "notgz.jsonl.gz",
                                      "empty.jsonl", "array.jsonl", "wrong.csv", "codebook.yaml",
                                      "afile")} | {"missing": str(tmp / "missing"),
                                                   "out": str(tmp / "out")}


# (arguments with {placeholders}, expected exit code, words the message must contain)
CASES = [
    ("sample --out {out} --images 5", 2, "1,000 images"),
    ("sample --out {out} --images many", 2, "--images"),
    ("sample --out {afile}", 2, "afile"),
    ("run --data {missing}", 2, "no snapshot directory"),
    ("run --config {bad.yml}", 2, "not valid YAML"),
    ("run --config {type.yml}", 2, "drop_months"),
    ("run --config {unknown.yml}", 2, "99_nothing"),
    ("run --config {misspelt.yml}", 2, "top_n_tag"),
    ("run --config {secret.yml}", 2, "password"),
    ("run --config {missing}", 2, "does not exist"),
    ("run --only 99", 1, "no notebook matches"),
    ("run --seed x", 2, "--seed"),
    ("calibrate --crawl {missing}", 2, "no crawl file"),
    ("calibrate --crawl {garbage.gz} --out {out}", 2, "not a readable"),
    ("calibrate --crawl {notgz.jsonl.gz} --out {out}", 2, "not a readable"),
    ("collect images --out {out} --since 2025-01-01 --until 2024-01-01", 2, "--since"),
    ("collect images --out {out} --since yesterday", 2, "not a date"),
    ("collect images --out {out} --rate -1", 2, "--rate"),
    ("collect images --out {out} --base-url {dead}", 1, "cannot connect"),
    ("import models-jsonl {missing} --out {out}", 2, "missing"),
    ("import models-jsonl {garbage.gz} --out {out}", 2, "not UTF-8"),
    ("import models-jsonl {notgz.jsonl.gz} --out {out}", 2, "not gzip-compressed"),
    ("import models-jsonl {empty.jsonl} --out {out}", 2, "empty"),
    ("import models-jsonl {array.jsonl} --out {out}", 2, "JSON array"),
    ("import civ40k {wrong.csv} --out {out}", 2, "createdAt"),
    ("import civiverse {missing} --out {out}", 2, "missing"),
    ("import nothing x --out {out}", 2, "nothing"),
    ("code --data {missing} --out {out}", 2, "no snapshot directory"),
    ("code --data {missing} --out {out} --codebook {codebook.yaml}", 2, "codebook"),
    ("coding --codebook {missing} validate", 2, "missing"),
    ("coding --codebook {codebook.yaml} validate", 2, "codebook"),
    ("coding export-sample --data {missing} --out {out}", 2, "no snapshot directory"),
    ("coding agreement {missing} {missing}", 2, "missing"),
    ("coding candidates --data {missing} --out {out}", 2, "no snapshot directory"),
    ("report --out {afile}", 2, "afile"),
    ("teaching --out {afile}", 2, "afile"),
]


@pytest.mark.parametrize("line, code, words", CASES, ids=[c[0].split(" {")[0] for c in CASES])
def test_bad_input_gives_one_clear_line(line, code, words, tmp_path, capsys):
    files = _files(tmp_path) | {"dead": dead_url()}
    for name, value in files.items():
        line = line.replace("{" + name + "}", value)
    argv = line.split()
    started = time.monotonic()
    try:
        rc = main(argv)
    except SystemExit as exit_:  # argparse's own errors
        rc = exit_.code
    err = capsys.readouterr().err
    assert rc == code, err
    assert "Traceback" not in err
    lines = [x for x in err.splitlines() if x.startswith("error:")]
    assert len(lines) == 1, err
    others = [x for x in err.splitlines() if x.strip() and not x.startswith(("error:", "usage:"))
              and not x.startswith(" ")]
    if code == 2:
        assert not others, err
    assert words.lower() in lines[0].lower(), err
    assert time.monotonic() - started < 30  # fail fast (no backoff on a dead server)
    if argv[0] in ("import", "collect", "sample", "code", "calibrate"):
        assert not Path(files["out"]).exists(), "a failed command left an output folder"


def _parsers(parser: argparse.ArgumentParser):
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                yield from _parsers(child)


def test_every_help_has_examples_defaults_and_the_content_warning():
    for parser in _parsers(build_parser()):
        text = parser.format_help()
        assert "examples:" in text, parser.prog
        assert CONTENT_WARNING in text, parser.prog
        for action in parser._actions:
            if action.option_strings and action.dest != "help" and \
                    not isinstance(action, argparse._VersionAction):
                assert action.help, f"{parser.prog} {action.option_strings} has no help"
                if action.default not in (None, False, argparse.SUPPRESS):
                    shown = parser._get_formatter()._get_help_string(action)
                    assert "default" in shown.lower(), f"{parser.prog} {action.option_strings}"


def test_rate_zero_is_unlimited():
    from civitai_study.collect.client import RateLimiter

    assert RateLimiter(None).interval == 0.0
    args = build_parser().parse_args(["collect", "images", "--out", "x", "--rate", "0"])
    assert (args.rate or None) is None


def test_list_parameters(capsys):
    assert main(["run", "--list-parameters"]) == 0
    out = capsys.readouterr().out
    assert "drop_months = 3 (int; at least 0)" in out and "one of above_pg, r_plus" in out


def test_collect_with_rate_zero_is_unlimited_end_to_end(tmp_path, monkeypatch):
    """`--rate 0` runs without any pause (it once hung in retries)."""
    server = FakeCivitai(images=make_images(300), max_limit=100)
    url = server.start()
    try:
        started = time.monotonic()
        rc = main(["collect", "images", "--out", str(tmp_path / "c"), "--base-url", url,
                   "--rate", "0", "--max-items", "200", "--clamp-items", "100000"])
        assert rc == 0
        assert time.monotonic() - started < 20
    finally:
        server.stop()


def test_run_checks_checksums_before_any_notebook(small_sample, tmp_path, monkeypatch, capsys):
    """A snapshot file that does not match the manifest stops `run` before a kernel starts."""
    import shutil

    from civitai_study import runner

    copy = tmp_path / "snap"
    shutil.copytree(small_sample, copy)
    target = copy / "models.parquet"
    data = bytearray(target.read_bytes())
    data[len(data) // 3] ^= 0xFF
    target.write_bytes(bytes(data))
    monkeypatch.setattr(runner, "execute_one", lambda *a, **k: pytest.fail("a notebook ran"))
    assert main(["run", "--data", str(copy), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "does not match its sha256" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()
