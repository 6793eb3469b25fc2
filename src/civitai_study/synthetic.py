"""Deterministic synthetic snapshot: the embedded default data of the compendium.

Why synthetic: the real data is sexually explicit, partly about real people, and under CivitAI's
terms, so the repository cannot ship it. The generator is calibrated to real aggregates kept in
``data/calibration/`` (every row names its source) and writes its *true* parameters into the
manifest, so any analysis run on the sample can be checked against the truth.

Everything is vectorised with one seeded ``numpy`` generator; the same seed gives byte-identical
Parquet files.
"""

from __future__ import annotations

import csv
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

from .paths import CALIBRATION_DIR, display_path
from .pseudonymise import SYNTHETIC_KEY, Pseudonymiser
from .snapshot import Snapshot, write_snapshot

WINDOW_START = "2022-11"
WINDOW_END = "2025-05"
SNAPSHOT_DATE = "2025-06-01"


@dataclass(frozen=True)
class SampleConfig:
    seed: int = 20250507
    n_images: int = 60_000
    n_models: int = 6_000
    #: logit(P(image level above PG)) = intercept + slope * years since 2022-11 + N(0, sd) per month
    nsfw_logit_intercept: float | None = None  # None: fitted to the calibration targets
    nsfw_logit_slope_per_year: float | None = None
    nsfw_month_noise_sd: float = 0.08
    #: logit(P(new model is a real person, poi)) = intercept + slope * years since 2022-11
    poi_logit_intercept: float = -2.0
    poi_logit_slope_per_year: float = 0.35
    #: per-image probability of leaving a level unrated (0)
    unrated_share: float = 0.004


@dataclass
class Calibration:
    phrases: list[str]
    phrase_sfw: np.ndarray
    phrase_nsfw: np.ndarray
    negatives: list[str]
    negative_w: np.ndarray
    tags: list[str]
    tag_other: np.ndarray
    tag_poi: np.ndarray
    tag_nsfw: np.ndarray
    types: list[str]
    type_w: np.ndarray
    type_poi: np.ndarray
    type_nsfw: np.ndarray
    targets: list[tuple[float, float, float, str]] = field(default_factory=list)


def _read(name: str, directory: Path) -> list[dict[str, str]]:
    path = directory / name
    if not path.is_file():
        raise FileNotFoundError(
            f"calibration file {display_path(path)} is missing; restore data/calibration/ from "
            "git or re-derive it with `civitai-study calibrate`"
        )
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def months_between(start: str, end: str) -> list[str]:
    y, m = map(int, start.split("-"))
    ey, em = map(int, end.split("-"))
    out = []
    while (y, m) <= (ey, em):
        out.append(f"{y:04d}-{m:02d}")
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def month_index(month: str, start: str = WINDOW_START) -> int:
    y, m = map(int, month.split("-"))
    sy, sm = map(int, start.split("-"))
    return (y - sy) * 12 + (m - sm)


def load_calibration(directory: Path = CALIBRATION_DIR) -> Calibration:
    phrases = _read("prompt_phrase_frequencies.csv", directory)
    negatives = _read("negative_phrase_frequencies.csv", directory)
    tags = _read("model_tag_frequencies.csv", directory)
    types = _read("model_type_mix.csv", directory)
    n_all = np.array([float(r["n_prompts"]) for r in phrases])
    n_nsfw = np.array([float(r["n_prompts_above_pg"]) for r in phrases])
    t_all = np.array([float(r["n_models"]) for r in tags])
    t_poi = np.array([float(r["n_poi"]) for r in tags])
    t_nsfw = np.array([float(r["n_nsfw"]) for r in tags])
    targets = []
    for row in _read("preview_nsfw_share_by_month.csv", directory):
        if row["month"] <= "2023-06":  # 2023-07 holds 4 days of crawl
            targets.append((month_index(row["month"]) / 12, float(row["share_above_pg"]),
                            float(row["n_images"]), row["source"]))
    for row in _read("civiverse_monthly.csv", directory):
        targets.append((month_index(row["month"]) / 12, float(row["nsfw_ratio"]),
                        float(row["n_images"]), row["source"]))
    return Calibration(
        phrases=[r["phrase"] for r in phrases],
        phrase_sfw=np.clip(n_all - n_nsfw, 0.5, None),
        phrase_nsfw=np.clip(n_nsfw, 0.5, None),
        negatives=[r["phrase"] for r in negatives],
        negative_w=np.array([float(r["n_prompts"]) for r in negatives]),
        tags=[r["tag"] for r in tags],
        tag_other=np.clip(t_all - t_poi - t_nsfw, 0.5, None),
        tag_poi=np.clip(t_poi, 0.5, None),
        tag_nsfw=np.clip(t_nsfw, 0.5, None),
        types=[r["type"] for r in types],
        type_w=np.array([float(r["share"]) for r in types]),
        type_poi=np.array([float(r["poi_share"]) for r in types]),
        type_nsfw=np.array([float(r["nsfw_share"]) for r in types]),
        targets=targets,
    )


def fit_nsfw_trend(cal: Calibration) -> tuple[float, float]:
    """Least-squares line through the logits of the calibration shares (one point per month)."""
    t = np.array([x[0] for x in cal.targets])
    y = np.log(np.array([x[1] for x in cal.targets]) / (1 - np.array([x[1] for x in cal.targets])))
    slope, intercept = np.polyfit(t, y, 1)
    return round(float(intercept), 4), round(float(slope), 4)


def _interp_log(months: list[str], anchors: list[dict[str, str]], column: str) -> np.ndarray:
    x = np.array([month_index(r["month"]) for r in anchors], dtype=float)
    y = np.log(np.array([float(r[column]) for r in anchors]))
    return np.exp(np.interp([month_index(m) for m in months], x, y))


def _allocate(total: int, weights: np.ndarray) -> np.ndarray:
    """Split ``total`` into integer counts proportional to ``weights`` (largest remainder)."""
    share = weights / weights.sum() * total
    counts = np.floor(share).astype(int)
    remainder = total - counts.sum()
    counts[np.argsort(-(share - counts), kind="stable")[:remainder]] += 1
    return counts


def _power_law_draw(rng: np.random.Generator, n_accounts: int, exponent: float, size: int
                    ) -> np.ndarray:
    """Account index per item, P(rank r) ∝ r^-exponent: a few accounts upload most items.

    Exponents 0.9 (images) and 1.0 (models) give Gini coefficients near 0.70, as measured on the
    creators of the real 2023 crawl (notebook 02 on the imported crawl).
    """
    weights = (1.0 + np.arange(n_accounts)) ** -exponent
    return rng.choice(n_accounts, size=size, p=weights / weights.sum())


def _expit(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _timestamps(rng: np.random.Generator, months: list[str], counts: np.ndarray) -> np.ndarray:
    """Uniform random times within each month, as microseconds since the epoch (UTC)."""
    starts = np.array([np.datetime64(m + "-01", "us") for m in months])
    ends = np.array([np.datetime64(m + "-01", "M") + 1 for m in months]).astype("datetime64[us]")
    span = (ends - starts).astype(np.int64)
    month_of = np.repeat(np.arange(len(months)), counts)
    offs = (rng.random(month_of.size) * span[month_of]).astype(np.int64)
    return starts.astype(np.int64)[month_of] + offs


_SYLLABLES = ["ka", "ri", "mo", "ne", "sa", "lu", "vi", "ta", "el", "or", "an", "is", "ve", "do"]


def fictional_names(rng: np.random.Generator, n: int) -> list[str]:
    """Invented two-part names standing in for real people (no real person is named)."""
    def word() -> str:
        k = int(rng.integers(2, 4))
        return "".join(_SYLLABLES[int(i)] for i in rng.integers(0, len(_SYLLABLES), k)).title()
    return [f"{word()} {word()}" for _ in range(n)]


def _base_model_weights(months: list[str], directory: Path) -> tuple[list[str], np.ndarray]:
    eras = _read("base_model_eras.csv", directory)
    names = [r["base_model"] for r in eras]
    w = np.zeros((len(months), len(eras)))
    for j, row in enumerate(eras):
        first = month_index(row["first_month"])
        peak = float(row["peak_weight"])
        for i, m in enumerate(months):
            age = month_index(m) - first
            if age < 0:
                continue
            if row["base_model"] in {"SD 1.5", "SD 1.4", "SD 2.1"}:
                # older families fade once SDXL (2023-08) arrives
                decay = max(0, month_index(m) - month_index("2023-08"))
                w[i, j] = peak * np.exp(-decay / 10)
            else:
                w[i, j] = peak * (1 - np.exp(-(age + 1) / 3))
    return names, w / w.sum(axis=1, keepdims=True)


def _draw_rows(rng: np.random.Generator, probs: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """For each row draw a category from ``probs[groups[row]]`` (inverse-CDF, vectorised)."""
    cdf = np.cumsum(probs, axis=1)
    u = rng.random(groups.size)
    return np.minimum((cdf[groups] < u[:, None]).sum(axis=1), probs.shape[1] - 1)


def _join_phrases(rng: np.random.Generator, vocab: list[str], weights: np.ndarray,
                  counts: np.ndarray) -> list[str]:
    draws = rng.choice(len(vocab), size=int(counts.sum()), p=weights / weights.sum())
    out, pos = [], 0
    for k in counts:
        picked = dict.fromkeys(draws[pos:pos + k])  # unique, order kept
        out.append(", ".join(vocab[i] for i in picked))
        pos += k
    return out


def synthetic_blurhashes(rng: np.random.Generator, count: int) -> list[str]:
    """Valid BlurHash strings of random smooth colour fields: blurred stand-ins, no image."""
    import blurhash

    ys, xs = np.mgrid[0:8, 0:6] / 7.0
    out = []
    for _ in range(count):
        a, b = rng.integers(20, 235, 3), rng.integers(20, 235, 3)
        field = a[None, None, :] * (1 - ys[..., None]) + b[None, None, :] * ys[..., None]
        field = field * (0.8 + 0.2 * xs[..., None])
        out.append(blurhash.encode(field.astype(int).tolist(), components_x=4, components_y=3))
    return out


PONY_PREFIX = "score_9, score_8_up, score_7_up, score_6_up"
QUALITY_PREFIX = "(masterpiece:1.2), best quality"


def generate_tables(config: SampleConfig, calibration_dir: Path = CALIBRATION_DIR
                    ) -> tuple[dict[str, pa.Table], dict]:
    """Build the four tables and the truth record for ``config``."""
    if config.n_images < 1000 or config.n_models < 100:
        raise ValueError("the sample needs at least 1,000 images and 100 models "
                         f"(got --images {config.n_images}, --models {config.n_models})")
    rng = np.random.default_rng(config.seed)
    cal = load_calibration(calibration_dir)
    months = months_between(WINDOW_START, WINDOW_END)
    t_years = np.array([month_index(m) / 12 for m in months])
    anchors = _read("volume_anchors.csv", calibration_dir)
    fit_b0, fit_b1 = fit_nsfw_trend(cal)
    b0 = fit_b0 if config.nsfw_logit_intercept is None else config.nsfw_logit_intercept
    b1 = fit_b1 if config.nsfw_logit_slope_per_year is None else config.nsfw_logit_slope_per_year
    bm_names, bm_w = _base_model_weights(months, calibration_dir)
    hasher = Pseudonymiser(SYNTHETIC_KEY)

    # ---- images -------------------------------------------------------------------------
    img_per_month = _allocate(config.n_images, _interp_log(months, anchors, "relative_images"))
    month_noise = rng.normal(0, config.nsfw_month_noise_sd, len(months))
    p_nsfw = _expit(b0 + b1 * t_years + month_noise)
    mi = np.repeat(np.arange(len(months)), img_per_month)
    n = mi.size
    above = rng.random(n) < p_nsfw[mi]
    # Among images above PG, the mix shifts from PG-13 towards X/XXX over time (assumption).
    frac = t_years[mi] / t_years[-1]
    p13 = 0.55 - 0.25 * frac
    pr = 0.12 + 0.03 * frac
    px = 0.28 + 0.07 * frac
    u = rng.random(n)
    nsfw_levels = np.select([u < p13, u < p13 + pr, u < p13 + pr + px], [2, 4, 8], 16)
    level = np.where(above, nsfw_levels, 1)
    level = np.where(rng.random(n) < config.unrated_share, 0, level).astype(np.int16)
    created = _timestamps(rng, months, img_per_month)
    base_idx = _draw_rows(rng, bm_w, mi)
    base_model = np.array(bm_names, dtype=object)[base_idx]
    is_pony = base_model == "Pony"
    # prompts: phrases drawn by NSFW status, with era-specific prefixes
    n_phr = rng.poisson(11, n) + 3
    prompts = np.empty(n, dtype=object)
    nsfw_mask = level >= 2
    for mask, weights in ((nsfw_mask, cal.phrase_nsfw), (~nsfw_mask, cal.phrase_sfw)):
        idx = np.flatnonzero(mask)
        prompts[idx] = _join_phrases(rng, cal.phrases, weights, n_phr[idx])
    quality = rng.random(n) < 0.35
    prompts = np.where(quality, QUALITY_PREFIX + ", " + prompts, prompts)
    pony_prefix = is_pony & (rng.random(n) < 0.85)
    rating = np.where(level >= 8, ", rating_explicit", np.where(level >= 2, ", rating_questionable",
                                                               ", rating_safe"))
    prompts = np.where(pony_prefix, PONY_PREFIX + ", source_anime" + rating + ", " + prompts,
                       prompts)
    person_names = fictional_names(rng, 60)
    photo_of = rng.random(n) < 0.04
    who = rng.integers(0, len(person_names), n)
    prompts = np.where(photo_of, np.char.add("photo of ", np.array(person_names, dtype=object)[who]
                                             .astype(str)).astype(object) + ", " + prompts, prompts)
    with_lora = rng.random(n) < 0.3
    lora_name = np.char.add("style_", rng.integers(1, 400, n).astype(str)).astype(object)
    prompts = np.where(with_lora, prompts + ", <lora:" + lora_name + ":0.8>", prompts)
    has_prompt = rng.random(n) > 0.08
    prompts = np.where(has_prompt, prompts, None)
    n_neg = rng.poisson(8, n) + 2
    negatives = np.array(_join_phrases(rng, cal.negatives, cal.negative_w, n_neg), dtype=object)
    negatives = np.where(has_prompt & (rng.random(n) > 0.1), negatives, None)
    n_users = max(50, config.n_images // 15)
    uploader = _power_law_draw(rng, n_users, 0.9, n)
    user_hash = np.array([hasher(f"synthetic_user_{i:06d}") for i in range(n_users)],
                         dtype=object)[uploader]
    engagement = np.select([level >= 8, level >= 2], [2.2, 1.5], 1.0)
    likes = rng.negative_binomial(1.2, 1.2 / (1.2 + 6 * engagement))
    hearts = rng.negative_binomial(1.0, 1.0 / (1.0 + 3 * engagement))
    laughs = rng.negative_binomial(0.3, 0.5, n)
    cries = rng.negative_binomial(0.3, 0.6, n)
    comments = rng.negative_binomial(0.4, 0.45, n)
    sizes = np.array([(512, 768), (768, 512), (512, 512), (832, 1216), (1024, 1024), (896, 1152)])
    sdxl_like = np.isin(base_model, ["SDXL 1.0", "Pony", "Flux.1 D", "Illustrious"])
    size_idx = np.where(sdxl_like, rng.integers(3, 6, n), rng.integers(0, 3, n))
    order = np.argsort(created, kind="stable")
    ids = np.cumsum(rng.integers(1, 40, n)) + 100_000
    post_ids = 10_000 + np.cumsum(rng.random(n) < 0.35)
    blur = synthetic_blurhashes(rng, 64)
    images = pa.table({
        "id": ids,
        "created_at": pa.array(created[order], type=pa.timestamp("us", tz="UTC")),
        "nsfw_level": level[order],
        "prompt": pa.array(prompts[order], type=pa.string()),
        "negative_prompt": pa.array(negatives[order], type=pa.string()),
        "base_model": pa.array(base_model[order], type=pa.string()),
        "username_hash": pa.array(user_hash[order], type=pa.string()),
        "post_id": post_ids,
        "like_count": likes[order], "heart_count": hearts[order], "laugh_count": laughs[order],
        "cry_count": cries[order], "comment_count": comments[order],
        "width": sizes[size_idx[order], 0].astype(np.int32),
        "height": sizes[size_idx[order], 1].astype(np.int32),
        "source": pa.array(["synthetic"] * n, type=pa.string()),
        "blurhash": pa.array([blur[i % 64] for i in range(n)], type=pa.string()),
    })

    # ---- models ---------------------------------------------------------------------------
    m_per_month = _allocate(config.n_models, _interp_log(months, anchors, "relative_models"))
    mm = np.repeat(np.arange(len(months)), m_per_month)
    k = mm.size
    m_created = _timestamps(rng, months, m_per_month)
    # LoRA share of new models rises (assumption: the 2023 crawl caps LoRA at 10,000 items).
    type_probs = np.tile(cal.type_w, (len(months), 1))
    lora = cal.types.index("LORA")
    type_probs[:, lora] *= 0.6 + 1.2 * t_years / t_years[-1]
    type_probs /= type_probs.sum(axis=1, keepdims=True)
    type_idx = _draw_rows(rng, type_probs, mm)
    m_type = np.array(cal.types, dtype=object)[type_idx]
    # LyCORIS adapters appear as LoCon from mid-2023
    locon = (m_type == "LORA") & (m_created >= np.datetime64("2023-07-01", "us").astype(np.int64)) \
        & (rng.random(k) < 0.15)
    m_type = np.where(locon, "LoCon", m_type)
    type_poi_lift = cal.type_poi[type_idx] / (cal.type_poi @ cal.type_w)
    p_poi = _expit(config.poi_logit_intercept + config.poi_logit_slope_per_year * t_years[mm]
                   + np.log(np.clip(type_poi_lift, 0.05, None)))
    poi = rng.random(k) < p_poi
    p_m_nsfw = np.clip(cal.type_nsfw[type_idx] * (1.0 + 0.3 * t_years[mm]) * np.where(poi, 1.3, 1),
                       0, 0.95)
    m_nsfw = rng.random(k) < p_m_nsfw
    mask = np.zeros(k, dtype=np.int16)
    for _ in range(4):  # OR of a few preview levels drawn at the model's month
        lv = np.where(rng.random(k) < p_nsfw[mm], rng.choice([2, 4, 8, 16], k), 1)
        mask |= lv.astype(np.int16)
    mask = np.where(m_nsfw, 60, mask).astype(np.int16)
    n_creators = max(20, config.n_models // 4)
    creator = _power_law_draw(rng, n_creators, 1.0, k)
    creator_hash = np.array([hasher(f"synthetic_creator_{i:05d}") for i in range(n_creators)],
                            dtype=object)[creator]
    downloads = np.round(rng.lognormal(5.5, 1.6, k) * np.where(poi, 1.4, 1) *
                         np.where(m_nsfw, 1.5, 1)).astype(np.int64)
    m_order = np.argsort(m_created, kind="stable")
    m_ids = np.cumsum(rng.integers(1, 30, k)) + 1000
    names = np.empty(k, dtype=object)
    poi_names = fictional_names(rng, 400)
    styles = ["Anime Style", "Realistic Mix", "Detail Tweaker", "Fantasy Armor", "Pastel Dream",
              "Cyberpunk City", "Cinematic Light", "Oil Painting", "Pixel Art", "Dark Gothic"]
    for j in range(k):
        base = poi_names[j % 400] if poi[j] else styles[j % len(styles)]
        names[j] = f"{base} {m_type[j]} v{1 + j % 3}"

    # ---- tags -------------------------------------------------------------------------------
    n_tags = rng.integers(2, 8, k)
    tag_model, tag_text = [], []
    for group, weights in (("poi", cal.tag_poi), ("nsfw", cal.tag_nsfw), ("other", cal.tag_other)):
        sel = poi if group == "poi" else (m_nsfw & ~poi if group == "nsfw" else ~poi & ~m_nsfw)
        idx = np.flatnonzero(sel)
        drawn = _join_phrases(rng, cal.tags, weights, n_tags[idx])
        for j, text in zip(idx, drawn, strict=True):
            for tag in text.split(", "):
                tag_model.append(j)
                tag_text.append(tag)
    tag_model_arr = np.array(tag_model)
    tag_order = np.lexsort((np.array(tag_text, dtype=object).astype(str), tag_model_arr))

    # ---- versions ---------------------------------------------------------------------------
    n_versions = rng.geometric(0.6, k)
    v_model = np.repeat(np.arange(k), n_versions)
    v_rank = np.concatenate([np.arange(c) for c in n_versions])
    v_created = m_created[v_model] + v_rank * rng.integers(
        5 * 86_400_000_000, 60 * 86_400_000_000, v_model.size)
    # Later versions that would fall after the window (the snapshot date) were never seen.
    window_end = (np.datetime64(WINDOW_END, "M") + 1).astype("datetime64[us]").astype(np.int64)
    seen = (v_rank == 0) | (v_created < window_end)
    v_model, v_rank, v_created = v_model[seen], v_rank[seen], v_created[seen]
    v_base_idx = _draw_rows(rng, bm_w, np.clip(mm[v_model] + v_rank, 0, len(months) - 1))
    v_base = np.array(bm_names, dtype=object)[v_base_idx]
    trigger = [[f"{names[j].split(' ')[0].lower()}_{j}"] + (["1girl"] if rng.random() < 0.3 else [])
               for j in v_model]
    v_ids = np.arange(v_model.size) + 500_000
    m_id_of = dict(zip(range(k), m_ids[np.argsort(m_order)], strict=True))
    models = pa.table({
        "id": m_ids,
        "name": pa.array(names[m_order], type=pa.string()),
        "type": pa.array(m_type[m_order], type=pa.string()),
        "nsfw": m_nsfw[m_order],
        "nsfw_level": mask[m_order],
        "poi": poi[m_order],
        "creator_hash": pa.array(creator_hash[m_order], type=pa.string()),
        "created_at": pa.array(m_created[m_order], type=pa.timestamp("us", tz="UTC")),
        "download_count": downloads[m_order],
        "source": pa.array(["synthetic"] * k, type=pa.string()),
    })
    versions = pa.table({
        "id": v_ids,
        "model_id": np.array([m_id_of[j] for j in v_model], dtype=np.int64),
        "base_model": pa.array(v_base, type=pa.string()),
        "created_at": pa.array(v_created, type=pa.timestamp("us", tz="UTC")),
        "trained_words": pa.array(trigger, type=pa.list_(pa.string())),
        "nsfw_level": mask[v_model],
    })
    model_tags = pa.table({
        "model_id": np.array([m_id_of[j] for j in tag_model_arr[tag_order]], dtype=np.int64),
        "tag": pa.array(np.array(tag_text, dtype=object)[tag_order], type=pa.string()),
    })
    truth = {
        "nsfw_above_pg_logit": {
            "intercept": b0, "slope_per_year": b1, "month_noise_sd": config.nsfw_month_noise_sd,
            "time_origin": WINDOW_START, "time_unit": "years (month index / 12)",
            "fitted_to": sorted({x[3] for x in cal.targets}),
        },
        "poi_logit": {
            "intercept_average_type": config.poi_logit_intercept,
            "slope_per_year": config.poi_logit_slope_per_year,
            "time_origin": WINDOW_START,
            "note": "type-specific lift added from model_type_mix.csv poi_share",
        },
        "images_per_month": dict(zip(months, map(int, img_per_month), strict=True)),
        "fictional_person_names": len(person_names),
    }
    return {"images": images, "models": models, "model_versions": versions,
            "model_tags": model_tags}, truth


def generator_digest(calibration_dir: Path = CALIBRATION_DIR) -> str:
    """sha256 over the generator's code and its calibration files: same digest, same sample."""
    import hashlib

    digest = hashlib.sha256(Path(__file__).read_bytes())
    for path in sorted(calibration_dir.glob("*.csv")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def _is_current(out: Path, parameters: dict, digest: str) -> bool:
    """Whether ``out`` already holds exactly the sample these parameters would produce."""
    from .snapshot import SnapshotError, load_snapshot

    try:
        existing = load_snapshot(out, verify_checksums=True)
    except SnapshotError:
        return False
    return (existing.manifest.get("generator_digest") == digest
            and existing.manifest.get("parameters") == parameters)


def check_sample_target(out: Path) -> None:
    """Refuse to write a sample over anything but an empty folder or an earlier sample.

    A sample written into an imported snapshot would relabel real data synthetic (or the other way
    round), and a user's own files must never be replaced by generated ones.
    """
    import json

    from .snapshot import MANIFEST

    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out} is a file; pass --out a new or empty folder for the sample")
    if not out.is_dir() or not any(out.iterdir()):
        return
    try:
        manifest = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        manifest = None
    if not (isinstance(manifest, dict) and manifest.get("synthetic") is True
            and manifest.get("generator") == "civitai_study.synthetic"):
        raise FileExistsError(
            f"{out} is not empty and does not hold an earlier synthetic sample; nothing was "
            "changed. Pass --out a new or empty folder (e.g. data/sample)")
    from .snapshot import unlisted_parquet_files

    foreign = unlisted_parquet_files(out, manifest)
    if foreign:
        raise FileExistsError(
            f"{out} holds Parquet files its sample manifest does not list ({', '.join(foreign[:3])}"
            f"); nothing was changed. Move them away or pass --out a new or empty folder")


def write_sample(out: Path, config: SampleConfig = SampleConfig(),
                 calibration_dir: Path = CALIBRATION_DIR, force: bool = False) -> Snapshot:
    """Generate the synthetic snapshot into ``out`` (overwriting its tables).

    When ``out`` already holds the same sample (same parameters, generator code and calibration,
    files matching their checksums) nothing is rewritten, unless ``force``.
    """
    from .snapshot import load_snapshot

    digest = generator_digest(calibration_dir)
    parameters = asdict(config)
    if not force and _is_current(Path(out), parameters, digest):
        return load_snapshot(out)
    check_sample_target(Path(out))
    tables, truth = generate_tables(config, calibration_dir)
    manifest = {
        "synthetic": True,
        "source": {
            "kind": "synthetic",
            "name": "civitai-study synthetic sample",
            "description": "Synthetic CivitAI-shaped data, calibrated to real aggregates in "
                           "data/calibration/. Not real CivitAI data.",
            "calibration": sorted(p.name for p in calibration_dir.glob("*.csv")),
        },
        "snapshot_date": SNAPSHOT_DATE,
        "window": {"start": WINDOW_START, "end": WINDOW_END},
        # None in the NSFW trend parameters means "fitted to the calibration targets": the
        # values used are under truth.nsfw_above_pg_logit.
        "parameters": parameters,
        "truth": truth,
        "generator": "civitai_study.synthetic",
        "generator_digest": digest,
    }
    return write_snapshot(out, tables, manifest)
