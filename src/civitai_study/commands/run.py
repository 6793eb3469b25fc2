"""``civitai-study run``: execute the notebooks in order with papermill."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from ..duck import MEMORY_ENV, check_memory_limit
from ..parallel import CLUSTER_ENV, check_spec
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
    p.add_argument("--cluster", default=None, metavar="SPEC",
                   help="run the image-level aggregations of notebooks 02-03 as a map over "
                        "Parquet parts: local:N (Dask on this machine), tcp://host:port (a "
                        "running Dask scheduler) or a dask-jobqueue YAML file (default: "
                        "in-process DuckDB)")
    p.add_argument("--duckdb-memory", default=None, metavar="SIZE",
                   help="memory limit of every DuckDB connection, e.g. 2GB (default: "
                        "$CIVITAI_STUDY_DUCKDB_MEMORY or 2GB); past it queries spill to disk")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    # Notebook kernels inherit this process's environment: that is how both choices reach them.
    try:
        if args.cluster:
            os.environ[CLUSTER_ENV] = check_spec(args.cluster) or ""
        if args.duckdb_memory:
            os.environ[MEMORY_ENV] = check_memory_limit(args.duckdb_memory)
    except ValueError as err:
        print(f"civitai-study run: {err}")
        return 2
    try:
        run_notebooks(args.data.resolve(), args.out.resolve() if args.out else None,
                      seed=args.seed, config=args.config, only=args.only)
    except RunError as err:
        print(f"civitai-study run: {err}")
        return 1
    return 0
