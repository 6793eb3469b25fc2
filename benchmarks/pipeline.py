"""The whole pipeline at the paper's scale: `civitai-study run` on 1M–40M-image snapshots.

Why: the study's collection has more than 40 million images and must run on one laptop-sized
machine (target on 2 cores: 40M images end to end in 10 minutes or less, under 3 GB peak RSS,
memory flat within 1.5x from 4M to 40M), and beyond one machine on Dask.

For each size the script
1. generates (once; cached under ``benchmarks/.cache/``, git-ignored) a streamed synthetic
   snapshot with distinct prompts (`civitai-study sample --stream`), timing it and its peak RSS;
2. runs `civitai-study run --data SNAP --out SCRATCH` while polling the RSS of every process in
   its tree (papermill, each notebook kernel, Dask workers) with psutil, and reports per notebook
   the wall time, the largest single process and the whole tree's peak;
3. with ``--cluster local:2`` also runs notebooks 02–03 on that cluster and reports the
   speed-up against the in-process run of the same notebooks;
4. for sizes up to ``--baseline-max`` millions runs ``benchmarks/analysis.py``'s pandas-only
   baseline of notebook 02's aggregations on the same snapshot, for a ratio on a busy machine.

Finally it prints the growth exponent between consecutive sizes (d log t / d log n). Results are
kept in ``CACHE/results.json``: re-running skips what is done (``--rerun`` to measure again), so
a long run can be resumed; ``--remeasure`` runs the pipeline again on the cached snapshots.

Usage: ``.venv/bin/python benchmarks/pipeline.py [--sizes 1,4,16,40] [--cluster local:2]``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
DONE = re.compile(r"^\[\d+/\d+\] (\S+)\.ipynb done in ([\d.]+) s")
START = re.compile(r"^\[\d+/\d+\] (\S+)\.ipynb \.\.\.")
SEED = 20250507


def _label(cmdline: list[str]) -> str:
    """A short name for a process of the tree: kernel, Dask worker, or its program."""
    text = " ".join(cmdline)
    if "ipykernel" in text:
        return "notebook kernel"
    if "distributed" in text or "dask" in text or "multiprocessing" in text:
        return "worker process"
    return Path(cmdline[1] if len(cmdline) > 1 and cmdline[0].endswith("python")
                else cmdline[0]).name if cmdline else ""


class TreeMonitor:
    """Polls the RSS of a process and all its descendants; peaks per phase and per process."""

    def __init__(self, pid: int, interval: float = 0.2):
        self.root = psutil.Process(pid)
        self.interval = interval
        self.phase = "start"
        self.tree_peak: dict[str, float] = {}
        self.proc_peak: dict[str, tuple[float, str]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                procs = [self.root, *self.root.children(recursive=True)]
            except psutil.Error:
                break
            total, biggest, who = 0.0, 0.0, ""
            for p in procs:
                try:
                    rss = p.memory_info().rss / 2**20
                    name = _label(p.cmdline()) or p.name()
                except psutil.Error:
                    continue
                total += rss
                if rss > biggest:
                    biggest, who = rss, name
            phase = self.phase
            self.tree_peak[phase] = max(self.tree_peak.get(phase, 0.0), total)
            if biggest > self.proc_peak.get(phase, (0.0, ""))[0]:
                self.proc_peak[phase] = (biggest, who)
            time.sleep(self.interval)

    def __enter__(self) -> TreeMonitor:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def monitored(cmd: list[str], timeout: float, env: dict | None = None) -> dict:
    """Run ``cmd``; wall time, per-notebook times and RSS peaks (MB) of its process tree."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            cwd=ROOT, env={**os.environ, **(env or {})})
    notebooks: dict[str, float] = {}
    tail: list[str] = []
    with TreeMonitor(proc.pid) as mon:
        timer = threading.Timer(timeout, proc.kill)
        timer.start()
        for line in proc.stdout:
            tail = (tail + [line.rstrip()])[-5:]
            if m := START.match(line):
                mon.phase = m.group(1)
            elif m := DONE.match(line):
                notebooks[m.group(1)] = float(m.group(2))
        proc.wait()
        timer.cancel()
    out = {"seconds": round(time.perf_counter() - start, 1), "returncode": proc.returncode,
           "notebook_seconds": notebooks,
           "tree_peak_mb": {k: round(v) for k, v in mon.tree_peak.items()},
           "process_peak_mb": {k: [round(v[0]), v[1]] for k, v in mon.proc_peak.items()}}
    if proc.returncode:
        out["error"] = " | ".join(tail)
    return out


def snapshot(cache: Path, millions: float, models: int, timeout: float) -> tuple[Path, dict]:
    """The cached streamed snapshot of ``millions`` million images (generated when missing)."""
    path = cache / f"snapshot-{millions:g}M"
    n = int(millions * 1_000_000)
    cmd = [str(BIN / "civitai-study"), "sample", "--stream", "--out", str(path),
           "--images", str(n), "--models", str(models), "--seed", str(SEED)]
    return path, monitored(cmd, timeout)


def growth(rows: list[dict], key) -> list[str]:
    """Exponents b of value ∝ n^b between consecutive sizes."""
    out = []
    for a, b in zip(rows, rows[1:], strict=False):
        va, vb = key(a), key(b)
        if va and vb:
            out.append(f"{a['millions']:g}M→{b['millions']:g}M: "
                       f"{math.log(vb / va) / math.log(b['millions'] / a['millions']):.2f}")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,4,16,40", help="millions of images")
    parser.add_argument("--cluster", default=None,
                        help="also run notebooks 02-03 with --cluster SPEC (e.g. local:2)")
    parser.add_argument("--cache", type=Path, default=ROOT / "benchmarks" / ".cache",
                        help="snapshots and results.json (git-ignored)")
    parser.add_argument("--models", type=int, default=20_000, help="models per snapshot")
    parser.add_argument("--baseline-max", type=float, default=4,
                        help="run analysis.py's pandas baseline up to this many millions")
    parser.add_argument("--duckdb-memory", default=None,
                        help="DuckDB memory limit per connection (default: the project's, "
                             "civitai_study.duck.DEFAULT_MEMORY)")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per command")
    parser.add_argument("--rerun", action="store_true", help="measure again what is cached")
    parser.add_argument("--remeasure", action="store_true",
                        help="run the pipeline again on the cached snapshots (no regeneration)")
    args = parser.parse_args()
    if args.duckdb_memory is None:
        from civitai_study.duck import DEFAULT_MEMORY
        args.duckdb_memory = DEFAULT_MEMORY
    args.cache.mkdir(parents=True, exist_ok=True)
    results_path = args.cache / "results.json"
    results = json.loads(results_path.read_text()) if results_path.is_file() else {}

    def save() -> None:
        tmp = results_path.with_name("results.json.tmp")
        tmp.write_text(json.dumps(results, indent=2, sort_keys=True))
        tmp.replace(results_path)

    sizes = [float(s) for s in args.sizes.split(",")]
    print(f"{os.cpu_count()} CPUs, {psutil.virtual_memory().total / 2**30:.0f} GB RAM; "
          f"DuckDB memory limit {args.duckdb_memory}; cache {args.cache}", flush=True)
    for millions in sizes:
        key = f"{millions:g}M"
        entry = results.setdefault(key, {"millions": millions})
        if args.rerun or "generate" not in entry or entry["generate"].get("returncode"):
            print(f"[{key}] generating ...", flush=True)
            path, entry["generate"] = snapshot(args.cache, millions, args.models, args.timeout)
            save()
        path = args.cache / f"snapshot-{key}"
        runs = {"inprocess": []}
        if args.cluster:
            runs["cluster"] = ["--cluster", args.cluster, "--only", "02", "03"]
            runs["inprocess-02-03"] = ["--only", "02", "03"]
        for name, extra in runs.items():
            if (not (args.rerun or args.remeasure) and name in entry
                    and not entry[name].get("returncode")):
                continue
            print(f"[{key}] civitai-study run ({name}) ...", flush=True)
            out = Path(tempfile.mkdtemp(prefix="civitai-bench-"))
            try:
                entry[name] = monitored(
                    [str(BIN / "civitai-study"), "run", "--data", str(path), "--out", str(out),
                     "--duckdb-memory", args.duckdb_memory, *extra], args.timeout)
            finally:
                shutil.rmtree(out, ignore_errors=True)
            save()
        if millions <= args.baseline_max and (args.rerun or args.remeasure
                                              or "pandas_baseline" not in entry):
            print(f"[{key}] analysis.py pandas baseline and DuckDB ...", flush=True)
            sys.path.insert(0, str(ROOT / "benchmarks"))
            import analysis

            entry["pandas_baseline"] = analysis.measure("pandas", path, int(args.timeout))
            entry["duckdb_02_aggregations"] = analysis.measure("duckdb", path, int(args.timeout))
            save()
    report(results, sizes)
    return 0


def report(results: dict, sizes: list[float]) -> None:
    rows = [results[f"{m:g}M"] for m in sizes if f"{m:g}M" in results]
    print("\n| images | generate s | generate peak MB | run s | peak RSS largest process MB "
          "| peak RSS whole tree MB | slowest notebook | pandas baseline s / MB |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        g, run = r.get("generate", {}), r.get("inprocess", {})
        largest = max(run.get("process_peak_mb", {}).values(), default=[0, ""])
        tree = max(run.get("tree_peak_mb", {}).values(), default=0)
        slow = max(run.get("notebook_seconds", {}).items(), key=lambda kv: kv[1],
                   default=("-", 0))
        base = r.get("pandas_baseline", {})
        base_text = (f"{base.get('seconds', 0):.1f} / {base.get('peak_mb', 0):,.0f}"
                     if "seconds" in base else base.get("error", "-"))
        print(f"| {r['millions']:g}M | {g.get('seconds', '-')} | "
              f"{max(g.get('tree_peak_mb', {}).values(), default=0):,} | "
              f"{run.get('seconds', '-')} | {largest[0]:,} ({largest[1]}) | {tree:,} | "
              f"{slow[0]} {slow[1]:.0f} s | {base_text} |")
    for r in rows:
        run = r.get("inprocess", {})
        print(f"\n{r['millions']:g}M per notebook (s, largest process MB, tree MB):")
        for nb, sec in run.get("notebook_seconds", {}).items():
            print(f"  {nb:<28} {sec:7.1f} s  {run['process_peak_mb'].get(nb, [0])[0]:>7,}  "
                  f"{run['tree_peak_mb'].get(nb, 0):>7,}")
        if "cluster" in r and "inprocess-02-03" in r:
            a, b = r["inprocess-02-03"]["seconds"], r["cluster"]["seconds"]
            print(f"  notebooks 02-03: in-process {a:.1f} s, cluster {b:.1f} s: "
                  f"speed-up x{a / b:.2f}")
    print("\ngrowth exponent of run time:", ", ".join(
        growth(rows, lambda r: r.get("inprocess", {}).get("seconds"))) or "-")
    print("growth exponent of peak RSS (largest process):", ", ".join(growth(
        rows, lambda r: max(r.get("inprocess", {}).get("process_peak_mb", {}).values(),
                            default=[0])[0])) or "-")


if __name__ == "__main__":
    sys.exit(main())
