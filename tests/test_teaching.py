"""The teaching edition: no solutions, safe mode forced, a full guide, notebooks that run."""

from __future__ import annotations

import time
from pathlib import Path

import nbformat
import pytest

from civitai_study.paths import NOTEBOOKS_DIR
from civitai_study.runner import KERNEL_NAME
from civitai_study.teaching import build_teaching, solution_cells, student_notebook


def make_notebook() -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    cells = [nbformat.v4.new_markdown_cell("# T\n\nContent warning."),
             nbformat.v4.new_code_cell('data_dir = "x"\nout_dir = None\nredact = False'),
             nbformat.v4.new_code_cell("answer = 42", execution_count=3),
             nbformat.v4.new_code_cell("print(prompt_text)"),
             nbformat.v4.new_code_cell("print(1)")]
    cells[1].metadata["tags"] = ["parameters"]
    cells[2].metadata.update({"tags": ["solution"], "exercise": "Compute the answer."})
    cells[2].outputs = [nbformat.v4.new_output("stream", text="42\n")]
    cells[3].metadata["tags"] = ["explicit"]
    cells[4].metadata["tags"] = ["solution"]
    for i, cell in enumerate(cells):
        cell["id"] = f"c{i}"
    nb.cells = cells
    return nb


def test_student_notebook_replaces_solutions_and_forces_safe_mode():
    out = student_notebook(make_notebook(), "99_test.ipynb")
    sources = [c.source for c in out.cells]
    assert not any("solution" in c.metadata.get("tags", []) for c in out.cells)
    assert "answer = 42" not in "\n".join(sources)
    assert "print(prompt_text)" not in "\n".join(sources), "explicit cells are dropped"
    assert "**Exercise.** Compute the answer." in sources
    assert any(s.startswith("**Exercise.** Write the code") for s in sources)  # default prompt
    params = next(c for c in out.cells if "parameters" in c.metadata.get("tags", []))
    assert params.source.rstrip().endswith('out_dir = out_dir or "../_build/teaching"')
    assert "redact = True" in params.source and "safe_mode = True" in params.source
    assert "safe mode" in out.cells[1].source
    assert all(not c.get("outputs") for c in out.cells if c.cell_type == "code")
    ids = [c.id for c in out.cells]
    assert len(ids) == len(set(ids))
    nbformat.validate(out)


def test_build_writes_guide_and_one_notebook_per_research_notebook(tmp_path):
    written = build_teaching(tmp_path / "teaching")
    research = sorted(NOTEBOOKS_DIR.glob("[0-9][0-9]_*.ipynb"))
    assert [p.name for p in written] == [p.name for p in research]
    for path in written:
        assert solution_cells(path) == [], f"{path.name} still has solution cells"
    guide = (tmp_path / "teaching" / "INSTRUCTOR_GUIDE.md").read_text()
    for heading in ("Learning goals", "Lesson plan (90 minutes)", "Discussion questions",
                    "Consent", "Platform governance", "Measurement choices",
                    "Content warning and safe-space guidance"):
        assert heading in guide
    assert (tmp_path / "teaching" / "README.md").is_file()
    nb05 = tmp_path / "teaching" / "05_figures.ipynb"
    if nb05.is_file() and solution_cells(NOTEBOOKS_DIR / "05_figures.ipynb"):
        assert "**Exercise.**" in nb05.read_text()


def test_teaching_notebooks_run_in_safe_mode(tmp_path, small_sample):
    papermill = pytest.importorskip("papermill")
    teaching = tmp_path / "teaching"
    written = build_teaching(teaching)
    out = tmp_path / "out"
    start = time.perf_counter()
    for path in written:
        params = {"data_dir": str(small_sample), "out_dir": str(out), "seed": 7}
        if path.stem.startswith("01_"):
            params["source"] = "existing"  # never regenerate the snapshot under test
        executed = tmp_path / "executed" / path.name
        executed.parent.mkdir(exist_ok=True)
        papermill.execute_notebook(str(path), str(executed), parameters=params,
                                   kernel_name=KERNEL_NAME, cwd=str(teaching),
                                   progress_bar=False, execution_timeout=300)
        nb = nbformat.read(executed, as_version=4)
        assert solution_cells(executed) == []
        text = "\n".join(str(o.get("text", "")) for c in nb.cells for o in c.get("outputs", []))
        assert "Traceback" not in text
        if path.stem.startswith("05_"):
            assert "safe mode: word clouds are not drawn" in text
    print(f"teaching notebooks ran in {time.perf_counter() - start:.1f} s")
    assert Path(out / "figures").is_dir()


def test_teaching_command_is_registered_and_deterministic(tmp_path, capsys):
    from civitai_study.cli import main

    assert main(["teaching", "--out", str(tmp_path / "a")]) == 0
    assert main(["teaching", "--out", str(tmp_path / "b")]) == 0
    assert "INSTRUCTOR_GUIDE.md" in capsys.readouterr().out
    for path in sorted((tmp_path / "a").iterdir()):
        assert path.read_bytes() == (tmp_path / "b" / path.name).read_bytes(), path.name


GENERIC_CALLS = {"print", "finding_of", "plotted_data", "write_table", "save", "table", "printable",
                 "concat", "round", "to_string", "pivot", "isin", "sum", "len", "str", "int",
                 "float", "list", "sorted", "DataFrame", "show"}


def _called_names(source: str) -> set[str]:
    import ast

    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name and name not in GENERIC_CALLS:
                names.add(name)
    return names


def test_prompts_do_not_give_away_the_answer_and_come_once(tmp_path):
    """Issue 13: a prompt names the module to look in, never the function that answers it; one
    task has one prompt; the solutions are not beside the student notebooks."""
    import re

    from civitai_study.paths import NOTEBOOKS_DIR
    from civitai_study.teaching import SOLUTION_TAG, build_teaching

    for path in sorted(NOTEBOOKS_DIR.glob("[0-9][0-9]_*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            if SOLUTION_TAG not in cell.metadata.get("tags", []):
                continue
            prompt = str(cell.metadata.get("exercise", ""))
            for name in _called_names(cell.source):
                assert not re.search(rf"\b{re.escape(name)}\b", prompt), \
                    f"{path.name} {cell.id}: the prompt gives away {name}()"
    students, solutions = tmp_path / "teaching", tmp_path / "solutions"
    written = build_teaching(students, solutions_dir=solutions)
    for path in written:
        cells = nbformat.read(path, as_version=4).cells
        for a, b in zip(cells, cells[1:], strict=False):
            assert not ("**Exercise.**" in a.source and "**Exercise.**" in b.source
                        and a.cell_type == b.cell_type == "markdown"), f"{path.name}: two prompts"
    assert (solutions / "SOLUTIONS.md").is_file()
    assert not any("solution" in p.name.lower() for p in students.rglob("*"))
    with pytest.raises(ValueError, match="inside the student folder"):
        build_teaching(students, solutions_dir=students / "solutions")


def test_teaching_never_replaces_a_foreign_folder(tmp_path):
    """Issue 13: `teaching --out` into a folder of the user's refuses instead of deleting it."""
    from civitai_study.teaching import build_teaching

    own = tmp_path / "documents"
    own.mkdir()
    (own / "thesis.tex").write_text("mine")
    with pytest.raises(FileExistsError, match="not an earlier teaching edition"):
        build_teaching(own, solutions_dir=None)
    assert (own / "thesis.tex").read_text() == "mine"
    build_teaching(tmp_path / "t", solutions_dir=None)
    build_teaching(tmp_path / "t", solutions_dir=None)  # an earlier edition is rebuilt
    assert (tmp_path / "t" / "INSTRUCTOR_GUIDE.md").is_file()


def test_committed_teaching_edition_is_what_make_teaching_writes(tmp_path):
    """Binder users get the committed teaching/ folder: it must be the current edition (`make all`
    rebuilds it after the notebooks)."""
    root = Path(__file__).resolve().parents[1]
    build_teaching(tmp_path / "t", solutions_dir=None)
    committed = root / "teaching"
    names = sorted(p.name for p in (tmp_path / "t").iterdir())
    assert names == sorted(p.name for p in committed.iterdir() if not p.name.startswith("."))
    stale = [n for n in names
             if (tmp_path / "t" / n).read_bytes() != (committed / n).read_bytes()]
    assert not stale, f"teaching/ is stale ({', '.join(stale)}): run `make teaching` and commit"
