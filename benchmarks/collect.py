"""Collector throughput against the local fake CivitAI, and proof that ``--rate`` is respected.

Run: ``.venv/bin/python benchmarks/collect.py [--images 20000] [--rate 5] [--rate-requests 16]``

1. Crawls ``--images`` fake images with no rate limit and prints items per second (the cost of
   our parsing, dedup and durable Parquet parts, since the server is local).
2. Crawls again with ``--rate`` requests per second and checks, from the server's own request
   log, that no window of requests ran faster than the limit.

Nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from fake_civitai import FakeCivitai, make_images  # noqa: E402

from civitai_study.collect import CollectOptions, collect  # noqa: E402
from civitai_study.pseudonymise import Pseudonymiser  # noqa: E402


def throughput(url: str, out: Path, n: int) -> float:
    start = time.perf_counter()
    snap = collect("images", out, CollectOptions(base_url=url, rate=None, log_every=3600),
                   hasher=Pseudonymiser(b"benchmark"))
    elapsed = time.perf_counter() - start
    count = snap.manifest["counts"]["images"]
    assert count == n, f"collected {count} of {n}"
    rate = count / elapsed
    print(f"unlimited: {count:,} images, {snap.manifest['collection']['pages']} pages in "
          f"{elapsed:.2f} s = {rate:,.0f} items/s")
    return rate


def rate_check(fake: FakeCivitai, url: str, out: Path, rate: float, requests: int) -> bool:
    fake.requests.clear()
    items = requests * 200
    collect("images", out, CollectOptions(base_url=url, rate=rate, max_items=items,
                                          log_every=3600), hasher=Pseudonymiser(b"benchmark"))
    times = [r["t"] for r in fake.requests]
    spans = [(b - a) for a, b in zip(times, times[1:], strict=False)]
    observed = (len(times) - 1) / (times[-1] - times[0])
    ok = observed <= rate * 1.02 and min(spans) >= (1 / rate) * 0.9
    print(f"limited to {rate:g} req/s: {len(times)} requests, observed {observed:.2f} req/s, "
          f"shortest gap {min(spans) * 1000:.0f} ms (limit {1000 / rate:.0f} ms): "
          + ("respected" if ok else "VIOLATED"))
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=20_000)
    parser.add_argument("--rate", type=float, default=5.0)
    parser.add_argument("--rate-requests", type=int, default=16)
    args = parser.parse_args()
    fake = FakeCivitai(images=make_images(args.images))
    url = fake.start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            throughput(url, Path(tmp) / "unlimited", args.images)
            ok = rate_check(fake, url, Path(tmp) / "limited", args.rate, args.rate_requests)
    finally:
        fake.stop()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
