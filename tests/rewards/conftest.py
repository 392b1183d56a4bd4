"""Fixtures for the reward tests: a trajectory with tool calls, and a real judge endpoint."""

import pytest

from rlfactory_plugins.testing.fake_openai import FakeChatServer
from rlfactory_plugins.trajectory import Trajectory
from tests.helpers.trajectories import make_trajectory


@pytest.fixture
def trajectory() -> Trajectory:
    return make_trajectory()


@pytest.fixture
async def judge_server():
    async with FakeChatServer(reply="Score: 6/10") as server:
        yield server
