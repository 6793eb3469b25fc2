"""``civitai-study report``: build the browsable HTML report from the executed notebooks."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..paths import display_path
from ..report import BUILD_DIR, ReportError, build_report


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="build the static HTML report (Jupyter Book)",
                       description="Build a static site from the stored, executed notebooks "
                                   "(never re-executed), with a landing page: content warning, "
                                   "findings, figure gallery, claims table, how to reproduce. "
                                   "Run `make all` first so the notebooks have outputs.")
    p.add_argument("--out", type=Path, default=BUILD_DIR,
                   help="build folder (default: _build/); the site goes to OUT/html/")
    p.add_argument("--verbose-build", action="store_true", help="show jupyter-book's log")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    try:
        index = build_report(args.out.resolve(), quiet=not args.verbose_build)
    except ReportError as err:
        raise RuntimeError(str(err)) from None
    print(f"report written: {display_path(index)} (open it in a browser)")
    return 0
