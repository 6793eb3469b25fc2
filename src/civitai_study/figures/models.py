"""Models: new models by type and base model, and models that depict real people."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .style import (
    GROUP_COLORS,
    OKABE_ITO,
    attach_data,
    comparison_window,
    finish,
    month_axis,
    new_figure,
    pct,
)
from .volume import _require

#: Model types shown on their own; the rest are pooled as "other" (adapters first).
MAIN_TYPES = ("LORA", "LoCon", "Checkpoint", "TextualInversion")


def _stack(ax, wide: pd.DataFrame, colors: list[str]) -> None:
    x = np.arange(len(wide))
    bottom = np.zeros(len(wide))
    for column, color in zip(wide.columns, colors, strict=False):
        values = wide[column].to_numpy(dtype=float)
        ax.bar(x, values, bottom=bottom, width=0.85, color=color, label=str(column),
               edgecolor="none")
        bottom += values


def type_matrix(frame: pd.DataFrame, main_types: tuple[str, ...] = MAIN_TYPES) -> pd.DataFrame:
    """Month × model type counts, minor types pooled as ``other``."""
    _require(frame, ["month", "type", "n_models"], "models_by_type")
    pooled = frame.assign(type=frame["type"].where(frame["type"].isin(main_types), "other"))
    wide = pooled.pivot_table(index="month", columns="type", values="n_models", aggfunc="sum",
                              fill_value=0).sort_index()
    order = [t for t in (*main_types, "other") if t in wide.columns]
    return wide[order].astype(int)


def models_by_type(frame: pd.DataFrame, *, source_label: str, synthetic: bool):
    """New models per month stacked by type: the rise of LoRA adapters.

    ``frame``: ``month, type, n_models`` (table ``models_by_month_type.csv``).
    """
    wide = type_matrix(frame)
    months = list(wide.index)
    adapters = wide[[c for c in ("LORA", "LoCon") if c in wide.columns]].sum(axis=1)
    w = comparison_window(len(wide), 12)
    first, last = wide.iloc[:w].sum().sum(), wide.iloc[-w:].sum().sum()
    share_first = adapters.iloc[:w].sum() / max(first, 1)
    share_last = adapters.iloc[-w:].sum() / max(last, 1)
    fig, ax = new_figure()
    _stack(ax, wide, [OKABE_ITO[i] for i in (6, 5, 4, 1, 7)])
    month_axis(ax, months)
    ax.set_xlabel("month of the model's first version (UTC)")
    ax.set_ylabel("new models per month (count)")
    ax.legend(title="model type", loc="upper left", bbox_to_anchor=(1.0, 1.0), reverse=True)
    title = (f"LoRA/LoCon adapters went from {pct(share_first)} of new models in the first {w} "
             f"months to {pct(share_last)} in the last {w}")
    finish(fig, title, source_label, synthetic)
    return attach_data(fig, wide, title)


def models_by_base_model(frame: pd.DataFrame, *, unit: str = "model_versions", top: int = 6,
                         until: str | None = None, source_label: str, synthetic: bool):
    """Shares of new model versions per month by base model (SD 1.5 → SDXL → Pony → ...).

    ``frame``: ``unit, month, base_model, n`` (table ``base_models_by_month.csv``, notebook 02);
    ``unit`` selects model versions (default) or images; ``until`` (YYYY-MM, e.g. the snapshot
    month) drops later months, which only a faulty date can produce.
    """
    _require(frame, ["unit", "month", "base_model", "n"], "models_by_base_model")
    frame = frame[frame["unit"] == unit].rename(columns={"n": "n_versions"})
    if until:
        frame = frame[frame["month"].astype(str) <= until]
    if frame.empty:
        raise ValueError(f"models_by_base_model: no rows for unit {unit!r}")
    totals = frame.groupby("base_model")["n_versions"].sum().sort_values(ascending=False,
                                                                          kind="stable")
    keep = [b for b in totals.index[:top] if b not in ("Other", "unknown")]
    pooled = frame.assign(base_model=frame["base_model"].where(frame["base_model"].isin(keep),
                                                               "other"))
    wide = pooled.pivot_table(index="month", columns="base_model", values="n_versions",
                              aggfunc="sum", fill_value=0).sort_index()
    wide = wide[[*keep, "other"] if "other" in wide.columns else keep]
    shares = wide.div(wide.sum(axis=1), axis=0)
    months = list(shares.index)
    w = comparison_window(len(shares), 3)
    lead = shares.iloc[-w:].mean().idxmax()
    lead_share = shares.iloc[-w:].mean().max()
    start_lead = shares.iloc[:w].mean().idxmax()
    fig, ax = new_figure()
    _stack(ax, shares, [OKABE_ITO[i] for i in (4, 0, 6, 2, 5, 1, 3)][: len(keep)] + ["#BBBBBB"])
    month_axis(ax, months)
    ax.set_ylim(0, 1)
    ax.yaxis.set_major_formatter(lambda v, _: f"{100 * v:.0f}")
    noun = "model versions" if unit == "model_versions" else unit
    ax.set_xlabel("upload month (UTC)")
    ax.set_ylabel(f"share of new {noun} (%)")
    ax.legend(title="base model", loc="upper left", bbox_to_anchor=(1.0, 1.0), reverse=True)
    if lead == start_lead:
        title = (f"{lead} led at the start and still leads, with {pct(lead_share)} of new {noun}"
                 f" in the last {w} months")
    else:
        title = (f"Base models turn over: {start_lead} led at the start, {lead} holds "
                 f"{pct(lead_share)} of new {noun} in the last {w} months")
    finish(fig, title, source_label, synthetic)
    return attach_data(fig, shares, title)


def real_person_models(monthly: pd.DataFrame, by_group: pd.DataFrame, gender: pd.DataFrame, *,
                       source_label: str, synthetic: bool):
    """Real-person (``poi``) models: share over time, NSFW share against other models, and the
    gendered-target text proxy (models tagged with female against male terms).

    ``monthly``: ``month, n_models, n_poi`` (``models_by_month.csv``); ``by_group``: ``signal,
    real_person, n_models, n_nsfw`` (``poi_by_group.csv``); ``gender``: ``group, n_models,
    n_female_terms, n_male_terms`` (``gender_proxy.csv``), all from notebook 02.
    """
    _require(monthly, ["month", "n_models", "n_poi"], "real_person_models")
    _require(by_group, ["signal", "real_person", "n_models", "n_nsfw"], "real_person_models")
    _require(gender, ["group", "n_models", "n_female_terms", "n_male_terms"],
             "real_person_models")
    monthly = monthly.sort_values("month").reset_index(drop=True)
    share = monthly["n_poi"] / monthly["n_models"].where(monthly["n_models"] > 0)
    flag = by_group[by_group["signal"] == "poi"].copy()
    flag["group"] = np.where(flag["real_person"].astype(str).str.lower() == "true",
                             "real person", "other")
    flag = flag.set_index("group").reindex(["real person", "other"])
    nsfw_share = (flag["n_nsfw"] / flag["n_models"]).rename("nsfw_share")
    gender_groups = {"real person": "poi flag", "other": "not real person (neither signal)"}
    g = gender.set_index("group").reindex(list(gender_groups.values()))
    g.index = list(gender_groups)
    proxy = g[["n_female_terms", "n_male_terms"]].div(g["n_models"], axis=0)
    data = {
        "share_by_month": pd.DataFrame({"month": monthly["month"], "n_models": monthly["n_models"],
                                        "poi_share": share}),
        "nsfw_share": nsfw_share,
        "gender_proxy": proxy,
    }
    fig, axes = new_figure(1, 3, figsize=(9.5, 3.8), gridspec_kw={"width_ratios": [2.2, 1, 1.3]})
    months = list(monthly["month"])
    ax = axes[0]
    ax.plot(np.arange(len(months)), share, color=GROUP_COLORS["real person"], marker="o", ms=2)
    month_axis(ax, months, every=8)
    ax.set_ylim(0, max(0.05, float(np.nanmax(share)) * 1.15))
    ax.yaxis.set_major_formatter(lambda v, _: f"{100 * v:.0f}")
    ax.set_xlabel("month of first version (UTC)")
    ax.set_ylabel("real-person share of new models (%)")
    ax.set_title("poi flag over time", fontsize=8.5)
    ax = axes[1]
    ax.bar([0, 1], nsfw_share.to_numpy(), color=[GROUP_COLORS["real person"],
                                                 GROUP_COLORS["other"]])
    ax.set_xticks([0, 1], ["real person", "other"])
    ax.set_ylim(0, 1)
    ax.yaxis.set_major_formatter(lambda v, _: f"{100 * v:.0f}")
    ax.set_ylabel("models flagged NSFW (%)")
    ax.set_title("NSFW flag", fontsize=8.5)
    ax = axes[2]
    width = 0.38
    for k, (col, label) in enumerate((("n_female_terms", "female terms"),
                                      ("n_male_terms", "male terms"))):
        ax.bar(np.arange(2) + (k - 0.5) * width, proxy[col].to_numpy(), width=width,
               color=OKABE_ITO[6] if k == 0 else OKABE_ITO[4], label=label)
    ax.set_xticks([0, 1], ["real person", "neither signal"])
    ax.set_ylim(0, 1)
    ax.yaxis.set_major_formatter(lambda v, _: f"{100 * v:.0f}")
    ax.set_ylabel("models with such tags (%)")
    ax.set_title("gendered-target proxy (tags)", fontsize=8.5)
    ax.legend(fontsize=7, loc="upper right")
    overall = flag.loc["real person", "n_models"] / flag["n_models"].sum()
    title = (f"{pct(overall)} of models depict real people; {pct(nsfw_share['real person'])} of "
             f"them are flagged NSFW against {pct(nsfw_share['other'])} of other models")
    finish(fig, title, source_label, synthetic)
    return attach_data(fig, data, title)
