"""``civitai-study teaching``: generate the teaching edition (``teaching/``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..paths import display_path
from ..teaching import SOLUTIONS_DIR, TEACHING_DIR, build_teaching


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("teaching", help="generate the teaching edition in teaching/",
                       description="Generate student notebooks from notebooks/: cells tagged "
                                   "'solution' become exercises, safe mode is on (redaction, "
                                   "aggregates only), plus INSTRUCTOR_GUIDE.md.")
    p.add_argument("--out", type=Path, default=TEACHING_DIR,
                   help="folder to (re)write (default: teaching/)")
    p.add_argument("--solutions", type=Path, default=SOLUTIONS_DIR,
                   help="instructors' solutions folder, kept apart from the student notebooks "
                        "(default: _build/teaching-solutions/, not committed)")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    written = build_teaching(args.out.resolve(), solutions_dir=args.solutions.resolve())
    for path in written:
        print(f"wrote {display_path(path)}")
    print(f"wrote {display_path(args.out.resolve() / 'INSTRUCTOR_GUIDE.md')}")
    print(f"wrote {display_path(args.solutions.resolve() / 'SOLUTIONS.md')} (instructors only)")
    return 0
