"""``civitai-study import models-jsonl|civ40k|civiverse PATH --out DIR``: published data in."""

from __future__ import annotations

import argparse
from pathlib import Path

IMPORTERS = {
    "models-jsonl": "files of /api/v1/models items, one per line (gzip or not), e.g. the 2023 "
                    "crawl in ../shared/civitai-samples/models/",
    "civ40k": "the authors' Civ-40K / Civ-40M image tables (Parquet or CSV, a file or a folder)",
    "civiverse": "Civiverse-6M image tables (Parquet or CSV, a file or a folder)",
}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("import", help="convert a published dataset or crawl into a snapshot",
                       description="Convert a published dataset or an existing crawl into the "
                                   "snapshot format (Parquet parts + manifest.json). Records that "
                                   "cannot be parsed go to OUT/quarantine/*.jsonl and are counted.")
    kinds = p.add_subparsers(dest="importer", metavar="IMPORTER", required=True)
    for name, help_text in IMPORTERS.items():
        q = kinds.add_parser(name, help=help_text, description=help_text)
        q.add_argument("path", type=Path, metavar="PATH",
                       help="input file or folder" + (
                           "; or a Hugging Face dataset name (hf:OWNER/NAME) when online, with "
                           "HF_TOKEN in the environment" if name != "models-jsonl" else ""))
        q.add_argument("--out", type=Path, required=True, help="snapshot directory to write")
        q.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from ..importers import run_importer

    snapshot = run_importer(args.importer, args.path, args.out)
    print(snapshot.describe())
    quarantine = snapshot.manifest.get("quarantine", {})
    if quarantine.get("total"):
        print(f"Quarantined {quarantine['total']:,} records (see {args.out}/quarantine/): "
              + ", ".join(f"{k} {v:,}" for k, v in quarantine["by_reason"].items()))
    return 0
