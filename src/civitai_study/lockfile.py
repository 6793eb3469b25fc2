"""Read the pinned lock file and keep ``environment.yml`` in agreement with it.

``requirements.lock`` (made by ``uv pip compile --generate-hashes``) is the single source of
versions; ``environment.yml`` (for conda and Binder) is generated from it by
``python -m civitai_study.lockfile`` (``make environment.yml``), and a test fails if they differ.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import yaml

from .paths import ROOT

_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==([^\s;\\]+)")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def read_lock(path: Path = ROOT / "requirements.lock") -> dict[str, str]:
    """``{canonical name: version}`` of every pin in the lock file."""
    pins = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        match = _PIN.match(line.strip())
        if match:
            pins[canonical(match.group(1))] = match.group(3)
    if not pins:
        raise ValueError(f"{path} holds no 'name==version' pins")
    return pins


def read_environment(path: Path = ROOT / "environment.yml") -> dict[str, str]:
    """``{canonical name: version}`` of the pip pins in ``environment.yml``."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    pins = {}
    for dep in data.get("dependencies", []):
        if isinstance(dep, dict) and "pip" in dep:
            for item in dep["pip"]:
                match = _PIN.match(item)
                if match:
                    pins[canonical(match.group(1))] = match.group(3)
    return pins


def render_environment(pins: dict[str, str], python: str = "3.11") -> str:
    lines = [
        "# Generated from requirements.lock by `make environment.yml`; do not edit by hand.",
        "# For conda and Binder users; `make all` uses requirements.lock directly.",
        "name: civitai-study",
        "channels:",
        "  - conda-forge",
        "dependencies:",
        f"  - python={python}",
        "  - pip",
        "  - pip:",
    ]
    lines += [f"      - {name}=={version}" for name, version in sorted(pins.items())]
    return "\n".join(lines) + "\n"


def main() -> int:
    (ROOT / "environment.yml").write_text(render_environment(read_lock()), encoding="utf-8")
    print("environment.yml written from requirements.lock")
    return 0


if __name__ == "__main__":
    sys.exit(main())
