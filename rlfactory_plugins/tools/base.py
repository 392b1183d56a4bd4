"""The typed tool model: what a tool is, what calling it returns."""

from __future__ import annotations

import inspect
import json
from collections.abc import Awaitable, Callable, Mapping
from enum import Enum
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, SerializerFunctionWrapHandler, model_serializer

from rlfactory_plugins.errors import PluginError
from rlfactory_plugins.pluggable import Pluggable, check_name, parameters_model
from rlfactory_plugins.tools.threads import run_in_thread


class ToolSpec(BaseModel):
    """What the model is told about a tool."""

    model_config = ConfigDict(frozen=True)

    name: str
    description: str = ""
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})

    def openai_schema(self) -> dict[str, Any]:
        """The OpenAI function schema chat templates render (``tools=[...]``)."""
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": self.parameters},
        }


class ToolStatus(str, Enum):
    ok = "ok"
    timeout = "timeout"
    invalid_args = "invalid_args"
    unknown_tool = "unknown_tool"
    tool_error = "tool_error"
    crashed = "crashed"


class ToolError(Exception):
    """Raise from a tool to report a failure the model should see (status ``tool_error``)."""


class TransientToolError(ToolError):
    """Raise from a tool for a failure worth retrying (rate limit, dropped connection)."""


class ToolCrashed(ToolError):
    """The tool's backend died mid-call (status ``crashed``), e.g. an MCP server process."""


class ImageRef(BaseModel):
    """One image a tool returned, decoded and checked (:mod:`rlfactory_plugins.tools.images`).

    The encoded bytes stay in memory for the rollout (:attr:`data`) but are never serialised:
    a dump or a Ray hop of the JSON carries this reference (size, type, content hash), and
    trajectory dumps write the bytes once to ``images/<sha256>.<ext>`` beside them.
    """

    model_config = ConfigDict(frozen=True)

    mime_type: str
    """Of the decoded image (``image/png``), whatever the tool or server declared."""
    width: int
    height: int
    nbytes: int
    """Encoded size in bytes."""
    sha256: str
    """Hex SHA-256 of the encoded bytes: the reference dumps keep."""
    source: Literal["pil", "bytes", "path", "mcp"]
    """What the tool returned: a PIL image (encoded as PNG), encoded bytes, a file path, MCP ``ImageContent``."""
    uri: str | None = None
    """The file a ``path`` image was read from."""
    _data: bytes | None = PrivateAttr(default=None)

    @property
    def pixels(self) -> int:
        return self.width * self.height

    @property
    def format(self) -> str:
        """``png``, ``jpeg``, ...: the mime subtype."""
        return self.mime_type.split("/", 1)[-1]

    @property
    def filename(self) -> str:
        """Where a trajectory dump writes the bytes, relative to its directory's ``images/``."""
        return f"{self.sha256}.{self.format}"

    @property
    def data(self) -> bytes:
        """The encoded bytes. Raises ``LookupError`` for a reference read back from a dump."""
        if self._data is None:
            raise LookupError(f"image {self.sha256[:12]} holds no bytes (read from a dump: open images/{self.filename})")
        return self._data

    def text(self) -> str:
        """What a text-only model reads in place of the image: ``[image 640x480 png]``."""
        return f"[image {self.width}x{self.height} {self.format}]"


class ToolResult(BaseModel):
    """Outcome of one tool call, as rewards and trajectory dumps see it."""

    name: str
    arguments: dict[str, Any] | None = None
    status: ToolStatus = ToolStatus.ok
    output: str = ""
    error: str | None = None
    latency_s: float = 0.0
    attempts: int = 1
    cached: bool = False
    truncated: bool = False
    images: list[ImageRef] = Field(default_factory=list)
    """Images of an ``ok`` call, in order; ``output`` holds each one's :meth:`ImageRef.text` where it came."""

    @model_serializer(mode="wrap")
    def _omit_no_images(self, handler: SerializerFunctionWrapHandler) -> Any:
        data = handler(self)
        if not self.images and isinstance(data, dict):  # text results dump exactly as before images existed
            data.pop("images", None)
        return data

    @property
    def ok(self) -> bool:
        return self.status is ToolStatus.ok

    def render(self) -> str:
        """The observation text the model sees for this call (images as their :meth:`ImageRef.text`)."""
        if self.ok:
            return self.output
        return f"[{self.status.value}] {self.name}: {self.error or 'failed'}"

    def parts(self) -> list[str | ImageRef]:
        """The observation as text and images in order: :meth:`render` with each image's text replaced by
        the image itself (what a vision-language model's processor takes; text-only models read :meth:`render`).

        Each image is placed at the first occurrence of its :meth:`ImageRef.text` after the previous
        one; an image whose text is not found (cut by a caller) goes last.
        """
        text, out, at, unplaced = self.render(), [], 0, []
        for image in self.images if self.ok else ():
            found = text.find(image.text(), at)
            if found < 0:
                unplaced.append(image)
                continue
            out += [text[at:found], image]
            at = found + len(image.text())
        out.append(text[at:])
        return [p for p in [*out, *unplaced] if not isinstance(p, str) or p]


class Tool(Pluggable["Tool"]):
    """A named, typed, async-callable tool.

    Subclass it (implement :meth:`acall`) or use the :func:`tool` decorator on a plain
    function. ``Options`` is the pydantic model of the tool's config options
    (``rlfactory.tools[].options``); :meth:`bind` returns a configured copy (made by
    :meth:`with_options`, which a tool with ``Options`` implements).
    """

    kind = "tool"
    section = "rlfactory.tools"

    #: per-tool defaults the tool manager honours unless the config overrides them
    timeout: float | None = None
    max_concurrency: int | None = None
    cacheable: bool = False
    #: True for a :class:`~rlfactory_plugins.tools.session.StatefulTool`: its calls in one trajectory share a session
    stateful: ClassVar[bool] = False

    def __init__(self, spec: ToolSpec) -> None:
        check_name(self.kind, spec.name)
        self.spec = spec

    # the spec is the source: a configured copy may describe itself differently (python's limits)
    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def description(self) -> str:
        return self.spec.description

    def bind(self, options: Mapping[str, Any] | None) -> Tool:
        """A tool configured with ``options`` (validated by ``Options``); the tool itself when there are none.

        Raises :class:`OptionsError` with one ``rlfactory.tools[NAME].options.KEY: ...`` line per problem.
        """
        if not options:  # as registered: Options' defaults are the tool's own, nothing to validate
            return self
        return super().bind(options)

    def _bind(self, options: BaseModel | None) -> Tool:
        return self if options is None else self.with_options(options)

    def configure(self, options: Mapping[str, Any] | None) -> Tool:
        """:meth:`bind` under the name packs and older code use."""
        return self.bind(options)

    def with_options(self, options: BaseModel) -> Tool:  # pragma: no cover - overridden by tools with Options
        raise NotImplementedError(f"tool {self.name!r} declares Options but does not implement with_options()")

    async def acall(self, arguments: dict[str, Any]) -> str | Any:
        """Run the tool. Return text (or anything JSON-serialisable, rendered as JSON)."""
        raise NotImplementedError

    async def aclose(self) -> None:
        """Release resources (processes, sessions). Called once on shutdown."""


def _schema_for(fn: Callable[..., Any]) -> tuple[type[BaseModel], dict[str, Any]]:
    model = parameters_model(fn, f"{fn.__name__}_args", what="tool function")
    schema = model.model_json_schema()
    schema.pop("title", None)
    for prop in schema.get("properties", {}).values():
        prop.pop("title", None)
    schema.setdefault("properties", {})
    return model, schema


class FunctionTool(Tool):
    """A tool made from a plain typed function (see :func:`tool`)."""

    def __init__(
        self,
        fn: Callable[..., Any] | Callable[..., Awaitable[Any]],
        *,
        name: str | None = None,
        description: str | None = None,
        timeout: float | None = None,
        max_concurrency: int | None = None,
        cache: bool = False,
    ) -> None:
        self.fn = fn
        self.args_model, schema = _schema_for(fn)
        doc = inspect.getdoc(fn) or ""
        super().__init__(ToolSpec(name=name or fn.__name__, description=description or doc, parameters=schema))
        self.is_async = inspect.iscoroutinefunction(fn)
        self.timeout, self.max_concurrency, self.cacheable = timeout, max_concurrency, cache

    def validate(self, arguments: dict[str, Any]) -> dict[str, Any]:
        return self.args_model.model_validate(arguments).model_dump()

    async def acall(self, arguments: dict[str, Any]) -> Any:
        if self.is_async:
            return await self.fn(**arguments)
        # A sync tool runs in its own daemon thread (not the loop's default executor), so it never
        # blocks the rollout's event loop and a hung one cannot starve other calls (see threads.py).
        return await run_in_thread(self.fn, **arguments)


def tool(
    fn: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    description: str | None = None,
    timeout: float | None = None,
    max_concurrency: int | None = None,
    cache: bool = False,
) -> Any:
    """Turn a typed function (sync or async) into a :class:`Tool`.

    >>> @tool
    ... def add(a: int, b: int) -> int:
    ...     "Add two integers."
    ...     return a + b
    """

    def wrap(f: Callable[..., Any]) -> FunctionTool:
        return FunctionTool(
            f, name=name, description=description, timeout=timeout, max_concurrency=max_concurrency, cache=cache
        )

    return wrap(fn) if fn is not None else wrap


def as_tool(obj: Any, name: str | None = None) -> Tool:
    """Coerce what a plugin registered into a :class:`Tool`."""
    if isinstance(obj, Tool):
        if name and name != obj.name:
            raise PluginError(f"tool {obj.name!r} registered under a different name {name!r}; rename the Tool's spec")
        return obj
    if callable(obj) and not isinstance(obj, type):
        return FunctionTool(obj, name=name)
    raise PluginError(f"register() expects a Tool or a function, got {obj!r}")


def render_output(value: Any) -> str:
    """How a tool's return value becomes observation text."""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return str(value)
