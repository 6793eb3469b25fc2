"""``civitai-study run``: execute the notebooks in order with papermill."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from ..duck import MEMORY_ENV, check_memory_limit
from ..parallel import CLUSTER_ENV, check_spec
from ..paths import SAMPLE_DIR
from ..runner import RunError, notebook_paths, run_notebooks, shown_path

EXAMPLES = """examples:
  civitai-study run                                   # all notebooks on data/sample, in place
  civitai-study run --only 03 --config my.yml         # one notebook, parameters from YAML
  civitai-study run --data data/real --out results/real   # another snapshot: its own folder
  civitai-study run --list-parameters                 # what --config may set
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="execute the notebooks in order",
                       description="Execute notebooks/NN_*.ipynb in order with papermill. "
                                   "Without --out (default sample only), notebooks are stored in "
                                   "place, figures go to figures/ and tables to data/derived/. "
                                   "Nothing is changed unless every notebook succeeds.",
                       epilog=EXAMPLES)
    p.add_argument("--data", type=Path, default=SAMPLE_DIR, help="snapshot directory "
                   "(default: data/sample); any other snapshot needs --out")
    p.add_argument("--out", type=Path, default=None,
                   help="write notebooks, figures and tables under OUT instead of in place "
                        "(default: in place, for data/sample only)")
    p.add_argument("--config", type=Path, default=None,
                   help="YAML of parameters: {all: {...}, <notebook stem>: {...}}; see "
                        "--list-parameters")
    p.add_argument("--seed", type=int, default=20250507, help="random seed for every notebook")
    p.add_argument("--only", nargs="+", default=None, metavar="NB",
                   help="run only these notebooks (prefix such as 02 or a stem; default: all)")
    p.add_argument("--verify", action="store_true",
                   help="re-hash every snapshot file against the manifest (default: only files "
                        "whose size or modification time changed since the last check)")
    p.add_argument("--list-parameters", action="store_true",
                   help="print every notebook's parameters (name, default, type, allowed "
                        "values) and exit")
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
    if args.list_parameters:
        from ..parameters import parameters_text

        print(parameters_text(notebook_paths(only=args.only)))
        return 0
    # Notebook kernels inherit this process's environment: that is how both choices reach them.
    if args.cluster:
        os.environ[CLUSTER_ENV] = check_spec(args.cluster) or ""
    if args.duckdb_memory:
        os.environ[MEMORY_ENV] = check_memory_limit(args.duckdb_memory)
    try:
        run_notebooks(args.data.resolve(), args.out.resolve() if args.out else None,
                      seed=args.seed, config=args.config, only=args.only, verify=args.verify)
    except RunError as err:
        where = (f"under {shown_path(args.out)}" if args.out
                 else "in notebooks/, data/derived/, figures/ or README.md")
        raise RunError(f"{err}\nNothing else {where} was changed.") from None
    return 0
