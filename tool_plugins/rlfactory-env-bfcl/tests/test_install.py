"""The install that keeps a training venv consistent: bfcl-eval without its dependencies.

bfcl-eval pins old numpy, filelock and networkx and requires a dozen model SDKs; installed with
``--no-deps`` it changes nothing else, and the pack imports only the parts that need the standard
library and mpmath. ``pip check`` then reports bfcl-eval's own unmet requirements and nothing else.
"""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

PACK = Path(__file__).resolve().parents[1]
#: what importing bfcl_eval's heavy modules would pull in (model SDKs), and those modules themselves
HEAVY = ("openai", "anthropic", "mistralai", "cohere", "google.genai", "boto3", "qwen_agent", "sentence_transformers",
         "tree_sitter", "bfcl_eval.utils", "bfcl_eval.constants.model_config", "bfcl_eval.eval_checker.eval_runner")


def test_bfcl_eval_is_the_pinned_version():
    pinned = [line for line in (PACK / "requirements-nodeps.txt").read_text().splitlines() if line.startswith("bfcl")]
    assert pinned == [f"bfcl-eval=={version('bfcl-eval')}"]


def test_pip_check_finds_only_bfcl_evals_own_unmet_requirements():
    out = subprocess.run([sys.executable, "-m", "pip", "check"], capture_output=True, text=True).stdout
    lines = [line for line in out.splitlines() if line.strip()]
    assert lines, "pip check found nothing: was bfcl-eval installed with its dependencies (downgrading the venv)?"
    others = [line for line in lines if not line.startswith("bfcl-eval ")]
    assert others == []


def test_the_pack_imports_no_model_sdk_and_none_of_bfcls_heavy_modules():
    code = (
        "import sys, json, rlfactory_env_bfcl, rlfactory_env_bfcl.data, rlfactory_env_bfcl.rewards;"
        f"print(json.dumps([m for m in {list(HEAVY)!r} if m in sys.modules]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert json.loads(out) == []
