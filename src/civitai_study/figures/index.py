"""The figure index: which file shows what, made by which notebook cell, from which table.

Notebook 05 registers every figure it saves; at the end it writes ``figures/README.md`` and
``figure_index.csv``. The cell that made a figure is found by reading the notebook file and
looking for the cell whose source names the figure's file name, so the index cannot drift from
the notebook (nbformat cell ids are stable in this project). The one-line finding is the
figure's own title, so the index and the figure cannot disagree either.

Notebooks 03 and 04 save their figures through a ``FigureIndex`` with a ``registry``: every
save (or ``add``) rewrites that notebook's rows in the tables folder's ``figure_registry.csv``,
so notebook 05 lists their figures with the same finding, cell, table and function
(``add_other_figures(..., registry=...)``) instead of a bare pointer to the notebook.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib.pyplot as plt
import nbformat
import pandas as pd

from ..nsfw import MAIN_DEFINITION_REASON
from ..paths import FIGURES_DIR, NOTEBOOKS_DIR, ROOT
from .style import PNG_METADATA, finding_of, save_figure

INDEX_COLUMNS = ["figure", "finding", "paper_figure", "notebook", "cell_id", "tables",
                 "function"]
#: Rows registered by notebooks other than 05 (in the tables folder).
REGISTRY_NAME = "figure_registry.csv"


def cell_of(notebook: Path, needle: str) -> str:
    """Id of the first code cell whose source contains ``needle`` ('' when none does)."""
    nb = nbformat.read(notebook, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code" and needle in cell.source:
            return str(cell.get("id", ""))
    return ""


def preview(fig: plt.Figure, dpi: int = 72) -> None:
    """Display ``fig`` in a notebook as a small PNG with pinned metadata."""
    from IPython.display import Image, display

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, metadata=PNG_METADATA, bbox_inches="tight")
    display(Image(data=buffer.getvalue(), format="png"))


README_MARKERS = ("<!-- figure-index:start -->", "<!-- figure-index:end -->")


def read_registry(path: Path | None) -> list[dict[str, str]]:
    """Rows of a ``figure_registry.csv`` (empty when ``path`` is None or missing)."""
    if path is None or not Path(path).is_file():
        return []
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in INDEX_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"{path.name}: column(s) {missing} missing; delete it and re-run the "
                         "notebooks that save figures (03, 04)")
    return frame[INDEX_COLUMNS].to_dict("records")


@dataclass
class FigureIndex:
    """Figures saved by one notebook, in the order they were saved."""

    notebook: Path = NOTEBOOKS_DIR / "05_figures.ipynb"
    rows: list[dict[str, str]] = field(default_factory=list)
    #: ``figure_registry.csv`` to keep this notebook's rows in (notebooks 03, 04); None: none.
    registry: Path | None = None

    def save(self, fig: plt.Figure, name: str, directory: Path, *, tables: list[str],
             paper_figure: str = "new", function: str = "", show: bool = False,
             finding: str | None = None) -> None:
        """Save ``fig`` through :func:`save_figure`, register it, show a small preview in a
        notebook when ``show`` (a fixed-size PNG, so stored outputs stay byte-stable), close it.

        Returns nothing, so a notebook cell ending in ``index.save(...)`` shows no file paths.
        """
        save_figure(fig, name, directory)
        if show:
            preview(fig)
        self.rows = [r for r in self.rows if r["figure"] != name]
        self.rows.append({
            "figure": name, "finding": finding or finding_of(fig), "paper_figure": paper_figure,
            "notebook": self.notebook.name, "cell_id": cell_of(self.notebook, f'"{name}"'),
            "tables": ";".join(tables), "function": function,
        })
        self._write_registry()
        plt.close(fig)

    def add(self, name: str, finding: str, *, tables: list[str], paper_figure: str = "new",
            function: str = "") -> None:
        """Register a figure saved by other code (e.g. the word clouds)."""
        self.rows = [r for r in self.rows if r["figure"] != name]
        self.rows.append({
            "figure": name, "finding": finding, "paper_figure": paper_figure,
            "notebook": self.notebook.name, "cell_id": cell_of(self.notebook, f'"{name}"'),
            "tables": ";".join(tables), "function": function,
        })
        self._write_registry()

    def _write_registry(self) -> None:
        """Replace this notebook's rows in the registry (other notebooks' rows are kept)."""
        if self.registry is None:
            return
        others = [r for r in read_registry(self.registry)
                  if r["notebook"] != self.notebook.name]
        frame = pd.DataFrame(others + self.rows, columns=INDEX_COLUMNS)
        frame = frame.sort_values("notebook", kind="stable")
        self.registry.parent.mkdir(parents=True, exist_ok=True)
        frame.to_csv(self.registry, index=False, lineterminator="\n")

    def add_other_figures(self, figures_dir: Path, notebooks_dir: Path = NOTEBOOKS_DIR,
                          registry: Path | None = None) -> None:
        """Register figures other notebooks saved into the same folder (e.g. notebook 03's
        fitted-against-observed plot), so the index lists every figure in the folder.

        A figure listed in ``registry`` (``figure_registry.csv``, written by the notebook that
        saved it) keeps its finding, cell, tables and function; any other figure gets the
        notebook and cell that name it."""
        known = {r["figure"] for r in self.rows}
        registered = {r["figure"]: r for r in read_registry(registry)
                      if r["notebook"] != self.notebook.name}
        notebooks = sorted(notebooks_dir.glob("[0-9][0-9]_*.ipynb"))
        for png in sorted(figures_dir.glob("*.png")):
            if png.stem in known:
                continue
            if png.stem in registered:
                self.rows.append(dict(registered[png.stem]))
                continue
            where = [(nb, cell_of(nb, png.stem)) for nb in notebooks if nb != self.notebook]
            nb, cell = next(((nb, c) for nb, c in where if c), (None, ""))
            self.rows.append({
                "figure": png.stem, "paper_figure": "new",
                "finding": f"made by {nb.stem if nb else 'an unknown notebook'}; see that cell",
                "notebook": nb.name if nb else "", "cell_id": cell, "tables": "",
                "function": ""})

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows, columns=INDEX_COLUMNS)

    def markdown(self, figures_dir: Path, tables_dir: Path) -> str:
        """The index as Markdown, with links relative to ``figures_dir``."""
        return "\n".join(self._header() + self._table(figures_dir, tables_dir, figures_dir)) + "\n"

    def _header(self) -> list[str]:
        return [
            "# Figure index",
            "",
            "Generated by `notebooks/05_figures.ipynb` (`FigureIndex.write`); do not edit by "
            "hand: re-run the notebooks (`make all` or `civitai-study run`) to refresh it.",
            "",
            "Content warning: the figures describe sexually explicit content and gendered "
            "harm; they show aggregates only and never an image.",
            "",
            "Each figure is saved as PNG (300 dpi) and PDF. *Cell* is the notebook cell "
            "(nbformat cell id) that made the figure; *table* is the CSV it plots.",
            "",
            *([MAIN_DEFINITION_REASON, ""]
              if any("above PG (main)" in row["finding"] for row in self.rows) else []),
        ]

    def _table(self, figures_dir: Path, tables_dir: Path, base: Path) -> list[str]:
        """The index rows, with every link relative to ``base``."""
        def rel(path: Path) -> str:
            return Path(os.path.relpath(path, base)).as_posix()

        lines = ["| figure | finding (the figure's title) | paper figure | notebook · cell "
                 "| table |", "|---|---|---|---|---|"]
        for row in self.rows:
            name = row["figure"]
            tables = ", ".join(f"[{t}]({rel(tables_dir / t)})" for t in row["tables"].split(";")
                               if t)
            finding = row["finding"].replace("|", "\\|")
            nb_link = rel(self._notebook_copy(figures_dir, row["notebook"]))
            png, pdf = rel(figures_dir / f"{name}.png"), rel(figures_dir / f"{name}.pdf")
            lines.append(
                f"| [{name}]({png}) ([pdf]({pdf})) | {finding} | {row['paper_figure']} "
                f"| [{row['notebook']}]({nb_link}) · `{row['cell_id']}` | {tables} |")
        return lines

    def embed_in_readme(self, readme: Path, figures_dir: Path, tables_dir: Path) -> bool:
        """Replace the block between the README's figure-index markers with this index.

        The README's figure index is the generated one, never a hand-kept copy. Returns False
        (and changes nothing) when the README has no markers.
        """
        text = readme.read_text(encoding="utf-8")
        start, end = README_MARKERS
        if start not in text or end not in text:
            return False
        head, rest = text.split(start, 1)
        _, tail = rest.split(end, 1)
        block = ["Generated from `figures/README.md` by notebook 05; every row links the figure, "
                 "the notebook cell that made it and the table it plots.", ""]
        if any("above PG (main)" in row["finding"] for row in self.rows):
            block += [MAIN_DEFINITION_REASON, ""]
        block += self._table(figures_dir, tables_dir, readme.parent)
        new = head + start + "\n" + "\n".join(block) + "\n" + end + tail
        if new != text:
            readme.write_text(new, encoding="utf-8")
        return True

    def _notebook_copy(self, figures_dir: Path, name: str) -> Path:
        """Where an executed notebook lies next to these figures (``OUT/notebooks`` with
        ``--out``; otherwise the repository's ``notebooks/``)."""
        name = name or self.notebook.name
        if figures_dir.parent != NOTEBOOKS_DIR.parent:
            return figures_dir.parent / "notebooks" / name
        return self.notebook.parent / name

    def write(self, ctx) -> Path:
        """Write ``README.md`` into the figures folder and ``figure_index.csv`` as a table."""
        path = ctx.figures_dir / "README.md"
        path.write_text(self.markdown(ctx.figures_dir, ctx.tables_dir), encoding="utf-8")
        ctx.write_table(self.frame(), "figure_index.csv")
        if ctx.figures_dir.resolve() == FIGURES_DIR.resolve():  # in-place run: refresh README
            self.embed_in_readme(ROOT / "README.md", ctx.figures_dir, ctx.tables_dir)
        return path
