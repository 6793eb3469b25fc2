"""Execute the numbered notebooks in order with papermill, and keep their stored form stable.

Each notebook runs into a temporary file first; only a notebook that finished is moved into place,
so a failure never leaves a half-executed notebook in the repository. Volatile metadata
(timings, absolute paths, random cell ids) is stripped so that re-running leaves ``git status``
clean.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
import yaml

from .paths import NOTEBOOKS_DIR, ROOT, SAMPLE_DIR, display_path

log = logging.getLogger(__name__)
KERNEL_NAME = "civitai-study"
CELL_TIMEOUT_S = 900


class RunError(RuntimeError):
    """A notebook failed; the message names the notebook and the cell."""


@dataclass(frozen=True)
class RunPlan:
    data_dir: str
    out_dir: str | None
    seed: int
    extra: dict[str, dict[str, Any]]


def notebook_paths(directory: Path = NOTEBOOKS_DIR, only: list[str] | None = None) -> list[Path]:
    """The ``NN_name.ipynb`` notebooks in run order; ``only`` filters by prefix or stem."""
    found = sorted(p for p in directory.glob("[0-9][0-9]_*.ipynb"))
    if not found:
        raise RunError(f"no notebooks named NN_*.ipynb in {display_path(directory)}: is this a "
                       "complete clone of the repository?")
    if only:
        found = [p for p in found if any(p.stem == o or p.stem.startswith(o) for o in only)]
        if not found:
            raise RunError(f"no notebook matches {only}; available: "
                           f"{[p.stem for p in sorted(directory.glob('[0-9][0-9]_*.ipynb'))]}")
    return found


def _param_path(path: Path) -> str:
    """Paths handed to notebooks: relative to notebooks/ when inside the repository."""
    path = path.resolve()
    try:
        return os.path.relpath(path, NOTEBOOKS_DIR) if path.is_relative_to(ROOT) else str(path)
    except ValueError:
        return str(path)


def load_config(path: Path | None) -> dict[str, dict[str, Any]]:
    """Per-notebook parameters from YAML: ``{all: {...}, 03_trend_regression: {...}}``."""
    if path is None:
        return {}
    if not path.is_file():
        raise RunError(f"config file {path} does not exist")
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise RunError(f"{path}: expected a mapping of notebook name (or 'all') to parameters")
    for section in data.values():
        for key in section:
            if "key" in key.lower() or "token" in key.lower():
                raise RunError(f"{path}: parameter {key!r} looks like a secret; secrets come only "
                               "from the environment (CIVITAI_API_KEY), never from parameters")
    return data


VOLATILE_NOTEBOOK_KEYS = ("papermill", "widgets")
VOLATILE_CELL_KEYS = ("papermill", "execution", "collapsed", "scrolled")


def coalesce_streams(outputs: list) -> list:
    """Merge consecutive stdout (or stderr) chunks: the kernel splits them at timing-dependent
    points, which would make identical output differ in the stored JSON."""
    merged: list = []
    for out in outputs:
        prev = merged[-1] if merged else None
        if (out.get("output_type") == "stream" and prev is not None
                and prev.get("output_type") == "stream" and prev.get("name") == out.get("name")):
            prev["text"] = prev["text"] + out["text"]
        else:
            merged.append(out)
    return merged


def clean_notebook(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Strip timing metadata, merge split output streams, make the injected cell's id stable."""
    for key in VOLATILE_NOTEBOOK_KEYS:
        nb.metadata.pop(key, None)
    for cell in nb.cells:
        for key in VOLATILE_CELL_KEYS:
            cell.metadata.pop(key, None)
        if cell.cell_type == "code":
            cell.outputs = coalesce_streams(cell.outputs)
        if "injected-parameters" in cell.metadata.get("tags", []):
            cell["id"] = "injected-parameters"
    return nb


def execute_one(path: Path, output: Path, parameters: dict[str, Any], progress: bool) -> None:
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    with tempfile.TemporaryDirectory(prefix="civitai-run-") as tmp:
        staged = Path(tmp) / path.name
        try:
            pm.execute_notebook(
                str(path), str(staged), parameters=parameters, kernel_name=KERNEL_NAME,
                cwd=str(NOTEBOOKS_DIR), progress_bar=progress, execution_timeout=CELL_TIMEOUT_S,
                log_output=False, request_save_on_cell_execute=False,
            )
        except PapermillExecutionError as err:
            failed = output.with_name(output.stem + ".failed.ipynb")
            if staged.exists():
                failed.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(staged, failed)
            raise RunError(
                f"{path.name} failed in cell {err.cell_index} (execution count "
                f"{err.exec_count}): {err.ename}: {err.evalue}\n"
                f"The partly executed notebook is at {display_path(failed)}; the stored "
                f"notebook was left unchanged."
            ) from None
        except Exception as err:  # kernel missing, dead kernel, timeout
            hint = ""
            if "NoSuchKernel" in type(err).__name__ or "No such kernel" in str(err):
                hint = (f" The Jupyter kernel {KERNEL_NAME!r} is not registered: run `make venv` "
                        "(or `python -m ipykernel install --sys-prefix --name civitai-study`).")
            raise RunError(f"{path.name} could not run: {type(err).__name__}: {err}.{hint}"
                           ) from None
        nb = clean_notebook(nbformat.read(staged, as_version=4))
        output.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, output)


def run_notebooks(data_dir: Path, out_dir: Path | None = None, seed: int = 20250507,
                  config: Path | None = None, only: list[str] | None = None,
                  progress: bool | None = None) -> list[Path]:
    """Run the notebooks in order; return the executed notebooks' paths.

    ``out_dir=None``: notebooks are stored in place, figures to ``figures/``, tables to
    ``data/derived/``. Otherwise ``OUT/notebooks``, ``OUT/figures``, ``OUT/tables``.
    """
    from .snapshot import load_snapshot

    load_snapshot(data_dir)  # fail before starting any kernel if the data is wrong
    extra = load_config(config)
    if progress is None:
        progress = sys.stderr.isatty() and not os.environ.get("CI")
    paths = notebook_paths(only=only)
    written = []
    for i, path in enumerate(paths, 1):
        params: dict[str, Any] = {"data_dir": _param_path(data_dir),
                                  "out_dir": _param_path(out_dir) if out_dir else None,
                                  "seed": seed}
        if path.stem.startswith("01_") and data_dir.resolve() != SAMPLE_DIR.resolve():
            # Another snapshot was named: notebook 01 must read it, never regenerate over it.
            params["source"] = "existing"
        params.update(extra.get("all", {}))
        params.update(extra.get(path.stem, {}))
        target = (out_dir / "notebooks" / path.name) if out_dir else path
        start = time.perf_counter()
        print(f"[{i}/{len(paths)}] {path.name} ...", file=sys.stderr, flush=True)
        execute_one(path, target, params, progress)
        print(f"[{i}/{len(paths)}] {path.name} done in {time.perf_counter() - start:.1f} s",
              file=sys.stderr, flush=True)
        written.append(target)
    return written
