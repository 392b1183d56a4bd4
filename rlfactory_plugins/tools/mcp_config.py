"""The MCP servers file (``rlfactory.mcp``): the standard ``mcpServers`` shape, in JSON or YAML.

.. code-block:: json

    {"mcpServers": {
        "search": {"command": "python", "args": ["search_server.py"], "env": {"API_KEY": "..."}},
        "calc":   {"url": "http://127.0.0.1:8000/mcp", "prefix": "calc."}
    }}

A server has either ``command`` (stdio; ``args``, ``env``, ``cwd``) or ``url`` (streamable
HTTP, or SSE when ``type`` is ``sse`` or the URL ends in ``/sse``; ``headers``).
rlfactory's own keys: ``prefix`` (prepended to the server's tool names, for clashes),
``tools`` (expose only these), ``timeout`` / ``max_concurrency`` (defaults for the
server's tools), ``startup_timeout``, ``stderr`` (``inherit``, ``devnull`` or a file to
append to), ``disabled``.

``env`` and ``headers`` values are secrets: they are stored as ``SecretStr`` and every
text that leaves this package (errors, logs, tool output) passes through :func:`redact`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import pydantic
import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from rlfactory_plugins.errors import ConfigError

Transport = Literal["stdio", "streamable_http", "sse"]
_TYPE_ALIASES = {"http": "streamable_http", "streamable-http": "streamable_http", "streamableHttp": "streamable_http"}

#: secrets shorter than this are not redacted (a value like "1" would blank out every digit)
MIN_SECRET_LEN = 4


class MCPServerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    command: str | None = None
    args: list[str] = Field(default_factory=list)
    env: dict[str, SecretStr] = Field(default_factory=dict)
    cwd: str | None = None
    url: str | None = None
    headers: dict[str, SecretStr] = Field(default_factory=dict)
    type: Transport | None = Field(default=None, description="transport; inferred from command/url when absent")
    prefix: str = ""
    tools: list[str] | None = Field(default=None, description="expose only these tools of the server")
    timeout: float | None = Field(default=None, gt=0)
    max_concurrency: int | None = Field(default=None, ge=1)
    startup_timeout: float = Field(default=30.0, gt=0)
    stderr: str = Field(default="inherit", description="a stdio server's stderr: 'inherit', 'devnull' or a file path")
    disabled: bool = False

    @model_validator(mode="before")
    @classmethod
    def _aliases(cls, data: Any) -> Any:
        if isinstance(data, dict):
            data = dict(data)
            if "transport" in data and "type" not in data:
                data["type"] = data.pop("transport")
            data["type"] = _TYPE_ALIASES.get(data.get("type"), data.get("type"))
        return data

    @model_validator(mode="after")
    def _one_target(self) -> MCPServerConfig:
        if bool(self.command) == bool(self.url):
            raise ValueError("give either 'command' (a stdio server) or 'url' (an HTTP server), not both or neither")
        if self.type is None:
            if self.command:
                self.type = "stdio"
            else:
                self.type = "sse" if self.url.rstrip("/").endswith("/sse") else "streamable_http"
        if (self.type == "stdio") != bool(self.command):
            raise ValueError(f"type {self.type!r} does not match {'command' if self.command else 'url'!r}")
        return self

    def secrets(self) -> list[str]:
        values = [v.get_secret_value() for v in (*self.env.values(), *self.headers.values())]
        return [v for v in values if len(v) >= MIN_SECRET_LEN]

    def describe(self) -> str:
        """Where the server is, safe to print (no env, no headers)."""
        return " ".join([self.command or "", *self.args]) if self.command else str(self.url)


class MCPConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mcpServers: dict[str, MCPServerConfig] = Field(default_factory=dict)  # noqa: N815 - the standard key

    def enabled(self) -> dict[str, MCPServerConfig]:
        return {name: server for name, server in self.mcpServers.items() if not server.disabled}

    def secrets(self) -> list[str]:
        return [s for server in self.mcpServers.values() for s in server.secrets()]


def redact(text: str, secrets: list[str]) -> str:
    """Replace every secret value in ``text`` with ``***``."""
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def parse_mcp_config(data: Any, source: str = "rlfactory.mcp") -> MCPConfig:
    if not isinstance(data, dict) or "mcpServers" not in data:
        raise ConfigError(f'{source}: expected a mapping with an "mcpServers" key, e.g. {{"mcpServers": {{...}}}}')
    try:
        return MCPConfig.model_validate(data)
    except pydantic.ValidationError as e:
        lines = []
        for err in e.errors(include_url=False, include_input=False):
            where = ".".join(str(p) for p in err["loc"])
            lines.append(f"{where}: {err['msg']}")
        allowed = ", ".join(sorted(MCPServerConfig.model_fields))
        raise ConfigError(f"{source}: invalid MCP servers file:\n  " + "\n  ".join(lines) + f"\n(server keys: {allowed})") from None


def load_mcp_config(path: str | Path) -> MCPConfig:
    """Read an ``mcpServers`` file (``.json``, ``.yaml`` or ``.yml``)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"rlfactory.mcp: no such file {str(path)!r}; point it at an mcpServers JSON or YAML file")
    text = path.read_text()
    try:
        data = yaml.safe_load(text) if path.suffix in (".yaml", ".yml") else json.loads(text)
    except (json.JSONDecodeError, yaml.YAMLError) as e:
        raise ConfigError(f"rlfactory.mcp: {path} is not valid {'YAML' if path.suffix != '.json' else 'JSON'}: {e}") from None
    return parse_mcp_config(data, str(path))
