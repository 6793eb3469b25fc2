"""The snapshot's table schemas: one place that says which columns exist and of what type.

Writers (sample generator, collector, importers) build tables with :func:`empty_table` /
:func:`conform`; the loader checks every file against :data:`TABLES`. ``data/README.md`` is the
human-readable data dictionary of the same columns.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

SCHEMA_VERSION = 1
UTC_TIMESTAMP = pa.timestamp("us", tz="UTC")


@dataclass(frozen=True)
class Column:
    name: str
    type: pa.DataType
    required: bool  # the loader refuses a table without it
    meaning: str
    api_field: str


def _c(name: str, typ: pa.DataType, meaning: str, api: str, required: bool = True) -> Column:
    return Column(name, typ, required, meaning, api)


IMAGES = (
    _c("id", pa.int64(), "CivitAI image id", "images[].id"),
    _c("created_at", UTC_TIMESTAMP, "upload time (UTC); for model previews the version's "
       "createdAt", "images[].createdAt"),
    _c("nsfw_level", pa.int16(), "single-bit level: 0 unrated, 1 PG, 2 PG-13, 4 R, 8 X, 16 XXX, "
       "32 blocked", "images[].browsingLevel (int) or nsfwLevel"),
    _c("prompt", pa.string(), "positive prompt (null when absent)", "images[].meta.prompt"),
    _c("negative_prompt", pa.string(), "negative prompt (null when absent)",
       "images[].meta.negativePrompt"),
    _c("base_model", pa.string(), "base model family, e.g. SD 1.5, SDXL 1.0, Pony",
       "images[].baseModel or modelVersions[].baseModel"),
    _c("username_hash", pa.string(), "keyed hash (HMAC-SHA256, 16 hex) of the uploader; never "
       "the raw name", "images[].username"),
    _c("post_id", pa.int64(), "post the image belongs to (null for model previews)",
       "images[].postId"),
    _c("like_count", pa.int64(), "likes (AllTime)", "images[].stats.likeCount"),
    _c("heart_count", pa.int64(), "hearts (AllTime)", "images[].stats.heartCount"),
    _c("laugh_count", pa.int64(), "laughs (AllTime)", "images[].stats.laughCount"),
    _c("cry_count", pa.int64(), "cries (AllTime)", "images[].stats.cryCount"),
    _c("comment_count", pa.int64(), "comments (AllTime)", "images[].stats.commentCount"),
    _c("width", pa.int32(), "pixel width", "images[].width"),
    _c("height", pa.int32(), "pixel height", "images[].height"),
    _c("source", pa.string(), "where the row came from: synthetic, images_api, model_preview, "
       "civ40k, civiverse", "(set by the pipeline)"),
    _c("model_id", pa.int64(), "model a preview image belongs to (null otherwise)",
       "(provenance of model previews)", required=False),
    _c("model_version_id", pa.int64(), "model version a preview image belongs to",
       "modelVersions[].id", required=False),
    _c("blurhash", pa.string(), "BlurHash of the image (a blurred stand-in, never the image)",
       "images[].hash", required=False),
    _c("media_type", pa.string(), "image, video or audio (null before 2024-12)", "images[].type",
       required=False),
    _c("nsfw_flag", pa.bool_(), "CivitAI's coarse boolean nsfw (= level above PG) as the record "
       "sent it; null when absent. Rows rated only by it (2023 /images) have nsfw_level 0; "
       "nsfw.COARSE_FLAG_RULE says how each NSFW definition counts them", "images[].nsfw (bool)",
       required=False),
)

MODELS = (
    _c("id", pa.int64(), "CivitAI model id", "items[].id"),
    _c("name", pa.string(), "model name", "items[].name"),
    _c("type", pa.string(), "ModelType: Checkpoint, LORA, LoCon, TextualInversion, ...",
       "items[].type"),
    _c("nsfw", pa.bool_(), "creator/moderator NSFW flag", "items[].nsfw"),
    _c("nsfw_level", pa.int16(), "bit mask: OR of its versions' levels (null before 2024)",
       "items[].nsfwLevel"),
    _c("poi", pa.bool_(), "'person of interest': the model depicts a real person",
       "items[].poi"),
    _c("creator_hash", pa.string(), "keyed hash of the creator's username",
       "items[].creator.username"),
    _c("created_at", UTC_TIMESTAMP, "earliest version's createdAt (models have no own date)",
       "min(items[].modelVersions[].createdAt)"),
    _c("download_count", pa.int64(), "downloads (null when the creator hides metrics)",
       "items[].stats.downloadCount"),
    _c("source", pa.string(), "where the row came from", "(set by the pipeline)",
       required=False),
    _c("mode", pa.string(), "Archived or TakenDown; null when the model is live", "items[].mode",
       required=False),
    _c("minor", pa.bool_(), "flagged as depicting a minor (field exists since 2024-06)",
       "items[].minor", required=False),
    _c("availability", pa.string(), "Public, Unsearchable, Private or EarlyAccess",
       "items[].availability", required=False),
    _c("allow_commercial_use", pa.list_(pa.string()), "commercial-use permissions, normalised "
       "from a string, a set-literal string or an array", "items[].allowCommercialUse",
       required=False),
)

MODEL_VERSIONS = (
    _c("id", pa.int64(), "model version id", "modelVersions[].id"),
    _c("model_id", pa.int64(), "model the version belongs to", "modelVersions[].modelId"),
    _c("base_model", pa.string(), "base model family", "modelVersions[].baseModel"),
    _c("created_at", UTC_TIMESTAMP, "version upload time (UTC)", "modelVersions[].createdAt"),
    _c("trained_words", pa.list_(pa.string()), "trigger words the creator lists",
       "modelVersions[].trainedWords"),
    _c("nsfw_level", pa.int16(), "bit mask of the version's images (null before 2024)",
       "modelVersions[].nsfwLevel"),
)

MODEL_TAGS = (
    _c("model_id", pa.int64(), "model id", "items[].id"),
    _c("tag", pa.string(), "model tag, lower-case as CivitAI returns it", "items[].tags[]"),
)

TABLES: dict[str, tuple[Column, ...]] = {
    "images": IMAGES,
    "models": MODELS,
    "model_versions": MODEL_VERSIONS,
    "model_tags": MODEL_TAGS,
}


def arrow_schema(table: str) -> pa.Schema:
    """The full Arrow schema (required and optional columns) of a snapshot table."""
    return pa.schema([pa.field(c.name, c.type) for c in TABLES[table]])


def type_family(typ: pa.DataType) -> str:
    """Coarse type class used for validation: widths may differ, kinds may not."""
    if pa.types.is_integer(typ):
        return "integer"
    if pa.types.is_floating(typ):
        return "float"
    if pa.types.is_boolean(typ):
        return "boolean"
    if pa.types.is_string(typ) or pa.types.is_large_string(typ):
        return "string"
    if pa.types.is_timestamp(typ):
        return f"timestamp[tz={typ.tz}]" if typ.tz else "timestamp[naive]"
    if pa.types.is_list(typ) or pa.types.is_large_list(typ):
        return f"list<{type_family(typ.value_type)}>"
    if pa.types.is_null(typ):
        return "null"
    return str(typ)


def conform(table: str, data: pa.Table) -> pa.Table:
    """Cast ``data`` to the table's schema, in column order; missing optional columns are null.

    Raises ``ValueError`` naming a missing required column.
    """
    columns = []
    for col in TABLES[table]:
        if col.name in data.column_names:
            columns.append(data.column(col.name).cast(col.type))
        elif col.required:
            raise ValueError(f"table {table!r} is missing required column {col.name!r}")
        else:
            columns.append(pa.nulls(data.num_rows, type=col.type))
    return pa.Table.from_arrays(columns, schema=arrow_schema(table))


def data_dictionary_markdown() -> str:
    """The column tables of ``data/README.md`` (a test keeps the two in agreement)."""
    parts = []
    for table, columns in TABLES.items():
        parts.append(f"### `{table}`\n")
        parts.append("| column | type | required | meaning | CivitAI API field |")
        parts.append("|---|---|---|---|---|")
        for c in columns:
            parts.append(f"| `{c.name}` | `{c.type}` | {'yes' if c.required else 'no'} | "
                         f"{c.meaning} | `{c.api_field}` |")
        parts.append("")
    return "\n".join(parts)
