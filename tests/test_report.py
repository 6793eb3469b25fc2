"""The report builds from the stored notebooks and every page loads cleanly in a real browser.

Builds into a temporary folder from the repository's executed notebooks, figures and tables (the
report never executes a notebook), then opens every page in headless Chromium through
Playwright: no console errors, no page errors, every figure image decoded (naturalWidth > 0).
Skips with a reason when Chromium or Playwright is missing; ``.ci/run`` installs Debian's
``chromium`` so CI always runs it.
"""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

import nbformat
import pytest
import yaml

from civitai_study.paths import DERIVED_DIR, FIGURES_DIR, NOTEBOOKS_DIR, ROOT
from civitai_study.report import MARKERS, cell_anchor, cell_link, stage

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").is_file()
                                        else None)
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
#: The landing-page screenshot lands in the report's build folder (gitignored), for a human look.
SCREENSHOT = ROOT / "_build" / "landing.png"


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    from civitai_study.report import build_report

    if not list(NOTEBOOKS_DIR.glob("[0-9][0-9]_*.ipynb")):
        pytest.skip("no notebooks to build a report from")
    start = time.perf_counter()
    index = build_report(tmp_path_factory.mktemp("report"))
    print(f"report built in {time.perf_counter() - start:.1f} s")
    return index.parent


def test_staging_links_every_figure_to_its_cell(tmp_path):
    notebooks = stage(tmp_path / "src")
    assert notebooks, "the repository's notebooks are staged"
    landing = (tmp_path / "src" / "index.md").read_text()
    assert "Content warning" in landing and "How to reproduce" in landing
    assert not any(marker in landing for marker in MARKERS), "a placeholder was left"
    toc = yaml.safe_load((tmp_path / "src" / "_toc.yml").read_text())
    for entry in toc["chapters"]:
        assert (tmp_path / "src" / (entry["file"] + ".ipynb")).is_file() or \
            (tmp_path / "src" / (entry["file"] + ".md")).is_file()
    for png in FIGURES_DIR.glob("fig*.png"):
        assert f"figures/{png.name}" in landing, f"{png.name} missing from the gallery"
    staged = (tmp_path / "src" / "notebooks" / "05_figures.ipynb")
    if staged.is_file():
        sources = [c.source for c in nbformat.read(staged, as_version=4).cells]
        assert f'<a id="{cell_anchor("05_figures.ipynb", "setup")}"></a>' in sources


def test_cell_links_are_stable():
    assert cell_anchor("notebooks/05_figures.ipynb", "fig-trend") == "cell-05-fig-trend"
    assert cell_link("05_figures.ipynb", "a b") == "notebooks/05_figures.html#cell-05-a-b"


def check_page(browser, path: Path, rel: str) -> list[str]:
    """Open one page; return its console errors, page errors and images that did not load."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(path.as_uri(), wait_until="load")
    broken = page.evaluate("""async () => {
        const imgs = Array.from(document.images);
        for (const i of imgs) { i.loading = 'eager'; }
        await Promise.all(imgs.map(i => i.complete ? null :
            new Promise(r => { i.onload = r; i.onerror = r; })));
        return imgs.filter(i => i.naturalWidth === 0).map(i => i.src); }""")
    problems = [f"{rel}: console error: {e}" for e in errors]
    problems += [f"{rel}: image did not load: {s}" for s in sorted(set(broken))]
    if rel == "index.html":
        shown = page.evaluate("document.querySelectorAll('.gallery img').length")
        if shown != len(list(FIGURES_DIR.glob("*.png"))) and FIGURES_DIR.is_dir():
            problems.append(f"index.html: gallery shows {shown} figures")
        page.evaluate("window.scrollTo(0, 0)")
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOT), full_page=False)
    page.close()
    return problems


def test_report_pages_load_in_headless_chromium(built):
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (apt-get install chromium); .ci/run installs it")
    playwright = pytest.importorskip("playwright.sync_api")
    pages = sorted(p for p in built.rglob("*.html")
                   if p.name != "genindex.html" and "_static" not in p.parts)
    assert (built / "index.html") in pages
    problems: list[str] = []
    with playwright.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for path in pages:
                rel = path.relative_to(built).as_posix()
                problems += check_page(browser, path, rel)
        finally:
            browser.close()
    assert not problems, "\n".join(problems)


def test_report_sources_are_in_report_folder():
    for name in ("_config.yml", "_toc.yml", "index.md"):
        assert (ROOT / "report" / name).is_file()
    config = yaml.safe_load((ROOT / "report" / "_config.yml").read_text())
    assert config["execute"]["execute_notebooks"] == "off"
    assert DERIVED_DIR.name == "derived"


def test_landing_labels_synthetic_findings_dedupes_and_links(tmp_path):
    """Issue 13: synthetic findings are labelled as such, listed once, figures carry alt text,
    the paper is a link and the claims table cannot spill under the contents bar."""
    notebooks = stage(tmp_path / "src")
    landing = (tmp_path / "src" / "index.md").read_text()
    assert "https://arxiv.org/abs/2505.04600" in landing
    assert ".claims table{width:100%" in landing and "overflow-x:auto" in landing
    if not any(nb.name.startswith("01_") for nb in notebooks):
        return
    from civitai_study.report import is_synthetic_run

    if is_synthetic_run(notebooks):
        assert "What this run shows (synthetic)" in landing
        assert "What the study finds" not in landing
    items = re.findall(r"<li>(.*?) \(<a", landing.split('<ul class="findings">')[1]
                       .split("</ul>")[0]) if '<ul class="findings">' in landing else []
    assert len(items) == len(set(items)), "a finding is listed twice"
    for path in (tmp_path / "src" / "notebooks").glob("*.ipynb"):
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type == "code" and any(
                    str(m).startswith("image/") for o in cell.get("outputs", [])
                    for m in o.get("data", {})):
                assert cell.metadata["mystnb"]["image"]["alt"], f"{path.name} {cell.get('id')}"
