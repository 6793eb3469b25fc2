"""The collector against a misbehaving fake CivitAI on 127.0.0.1 (never the internet)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from civitai_study.collect import CollectOptions, RegionClampError, collect, crawler
from civitai_study.collect.client import ApiError, RateLimiter, parse_retry_after
from civitai_study.collect.scrub_secrets import redact
from civitai_study.pseudonymise import Pseudonymiser
from civitai_study.snapshot import load_snapshot

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fake_civitai import FakeCivitai, make_images, make_models  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
KEY = "sk-test-SECRET-4711-do-not-leak"
HASH = Pseudonymiser(b"test key")
ALL_IMAGES = {"browsingLevel": "31"}


def fast(**extra) -> CollectOptions:
    """Options for tests: no rate limit, tiny backoff, short timeout."""
    values = dict(rate=None, timeout=0.5, backoff_initial=0.01, backoff_max=0.05,
                  part_rows=100, clamp_items=150, max_attempts=6, log_every=0.0)
    values.update(extra)
    return CollectOptions(**values)


@pytest.fixture
def api_key(monkeypatch):
    monkeypatch.setenv("CIVITAI_API_KEY", KEY)
    return KEY


@pytest.fixture
def fake():
    servers = []

    def start(**config) -> tuple[FakeCivitai, str]:
        server = FakeCivitai(**config)
        servers.append(server)
        return server, server.start()

    yield start
    for server in servers:
        server.stop()


def snapshot_ids(out: Path, table: str = "images") -> list[int]:
    snap = load_snapshot(out, verify_checksums=True)
    return [r[0] for r in snap.connect().execute(f"SELECT id FROM {table}").fetchall()]


def test_images_crawl_survives_every_fault(fake, api_key, tmp_path):
    images = make_images(1_000, bad_every=97)
    server, url = fake(images=images, max_limit=50, retry_after="1",
                       slow_seconds=1.0,
                       faults={1: "429", 2: "503", 3: "500", 4: "slow", 5: "drop",
                               6: "malformed"},
                       empty_pages={2, 7, 8}, duplicate_pages={3, 9})
    out = tmp_path / "snap"
    snap = collect("images", out, fast(base_url=url), hasher=HASH)

    bad = {i["id"] for i in images if i["createdAt"] == "not a date"}
    served = server.served_ids("images", ALL_IMAGES)
    ids = snapshot_ids(out)
    assert len(ids) == len(set(ids))
    assert set(ids) == served - bad
    m = snap.manifest
    assert m["quarantine"]["total"] == len(bad)
    assert m["quarantine"]["by_reason"] == {"bad_created_at": len(bad)}
    assert m["duplicates_dropped"]["images"] == 4
    assert m["source"]["request"]["params"]["browsingLevel"] == 31
    assert m["source"]["request"]["params"]["withMeta"] == "true"
    assert m["source"]["authenticated"] is True
    assert m["collection"]["retries"] >= 6 and m["collection"]["empty_pages"] == 3
    assert m["clamp_check"].startswith("passed")
    assert m["tool"]["name"] == "civitai-study"
    # every request: cursors, never pages; the key only in the header
    assert all("page" not in r["query"] and "token" not in r["query"] for r in server.requests)
    assert {r["authorization"] for r in server.requests} == {f"Bearer {KEY}"}
    cursors = [r["query"].get("cursor") for r in server.requests]
    assert any(c and c.isdigit() for c in cursors) and any(c and "|" in c for c in cursors)
    levels = {r[0] for r in snap.connect().execute("SELECT DISTINCT nsfw_level FROM images"
                                                   ).fetchall()}
    assert levels == {1, 2, 4, 8, 16}
    # re-running a finished crawl changes nothing
    again = collect("images", out, fast(base_url=url), hasher=HASH)
    assert again.manifest["counts"] == m["counts"]


def test_models_crawl_with_versions_tags_previews(fake, api_key, tmp_path):
    models = make_models(240)
    server, url = fake(models=models, max_limit=40, faults={2: "503", 3: "malformed"},
                       empty_pages={4}, duplicate_pages={5})
    out = tmp_path / "models"
    snap = collect("models", out, fast(base_url=url), hasher=HASH)
    assert set(snapshot_ids(out, "models")) == {m["id"] for m in models}
    counts = snap.manifest["counts"]
    assert counts["model_versions"] == 240 and counts["images"] == 240
    assert snap.manifest["source"]["request"]["params"]["nsfw"] == "true"
    assert snap.manifest["source"]["request"]["params"]["archived"] == "true"
    con = snap.connect()
    assert con.execute("SELECT count(*) FROM images WHERE source = 'model_preview' "
                       "AND model_version_id IS NOT NULL").fetchone()[0] == 240
    assert con.execute("SELECT count(*) FROM models WHERE download_count IS NULL"
                       ).fetchone()[0] == 80   # 2026 stats hide downloads
    assert con.execute("SELECT count(DISTINCT tag) FROM model_tags").fetchone()[0] == 2


def test_region_clamp_stops_the_crawl(fake, api_key, tmp_path):
    _, url = fake(images=make_images(800), clamp=True, max_limit=50)
    out = tmp_path / "clamped"
    with pytest.raises(RegionClampError, match="none above PG-13"):
        collect("images", out, fast(base_url=url), hasher=HASH)
    assert not (out / "manifest.json").exists()


def test_pg_only_default_is_caught(fake, api_key, tmp_path, monkeypatch):
    """Forgetting browsingLevel gets PG only from the API (and the fake); the check catches it."""
    server, url = fake(images=make_images(800), max_limit=50)
    assert {image["nsfwLevel"] for image in server.visible("images", {})} <= {1, "None"}
    params = {k: v for k, v in crawler.REQUESTS["images"].items() if k != "browsingLevel"}
    monkeypatch.setitem(crawler.REQUESTS, "images", params)
    with pytest.raises(RegionClampError):
        collect("images", tmp_path / "pg", fast(base_url=url), hasher=HASH)


def test_other_4xx_is_not_retried_and_is_clear(fake, api_key, tmp_path):
    server, url = fake(images=make_images(10))
    with pytest.raises(ApiError) as err:
        collect("images", tmp_path / "x", fast(base_url=url.replace("/api/v1", "/api/v9")),
                hasher=HASH)
    message = str(err.value)
    assert err.value.status == 404 and "HTTP 404" in message and "No endpoint" in message
    assert "/api/v9/images" in message and KEY not in message
    assert len(server.requests) == 1


def test_window_and_max_items(fake, api_key, tmp_path):
    images = make_images(600)
    server, url = fake(images=images, max_limit=50)
    out = tmp_path / "window"
    snap = collect("images", out, fast(base_url=url, since="2024-01-08", until="2024-01-10"),
                   hasher=HASH)
    created = {i["id"]: i["createdAt"] for i in images}
    want = {k for k, v in created.items() if "2024-01-08" <= v[:10] < "2024-01-10"}
    assert set(snapshot_ids(out)) == want
    assert snap.manifest["collection"]["stopped"].startswith("reached --since")
    assert snap.manifest["window"]["since"] == "2024-01-08"
    assert len(server.requests) < 12  # stopped early, did not page through all 600
    capped = collect("images", tmp_path / "cap", fast(base_url=url, max_items=120), hasher=HASH)
    assert capped.manifest["counts"]["images"] == 150  # whole pages: stops after the 3rd
    assert capped.manifest["collection"]["stopped"].startswith("max_items")


def test_different_crawl_in_same_folder_is_refused(fake, api_key, tmp_path):
    _, url = fake(images=make_images(60), max_limit=50)
    out = tmp_path / "snap"
    collect("images", out, fast(base_url=url, clamp_items=10_000), hasher=HASH)
    with pytest.raises(ValueError, match="different crawl"):
        collect("images", out, fast(base_url=url, since="2024-02-01"), hasher=HASH)


def _cli(out: Path, url: str, *extra: str, verbose: bool = False) -> list[str]:
    return [sys.executable, "-m", "civitai_study.cli", *(["-v"] if verbose else []),
            "collect", "images", "--out", str(out),
            "--base-url", url, "--rate", "0", "--part-rows", "50", "--timeout", "0.5",
            "--backoff", "0.01", "--clamp-items", "150", *extra]


def _env() -> dict[str, str]:
    env = dict(os.environ, CIVITAI_API_KEY=KEY, CIVITAI_STUDY_HASH_KEY="test key",
               PYTHONPATH=str(ROOT / "src"))
    return env


def test_resume_after_sigkill_gives_the_same_snapshot(fake, tmp_path):
    images = make_images(1_500, bad_every=101)
    server, url = fake(images=images, max_limit=50, delay=0.03, duplicate_pages={4, 20},
                       faults={12: "500"})
    killed = tmp_path / "killed"
    proc = subprocess.Popen(_cli(killed, url), env=_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    checkpoint = killed / ".collect" / "checkpoint.json"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if json.loads(checkpoint.read_text())["next_part"] >= 8:
                break
        except (FileNotFoundError, json.JSONDecodeError, KeyError):
            pass
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    assert not (killed / "manifest.json").exists()
    state = json.loads(checkpoint.read_text())
    assert 8 <= state["next_part"] < 30 and not state["done"]

    resumed = subprocess.run(_cli(killed, url), env=_env(), capture_output=True, text=True,
                             timeout=60)
    assert resumed.returncode == 0, resumed.stderr

    server.delay = 0.0
    whole = tmp_path / "whole"
    collect("images", whole, fast(base_url=url, part_rows=50), hasher=Pseudonymiser(b"test key"))
    a, b = snapshot_ids(killed), snapshot_ids(whole)
    assert len(a) == len(set(a)) and sorted(a) == sorted(b)
    bad = {i["id"] for i in images if i["createdAt"] == "not a date"}
    assert set(a) == server.served_ids("images", ALL_IMAGES) - bad
    m = load_snapshot(killed).manifest
    assert m["quarantine"]["total"] == len(bad) and m["collection"]["runs"] == 2
    same = ("SELECT id, created_at, nsfw_level, prompt, username_hash FROM images ORDER BY id")
    rows_a = load_snapshot(killed).connect().execute(same).fetchall()
    rows_b = load_snapshot(whole).connect().execute(same).fetchall()
    assert rows_a == rows_b


def test_no_key_or_raw_username_anywhere(fake, tmp_path):
    images = make_images(400, bad_every=37)
    _, url = fake(images=images, max_limit=50, faults={1: "500", 2: "429"}, retry_after="0")
    out = tmp_path / "snap"
    ok = subprocess.run(_cli(out, url, verbose=True), env=_env(), capture_output=True,
                        text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    assert "retry" in ok.stderr  # the retries were logged ...
    failed = subprocess.run(_cli(tmp_path / "bad", url.replace("/api/v1", "/nope")), env=_env(),
                            capture_output=True, text=True, timeout=60)
    assert failed.returncode != 0 and "HTTP 404" in failed.stderr
    texts = [ok.stdout, ok.stderr, failed.stdout, failed.stderr]
    for path in list(out.rglob("*")) + list((tmp_path / "bad").rglob("*")):
        if path.is_file():
            texts.append(path.read_bytes().decode("utf-8", "replace"))
    blob = "\n".join(texts)
    assert KEY not in blob
    raw_names = {i["username"] for i in images if "username" in i}
    assert raw_names and not [name for name in raw_names if name in blob]
    assert (out / "quarantine").is_dir()  # the quarantined raw records were scanned too


def test_redact_rate_limit_and_retry_after(monkeypatch):
    monkeypatch.setenv("CIVITAI_API_KEY", KEY)
    text = redact(f"GET https://x/api?token={KEY}&a=1 Authorization: Bearer {KEY} {KEY}")
    assert KEY not in text and "a=1" in text
    assert parse_retry_after("2", cap=30) == 2.0 and parse_retry_after("999", cap=30) == 30
    assert parse_retry_after(None, cap=30) is None
    clock = [0.0]
    slept = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock[0] += seconds

    limiter = RateLimiter(4.0, clock=lambda: clock[0], sleep=sleep)
    for _ in range(9):
        limiter.wait()
    assert clock[0] == pytest.approx(2.0)  # 9 requests at 4/s: the 9th starts at t = 2 s


def test_crash_between_part_and_checkpoint_leaves_no_duplicates(fake, api_key, tmp_path,
                                                                 monkeypatch):
    """A part written but not yet checkpointed is removed on resume, then fetched again."""
    from civitai_study.collect.checkpoint import CrawlState

    server, url = fake(images=make_images(500), max_limit=50)
    out = tmp_path / "snap"
    real_save = CrawlState.save
    calls = {"n": 0}

    def crash_on_fourth(self, where):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt("simulated crash after the part, before the checkpoint")
        real_save(self, where)

    monkeypatch.setattr(CrawlState, "save", crash_on_fourth)
    with pytest.raises(KeyboardInterrupt):
        collect("images", out, fast(base_url=url, part_rows=50), hasher=HASH)
    assert (out / "images" / "part-000003.parquet").exists()  # the orphan
    assert json.loads(CrawlState.path(out).read_text())["next_part"] == 3
    monkeypatch.setattr(CrawlState, "save", real_save)
    snap = collect("images", out, fast(base_url=url, part_rows=50), hasher=HASH)
    ids = snapshot_ids(out)
    assert len(ids) == len(set(ids)) == 500
    assert snap.manifest["duplicates_dropped"] == {}


def test_progress_is_a_quiet_log_line_off_a_terminal(caplog):
    from civitai_study.collect.progress import Progress

    progress = Progress("collect images", every=0.0, tty=False)
    with caplog.at_level("INFO", logger="civitai_study.collect.progress"):
        progress.update(200, pages=1)
    progress.close()
    assert "collect images: 200 items, 1 pages" in caplog.text and "items/s" in caplog.text


def test_crash_after_the_last_checkpoint_does_not_restart_the_crawl(fake, api_key, tmp_path,
                                                                     monkeypatch):
    """The final part and "done" share one checkpoint: resuming only writes the manifest."""
    server, url = fake(images=make_images(300), max_limit=50)
    out = tmp_path / "snap"
    real_finish = crawler._Crawl._finish

    def crash(self):
        raise KeyboardInterrupt("simulated crash before the manifest")

    monkeypatch.setattr(crawler._Crawl, "_finish", crash)
    with pytest.raises(KeyboardInterrupt):
        collect("images", out, fast(base_url=url, part_rows=50), hasher=HASH)
    requests_before = len(server.requests)
    monkeypatch.setattr(crawler._Crawl, "_finish", real_finish)
    snap = collect("images", out, fast(base_url=url, part_rows=50), hasher=HASH)
    assert len(server.requests) == requests_before, "the resume fetched pages again"
    ids = snapshot_ids(out)
    assert len(ids) == len(set(ids)) == 300
    assert snap.manifest["duplicates_dropped"] == {}
