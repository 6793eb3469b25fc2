"""Time and peak memory of notebook 02's aggregations: DuckDB over Parquet against pandas.

Why: the study's real collection has about 40 million images; the descriptive statistics must run
on a laptop. This benchmark builds synthetic snapshots of 1, 4 and 16 million images and runs the
same image-level aggregations (images per month under both NSFW definitions, per month and level,
base models per month, creator concentration, engagement by level) plus the model tables, once
with ``civitai_study.describe`` (DuckDB) and once with a pandas-only baseline that reads the
needed columns into memory. Each case runs in its own subprocess so its peak memory (max RSS from
``os.wait4``) is its own. The two engines' results are compared before timings are reported.

Snapshots above 1 million images are written as parts of 1 million images (different seeds) in
``images/part-NNN.parquet``, each generated in a separate process, so generation never holds more
than one million image rows in memory; the model tables come from the first part.

Usage: ``.venv/bin/python benchmarks/analysis.py [--sizes 1,4,16] [--workdir DIR] [--keep]``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

PART_ROWS = 1_000_000
N_MODELS = 20_000
SEED = 20250507


# ---- snapshot generation ----------------------------------------------------------------------

def _generate_part(args: tuple[str, int, int]) -> str:
    """Write one synthetic snapshot of ``rows`` images (runs in a worker process)."""
    from civitai_study.synthetic import SampleConfig, write_sample

    out, rows, seed = args
    write_sample(Path(out), SampleConfig(seed=seed, n_images=rows, n_models=N_MODELS))
    return out


def build_snapshot(root: Path, millions: int, workers: int) -> float:
    """Create a snapshot of ``millions`` million images under ``root``; returns seconds taken."""
    from civitai_study.snapshot import load_snapshot, write_manifest

    if (root / "manifest.json").is_file():
        return 0.0
    start = time.perf_counter()
    staging = root.with_name(root.name + "-parts")
    shutil.rmtree(staging, ignore_errors=True)
    jobs = [(str(staging / f"p{i:03d}"), PART_ROWS, SEED + i) for i in range(millions)]
    ctx = __import__("multiprocessing").get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        done = list(pool.map(_generate_part, jobs))
    (root / "images").mkdir(parents=True, exist_ok=True)
    first = Path(done[0])
    for table in ("models", "model_versions", "model_tags"):
        shutil.move(first / f"{table}.parquet", root / f"{table}.parquet")
    for i, part in enumerate(done):
        shutil.move(Path(part) / "images.parquet", root / "images" / f"part-{i:03d}.parquet")
    manifest = json.loads((first / "manifest.json").read_text(encoding="utf-8"))
    for key in ("counts", "files", "schema_version"):
        manifest.pop(key, None)
    manifest["benchmark"] = {"parts": millions, "rows_per_part": PART_ROWS,
                             "seeds": [SEED + i for i in range(millions)]}
    write_manifest(root, manifest)
    shutil.rmtree(staging, ignore_errors=True)
    load_snapshot(root)
    return time.perf_counter() - start


# ---- the two engines (each runs in a child process) --------------------------------------------

def run_duckdb(data: Path, full: bool) -> dict:
    from civitai_study import describe
    from civitai_study.snapshot import load_snapshot

    con = load_snapshot(data).connect()
    start = time.perf_counter()
    by_month = describe.images_by_month(con)
    describe.images_by_month_level(con)
    describe.base_models_by_month(con)
    conc = describe.creator_concentration(con)
    describe.engagement_by_level(con)
    describe.models_by_type(con)
    describe.models_by_month(con)
    if full:  # everything else notebook 02 computes
        describe.nsfw_definitions_by_month(con)
        describe.models_by_type_month(con)
        describe.poi_signals(con)
        describe.poi_tag_counts(con)
        describe.poi_by_group(con)
        describe.gender_proxy(con)
        describe.top_model_tags(con)
        describe.top_tags_by_period(con)
        describe.tag_log_odds(con, "nsfw")
        describe.tag_log_odds(con, "poi")
        describe.lorenz(con)
        describe.downloads_by_nsfw(con)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "check": _check(by_month, conc.set_index("unit").loc["images",
                                                                                   "gini"])}


def run_pandas(data: Path) -> dict:
    """The same image aggregations with pandas, reading the needed columns into memory."""
    import numpy as np
    import pandas as pd

    from civitai_study.snapshot import load_snapshot

    snap = load_snapshot(data)
    start = time.perf_counter()
    cols = ["created_at", "nsfw_level", "base_model", "username_hash", "like_count",
            "heart_count", "laugh_count", "cry_count", "comment_count"]
    images = pd.concat([pd.read_parquet(p, columns=cols) for p in snap.files["images"]],
                       ignore_index=True)
    images["month"] = images["created_at"].dt.strftime("%Y-%m")
    level = images["nsfw_level"].astype(int)
    images["nsfw"] = (level & 62) != 0
    images["r_plus"] = (level & 60) != 0
    images["rated"] = level != 0
    by_month = images.groupby("month").agg(n_images=("nsfw", "size"), n_rated=("rated", "sum"),
                                           n_nsfw=("nsfw", "sum"), n_r_plus=("r_plus", "sum"))
    by_month = by_month.reset_index()
    images.groupby(["month", "nsfw_level"]).size()
    images.groupby(["month", images["base_model"].fillna("unknown")]).size()
    counts = np.sort(images["username_hash"].dropna().value_counts().to_numpy())
    k = counts.size
    gini = 2 * np.sum(np.arange(1, k + 1) * counts) / (k * counts.sum()) - (k + 1) / k
    reactions = images[["like_count", "heart_count", "laugh_count", "cry_count"]].fillna(0).sum(1)
    images.assign(reactions=reactions).groupby("nsfw_level").agg(
        likes=("like_count", "mean"), hearts=("heart_count", "mean"),
        comments=("comment_count", "mean"), reactions=("reactions", "mean"),
        median=("reactions", "median"))
    models = snap.read_table("models").to_pandas()
    versions = snap.read_table("model_versions", ["model_id", "created_at"]).to_pandas()
    models["type"].value_counts()
    first = versions.groupby("model_id")["created_at"].min()
    when = models.set_index("id")["created_at"]
    when = first.reindex(when.index).fillna(when)
    models.assign(month=when.dt.strftime("%Y-%m").values).groupby("month").agg(
        n=("id", "size"), nsfw=("nsfw", "sum"), poi=("poi", "sum"))
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "check": _check(by_month, gini)}


def _check(by_month, gini: float) -> list:
    return [int(by_month["n_images"].sum()), int(by_month["n_nsfw"].sum()),
            int(by_month["n_r_plus"].sum()), round(float(gini), 9)]


def child(engine: str, data: Path) -> None:
    result = (run_duckdb(data, full=False) if engine == "duckdb" else
              run_duckdb(data, full=True) if engine == "duckdb-full" else run_pandas(data))
    print("RESULT " + json.dumps(result))


def measure(engine: str, data: Path, timeout: int) -> dict:
    """Run one case in a fresh process; wall time inside it and its own peak RSS."""
    proc = subprocess.Popen([sys.executable, __file__, "--child", engine, "--data", str(data)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + timeout
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() > deadline:
            proc.kill()
            os.wait4(proc.pid, 0)
            return {"engine": engine, "error": f"timed out after {timeout} s"}
        time.sleep(0.05)
    out = proc.stdout.read()
    err = proc.stderr.read()
    peak_mb = usage.ru_maxrss / 1024  # Linux: kilobytes
    if os.waitstatus_to_exitcode(status) != 0:
        last = err.strip().splitlines()[-1] if err.strip() else "no message"
        return {"engine": engine, "error": f"exit {os.waitstatus_to_exitcode(status)}: {last}",
                "peak_mb": peak_mb}
    line = next(x for x in out.splitlines() if x.startswith("RESULT "))
    return {"engine": engine, **json.loads(line[7:]), "peak_mb": peak_mb}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,4,16", help="millions of images, comma-separated")
    parser.add_argument("--workdir", default=None, help="where snapshots go (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the generated snapshots")
    parser.add_argument("--workers", type=int, default=max(1, min(4, os.cpu_count() or 1)),
                        help="processes generating parts")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per case")
    parser.add_argument("--child", choices=["duckdb", "duckdb-full", "pandas"],
                        help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, Path(args.data))
        return 0
    try:
        sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    except ValueError:
        parser.error(f"--sizes must be whole numbers of millions, e.g. 1,4,16 (got {args.sizes!r})")
    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="civbench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    import duckdb
    import pandas as pd

    print(f"duckdb {duckdb.__version__}, pandas {pd.__version__}, {os.cpu_count()} CPUs; "
          "DuckDB uses all cores, pandas one")
    rows = []
    try:
        for millions in sizes:
            data = workdir / f"images-{millions}m"
            gen = build_snapshot(data, millions, args.workers)
            size_mb = sum(p.stat().st_size for p in data.rglob("*.parquet")) / 2**20
            print(f"\n{millions}M images: snapshot {size_mb:,.0f} MB on disk"
                  + (f", generated in {gen:,.0f} s" if gen else " (reused)"), flush=True)
            results = {e: measure(e, data, args.timeout) for e in ("duckdb", "pandas",
                                                                   "duckdb-full")}
            for r in results.values():
                if "error" in r:
                    print(f"  {r['engine']:<12} FAILED: {r['error']}")
                else:
                    print(f"  {r['engine']:<12} {r['seconds']:8.2f} s   "
                          f"peak {r['peak_mb']:8,.0f} MB")
            d, p = results["duckdb"], results["pandas"]
            if "error" not in d and "error" not in p:
                same = d["check"] == p["check"]
                print(f"  pandas/duckdb: time x{p['seconds'] / d['seconds']:.1f}, "
                      f"peak memory x{p['peak_mb'] / d['peak_mb']:.1f}; results agree: {same}")
            rows.append({"millions": millions, **{f"{e}_{k}": r.get(k) for e, r in results.items()
                                                  for k in ("seconds", "peak_mb", "error")}})
    finally:
        if not args.keep and not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    print("\nsummary (seconds, peak MB):")
    print(pd.DataFrame(rows).to_string(index=False, float_format=lambda v: f"{v:,.1f}"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
