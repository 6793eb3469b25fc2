"""``civitai-study coding``: codebook validation, reliability sheets, agreement, candidates."""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from ..coding.codebook import load_codebook
from ..coding.discovery import nsfw_candidates, poi_candidates
from ..coding.reliability import agreement, export_sample, read_codings
from ..paths import display_path
from ..snapshot import load_snapshot


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("coding", help="codebook checks, reliability sheets and agreement",
                       description="Tools of the qualitative-coding procedure "
                                   "(data/codebook/README.md).")
    p.add_argument("--codebook", type=Path, default=None,
                   help="codebook YAML (default data/codebook/codebook.yaml)")
    cmds = p.add_subparsers(dest="coding_command", metavar="STEP", required=True)

    v = cmds.add_parser("validate", help="validate the codebook and print its size per category")
    v.set_defaults(func=_validate)

    e = cmds.add_parser("export-sample", help="write a stratified coding sheet per coder")
    e.add_argument("--data", type=Path, required=True, help="snapshot directory")
    e.add_argument("--out", type=Path, required=True, help="folder for the coding sheets")
    e.add_argument("--coders", nargs="+", default=["coder_a", "coder_b"])
    e.add_argument("--per-stratum", type=int, default=10,
                   help="documents per year × NSFW stratum (default 10)")
    e.add_argument("--field", choices=["prompt", "negative_prompt"], default="prompt")
    e.add_argument("--seed", type=int, default=20250507)
    e.set_defaults(func=_export)

    a = cmds.add_parser("agreement", help="kappa, alpha and automatic-coder precision/recall")
    a.add_argument("files", nargs="+", type=Path, help="coding CSV files (two or more coders)")
    a.add_argument("--out", type=Path, default=None, help="write the table to this CSV")
    a.set_defaults(func=_agreement)

    c = cmds.add_parser("candidates", help="inductive candidate terms (weighted log-odds)")
    c.add_argument("--data", type=Path, required=True, help="snapshot directory")
    c.add_argument("--out", type=Path, required=True, help="CSV to write")
    c.add_argument("--top", type=int, default=100)
    c.add_argument("--definition", default="above_pg", help="NSFW definition")
    c.add_argument("--private-dir", type=Path, default=None,
                   help="also write the UNREDACTED list here (outside the repository or under "
                        "its git-ignored private/); --out always gets the redacted list")
    c.set_defaults(func=_candidates)


def _validate(args: argparse.Namespace) -> int:
    codebook = load_codebook(args.codebook)
    print(pd.DataFrame(codebook.summary()).to_string(index=False))
    print(f"{codebook.name} v{codebook.version}: {len(codebook.terms)} terms, "
          f"{len(codebook.patterns)} pattern rules — valid")
    return 0


def _export(args: argparse.Namespace) -> int:
    codebook = load_codebook(args.codebook)
    paths = export_sample(load_snapshot(args.data), codebook, args.out, args.coders,
                          per_stratum=args.per_stratum, seed=args.seed, field=args.field)
    for path in paths:
        print(f"wrote {display_path(path)}")
    print("Each coder fills the category columns with 1/0 independently; then run "
          "`civitai-study coding agreement " + " ".join(display_path(p) for p in paths) + "`")
    return 0


def _agreement(args: argparse.Namespace) -> int:
    codebook = load_codebook(args.codebook)
    table = agreement(read_codings(args.files, codebook), codebook)
    print(table.round(3).to_string(index=False))
    if args.out:
        table.to_csv(args.out, index=False, float_format="%.6g", lineterminator="\n")
        print(f"wrote {display_path(args.out)}")
    return 0


def _candidates(args: argparse.Namespace) -> int:
    codebook = load_codebook(args.codebook)
    snapshot = load_snapshot(args.data)
    table = pd.concat([nsfw_candidates(snapshot, codebook, args.definition, top=args.top),
                       poi_candidates(snapshot, codebook, top=args.top)], ignore_index=True)
    from ..notebook import private_folder
    from ..redact import build_policy

    private = private_folder(args.private_dir) if args.private_dir else None
    args.out.parent.mkdir(parents=True, exist_ok=True)
    build_policy(snapshot, codebook).frame(table).to_csv(args.out, index=False,
                                                         lineterminator="\n")
    print(f"wrote {display_path(args.out)} ({len(table)} candidates, redacted: names of real "
          "people, creators' handles and slurs masked)")
    if private is not None:
        table.to_csv(private / args.out.name, index=False, lineterminator="\n")
        print(f"WARNING: wrote the UNREDACTED list to {display_path(private / args.out.name)}: "
              "poi-side terms are mostly names of real people; never publish or commit it")
    return 0
