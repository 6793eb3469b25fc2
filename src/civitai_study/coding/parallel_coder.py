"""Code one text column of a snapshot's Parquet parts on all cores, merged deterministically.

Work is cut into units (a Parquet file, a row group, a slice of rows); each unit is read and
coded by a worker and returns only per-document category bitmasks and term counts. Units are
merged in unit order, never in completion order, so the result is byte-identical to coding the
units one after the other in this process (``executor=None``), whatever executor runs them.

The executor is an argument: any object with ``submit`` returning futures.

- A thread pool (``concurrent.futures.ThreadPoolExecutor``) shares this process's matcher and
  warm memory. Reading, the compiled loops (:mod:`.kernels`), Arrow kernels and the automaton's
  search run without the GIL; pattern rules and the glue between stages hold it. On a few cores
  and one run it is the fastest (``benchmarks/coding.py``).
- A process pool (:func:`process_pool`) has no GIL at all, but each new worker process pays
  for its start: its first unit touches tens of MB of fresh memory, which page-faults.
- The executor of a Dask client (issue 12) spreads units over machines.
"""

from __future__ import annotations

import hashlib
import os
import pickle
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..heap import pad_heap
from .codebook import Codebook
from .matcher import Matcher

UNIT_ROWS = 40_000  # rows per unit: enough to amortise the call, small enough to balance


@dataclass(frozen=True)
class Unit:
    """A slice of one row group of one Parquet file."""

    path: str
    row_group: int
    start: int
    length: int


def plan_units(paths: list[Path], rows: int = UNIT_ROWS) -> list[Unit]:
    """Units covering every row of the files, in file, row-group and row order."""
    units = []
    for path in sorted(paths):
        meta = pq.ParquetFile(path).metadata
        for group in range(meta.num_row_groups):
            n = meta.row_group(group).num_rows
            units.extend(Unit(str(path), group, start, min(rows, n - start))
                         for start in range(0, n, rows))
    return units


@dataclass(frozen=True)
class UnitResult:
    doc_id: np.ndarray  # int64
    strong: np.ndarray  # int32 bitmask per document, one bit per category (codebook order)
    weak: np.ndarray  # int32 bitmask of weak-tier categories
    term_docs: np.ndarray  # int64 documents per label
    n_bytes: int


_MATCHERS: dict[str, Matcher] = {}


def _matcher(codebook: Codebook, weighted: bool, key: str) -> Matcher:
    """One matcher per worker process and codebook (built on the first unit it codes).

    Threads of one pool share it; two that start together may each build one, which is
    harmless: each returns the matcher it built or found, never a missing entry.
    """
    matcher = _MATCHERS.get(key)
    if matcher is None:
        pad_heap()  # the process that codes: no page faults between units (civitai_study.heap)
        matcher = Matcher(codebook, weighted=weighted)
        _MATCHERS.clear()
        _MATCHERS[key] = matcher
    return matcher


def forget_matchers() -> None:
    """Drop this process's cached matchers: the next unit builds its own (what a fresh process
    pays; benchmarks call this so no mode inherits another's matcher)."""
    _MATCHERS.clear()


def code_unit(unit: Unit, column: str, id_column: str, codebook: Codebook, weighted: bool,
              key: str) -> UnitResult:
    """Read and code one unit (runs in a worker)."""
    table = pq.ParquetFile(unit.path).read_row_group(unit.row_group,
                                                     columns=[id_column, column])
    table = table.slice(unit.start, unit.length)
    matcher = _matcher(codebook, weighted, key)
    matches = matcher.match(table.column(column))
    bits = 1 << np.arange(len(matcher.categories), dtype=np.int64)
    strong = (matcher.category_flags(matches).astype(np.int64) @ bits).astype(np.int32)
    weak = (matcher.weak_flags(matches).astype(np.int64) @ bits).astype(np.int32)
    ids = table.column(id_column).to_numpy().astype(np.int64)
    return UnitResult(ids, strong, weak,
                      np.bincount(matches.term, minlength=len(matcher.labels)).astype(np.int64),
                      matches.n_bytes)


@dataclass(frozen=True)
class ColumnCoding:
    """Merged result: per document bitmasks (in unit order) and per label document counts."""

    table: pa.Table  # doc_id, categories, weak_categories
    term_docs: np.ndarray
    n_bytes: int
    n_units: int


def codebook_key(codebook: Codebook, weighted: bool) -> str:
    return hashlib.sha256(pickle.dumps((codebook, weighted))).hexdigest()


def code_column(paths: list[Path], codebook: Codebook, column: str = "prompt",
                id_column: str = "id", executor: Executor | None = None,
                unit_rows: int = UNIT_ROWS, weighted: bool = True) -> ColumnCoding:
    """Code ``column`` of the Parquet files; ``executor=None`` codes the units here, in order.

    Results are merged in unit order, so every executor gives byte-identical output.
    """
    units = plan_units(paths, unit_rows)
    key = codebook_key(codebook, weighted)
    args = (column, id_column, codebook, weighted, key)
    if executor is None:
        pad_heap()  # this process codes: civitai_study.heap (workers pad in _matcher)
        results = [code_unit(u, *args) for u in units]
    else:
        futures = [executor.submit(code_unit, u, *args) for u in units]
        results = [f.result() for f in futures]
    if results:
        term_docs = np.sum([r.term_docs for r in results], axis=0)
        ids = np.concatenate([r.doc_id for r in results])
        strong = np.concatenate([r.strong for r in results])
        weak = np.concatenate([r.weak for r in results])
    else:
        term_docs = np.zeros(len(codebook.terms) + len(codebook.patterns), dtype=np.int64)
        ids = np.zeros(0, dtype=np.int64)
        strong = weak = np.zeros(0, dtype=np.int32)
    table = pa.table({"doc_id": ids, "categories": strong, "weak_categories": weak})
    return ColumnCoding(table, term_docs, sum(r.n_bytes for r in results), len(units))


def process_pool(workers: int | None = None) -> ProcessPoolExecutor:
    """A process pool over all cores (``workers`` or ``os.cpu_count()``)."""
    return ProcessPoolExecutor(max_workers=workers or os.cpu_count() or 1)
