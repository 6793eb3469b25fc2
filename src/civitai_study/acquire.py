"""One entry point for notebook 01: make a snapshot from the chosen source.

``source`` is ``sample`` (the synthetic default), ``existing`` (read a snapshot already on disk),
``collect`` (crawl CivitAI's API) or ``import``
(convert a published dataset or an existing crawl).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .snapshot import Snapshot, load_snapshot
from .synthetic import SampleConfig, write_sample

SOURCES = ("sample", "existing", "collect", "import")


def _existing_manifest(out: Path) -> dict | None:
    path = out / "manifest.json"
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        return None


def acquire(source: str, out: Path, **options: Any) -> Snapshot:
    """Create (or refresh) the snapshot at ``out`` from ``source``; return it validated."""
    if source == "sample":
        existing = _existing_manifest(Path(out))
        if existing is not None and not existing.get("synthetic", False):
            raise ValueError(
                f"{out} holds a non-synthetic snapshot ({existing.get('source', {}).get('name')}); "
                "refusing to overwrite it with the sample: set source='existing' to read it"
            )
        fields = {k: options[k] for k in SAMPLE_OPTIONS if k in options}
        return write_sample(Path(out), SampleConfig(**fields))
    if source == "existing":
        return load_snapshot(out)
    if source == "import":
        return _import(Path(out), **options)
    if source == "collect":
        return _collect(Path(out), **options)
    raise ValueError(f"unknown source {source!r}; choose one of {', '.join(SOURCES)}")


SAMPLE_OPTIONS = ("seed", "n_images", "n_models")
IMPORT_OPTIONS = ("importer", "path")
COLLECT_OPTIONS = ("endpoint", "since", "until", "max_items", "base_url", "rate")


def acquire_options(source: str, **parameters: Any) -> dict[str, Any]:
    """The notebook parameters that ``source`` takes, without the ones left at ``None``.

    Notebook 01 has one parameter for every option of every source; this picks those that apply,
    so a collection window set for ``collect`` never leaks into ``sample``.
    """
    allowed = {"sample": SAMPLE_OPTIONS, "existing": (), "import": IMPORT_OPTIONS,
               "collect": COLLECT_OPTIONS}
    if source not in allowed:
        raise ValueError(f"unknown source {source!r}; choose one of {', '.join(SOURCES)}")
    return {k: v for k, v in parameters.items() if k in allowed[source] and v is not None}


def _check_options(source: str, options: dict[str, Any], allowed: tuple[str, ...]) -> None:
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ValueError(f"source={source!r} does not take {', '.join(unknown)}; it takes "
                         f"{', '.join(allowed)}")


def _import(out: Path, **options: Any) -> Snapshot:
    """``source="import"``: ``importer`` (models-jsonl, civ40k, civiverse) and ``path``."""
    from .importers import NAMES, run_importer

    _check_options("import", options, IMPORT_OPTIONS)
    importer, path = options.get("importer"), options.get("path")
    if importer not in NAMES or not path:
        raise ValueError(f"source='import' needs importer= one of {', '.join(NAMES)} and path= "
                         "the input file or folder")
    existing = _existing_manifest(out)
    if existing is not None and existing.get("source", {}).get("kind") == "collect":
        raise ValueError(f"{out} holds a crawl; import into another folder instead of "
                         "overwriting it")
    return run_importer(importer, path, out)


def _collect(out: Path, **options: Any) -> Snapshot:
    """``source="collect"``: crawl (or resume crawling) one endpoint into ``out``.

    ``None`` options take the collector's defaults (a polite rate); ``rate=0`` means unlimited,
    as ``--rate 0`` does on the command line.
    """
    from .collect import CollectOptions, collect

    _check_options("collect", options, COLLECT_OPTIONS)
    endpoint = options.pop("endpoint", None) or "images"
    settings = {k: v for k, v in options.items() if v is not None}
    if settings.get("rate") == 0:
        settings["rate"] = None
    return collect(endpoint, out, CollectOptions(**settings))


def _conditions_table(conditions: dict[str, Any]) -> Any:
    """The manifest's collection conditions flattened to (field, value) rows."""
    import pandas as pd

    rows: list[tuple[str, str]] = []

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict) and value:
            for key in sorted(value):
                walk(f"{prefix}.{key}" if prefix else str(key), value[key])
        else:
            rows.append((prefix, json.dumps(value, sort_keys=True, default=str)
                         if isinstance(value, dict | list) else str(value)))

    walk("", conditions)
    return pd.DataFrame(rows, columns=["field", "value"])


def _quarantine_table(manifest: dict[str, Any]) -> Any:
    """Quarantined records by kind and reason (empty for snapshots that never quarantined)."""
    import pandas as pd

    quarantine = manifest.get("quarantine") or {}
    reasons = quarantine.get("by_reason", {}) if isinstance(quarantine, dict) else {}
    return pd.DataFrame(sorted(reasons.items()), columns=["reason", "records"]).astype(
        {"records": "int64"})


#: Manifest keys that describe how a snapshot was made (shown in notebook 01). The import date
#: (``imported_on``) stays in the manifest but is not shown: re-importing the same data on another
#: day must give the same stored outputs.
CONDITION_KEYS = ("source", "snapshot_date", "window", "parameters", "request", "collection",
                  "clamp_check", "tool", "duplicates_dropped", "acquired",
                  "not_measurable", "not_measurable_note")


def snapshot_overview(snapshot: Snapshot) -> dict[str, Any]:
    """Small tables saying what a snapshot holds (notebook 01 shows them).

    Keys: ``counts`` (rows per table), ``levels`` (images per NSFW level),
    ``images_by_month_level``, ``date_range_table`` (first/last image and model dates),
    ``quarantine`` (records by reason),
    ``conditions_table`` (what was requested, window, collection date, tool version) — all
    DataFrames; plus ``date_range`` (first, last image day) and ``conditions`` (the manifest
    excerpt as a dict) for printing.
    """
    import pandas as pd

    from .nsfw import LEVEL_LABELS

    con = snapshot.connect()
    counts = pd.DataFrame(
        [(t, int(con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]))
         for t in ("images", "models", "model_versions", "model_tags")],
        columns=["table", "rows"])
    span = con.execute(
        "SELECT strftime(min(created_at), '%Y-%m-%d'), strftime(max(created_at), '%Y-%m-%d') "
        "FROM images").fetchone()
    levels = con.execute(
        "SELECT nsfw_level, count(*) AS n FROM images GROUP BY 1 ORDER BY 1").df()
    levels["label"] = levels["nsfw_level"].map(LEVEL_LABELS).fillna("other")
    levels["share"] = (levels["n"] / levels["n"].sum()).round(4)
    per_month = con.execute(
        "SELECT strftime(created_at, '%Y-%m') AS month, nsfw_level, count(*) AS n "
        "FROM images GROUP BY 1, 2 ORDER BY 1, 2").df()
    by_month = (per_month.pivot(index="month", columns="nsfw_level", values="n")
                .fillna(0).astype(int))
    by_month.columns = [LEVEL_LABELS.get(int(c), str(c)) for c in by_month.columns]
    ranges = con.execute(
        "SELECT 'images' AS table_name, strftime(min(created_at), '%Y-%m-%d') AS first, "
        "strftime(max(created_at), '%Y-%m-%d') AS last FROM images UNION ALL "
        "SELECT 'models', strftime(min(created_at), '%Y-%m-%d'), "
        "strftime(max(created_at), '%Y-%m-%d') FROM models").df()
    conditions = {k: snapshot.manifest.get(k) for k in CONDITION_KEYS if k in snapshot.manifest}
    con.close()
    return {"counts": counts, "date_range": span, "levels": levels,
            "images_by_month_level": by_month.reset_index(),
            "quarantine": _quarantine_table(snapshot.manifest), "conditions": conditions,
            "date_range_table": ranges, "conditions_table": _conditions_table(conditions)}
