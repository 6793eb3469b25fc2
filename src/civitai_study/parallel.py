"""One way to go parallel: an executor from a short cluster spec.

Every parallel stage (the per-part aggregations behind notebooks 02–03, the prompt coder of
notebook 04) takes a :class:`concurrent.futures.Executor`, so the same code runs in-process, on
local processes, or on a Dask cluster; only the spec changes:

================================  ==========================================================
spec                              executor
================================  ==========================================================
``None``, ``""``, ``inprocess``   tasks run one after another in this process (the default)
``processes:N``                   a local :class:`~concurrent.futures.ProcessPoolExecutor`
``local:N``                       a Dask ``LocalCluster`` with N single-threaded workers
``tcp://host:port``               the Dask scheduler already running at that address
``path/to/cluster.yaml``          a dask-jobqueue cluster (SLURM, PBS, ...) described in YAML
================================  ==========================================================

The YAML file (see ``benchmarks/slurm-cluster.yaml``)::

    jobqueue: slurm          # slurm, pbs, sge, lsf, htcondor, oar or moab
    cluster:                 # keyword arguments of dask_jobqueue.SLURMCluster
      cores: 8
      memory: 16GB
      walltime: "01:00:00"
    jobs: 4                  # how many batch jobs to start

Dask re-runs a task whose worker died (``retries``), so a killed worker costs time, not results.
Dask (``dask``, ``distributed``) is needed only for Dask specs; dask-jobqueue only for YAML specs
(``pip install -e .[cluster]``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

#: Environment variable through which `civitai-study run --cluster` reaches the notebooks.
CLUSTER_ENV = "CIVITAI_STUDY_CLUSTER"
#: How often Dask may re-run a task (e.g. after its worker died).
RETRIES = 3
_JOBQUEUE = {"slurm": "SLURMCluster", "pbs": "PBSCluster", "sge": "SGECluster",
             "lsf": "LSFCluster", "htcondor": "HTCondorCluster", "oar": "OARCluster",
             "moab": "MoabCluster"}


class ClusterSpecError(ValueError):
    """A cluster spec that names no known way to run; the message lists the accepted forms."""


class InProcessExecutor(Executor):
    """Runs each task at once in this process: the default, and the reference for results."""

    def submit(self, fn: Callable, /, *args: Any, **kwargs: Any) -> Future:
        future: Future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as err:  # noqa: BLE001 - handed to the caller through the future
            future.set_exception(err)
        return future


def check_spec(spec: str | None) -> str | None:
    """``spec`` normalised (``None`` for in-process); a clear error when it is not a spec."""
    if spec is None or str(spec).strip() in ("", "inprocess", "none"):
        return None
    spec = str(spec).strip()
    if re.fullmatch(r"(local|processes):[1-9]\d*", spec) or spec.startswith("tcp://"):
        return spec
    if spec.endswith((".yaml", ".yml")):
        path = Path(spec).expanduser()
        if not path.is_file():
            raise ClusterSpecError(f"cluster file {spec} does not exist; write one like "
                                   "benchmarks/slurm-cluster.yaml")
        read_jobqueue_config(path)  # refuse a malformed file before anything runs
        # absolute, because the notebook kernels run in notebooks/, not where the user typed it
        return str(path.resolve())
    raise ClusterSpecError(f"cluster {spec!r} is not understood; use local:N, processes:N, "
                           "tcp://host:port or a dask-jobqueue YAML file")


def spec_from_env() -> str | None:
    """The cluster `civitai-study run --cluster` asked for (``None``: in-process)."""
    return check_spec(os.environ.get(CLUSTER_ENV))


def _dask_client(spec: str):
    try:
        from distributed import Client, LocalCluster
    except ImportError:  # pragma: no cover - dask is in the lock
        raise ClusterSpecError(f"cluster {spec!r} needs Dask: pip install dask distributed"
                               ) from None
    if spec.startswith("local:"):
        cluster = LocalCluster(n_workers=int(spec.split(":")[1]), threads_per_worker=1,
                               processes=True, dashboard_address=None)
        return Client(cluster), cluster
    if spec.startswith("tcp://"):
        return Client(spec), None
    return _jobqueue_client(Path(spec))


def read_jobqueue_config(path: Path) -> dict:
    """The dask-jobqueue YAML file, checked: ``jobqueue`` kind, ``cluster`` mapping, ``jobs``."""
    import yaml

    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise ClusterSpecError(f"{path} is not valid YAML{where}; see "
                               "benchmarks/slurm-cluster.yaml for the shape") from None
    kind = str(config.get("jobqueue", "")).lower() if isinstance(config, dict) else ""
    if kind not in _JOBQUEUE or not isinstance(config.get("cluster", {}), dict):
        raise ClusterSpecError(f"{path}: needs `jobqueue:` one of {sorted(_JOBQUEUE)} and a "
                               "`cluster:` mapping of keyword arguments")
    try:
        int(config.get("jobs", 1))
    except (TypeError, ValueError):
        raise ClusterSpecError(f"{path}: `jobs:` must be a whole number") from None
    return config


def _jobqueue_client(path: Path):
    config = read_jobqueue_config(path)
    kind = str(config["jobqueue"]).lower()
    try:
        import dask_jobqueue
    except ImportError:
        raise ClusterSpecError(f"{path} needs dask-jobqueue: pip install -e .[cluster]") from None
    from distributed import Client

    cluster = getattr(dask_jobqueue, _JOBQUEUE[kind])(**config.get("cluster", {}))
    cluster.scale(jobs=int(config.get("jobs", 1)))
    return Client(cluster), cluster


@contextmanager
def executor(spec: str | None = None) -> Iterator[Executor]:
    """An executor for ``spec`` (see the module doc), shut down when the block ends."""
    spec = check_spec(spec)
    if spec is None:
        yield InProcessExecutor()
        return
    if spec.startswith("processes:"):
        with ProcessPoolExecutor(int(spec.split(":")[1])) as pool:
            yield pool
        return
    client, cluster = _dask_client(spec)
    try:
        yield client.get_executor(retries=RETRIES, pure=False)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def map_ordered(pool: Executor, fn: Callable, items: Iterable) -> list:
    """``[fn(x) for x in items]`` on ``pool``, results in the order of ``items``."""
    futures = [pool.submit(fn, item) for item in items]
    return [f.result() for f in futures]
