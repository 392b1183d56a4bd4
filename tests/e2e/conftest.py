"""Fixtures for the end-to-end tests; the helpers they use are in tests/helpers/e2e.py."""

from __future__ import annotations

import pytest

from tests.helpers.e2e import Workspace, build_workspace


@pytest.fixture(scope="session")
def cpu_workspace(tmp_path_factory) -> Workspace:
    return build_workspace(tmp_path_factory.mktemp("cpu_grpo"))
