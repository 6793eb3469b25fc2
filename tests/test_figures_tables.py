"""Tables behind the figures computed from a snapshot, and the generated figure index."""

from __future__ import annotations

import nbformat
import pandas as pd
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from civitai_study.figures import tables
from civitai_study.figures.index import FigureIndex
from civitai_study.figures.volume import uploads_by_nsfw_level
from civitai_study.notebook import setup


@pytest.fixture(scope="module")
def ctx(small_sample, tmp_path_factory):
    return setup(str(small_sample), str(tmp_path_factory.mktemp("out")), quiet=True)


def test_missing_tables_are_computed_written_and_equal_direct_counts(ctx):
    con = ctx.snapshot.connect()
    by_level = tables.figure_table(ctx, "nsfw_share_by_level_month.csv", con)
    assert (ctx.tables_dir / "nsfw_share_by_level_month.csv").is_file()
    direct = con.execute("SELECT count(*) FROM images WHERE created_at IS NOT NULL").fetchone()[0]
    assert by_level["n_images"].sum() == direct
    promo = tables.figure_table(ctx, "promo_terms_by_month.csv", con)
    n_master = con.execute("""SELECT count(*) FROM images WHERE prompt IS NOT NULL AND
        regexp_matches(lower(prompt), '(^|[^a-z0-9_])masterpiece($|[^a-z0-9_])')""").fetchone()[0]
    assert promo.loc[promo["term"] == "masterpiece", "n_images"].sum() == n_master
    cooc = tables.figure_table(ctx, "coding_cooccurrence.csv", con)
    diag = cooc[cooc["category_a"] == cooc["category_b"]].set_index("category_a")["n_documents"]
    assert (cooc["n_documents"] <= cooc["category_a"].map(diag)).all()
    sample = tables.blurhash_sample(con, per_level=3)
    assert sample.groupby("nsfw_level").size().max() <= 3
    assert list(sample.columns) == ["nsfw_level", "blurhash", "width", "height"]
    assert tables.blurhash_sample(con, per_level=3).equals(sample)  # deterministic
    con.close()


def test_existing_tables_are_read_not_recomputed(ctx):
    marker = pd.DataFrame({"month": ["2024-01"], "nsfw_level": [1], "n_images": [7]})
    marker.to_csv(ctx.tables_dir / "marker_level.csv", index=False)
    assert tables.figure_table(ctx, "marker_level.csv")["n_images"].tolist() == [7]
    with pytest.raises(FileNotFoundError, match="run the earlier notebooks"):
        tables.figure_table(ctx, "not_a_table.csv")


def test_word_regex_respects_word_boundaries():
    import duckdb

    con = duckdb.connect()
    pattern = tables._word_regex("score_9")
    hits = [con.execute(f"SELECT regexp_matches(?, '{pattern}')", [p]).fetchone()[0]
            for p in ("score_9, score_8_up", "score_99", "xscore_9", "score 9")]
    assert hits == [True, False, False, True]


def test_events_default_and_file(tmp_path):
    assert {"date", "event"} <= set(tables.events(tmp_path / "none.csv").columns)
    path = tmp_path / "events.csv"
    path.write_text("date,event,source\n2024-01,thing,src\n")
    assert tables.events(path).to_dict("records") == [{"date": "2024-01", "event": "thing"}]


def test_figure_index_links_cells_and_tables(ctx, tmp_path):
    nb = new_notebook(cells=[new_code_cell("x = 1"), new_code_cell('index.save(fig, "figA", d)')])
    nb.cells[0]["id"], nb.cells[1]["id"] = "first", "make-a"
    path = tmp_path / "05_figures.ipynb"
    nbformat.write(nb, path)
    frame = pd.DataFrame({"month": ["2024-01", "2024-02"], "nsfw_level": [1, 8],
                          "n_images": [3, 4]})
    index = FigureIndex(notebook=path)
    fig = uploads_by_nsfw_level(frame, source_label="t", synthetic=False)
    index.save(fig, "figA", ctx.figures_dir, tables=["nsfw_share_by_level_month.csv"],
               paper_figure="3")
    index.add("figB", "a finding | with a bar", tables=["coded_terms.csv"])
    readme = index.write(ctx)
    text = readme.read_text()
    assert "| [figA](figA.png) ([pdf](figA.pdf)) |" in text
    assert "`make-a`" in text and "../tables/nsfw_share_by_level_month.csv" in text
    assert "a finding \\| with a bar" in text
    assert "/tmp" not in text and str(tmp_path) not in text
    stored = pd.read_csv(ctx.tables_dir / "figure_index.csv")
    assert stored["cell_id"].fillna("").tolist() == ["make-a", ""]
    assert (ctx.figures_dir / "figA.png").is_file()


def test_figure_index_is_embedded_in_readme(tmp_path):
    from civitai_study.figures.index import README_MARKERS, FigureIndex

    figures, tables = tmp_path / "figures", tmp_path / "data" / "derived"
    readme = tmp_path / "README.md"
    readme.write_text(f"# Title\n\n{README_MARKERS[0]}\nold\n{README_MARKERS[1]}\n\nrest\n")
    index = FigureIndex()
    index.add("fig_x", "X rose", tables=["x.csv"])
    assert index.embed_in_readme(readme, figures, tables)
    text = readme.read_text()
    assert "old" not in text and text.endswith("\nrest\n")
    assert "[fig_x](figures/fig_x.png)" in text and "(data/derived/x.csv)" in text
    (tmp_path / "plain.md").write_text("no markers\n")
    assert not index.embed_in_readme(tmp_path / "plain.md", figures, tables)


def test_registry_carries_other_notebooks_findings_into_the_index(tmp_path):
    """Notebooks 03 and 04 register their figures; notebook 05's index lists them with their
    finding, cell, tables and function, and ignores registered figures whose file is gone."""
    from civitai_study.figures.index import REGISTRY_NAME, read_registry

    figures, derived = tmp_path / "figures", tmp_path / "derived"
    registry = derived / REGISTRY_NAME
    nb03, nb04, nb05 = (tmp_path / f"{n}.ipynb" for n in ("03_trend", "04_coding", "05_figures"))
    for path, cell_id, source in ((nb03, "figure", 'figures.save(fig, "fig03", d)'),
                                  (nb04, "clouds", 'figures.add("clouds", f)'),
                                  (nb05, "x", "pass")):
        nb = new_notebook(cells=[new_code_cell(source)])
        nb.cells[0]["id"] = cell_id
        nbformat.write(nb, path)
    frame = pd.DataFrame({"month": ["2024-01"], "nsfw_level": [1], "n_images": [3]})
    fig = uploads_by_nsfw_level(frame, source_label="t", synthetic=True)
    first = FigureIndex(notebook=nb03, registry=registry)
    first.save(fig, "fig03", figures, tables=["fitted.csv"], function="trends.f")
    second = FigureIndex(notebook=nb04, registry=registry)
    second.add("clouds", "Clouds | of terms", tables=["terms.csv"], function="w.c")
    second.add("gone", "no file for this one", tables=[])
    assert [r["figure"] for r in read_registry(registry)] == ["fig03", "clouds", "gone"]
    # re-running notebook 04 replaces its own rows and keeps notebook 03's
    again = FigureIndex(notebook=nb04, registry=registry)
    again.add("clouds", "Clouds | of terms", tables=["terms.csv"], function="w.c")
    rows = read_registry(registry)
    assert [r["figure"] for r in rows] == ["fig03", "clouds"]
    assert rows[0] == {"figure": "fig03", "finding": finding_of_fig(fig), "paper_figure": "new",
                       "notebook": nb03.name, "cell_id": "figure", "tables": "fitted.csv",
                       "function": "trends.f"}
    (figures / "clouds.png").write_bytes(b"png")
    (figures / "stray.png").write_bytes(b"png")
    index = FigureIndex(notebook=nb05)
    index.add_other_figures(figures, notebooks_dir=tmp_path, registry=registry)
    by_name = {r["figure"]: r for r in index.rows}
    assert set(by_name) == {"fig03", "clouds", "stray"}
    assert by_name["clouds"]["finding"] == "Clouds | of terms"
    assert by_name["clouds"]["cell_id"] == "clouds" and by_name["clouds"]["tables"] == "terms.csv"
    assert by_name["stray"]["finding"].startswith("made by an unknown notebook")
    text = index.markdown(figures, derived)
    assert "Clouds \\| of terms" in text and "[fitted.csv](../derived/fitted.csv)" in text
    before = registry.read_bytes()
    FigureIndex(notebook=nb04, registry=registry).add("clouds", "Clouds | of terms",
                                                      tables=["terms.csv"], function="w.c")
    assert registry.read_bytes() == before  # byte-stable rewrite


def finding_of_fig(fig) -> str:
    from civitai_study.figures.style import finding_of

    return finding_of(fig)


def test_registry_with_wrong_columns_names_the_fix(tmp_path):
    from civitai_study.figures.index import read_registry

    path = tmp_path / "figure_registry.csv"
    path.write_text("figure,finding\nx,y\n")
    with pytest.raises(ValueError, match="re-run the notebooks"):
        read_registry(path)
    assert read_registry(tmp_path / "missing.csv") == [] and read_registry(None) == []


def test_headline_index_explains_the_main_definition(tmp_path):
    """Where the headline odds ratio appears (README index, report landing page), the reason the
    main NSFW definition is main appears once beside it."""
    from civitai_study import report
    from civitai_study.figures.index import README_MARKERS, FigureIndex
    from civitai_study.nsfw import MAIN_DEFINITION_REASON

    figures, tables = tmp_path / "figures", tmp_path / "data" / "derived"
    readme = tmp_path / "README.md"
    readme.write_text(f"{README_MARKERS[0]}\n{README_MARKERS[1]}\n")
    index = FigureIndex()
    index.add("fig_nsfw_share_trend", "The NSFW share rises under both definitions: odds of an "
              "image above PG (main) ×4.12 per year; R or above ×2.68 per year", tables=["x.csv"])
    index.embed_in_readme(readme, figures, tables)
    assert readme.read_text().count(MAIN_DEFINITION_REASON) == 1
    assert MAIN_DEFINITION_REASON in index.markdown(figures, tables)
    rows = index.frame().fillna("")
    rows["function"] = "volume.nsfw_share_trend"
    page = report.findings_html(rows)
    assert "R or above ×2.68" in page and "CivitAI&#x27;s own SFW filter" in page
