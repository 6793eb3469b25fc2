"""Keep the API key out of every URL, message and log line the collector produces."""

from __future__ import annotations

import os
import re

KEY_ENV = "CIVITAI_API_KEY"
_TOKEN_PARAM = re.compile(r"(?i)([?&](?:token|api_key|apikey|key)=)[^&#\s]*")
_BEARER = re.compile(r"(?i)(authorization[\"']?\s*[:=]\s*[\"']?bearer\s+|bearer\s+)[^\s\"',}]+")


def api_key() -> str | None:
    """The CivitAI API key, read only from ``CIVITAI_API_KEY`` (never a parameter or file)."""
    key = os.environ.get(KEY_ENV, "").strip()
    return key or None


def redact(text: object) -> str:
    """``text`` with token query parameters, bearer tokens and the key itself masked."""
    out = _BEARER.sub(r"\1[REDACTED]", _TOKEN_PARAM.sub(r"\1[REDACTED]", str(text)))
    key = api_key()
    if key and len(key) >= 4:
        out = out.replace(key, "[REDACTED]")
    return out
