""":help ai_host builds with :helptags and documents every config key."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.nvim


def leaves(node, prefix=""):
    for key, spec in node["keys"].items():
        if "keys" in spec:
            yield from leaves(spec, f"{prefix}{key}.")
        else:
            yield prefix + key


def test_helptags_build_without_errors(nvim_build, tmp_path):
    doc = tmp_path / "doc"
    shutil.copytree(ROOT / "doc", doc)
    out = subprocess.run(
        [str(nvim_build["binary"]), "--headless", "--clean", "-c", f"helptags {doc}", "-c", "qa!"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 0 and not re.search(r"E\d+:", out.stderr + out.stdout), out.stderr + out.stdout
    tags = (doc / "tags").read_text()
    for tag in ["ai_host-config", ":AIExplain", "<Plug>(ai-host-explain)", "ai_host.setup()", "AiHostTitle"]:
        assert tag + "\t" in tags


def test_every_config_key_is_documented():
    text = (ROOT / "doc" / "ai_host.txt").read_text()
    schema = json.loads((ROOT / "ai_host" / "config_schema.json").read_text())
    keys = list(leaves(schema))
    assert "scheduler.avoid_model_swap" in keys and "review.min_severity" in keys
    missing = [key for key in keys if key not in text]
    assert missing == []
    untagged = [key for key in keys if f"*ai_host-{key}*" not in text]  # :help ai_host-<key> finds each one
    assert untagged == []
