"""Shared fixtures: paths, a small synthetic snapshot, and the optional real 2023 crawl."""

from __future__ import annotations

import ipaddress
import os
import socket
from pathlib import Path

import pytest

from civitai_study.synthetic import SampleConfig, write_sample

ROOT = Path(__file__).resolve().parents[1]
SHARED_SAMPLES = ROOT.parent / "shared" / "civitai-samples"
REAL_MODELS = SHARED_SAMPLES / "models" / "dfanr_v1_models_2023-07-04.jsonl.gz"


@pytest.fixture(scope="session")
def small_sample(tmp_path_factory) -> Path:
    """A small synthetic snapshot (fast to make, same generator as the default)."""
    out = tmp_path_factory.mktemp("sample") / "snap"
    write_sample(out, SampleConfig(n_images=4000, n_models=400, seed=7))
    return out


@pytest.fixture(scope="session")
def real_models_file() -> Path:
    if not REAL_MODELS.is_file():
        pytest.skip(f"real 2023 crawl not found at {REAL_MODELS} (../shared is absent)")
    return REAL_MODELS


_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _loopback_only(address) -> None:
    """Tests never reach the internet: refuse any TCP/UDP peer that is not this machine."""
    if not isinstance(address, tuple):
        return  # AF_UNIX paths
    host = str(address[0])
    if host == "localhost":
        return
    try:
        if ipaddress.ip_address(host.split("%")[0]).is_loopback:
            return
    except ValueError:
        pass
    raise ConnectionRefusedError(f"tests may only connect to loopback addresses, not {host!r}")


@pytest.fixture(autouse=True, scope="session")
def no_internet():
    """Guard every test process against network access beyond 127.0.0.1 / ::1."""
    def connect(self, address):
        _loopback_only(address)
        return _real_connect(self, address)

    def connect_ex(self, address):
        _loopback_only(address)
        return _real_connect_ex(self, address)

    socket.socket.connect, socket.socket.connect_ex = connect, connect_ex
    yield
    socket.socket.connect, socket.socket.connect_ex = _real_connect, _real_connect_ex



@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    """`make test` sets CIVITAI_STUDY_OUT_DIR so that nbval's re-runs of the stored notebooks write
    to a scratch folder. Unit tests (and their session fixtures, which may run notebooks into
    their own --out) must not inherit it, or their outputs land in, and pollute, nbval's scratch
    folder; it is put back for the notebooks that nbval runs after them."""
    from civitai_study.notebook import OUT_DIR_ENV

    saved = os.environ.pop(OUT_DIR_ENV, None)
    try:
        yield
    finally:
        if saved is not None:
            os.environ[OUT_DIR_ENV] = saved
