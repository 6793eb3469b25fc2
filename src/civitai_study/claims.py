"""Claims from the paper and related work (``data/claims.yaml``) beside this run's estimates.

Why: a number from another study describes *its* population (another crawl, another NSFW
definition, another period). Putting it next to ours without saying so invites a false
comparison, so every row says whether the populations match ("comparable") or not ("not
comparable", naming the first field that differs), and a claim the snapshot cannot address says
so. Comparability is decided field by field (importer id, exact dataset, NSFW definition,
denominator, counted unit), never by a name substring: "Civ-40K" must not pass for "Civ-40M".
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import yaml

from . import describe, limits
from .paths import DATA_DIR
from .snapshot import Snapshot

CLAIMS_YAML = DATA_DIR / "claims.yaml"
#: Fields that decide comparability; each must equal this run's (null matches only null).
MATCH_FIELDS = ("importer", "dataset", "nsfw_definition", "denominator", "counted_unit")
REQUIRED = ("id", "claim", "quantity", "value", "unit", "source", "population", *MATCH_FIELDS)
#: Quantities this module can estimate; ``[...]`` takes a month (YYYY-MM) or a tag.
QUANTITIES = {
    "images.n_total": "images in the snapshot",
    "models.n_total": "models in the snapshot",
    "models.n_poi": "models flagged poi",
    "models.poi_share": "share of models flagged poi",
    "models.nsfw_share": "share of models with the nsfw flag",
    "images.nsfw_share": "share of rated dated images above PG (or the run's definition)",
    "images.nsfw_share[YYYY-MM]": "share of the month's rated images above PG",
    "models.tag_count[TAG]": "models carrying the tag",
    "models.poi_female_share": "female share among single-gender-tagged poi models (text proxy)",
    "models.poi_downloads_total": "downloads of poi models",
    "images.nsfw_or_per_year": "odds ratio per year of the NSFW share (notebook 03)",
    "images.growth_ratio": "ratio of NSFW/SFW annual growth factors (notebook 03)",
}
_INDEXED = re.compile(r"^(?P<base>[a-z_.]+)\[(?P<arg>[^\]]+)\]$")
#: What this run's estimate of each quantity counts, and over which denominator. ``{definition}``
#: is the NSFW definition the run used (``above_pg`` unless the notebook chose ``r_plus``).
ESTIMATE_PROPERTIES: dict[str, dict[str, str | None]] = {
    "images.n_total": {"counted_unit": "images", "denominator": None, "nsfw_definition": None},
    "models.n_total": {"counted_unit": "models", "denominator": None, "nsfw_definition": None},
    "models.n_poi": {"counted_unit": "models", "denominator": None, "nsfw_definition": None},
    "models.poi_share": {"counted_unit": "models", "denominator": "all models",
                         "nsfw_definition": None},
    "models.nsfw_share": {"counted_unit": "models", "denominator": "all models",
                          "nsfw_definition": "model_nsfw_flag"},
    "images.nsfw_share": {"counted_unit": "images", "denominator": "rated images",
                          "nsfw_definition": "{definition}"},
    "models.tag_count": {"counted_unit": "models", "denominator": None, "nsfw_definition": None},
    "models.poi_female_share": {"counted_unit": "models",
                                "denominator": "single-gender-tagged poi models",
                                "nsfw_definition": None},
    "models.poi_downloads_total": {"counted_unit": "downloads", "denominator": None,
                                   "nsfw_definition": None},
    "images.nsfw_or_per_year": {"counted_unit": "images", "denominator": "rated images",
                                "nsfw_definition": "{definition}"},
    "images.growth_ratio": {"counted_unit": "images", "denominator": "rated images",
                            "nsfw_definition": "{definition}"},
}
#: The published Civ-40K table is a 40,000-row subset; the full collection has > 40 million rows.
CIV40M_MIN_ROWS = 40_000_000


class ClaimsError(ValueError):
    """``data/claims.yaml`` is malformed; the message names the entry and the fix."""


def load_claims(path: Path | str = CLAIMS_YAML) -> pd.DataFrame:
    """Read and validate the claims file (one row per claim, in file order)."""
    path = Path(path)
    if not path.is_file():
        raise ClaimsError(f"{path} is missing; restore data/claims.yaml from git")
    entries = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(entries, list):
        raise ClaimsError(f"{path}: expected a list of claims, got {type(entries).__name__}")
    seen = set()
    for i, entry in enumerate(entries):
        missing = [k for k in REQUIRED if not isinstance(entry, dict) or k not in entry]
        if missing:
            raise ClaimsError(f"{path}: entry {i + 1} lacks {missing}; every claim needs "
                              f"{', '.join(REQUIRED)} (value and the comparability fields "
                              "may be null)")
        if entry["id"] in seen:
            raise ClaimsError(f"{path}: claim id {entry['id']!r} appears twice")
        seen.add(entry["id"])
        if not entry["source"]:
            raise ClaimsError(f"{path}: claim {entry['id']!r} has no source")
    return pd.DataFrame(entries, columns=list(REQUIRED))


def run_estimates(con: duckdb.DuckDBPyConnection, quantities: list[str],
                  extra: dict[str, float] | None = None, definition: str = "above_pg"
                  ) -> dict[str, float]:
    """This run's value of each requested quantity that the snapshot can give.

    Image NSFW shares are of rated images with a date, under ``definition``
    (:func:`describe.rated_nsfw_counts`, the function notebooks 02 and 03 use too).
    ``extra`` carries model estimates computed elsewhere (e.g. the odds ratio from notebook 03).
    Quantities the snapshot cannot give are simply absent from the result.
    """
    out: dict[str, float] = dict(extra or {})
    wanted = set(quantities) - set(out)
    counts = con.execute("""SELECT (SELECT count(*) FROM images), (SELECT count(*) FROM models),
                                   (SELECT count(*) FILTER (WHERE poi) FROM models),
                                   (SELECT count(*) FILTER (WHERE nsfw) FROM models)""").fetchone()
    n_img, n_mod, n_poi, n_nsfw = (int(c) for c in counts)
    simple = {"images.n_total": n_img, "models.n_total": n_mod, "models.n_poi": n_poi}
    if n_mod:
        simple["models.poi_share"] = n_poi / n_mod
        simple["models.nsfw_share"] = n_nsfw / n_mod
    # the same denominator as notebooks 02 and 03: rated images with a date
    by_month = describe.rated_nsfw_counts(con, definition)
    rated = float(by_month["n"].sum()) if len(by_month) else 0.0
    if rated:
        simple["images.nsfw_share"] = float(by_month["k"].sum()) / rated
    for row in by_month.itertuples(index=False):
        simple[f"images.nsfw_share[{row.period}]"] = row.k / row.n
    if any(q.startswith("models.poi_") for q in wanted):
        gender = describe.gender_proxy(con).set_index("group")
        share = gender.loc["poi flag", "female_share_of_single_gender"]
        if pd.notna(share):
            simple["models.poi_female_share"] = float(share)
        total = con.execute("SELECT sum(download_count) FROM models WHERE poi").fetchone()[0]
        if total is not None:
            simple["models.poi_downloads_total"] = float(total)
    tags = sorted({m.group("arg") for q in wanted if (m := _INDEXED.match(q))
                   and m.group("base") == "models.tag_count"})
    if tags:
        found = con.execute(f"""
            SELECT lower(trim(tag)) AS tag, count(DISTINCT model_id) FROM model_tags
            WHERE lower(trim(tag)) IN (SELECT unnest({describe.sql_list(tags)})) GROUP BY ALL
        """).fetchall()
        have = dict(found)
        for tag in tags:
            simple[f"models.tag_count[{tag}]"] = int(have.get(tag, 0))
    out.update({q: float(v) for q, v in simple.items() if q in wanted})
    return out


def snapshot_population(snapshot: Snapshot) -> str:
    """What this run's numbers are of, in words."""
    if snapshot.is_synthetic:
        return "SYNTHETIC sample (describes the generator, not CivitAI)"
    return snapshot.label


def snapshot_origin(snapshot: Snapshot) -> dict[str, str | None]:
    """The snapshot's importer id and exact dataset, from its manifest.

    New imports write ``source.dataset``; for older manifests it is derived from facts, not from
    the display name: a models-jsonl import is its input file's name without extensions; a civ40k
    import is Civ-40M only with at least :data:`CIV40M_MIN_ROWS` rows read, else Civ-40K.
    """
    source = snapshot.manifest.get("source", {}) or {}
    kind = source.get("kind")
    importer = source.get("importer") if kind == "import" else kind
    dataset = source.get("dataset")
    if dataset is None and importer == "models-jsonl":
        name = str((source.get("input") or {}).get("name", ""))
        dataset = name.split(".")[0] or None
    elif dataset is None and importer == "civ40k":
        rows = int(source.get("records_read") or 0)
        dataset = "Civ-40M" if rows >= CIV40M_MIN_ROWS else "Civ-40K"
    elif dataset is None and importer == "civiverse":
        dataset = "Civiverse-6M"
    return {"importer": importer, "dataset": dataset}


def estimate_properties(quantity: str, definition: str = "above_pg") -> dict[str, str | None]:
    """Counted unit, denominator and NSFW definition of this run's estimate of ``quantity``."""
    match = _INDEXED.match(quantity)
    base = match.group("base") if match else quantity
    props = dict(ESTIMATE_PROPERTIES.get(base, {"counted_unit": None, "denominator": None,
                                                "nsfw_definition": None}))
    if props["nsfw_definition"] == "{definition}":
        props["nsfw_definition"] = definition
    return props


def _blank(value: Any) -> Any:
    """YAML null arrives from pandas as NaN or None; both mean "none"."""
    return None if value is None or (isinstance(value, float) and value != value) else value


def mismatch(claim: Any, snapshot: Snapshot, definition: str = "above_pg") -> str | None:
    """The first comparability field on which ``claim`` and this run differ (None: all match)."""
    if snapshot.is_synthetic:
        return "synthetic data"
    ours = {**snapshot_origin(snapshot), **estimate_properties(claim.quantity, definition)}
    for name in MATCH_FIELDS:
        theirs = _blank(getattr(claim, name))
        if name == "importer" and theirs is None:
            return "no importer reads the claim's data"
        if theirs != ours[name]:
            return f"{name.replace('_', ' ')} differs: {theirs} vs {ours[name]}"
    return None


def compare_claims(claims: pd.DataFrame, estimates: dict[str, float],
                   snapshot: Snapshot, definition: str = "above_pg") -> pd.DataFrame:
    """Each claim beside this run's estimate, with a verdict on comparability.

    ``comparable`` only when the snapshot is not synthetic and the claim's importer, dataset,
    NSFW definition, denominator and counted unit all equal this run's (:func:`mismatch`);
    otherwise ``not comparable (<first difference>)``; ``no estimate`` when the snapshot cannot
    give the quantity.
    """
    rows = []
    for claim in claims.itertuples(index=False):
        value = estimates.get(claim.quantity)
        has_value = _blank(claim.value) is not None
        differs = mismatch(claim, snapshot, definition)
        limit = limits.claim_limit(snapshot.manifest, claim.quantity)
        if limit is not None:  # a number here would describe the API's filter, not CivitAI
            value, verdict = None, limit
        elif value is None:
            verdict = "no estimate (the snapshot cannot give this quantity)"
        elif differs is None and has_value:
            verdict = "comparable"
        elif differs is None:
            verdict = "comparable (qualitative claim)"
        else:
            verdict = f"not comparable ({differs})"
        rows.append({"id": claim.id, "claim": claim.claim, "quantity": claim.quantity,
                     "claim_value": claim.value, "this_run": value, "verdict": verdict,
                     "unit": claim.unit, "claim_population": claim.population,
                     "this_run_population": snapshot_population(snapshot),
                     "source": claim.source})
    return pd.DataFrame(rows)


def format_value(value: Any, unit: str = "") -> str:
    """Rounded display of a claim or estimate: shares as %, counts with separators."""
    if value is None or (isinstance(value, float) and value != value):
        return "-"
    value = float(value)
    if str(unit).startswith("share"):
        return f"{value:.1%}"
    if value.is_integer() or abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.2f}"


def display_table(table: pd.DataFrame) -> pd.DataFrame:
    """The comparison as rounded text columns, for printing in notebooks."""
    out = table[["id", "claim_value", "this_run", "verdict"]].copy()
    out["claim_value"] = [format_value(v, u) for v, u in zip(table["claim_value"], table["unit"],
                                                             strict=True)]
    out["this_run"] = [format_value(v, u) for v, u in zip(table["this_run"], table["unit"],
                                                          strict=True)]
    return out
