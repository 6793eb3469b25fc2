"""Checks on the stored notebooks that need no kernel: structure, safety, reproducibility."""

import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
EXPECTED = ["01_data_collection", "02_descriptive_statistics", "03_trend_regression",
            "04_qualitative_coding", "05_figures"]
ABSOLUTE = re.compile(r"(/work/|/home/|/root/|/tmp/|/Users/|[A-Z]:\\\\)")


def test_all_notebooks_present_in_order():
    assert [p.stem for p in NOTEBOOKS] == EXPECTED


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_structure(path):
    nb = nbformat.read(path, as_version=4)
    first = nb.cells[0]
    assert first.cell_type == "markdown" and "content warning" in first.source.lower()
    assert "reads" in first.source.lower() and "writes" in first.source.lower()
    params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1, "exactly one cell tagged 'parameters'"
    for name in ("data_dir", "out_dir", "seed"):
        assert re.search(rf"^{name}\s*=", params[0].source, re.M), f"parameter {name} missing"
    assert nb.metadata["kernelspec"]["name"] == "civitai-study"
    assert any("setup(" in c.source for c in nb.cells if c.cell_type == "code")
    assert any(c.source.startswith("# NBVAL_CHECK_OUTPUT") for c in nb.cells
               if c.cell_type == "code"), "no cell marks its output for nbval"
    ids = [c.get("id") for c in nb.cells]
    assert len(ids) == len(set(ids)) and all(ids)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_stored_outputs_are_clean(path):
    nb = nbformat.read(path, as_version=4)
    assert "papermill" not in nb.metadata, "run through civitai-study run to strip metadata"
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        assert cell.get("execution_count") is not None, f"cell {cell.id} was not executed"
        for out in cell.outputs:
            assert out.output_type != "error", f"cell {cell.id} stored an error"
            text = out.get("text", "") + str(out.get("data", {}).get("text/plain", ""))
            assert not ABSOLUTE.search(text), f"cell {cell.id} shows an absolute path"
            assert " at 0x" not in text, f"cell {cell.id} shows a memory address"
            if out.output_type == "stream" and out.name == "stderr":
                assert "Warning" not in text, f"cell {cell.id} shows a warning: {text[:200]}"
        assert "CIVITAI_API_KEY=" not in cell.source
