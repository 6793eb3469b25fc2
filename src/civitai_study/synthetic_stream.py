"""Streaming synthetic snapshots for scale tests: millions of images with bounded memory.

Why a second generator: :func:`civitai_study.synthetic.generate_tables` builds every image row in
memory at once (4M images need 6.6 GB), which is right for the 60k default sample (kept
byte-identical) but cannot make the paper's 40M. This one draws the same kind of rows (same
calibration, levels, base-model eras, phrase-built prompts, power-law uploaders) one chunk of at
most ``chunk_rows`` images at a time, each chunk with its own seeded generator, and appends them
to Parquet parts of ``part_rows`` rows. Prompts are built from independently drawn calibration
phrases per image, so they are distinct as real prompts are, not replicated rows.

Same seed and sizes → byte-identical files. Models, versions and tags (small tables) come from
the in-memory generator.
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from . import synthetic as syn
from .paths import CALIBRATION_DIR
from .pseudonymise import SYNTHETIC_KEY, Pseudonymiser
from .schema import arrow_schema, conform
from .snapshot import IMAGE_PART_ROWS, IMAGE_ROW_GROUP, Snapshot, load_snapshot, write_manifest

CHUNK_ROWS = 250_000


def _join_phrases(rng: np.random.Generator, vocab: pa.Array, weights: np.ndarray,
                  counts: np.ndarray) -> pa.Array:
    """Per row, ``counts[row]`` phrases drawn by ``weights``, repeats dropped (first kept), joined
    with ", " — vectorised with Arrow instead of a Python loop per row."""
    n = counts.size
    draws = rng.choice(len(vocab), size=int(counts.sum()), p=weights / weights.sum())
    row = np.repeat(np.arange(n), counts)
    _, first = np.unique(row.astype(np.int64) * len(vocab) + draws, return_index=True)
    keep = np.zeros(draws.size, dtype=bool)
    keep[first] = True
    kept_rows = row[keep]
    offsets = np.concatenate([[0], np.cumsum(np.bincount(kept_rows, minlength=n))])
    lists = pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), vocab.take(draws[keep]))
    return pc.binary_join(lists, ", ")


def _prefix(mask: np.ndarray, prefix: pa.Array | str, text: pa.Array, sep: str = ", "
            ) -> pa.Array:
    joined = pc.binary_join_element_wise(prefix, text, sep)
    return pc.if_else(pa.array(mask), joined, text)


class _Generator:
    """Everything that does not change from chunk to chunk (drawn once from the seed)."""

    def __init__(self, config: syn.SampleConfig, calibration_dir: Path):
        rng = np.random.default_rng(config.seed)
        self.config = config
        self.cal = syn.load_calibration(calibration_dir)
        self.months = syn.months_between(syn.WINDOW_START, syn.WINDOW_END)
        self.t_years = np.array([syn.month_index(m) / 12 for m in self.months])
        anchors = syn._read("volume_anchors.csv", calibration_dir)
        fit_b0, fit_b1 = syn.fit_nsfw_trend(self.cal)
        b0 = fit_b0 if config.nsfw_logit_intercept is None else config.nsfw_logit_intercept
        b1 = fit_b1 if config.nsfw_logit_slope_per_year is None else \
            config.nsfw_logit_slope_per_year
        self.b0, self.b1 = b0, b1
        self.per_month = syn._allocate(config.n_images,
                                       syn._interp_log(self.months, anchors, "relative_images"))
        noise = rng.normal(0, config.nsfw_month_noise_sd, len(self.months))
        self.p_nsfw = syn._expit(b0 + b1 * self.t_years + noise)
        self.bm_names, self.bm_w = syn._base_model_weights(self.months, calibration_dir)
        self.phrases = pa.array(self.cal.phrases, pa.string())
        self.negatives = pa.array(self.cal.negatives, pa.string())
        self.person_names = pa.array(["photo of " + n for n in syn.fictional_names(rng, 60)])
        self.blur = pa.array(syn.synthetic_blurhashes(rng, 64), pa.string())
        hasher = Pseudonymiser(SYNTHETIC_KEY)
        n_users = max(50, config.n_images // 15)
        self.users = pa.array([hasher(f"synthetic_user_{i:06d}") for i in range(n_users)],
                              pa.string())
        weights = (1.0 + np.arange(n_users)) ** -0.9
        self.user_cdf = np.cumsum(weights / weights.sum())
        self.next_id, self.next_post, self.rows_done = 100_000, 10_000, 0

    def chunks(self):
        """(month index, sub-chunk, of how many, rows) in time order."""
        for m, count in enumerate(self.per_month):
            k = max(1, -(-int(count) // CHUNK_ROWS))
            sizes = syn._allocate(int(count), np.ones(k)) if count else np.zeros(1, int)
            for j, size in enumerate(sizes):
                if size:
                    yield m, j, k, int(size)

    def images(self, m: int, j: int, k: int, n: int) -> pa.Table:
        """One chunk: ``n`` images of month ``m``, in the j-th of k equal slices of the month."""
        cfg, cal = self.config, self.cal
        rng = np.random.default_rng([cfg.seed, m, j])
        start = np.datetime64(self.months[m] + "-01", "us").astype(np.int64)
        end = (np.datetime64(self.months[m], "M") + 1).astype("datetime64[us]").astype(np.int64)
        lo = start + (end - start) * j // k
        hi = start + (end - start) * (j + 1) // k
        created = np.sort(lo + (rng.random(n) * (hi - lo)).astype(np.int64))
        frac = self.t_years[m] / self.t_years[-1]
        above = rng.random(n) < self.p_nsfw[m]
        p13, pr, px = 0.55 - 0.25 * frac, 0.12 + 0.03 * frac, 0.28 + 0.07 * frac
        u = rng.random(n)
        levels = np.select([u < p13, u < p13 + pr, u < p13 + pr + px], [2, 4, 8], 16)
        level = np.where(above, levels, 1)
        level = np.where(rng.random(n) < cfg.unrated_share, 0, level).astype(np.int16)
        base_idx = rng.choice(len(self.bm_names), size=n, p=self.bm_w[m])
        base_model = pa.array(self.bm_names, pa.string()).take(base_idx)
        is_pony = np.array(self.bm_names)[base_idx] == "Pony"
        n_phr = rng.poisson(11, n) + 3
        nsfw_mask = level >= 2
        prompts_nsfw = _join_phrases(rng, self.phrases, cal.phrase_nsfw, n_phr * nsfw_mask)
        prompts_sfw = _join_phrases(rng, self.phrases, cal.phrase_sfw, n_phr * ~nsfw_mask)
        prompts = pc.if_else(pa.array(nsfw_mask), prompts_nsfw, prompts_sfw)
        prompts = _prefix(rng.random(n) < 0.35, syn.QUALITY_PREFIX, prompts)
        rating = pa.array([", rating_safe", ", rating_questionable", ", rating_explicit"]).take(
            np.select([level >= 8, level >= 2], [2, 1], 0))
        pony = pc.binary_join_element_wise(syn.PONY_PREFIX + ", source_anime", rating, "")
        prompts = _prefix(is_pony & (rng.random(n) < 0.85), pony, prompts)
        photo = rng.random(n) < 0.04
        prompts = _prefix(photo, self.person_names.take(rng.integers(0, 60, n)), prompts)
        lora = pc.binary_join_element_wise(
            "<lora:style_", pc.cast(pa.array(rng.integers(1, 400, n)), pa.string()), ":0.8>", "")
        prompts = pc.if_else(pa.array(rng.random(n) < 0.3),
                             pc.binary_join_element_wise(prompts, lora, ", "), prompts)
        has_prompt = rng.random(n) > 0.08
        prompts = pc.if_else(pa.array(has_prompt), prompts, pa.scalar(None, pa.string()))
        negatives = _join_phrases(rng, self.negatives, cal.negative_w, rng.poisson(8, n) + 2)
        negatives = pc.if_else(pa.array(has_prompt & (rng.random(n) > 0.1)), negatives,
                               pa.scalar(None, pa.string()))
        uploader = np.minimum(np.searchsorted(self.user_cdf, rng.random(n)), len(self.users) - 1)
        engagement = np.select([level >= 8, level >= 2], [2.2, 1.5], 1.0)
        sizes = np.array([(512, 768), (768, 512), (512, 512), (832, 1216), (1024, 1024),
                          (896, 1152)])
        sdxl_like = np.isin(np.array(self.bm_names)[base_idx],
                            ["SDXL 1.0", "Pony", "Flux.1 D", "Illustrious"])
        size_idx = np.where(sdxl_like, rng.integers(3, 6, n), rng.integers(0, 3, n))
        ids = self.next_id + np.cumsum(rng.integers(1, 40, n))
        posts = self.next_post + np.cumsum(rng.random(n) < 0.35)
        self.next_id, self.next_post = int(ids[-1]), int(posts[-1])
        blur = self.blur.take((self.rows_done + np.arange(n)) % 64)
        self.rows_done += n
        table = pa.table({
            "id": ids,
            "created_at": pa.array(created, type=pa.timestamp("us", tz="UTC")),
            "nsfw_level": level,
            "prompt": prompts,
            "negative_prompt": negatives,
            "base_model": base_model,
            "username_hash": self.users.take(uploader),
            "post_id": posts,
            "like_count": rng.negative_binomial(1.2, 1.2 / (1.2 + 6 * engagement)),
            "heart_count": rng.negative_binomial(1.0, 1.0 / (1.0 + 3 * engagement)),
            "laugh_count": rng.negative_binomial(0.3, 0.5, n),
            "cry_count": rng.negative_binomial(0.3, 0.6, n),
            "comment_count": rng.negative_binomial(0.4, 0.45, n),
            "width": sizes[size_idx, 0].astype(np.int32),
            "height": sizes[size_idx, 1].astype(np.int32),
            "source": pa.array(np.full(n, "synthetic", dtype=object), pa.string()),
            "blurhash": blur,
        })
        return conform("images", table)


def _write_images(gen: _Generator, folder: Path, part_rows: int) -> None:
    folder.mkdir(parents=True)
    schema = arrow_schema("images")
    writer, part, in_part = None, 0, 0
    try:
        for m, j, k, n in gen.chunks():
            table = gen.images(m, j, k, n)
            while table.num_rows:
                if writer is None:
                    writer = pq.ParquetWriter(folder / f"part-{part:06d}.parquet", schema,
                                              compression="zstd")
                take = min(table.num_rows, part_rows - in_part)
                writer.write_table(table.slice(0, take), row_group_size=IMAGE_ROW_GROUP)
                table, in_part = table.slice(take), in_part + take
                if in_part >= part_rows:
                    writer.close()
                    writer, part, in_part = None, part + 1, 0
    finally:
        if writer is not None:
            writer.close()


def write_large_sample(out: str | Path, config: syn.SampleConfig,
                       calibration_dir: Path = CALIBRATION_DIR,
                       part_rows: int = IMAGE_PART_ROWS) -> Snapshot:
    """Write a synthetic snapshot of ``config.n_images`` images as parts, with bounded memory.

    Written into a staging folder beside ``out`` and swapped in only when complete; an existing
    ``out`` with the same parameters and generator is kept as it is (a cache for benchmarks).
    """
    out = Path(out)
    digest = hashlib.sha256(syn.generator_digest(calibration_dir).encode()
                            + Path(__file__).read_bytes()).hexdigest()
    parameters = {**asdict(config), "generator": "stream", "part_rows": part_rows,
                  "chunk_rows": CHUNK_ROWS}
    if syn._is_current(out, parameters, digest):
        return load_snapshot(out)
    stage = out.with_name(out.name + ".partial")
    shutil.rmtree(stage, ignore_errors=True)
    gen = _Generator(config, calibration_dir)
    _write_images(gen, stage / "images", part_rows)
    small = syn.SampleConfig(**{**asdict(config), "n_images": 1000})
    tables, truth = syn.generate_tables(small, calibration_dir)
    for name in ("models", "model_versions", "model_tags"):
        pq.write_table(conform(name, tables[name]), stage / f"{name}.parquet",
                       compression="zstd", row_group_size=IMAGE_ROW_GROUP)
    truth["images_per_month"] = dict(zip(gen.months, map(int, gen.per_month), strict=True))
    write_manifest(stage, {
        "synthetic": True,
        "source": {"kind": "synthetic", "name": "civitai-study synthetic sample (streamed)",
                   "description": "Synthetic CivitAI-shaped data for scale tests, calibrated to "
                                  "real aggregates in data/calibration/. Not real CivitAI data.",
                   "calibration": sorted(p.name for p in calibration_dir.glob("*.csv"))},
        "snapshot_date": syn.SNAPSHOT_DATE,
        "window": {"start": syn.WINDOW_START, "end": syn.WINDOW_END},
        "parameters": parameters, "truth": truth,
        "generator": "civitai_study.synthetic_stream", "generator_digest": digest,
    })
    if out.exists():
        old = out.with_name(out.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        out.rename(old)
        stage.rename(out)
        shutil.rmtree(old)
    else:
        stage.rename(out)
    return load_snapshot(out)
