"""``civitai-study coding``: codebook validation, reliability sheets, agreement, candidates."""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from ..coding.codebook import load_codebook
from ..coding.discovery import nsfw_candidates, poi_candidates
from ..coding.reliability import TIE_RULES, agreement, export_sample, read_codings
from ..paths import display_path
from ..snapshot import load_snapshot
from ..staging import StagedFiles, write_text_atomic


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
    e.add_argument("--coders", nargs="+", default=["coder_a", "coder_b"],
                   help="one sheet per coder name")
    e.add_argument("--per-stratum", type=int, default=10,
                   help="documents per year × NSFW stratum (default 10)")
    e.add_argument("--field", choices=["prompt", "negative_prompt"], default="prompt",
                   help="which text the coders read")
    e.add_argument("--seed", type=int, default=20250507, help="random seed of the sample")
    e.set_defaults(func=_export)

    a = cmds.add_parser("agreement", help="kappa, alpha and automatic-coder precision/recall")
    a.add_argument("files", nargs="+", type=Path, help="coding CSV files (two or more coders)")
    a.add_argument("--out", type=Path, default=None, help="write the table to this CSV")
    a.add_argument("--tie-rule", choices=TIE_RULES, default="present",
                   help="how a tie is settled when no coder named 'adjudicator' coded the unit")
    a.set_defaults(func=_agreement)

    s = cmds.add_parser("validate-sample",
                        help="draw a judging sample of real prompts (validation study)",
                        description="Draw a seeded, stratified sample of distinct prompts: strong "
                                    "matches per category, weak-only matches, and a random stratum "
                                    "for recall. Writes OUT/packet.csv (prompt text: keep OUT "
                                    "outside the repository) and OUT/units.csv (no prompt text).")
    s.add_argument("--data", type=Path, required=True, help="snapshot directory")
    s.add_argument("--out", type=Path, required=True,
                   help="folder outside the repository for the packet")
    s.add_argument("--per-category", type=int, default=50,
                   help="strong matches drawn per category (at least 40 for the study)")
    s.add_argument("--weak-per-category", type=int, default=15,
                   help="weak-tier-only matches drawn per category")
    s.add_argument("--random", type=int, default=300, help="random prompts for recall")
    s.add_argument("--seed", type=int, default=20250507, help="random seed of the sample")
    s.add_argument("--categories", nargs="+", default=None,
                   help="only these categories' strata (a later round for changed categories)")
    s.add_argument("--exclude-judged", type=Path, default=None, metavar="CSV",
                   help="judgments file whose prompts are not drawn again")
    s.set_defaults(func=_validate_sample)

    q = cmds.add_parser("precision", help="precision and recall per category from judgments",
                        description="Recode the judged prompts (found by hash in the snapshot) "
                                    "with the current codebook and write per-category precision "
                                    "and recall with Wilson 95% intervals.")
    q.add_argument("--data", type=Path, required=True, help="snapshot the sample was drawn from")
    q.add_argument("--judgments", type=Path, default=None,
                   help="judgments CSV keyed by prompt hash (default "
                        "data/coding/validation_judgments.csv)")
    q.add_argument("--import-round", type=Path, default=None, metavar="DIR",
                   help="first add DIR/judge-*.csv (with DIR/units.csv) to the judgments file")
    q.add_argument("--out", type=Path, default=None,
                   help="CSV to write (default data/derived/coding_validity.csv)")
    q.set_defaults(func=_precision)

    c = cmds.add_parser("candidates", help="inductive candidate terms (weighted log-odds)")
    c.add_argument("--data", type=Path, required=True, help="snapshot directory")
    c.add_argument("--out", type=Path, required=True, help="CSV to write")
    c.add_argument("--top", type=int, default=100, help="candidate terms per side")
    c.add_argument("--definition", default="above_pg", choices=["above_pg", "r_plus"],
                   help="NSFW definition")
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
    if args.per_stratum < 1:
        raise ValueError(f"--per-stratum {args.per_stratum}: must be 1 or more")
    snapshot = load_snapshot(args.data)
    with StagedFiles(args.out) as stage:
        staged = export_sample(snapshot, codebook, stage, args.coders,
                               per_stratum=args.per_stratum, seed=args.seed, field=args.field)
        for path in staged:  # a coder's filled-in sheet is never overwritten
            existing = args.out / path.name
            if existing.is_file() and existing.read_bytes() != path.read_bytes():
                raise FileExistsError(f"{existing} exists and differs from a fresh sheet (filled "
                                      "in already?); nothing was written. Pass --out a new folder")
    paths = [args.out / p.name for p in staged]
    for path in paths:
        print(f"wrote {display_path(path)}")
    print("Each coder fills the category columns with 1/0 independently; then run "
          "`civitai-study coding agreement " + " ".join(display_path(p) for p in paths) + "`")
    return 0


def _agreement(args: argparse.Namespace) -> int:
    codebook = load_codebook(args.codebook)
    table = agreement(read_codings(args.files, codebook), codebook, tie_rule=args.tie_rule)
    print(table.round(3).to_string(index=False))
    if args.out:
        write_text_atomic(args.out, table.to_csv(index=False, float_format="%.6g",
                                                 lineterminator="\n"))
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
    redacted = build_policy(snapshot, codebook).frame(table)
    write_text_atomic(args.out, redacted.to_csv(index=False, lineterminator="\n"))
    print(f"wrote {display_path(args.out)} ({len(table)} candidates, redacted: names of real "
          "people, creators' handles and slurs masked)")
    if private is not None:
        write_text_atomic(private / args.out.name, table.to_csv(index=False, lineterminator="\n"))
        print(f"WARNING: wrote the UNREDACTED list to {display_path(private / args.out.name)}: "
              "poi-side terms are mostly names of real people; never publish or commit it")
    return 0


def _validate_sample(args: argparse.Namespace) -> int:
    from ..coding.validation import draw_sample, write_sample
    from ..paths import ROOT

    out = args.out.resolve()
    if out == ROOT or ROOT in out.parents:
        print(f"error: {display_path(args.out)} is inside the repository; the packet holds "
              "prompt text, which is never committed. Pass a folder outside it (e.g. /tmp/x).")
        return 2
    codebook = load_codebook(args.codebook)
    exclude = None
    if args.exclude_judged is not None:
        exclude = set(pd.read_csv(args.exclude_judged, dtype=str)["prompt_sha256"])
    sample = draw_sample(load_snapshot(args.data), codebook, args.per_category,
                         args.weak_per_category, args.random, args.seed,
                         categories=args.categories, exclude=exclude)
    packet, units = write_sample(sample, out, codebook)
    counts = sample.groupby(["stratum", "category"]).size()
    print(counts.to_string())
    print(f"wrote {packet} ({len(sample)} units) and {units} (key, no prompt text)")
    return 0


def _precision(args: argparse.Namespace) -> int:
    from ..coding.validation import (
        JUDGMENT_COLUMNS,
        codes_by_hash,
        read_judgments,
        validity_table,
    )
    from ..paths import DATA_DIR, DERIVED_DIR

    codebook = load_codebook(args.codebook)
    path = args.judgments or DATA_DIR / "coding" / "validation_judgments.csv"
    frames = []
    if path.is_file():
        frames.append(pd.read_csv(path, dtype=str, keep_default_na=False))
    elif args.import_round is None:
        print(f"error: {display_path(path)} does not exist; pass --judgments or --import-round")
        return 2
    if args.import_round is not None:
        units = pd.read_csv(args.import_round / "units.csv", dtype=str, keep_default_na=False)
        files = {f.stem.removeprefix("judge-"): f
                 for f in sorted(args.import_round.glob("judge-*.csv"))}
        if not files:
            print(f"error: no judge-*.csv in {args.import_round}")
            return 2
        new, skipped = read_judgments(units, files, codebook.category_ids)
        print(f"read {len(new):,} judgments from {', '.join(sorted(files))}; skipped: "
              + ", ".join(f"{k} {v}" for k, v in skipped.items()))
        frames.append(new)
        judgments = pd.concat(frames, ignore_index=True)[JUDGMENT_COLUMNS]
        judgments = judgments.drop_duplicates(JUDGMENT_COLUMNS[:4], keep="last")
        judgments = judgments.sort_values(JUDGMENT_COLUMNS, ignore_index=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".csv.tmp")
        judgments.to_csv(tmp, index=False, lineterminator="\n")
        tmp.replace(path)
        print(f"wrote {display_path(path)} ({len(judgments):,} rows, no prompt text)")
    else:
        judgments = frames[0]
    codes = codes_by_hash(load_snapshot(args.data), codebook,
                          set(judgments["prompt_sha256"]))
    missing = judgments["prompt_sha256"].nunique() - len(codes)
    table = validity_table(judgments, codes, codebook.category_ids)
    out = args.out or DERIVED_DIR / "coding_validity.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".csv.tmp")
    table.to_csv(tmp, index=False, float_format="%.4f", lineterminator="\n")
    tmp.replace(out)
    print(table.round(3).to_string(index=False))
    if missing:
        print(f"{missing:,} judged prompts are not in this snapshot (left out)")
    print(f"wrote {display_path(out)}")
    return 0
