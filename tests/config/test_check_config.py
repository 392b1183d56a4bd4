"""check-config and the launch-time Hydra callback make the checks the workers make at start."""

from __future__ import annotations

import json
import sys

import pytest
from pydantic import BaseModel, ConfigDict, Field
from typer.testing import CliRunner

from rlfactory_plugins import hookimpl
from rlfactory_plugins.cli import app
from rlfactory_plugins.verl.compose import compose_config
from rlfactory_plugins.config import RLFactoryConfig, validate_section
from rlfactory_plugins.config.check import check_plugins
from rlfactory_plugins.verl.config_check import check_config
from rlfactory_plugins.errors import ConfigError, OptionsError, PluginError, RLFactoryError
from rlfactory_plugins.verl.hydra_callback import CheckRLFactoryConfig
from rlfactory_plugins.rewards.base import Reward
from rlfactory_plugins.tools.base import Tool, ToolSpec

pytestmark = pytest.mark.timeout(120)
runner = CliRunner()


class KnobOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    wall_s: float = Field(default=1.0, gt=0)


class KnobTool(Tool):
    Options = KnobOptions

    def __init__(self, options: KnobOptions | None = None) -> None:
        super().__init__(ToolSpec(name="knob"))
        self.options = options or KnobOptions()

    def with_options(self, options: BaseModel) -> KnobTool:
        return KnobTool(options)  # type: ignore[arg-type]

    async def acall(self, arguments):
        return "ok"


class KnobReward(Reward):
    Options = KnobOptions

    def __init__(self) -> None:
        super().__init__("knob_reward")

    async def ascore(self, trajectory, options):
        return 1.0


class KnobPlugin:
    @hookimpl
    def register_tools(self, register):
        register(KnobTool())

    @hookimpl
    def register_rewards(self, register):
        register(KnobReward())


@pytest.fixture
def registry(rlfactory_register):
    return rlfactory_register(KnobPlugin(), name="knob-pack")


def servers(tmp_path, **entries) -> str:
    path = tmp_path / "servers.json"
    path.write_text(json.dumps({"mcpServers": entries}))
    return str(path)


# -- cross-key limits against verl's keys ---------------------------------------------------------
def test_response_budget_over_verl_response_length_is_refused_before_start():
    cfg = compose_config(["rlfactory.rollout.max_response_tokens=999999"])
    with pytest.raises(ConfigError, match=r"rlfactory.rollout.max_response_tokens=999999 exceeds "
                                          r"actor_rollout_ref.rollout.response_length=\d+; lower it"):
        check_config(cfg)
    with pytest.raises(SystemExit) as e:  # the launch-time callback, before main_ppo starts Ray
        CheckRLFactoryConfig().on_job_start(config=cfg)
    assert e.value.code == 2
    ok = check_config(compose_config(["rlfactory.rollout.max_response_tokens=256", "data.max_response_length=256"]))
    assert ok.rollout.max_response_tokens == 256


def test_check_config_cli_refuses_what_the_worker_refuses():
    result = runner.invoke(app, ["check-config", "rlfactory.rollout.max_response_tokens=999999"])
    assert result.exit_code == 2 and "max_response_tokens=999999 exceeds" in result.stderr


def test_oversampler_kwargs_and_trainer_mode_are_checked():
    base = ["trainer.v1.sampler.custom_sampler.path=pkg://rlfactory_plugins.verl.oversample",
            "trainer.v1.sampler.custom_sampler.name=OverSamplingReplayBuffer"]
    with pytest.raises(ConfigError, match=r"trainer.v1.sampler.sampler_kwargs.oversample: Input should be less"):
        check_config(compose_config([*base, "+trainer.v1.sampler.sampler_kwargs.oversample=9"]))
    with pytest.raises(ConfigError, match="trainer_mode='separate_async'"):
        check_config(compose_config([*base, "trainer.v1.trainer_mode=separate_async"]))
    check_config(compose_config([*base, "+trainer.v1.sampler.sampler_kwargs.oversample=0.5"]))


# -- the unknown-key message comes before (and instead of) Hydra's "+key" hint ------------------------
def test_unknown_override_key_shows_the_allowed_keys_not_the_append_hint():
    result = runner.invoke(app, ["check-config", "rlfactory.rollout.max_turnz=3"])
    assert result.exit_code == 2
    first = result.stderr.strip().splitlines()[0]
    assert "rlfactory.rollout.max_turnz: unknown key (allowed keys:" in first and "did you mean 'max_turns'" in first
    assert "+rlfactory" not in result.stderr


# -- tool and reward options: key-path messages, no pydantic dump --------------------------------------
def test_tool_options_errors_read_like_top_level_keys(registry):
    model = validate_section({"tools": [{"name": "knob", "options": {"wall_s": -1, "wal": 2}}]})
    with pytest.raises(OptionsError) as e:
        check_plugins(model, registry)
    msg = str(e.value)
    assert "rlfactory.tools[knob].options.wall_s: Input should be greater than 0 (got -1)" in msg
    assert "rlfactory.tools[knob].options.wal: unknown key (allowed keys: wall_s); did you mean 'wall_s'?" in msg
    assert "errors.pydantic.dev" not in msg and "validation error" not in msg
    assert isinstance(e.value, ConfigError) and isinstance(e.value, PluginError)  # packs' tests catch PluginError


def test_reward_options_errors_read_like_top_level_keys(registry):
    model = validate_section({"rewards": [{"name": "knob_reward", "options": {"wall_s": "x"}}]})
    with pytest.raises(OptionsError, match=r"rlfactory.rewards\[knob_reward\].options.wall_s: Input should be a valid"):
        check_plugins(model, registry)


def test_section_errors_name_list_entries_by_name():
    with pytest.raises(ConfigError, match=r"rlfactory.tools\[knob\].timeout: Input should be greater than 0 \(got -1"):
        validate_section({"tools": [{"name": "knob", "timeout": -1}]})
    with pytest.raises(ConfigError, match=r"rlfactory.tools: Input should be a valid list \(got 3\)"):
        validate_section({"tools": 3})


def test_names_are_checked_by_key(registry):
    with pytest.raises(ConfigError, match=r"rlfactory.tools\[knb\]: unknown tool 'knb'.*did you mean 'knob'"):
        check_plugins(validate_section({"tools": ["knb"]}), registry)
    with pytest.raises(ConfigError, match=r"rlfactory.rewards\[knob_rewrd\]: unknown reward"):
        check_plugins(validate_section({"rewards": ["knob_rewrd"]}), registry)
    with pytest.raises(ConfigError, match=r"rlfactory.parser='hermez': unknown parser"):
        check_plugins(validate_section({"parser": "hermez"}), registry)
    with pytest.raises(ConfigError, match=r"rlfactory.tools\[knob\]: listed twice"):
        check_plugins(validate_section({"tools": ["knob", "knob"]}), registry)
    check_plugins(validate_section({"tools": [{"name": "knob", "options": {"wall_s": 2}}], "rewards": ["knob_reward"]}),
                  registry)


# -- the MCP file: schema, command resolvability, listed tool names -----------------------------------------
def test_mcp_server_command_that_does_not_exist_is_refused(tmp_path, registry):
    path = servers(tmp_path, search={"command": "no-such-command-rlf"}, ok={"command": sys.executable})
    with pytest.raises(ConfigError, match=r"rlfactory.mcp .*'search': command 'no-such-command-rlf' is not on PATH"):
        check_plugins(RLFactoryConfig(mcp=path), registry)
    result = runner.invoke(app, ["check-config", f"rlfactory.mcp={path}"])
    assert result.exit_code == 2 and "no-such-command-rlf" in result.stderr
    disabled = servers(tmp_path, search={"command": "no-such-command-rlf", "disabled": True})
    check_plugins(RLFactoryConfig(mcp=disabled), registry)  # a disabled server is never started


def test_mcp_cwd_and_schema_are_checked(tmp_path, registry):
    path = servers(tmp_path, s={"command": sys.executable, "cwd": str(tmp_path / "missing")})
    with pytest.raises(ConfigError, match="cwd .* is not a directory"):
        check_plugins(RLFactoryConfig(mcp=path), registry)
    with pytest.raises(ConfigError, match="comand"):
        check_plugins(RLFactoryConfig(mcp=servers(tmp_path, s={"comand": "python"})), registry)


def test_mcp_tools_the_file_lists_are_checked_like_registry_tools(tmp_path, registry):
    path = servers(tmp_path, calc={"command": sys.executable, "tools": ["add"], "prefix": "calc."})
    check_plugins(RLFactoryConfig(tools=["calc.add", "knob"], mcp=path), registry)
    with pytest.raises(ConfigError, match=r"rlfactory.tools\[calc.ad\]: unknown tool 'calc.ad'.*mean 'calc.add'"):
        check_plugins(RLFactoryConfig(tools=["calc.ad"], mcp=path), registry)
    with pytest.raises(ConfigError, match=r"rlfactory.tools\[calc.add\]: 'calc.add' is an MCP tool; 'options'"):
        check_plugins(RLFactoryConfig(tools=[{"name": "calc.add", "options": {"x": 1}}], mcp=path), registry)
    unlisted = servers(tmp_path, any={"command": sys.executable})
    check_plugins(RLFactoryConfig(tools=["whatever"], mcp=unlisted), registry)  # known only once it starts


def test_every_error_is_a_project_error(registry):
    for section in ({"rollout": {"max_turns": 0}}, {"tools": ["nope"]}, {"parser": "nope"}):
        with pytest.raises(RLFactoryError):
            check_plugins(validate_section(section), registry)


def test_a_stateful_tool_as_ray_actor_is_refused_like_the_worker_refuses_it(rlfactory_register):
    """check-config binds each entry with the tool manager's own code, so the worker's refusal shows here."""
    from rlfactory_plugins.tools import StatefulTool

    class Counter(StatefulTool):
        def __init__(self) -> None:
            super().__init__(ToolSpec(name="counter"))

        async def open_session(self, ctx):
            return {"n": 0}

        async def acall_in(self, session, arguments):
            session["n"] += 1
            return str(session["n"])

        async def close_session(self, session, reason):
            return None

    class CounterPlugin:
        @hookimpl
        def register_tools(self, register):
            register(Counter())

    registry = rlfactory_register(CounterPlugin(), name="counter-pack")
    check_plugins(RLFactoryConfig(tools=["counter"]), registry)
    with pytest.raises(ConfigError, match=r"rlfactory.tools\[counter\]: 'counter' is a stateful tool.*ray_actor"):
        check_plugins(RLFactoryConfig(tools=[{"name": "counter", "ray_actor": True}]), registry)
