import json
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from civitai_study import runner
from civitai_study.cli import main
from civitai_study.parameters import ConfigError
from civitai_study.runner import RunError, clean_notebook, execute_one, load_config

ROOT = Path(__file__).resolve().parents[1]


def test_sample_command(tmp_path, capsys):
    assert main(["sample", "--out", str(tmp_path / "s"), "--images", "2000", "--models",
                 "200"]) == 0
    assert "SYNTHETIC" in capsys.readouterr().out
    manifest = json.loads((tmp_path / "s" / "manifest.json").read_text())
    assert manifest["counts"]["images"] == 2000


def test_bad_sample_size_is_a_clear_error(tmp_path, capsys):
    assert main(["sample", "--out", str(tmp_path / "s"), "--images", "5"]) == 2
    assert "at least 1,000 images" in capsys.readouterr().err


def test_run_refuses_missing_snapshot(tmp_path, capsys):
    assert main(["run", "--data", str(tmp_path / "nothing")]) != 0
    assert "no snapshot directory" in capsys.readouterr().err


def test_config_rejects_secrets(tmp_path):
    cfg = tmp_path / "c.yml"
    cfg.write_text("all:\n  api_key: abc\n")
    with pytest.raises(ConfigError, match="environment"):
        load_config(cfg)
    cfg.write_text("- not a mapping\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(cfg)


def test_notebook_order_and_filter():
    names = [p.stem for p in runner.notebook_paths()]
    assert names == sorted(names) and names[0].startswith("01_")
    assert [p.stem[:2] for p in runner.notebook_paths(only=["01"])] == ["01"]
    with pytest.raises(RunError, match="no notebook"):
        runner.notebook_paths(only=["99"])


def test_clean_notebook_strips_volatile_metadata():
    nb = new_notebook(cells=[new_code_cell("x = 1", metadata={
        "tags": ["injected-parameters"], "papermill": {"duration": 1.0},
        "execution": {"iopub.execute_input": "2026-01-01"}})])
    nb.metadata["papermill"] = {"input_path": "/abs/path", "start_time": "now"}
    cleaned = clean_notebook(nb)
    assert "papermill" not in cleaned.metadata
    assert cleaned.cells[0].metadata == {"tags": ["injected-parameters"]}
    assert cleaned.cells[0]["id"] == "injected-parameters"


def test_split_streams_are_merged():
    from nbformat.v4 import new_output

    nb = new_notebook(cells=[new_code_cell("print()")])
    nb.cells[0].outputs = [new_output("stream", name="stdout", text="a\n"),
                           new_output("stream", name="stdout", text="b\n"),
                           new_output("stream", name="stderr", text="c\n"),
                           new_output("stream", name="stdout", text="d\n")]
    outs = clean_notebook(nb).cells[0].outputs
    assert [(o.name, o.text) for o in outs] == [("stdout", "a\nb\n"), ("stderr", "c\n"),
                                                ("stdout", "d\n")]


def test_failing_notebook_names_cell_and_keeps_original(tmp_path):
    nb = new_notebook(cells=[new_code_cell("x = 1", id="ok"),
                             new_code_cell("raise ValueError('boom')", id="bad")],
                      metadata={"kernelspec": {"name": "civitai-study", "language": "python",
                                               "display_name": "Python (civitai-study)"}})
    src = tmp_path / "99_fail.ipynb"
    nbformat.write(nb, src)
    before = src.read_bytes()
    with pytest.raises(RunError) as info:
        execute_one(src, src, {}, progress=False)
    failed = tmp_path / "99_fail.failed.ipynb"
    assert failed.is_file()
    cells = nbformat.read(failed, as_version=4).cells
    index = next(i for i, c in enumerate(cells) if c.cell_type == "code" and any(
        o.get("output_type") == "error" for o in c.outputs))
    assert cells[index].source == "raise ValueError('boom')"
    # the index named is the one in the .failed.ipynb, and its path is complete
    assert f"99_fail.ipynb failed in cell {index} (In [2])" in str(info.value)
    assert str(failed) in str(info.value)
    assert "ValueError: boom" in str(info.value)
    assert src.read_bytes() == before
