"""Issue 13, data loss: every writer stages and swaps, so a failure midway changes nothing.

Faults are injected midway through ``import``, ``sample`` and ``run``; afterwards the previous
snapshot, the stored notebooks, the derived tables and the README must be byte-identical.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from civitai_study import runner, staging
from civitai_study.cli import main
from civitai_study.importers import run_importer
from civitai_study.importers.common import ImportInputError, InputTruncated
from civitai_study.importers.sink import Sink
from civitai_study.snapshot import SnapshotError, load_snapshot, verify_files
from civitai_study.synthetic import SampleConfig, write_sample


def tree(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` with its bytes (the thing that must not change)."""
    if root.is_file():
        return {root.name: root.read_bytes()}
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def model(model_id: int) -> dict:
    return {
        "id": model_id, "name": f"m{model_id}", "type": "LORA", "poi": False, "nsfw": True,
        "creator": {"username": "someone", "image": None}, "tags": ["woman"],
        "stats": {"downloadCount": 1, "thumbsUpCount": 3},
        "modelVersions": [{
            "id": model_id * 10, "name": "v1", "createdAt": "2023-03-01T00:00:00.000Z",
            "baseModel": "SD 1.5", "trainedWords": [],
            "images": [{"id": model_id * 100, "nsfwLevel": 8, "hash": "UABC", "width": 1,
                        "height": 1}],
        }],
    }


def models_file(path: Path, ids: range, gz: bool = False) -> Path:
    text = "".join(json.dumps(model(i)) + "\n" for i in ids)
    if gz:
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


@pytest.fixture(autouse=True)
def _local_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CIVITAI_STUDY_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("CIVITAI_STUDY_HASH_KEY", "test key")


def test_failed_import_midway_keeps_previous_snapshot(tmp_path, monkeypatch):
    out = tmp_path / "snap"
    run_importer("models-jsonl", models_file(tmp_path / "a.jsonl", range(1, 6)), out)
    (out / "my_notes.txt").write_text("mine")
    before = tree(out)

    real_add = Sink.add_model
    calls = {"n": 0}

    def failing_add(self, parsed, kind="model_preview"):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError("disk full (injected)")
        return real_add(self, parsed, kind)

    monkeypatch.setattr(Sink, "add_model", failing_add)
    with pytest.raises(OSError, match="injected"):
        run_importer("models-jsonl", models_file(tmp_path / "b.jsonl", range(10, 20)), out)
    assert tree(out) == before
    assert not staging.staging_path(out).exists()


def test_successful_import_swaps_and_keeps_users_files(tmp_path):
    out = tmp_path / "snap"
    run_importer("models-jsonl", models_file(tmp_path / "a.jsonl", range(1, 6)), out)
    (out / "my_notes.txt").write_text("mine")
    snap = run_importer("models-jsonl", models_file(tmp_path / "b.jsonl", range(10, 13)), out)
    assert snap.manifest["counts"]["models"] == 3
    assert (out / "my_notes.txt").read_text() == "mine"
    assert not staging.staging_path(out).exists()


@pytest.mark.parametrize("content, match", [
    (b"", "is empty"),
    (b'[{"id": 1}]\n', "JSON array"),
    (b"\xb9\xff garbage\n", "not UTF-8 text"),
    (b'"just a string"\n', "not an object"),
    (b"not json at all\n", "not JSON"),
])
def test_wrong_format_is_refused_before_anything_is_written(tmp_path, content, match):
    out = tmp_path / "snap"
    run_importer("models-jsonl", models_file(tmp_path / "a.jsonl", range(1, 4)), out)
    before = tree(out)
    bad = tmp_path / "bad.jsonl.gz"
    bad.write_bytes(content)
    with pytest.raises(ImportInputError, match=match):
        run_importer("models-jsonl", bad, out)
    assert tree(out) == before


def test_garbage_inside_gzip_names_file_and_line(tmp_path):
    bad = tmp_path / "x.jsonl.gz"
    bad.write_bytes(gzip.compress(json.dumps(model(1)).encode() + b"\n\xb9\xb9\n"))
    with pytest.raises(ImportInputError, match=r"x.jsonl.gz: line 2 is not UTF-8"):
        run_importer("models-jsonl", bad, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_image_table_with_wrong_columns_names_the_expected_ones(tmp_path):
    bad = tmp_path / "t.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(ImportInputError, match="createdAt"):
        run_importer("civ40k", bad, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_zero_row_import_is_an_error(tmp_path):
    src = tmp_path / "m.jsonl"
    src.write_text('{"name": "a"}\n{"name": "b"}\n')  # objects, but no model ids
    with pytest.raises(ImportInputError, match="no record"):
        run_importer("models-jsonl", src, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_truncated_gzip_keeps_records_and_reports(tmp_path, capsys):
    whole = models_file(tmp_path / "m.jsonl.gz", range(1, 400), gz=True).read_bytes()
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(InputTruncated, match="ended early after"):
        run_importer("models-jsonl", cut, tmp_path / "out")
    snap = load_snapshot(tmp_path / "out")
    assert snap.manifest["counts"]["models"] > 0
    assert "cut.jsonl.gz" in snap.manifest["input_truncated"]
    assert main(["import", "models-jsonl", str(cut), "--out", str(tmp_path / "o2")]) == 1
    err = capsys.readouterr().err
    assert "ended early" in err and "Traceback" not in err


def test_failed_sample_midway_keeps_previous_sample(tmp_path, monkeypatch):
    out = tmp_path / "s"
    write_sample(out, SampleConfig(n_images=1000, n_models=100, seed=1))
    before = tree(out)
    import civitai_study.snapshot as snapshot_mod

    def broken(root, manifest):
        raise OSError("disk full (injected)")

    monkeypatch.setattr(snapshot_mod, "write_manifest", broken)
    with pytest.raises(OSError, match="injected"):
        write_sample(out, SampleConfig(n_images=1000, n_models=100, seed=2))
    assert tree(out) == before
    assert not staging.staging_path(out).exists()


def test_sample_refuses_foreign_folders(tmp_path, capsys):
    imported = tmp_path / "imp"
    run_importer("models-jsonl", models_file(tmp_path / "a.jsonl", range(1, 4)), imported)
    before = tree(imported)
    assert main(["sample", "--out", str(imported), "--images", "1000", "--models", "100"]) == 2
    assert "does not hold an earlier synthetic sample" in capsys.readouterr().err
    assert tree(imported) == before
    own = tmp_path / "own"
    own.mkdir()
    (own / "images.parquet").write_bytes(b"my own file")
    assert main(["sample", "--out", str(own), "--images", "1000", "--models", "100"]) == 2
    assert (own / "images.parquet").read_bytes() == b"my own file"


# --- run: checksums, other snapshots, all-or-nothing -------------------------------------------

def test_checksum_mismatch_is_refused_before_any_notebook(small_sample, tmp_path):
    copy = tmp_path / "snap"
    import shutil

    shutil.copytree(small_sample, copy)
    snap = load_snapshot(copy)
    assert verify_files(snap) > 0  # first use: every file hashed
    assert verify_files(snap) == 0  # fast path: size and mtime unchanged
    assert verify_files(snap, full=True) > 0  # --verify
    target = copy / "models.parquet"
    data = bytearray(target.read_bytes())
    data[len(data) // 3] ^= 0xFF  # in the data pages: the footer stays readable
    target.write_bytes(bytes(data))
    with pytest.raises(SnapshotError, match="does not match its sha256"):
        verify_files(load_snapshot(copy))


def test_run_on_other_snapshot_without_out_refuses_with_command(small_sample, capsys):
    assert main(["run", "--data", str(small_sample)]) == 2
    err = capsys.readouterr().err
    assert "--out results/" in err and "Traceback" not in err


def test_run_on_zero_row_snapshot_is_refused(tmp_path, capsys, monkeypatch):
    out = tmp_path / "models_only"
    run_importer("models-jsonl", models_file(tmp_path / "a.jsonl", range(1, 3)), out)
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["counts"]["images"] = 0
    (out / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(runner.RunInputError, match="no images"):
        runner.check_data(out, tmp_path / "res")


def _fake_repo(tmp_path: Path, monkeypatch, sample: Path) -> dict[str, Path]:
    """A throw-away copy of the places an in-place run writes, with three tiny notebooks."""
    nbs = tmp_path / "notebooks"
    nbs.mkdir()
    paths = []
    for stem in ("01_a", "02_b", "03_c"):
        nb = new_notebook(cells=[new_code_cell("data_dir = 'x'\nout_dir = None\nseed = 1",
                                               metadata={"tags": ["parameters"]})])
        nbformat.write(nb, nbs / f"{stem}.ipynb")
        paths.append(nbs / f"{stem}.ipynb")
    derived, figures, readme = tmp_path / "derived", tmp_path / "figures", tmp_path / "README.md"
    derived.mkdir()
    figures.mkdir()
    (derived / "old.csv").write_text("a\n1\n")
    (figures / "README.md").write_text("old index\n")
    readme.write_text("# readme\n<!-- figure-index:start -->old<!-- figure-index:end -->\n")
    monkeypatch.setattr(runner, "notebook_paths", lambda only=None: list(paths))
    monkeypatch.setattr(runner, "DERIVED_DIR", derived)
    monkeypatch.setattr(runner, "FIGURES_DIR", figures)
    monkeypatch.setattr(runner, "README", readme)
    monkeypatch.setattr(runner, "SAMPLE_DIR", sample)
    return {"notebooks": nbs, "derived": derived, "figures": figures, "readme": readme}


def test_in_place_run_failing_midway_changes_nothing(small_sample, tmp_path, monkeypatch):
    places = _fake_repo(tmp_path, monkeypatch, small_sample)
    before = {name: tree(path) for name, path in places.items()}

    def fake_execute(path, output, parameters, progress, failed_at=None):
        n = path.stem[:2]
        (runner.DERIVED_DIR / f"table_{n}.csv").write_text("new\n")
        (runner.DERIVED_DIR / "old.csv").write_text("overwritten\n")
        (runner.FIGURES_DIR / f"fig_{n}.png").write_bytes(b"png")
        runner.README.write_text("rewritten\n")
        if n == "03":
            raise runner.RunError(f"{path.name} failed in cell 4 (injected)")
        nbformat.write(new_notebook(cells=[new_code_cell("executed")]), output)

    monkeypatch.setattr(runner, "execute_one", fake_execute)
    with pytest.raises(runner.RunError, match="injected"):
        runner.run_notebooks(small_sample)
    assert {name: tree(path) for name, path in places.items()} == before


def test_in_place_run_interrupted_changes_nothing(small_sample, tmp_path, monkeypatch):
    places = _fake_repo(tmp_path, monkeypatch, small_sample)
    before = {name: tree(path) for name, path in places.items()}

    def interrupted(path, output, parameters, progress, failed_at=None):
        (runner.DERIVED_DIR / "partial.csv").write_text("x\n")
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "execute_one", interrupted)
    with pytest.raises(KeyboardInterrupt):
        runner.run_notebooks(small_sample)
    assert {name: tree(path) for name, path in places.items()} == before


def test_successful_run_stores_every_notebook_together(small_sample, tmp_path, monkeypatch):
    places = _fake_repo(tmp_path, monkeypatch, small_sample)

    def fake_execute(path, output, parameters, progress, failed_at=None):
        assert not (places["notebooks"] / "01_a.ipynb").read_text().count("executed")
        nbformat.write(new_notebook(cells=[new_code_cell("executed")]), output)

    monkeypatch.setattr(runner, "execute_one", fake_execute)
    written = runner.run_notebooks(small_sample)
    assert len(written) == 3
    assert all("executed" in p.read_text() for p in written)


def test_export_sample_never_overwrites_a_filled_in_sheet(small_sample, tmp_path, capsys):
    out = tmp_path / "sheets"
    argv = ["coding", "export-sample", "--data", str(small_sample), "--out", str(out),
            "--per-stratum", "2"]
    assert main(argv) == 0
    assert main(argv) == 0  # the same sheets again: nothing to lose
    sheet = sorted(out.glob("*.csv"))[0]
    sheet.write_text(sheet.read_text() + "my coding\n")
    before = tree(out)
    assert main(argv) == 2
    assert "exists and differs" in capsys.readouterr().err
    assert tree(out) == before


def test_import_refuses_a_folder_with_the_users_own_table_files(tmp_path):
    own = tmp_path / "own"
    own.mkdir()
    (own / "images.parquet").write_bytes(b"my own file")
    with pytest.raises(FileExistsError, match="not a snapshot"):
        run_importer("models-jsonl", models_file(tmp_path / "a.jsonl", range(1, 3)), own)
    assert (own / "images.parquet").read_bytes() == b"my own file"


def test_truncated_import_never_replaces_a_complete_snapshot(tmp_path):
    """The records before the break are kept beside ``--out``; the good snapshot stays."""
    whole = models_file(tmp_path / "m.jsonl.gz", range(1, 400), gz=True)
    out = tmp_path / "out"
    run_importer("models-jsonl", whole, out)
    before = tree(out)
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(whole.read_bytes()[: len(whole.read_bytes()) // 2])
    with pytest.raises(InputTruncated, match="still holds the snapshot it had"):
        run_importer("models-jsonl", cut, out)
    assert tree(out) == before
    partial = load_snapshot(tmp_path / "out.partial")
    assert 0 < partial.manifest["counts"]["models"] < 399
