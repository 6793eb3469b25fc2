"""Keyed pseudonymisation of usernames at ingest (HMAC-SHA256), so raw names are never stored.

The key comes from ``CIVITAI_STUDY_HASH_KEY`` or from a local key file created on first use
(``~/.config/civitai-study/hash.key`` by default, outside the repository, mode 0600). The same key
gives the same pseudonym across crawls, so creators can be followed over time without their names.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

KEY_ENV = "CIVITAI_STUDY_HASH_KEY"
KEY_FILE_ENV = "CIVITAI_STUDY_HASH_KEY_FILE"
HASH_HEX_CHARS = 16
#: What a pseudonym looks like (lower-case hex digest, truncated): Python and SQL (RE2) alike.
PSEUDONYM_PATTERN = f"[0-9a-f]{{{HASH_HEX_CHARS}}}"


def sql_is_pseudonym(column: str) -> str:
    """SQL: whether ``column`` has the pseudonyms' format (:data:`PSEUDONYM_PATTERN`)."""
    return f"regexp_full_match({column}, '{PSEUDONYM_PATTERN}')"


def sql_pseudonym_number(column: str) -> str:
    """SQL: a pseudonym read as the unsigned 64-bit number its hex digits spell (one-to-one, so
    millions of creators can be held, ranked and joined as integers instead of strings)."""
    return f"CAST('0x' || {column} AS UBIGINT)"
#: Fixed key for synthetic data: its "usernames" are invented, so nothing needs protecting.
SYNTHETIC_KEY = b"civitai-study synthetic sample; not a secret"


def default_key_file() -> Path:
    override = os.environ.get(KEY_FILE_ENV)
    if override:
        return Path(override)
    base = Path(os.environ.get("XDG_CONFIG_HOME", Path.home() / ".config"))
    return base / "civitai-study" / "hash.key"


def load_or_create_key(path: Path | None = None) -> bytes:
    """The pseudonymisation key: environment first, else the key file (created if missing)."""
    env = os.environ.get(KEY_ENV)
    if env:
        return env.encode("utf-8")
    path = path or default_key_file()
    if path.is_file():
        key = path.read_text(encoding="utf-8").strip()
        if not key:
            raise ValueError(f"key file {path} is empty; delete it to create a new key")
        return key.encode("utf-8")
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(key + "\n")
    return key.encode("utf-8")


class Pseudonymiser:
    """Maps usernames to stable keyed hashes; ``None``/empty stays ``None``."""

    def __init__(self, key: bytes):
        if not key:
            raise ValueError("pseudonymisation key must not be empty")
        self._key = key
        self._cache: dict[str, str] = {}

    def __call__(self, username: str | None) -> str | None:
        if username is None or username == "":
            return None
        name = str(username)
        hashed = self._cache.get(name)
        if hashed is None:
            digest = hmac.new(self._key, name.strip().lower().encode("utf-8"), hashlib.sha256)
            hashed = digest.hexdigest()[:HASH_HEX_CHARS]
            self._cache[name] = hashed
        return hashed
