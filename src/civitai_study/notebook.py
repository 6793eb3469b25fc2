"""What every notebook does in its first code cell: resolve paths, open the snapshot, say what
it is, and give the notebook one place to write tables and figures.

Notebooks receive ``data_dir`` and ``out_dir`` from papermill (relative to ``notebooks/`` or
absolute). ``out_dir=None`` means the repository defaults: tables in ``data/derived/`` and
figures in ``figures/`` (unless ``CIVITAI_STUDY_OUT_DIR`` names another folder); otherwise
``OUT/tables`` and ``OUT/figures``.

Every table written goes through the snapshot's redaction policy (:mod:`civitai_study.redact`),
whatever the ``redact`` parameter says: that parameter only changes what a notebook *shows*.
Unredacted researcher lists go only to an explicit private folder (``write_private``).
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .paths import DERIVED_DIR, FIGURES_DIR, NOTEBOOKS_DIR, PRIVATE_DIR, ROOT, display_path
from .redact import RedactionPolicy, build_policy
from .snapshot import Snapshot, load_snapshot

if TYPE_CHECKING:
    from .coding.codebook import Codebook

OUT_DIR_ENV = "CIVITAI_STUDY_OUT_DIR"


@dataclass
class NotebookContext:
    snapshot: Snapshot
    tables_dir: Path
    figures_dir: Path
    seed: int
    redact: bool = True
    safe_mode: bool = False
    private_dir: Path | None = None
    codebook: Codebook | None = None
    _policy: RedactionPolicy | None = field(default=None, repr=False)

    @property
    def redaction(self) -> RedactionPolicy:
        """The snapshot's redaction policy, enabled as the ``redact`` parameter says (built on
        first use: notebooks that write only numbers never pay for it)."""
        if self._policy is None:
            self._policy = build_policy(self.snapshot, self.codebook, enabled=self.redact,
                                        safe_mode=self.safe_mode)
        return self._policy

    def write_table(self, frame: pd.DataFrame, name: str, float_digits: int = 6) -> Path:
        """Write a key table as CSV (rounded floats, no index), redacted, and say where it went."""
        path = self.tables_dir / name
        _write_csv(self.redaction.on().frame(frame), path, float_digits)
        # The folder is announced once by setup(); naming only the file keeps this line the same
        # whether the run writes to data/derived/ or to another output folder.
        print(f"wrote {name} ({len(frame):,} rows)")
        return path

    def write_private(self, frame: pd.DataFrame, name: str, float_digits: int = 6
                      ) -> Path | None:
        """Write an UNREDACTED researcher list, only into the explicit ``private_dir``.

        Without a private folder nothing is written. The folder must lie outside the repository
        or under its git-ignored ``private/``: unredacted names never reach a tracked folder.
        """
        if self.private_dir is None:
            print(f"{name}: unredacted copy not written (set private_dir to a private folder)")
            return None
        path = self.private_dir / name
        _write_csv(frame, path, float_digits)
        print(f"WARNING: wrote {name} UNREDACTED ({len(frame):,} rows) to the private folder: "
              "it may name real people and creators; never publish or commit it")
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


def _write_csv(frame: pd.DataFrame, path: Path, float_digits: int) -> None:
    """Stage and swap, so that a failed write never leaves half a table behind."""
    staged = path.with_name(f".{path.name}.tmp")
    frame.to_csv(staged, index=False, float_format=f"%.{float_digits}g", lineterminator="\n")
    os.replace(staged, path)


def private_folder(path: str | os.PathLike) -> Path:
    """A folder for unredacted lists: outside the repository, or under its ``private/``."""
    folder = resolve(path, PRIVATE_DIR)
    if folder.is_relative_to(ROOT) and not folder.is_relative_to(PRIVATE_DIR):
        raise ValueError(f"private_dir {display_path(folder)} is inside the repository: use "
                         "private/ (git-ignored) or a folder outside the repository")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def resolve(path: str | os.PathLike | None, default: Path) -> Path:
    if path is None or str(path) == "":
        return default
    p = Path(path)
    return p if p.is_absolute() else (NOTEBOOKS_DIR / p).resolve()


def setup(data_dir: str | None, out_dir: str | None = None, seed: int = 20250507,
          quiet: bool = False, redact: bool = True, safe_mode: bool = False,
          private_dir: str | None = None, codebook: Codebook | None = None
          ) -> NotebookContext:
    """Open the snapshot, seed the random generators, create output folders, print the banner."""
    random.seed(seed)
    np.random.seed(seed)
    snapshot = load_snapshot(resolve(data_dir, NOTEBOOKS_DIR.parent / "data" / "sample"))
    # `make test` re-runs the stored notebooks under nbval; OUT_DIR_ENV sends their outputs to a
    # scratch folder so that testing never rewrites the committed tables and figures.
    # It wins over an injected out_dir too (nbval re-running results/real-2023/notebooks).
    out_dir = os.environ.get(OUT_DIR_ENV) or out_dir or None
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
    private = private_folder(private_dir) if private_dir else None
    return NotebookContext(snapshot, tables_dir, figures_dir, seed, redact=redact,
                           safe_mode=safe_mode, private_dir=private, codebook=codebook)
