"""Apply the codebook to a whole snapshot, streaming Arrow batches out of DuckDB.

Fields are coded and reported separately because they mean different things: a term in a
*negative* prompt is avoidance, not use; model tags and names are what creators advertise;
trained words are what an adapter was trained to respond to. Each field has its own unit
(document): an image for prompts, a model for names and tags, a model version for trained words.

Nothing is dropped silently: documents without text in a field are counted as ``n_empty`` and
excluded from that field's denominators; documents without a date go to month ``unknown``.
Row-level data never reaches pandas: batches go Arrow → numpy, and only aggregates are kept.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ..nsfw import LEVEL_LABELS
from ..snapshot import Snapshot
from .codebook import Codebook
from .matcher import BatchMatches, Matcher

log = logging.getLogger(__name__)

BATCH_ROWS = 100_000
UNKNOWN_MONTH = -1
#: Month × stratum cells share one integer key: month_key * CELL_BASE + (stratum + 1).
CELL_BASE = 64


@dataclass(frozen=True)
class FieldSource:
    """Where a field's text lives: SQL giving ``doc_id, month_key, stratum, <text columns>``."""

    fields: tuple[str, ...]
    unit: str
    sql: str
    strata: dict[int, str]


_MONTH = "coalesce(CAST(year({c}) * 12 + month({c}) - 1 AS INTEGER), -1)"
_MODEL_STRATA = {0: "model nsfw=false", 1: "model nsfw=true", -1: "model nsfw=unknown"}
SOURCES: tuple[FieldSource, ...] = (
    FieldSource(("prompt", "negative_prompt"), "image",
                f"SELECT id AS doc_id, {_MONTH.format(c='created_at')} AS month_key, "
                "coalesce(CAST(nsfw_level AS INTEGER), -1) AS stratum, prompt, negative_prompt "
                "FROM images", {**{k: v for k, v in LEVEL_LABELS.items()}, -1: "missing"}),
    FieldSource(("model_name",), "model",
                f"SELECT id AS doc_id, {_MONTH.format(c='created_at')} AS month_key, "
                "CASE WHEN nsfw IS NULL THEN -1 WHEN nsfw THEN 1 ELSE 0 END AS stratum, "
                "name AS model_name FROM models", _MODEL_STRATA),
    FieldSource(("model_tags",), "model",
                f"SELECT m.id AS doc_id, {_MONTH.format(c='m.created_at')} AS month_key, "
                "CASE WHEN m.nsfw IS NULL THEN -1 WHEN m.nsfw THEN 1 ELSE 0 END AS stratum, "
                "string_agg(t.tag, ', ' ORDER BY t.tag) AS model_tags "
                "FROM models m LEFT JOIN model_tags t ON t.model_id = m.id "
                "GROUP BY m.id, m.created_at, m.nsfw", _MODEL_STRATA),
    FieldSource(("trained_words",), "model version",
                f"SELECT v.id AS doc_id, {_MONTH.format(c='v.created_at')} AS month_key, "
                "CASE WHEN m.nsfw IS NULL THEN -1 WHEN m.nsfw THEN 1 ELSE 0 END AS stratum, "
                "array_to_string(v.trained_words, ', ') AS trained_words "
                "FROM model_versions v LEFT JOIN models m ON m.id = v.model_id", _MODEL_STRATA),
)
FIELDS: tuple[str, ...] = tuple(f for s in SOURCES for f in s.fields)


def month_label(key: int) -> str:
    return "unknown" if key < 0 else f"{key // 12:04d}-{key % 12 + 1:02d}"


@dataclass
class FieldTally:
    """Running aggregates of one field; only counts, never rows."""

    field: str
    unit: str
    n_labels: int
    n_categories: int
    n_docs: int = 0
    n_empty: int = 0
    n_adapter: int = 0
    n_bytes: int = 0
    term_docs: np.ndarray = None  # type: ignore[assignment]
    by_month: dict[int, np.ndarray] = field(default_factory=dict)  # key → [n_total, per cat...]
    by_stratum: dict[int, np.ndarray] = field(default_factory=dict)
    by_cell: dict[int, np.ndarray] = field(default_factory=dict)  # month × stratum
    masks: np.ndarray = None  # type: ignore[assignment]
    weak_any: np.ndarray = None  # type: ignore[assignment]  # documents with a weak signal
    weak_only: np.ndarray = None  # type: ignore[assignment]  # ... and no strong term

    def __post_init__(self) -> None:
        self.term_docs = np.zeros(self.n_labels, dtype=np.int64)
        self.masks = np.zeros(1 << self.n_categories, dtype=np.int64)
        self.weak_any = np.zeros(self.n_categories, dtype=np.int64)
        self.weak_only = np.zeros(self.n_categories, dtype=np.int64)

    def add_weak(self, weak: np.ndarray, strong: np.ndarray) -> None:
        """Count the weak tier separately: it never defines a category."""
        self.weak_any += weak.sum(axis=0)
        self.weak_only += (weak & ~strong).sum(axis=0)

    def add(self, matches: BatchMatches, flags: np.ndarray, month: np.ndarray,
            stratum: np.ndarray) -> None:
        nonempty = matches.nonempty
        self.n_docs += matches.n_docs
        self.n_empty += int((~nonempty).sum())
        self.n_adapter += int(matches.has_adapter.sum())
        self.n_bytes += matches.n_bytes
        self.term_docs += np.bincount(matches.term, minlength=self.n_labels)
        doc_cat = np.nonzero(flags)  # (document, category) pairs, documents with text only
        cell = month.astype(np.int64) * CELL_BASE + (stratum.astype(np.int64) + 1)
        for keys, store in ((month, self.by_month), (stratum, self.by_stratum),
                            (cell, self.by_cell)):
            keys = keys.astype(np.int64)
            low = int(keys.min()) if len(keys) else 0
            index = keys - low
            width = int(index.max()) + 1 if len(index) else 0
            totals = np.bincount(index[nonempty], minlength=width)
            per_cat = np.bincount(index[doc_cat[0]] * self.n_categories + doc_cat[1],
                                  minlength=width * self.n_categories
                                  ).reshape(width, self.n_categories)
            for offset in np.flatnonzero(totals).tolist():
                row = np.concatenate([[totals[offset]], per_cat[offset]])
                store[low + offset] = store.get(low + offset, 0) + row
        weights = (1 << np.arange(self.n_categories, dtype=np.int64))
        masks = flags[nonempty].astype(np.int64) @ weights
        self.masks += np.bincount(masks, minlength=len(self.masks))


@dataclass
class CodingResult:
    """Aggregated output of :func:`code_snapshot`; every table is sorted and deterministic."""

    codebook: Codebook
    labels: list[tuple[str, str]]
    categories: list[str]
    tallies: dict[str, FieldTally]
    strata: dict[str, dict[int, str]]

    def fields_summary(self) -> pd.DataFrame:
        """Per field: unit, documents, documents skipped for lack of text, adapters, megabytes."""
        return pd.DataFrame([{
            "field": f, "unit": t.unit, "n_documents": t.n_docs, "n_empty": t.n_empty,
            "n_coded": t.n_docs - t.n_empty, "n_with_adapter": t.n_adapter,
            "megabytes": round(t.n_bytes / 1e6, 3)} for f, t in self.tallies.items()])

    def term_counts(self, include_zero: bool = True) -> pd.DataFrame:
        """``category, term, field, n_documents``: documents using each term, per field."""
        rows = [{"category": c, "term": term, "field": f, "n_documents": int(t.term_docs[i])}
                for f, t in self.tallies.items() for i, (c, term) in enumerate(self.labels)]
        out = pd.DataFrame(rows, columns=["category", "term", "field", "n_documents"])
        if not include_zero:
            out = out[out["n_documents"] > 0]
        return out.sort_values(["category", "term", "field"], ignore_index=True)

    def _shares(self, attribute: str, key_name: str, label) -> pd.DataFrame:
        rows = []
        for f, t in self.tallies.items():
            for key, vec in getattr(t, attribute).items():
                total = int(vec[0])
                for j, cat in enumerate(self.categories):
                    n = int(vec[j + 1])
                    rows.append({key_name: label(f, key), "category": cat, "field": f,
                                 "n_documents": n, "share": n / total if total else np.nan,
                                 "n_total": total})
        out = pd.DataFrame(rows, columns=[key_name, "category", "field", "n_documents", "share",
                                          "n_total"])
        return out.sort_values([key_name, "category", "field"], ignore_index=True)

    def categories_by_month(self) -> pd.DataFrame:
        """``month, category, field, n_documents, share, n_total`` (share of coded documents)."""
        return self._shares("by_month", "month", lambda f, k: month_label(k))

    def categories_by_level(self) -> pd.DataFrame:
        """Category shares by image NSFW level (prompt fields) or model NSFW flag (model fields)."""
        return self._shares("by_stratum", "nsfw_level",
                            lambda f, k: self.strata[f].get(k, f"level {k}"))

    def categories_by_month_level(self) -> pd.DataFrame:
        """``month, nsfw_level, category, field, n_documents, share, n_total`` per month and
        stratum (image NSFW level for prompt fields; the model's nsfw flag for model fields).

        Why: a category tied to NSFW content rises with the NSFW mix alone; its trend *within*
        level (:mod:`civitai_study.coding.composition`) needs counts per month and level.
        """
        rows = []
        for f, t in self.tallies.items():
            for key, vec in t.by_cell.items():
                month, offset = divmod(key, CELL_BASE)
                level = self.strata[f].get(offset - 1, f"level {offset - 1}")
                total = int(vec[0])
                for j, cat in enumerate(self.categories):
                    n = int(vec[j + 1])
                    rows.append({"month": month_label(month), "nsfw_level": level,
                                 "category": cat, "field": f, "n_documents": n,
                                 "share": n / total if total else np.nan, "n_total": total})
        columns = ["month", "nsfw_level", "category", "field", "n_documents", "share", "n_total"]
        out = pd.DataFrame(rows, columns=columns)
        return out.sort_values(["month", "nsfw_level", "category", "field"], ignore_index=True)

    def cooccurrence(self, field: str = "prompt") -> pd.DataFrame:
        """Documents of ``field`` using both category A and category B (A = B: using A).

        ``lift`` = P(A and B) / (P(A) P(B)) over the ``n_total`` documents with text: above 1 the
        two categories meet more often than if they were independent, which conditional shares
        alone hide when one category is nearly everywhere.
        """
        tally = self.tallies[field]
        masks = tally.masks
        total = int(tally.n_docs - tally.n_empty)
        values = np.arange(len(masks))
        has = [((values >> i) & 1).astype(bool) for i in range(len(self.categories))]
        alone = [int(masks[h].sum()) for h in has]
        rows = []
        for i, a in enumerate(self.categories):
            for j, b in enumerate(self.categories):
                both = int(masks[has[i] & has[j]].sum())
                expected = alone[i] * alone[j] / total if total else 0.0
                rows.append({"category_a": a, "category_b": b, "n_documents": both,
                             "n_total": total,
                             "lift": both / expected if expected else np.nan})
        return pd.DataFrame(rows)

    def weak_totals(self) -> pd.DataFrame:
        """``field, category, n_weak, n_weak_only, n_total``: the weak tier, reported apart.

        ``n_weak_only`` documents carry a weak signal of the category and no strong term: they
        are *not* counted in the category (``category_totals``).
        """
        rows = [{"field": f, "category": cat, "n_weak": int(t.weak_any[i]),
                 "n_weak_only": int(t.weak_only[i]), "n_total": int(t.n_docs - t.n_empty)}
                for f, t in self.tallies.items() for i, cat in enumerate(self.categories)]
        return pd.DataFrame(rows).sort_values(["field", "category"], ignore_index=True)

    def category_totals(self) -> pd.DataFrame:
        """``field, category, n_documents, n_total, share`` over the whole snapshot."""
        rows = []
        for f, t in self.tallies.items():
            total = int(t.n_docs - t.n_empty)
            values = np.arange(len(t.masks))
            for i, cat in enumerate(self.categories):
                n = int(t.masks[((values >> i) & 1).astype(bool)].sum())
                rows.append({"field": f, "category": cat, "n_documents": n, "n_total": total,
                             "share": n / total if total else np.nan})
        return pd.DataFrame(rows).sort_values(["field", "category"], ignore_index=True)


def record_batches(con, sql: str, rows: int = BATCH_ROWS) -> Iterator[pa.RecordBatch]:
    """Stream a query's result as Arrow record batches (DuckDB API differs across versions)."""
    relation = con.sql(sql)
    reader = (relation.to_arrow_reader(rows) if hasattr(relation, "to_arrow_reader")
              else relation.fetch_record_batch(rows))
    yield from reader


def _select(source: FieldSource, wanted: tuple[str, ...]) -> str:
    """The source's query restricted to the wanted text columns (don't scan the others)."""
    columns = ", ".join(["doc_id", "month_key", "stratum", *wanted])
    return f"SELECT {columns} FROM ({source.sql})"


def _code_batch(matcher: Matcher, batch: pa.RecordBatch, fields: tuple[str, ...]
                ) -> list[tuple[str, BatchMatches, np.ndarray]]:
    out = []
    for name in fields:
        matches = matcher.match(batch.column(name))  # deduplicates repeated texts first
        out.append((name, matches, matcher.category_flags(matches), matcher.weak_flags(matches)))
    return out


def code_snapshot(snapshot: Snapshot, codebook: Codebook, fields: tuple[str, ...] = FIELDS,
                  batch_rows: int = BATCH_ROWS, workers: int = 2,
                  flags_path: Path | None = None, matcher: Matcher | None = None
                  ) -> CodingResult:
    """Code every field of ``snapshot`` with ``codebook``.

    Batches stream out of DuckDB; ``workers`` threads normalise and match them (Arrow, numpy,
    the compiled loops of :mod:`.kernels` and the automaton's search release the GIL; pattern
    rules and the glue between stages hold it).
    With ``flags_path`` the per-document category flags are written as Parquet (``field,
    doc_id, month, nsfw_level, categories`` with one bit per category, in codebook order) —
    one row per coded document, for audits and joins.
    """
    unknown = sorted(set(fields) - set(FIELDS))
    if unknown:
        raise ValueError(f"unknown field(s) {unknown}; choose from {list(FIELDS)}")
    matcher = matcher or Matcher(codebook)
    n_cat = len(matcher.categories)
    tallies: dict[str, FieldTally] = {}
    strata: dict[str, dict[int, str]] = {}
    writer = None
    con = snapshot.connect()
    try:
        for source in SOURCES:
            wanted = tuple(f for f in source.fields if f in fields)
            if not wanted:
                continue
            for name in wanted:
                tallies[name] = FieldTally(name, source.unit, len(matcher.labels), n_cat)
                strata[name] = source.strata
            with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
                pending = []
                for batch in record_batches(con, _select(source, wanted), batch_rows):
                    pending.append((batch, pool.submit(_code_batch, matcher, batch, wanted)))
                    if len(pending) > workers:
                        writer = _collect(pending.pop(0), tallies, writer, flags_path)
                for item in pending:
                    writer = _collect(item, tallies, writer, flags_path)
    finally:
        con.close()
        if writer is not None:
            writer.close()
    for name, tally in tallies.items():
        log.info("coded %s: %s documents, %s without text (skipped)", name, f"{tally.n_docs:,}",
                 f"{tally.n_empty:,}")
    return CodingResult(codebook, matcher.labels, matcher.categories, tallies, strata)


FLAGS_SCHEMA = pa.schema([("field", pa.string()), ("doc_id", pa.int64()),
                          ("month", pa.string()), ("nsfw_level", pa.string()),
                          ("categories", pa.int32())])


def _collect(item, tallies: dict[str, FieldTally], writer, flags_path: Path | None):
    batch, future = item
    month = batch.column("month_key").to_numpy(zero_copy_only=False)
    stratum = batch.column("stratum").to_numpy(zero_copy_only=False)
    for name, matches, flags, weak in future.result():
        tallies[name].add(matches, flags, month, stratum)
        tallies[name].add_weak(weak, flags)
        if flags_path is not None:
            keep = matches.nonempty
            weights = 1 << np.arange(flags.shape[1], dtype=np.int64)
            table = pa.table({
                "field": pa.array([name] * int(keep.sum()), pa.string()),
                "doc_id": batch.column("doc_id").filter(pa.array(keep)),
                "month": pa.array([month_label(int(k)) for k in month[keep]], pa.string()),
                "nsfw_level": pa.array([str(int(k)) for k in stratum[keep]], pa.string()),
                "categories": pa.array((flags[keep].astype(np.int64) @ weights).astype(np.int32)),
            }, schema=FLAGS_SCHEMA)
            if writer is None:
                flags_path.parent.mkdir(parents=True, exist_ok=True)
                writer = pq.ParquetWriter(flags_path, FLAGS_SCHEMA, compression="zstd")
            writer.write_table(table)
    return writer
