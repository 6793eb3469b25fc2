"""CivitAI NSFW levels and the two NSFW definitions the study compares.

An *image* carries one level (a single bit); *models* and *versions* carry an OR-combination
(bit mask) of their images' levels. See ``../shared/docs/civitai-api.md`` §1.3.
"""

from __future__ import annotations

from enum import IntEnum


class NsfwLevel(IntEnum):
    """CivitAI's ``NsfwLevel`` enum; 0 means unrated."""

    UNRATED = 0
    PG = 1
    PG13 = 2
    R = 4
    X = 8
    XXX = 16
    BLOCKED = 32


LEVEL_LABELS: dict[int, str] = {
    0: "Unrated",
    1: "PG",
    2: "PG-13",
    4: "R",
    8: "X",
    16: "XXX",
    32: "Blocked",
}
IMAGE_LEVELS: tuple[int, ...] = tuple(LEVEL_LABELS)

#: Bits that count as NSFW under each definition (applied to single levels and to masks).
ABOVE_PG_BITS = NsfwLevel.PG13 | NsfwLevel.R | NsfwLevel.X | NsfwLevel.XXX | NsfwLevel.BLOCKED
R_PLUS_BITS = NsfwLevel.R | NsfwLevel.X | NsfwLevel.XXX | NsfwLevel.BLOCKED

#: The two definitions compared side by side everywhere (sensitivity analysis).
NSFW_DEFINITIONS: dict[str, int] = {
    "above_pg": int(ABOVE_PG_BITS),  # CivitAI's own ``nsfw`` flag: level above PG
    "r_plus": int(R_PLUS_BITS),  # stricter: R or above
}
#: Why "above PG" is the headline definition and "R or above" is always shown beside it.
MAIN_DEFINITION_REASON = (
    "'Above PG' is the main NSFW definition because it is the one the authors' released data "
    "uses (browsingLevel: 1 = SFW, higher = more NSFW) and so the one the paper's claim can be "
    "checked against; 'R or above' is always shown beside it because CivitAI's own SFW filter "
    "counts PG-13 as safe, so the stricter definition is what the platform itself calls NSFW."
)
DEFINITION_LABELS: dict[str, str] = {
    "above_pg": "above PG (CivitAI's nsfw flag)",
    "r_plus": "R or above",
}

#: How each definition counts an image rated only by CivitAI's coarse boolean ``nsfw``
#: (``nsfw_level`` 0 = not rated at bit level, ``nsfw_flag`` true/false; 2023 ``/images`` items).
#: In that era ``nsfw`` meant "level above None", i.e. above PG, so ``above_pg`` counts the flag
#: exactly; ``r_plus`` cannot tell PG-13 from R, so a flagged image is undecided (NULL) under it and
#: drops out of that definition's numerator and denominator. The bit tests alone
#: (:func:`is_nsfw`, :func:`sql_is_nsfw`) count every level-0 image as not NSFW; use the
#: ``coarse`` variants wherever a snapshot can hold such images.
COARSE_FLAG_RULE: dict[str, str] = {
    "above_pg": "nsfw_flag counts exactly (true = NSFW, false = not)",
    "r_plus": "nsfw_flag false = not NSFW; true = undecided (NULL), left out of the share",
}

#: Legacy string levels (2023 preview images, ``/images`` ``nsfwLevel`` strings) → single bit.
LEGACY_STRING_LEVELS: dict[str, int] = {
    "None": 1,
    "Soft": 2,
    "Mature": 4,
    "X": 8,
    "Blocked": 32,
}


def check_definition(definition: str) -> int:
    """Return the bit mask of an NSFW definition, or raise naming the valid choices."""
    try:
        return NSFW_DEFINITIONS[definition]
    except KeyError:
        valid = ", ".join(sorted(NSFW_DEFINITIONS))
        raise ValueError(
            f"unknown NSFW definition {definition!r}; choose one of: {valid}"
        ) from None


def is_nsfw(level: int, definition: str = "above_pg") -> bool:
    """Whether an image level (or a model's level mask) counts as NSFW under ``definition``."""
    return bool(int(level) & check_definition(definition))


def sql_is_nsfw(column: str, definition: str = "above_pg") -> str:
    """DuckDB SQL expression testing ``column`` against a definition's bit mask."""
    return f"(({column} & {check_definition(definition)}) <> 0)"


def coarse_is_nsfw(level: int, flag: bool | None, definition: str = "above_pg") -> bool | None:
    """Like :func:`is_nsfw`, but an image at level 0 with a coarse ``nsfw`` flag is counted by
    :data:`COARSE_FLAG_RULE` (``None`` where the definition cannot decide)."""
    if int(level) == 0 and flag is not None:
        if definition == "above_pg":
            return bool(flag)
        check_definition(definition)
        return False if not flag else None
    return is_nsfw(level, definition)


def sql_coarse_decided(level: str, flag: str, definition: str = "above_pg") -> str:
    """DuckDB SQL: the image has a rating the definition can use (the denominator of shares).

    Bit-level ratings always count; an image rated only by the coarse flag counts where
    :data:`COARSE_FLAG_RULE` decides it (any flag for above PG, only ``false`` for R or above).
    """
    check_definition(definition)
    coarse = f"{flag} IS NOT NULL" if definition == "above_pg" else f"{flag} = false"
    return f"({level} <> 0 OR ({level} = 0 AND {coarse}))"


def sql_coarse_is_nsfw(level: str, flag: str, definition: str = "above_pg") -> str:
    """DuckDB SQL of :func:`coarse_is_nsfw` over a level and an ``nsfw_flag`` column."""
    bits = sql_is_nsfw(level, definition)
    when_flagged = flag if definition == "above_pg" else f"(CASE WHEN NOT {flag} THEN false END)"
    return f"(CASE WHEN {level} = 0 AND {flag} IS NOT NULL THEN {when_flagged} ELSE {bits} END)"
