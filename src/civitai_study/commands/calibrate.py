"""``civitai-study calibrate``: re-derive calibration aggregates from the real 2023 crawl."""

from __future__ import annotations

import argparse
import gzip
import json
import zlib
from pathlib import Path

from ..calibration import DEFAULT_CRAWL, derive_from_crawl
from ..paths import CALIBRATION_DIR
from ..staging import StagedFiles


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("calibrate", help="re-derive data/calibration/ from the 2023 crawl",
                       description="Measure aggregates (never records) of a /api/v1/models "
                                   "JSONL crawl and write them as calibration CSVs.")
    p.add_argument("--crawl", type=Path, default=DEFAULT_CRAWL,
                   help="the /api/v1/models JSONL crawl (gzip or not)")
    p.add_argument("--out", type=Path, default=CALIBRATION_DIR,
                   help="folder for the calibration CSVs")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    if not args.crawl.is_file():
        raise FileNotFoundError(f"no crawl file at {args.crawl}; pass --crawl PATH to the "
                                "dfanr_v1_models_2023-07-04.jsonl.gz file")
    try:
        with StagedFiles(args.out) as stage:  # the calibration CSVs change together, or not at all
            summary = derive_from_crawl(args.crawl, stage)
    except (UnicodeDecodeError, EOFError, zlib.error, gzip.BadGzipFile,
            json.JSONDecodeError) as err:
        kind = "ends early (an interrupted download?)" if isinstance(err, EOFError) else \
            f"is not a readable JSON-lines crawl ({type(err).__name__}: {str(err)[:80]})"
        raise ValueError(f"{args.crawl} {kind}; nothing was written. Pass --crawl the complete "
                         "dfanr_v1_models_2023-07-04.jsonl.gz (re-download it if needed)") from None
    for key, value in summary.items():
        print(f"{key}: {value:,}")
    return 0
