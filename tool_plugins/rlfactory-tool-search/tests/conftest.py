from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

VENV_BIN = Path(sys.executable).parent

FIXTURE_PASSAGES = [
    ("Amber Lake", "Amber Lake is a lake in the north. Its water is famously cold and clear."),
    ("Copper Hill", "Copper Hill is a mining town founded in 1821. Copper and tin were mined there."),
    ("Hill Climbing", "Hill climbing is an optimisation method that moves uphill one step at a time."),
    ("Tin Whistle", "The tin whistle is a simple six-holed woodwind instrument."),
    ("Cold Fusion", "Cold fusion is a hypothesised nuclear reaction at room temperature."),
    ("Lake Poets", "The Lake Poets were a group of English poets who lived in the Lake District."),
]


def write_corpus(path: Path) -> Path:
    rows = [{"id": f"d{i}", "contents": f'"{title}"\n{text}'} for i, (title, text) in enumerate(FIXTURE_PASSAGES)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture
def fixture_corpus(tmp_path: Path) -> Path:
    return write_corpus(tmp_path / "corpus.jsonl")


@pytest.fixture(scope="session")
def corpus_writer():
    """``corpus_writer(path)`` writes the six-passage fixture corpus (for module-scoped fixtures)."""
    return write_corpus


@pytest.fixture
def cache_root(tmp_path: Path) -> Path:
    return tmp_path / "cache"


@pytest.fixture(scope="session")
def venv_run():
    """``venv_run("rlfactory", "plugins", env={...})``: run a command of this venv, output captured."""

    def run(
        *args: str, env: dict[str, str] | None = None, timeout: float = 120, cwd: Path | None = None
    ) -> subprocess.CompletedProcess:
        cmd = [venv_cmd(args[0]) if (VENV_BIN / args[0]).exists() else args[0], *args[1:]]
        full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=full_env, cwd=cwd)

    return run


def venv_cmd(name: str) -> str:
    return str(VENV_BIN / name)


@pytest.fixture(scope="session")
def server_cmd() -> str:
    return venv_cmd("rlfactory-search-server")
