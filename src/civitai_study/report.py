"""The browsable report: a static HTML site from the executed notebooks (Jupyter Book 1.x).

``build_report`` stages a book under ``_build/report-src`` (the hand-written sources in
``report/``, the executed notebooks, the figures and a generated landing page), then runs
``jupyter-book build`` without executing anything: the site shows the outputs a reviewer finds in
the repository. Every figure and every claim links to the notebook cell that produced it; the
link targets are anchors ``cell-NN-<cell id>`` inserted before each code cell of the staged copy
(nbformat cell ids are stable in this project, so links survive re-runs).
"""

from __future__ import annotations

import html
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pandas as pd
import yaml

from .claims import format_value
from .nsfw import MAIN_DEFINITION_REASON
from .paths import DATA_DIR, DERIVED_DIR, FIGURES_DIR, NOTEBOOKS_DIR, RESULTS_DIR, ROOT

REPORT_SOURCES = ROOT / "report"
BUILD_DIR = ROOT / "_build"
MARKERS = ("<!-- DATA-NOTE -->", "<!-- FINDINGS -->", "<!-- GALLERY -->", "<!-- CLAIMS -->")


class ReportError(RuntimeError):
    """The report could not be built; the message says what is missing and how to fix it."""


def cell_anchor(notebook: str | Path, cell_id: str) -> str:
    """HTML id of a notebook cell in the report: ``cell-05-fig-trend``."""
    prefix = Path(notebook).stem.split("_", 1)[0]
    return f"cell-{prefix}-{re.sub(r'[^A-Za-z0-9_-]', '-', str(cell_id))}"


def cell_link(notebook: str | Path, cell_id: str) -> str:
    """Relative URL (from the landing page) of a notebook cell in the report."""
    return f"notebooks/{Path(notebook).stem}.html#{cell_anchor(notebook, cell_id)}"


def _has_image(cell) -> bool:
    return any(str(mime).startswith("image/") for out in cell.get("outputs", [])
               for mime in out.get("data", {}))


def stage_notebook(source: Path, target: Path, alts: dict[str, str] | None = None) -> None:
    """Copy an executed notebook, with an anchor before each code cell and no cell re-run.

    Every figure gets alt text: the finding the figure index records for its cell (``alts``,
    keyed by cell id), else a pointer to the cell that made it.
    """
    nb = nbformat.read(source, as_version=4)
    cells = []
    for cell in nb.cells:
        if cell.cell_type == "code" and _has_image(cell):
            alt = (alts or {}).get(str(cell.get("id", ""))) or \
                f"Figure made by cell {cell.get('id', '')} of {source.name}; see the text around it"
            cell.metadata.setdefault("mystnb", {}).setdefault("image", {})["alt"] = alt
        if cell.cell_type == "code" and cell.get("id"):
            anchor = nbformat.v4.new_markdown_cell(
                f'<a id="{cell_anchor(source, cell.id)}"></a>')
            anchor["id"] = f"anchor-{cell.id}"[:64]
            cells.append(anchor)
        cells.append(cell)
    nb.cells = cells
    target.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, target)


def find_cell(notebooks: list[Path], needle: str) -> tuple[str, str]:
    """(notebook file name, cell id) of the first code cell whose source contains ``needle``."""
    for path in notebooks:
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type == "code" and needle in cell.source:
                return path.name, str(cell.get("id", ""))
    return "", ""


def is_synthetic_run(notebooks: list[Path]) -> bool:
    """Whether the stored notebooks were run on synthetic data (their banner says so)."""
    for path in notebooks:
        for cell in nbformat.read(path, as_version=4).cells:
            for out in cell.get("outputs", []):
                if "THIS IS SYNTHETIC DATA" in str(out.get("text", "")):
                    return True
    return False


def _esc(value: object) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "–"
    return html.escape(str(value))


def figure_rows(tables_dir: Path) -> pd.DataFrame:
    """The generated figure index (``figure_index.csv``) or an empty frame."""
    path = tables_dir / "figure_index.csv"
    if not path.is_file():
        return pd.DataFrame(columns=["figure", "finding", "paper_figure", "notebook", "cell_id",
                                     "tables", "function"])
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def findings_html(rows: pd.DataFrame, synthetic: bool = False) -> str:
    """One item per distinct finding (figures that state the same finding are listed together);
    on the synthetic sample the list says it describes the generator."""
    own = rows[rows["function"] != ""]
    if own.empty:
        return "<p>No figures yet: run the notebooks (<code>make all</code>).</p>"
    grouped: dict[str, list[str]] = {}
    for r in own.itertuples(index=False):
        link = f'<a href="{cell_link(r.notebook, r.cell_id)}">{_esc(r.figure)}</a>'
        grouped.setdefault(" ".join(str(r.finding).split()), []).append(link)
    items = [f"<li>{_esc(finding)} ({', '.join(links)})</li>"
             for finding, links in grouped.items()]
    lead = ("<p><strong>Synthetic run:</strong> these statements describe the synthetic "
            "generator the repository ships with, not CivitAI; they show what each analysis "
            "reports, not what the study finds.</p>\n") if synthetic else ""
    reason = ""
    if own["finding"].str.contains("above PG (main)", regex=False).any():
        reason = f'\n<p class="definitions">{_esc(MAIN_DEFINITION_REASON)}</p>'
    return lead + '<ul class="findings">\n' + "\n".join(items) + "\n</ul>" + reason


def gallery_html(rows: pd.DataFrame, figures_dir: Path) -> str:
    cards = []
    for r in rows.itertuples(index=False):
        if not (figures_dir / f"{r.figure}.png").is_file():
            continue
        paper = "" if r.paper_figure in ("", "new") else f" · paper figure {_esc(r.paper_figure)}"
        link = (f'<a href="{cell_link(r.notebook, r.cell_id)}">{_esc(r.notebook)} · '
                f"<code>{_esc(r.cell_id)}</code></a>") if r.notebook else ""
        cards.append(
            f'<figure class="gallery-card">'
            f'<a href="figures/{r.figure}.png"><img src="figures/{r.figure}.png" '
            f'alt="{_esc(r.finding)}" loading="lazy" style="width:100%"></a>'
            f"<figcaption>{_esc(r.finding)}<br><small>{_esc(r.figure)}{paper} · {link}</small>"
            f"</figcaption></figure>")
    if not cards:
        return "<p>No figures yet: run the notebooks (<code>make all</code>).</p>"
    style = ('<style>.gallery{display:grid;grid-template-columns:repeat(auto-fill,minmax(260px,'
             '1fr));gap:1rem}.gallery-card{margin:0}.gallery-card figcaption{font-size:.85em}'
             "</style>")
    return style + '\n<div class="gallery">\n' + "\n".join(cards) + "\n</div>"


def claims_html(claims_path: Path, tables_dir: Path, notebooks: list[Path]) -> str:
    """The claims table: each claim, its source and population, this run's estimate and whether
    the two are comparable, with a link to the cell that computed the estimate."""
    if not claims_path.is_file():
        return "<p>No claims table (<code>data/claims.yaml</code>) in this repository yet.</p>"
    claims = pd.DataFrame(yaml.safe_load(claims_path.read_text(encoding="utf-8")) or [])
    comparison_path = tables_dir / "claims_comparison.csv"
    notebook, cell = find_cell(notebooks, "claims_comparison.csv")
    if comparison_path.is_file():
        run = pd.read_csv(comparison_path).set_index("id")
        claims["this_run"] = claims["id"].map(run["this_run"]) if "this_run" in run else None
        claims["verdict"] = claims["id"].map(run["verdict"]) if "verdict" in run else None
    else:
        claims["this_run"], claims["verdict"] = None, "not estimated yet (run notebook 03)"
    link = (f' <a href="{cell_link(notebook, cell)}">{_esc(notebook)} · <code>{_esc(cell)}'
            "</code></a>") if notebook else ""
    head = ("<tr><th>claim (source)</th><th>value</th><th>population</th><th>this run</th>"
            "<th>comparable?</th></tr>")
    body = []
    for c in claims.itertuples(index=False):
        unit = str(c.unit or "")
        body.append(
            f"<tr><td>{_esc(c.claim)}<br><small>{_esc(c.source)}</small></td>"
            f"<td>{_esc(format_value(c.value, unit))}<br><small>{_esc(unit)}</small></td>"
            f"<td><small>{_esc(c.population)}</small></td>"
            f"<td>{_esc(format_value(c.this_run, unit))}<br><small>{link}</small></td>"
            f"<td><small>{_esc(c.verdict)}</small></td></tr>")
    style = ("<style>.claims{max-width:100%;overflow-x:auto}.claims table{width:100%;"
             "table-layout:fixed;overflow-wrap:anywhere}.claims td,.claims th{vertical-align:top}"
             "</style>\n")
    return (style + '<div class="claims"><table class="table">\n<thead>' + head
            + "</thead>\n<tbody>\n" + "\n".join(body) + "\n</tbody></table></div>")


def figure_index_md(rows: pd.DataFrame) -> str:
    """The figure index as a report page (same rows as ``figures/README.md``)."""
    lines = ["# Figure index", "", "Generated by notebook 05 (`figure_index.csv`); each row links "
             "to the cell that made the figure.", "", "<table class=\"table\"><thead><tr>"
             "<th>figure</th><th>finding</th><th>paper figure</th><th>cell</th><th>tables</th>"
             "</tr></thead><tbody>"]
    for r in rows.itertuples(index=False):
        cell = (f'<a href="{cell_link(r.notebook, r.cell_id)}">{_esc(r.notebook)} · '
                f"<code>{_esc(r.cell_id)}</code></a>") if r.notebook else ""
        lines.append(f'<tr><td><a href="figures/{r.figure}.png">{_esc(r.figure)}</a></td>'
                     f"<td>{_esc(r.finding)}</td><td>{_esc(r.paper_figure)}</td><td>{cell}</td>"
                     f"<td>{_esc(r.tables.replace(';', ', '))}</td></tr>")
    lines.append("</tbody></table>")
    return "\n".join(lines) + "\n"


REAL_RESULTS = "real-2023"
REAL_BANNER = """```{important}
These pages were run on **REAL data**: the 17,982 models and their 187,256 preview images caught
by a July 2023 crawl of CivitAI's `/api/v1/models` (`dfanr/CivitaiModelList`), not the paper's
40 million images. A crawl sorted by popularity over-represents popular models; preview images are
what creators chose to show. Aggregates only: names of real people, creators' handles and slurs
are redacted. Regenerate with `make real`.
```"""


def stage_real_results(staging: Path, results_dir: Path = RESULTS_DIR / REAL_RESULTS
                       ) -> list[dict]:
    """Stage ``results/real-2023`` (notebooks, figures, index page) into the book; returns its
    table-of-contents entries (none when the results are absent)."""
    notebooks = sorted((results_dir / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    if not notebooks:
        return []
    target = staging / REAL_RESULTS
    for path in notebooks:
        stage_notebook(path, target / "notebooks" / path.name)
    figures = staging / "_extra" / REAL_RESULTS / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    for png in sorted((results_dir / "figures").glob("*.png")):
        shutil.copyfile(png, figures / png.name)
    rows = figure_rows(results_dir / "tables")
    # The page lies in real-2023/, beside its notebooks/ and figures/: the landing page's
    # relative links work unchanged.
    page = "\n\n".join([
        "# Real data: the 2023 crawl", REAL_BANNER, "## What the real data shows",
        findings_html(rows), "## Figure gallery", gallery_html(rows, results_dir / "figures")])
    (target / "index.md").write_text(page + "\n", encoding="utf-8")
    return [{"file": f"{REAL_RESULTS}/index",
             "sections": [{"file": f"{REAL_RESULTS}/notebooks/{p.stem}"} for p in notebooks]}]


def _toc_for(staging: Path, extra: list[dict] | None = None) -> None:
    """Drop table-of-contents entries whose page does not exist (a notebook not written yet)."""
    toc_path = staging / "_toc.yml"
    toc = yaml.safe_load(toc_path.read_text(encoding="utf-8"))
    kept = []
    for entry in toc.get("chapters", []):
        stem = staging / entry["file"]
        if any(stem.with_suffix(s).is_file() for s in (".ipynb", ".md")):
            kept.append(entry)
    toc["chapters"] = kept + list(extra or [])
    toc_path.write_text(yaml.safe_dump(toc, sort_keys=False), encoding="utf-8")


def stage(staging: Path, sources: Path = REPORT_SOURCES, notebooks_dir: Path = NOTEBOOKS_DIR,
          figures_dir: Path = FIGURES_DIR, tables_dir: Path = DERIVED_DIR,
          claims_path: Path = DATA_DIR / "claims.yaml",
          results_dir: Path = RESULTS_DIR / REAL_RESULTS) -> list[Path]:
    """Assemble the book's sources in ``staging``; returns the notebooks staged."""
    for name in ("_config.yml", "_toc.yml", "index.md"):
        if not (sources / name).is_file():
            raise ReportError(f"{sources / name} is missing: the report sources live in report/")
    notebooks = sorted(notebooks_dir.glob("[0-9][0-9]_*.ipynb"))
    if not notebooks:
        raise ReportError(f"no notebooks in {notebooks_dir}: run `make all` first")
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    for name in ("_config.yml", "_toc.yml"):
        shutil.copyfile(sources / name, staging / name)
    rows = figure_rows(tables_dir)
    for path in notebooks:
        alts = {r.cell_id: str(r.finding) for r in rows.itertuples(index=False)
                if r.notebook == path.name and r.cell_id}
        stage_notebook(path, staging / "notebooks" / path.name, alts)
    extra = staging / "_extra" / "figures"
    extra.mkdir(parents=True)
    for png in sorted(figures_dir.glob("*.png")):
        shutil.copyfile(png, extra / png.name)
    note = ""
    synthetic = is_synthetic_run(notebooks)
    if synthetic:
        note = ("```{important}\nThese pages were run on the **SYNTHETIC** sample that ships with "
                "the repository: every number describes the generator, not CivitAI. Run the "
                "notebooks on a real snapshot for findings about the platform.\n```")
    landing = (sources / "index.md").read_text(encoding="utf-8")
    if synthetic:
        landing = landing.replace("## What the study finds", "## What this run shows (synthetic)")
    parts = (note, findings_html(rows, synthetic), gallery_html(rows, figures_dir),
             claims_html(claims_path, tables_dir, notebooks))
    for marker, text in zip(MARKERS, parts, strict=True):
        landing = landing.replace(marker, text)
    (staging / "index.md").write_text(landing, encoding="utf-8")
    (staging / "figure_index.md").write_text(figure_index_md(rows), encoding="utf-8")
    config = yaml.safe_load((staging / "_config.yml").read_text(encoding="utf-8"))
    config.setdefault("sphinx", {}).setdefault("config", {})["html_extra_path"] = ["_extra"]
    (staging / "_config.yml").write_text(yaml.safe_dump(config, sort_keys=False),
                                         encoding="utf-8")
    _toc_for(staging, stage_real_results(staging, results_dir))
    return notebooks


_INLINE_SCRIPT = re.compile(r"<script>[^<]*</script>\n?")


def dedupe_inline_scripts(page: Path) -> bool:
    """Drop repeated identical inline ``<script>`` blocks from a built page.

    sphinx-thebe 0.3 under Sphinx 7 registers its configuration script twice; the second
    ``const THEBE_JS_URL`` declaration is a JavaScript error in every page's console.
    """
    text = page.read_text(encoding="utf-8")
    seen: set[str] = set()

    def keep_first(match: re.Match) -> str:
        block = match.group(0).strip()
        if block in seen:
            return ""
        seen.add(block)
        return match.group(0)

    cleaned = _INLINE_SCRIPT.sub(keep_first, text)
    if cleaned != text:
        page.write_text(cleaned, encoding="utf-8")
    return cleaned != text


def _jupyter_book() -> list[str]:
    exe = Path(sys.executable).with_name("jupyter-book")
    if exe.is_file():
        return [str(exe)]
    found = shutil.which("jupyter-book")
    if not found:
        raise ReportError("jupyter-book is not installed: run `make venv` (it is in the lock)")
    return [found]


def build_report(out_dir: Path = BUILD_DIR, sources: Path = REPORT_SOURCES,
                 notebooks_dir: Path = NOTEBOOKS_DIR, figures_dir: Path = FIGURES_DIR,
                 tables_dir: Path = DERIVED_DIR, claims_path: Path = DATA_DIR / "claims.yaml",
                 quiet: bool = True) -> Path:
    """Build the static site into ``out_dir/html``; returns the landing page's path.

    Nothing is executed: the notebooks must have been run (``make all``) beforehand.
    """
    out_dir = Path(out_dir)
    staging = out_dir / "report-src"
    stage(staging, sources, notebooks_dir, figures_dir, tables_dir, claims_path)
    cmd = [*_jupyter_book(), "build", str(staging), "--builder", "html", "--keep-going"]
    if quiet:
        cmd.append("--quiet")
    env = {**os.environ, "PYDEVD_DISABLE_FILE_VALIDATION": "1"}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    built = staging / "_build" / "html"
    if done.returncode != 0 or not (built / "index.html").is_file():
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-30:])
        raise ReportError(f"jupyter-book build failed (exit {done.returncode}):\n{tail}")
    target = out_dir / "html"
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(built, target)
    for page in target.rglob("*.html"):
        dedupe_inline_scripts(page)
    return target / "index.html"
