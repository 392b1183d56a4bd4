"""Commands of the test venv (``rlfactory``, ``python``, ``pip``) run as subprocesses."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

VENV_BIN = Path(sys.executable).parent


def run(*args: str, check: bool = False, timeout: float = 300, **kw) -> subprocess.CompletedProcess:
    """Run a command of the venv (rlfactory, python, pip) and capture its output."""
    cmd = [str(VENV_BIN / args[0]) if (VENV_BIN / args[0]).exists() else args[0], *args[1:]]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **kw.pop("env", {})}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, **kw)
    if check and proc.returncode != 0:
        raise AssertionError(f"{cmd} exited {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc
