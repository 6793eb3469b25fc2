"""A content digest over records in canonical form, independent of archive bytes and order.

Archives of the same records can differ byte for byte (compression level, file order, a GitHub
tarball regenerated), so the registry pins what the records *are*: each record is serialised as
canonical JSON (sorted keys, no whitespace, UTF-8) and hashed with SHA-256; the digest is the sum
of those hashes modulo 2**256 (a multiset hash: order-free, duplicates count), written as
``multiset-sha256:<64 hex>``. It streams, so 40 million rows need no memory.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any

PREFIX = "multiset-sha256:"
_MOD = 1 << 256


def canonical(record: Any) -> bytes:
    """The record as canonical JSON bytes (dates and other objects as their text)."""
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=str).encode("utf-8")


class RecordDigest:
    """Accumulates records; :attr:`hexdigest` and :attr:`count` describe what was added."""

    def __init__(self) -> None:
        self.total = 0
        self.count = 0

    def add(self, record: Any) -> None:
        self.total = (self.total + int.from_bytes(hashlib.sha256(canonical(record)).digest(),
                                                  "big")) % _MOD
        self.count += 1

    def update(self, records: Iterable[Any]) -> RecordDigest:
        for record in records:
            self.add(record)
        return self

    @property
    def hexdigest(self) -> str:
        return PREFIX + f"{self.total:064x}"
