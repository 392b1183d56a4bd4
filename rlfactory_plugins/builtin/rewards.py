"""Built-in rewards that read the tool record: tool verification."""

from rlfactory_plugins.hookspecs import hookimpl


@hookimpl
def register_rewards(register):
    from rlfactory_plugins.rewards import tool_verify

    register(tool_verify.ToolVerifyReward())
