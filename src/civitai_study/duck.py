"""Bounded DuckDB connections: every connection the project opens goes through :func:`connect`.

Why: DuckDB's default memory limit is 80 % of the machine's RAM, so on a 40-million-image snapshot
a sort or window grows until the machine swaps instead of spilling to disk. Here every connection
gets a ``memory_limit`` (default 1 GB, so that a 40-million-image run stays under 3 GB per
process) and a ``temp_directory`` to spill into.

Settings come, in order, from the arguments, the environment (``CIVITAI_STUDY_DUCKDB_MEMORY``,
``CIVITAI_STUDY_DUCKDB_TEMP``, ``CIVITAI_STUDY_DUCKDB_THREADS``; `civitai-study run
--duckdb-memory` sets the first for every notebook kernel) and the defaults below.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import duckdb

MEMORY_ENV = "CIVITAI_STUDY_DUCKDB_MEMORY"
TEMP_ENV = "CIVITAI_STUDY_DUCKDB_TEMP"
THREADS_ENV = "CIVITAI_STUDY_DUCKDB_THREADS"
DEFAULT_MEMORY = "1GB"
_SIZE = re.compile(r"^\s*\d+(\.\d+)?\s*(B|KB|KiB|MB|MiB|GB|GiB|TB|TiB)\s*$", re.IGNORECASE)


def check_memory_limit(value: str) -> str:
    """``value`` if it is a DuckDB size such as ``2GB`` or ``512MiB``; else a clear error."""
    if not _SIZE.match(str(value)):
        raise ValueError(f"DuckDB memory limit {value!r} is not a size; give e.g. 2GB or 512MB "
                         f"(argument --duckdb-memory or environment {MEMORY_ENV})")
    return str(value).replace(" ", "")


def settings(memory_limit: str | None = None, temp_directory: str | Path | None = None,
             threads: int | None = None) -> dict[str, str | int]:
    """The effective settings for a new connection (arguments, then environment, then defaults)."""
    memory = check_memory_limit(memory_limit or os.environ.get(MEMORY_ENV) or DEFAULT_MEMORY)
    temp = temp_directory or os.environ.get(TEMP_ENV) or \
        Path(tempfile.gettempdir()) / "civitai-study-duckdb"
    out: dict[str, str | int] = {"memory_limit": memory, "temp_directory": str(temp)}
    threads = threads or int(os.environ.get(THREADS_ENV) or 0)
    if threads:
        out["threads"] = int(threads)
    return out


def connect(memory_limit: str | None = None, temp_directory: str | Path | None = None,
            threads: int | None = None) -> duckdb.DuckDBPyConnection:
    """A fresh in-memory connection that spills to ``temp_directory`` past ``memory_limit``.

    Months are UTC months whatever the machine's time zone says.
    """
    config = settings(memory_limit, temp_directory, threads)
    Path(str(config["temp_directory"])).mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone = 'UTC'")
    con.execute(f"SET memory_limit = '{config['memory_limit']}'")
    temp = str(config["temp_directory"]).replace("'", "''")
    con.execute(f"SET temp_directory = '{temp}'")
    # Give freed memory back to the system soon after a query (else a kernel keeps the whole
    # memory limit after its largest query, on top of what pandas and statsmodels need next).
    con.execute("SET allocator_background_threads = true")
    if "threads" in config:
        con.execute(f"SET threads = {int(config['threads'])}")
    return con
