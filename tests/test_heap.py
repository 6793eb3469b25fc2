"""civitai_study.heap: glibc's heap padding for the coder's batch loops."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

from civitai_study import heap


def test_pad_heap_is_set_once_and_reports_whether_the_c_library_took_it():
    first = heap.pad_heap()
    assert isinstance(first, bool)
    assert heap.pad_heap() is first  # once per process: later calls change nothing
    if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
        assert first, "glibc's mallopt(M_TOP_PAD) is available here"


def test_padding_a_fresh_process_keeps_its_arrays_working():
    code = ("from civitai_study import heap; import numpy as np; ok = heap.pad_heap(); "
            "a = [np.ones(2_000_000) for _ in range(20)]; del a; "
            "b = np.arange(10_000_000).sum(); print(ok, b)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    ok, total = out.stdout.split()
    assert total == str(sum(range(10_000_000)))
    if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
        assert ok == "True"


def test_pad_heap_refuses_a_size_glibc_cannot_take():
    for bad in (-1, 2**31, 1.5, True, "64"):
        with pytest.raises(ValueError, match="top_pad must be a whole number"):
            heap.pad_heap(bad)
