"""``civitai-study sample``: write the deterministic synthetic snapshot."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..synthetic import SampleConfig, write_sample

#: Above this many images the streaming generator is used (the in-memory one needs ~1.7 GB/M).
STREAM_ABOVE = 1_000_000


def register(sub: argparse._SubParsersAction) -> None:
    defaults = SampleConfig()
    p = sub.add_parser("sample", help="write the synthetic default snapshot",
                       description="Write a deterministic synthetic snapshot calibrated to real "
                                   "aggregates (data/calibration/). It is labelled synthetic. "
                                   "OUT must be new, empty or hold an earlier sample; the sample "
                                   "is built beside it and swapped in only when complete.")
    p.add_argument("--out", type=Path, required=True, help="snapshot directory to write")
    p.add_argument("--seed", type=int, default=defaults.seed,
                   help="random seed (same seed, same sample)")
    p.add_argument("--images", type=int, default=defaults.n_images,
                   help="number of images (at least 1,000)")
    p.add_argument("--models", type=int, default=defaults.n_models,
                   help="number of models (at least 100)")
    p.add_argument("--stream", action="store_true",
                   help="write images as parts with bounded memory (automatic above "
                        f"{STREAM_ABOVE:,} images; for scale tests)")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    config = SampleConfig(seed=args.seed, n_images=args.images, n_models=args.models)
    if args.stream or args.images > STREAM_ABOVE:
        from ..synthetic_stream import write_large_sample

        snapshot = write_large_sample(args.out, config)
    else:
        snapshot = write_sample(args.out, config)
    print(snapshot.describe())
    return 0
