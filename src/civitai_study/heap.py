"""Keep freed memory in the C heap between batches, so array-heavy loops stop page-faulting.

Why: the coder allocates and frees numpy and Arrow arrays of 1–10 MB for every batch. With
glibc's defaults the heap is trimmed back to the system as soon as its free top passes 128 KB,
and the next batch faults the same pages in again (zeroed by the kernel): on a fresh process
coding the real 2023 prompts, about 36,000 page faults and half the wall time of the first pass.
Padding the heap by :data:`TOP_PAD_BYTES` (``mallopt(M_TOP_PAD)``) keeps that much free memory
at the heap's top between batches: about 7,500 faults, and the first pass as fast as later ones
(``benchmarks/coding.py --parallel-only``). The cost is up to that much extra resident memory
per arena.

Used where processes are fresh: the parallel coder's workers and its in-process path
(:mod:`civitai_study.coding.parallel_coder`). A long run in one process gains little (glibc
raises its own thresholds after the first large frees: notebook 04 at 40M images codes in 70 s
either way) and would only hold more memory, so the notebooks' threaded coder does not pad.

Only glibc has ``mallopt``; elsewhere (macOS, musl) :func:`pad_heap` does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import platform

#: Free memory glibc keeps at the top of the heap instead of returning it (64 MB).
TOP_PAD_BYTES = 64 * 1024 * 1024
_M_TOP_PAD = -2  # glibc's malloc.h
_PADDED: list[bool] = []


def pad_heap(top_pad: int = TOP_PAD_BYTES) -> bool:
    """Set glibc's ``M_TOP_PAD`` for this process (once); True if the C library took it."""
    if _PADDED:
        return _PADDED[0]
    done = False
    if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or None)
            done = bool(libc.mallopt(_M_TOP_PAD, int(top_pad)))
        except (OSError, AttributeError):
            done = False
    _PADDED.append(done)
    return done
