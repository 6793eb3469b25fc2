"""Keep freed memory in the C heap between batches, so the coder's units page-fault less.

Why: each unit of the parallel coder allocates and frees numpy arrays and Python byte strings of
1–10 MB (Arrow's own arrays come from its mimalloc pool, not from here). glibc trims the free top
of its heap back to the system and the next unit faults those pages in again. Padding the heap
by :data:`TOP_PAD_BYTES` (``mallopt(M_TOP_PAD)``) keeps that much free memory at the heap's top.
On the real 2023 prompts (``benchmarks/coding.py --parallel-only``; 8 alternating fresh-process
runs each) a serial pass went from about 30,000 page faults to 7,100 and from a median
50 MB/s to 63 MB/s; a fresh pool of 2 processes from 109 to 117 MB/s. Results are identical.

Costs: up to that much extra resident memory per process for the rest of its life, and glibc
stops adjusting its mmap threshold by itself (``M_TOP_PAD`` turns that off). So only processes
that exist to code pad: wherever the parallel coder (:mod:`civitai_study.coding.parallel_coder`)
builds a matcher (its worker processes, or the calling process for its in-process path and
thread pools). Notebook 04's threaded coder does not: at 40M images, one run each,
it coded in 71.5 s unpadded and 69.9 s padded, with a peak 138 MB higher.

Only glibc has ``mallopt``; elsewhere (macOS, musl) :func:`pad_heap` does nothing. With another
allocator preloaded (jemalloc, tcmalloc) glibc accepts the setting but it has no effect.
"""

from __future__ import annotations

import ctypes
import platform

#: Free memory glibc keeps at the top of the heap instead of returning it (64 MB).
TOP_PAD_BYTES = 64 * 1024 * 1024
_M_TOP_PAD = -2  # glibc's malloc.h
_PADDED: list[bool] = []


def pad_heap(top_pad: int = TOP_PAD_BYTES) -> bool:
    """Set glibc's ``M_TOP_PAD`` for this process, once (later calls, whatever their value, change
    nothing); True if glibc accepted it. Forked children inherit both the setting and the flag."""
    if isinstance(top_pad, bool) or not isinstance(top_pad, int) or not 0 <= top_pad < 2**31:
        raise ValueError(f"top_pad must be a whole number of bytes from 0 to 2**31 - 1, "
                         f"not {top_pad!r}")
    if _PADDED:
        return _PADDED[0]
    done = False
    if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
        try:
            mallopt = ctypes.CDLL(None).mallopt
            mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
            mallopt.restype = ctypes.c_int
            done = mallopt(_M_TOP_PAD, top_pad) == 1
        except (OSError, AttributeError):
            done = False
    _PADDED.append(done)
    return done
