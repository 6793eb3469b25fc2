"""Full simulation study of notebook 03's estimators; writes data/derived/simulation_coverage.csv.

Why a benchmark and not a notebook cell: 200 seeds x 4 generators take a few minutes, far beyond
the 60-second budget of ``make all``. Notebook 03 reads the committed table; ``tests/
test_simulation.py`` runs a small version of the same study on every test run.

Usage: ``.venv/bin/python benchmarks/simulation.py [--seeds 200] [--out PATH]``.
The table is written to a temporary file next to the target and renamed into place, so a failed
or interrupted run leaves the previous table untouched.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from civitai_study.paths import DERIVED_DIR, display_path
from civitai_study.simulate import SimConfig, run_study


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=200, help="datasets per generator")
    parser.add_argument("--images", type=int, default=SimConfig.n_images,
                        help="rated images per dataset")
    parser.add_argument("--out", type=Path, default=DERIVED_DIR / "simulation_coverage.csv")
    args = parser.parse_args(argv)
    if args.seeds < 1 or args.images < 1000:
        parser.error("--seeds must be at least 1 and --images at least 1000")
    start = time.perf_counter()
    table = run_study(args.seeds, SimConfig(n_images=args.images))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    handle, staged = tempfile.mkstemp(dir=args.out.parent, suffix=".csv.part")
    os.close(handle)
    try:
        table.to_csv(staged, index=False, lineterminator="\n")
        os.replace(staged, args.out)
    finally:
        if os.path.exists(staged):
            os.unlink(staged)
    print(table.to_string(index=False))
    print(f"wrote {display_path(args.out)} ({len(table)} rows) in "
          f"{time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
