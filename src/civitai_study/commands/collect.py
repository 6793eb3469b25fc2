"""``civitai-study collect images|models --out DIR``: crawl CivitAI's public API into a snapshot."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    from ..collect.client import DEFAULT_BASE_URL, DEFAULT_RATE
    from ..collect.crawler import CollectOptions

    defaults = CollectOptions()
    p = sub.add_parser(
        "collect", help="crawl CivitAI's public API (images or models) into a snapshot",
        description="Crawl CivitAI's public API, asking for every NSFW level and for prompts, "
                    "following cursors, rate-limited and resumable: re-run the same command "
                    "after a crash to continue. The API key is read only from CIVITAI_API_KEY.")
    kinds = p.add_subparsers(dest="endpoint", metavar="ENDPOINT", required=True)
    for name, text in (("images", "/api/v1/images (all levels, with meta)"),
                       ("models", "/api/v1/models with versions, tags and preview images "
                                  "(all levels, archived included)")):
        q = kinds.add_parser(name, help=text, description=text)
        q.add_argument("--out", type=Path, required=True, help="snapshot directory")
        q.add_argument("--base-url", default=DEFAULT_BASE_URL,
                       help=f"API base URL (default {DEFAULT_BASE_URL})")
        q.add_argument("--since", help="keep items created on/after this date (YYYY-MM-DD)")
        q.add_argument("--until", help="keep items created before this date (exclusive)")
        q.add_argument("--rate", type=_positive(float, allow_zero=True), default=DEFAULT_RATE,
                       help=f"requests per second (default {DEFAULT_RATE}; 0 = unlimited)")
        q.add_argument("--max-items", type=_positive(int),
                       help="stop after this many items (default: no limit)")
        q.add_argument("--timeout", type=_positive(float), default=defaults.timeout,
                       help="seconds before a request counts as timed out (more than zero)")
        q.add_argument("--part-rows", type=_positive(int), default=defaults.part_rows,
                       help="rows per Parquet part (work lost at most on a crash)")
        q.add_argument("--clamp-items", type=_positive(int), default=defaults.clamp_items,
                       help="items with nothing above PG-13 after which the answer is "
                            "treated as region-clamped")
        q.add_argument("--backoff", type=_positive(float), default=defaults.backoff_initial,
                       help="first retry wait in seconds (doubles, with jitter, up to 30 s)")
        q.set_defaults(func=_run)


def _positive(kind: type, allow_zero: bool = False):
    """argparse type: a positive number (or zero when allowed), with a message that says so."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if value < 0 or (value == 0 and not allow_zero):
            need = "zero or more" if allow_zero else "more than zero"
            raise argparse.ArgumentTypeError(f"{text!r}: must be {need}")
        return value
    return parse


def _run(args: argparse.Namespace) -> int:
    from ..collect import CollectOptions, collect

    options = CollectOptions(base_url=args.base_url, since=args.since, until=args.until,
                             rate=args.rate or None, max_items=args.max_items,
                             timeout=args.timeout, part_rows=args.part_rows,
                             clamp_items=args.clamp_items, backoff_initial=args.backoff)
    existed = args.out.exists()
    try:
        snapshot = collect(args.endpoint, args.out, options)
    except BaseException:
        # A crawl that failed before its first page leaves no folder behind; one with parts
        # stays, so that re-running the same command resumes it.
        if not existed and args.out.is_dir() and not any(args.out.rglob("*.parquet")):
            shutil.rmtree(args.out, ignore_errors=True)
        raise
    print(snapshot.describe())
    info = snapshot.manifest["collection"]
    print(f"Stopped: {info['stopped']}; {info['pages']:,} pages, {info['requests']:,} requests, "
          f"{info['retries']:,} retries; clamp check {snapshot.manifest['clamp_check']}")
    quarantine = snapshot.manifest["quarantine"]
    if quarantine["total"]:
        print(f"Quarantined {quarantine['total']:,} records (see {args.out}/quarantine/): "
              + ", ".join(f"{k} {v:,}" for k, v in quarantine["by_reason"].items()))
    return 0
