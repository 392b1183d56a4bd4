"""Built-in tool-call parsers: hermes, search_r1, llama3_json."""

from rlfactory_plugins.hookspecs import hookimpl


@hookimpl
def register_parsers(register):
    from rlfactory_plugins.rollout import parsers

    for parser_cls in parsers.BUILTIN_PARSERS:
        register(parser_cls)
