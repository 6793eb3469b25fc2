"""A privacy-preserving stand-in for the paper's image grid (its Figure 1).

CivitAI returns a BlurHash with each image: a ~30-character code for a handful of blurred colour
components. Decoding it gives a blob of colour that shows layout and palette without showing any
body or face, so the grid can be printed and taught without reproducing explicit or
non-consensual imagery. The images themselves are never fetched.

Strings that do not decode (wrong length, characters outside base 83, corrupted values) are
counted and reported instead of stopping the figure: one bad row must not hide the rest.
"""

from __future__ import annotations

import blurhash
import numpy as np
import pandas as pd

from ..nsfw import LEVEL_LABELS
from .style import attach_data, finish, level_color, new_figure
from .volume import _require

BASE83 = set("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz#$%*+,-.:;=?@[]^_{|}~")
DECODE_PX = 24  # BlurHash is meant to be decoded small and scaled up


def check_blurhash(code: object) -> str | None:
    """Why ``code`` is not a decodable BlurHash, or ``None`` when it is well-formed."""
    if not isinstance(code, str) or not code:
        return "missing"
    if len(code) < 6:
        return "too short"
    if not set(code) <= BASE83:
        return "characters outside base 83"
    size = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz#$%*+,-.:;=?@[]^_{|}~"
    flag = size.index(code[0])
    nx, ny = flag % 9 + 1, flag // 9 + 1
    if len(code) != 4 + 2 * nx * ny:
        return f"length {len(code)} does not match its {nx}×{ny} components"
    return None


def decode_blurhash(code: object, width: int = 1, height: int = 1) -> tuple[np.ndarray | None,
                                                                              str | None]:
    """Decode to a small RGB array (aspect ratio kept), or ``(None, reason)``."""
    reason = check_blurhash(code)
    if reason:
        return None, reason
    aspect = (float(width) / float(height)) if width and height else 1.0
    w = max(4, round(DECODE_PX * min(1.0, aspect)))
    h = max(4, round(DECODE_PX * min(1.0, 1.0 / aspect)))
    try:
        pixels = np.asarray(blurhash.decode(code, w, h), dtype=float)
    except (ValueError, IndexError, OverflowError, ZeroDivisionError) as err:
        return None, f"decoder error: {err}"
    if pixels.shape != (h, w, 3) or not np.isfinite(pixels).all():
        return None, "decoder returned an invalid image"
    return np.clip(pixels, 0, 255).astype(np.uint8), None


def decode_table(frame: pd.DataFrame) -> tuple[pd.DataFrame, list[np.ndarray | None]]:
    """Decode every row; the returned table adds ``decoded`` (bool) and ``reason``."""
    _require(frame, ["nsfw_level", "blurhash"], "blurhash_grid")
    out = frame.copy().reset_index(drop=True)
    images, reasons = [], []
    for row in out.itertuples(index=False):
        image, reason = decode_blurhash(row.blurhash, getattr(row, "width", 1) or 1,
                                        getattr(row, "height", 1) or 1)
        images.append(image)
        reasons.append(reason or "")
    out["decoded"] = [img is not None for img in images]
    out["reason"] = reasons
    return out, images


def mosaic(data: pd.DataFrame, images: list[np.ndarray | None], per_row: int, gap: int = 3
           ) -> tuple[np.ndarray, list[int], list[tuple[int, int]]]:
    """One RGB mosaic (rows: NSFW levels; cells: decoded previews centred on white).

    Drawing one image instead of one axes per cell keeps the figure fast and byte-stable.
    Returns the mosaic, the levels in row order and the (row, column) of undecodable cells.
    """
    levels = sorted(int(v) for v in data["nsfw_level"].unique())
    cell = DECODE_PX + gap
    canvas = np.full((len(levels) * cell + gap, per_row * cell + gap, 3), 255, dtype=np.uint8)
    failed = []
    for i, level in enumerate(levels):
        rows = data.index[data["nsfw_level"] == level][:per_row]
        for j, k in enumerate(rows):
            top, left = gap + i * cell, gap + j * cell
            image = images[k]
            if image is None:
                canvas[top:top + DECODE_PX, left:left + DECODE_PX] = 225
                failed.append((i, j))
                continue
            h, w = image.shape[:2]
            dy, dx = (DECODE_PX - h) // 2, (DECODE_PX - w) // 2
            canvas[top + dy:top + dy + h, left + dx:left + dx + w] = image
    return canvas, levels, failed


def blurhash_grid(frame: pd.DataFrame, *, per_row: int = 8, source_label: str, synthetic: bool):
    """A grid of decoded BlurHash previews, one row per NSFW level (never the images).

    ``frame``: ``nsfw_level, blurhash`` and optionally ``width, height`` (table
    ``blurhash_sample.csv``). Undecodable strings are drawn as grey cells marked "×" and counted
    in the title and in the plotted data (columns ``decoded``, ``reason``; ``attrs``).
    """
    data, images = decode_table(frame)
    canvas, levels, failed = mosaic(data, images, per_row)
    cell = DECODE_PX + 3
    fig, ax = new_figure(figsize=(6.2, 0.72 * len(levels) + 1.1))
    ax.imshow(canvas, interpolation="bilinear")
    ax.set_xticks([])
    ax.set_yticks([3 + i * cell + DECODE_PX / 2 for i in range(len(levels))],
                  [LEVEL_LABELS.get(lv, str(lv)) for lv in levels])
    for label, level in zip(ax.get_yticklabels(), levels, strict=True):
        label.set_bbox({"facecolor": level_color(level), "alpha": 0.4, "edgecolor": "none",
                        "pad": 2})
    for i, j in failed:
        ax.text(3 + j * cell + DECODE_PX / 2, 3 + i * cell + DECODE_PX / 2, "×", ha="center",
                va="center", fontsize=9, color="#555555")
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.set_ylabel("NSFW level of the image")
    ax.set_xlabel(f"sampled images ({per_row} per level), each BlurHash decoded to {DECODE_PX} px;"
                  " × = undecodable")
    bad = int((~data["decoded"]).sum())
    distinct = int(data["blurhash"].nunique())
    title = (f"Blurred stand-ins for {len(data)} sampled images across {len(levels)} NSFW levels"
             f" (decoded BlurHash, never the images; {bad} undecodable)")
    finish(fig, title, source_label, synthetic)
    data.attrs.update({"undecodable": bad, "distinct_codes": distinct})
    return attach_data(fig, data, title)
