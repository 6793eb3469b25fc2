import os
import stat

import pytest

from civitai_study.pseudonymise import KEY_ENV, Pseudonymiser, load_or_create_key


def test_stable_keyed_and_case_insensitive():
    a, b = Pseudonymiser(b"k1"), Pseudonymiser(b"k2")
    assert a("Alice") == a("alice") == a(" alice ")
    assert a("alice") != b("alice")
    assert len(a("alice")) == 16 and "alice" not in a("alice")
    assert a(None) is None and a("") is None


def test_key_file_created_once_with_private_mode(tmp_path, monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    path = tmp_path / "cfg" / "hash.key"
    key = load_or_create_key(path)
    assert path.is_file() and load_or_create_key(path) == key
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_environment_key_wins(tmp_path, monkeypatch):
    monkeypatch.setenv(KEY_ENV, "from-env")
    assert load_or_create_key(tmp_path / "unused.key") == b"from-env"
    assert not (tmp_path / "unused.key").exists()


def test_empty_key_rejected():
    with pytest.raises(ValueError):
        Pseudonymiser(b"")
