"""BFCL's API functions as rlfactory stateful tools: one tool per function, named ``Class_method``
(BFCL's ``Class.method`` path with the ``_`` BFCL itself uses for OpenAI-compatible function names,
so ``cd`` or ``add`` never clash with another pack's tools), all in
one session group (``bfcl``): a trajectory's calls run on the instances of its row's entry, held by
the ``bfcl`` environment's episode for that trajectory.

A call's JSON arguments are checked against the function's schema (converted from BFCL's doc)
and against :func:`rlfactory_env_bfcl.calls.check_value`; only then is the call string built and
handed to BFCL's executor. Its result is what BFCL shows a model (a string, or a dict as JSON,
``Error during execution: ...`` on an exception), returned as the observation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import jsonschema

from rlfactory_plugins.tools import ToolSpec
from rlfactory_plugins.tools.session import SessionContext, StatefulTool
from rlfactory_plugins.tools.validation import InvalidArguments

from rlfactory_env_bfcl.backend import CLASSES, function_docs
from rlfactory_env_bfcl.calls import build_call, qualified

if TYPE_CHECKING:
    from rlfactory_env_bfcl.environment import BFCLEnvironment
    from rlfactory_env_bfcl.episode import Episode

__all__ = ["GROUP", "BFCLTool", "convert_schema", "qualified", "tool_schema", "tools"]

#: the session group of every BFCL tool (one session per trajectory: its episode)
GROUP = "bfcl"
_TYPES = {"dict": "object", "float": "number", "tuple": "array"}


def convert_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A BFCL parameter schema (``dict``/``float``/``tuple`` types, ``any``) as JSON Schema."""
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "type":
            if value != "any":
                out["type"] = _TYPES.get(value, value)
        elif key == "properties":
            out["properties"] = {name: convert_schema(prop) for name, prop in value.items()}
        elif key == "items":
            out["items"] = convert_schema(value)
        else:
            out[key] = value
    return out


def tool_schema(class_name: str, doc: dict[str, Any]) -> ToolSpec:
    parameters = convert_schema(doc["parameters"])
    parameters.setdefault("properties", {})
    parameters["additionalProperties"] = False
    return ToolSpec(name=qualified(class_name, doc["name"]), description=doc["description"], parameters=parameters)


class BFCLTool(StatefulTool):
    """One function of one BFCL class, run on the trajectory's episode."""

    def __init__(self, class_name: str, doc: dict[str, Any], environment: BFCLEnvironment) -> None:
        super().__init__(tool_schema(class_name, doc))
        self.class_name, self.method = class_name, doc["name"]
        self.environment = environment
        self._schema = jsonschema.Draft202012Validator(self.spec.parameters)

    @property
    def session_group(self) -> str:
        return GROUP

    def validate(self, arguments: dict[str, Any]) -> dict[str, Any]:
        """The schema, then the call-string checks: anything refused never reaches BFCL (``invalid_args``)."""
        errors = sorted(self._schema.iter_errors(arguments), key=lambda e: list(e.absolute_path))
        if errors:
            raise InvalidArguments("; ".join(
                f"{'.'.join(map(str, e.absolute_path)) or 'arguments'}: {e.message}" for e in errors[:5]
            ))
        build_call(self.method, arguments)
        return arguments

    async def open_session(self, ctx: SessionContext) -> Episode:
        return self.environment.episodes.get(ctx.key)

    async def acall_in(self, session: Episode, arguments: dict[str, Any]) -> str:
        return session.execute(build_call(self.method, arguments))

    async def acall(self, arguments: dict[str, Any]) -> str:
        """Outside a trajectory (``rlfactory tools call``, the conformance kit): a fresh instance from
        BFCL's default state, released after the call."""
        from rlfactory_env_bfcl.episode import Entry, Episode

        entry = Entry(id="oneshot_0", question=[], involved_classes=[self.class_name])
        episode = Episode(entry)
        try:
            return episode.execute(build_call(self.method, self.validate(arguments)))
        finally:
            episode.purge()


def tools(environment: BFCLEnvironment) -> list[BFCLTool]:
    """Every function of every offered class, bound to ``environment``'s episodes."""
    return [BFCLTool(c, doc, environment) for c in CLASSES for doc in function_docs(c)]
