"""Write into a staging folder, then swap it into place: a failed writer leaves nothing changed.

Every command that writes a snapshot (``import``, ``sample``, ``collect``'s final output) builds it
in a hidden sibling folder ``.NAME.staging`` and only renames it over ``NAME`` once the snapshot
is complete and valid, so an interrupted or failed run never destroys the snapshot a user had.
:class:`Rollback` does the same for writers that must write in place (``civitai-study run``): it
keeps a copy of what it protects and puts it back, byte for byte, when the run fails.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path

STAGING_SUFFIX = ".staging"
OLD_SUFFIX = ".replaced"


def staging_path(target: Path) -> Path:
    """The hidden sibling of ``target`` a writer builds into (same filesystem, so rename works)."""
    target = Path(target)
    return target.parent / f".{target.name}{STAGING_SUFFIX}"


def check_target(target: Path, what: str = "snapshot") -> None:
    """Refuse a target that cannot be a folder before any work starts."""
    target = Path(target)
    if target.exists() and not target.is_dir():
        raise FileExistsError(f"{target} is a file, not a folder; pass --out a folder for the "
                              f"{what}")


def begin(target: Path) -> Path:
    """A fresh, empty staging folder for ``target`` (a stale one from a crash is removed)."""
    target = Path(target)
    check_target(target)
    stage = staging_path(target)
    discard(stage)
    stage.mkdir(parents=True)
    return stage


def discard(stage: Path) -> None:
    """Remove a staging folder (after a failure); missing is fine."""
    stage = Path(stage)
    if stage.is_dir():
        shutil.rmtree(stage, ignore_errors=True)


def commit(stage: Path, target: Path, keep: Iterable[str] = ()) -> None:
    """Swap ``stage`` into place as ``target``.

    The old ``target`` is renamed aside, the stage renamed into place, and then the entries of
    the old folder named in ``keep`` (a user's own files beside the snapshot) are moved into the
    new one, unless it has an entry of that name. The old folder is deleted only when all of that
    worked; if the swap itself fails, the old folder is put back.
    """
    stage, target = Path(stage), Path(target)
    if not target.is_dir():
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(stage, target)
        return
    aside = target.parent / f".{target.name}{OLD_SUFFIX}"
    discard(aside)
    os.replace(target, aside)
    try:
        os.replace(stage, target)
    except BaseException:
        os.replace(aside, target)
        raise
    for name in keep:
        old = aside / name
        if (old.exists() or old.is_symlink()) and not (target / name).exists():
            os.replace(old, target / name)
    shutil.rmtree(aside, ignore_errors=True)


class Rollback:
    """Keep copies of ``paths`` (files or folders, existing or not) and restore them on failure.

    Use as a context manager: leaving it with an exception (including Ctrl-C) restores every path
    exactly as it was (files created meanwhile are removed); leaving it normally keeps the changes.
    """

    def __init__(self, paths: Iterable[Path]):
        self.paths = sorted({Path(p).resolve() for p in paths})
        self._backup: Path | None = None
        self._saved: dict[Path, Path | None] = {}

    def __enter__(self) -> Rollback:
        self._backup = Path(tempfile.mkdtemp(prefix="civitai-study-rollback-"))
        for i, path in enumerate(self.paths):
            copy = self._backup / str(i)
            if path.is_dir():
                shutil.copytree(path, copy, symlinks=True)
            elif path.exists():
                shutil.copy2(path, copy)
            else:
                copy = None
            self._saved[path] = copy
        return self

    def restore(self) -> None:
        for path, copy in self._saved.items():
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            elif path.exists() or path.is_symlink():
                path.unlink()
            if copy is None:
                continue
            if copy.is_dir():
                shutil.copytree(copy, path, symlinks=True)
            else:
                shutil.copy2(copy, path)

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is not None:
                self.restore()
        finally:
            if self._backup is not None:
                shutil.rmtree(self._backup, ignore_errors=True)


class StagedFiles:
    """Write a set of files into a staging folder beside ``target`` and move them into
    ``target`` together on success (each move an atomic rename); on failure nothing moves.

    ``with StagedFiles(out) as stage: write into stage`` — for commands whose outputs are a few
    files in a folder that may hold other things (tables, coding sheets, calibration CSVs).
    """

    def __init__(self, target: Path):
        self.target = Path(target)
        self.stage: Path | None = None

    def __enter__(self) -> Path:
        if self.target.exists() and not self.target.is_dir():
            raise NotADirectoryError(f"{self.target} is a file; pass a folder")
        self.target.parent.mkdir(parents=True, exist_ok=True)
        self.stage = Path(tempfile.mkdtemp(prefix=f".{self.target.name}.staging-",
                                           dir=self.target.parent))
        return self.stage

    def __exit__(self, exc_type, exc, tb) -> None:
        assert self.stage is not None
        try:
            if exc_type is None:
                self.target.mkdir(parents=True, exist_ok=True)
                for path in sorted(self.stage.rglob("*")):
                    if path.is_file():
                        dest = self.target / path.relative_to(self.stage)
                        dest.parent.mkdir(parents=True, exist_ok=True)
                        os.replace(path, dest)
        finally:
            discard(self.stage)


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``path`` through a temporary sibling and a rename: never half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
