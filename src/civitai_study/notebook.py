"""What every notebook does in its first code cell: resolve paths, open the snapshot, say what
it is, and give the notebook one place to write tables and figures.

Notebooks receive ``data_dir`` and ``out_dir`` from papermill (relative to ``notebooks/`` or
absolute). ``out_dir=None`` means the repository defaults: tables in ``data/derived/`` and
figures in ``figures/`` (unless ``CIVITAI_STUDY_OUT_DIR`` names another folder); otherwise
``OUT/tables`` and ``OUT/figures``.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .paths import DERIVED_DIR, FIGURES_DIR, NOTEBOOKS_DIR, display_path
from .snapshot import Snapshot, load_snapshot

OUT_DIR_ENV = "CIVITAI_STUDY_OUT_DIR"


@dataclass
class NotebookContext:
    snapshot: Snapshot
    tables_dir: Path
    figures_dir: Path
    seed: int

    def write_table(self, frame: pd.DataFrame, name: str, float_digits: int = 6) -> Path:
        """Write a key table as CSV (rounded floats, no index) and say where it went."""
        path = self.tables_dir / name
        frame.to_csv(path, index=False, float_format=f"%.{float_digits}g", lineterminator="\n")
        # The folder is announced once by setup(); naming only the file keeps this line the same
        # whether the run writes to data/derived/ or to another output folder.
        print(f"wrote {name} ({len(frame):,} rows)")
        return path

    def read_table(self, name: str) -> pd.DataFrame:
        """Read a table an earlier notebook wrote; a clear error says which notebook to run."""
        path = self.tables_dir / name
        if not path.is_file():
            raise FileNotFoundError(
                f"{display_path(path)} does not exist yet: run the earlier notebooks first "
                "(`civitai-study run` executes them in order)"
            )
        return pd.read_csv(path)


def resolve(path: str | os.PathLike | None, default: Path) -> Path:
    if path is None or str(path) == "":
        return default
    p = Path(path)
    return p if p.is_absolute() else (NOTEBOOKS_DIR / p).resolve()


def setup(data_dir: str | None, out_dir: str | None = None, seed: int = 20250507,
          quiet: bool = False) -> NotebookContext:
    """Open the snapshot, seed the random generators, create output folders, print the banner."""
    random.seed(seed)
    np.random.seed(seed)
    snapshot = load_snapshot(resolve(data_dir, NOTEBOOKS_DIR.parent / "data" / "sample"))
    # `make test` re-runs the stored notebooks under nbval; OUT_DIR_ENV sends their outputs to a
    # scratch folder so that testing never rewrites the committed tables and figures.
    out_dir = out_dir or os.environ.get(OUT_DIR_ENV) or None
    if out_dir:
        base = resolve(out_dir, NOTEBOOKS_DIR.parent)
        tables_dir, figures_dir = base / "tables", base / "figures"
    else:
        tables_dir, figures_dir = DERIVED_DIR, FIGURES_DIR
    tables_dir.mkdir(parents=True, exist_ok=True)
    figures_dir.mkdir(parents=True, exist_ok=True)
    pd.set_option("display.width", 120)
    pd.set_option("display.max_columns", 20)
    if not quiet:
        print(snapshot.describe())
        print(f"Tables go to {display_path(tables_dir)}/, figures to {display_path(figures_dir)}/")
    return NotebookContext(snapshot, tables_dir, figures_dir, seed)
