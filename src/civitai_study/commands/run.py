"""``civitai-study run``: execute the notebooks in order with papermill."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..paths import SAMPLE_DIR
from ..runner import RunError, run_notebooks


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="execute the notebooks in order",
                       description="Execute notebooks/NN_*.ipynb in order with papermill. "
                                   "Without --out, notebooks are stored in place, figures go to "
                                   "figures/ and tables to data/derived/.")
    p.add_argument("--data", type=Path, default=SAMPLE_DIR, help="snapshot directory "
                   "(default: data/sample)")
    p.add_argument("--out", type=Path, default=None,
                   help="write notebooks, figures and tables under OUT instead of in place")
    p.add_argument("--config", type=Path, default=None,
                   help="YAML of parameters: {all: {...}, <notebook stem>: {...}}")
    p.add_argument("--seed", type=int, default=20250507)
    p.add_argument("--only", nargs="+", default=None, metavar="NB",
                   help="run only these notebooks (prefix such as 02 or a stem)")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    try:
        run_notebooks(args.data.resolve(), args.out.resolve() if args.out else None,
                      seed=args.seed, config=args.config, only=args.only)
    except RunError as err:
        print(f"civitai-study run: {err}")
        return 1
    return 0
