"""``civitai-study code``: apply the codebook to a snapshot and write the coded tables."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from ..coding.codebook import load_codebook
from ..coding.coder import FIELDS, code_snapshot
from ..paths import display_path
from ..redact import RedactionPolicy, build_policy
from ..snapshot import load_snapshot
from ..staging import StagedFiles


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("code", help="code subculture vocabulary in a snapshot (codebook)",
                       description="Apply data/codebook/codebook.yaml to model tags, model names, "
                                   "trained words, prompts and negative prompts (reported "
                                   "separately) and write OUT/tables/coded_*.csv.")
    p.add_argument("--data", type=Path, required=True, help="snapshot directory")
    p.add_argument("--out", type=Path, required=True,
                   help="output folder (tables go to OUT/tables)")
    p.add_argument("--codebook", type=Path, default=None,
                   help="codebook YAML (default data/codebook/codebook.yaml)")
    p.add_argument("--fields", nargs="+", choices=FIELDS, default=list(FIELDS),
                   help="text fields to code")
    p.add_argument("--workers", type=int, default=2, help="coding threads (default 2)")
    p.add_argument("--flags", action="store_true",
                   help="also write per-document category flags to OUT/tables/coded_flags.parquet")
    p.set_defaults(func=_run)


def write_coding_tables(result, tables: Path, policy: RedactionPolicy | None = None
                        ) -> list[Path]:
    """The coder's tables as CSV (same files as notebook 04 writes), through the redaction
    policy when one is given (the command always gives one)."""
    tables.mkdir(parents=True, exist_ok=True)
    outputs = {
        "coded_terms.csv": result.term_counts(),
        "coded_categories_by_month.csv": result.categories_by_month(),
        "coded_categories_by_nsfw_level.csv": result.categories_by_level(),
        "coded_categories_by_month_level.csv": result.categories_by_month_level(),
        "coded_fields.csv": result.fields_summary(),
    }
    paths = []
    for name, frame in outputs.items():
        path = tables / name
        frame = policy.on().frame(frame) if policy is not None else frame
        frame.to_csv(path, index=False, float_format="%.6g", lineterminator="\n")
        paths.append(path)
    return paths


def _run(args: argparse.Namespace) -> int:
    codebook = load_codebook(args.codebook)
    snapshot = load_snapshot(args.data)
    if args.workers < 1:
        raise ValueError(f"--workers {args.workers}: must be 1 or more")
    tables = args.out / "tables"
    start = time.perf_counter()
    with StagedFiles(tables) as stage:  # all tables appear together, or none
        result = code_snapshot(snapshot, codebook, fields=tuple(args.fields),
                               workers=args.workers,
                               flags_path=stage / "coded_flags.parquet" if args.flags else None)
        names = [p.name for p in write_coding_tables(result, stage,
                                                       build_policy(snapshot, codebook))]
    elapsed = time.perf_counter() - start
    for name in names:
        print(f"wrote {display_path(tables / name)}")
    summary = result.fields_summary()
    print(summary.to_string(index=False))
    print(f"codebook {codebook.name} v{codebook.version}: {len(codebook.terms)} terms; "
          f"{summary['megabytes'].sum():.1f} MB coded in {elapsed:.1f} s; documents without "
          f"text (skipped): {int(summary['n_empty'].sum()):,}")
    return 0
