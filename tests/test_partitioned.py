"""Map over parts and reduce: identical tables in-process, on local processes and on Dask."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from civitai_study import describe, parallel, partitioned, trends
from civitai_study.synthetic import SampleConfig
from civitai_study.synthetic_stream import write_large_sample

CUBE_TABLES = {
    "images_by_month": describe.images_by_month,
    "images_by_month_level": describe.images_by_month_level,
    "base_models_by_month": describe.base_models_by_month,
    "nsfw_definitions_by_month": describe.nsfw_definitions_by_month,
    "nsfw_overall": describe.nsfw_overall,
    "undated": lambda con: __import__("pandas").DataFrame([describe.undated_counts(con)]),
    "nsfw_counts_week": lambda con: trends.nsfw_counts(con, "r_plus", "week"),
    "volume_counts": trends.volume_counts,
}
CREATOR_TABLES = {"creator_concentration": describe.creator_concentration,
                  "lorenz": describe.lorenz}


@pytest.fixture(scope="module")
def parted(tmp_path_factory):
    """A snapshot whose images are in 3 parts."""
    out = tmp_path_factory.mktemp("parted") / "snap"
    return write_large_sample(out, SampleConfig(n_images=12_000, n_models=300, seed=5),
                              part_rows=5_000)


def _csvs(con, functions) -> dict[str, str]:
    return {name: fn(con).to_csv(index=False) for name, fn in functions.items()}


def _reference(snapshot):
    con = snapshot.connect()
    return _csvs(con, CUBE_TABLES), _csvs(con, CREATOR_TABLES)


def _check(snapshot, pool, **kw):
    kw.setdefault("target_rows", 5_000)
    cube_ref, creators_ref = _reference(snapshot)
    reduced = partitioned.reduced_connections(snapshot, pool, **kw)
    try:
        assert reduced.n_parts == len(partitioned.group_parts(snapshot.files["images"],
                                                              kw["target_rows"]))
        assert _csvs(reduced.cube, CUBE_TABLES) == cube_ref
        assert _csvs(reduced.creators, CREATOR_TABLES) == creators_ref
    finally:
        reduced.close()


def test_in_process_map_reduce_is_byte_identical(parted):
    assert len(parted.files["images"]) == 3
    with parallel.executor(None) as pool:
        _check(parted, pool)


def test_the_default_sample_single_file_too(small_sample):
    from civitai_study.snapshot import load_snapshot

    with parallel.executor("processes:2") as pool:
        _check(load_snapshot(small_sample), pool)


def test_dask_local_cluster_with_two_workers_is_byte_identical(parted):
    pytest.importorskip("distributed")
    with parallel.executor("local:2") as pool:
        _check(parted, pool)


def _dies_once(task):
    """Kill this worker process the first time it meets part 0 (a marker file remembers)."""
    marker = Path(task.creators_out).parent.parent.parent / "killed-once"
    if task.paths[0].endswith("part-000000.parquet") and not marker.exists():
        marker.write_text("killed")
        os._exit(1)
    return partitioned.part_partials(task)


def test_a_killed_worker_is_retried_and_results_are_identical(parted, tmp_path):
    pytest.importorskip("distributed")
    import cloudpickle
    import test_partitioned
    cloudpickle.register_pickle_by_value(test_partitioned)
    with parallel.executor("local:2") as pool:
        _check(parted, pool, scratch=tmp_path / "scratch", task=_dies_once)
    assert (tmp_path / "killed-once").is_file(), "the worker was never killed"
    assert not (tmp_path / "scratch").exists()  # closed: scratch removed


def test_small_parts_are_grouped_into_tasks(parted):
    groups = partitioned.group_parts(parted.files["images"], target_rows=10_000)
    assert [len(g) for g in groups] == [2, 1]
    assert partitioned.group_parts(parted.files["images"], target_rows=1) == \
        [[p] for p in parted.files["images"]]
    with parallel.executor(None) as pool:
        _check(parted, pool, target_rows=10_000)


def test_unknown_cluster_specs_say_what_is_accepted():
    with pytest.raises(parallel.ClusterSpecError, match="local:N"):
        parallel.check_spec("mars:3")
    with pytest.raises(parallel.ClusterSpecError, match="does not exist"):
        parallel.check_spec("nowhere.yaml")


def test_cluster_files_are_checked_up_front_and_made_absolute(tmp_path, monkeypatch):
    """The kernels run in notebooks/: a relative file must reach them as an absolute path, and a
    malformed file is refused before any notebook starts."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "good.yaml").write_text("jobqueue: slurm\ncluster: {cores: 1}\n")
    assert parallel.check_spec("good.yaml") == str(tmp_path / "good.yaml")
    (tmp_path / "bad.yaml").write_text("jobqueue: [slurm\n")
    with pytest.raises(parallel.ClusterSpecError, match="not valid YAML"):
        parallel.check_spec("bad.yaml")
    (tmp_path / "kind.yaml").write_text("jobqueue: mainframe\n")
    with pytest.raises(parallel.ClusterSpecError, match="needs `jobqueue:`"):
        parallel.check_spec("kind.yaml")


def test_the_slurm_example_config_makes_a_job_script():
    """benchmarks/slurm-cluster.yaml is a valid dask-jobqueue SLURM spec (no SLURM needed)."""
    jobqueue = pytest.importorskip("dask_jobqueue")
    import yaml

    root = Path(__file__).resolve().parents[1]
    spec = root / "benchmarks" / "slurm-cluster.yaml"
    assert parallel.check_spec(str(spec)) == str(spec)
    config = yaml.safe_load(spec.read_text(encoding="utf-8"))
    cluster = jobqueue.SLURMCluster(**config["cluster"], scheduler_options={"host": "127.0.0.1"})
    try:
        script = cluster.job_script()
    finally:
        cluster.close()
    assert "#SBATCH" in script and "--mem=" in script and "activate" in script


def test_run_refuses_a_bad_cluster_or_memory_limit_before_starting(small_sample, capsys):
    from civitai_study.cli import main

    assert main(["run", "--data", str(small_sample), "--cluster", "mars:3"]) == 2
    assert "local:N" in capsys.readouterr().err
    assert main(["run", "--data", str(small_sample), "--duckdb-memory", "lots"]) == 2
    assert "2GB" in capsys.readouterr().err
    assert parallel.CLUSTER_ENV not in os.environ


def test_image_connections_without_a_cluster_are_the_given_connection(small_sample,
                                                                      monkeypatch):
    from civitai_study.snapshot import load_snapshot

    monkeypatch.delenv(parallel.CLUSTER_ENV, raising=False)
    snap = load_snapshot(small_sample)
    con = snap.connect()
    assert partitioned.image_connections(snap, con) == (con, con)
    monkeypatch.setenv(parallel.CLUSTER_ENV, "processes:1")
    images, creators = partitioned.image_connections(snap, con)
    assert images is not con
    assert describe.images_by_month(images).equals(describe.images_by_month(con))
