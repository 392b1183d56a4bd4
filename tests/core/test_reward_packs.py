"""Installed reward packs are found through their entry points, with their distribution."""

import json
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

PACKS = {"qa": ("rlfactory-reward-qa", {"qa_em", "qa_f1", "qa_format", "qa_otc"}),
         "judge": ("rlfactory-reward-judge", {"judge"}),
         "math": ("rlfactory-reward-math", {"math_equiv"})}
CLI = str(Path(sys.executable).with_name("rlfactory"))


def plugins_json(**env):
    out = subprocess.run([CLI, "plugins", "--json"], capture_output=True, text=True, timeout=120,
                         env={**os.environ, **env})
    return {row["name"]: row for row in json.loads(out.stdout)["plugins"]}


@pytest.mark.timeout(240)
def test_plugins_lists_every_pack_with_its_distribution():
    for name, (dist, _) in PACKS.items():
        eps = [ep for ep in metadata.distribution(dist).entry_points if ep.group == "rlfactory"]
        assert [(ep.name, ep.value) for ep in eps] == [(name, f"rlfactory_reward_{name}")], dist
    rows = plugins_json()
    for name, (dist, rewards) in PACKS.items():
        assert rows[name]["distribution"] == dist and set(rows[name]["rewards"]) == rewards
    without = plugins_json(RLFACTORY_DISABLE_PLUGINS="qa")  # the entry point is the only way in
    assert "qa" not in without and "judge" in without
