"""Config of the tools and the asyncio tool manager (``rlfactory.tools``, ``rlfactory.tool_manager``)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class ToolEntry(BaseModel):
    """One tool to enable. A bare string in the config is shorthand for ``{name: ...}``."""

    model_config = ConfigDict(extra="forbid")

    name: str
    options: dict[str, Any] = Field(default_factory=dict)
    timeout: float | None = Field(default=None, gt=0, description="seconds; overrides tool_manager.default_timeout")
    max_concurrency: int | None = Field(default=None, ge=1)
    cache: bool | None = None
    ray_actor: bool = Field(default=False, description="serve this tool from one shared Ray actor")


class ImageLimits(BaseModel):
    """Limits on the images tools return (``rlfactory.tool_manager.images``); over one is a ``tool_error``.

    Pixels are width x height of the decoded image, bytes its encoded size (PNG, JPEG, ...).
    Per-trajectory limits count the images of every ``ok`` call of one trajectory; they hold
    for rows whose calls run in a trajectory's sessions (rows with a stateful tool, such as the
    image pack's), per-call limits hold for every call.
    """

    model_config = ConfigDict(extra="forbid")

    max_per_call: int = Field(default=4, ge=0, description="images one call may return (0: tools may return none)")
    max_pixels_per_call: int = Field(default=16_777_216, ge=1, description="pixels of one call's images together")
    max_bytes_per_call: int = Field(default=16_777_216, ge=1, description="encoded bytes of one call's images")
    max_per_trajectory: int = Field(default=16, ge=0, description="images of one trajectory's calls together")
    max_pixels_per_trajectory: int = Field(default=67_108_864, ge=1)
    max_bytes_per_trajectory: int = Field(default=67_108_864, ge=1)


class ToolManagerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_concurrency: int = Field(default=256, ge=1, description="calls in flight at once, all tools together")
    default_timeout: float = Field(default=30.0, gt=0, description="seconds per call, sync tools included")
    retries: int = Field(default=2, ge=0, description="extra attempts for TransientToolError")
    retry_backoff: float = Field(default=0.2, ge=0, description="first backoff in seconds, doubled each retry")
    cache: bool = Field(default=False, description="cache results of every tool (per-tool 'cache' overrides)")
    cache_size: int = Field(default=10000, ge=1)
    max_output_chars: int = Field(default=8192, ge=64, description="longer outputs are cut with a marker")
    session_open_timeout_s: float = Field(
        default=60.0, gt=0, description="seconds to open a stateful tool's session (outside the call timeout)"
    )
    session_close_timeout_s: float = Field(
        default=10.0, gt=0, description="seconds for each of a session's state export and close"
    )
    max_open_sessions: int | None = Field(
        default=None, ge=1, description="sessions open at once in a worker, all tools together (None: no cap)"
    )
    max_state_chars: int = Field(
        default=65536, ge=2, description='a final tool state whose JSON is longer becomes {"_truncated": true, ...}'
    )
    images: ImageLimits = Field(default_factory=ImageLimits, description="limits on the images tools return")
