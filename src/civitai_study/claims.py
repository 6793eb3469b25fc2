"""Claims from the paper and related work (``data/claims.yaml``) beside this run's estimates.

Why: a number from another study describes *its* population (another crawl, another NSFW
definition, another period). Putting it next to ours without saying so invites a false
comparison, so every row says whether the populations match ("comparable") or not ("not
comparable"), and a claim the snapshot cannot address says so.
"""

from __future__ import annotations

import json
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
REQUIRED = ("id", "claim", "quantity", "value", "unit", "source", "population",
            "comparable_when")
#: Quantities this module can estimate; ``[...]`` takes a month (YYYY-MM) or a tag.
QUANTITIES = {
    "images.n_total": "images in the snapshot",
    "models.n_total": "models in the snapshot",
    "models.n_poi": "models flagged poi",
    "models.poi_share": "share of models flagged poi",
    "models.nsfw_share": "share of models with the nsfw flag",
    "images.nsfw_share": "share of dated images above PG",
    "images.nsfw_share[YYYY-MM]": "share of the month's images above PG",
    "models.tag_count[TAG]": "models carrying the tag",
    "models.poi_female_share": "female share among single-gender-tagged poi models (text proxy)",
    "models.poi_downloads_total": "downloads of poi models",
    "images.nsfw_or_per_year": "odds ratio per year of the NSFW share (notebook 03)",
    "images.growth_ratio": "ratio of NSFW/SFW annual growth factors (notebook 03)",
}
_INDEXED = re.compile(r"^(?P<base>[a-z_.]+)\[(?P<arg>[^\]]+)\]$")


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
                              f"{', '.join(REQUIRED)} (value and comparable_when may be null)")
        if entry["id"] in seen:
            raise ClaimsError(f"{path}: claim id {entry['id']!r} appears twice")
        seen.add(entry["id"])
        if not entry["source"]:
            raise ClaimsError(f"{path}: claim {entry['id']!r} has no source")
    return pd.DataFrame(entries, columns=list(REQUIRED))


def run_estimates(con: duckdb.DuckDBPyConnection, quantities: list[str],
                  extra: dict[str, float] | None = None) -> dict[str, float]:
    """This run's value of each requested quantity that the snapshot can give.

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
    by_month = describe.images_by_month(con)
    dated = float(by_month["n_images"].sum()) if len(by_month) else 0.0
    if dated:  # numerator and denominator over the same population: images with a date
        simple["images.nsfw_share"] = float(by_month["n_nsfw"].sum()) / dated
    for row in by_month.itertuples(index=False):
        simple[f"images.nsfw_share[{row.month}]"] = row.n_nsfw / row.n_images
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
            WHERE lower(trim(tag)) IN (SELECT unnest({describe._sql_list(tags)})) GROUP BY ALL
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


def compare_claims(claims: pd.DataFrame, estimates: dict[str, float],
                   snapshot: Snapshot) -> pd.DataFrame:
    """Each claim beside this run's estimate, with a verdict on comparability.

    ``comparable`` only when the claim's ``comparable_when`` text appears in the snapshot's
    source description (same crawl, same dataset) and the snapshot is not synthetic; otherwise
    ``not comparable (population differs)``; ``no estimate`` when the snapshot cannot give it.
    """
    source_text = json.dumps(snapshot.manifest.get("source", {}), sort_keys=True)
    rows = []
    for claim in claims.itertuples(index=False):
        value = estimates.get(claim.quantity)
        # null in the YAML arrives as NaN from pandas, never as None
        condition = None if pd.isna(claim.comparable_when) else str(claim.comparable_when)
        has_value = not pd.isna(claim.value)
        same = condition is not None and not snapshot.is_synthetic and condition in source_text
        limit = limits.claim_limit(snapshot.manifest, claim.quantity)
        if limit is not None:  # a number here would describe the API's filter, not CivitAI
            value, verdict = None, limit
        elif value is None:
            verdict = "no estimate (the snapshot cannot give this quantity)"
        elif same and has_value:
            verdict = "comparable"
        elif same:
            verdict = "comparable (qualitative claim)"
        else:
            verdict = "not comparable (population differs)"
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
