"""Execute the numbered notebooks in order with papermill, and keep their stored form stable.

Everything is checked before a kernel starts: the snapshot (layout, checksums, rows), where the
outputs go, and the config against the notebooks' declared parameters. A run is all-or-nothing:
executed notebooks are staged and moved into place together only when every notebook succeeded,
and the tables, figures and README the notebooks write are restored byte for byte when one fails
(or on Ctrl-C). Volatile metadata (timings, absolute paths, random cell ids) is stripped so that
re-running leaves ``git status`` clean.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
import yaml
from jupyter_client.manager import AsyncKernelManager

from .parameters import ConfigError, declared_parameters, validate_config
from .paths import DERIVED_DIR, FIGURES_DIR, NOTEBOOKS_DIR, ROOT, SAMPLE_DIR, display_path
from .staging import Rollback

log = logging.getLogger(__name__)
KERNEL_NAME = "civitai-study"
CELL_TIMEOUT_S = 900


README = ROOT / "README.md"
RESULTS_DIR = ROOT / "results"


class RunError(RuntimeError):
    """A notebook failed; the message names the notebook and the cell."""


class RunInputError(ValueError):
    """The run was refused before anything started; the message names the input and the fix."""


class QuietKernelManager(AsyncKernelManager):
    """A kernel on encrypted transport when possible, whose own log (transport warnings,
    "KeyboardInterrupt caught in kernel") stays out of the run's output; cell output and errors
    still arrive through the protocol."""

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self.transport_encryption = "auto"

    async def _async_launch_kernel(self, kernel_cmd: list[str], **kw: Any) -> None:
        if not log.isEnabledFor(logging.DEBUG):
            kw["stdout"] = kw["stderr"] = subprocess.DEVNULL
        await super()._async_launch_kernel(kernel_cmd, **kw)


def shown_path(path: Path) -> str:
    """A path for messages: relative inside the repository, complete outside it."""
    p = Path(path).resolve()
    try:
        return p.relative_to(ROOT).as_posix()
    except ValueError:
        return str(p)


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


def load_config(path: Path | None, notebooks: list[Path] | None = None
                ) -> dict[str, dict[str, Any]]:
    """Per-notebook parameters from YAML: ``{all: {...}, 03_trend_regression: {...}}``, checked
    against the notebooks' declared parameters (:mod:`civitai_study.parameters`)."""
    if path is None:
        return {}
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist; pass --config a YAML file (see "
                          "`civitai-study run --list-parameters`)")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(err, "problem", None) or type(err).__name__
        raise ConfigError(f"{path} is not valid YAML{where}: {problem}; fix the file") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path} is not UTF-8 text; pass a YAML file") from None
    return validate_config(data, notebooks if notebooks is not None else notebook_paths(),
                           source=str(path))


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


def _error_cell(failed: Path) -> tuple[int, Any] | None:
    """Index (as shown in the ``.failed.ipynb``) and execution count of the cell that raised."""
    try:
        nb = nbformat.read(failed, as_version=4)
    except (OSError, ValueError):
        return None
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and any(o.get("output_type") == "error"
                                            for o in cell.get("outputs", [])):
            return index, cell.get("execution_count")
    return None


def execute_one(path: Path, output: Path, parameters: dict[str, Any], progress: bool,
                failed_at: Path | None = None) -> None:
    """Execute ``path`` into ``output``; on failure keep the partly executed notebook at
    ``failed_at`` (default: beside ``output``) and raise :class:`RunError`."""
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    failed = failed_at or output.with_name(output.stem + ".failed.ipynb")
    with tempfile.TemporaryDirectory(prefix="civitai-run-") as tmp:
        staged = Path(tmp) / path.name
        try:
            pm.execute_notebook(
                str(path), str(staged), parameters=parameters, kernel_name=KERNEL_NAME,
                cwd=str(NOTEBOOKS_DIR), progress_bar=progress, execution_timeout=CELL_TIMEOUT_S,
                log_output=False, request_save_on_cell_execute=False,
                kernel_manager_class=QuietKernelManager,
            )
        except PapermillExecutionError as err:
            where = f"cell {err.cell_index} (In [{err.exec_count}])"
            kept = "The partly executed notebook was not saved."
            if staged.exists():
                failed.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(staged, failed)
                found = _error_cell(failed)
                if found is not None:
                    where = f"cell {found[0]} (In [{found[1]}])"
                kept = f"The partly executed notebook is at {shown_path(failed)}."
            evalue = str(err.evalue).splitlines()[0] if err.evalue else ""
            raise RunError(f"{path.name} failed in {where}: {err.ename}: {evalue}\n{kept}"
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


def check_data(data_dir: Path, out_dir: Path | None, verify: bool = False):
    """Refuse a run before any kernel starts: wrong snapshot, checksum mismatch, no rows, or an
    in-place run on another snapshot than the default sample (it would overwrite the
    repository's stored results with that snapshot's)."""
    from .snapshot import load_snapshot, verify_files

    snapshot = load_snapshot(data_dir)
    if out_dir is None and data_dir.resolve() != SAMPLE_DIR.resolve():
        name = data_dir.resolve().name
        raise RunInputError(
            f"--data {shown_path(data_dir)} is not the default sample, and a run without --out "
            "would replace the repository's stored notebooks, tables and figures with its "
            f"results; run `civitai-study run --data {shown_path(data_dir)} --out "
            f"{shown_path(RESULTS_DIR / name)}` instead")
    verify_files(snapshot, full=verify)
    if not snapshot.manifest.get("counts", {}).get("images"):
        raise RunInputError(
            f"the snapshot {shown_path(data_dir)} has no images (0 rows): the notebooks have "
            "nothing to analyse; import or collect image data (or `civitai-study sample`)")
    return snapshot


def protected_paths(out_dir: Path | None, notebooks: list[Path]) -> list[Path]:
    """What a run writes and must restore if it fails."""
    if out_dir is None:
        return [DERIVED_DIR, FIGURES_DIR, README, *notebooks]
    return [out_dir / "tables", out_dir / "figures",
            *(out_dir / "notebooks" / p.name for p in notebooks)]


def run_notebooks(data_dir: Path, out_dir: Path | None = None, seed: int = 20250507,
                  config: Path | None = None, only: list[str] | None = None,
                  progress: bool | None = None, verify: bool = False) -> list[Path]:
    """Run the notebooks in order; return the executed notebooks' paths.

    ``out_dir=None``: notebooks are stored in place, figures to ``figures/``, tables to
    ``data/derived/`` (only for the default sample). Otherwise ``OUT/notebooks``,
    ``OUT/figures``, ``OUT/tables``. Nothing changes unless every notebook succeeds.
    """
    paths = notebook_paths(only=only)
    extra = load_config(config, notebook_paths())
    if out_dir is not None and out_dir.exists() and not out_dir.is_dir():
        raise RunInputError(f"--out {shown_path(out_dir)} is a file; pass a folder")
    check_data(data_dir, out_dir, verify=verify)
    created = out_dir is not None and not out_dir.exists()
    try:
        return _run_all(paths, data_dir, out_dir, seed, extra, progress)
    except BaseException:
        if created and out_dir.is_dir() and not any(out_dir.rglob("*")):
            out_dir.rmdir()  # a failed run into a new folder leaves no empty folder behind
        raise


def _run_all(paths: list[Path], data_dir: Path, out_dir: Path | None, seed: int,
             extra: dict[str, dict[str, Any]], progress: bool | None) -> list[Path]:
    """Execute ``paths`` with every output protected; store the notebooks only at the end."""
    if progress is None:
        progress = sys.stderr.isatty() and not os.environ.get("CI")
    targets = [(out_dir / "notebooks" / p.name) if out_dir else p for p in paths]
    with Rollback(protected_paths(out_dir, targets)), \
            tempfile.TemporaryDirectory(prefix="civitai-run-staged-") as tmp:
        staged = []
        for i, (path, target) in enumerate(zip(paths, targets, strict=True), 1):
            declared = declared_parameters(path)
            params: dict[str, Any] = {"data_dir": _param_path(data_dir),
                                      "out_dir": _param_path(out_dir) if out_dir else None,
                                      "seed": seed}
            if path.stem.startswith("01_") and data_dir.resolve() != SAMPLE_DIR.resolve():
                # Another snapshot was named: notebook 01 must read it, never regenerate over it.
                params["source"] = "existing"
            params.update({k: v for k, v in extra.get("all", {}).items() if k in declared})
            params.update(extra.get(path.stem, {}))
            start = time.perf_counter()
            print(f"[{i}/{len(paths)}] {path.name} ...", file=sys.stderr, flush=True)
            holding = Path(tmp) / path.name
            execute_one(path, holding, params, progress,
                        failed_at=target.with_name(target.stem + ".failed.ipynb"))
            print(f"[{i}/{len(paths)}] {path.name} done in {time.perf_counter() - start:.1f} s",
                  file=sys.stderr, flush=True)
            staged.append((holding, target))
        for holding, target in staged:  # every notebook succeeded: store them together
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(holding, target)
            target.with_name(target.stem + ".failed.ipynb").unlink(missing_ok=True)
    return [target for _, target in staged]
