"""Check a call's arguments against the tool's schema before the tool runs.

A :class:`~rlfactory_plugins.tools.base.FunctionTool` (and anything else with a
``validate(arguments)`` method) validates with its own pydantic model, which also
coerces types; every other tool, MCP tools included, is checked with ``jsonschema``
against ``spec.parameters``.
"""

from __future__ import annotations

from typing import Any

import jsonschema
import pydantic

from rlfactory_plugins.tools.base import Tool, ToolError


class InvalidArguments(ToolError):
    """The arguments do not match the tool's schema (status ``invalid_args``)."""


def _compile(schema: dict[str, Any]) -> jsonschema.protocols.Validator:
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    try:
        cls.check_schema(schema)
    except jsonschema.SchemaError as e:
        raise InvalidArguments(f"the tool's own parameter schema is invalid: {e.message}") from None
    return cls(schema)


class ArgumentValidator:
    """Validates the arguments of one tool; build once per tool, call per tool call."""

    def __init__(self, tool: Tool) -> None:
        self.tool = tool
        custom = getattr(tool, "validate", None)
        self._custom = custom if callable(custom) else None
        self._schema = None if self._custom else _compile(tool.spec.parameters)

    def __call__(self, arguments: Any) -> dict[str, Any]:
        """Return the (possibly coerced) arguments or raise :class:`InvalidArguments`."""
        if arguments is None:
            arguments = {}
        if not isinstance(arguments, dict):
            raise InvalidArguments(f"arguments must be a JSON object, got {type(arguments).__name__}")
        if self._custom is not None:
            try:
                return self._custom(arguments)
            except pydantic.ValidationError as e:
                raise InvalidArguments(_pydantic_message(e)) from None
        assert self._schema is not None
        errors = sorted(self._schema.iter_errors(arguments), key=lambda err: list(err.absolute_path))
        if errors:
            raise InvalidArguments("; ".join(_jsonschema_message(err) for err in errors[:5]))
        return arguments


def _pydantic_message(e: pydantic.ValidationError) -> str:
    parts = []
    for err in e.errors(include_url=False):
        where = ".".join(str(p) for p in err["loc"]) or "arguments"
        if err["type"] == "extra_forbidden":
            parts.append(f"unexpected argument {where!r}")
        elif err["type"] == "missing":
            parts.append(f"missing required argument {where!r}")
        else:
            parts.append(f"{where}: {err['msg']} (got {err.get('input')!r})")
    return "; ".join(parts)


def _jsonschema_message(err: jsonschema.ValidationError) -> str:
    where = ".".join(str(p) for p in err.absolute_path)
    return f"{where}: {err.message}" if where else err.message
