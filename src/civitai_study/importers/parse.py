"""Tolerant parsing of CivitAI records into snapshot rows, shared by the collector and importers.

The API's response shape drifted several times between 2023 and 2026 (see
``../shared/docs/civitai-api.md``): levels as strings or ints, stats with ``null``s, cursors as
numbers or strings, ``meta`` flat or wrapped, seeds beyond 64 bits. Every function here accepts all
known shapes; a record that still cannot be read raises :class:`RecordError` with a short reason so
the caller can quarantine it instead of crashing or dropping it. Usernames are hashed here, at parse
time, so no raw name ever reaches a table.
"""

from __future__ import annotations

import ast
import json
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..nsfw import LEGACY_STRING_LEVELS, LEVEL_LABELS

Hasher = Callable[[str | None], str | None]

INT64_MAX = 2**63 - 1
#: Valid single-bit image levels (0 = unrated, 32 = blocked).
SINGLE_LEVELS = frozenset({0, 1, 2, 4, 8, 16, 32})


class RecordError(ValueError):
    """A record that cannot be turned into rows; ``reason`` is a short category for counting."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


# ---------------------------------------------------------------------------- scalar helpers


def is_missing(value: Any) -> bool:
    """Null in any of its disguises: ``None``, empty text, or a float NaN (CSV/pandas)."""
    return value is None or value == "" or (isinstance(value, float) and math.isnan(value))


def to_int(value: Any, field_name: str = "value", required: bool = False) -> int | None:
    """An int from an int, an integral float or a numeric string; ``None`` stays ``None``."""
    if is_missing(value):
        if required:
            raise RecordError(f"missing_{field_name}", f"{field_name} is absent")
        return None
    if isinstance(value, bool):
        raise RecordError(f"bad_{field_name}", f"{field_name} is a boolean ({value!r})")
    try:
        if isinstance(value, float):
            if not math.isfinite(value) or value != int(value):
                raise ValueError
            number = int(value)
        else:
            number = int(str(value).strip())
    except ValueError:
        raise RecordError(f"bad_{field_name}",
                          f"{field_name}={value!r} is not an integer") from None
    if abs(number) > INT64_MAX:
        raise RecordError(f"bad_{field_name}", f"{field_name}={value!r} exceeds 64 bits")
    return number


def to_bool(value: Any) -> bool | None:
    """A bool from a bool, 0/1 or a 'true'/'false' string; anything else is ``None``."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float):
        return bool(value)
    text = str(value).strip().lower()
    if text in ("true", "t", "1", "yes"):
        return True
    if text in ("false", "f", "0", "no", ""):
        return False
    return None


def to_str(value: Any) -> str | None:
    """A string, or ``None`` for null; numbers are rendered (names like ``1990`` exist)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return value if isinstance(value, str) else str(value)


def to_timestamp(value: Any, field_name: str = "created_at", required: bool = False
                 ) -> datetime | None:
    """A UTC datetime from ISO-8601 text (``Z``, offsets, space separator) or epoch s/ms."""
    if is_missing(value):
        if required:
            raise RecordError(f"missing_{field_name}", f"{field_name} is absent")
        return None
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    try:
        if isinstance(value, int | float) and not isinstance(value, bool):
            seconds = value / 1000 if abs(value) > 1e11 else value
            return datetime.fromtimestamp(seconds, tz=UTC)
        stamp = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
    except (ValueError, OverflowError, OSError):
        raise RecordError(f"bad_{field_name}", f"{field_name}={value!r} is not a date") from None
    return stamp.replace(tzinfo=UTC) if stamp.tzinfo is None else stamp.astimezone(UTC)


def normalise_cursor(value: Any) -> str | None:
    """``metadata.nextCursor`` as a string (it was a number in some eras), ``None`` at the end."""
    if value is None or value == "":
        return None
    if isinstance(value, float) and value == int(value):
        value = int(value)
    return str(value)


def parse_seed(value: Any) -> str | None:
    """``meta.seed`` as decimal text: it can exceed int64 or arrive as a string."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return None
    if isinstance(value, float):
        return str(int(value)) if math.isfinite(value) and value == int(value) else str(value)
    return str(value).strip()


def commercial_use(value: Any) -> list[str]:
    """``allowCommercialUse`` as a sorted list: enum string, set-literal ``"{A,B}"`` or array."""
    if value is None:
        return []
    if isinstance(value, list | tuple | set):
        return sorted({str(v) for v in value if v not in (None, "")})
    text = str(value).strip()
    if text.startswith("{") and text.endswith("}"):
        return sorted({p.strip().strip('"') for p in text[1:-1].split(",") if p.strip()})
    if text.startswith("["):
        try:
            return commercial_use(json.loads(text))
        except json.JSONDecodeError:
            pass
    return [text] if text else []


def unwrap_meta(meta: Any) -> dict[str, Any] | None:
    """Image ``meta`` flat, or wrapped as ``{id, meta: {...}}`` on the legacy path, or ``null``."""
    if isinstance(meta, str):
        try:
            meta = json.loads(meta)
        except json.JSONDecodeError:
            try:
                meta = ast.literal_eval(meta)
            except (ValueError, SyntaxError, MemoryError, RecursionError):
                return None
    if not isinstance(meta, dict):
        return None
    inner = meta.get("meta")
    if isinstance(inner, dict) and "prompt" not in meta and set(meta) <= {"id", "meta"}:
        return inner
    return meta


def _single_level(value: Any, field_name: str) -> int | None:
    level = to_int(value, field_name)
    if level is not None and level not in SINGLE_LEVELS:
        raise RecordError(f"bad_{field_name}", f"{field_name}={value!r} is not a single level")
    return level


#: Level words, case-insensitive: the legacy API strings and this project's labels (PG-13, XXX).
_LEVEL_WORDS = {
    **{label.lower().replace("-", ""): level for level, label in LEVEL_LABELS.items()},
    **{word.lower(): level for word, level in LEGACY_STRING_LEVELS.items()},
}


def level_word(text: str) -> int | None:
    """A single-bit level from a word: None/Soft/Mature/X/Blocked (API) or PG/PG-13/R/XXX."""
    return _LEVEL_WORDS.get(text.strip().lower().replace("-", ""))


def nsfw_flag(item: dict[str, Any]) -> bool | None:
    """The record's coarse boolean ``nsfw`` (``true``/``false`` or their text), else ``None``.

    2023 ``/images`` items carry only this flag (``nsfw = level != None``, i.e. above PG); later
    eras send it next to the level. A legacy level string in ``nsfw`` (preview images) is no flag.
    """
    raw = item.get("nsfw")
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.strip().lower() in ("true", "false"):
        return raw.strip().lower() == "true"
    return None


def image_level(item: dict[str, Any]) -> int:
    """An image's single-bit NSFW level from whichever field this era of the API sent.

    Preference: ``browsingLevel`` (the real int since 2024-03), then an int ``nsfwLevel``, then the
    legacy strings in ``nsfwLevel`` / ``nsfw`` (None/Soft/Mature/X/Blocked). A record rated only by
    the boolean ``nsfw`` (2023 ``/images``) gets level 0, "not rated at bit level"; its coarse
    rating is kept by :func:`nsfw_flag` (the ``nsfw_flag`` column), so the record is not lost.
    """
    if not is_missing(item.get("browsingLevel")):
        level = _single_level(item["browsingLevel"], "browsingLevel")
        if level is not None:
            return level
    for key in ("nsfwLevel", "nsfw"):
        raw = item.get(key)
        if is_missing(raw) or isinstance(raw, bool) or (
                key == "nsfw" and nsfw_flag(item) is not None):
            continue
        if isinstance(raw, int | float) or (isinstance(raw, str) and raw.strip().isdigit()):
            level = _single_level(raw, key)
            if level is not None:
                return level
        elif isinstance(raw, str):
            level = level_word(raw)
            if level is not None:
                return level
            raise RecordError(f"bad_{key}", f"unknown NSFW level string {raw!r}")
    if nsfw_flag(item) is not None:
        return 0
    raise RecordError("missing_nsfw_level", "no browsingLevel, nsfwLevel or nsfw rating")


def _stats(item: dict[str, Any]) -> dict[str, Any]:
    stats = item.get("stats")
    return stats if isinstance(stats, dict) else {}


def _require_dict(item: Any, kind: str) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise RecordError("not_an_object", f"{kind} record is {type(item).__name__}")
    return item


# ---------------------------------------------------------------------------- records → rows


def parse_image(item: Any, hasher: Hasher, source: str = "images_api") -> dict[str, Any]:
    """One ``/api/v1/images`` item (any era) as an ``images`` row."""
    item = _require_dict(item, "image")
    meta = unwrap_meta(item.get("meta")) or {}
    stats = _stats(item)
    parse_seed(meta.get("seed"))  # tolerated in any form; validated so odd seeds never crash
    return {
        "id": to_int(item.get("id"), "id", required=True),
        "created_at": to_timestamp(item.get("createdAt"), "created_at", required=True),
        "nsfw_level": image_level(item),
        "nsfw_flag": nsfw_flag(item),
        "prompt": to_str(meta.get("prompt")),
        "negative_prompt": to_str(meta.get("negativePrompt")),
        "base_model": to_str(item.get("baseModel")),
        "username_hash": hasher(to_str(item.get("username"))),
        "post_id": to_int(item.get("postId"), "post_id"),
        "like_count": to_int(stats.get("likeCount"), "like_count"),
        "heart_count": to_int(stats.get("heartCount"), "heart_count"),
        "laugh_count": to_int(stats.get("laughCount"), "laugh_count"),
        "cry_count": to_int(stats.get("cryCount"), "cry_count"),
        "comment_count": to_int(stats.get("commentCount"), "comment_count"),
        "width": to_int(item.get("width"), "width"),
        "height": to_int(item.get("height"), "height"),
        "source": source,
        "model_id": None,
        "model_version_id": None,
        "blurhash": to_str(item.get("hash")),
        "media_type": to_str(item.get("type")),
    }


@dataclass
class ModelRows:
    """Rows from one ``/api/v1/models`` item, plus preview images that could not be parsed."""

    model: dict[str, Any]
    versions: list[dict[str, Any]] = field(default_factory=list)
    tags: list[dict[str, Any]] = field(default_factory=list)
    images: list[dict[str, Any]] = field(default_factory=list)
    bad_images: list[tuple[RecordError, Any]] = field(default_factory=list)


def _tag_names(tags: Any) -> list[str]:
    """Model tags as lower-case strings: plain strings (v1) or ``{name}`` objects."""
    if not isinstance(tags, list):
        return []
    names: dict[str, None] = {}
    for tag in tags:
        name = tag.get("name") if isinstance(tag, dict) else tag
        if name not in (None, ""):
            names[str(name).strip().lower()] = None
    return list(names)


def _preview_image(image: Any, version: dict[str, Any], model_id: int, creator: str | None
                   ) -> dict[str, Any]:
    image = _require_dict(image, "preview image")
    meta = unwrap_meta(image.get("meta")) or {}
    parse_seed(meta.get("seed"))
    return {
        "id": to_int(image.get("id"), "id", required=True),
        "created_at": version["created_at"],
        "nsfw_level": image_level(image),
        "prompt": to_str(meta.get("prompt")),
        "negative_prompt": to_str(meta.get("negativePrompt")),
        "base_model": version["base_model"],
        "username_hash": creator,
        "post_id": to_int(image.get("postId"), "post_id"),
        "like_count": None,
        "heart_count": None,
        "laugh_count": None,
        "cry_count": None,
        "comment_count": None,
        "width": to_int(image.get("width"), "width"),
        "height": to_int(image.get("height"), "height"),
        "source": "model_preview",
        "model_id": model_id,
        "model_version_id": version["id"],
        "blurhash": to_str(image.get("hash")),
        "media_type": to_str(image.get("type")),
    }


def _version(raw: Any, model_id: int) -> dict[str, Any]:
    raw = _require_dict(raw, "model version")
    words = raw.get("trainedWords")
    return {
        "id": to_int(raw.get("id"), "version_id", required=True),
        "model_id": to_int(raw.get("modelId"), "version_model_id") or model_id,
        "base_model": to_str(raw.get("baseModel")),
        "created_at": to_timestamp(raw.get("createdAt") or raw.get("publishedAt"),
                                   "version_created_at"),
        "trained_words": [str(w) for w in words if w is not None]
        if isinstance(words, list) else [],
        "nsfw_level": to_int(raw.get("nsfwLevel"), "version_nsfw_level"),
    }


def parse_model(item: Any, hasher: Hasher, source: str = "models_api") -> ModelRows:
    """One ``/api/v1/models`` item (2023, 2025 or 2026 shape) as rows of all four tables.

    A broken model or version rejects the whole model (so no orphan versions); a broken preview
    image is returned in ``bad_images`` for quarantine while the model itself is kept.
    """
    item = _require_dict(item, "model")
    model_id = to_int(item.get("id"), "id", required=True)
    creator = item.get("creator")
    creator_hash = hasher(to_str(creator.get("username")) if isinstance(creator, dict) else None)
    raw_versions = item.get("modelVersions") or []
    if not isinstance(raw_versions, list):
        raise RecordError("bad_model_versions", "modelVersions is not a list")
    pairs = [(_version(v, model_id), v) for v in raw_versions]
    dates = [v["created_at"] for v, _ in pairs if v["created_at"] is not None]
    rows = ModelRows(model={
        "id": model_id,
        "name": to_str(item.get("name")),
        "type": to_str(item.get("type")),
        "nsfw": to_bool(item.get("nsfw")),
        "nsfw_level": to_int(item.get("nsfwLevel"), "nsfw_level"),
        "poi": to_bool(item.get("poi")),
        "creator_hash": creator_hash,
        "created_at": min(dates) if dates else None,
        "download_count": to_int(_stats(item).get("downloadCount"), "download_count"),
        "source": source,
        "mode": to_str(item.get("mode")),
        "minor": to_bool(item.get("minor")),
        "availability": to_str(item.get("availability")),
        "allow_commercial_use": commercial_use(item.get("allowCommercialUse")),
    })
    rows.versions = [v for v, _ in pairs]
    rows.tags = [{"model_id": model_id, "tag": t} for t in _tag_names(item.get("tags"))]
    for version, raw in pairs:
        images = raw.get("images") or []
        for image in images if isinstance(images, list) else []:
            try:
                rows.images.append(_preview_image(image, version, model_id, creator_hash))
            except RecordError as err:
                rows.bad_images.append((err, image))
    return rows


_RAW_USERNAME = re.compile(r'"username"\s*:\s*"((?:[^"\\]|\\.)*)"')


def scrub_usernames(record: Any, hasher: Hasher) -> Any:
    """A copy of a raw record with every ``username`` value replaced by its keyed hash.

    Quarantine files keep records raw for inspection, but raw usernames must never be written;
    unparseable text gets the same treatment by pattern.
    """
    if isinstance(record, str):
        return _RAW_USERNAME.sub(
            lambda m: f'"username_hash": "{hasher(m.group(1))}"', record)
    if isinstance(record, dict):
        out = {}
        for key, value in record.items():
            if key == "username" and (value is None or isinstance(value, str | int)):
                out["username_hash"] = hasher(to_str(value))
            else:
                out[key] = scrub_usernames(value, hasher)
        return out
    if isinstance(record, list):
        return [scrub_usernames(v, hasher) for v in record]
    return record


def iter_items(payload: Any) -> Iterable[Any]:
    """The ``items`` of an API page (or the page itself when it is a bare list)."""
    if isinstance(payload, dict):
        items = payload.get("items")
        return items if isinstance(items, list) else []
    return payload if isinstance(payload, list) else []
