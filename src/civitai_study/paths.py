"""Where things are: every default path resolved from the project root, never the CWD.

Notebooks run from ``notebooks/`` and the CLI from anywhere; resolving from the root stops a
wrong working directory from silently producing results on zero rows.
"""

from __future__ import annotations

import os
from pathlib import Path


def project_root() -> Path:
    """The repository root: ``CIVITAI_STUDY_ROOT`` if set, else the folder holding pyproject."""
    env = os.environ.get("CIVITAI_STUDY_ROOT")
    if env:
        return Path(env).resolve()
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "pyproject.toml").is_file() and (parent / "notebooks").is_dir():
            return parent
    return Path.cwd().resolve()


ROOT = project_root()
DATA_DIR = ROOT / "data"
CALIBRATION_DIR = DATA_DIR / "calibration"
CODEBOOK_DIR = DATA_DIR / "codebook"
DERIVED_DIR = DATA_DIR / "derived"
SAMPLE_DIR = DATA_DIR / "sample"
FIGURES_DIR = ROOT / "figures"
NOTEBOOKS_DIR = ROOT / "notebooks"
#: Git-ignored folder for unredacted researcher lists (never published).
PRIVATE_DIR = ROOT / "private"
#: Real-data results (aggregates, redacted) and the git-ignored snapshot they are made from.
RESULTS_DIR = ROOT / "results"


def display_path(path: Path | str) -> str:
    """A path as shown in stored outputs: relative to the project root when inside it.

    Stored notebook outputs must not contain absolute paths (they differ per machine).
    """
    p = Path(path).resolve()
    try:
        return p.relative_to(ROOT).as_posix()
    except ValueError:
        return p.name
