"""Importers: published datasets and existing crawls → the snapshot format.

Each importer is a module with one ``import_*`` function; :func:`run_importer` picks one by the
CLI/notebook name.
"""

from __future__ import annotations

from pathlib import Path

from ..snapshot import Snapshot

NAMES = ("models-jsonl", "civ40k", "civiverse")


def run_importer(name: str, path: Path | str, out: Path | str) -> Snapshot:
    """Run importer ``name`` on ``path`` writing the snapshot ``out``.

    The input's format is checked before anything is written; a failure leaves ``out`` as it was.
    """
    from .common import abort, check_format

    path, out = Path(path), Path(out)
    if name not in NAMES:
        raise ValueError(f"unknown importer {name!r}; choose one of {', '.join(NAMES)}")
    check_format(name, path)
    try:
        return _dispatch(name, path, out)
    except BaseException:
        abort(out)
        raise


def _dispatch(name: str, path: Path, out: Path) -> Snapshot:
    if name == "models-jsonl":
        from .models_jsonl import import_models_jsonl

        return import_models_jsonl(path, out)
    if name in ("civ40k", "civiverse"):
        from .image_tables import import_image_table

        return import_image_table(name, path, out)
    raise ValueError(f"unknown importer {name!r}; choose one of {', '.join(NAMES)}")
