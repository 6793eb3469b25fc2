"""One visual style for every figure, and byte-stable saving.

Colour-blind-safe palette (Okabe & Ito 2008); NSFW levels always in the same colours; a footer
with data source and snapshot date, marked SYNTHETIC when it is; PNG (300 dpi) and PDF saved
with pinned metadata so re-running leaves the files byte-identical.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

OKABE_ITO = ["#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7",
             "#000000"]
#: NSFW levels, by CivitAI bit value, always drawn in these colours (light = safe, dark = XXX).
NSFW_LEVEL_COLORS = {0: "#BBBBBB", 1: "#56B4E9", 2: "#009E73", 4: "#F0E442", 8: "#E69F00",
                     16: "#D55E00", 32: "#000000"}
PDF_METADATA = {"Creator": "civitai-study", "Producer": "civitai-study", "CreationDate": None,
                "ModDate": None}
PNG_METADATA = {"Software": "civitai-study"}


def apply_style() -> None:
    """Set matplotlib defaults shared by all figures (call once per notebook)."""
    plt.rcParams.update({
        "figure.figsize": (7.5, 4.2),
        "figure.dpi": 100,
        "savefig.dpi": 300,
        "font.family": "DejaVu Sans",
        "font.size": 9,
        "axes.titlesize": 10,
        "axes.titleweight": "bold",
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.prop_cycle": matplotlib.cycler(color=OKABE_ITO),
        "legend.frameon": False,
        "svg.hashsalt": "civitai-study",
        "pdf.fonttype": 42,
    })


def add_footer(fig: plt.Figure, source_label: str, synthetic: bool) -> None:
    """Footer naming the data; synthetic data is said so in capitals."""
    text = source_label
    if synthetic and "SYNTHETIC" not in text:
        text = "SYNTHETIC data: " + text
    fig.text(0.01, 0.005, text, fontsize=6.5, color="#444444", ha="left", va="bottom")


def save_figure(fig: plt.Figure, name: str, directory: Path) -> list[Path]:
    """Save ``fig`` as ``name.png`` (300 dpi) and ``name.pdf`` with pinned metadata."""
    directory.mkdir(parents=True, exist_ok=True)
    png, pdf = directory / f"{name}.png", directory / f"{name}.pdf"
    fig.savefig(png, dpi=300, metadata=PNG_METADATA, bbox_inches="tight")
    fig.savefig(pdf, metadata=PDF_METADATA, bbox_inches="tight")
    return [png, pdf]


# ---- shared helpers for the figure functions -------------------------------------------------

#: NSFW levels in stacking order (safe at the bottom), with their display labels.
LEVEL_ORDER: tuple[int, ...] = (0, 1, 2, 4, 8, 16, 32)
#: Colours for the two NSFW definitions and for "real person" against "other" comparisons.
DEFINITION_COLORS = {"above_pg": "#D55E00", "r_plus": "#0072B2"}
GROUP_COLORS = {"real person": "#CC79A7", "other": "#56B4E9"}
_DATA_ATTR = "_civitai_data"


def level_color(level: int) -> str:
    """The one colour of an NSFW level everywhere (grey for anything unknown)."""
    return NSFW_LEVEL_COLORS.get(int(level), "#BBBBBB")


def attach_data(fig: plt.Figure, data, finding: str) -> plt.Figure:
    """Keep the data a figure plots (and its one-line finding) on the figure object.

    Tests check these numbers instead of pixels, and the figure index reads the finding, so a
    title and its index entry can never disagree.
    """
    setattr(fig, _DATA_ATTR, {"data": data, "finding": finding})
    return fig


def plotted_data(fig: plt.Figure):
    """The tidy data behind a figure made by a ``civitai_study.figures`` function."""
    try:
        return getattr(fig, _DATA_ATTR)["data"]
    except AttributeError:
        raise ValueError("this figure was not made by a civitai_study.figures function") from None


def finding_of(fig: plt.Figure) -> str:
    """The one-line finding a figure's title states."""
    return getattr(fig, _DATA_ATTR, {}).get("finding", "")


def new_figure(nrows: int = 1, ncols: int = 1, figsize: tuple[float, float] | None = None,
               **kwargs):
    """A figure with the shared style applied and room left for the footer."""
    apply_style()
    fig, axes = plt.subplots(nrows, ncols, figsize=figsize, **kwargs)
    return fig, axes


def finish(fig: plt.Figure, title: str, source_label: str, synthetic: bool) -> None:
    """Title (the finding), footer (source, snapshot date, SYNTHETIC), and a tidy layout."""
    fig.suptitle(title, fontsize=10, fontweight="bold", x=0.01, ha="left")
    fig.tight_layout(rect=(0, 0.04, 1, 0.97))
    add_footer(fig, source_label, synthetic)


def wrapped(title: str, width: int = 80) -> str:
    """A long finding broken into lines for the figure's title (the index keeps one line)."""
    return textwrap.fill(title, width=width, break_long_words=False)


def month_axis(ax, months: list[str], every: int = 6) -> None:
    """Label a categorical month axis (YYYY-MM) every ``every`` months, rotated for room."""
    ticks = [i for i, m in enumerate(months) if i % every == 0]
    ax.set_xticks(ticks)
    ax.set_xticklabels([months[i] for i in ticks], rotation=45, ha="right")
    ax.set_xlim(-0.6, len(months) - 0.4)


def comparison_window(n_periods: int, preferred: int) -> int:
    """Months in each of the first and last windows a title compares: ``preferred``, shrunk so
    the two windows never overlap on a short snapshot (a 9-month crawl compares 4 and 4, not the
    whole data with itself). At least 1."""
    return max(1, min(preferred, n_periods // 2))


def pct(x: float) -> str:
    """A share as a rounded percentage for titles."""
    return f"{100 * x:.0f}%"
