"""The version is written once, in ai_host/VERSION: the package, its metadata, the flake and the
changelog follow it."""

from __future__ import annotations

import importlib.metadata
import re
from pathlib import Path

import ai_host

ROOT = Path(__file__).resolve().parents[2]


def test_the_version_has_one_source():
    version = (ROOT / "ai_host" / "VERSION").read_text().strip()
    assert re.fullmatch(r"\d+\.\d+\.\d+(?:[.-]?\w+)?", version)
    assert ai_host.__version__ == version
    assert importlib.metadata.version("ai-host") == version
    for name in ("pyproject.toml", "flake.nix"):
        text = (ROOT / name).read_text()
        assert not re.search(r'^\s*version\s*=\s*"', text, re.M), f"{name} writes a version of its own"
    assert "readFile ./ai_host/VERSION" in (ROOT / "flake.nix").read_text()


def test_the_changelog_names_the_version():
    version = (ROOT / "ai_host" / "VERSION").read_text().strip()
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert "## [Unreleased]" in changelog and f"## [{version}]" in changelog
