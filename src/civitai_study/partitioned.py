"""The image-level aggregations of notebooks 02–03 as a map over Parquet parts and a reduce.

Why: on a cluster each images part (``snapshot.IMAGE_PART_ROWS`` rows) is one task; workers run
the same DuckDB query on their part and send back small partial tables, and only those travel.

* **map** (:func:`part_partials`): per part, image counts by (UTC day, ``nsfw_level``,
  ``nsfw_flag``, ``base_model``) and per-creator upload counts (written as a Parquet file next to
  the others, since there may be millions of creators).
* **reduce**: counts are additive, so partial tables are summed. Non-additive statistics
  (distinct creators, Gini, Lorenz, top shares) are computed once, after the per-creator partial
  counts have been merged.
* The reduced tables are offered as an ``images`` view that has one row per image again (each
  reduced row repeated ``n`` times, only the columns above), so the *unchanged* functions of
  :mod:`civitai_study.describe` and :mod:`civitai_study.trends` run on it and give byte-identical
  tables to the in-process path. Columns outside the reduction (prompts, reactions) are not in
  it: those stages keep the in-process connection.

:func:`reduced_connections` returns two such connections (the day cube and the creators); without
a cluster (``spec=None``) nothing here is used and the notebooks keep ``Snapshot.connect()``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from . import duck, parallel
from .parallel import map_ordered
from .snapshot import IMAGE_PART_ROWS, Snapshot

#: Folder for the workers' partial files (must be shared by all workers on a cluster).
SCRATCH_ENV = "CIVITAI_STUDY_SCRATCH"
#: The per-part query: image counts by day, level, coarse flag and base model (all additive).
CUBE_SQL = """
    SELECT date_trunc('day', created_at) AS day, nsfw_level, nsfw_flag, base_model,
           count(*) AS n
    FROM part GROUP BY ALL"""
CREATORS_SQL = """
    SELECT username_hash, count(*) AS n FROM part WHERE username_hash IS NOT NULL
    GROUP BY ALL"""


@dataclass(frozen=True)
class PartTask:
    """One map task: consecutive images parts (about ``IMAGE_PART_ROWS`` rows together) and
    where to leave their per-creator counts."""

    paths: tuple[str, ...]
    creators_out: str


def group_parts(paths: list[Path], target_rows: int = IMAGE_PART_ROWS) -> list[list[Path]]:
    """Consecutive parts grouped into tasks of about ``target_rows`` rows (from the Parquet
    footers), so a crawl's many small parts (20k rows each) still make sensible tasks."""
    groups: list[list[Path]] = []
    rows = 0
    for path in paths:
        n = pq.ParquetFile(path).metadata.num_rows
        if not groups or (rows + n > target_rows and groups[-1]):
            groups.append([])
            rows = 0
        groups[-1].append(path)
        rows += n
    return groups


def _part_view(con: duckdb.DuckDBPyConnection, paths: tuple[str, ...]) -> None:
    names = set().union(*(pq.read_schema(p).names for p in paths))
    flag = "nsfw_flag" if "nsfw_flag" in names else "CAST(NULL AS BOOLEAN) AS nsfw_flag"
    listing = "[" + ", ".join("'" + p.replace("'", "''") + "'" for p in paths) + "]"
    con.execute(f"""CREATE VIEW part AS SELECT created_at, nsfw_level, {flag}, base_model,
                    username_hash FROM read_parquet({listing}, union_by_name = true)""")


def part_partials(task: PartTask) -> pa.Table:
    """Map: the day cube of one part (returned) and its creator counts (written to a file).

    One DuckDB thread per task: the cluster's workers are the parallelism."""
    con = duck.connect(threads=1)
    try:
        _part_view(con, task.paths)
        cube = con.sql(CUBE_SQL).to_arrow_table()
        target = Path(task.creators_out)
        tmp = target.with_name(target.name + ".tmp")
        literal = "'" + str(tmp).replace("'", "''") + "'"
        con.execute(f"COPY ({CREATORS_SQL}) TO {literal} (FORMAT parquet)")
        tmp.replace(target)
    finally:
        con.close()
    return cube


def reduce_cube(con: duckdb.DuckDBPyConnection, cubes: list[pa.Table]) -> None:
    """Reduce: sum the partial cubes into the temporary table ``image_cube`` (in DuckDB, so
    types and NULL keys stay exactly as in the snapshot)."""
    con.register("cube_parts", pa.concat_tables(cubes))
    con.execute("""CREATE TEMP TABLE image_cube AS
        SELECT day, nsfw_level, nsfw_flag, base_model, sum(n)::BIGINT AS n
        FROM cube_parts GROUP BY ALL ORDER BY ALL""")
    con.unregister("cube_parts")


@dataclass
class Reduced:
    """Connections whose ``images`` view is rebuilt from reduced partial tables."""

    cube: duckdb.DuckDBPyConnection
    creators: duckdb.DuckDBPyConnection
    n_parts: int
    scratch: Path

    def close(self) -> None:
        self.cube.close()
        self.creators.close()
        shutil.rmtree(self.scratch, ignore_errors=True)


def reduced_connections(snapshot: Snapshot, pool: Executor, scratch: Path | None = None,
                        task=part_partials, target_rows: int = IMAGE_PART_ROWS) -> Reduced:
    """Map :func:`part_partials` over the snapshot's images parts on ``pool``, then reduce.

    ``scratch`` (default: a new temporary folder; ``CIVITAI_STUDY_SCRATCH`` names its parent)
    must be visible to every worker: on a cluster, a shared file system, like the snapshot.
    """
    scratch = Path(scratch or tempfile.mkdtemp(prefix="civitai-partials-"))
    scratch.mkdir(parents=True, exist_ok=True)
    (scratch / "creators").mkdir(exist_ok=True)
    tasks = [PartTask(tuple(str(p.resolve()) for p in group),
                      str(scratch / "creators" / f"{i:06d}.parquet"))
             for i, group in enumerate(group_parts(snapshot.files["images"], target_rows))]
    cubes = map_ordered(pool, task, tasks)
    cube_con = snapshot.connect()
    reduce_cube(cube_con, cubes)
    cube_con.execute("DROP VIEW images")
    cube_con.execute("""CREATE VIEW images AS
        SELECT day AS created_at, nsfw_level, nsfw_flag, base_model FROM image_cube, range(n)""")
    listing = "[" + ", ".join("'" + t.creators_out.replace("'", "''") + "'" for t in tasks) + "]"
    creators_con = snapshot.connect()
    creators_con.execute(f"""CREATE TEMP TABLE image_creators AS
        SELECT username_hash, sum(n)::BIGINT AS n FROM read_parquet({listing})
        GROUP BY ALL""")
    creators_con.execute("DROP VIEW images")
    creators_con.execute("""CREATE VIEW images AS
        SELECT username_hash FROM image_creators, range(n)""")
    shutil.rmtree(scratch / "creators", ignore_errors=True)
    return Reduced(cube_con, creators_con, len(tasks), scratch)


def image_connections(snapshot: Snapshot, con: duckdb.DuckDBPyConnection,
                      spec: str | None = None) -> tuple[duckdb.DuckDBPyConnection,
                                                        duckdb.DuckDBPyConnection]:
    """``(images, creators)`` connections for notebooks 02–03: ``con`` twice when no cluster is
    asked for (``spec`` or `civitai-study run --cluster`), else the reduced connections."""
    spec = parallel.check_spec(spec) if spec is not None else parallel.spec_from_env()
    if spec is None:
        return con, con
    scratch = os.environ.get(SCRATCH_ENV)
    with parallel.executor(spec) as pool:
        reduced = reduced_connections(
            snapshot, pool, Path(tempfile.mkdtemp(prefix="civitai-partials-", dir=scratch)))
    shutil.rmtree(reduced.scratch, ignore_errors=True)  # the reduced tables are in memory
    return reduced.cube, reduced.creators
