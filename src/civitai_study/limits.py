"""What a snapshot cannot show: quantities the API stopped exposing before the crawl was made.

Since 2025-05-22 CivitAI's public ``/api/v1/models`` and ``/api/v1/images`` never return models
flagged as depicting a real person (``poi``) or a minor, nor images tied to such resources
(``disablePoi``/``disableMinor``, civitai/civitai commit 81e680f349; see
``../shared/docs/civitai-api.md`` §1.4-1.5). A crawl made after that date would print a
real-person share near zero that describes the filter, not the platform. Writers record the
limits in the manifest (``not_measurable``); notebooks, the claims table and the report read them
and print :data:`NOT_MEASURABLE` instead of a number.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

POI_EXCLUSION = date(2025, 5, 22)
POI_SOURCE = ("CivitAI excludes real-person (poi) and minor-flagged models, and images tied to "
              "them, from /api/v1/models and /api/v1/images since 2025-05-22 (civitai/civitai "
              "81e680f349; civitai.com/articles/15022)")
NOT_MEASURABLE = "not measurable in this snapshot"
#: Quantities lost to the exclusion, and the claim quantities (``data/claims.yaml``) they cover.
QUANTITIES = {
    "real_person_share_of_images": (),
    "real_person_share_of_models": ("models.n_poi", "models.poi_share",
                                    "models.poi_female_share", "models.poi_downloads_total"),
    "minor_flagged_share": (),
}


def _day(value: date | datetime | str | None) -> date | None:
    if value is None or value == "unknown":
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def for_crawl(endpoint: str, crawled_on: date | datetime | str) -> dict[str, str]:
    """Limits of a crawl of ``/endpoint`` made on ``crawled_on`` (empty before the exclusion)."""
    day = _day(crawled_on)
    if day is None or day < POI_EXCLUSION:
        return {}
    why = f"{NOT_MEASURABLE}: crawled {day.isoformat()}; {POI_SOURCE}"
    lost = ["real_person_share_of_images", "minor_flagged_share"]
    if endpoint == "models":
        lost.append("real_person_share_of_models")
    return {quantity: why for quantity in sorted(lost)}


def for_import(latest_record: date | datetime | str | None, endpoint: str = "images"
               ) -> dict[str, str]:
    """Limits of an imported dataset, whose crawl date is unknown: records dated after the
    exclusion prove the crawl came after it; earlier records leave the question open (noted)."""
    day = _day(latest_record)
    if day is not None and day >= POI_EXCLUSION:
        return for_crawl(endpoint, day)
    return {}


def import_note(latest_record: date | datetime | str | None) -> str:
    """The caveat an importer records beside :func:`for_import`'s answer."""
    if for_import(latest_record):
        return "records dated after 2025-05-22: crawled after the real-person exclusion"
    return ("the crawl date is not in the data; if it was made after 2025-05-22, real-person and "
            "minor-flagged content is missing from it (" + POI_SOURCE + ")")


def not_measurable(manifest: dict[str, Any]) -> dict[str, str]:
    """The manifest's ``not_measurable`` entry, or what it would say for older manifests."""
    if "not_measurable" in manifest:
        return dict(manifest["not_measurable"] or {})
    source = manifest.get("source") or {}
    if source.get("kind") == "collect":
        return for_crawl(str(source.get("endpoint", "images")), manifest.get("snapshot_date"))
    return {}


def measurable(manifest: dict[str, Any], quantity: str) -> bool:
    """Whether ``quantity`` (a key of :data:`QUANTITIES`) can be measured in the snapshot."""
    return quantity not in not_measurable(manifest)


def claim_limit(manifest: dict[str, Any], claim_quantity: str) -> str | None:
    """Why a claims-table quantity cannot be estimated here, or ``None`` when it can."""
    for quantity, why in not_measurable(manifest).items():
        if claim_quantity in QUANTITIES.get(quantity, ()):
            return why
    return None


def statement(manifest: dict[str, Any]) -> str:
    """One printable paragraph: what this snapshot cannot show, or that nothing is known lost."""
    lost = not_measurable(manifest)
    if not lost:
        return ("real-person and minor-flagged shares: measurable (the snapshot predates the "
                "2025-05-22 exclusion, or is synthetic)")
    names = ", ".join(q.replace("_", " ") for q in sorted(lost))
    return f"{names}: {next(iter(lost.values()))}"
