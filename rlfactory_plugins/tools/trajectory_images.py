"""Per-trajectory image limits: each trajectory's tool images counted against
``rlfactory.tool_manager.images`` (``max_per_trajectory`` and the like), keyed on its sessions."""

from __future__ import annotations

import weakref

from rlfactory_plugins.config.tools import ImageLimits
from rlfactory_plugins.tools.base import ToolResult, ToolStatus
from rlfactory_plugins.tools.images import ImageBudget, ImageError
from rlfactory_plugins.tools.session import TrajectorySessions

__all__ = ["TrajectoryImageBudgets"]


class TrajectoryImageBudgets:
    """One :class:`~rlfactory_plugins.tools.images.ImageBudget` per trajectory, gone with its sessions."""

    def __init__(self, limits: ImageLimits) -> None:
        self._limits = limits
        self._budgets: weakref.WeakKeyDictionary[TrajectorySessions, ImageBudget] = weakref.WeakKeyDictionary()

    def charge(self, result: ToolResult, sessions: TrajectorySessions | None) -> ToolResult:
        """Count an ok result's images against its trajectory's limits; over one, it becomes ``tool_error``."""
        if not result.images or sessions is None:
            return result
        budget = self._budgets.get(sessions)
        if budget is None:
            budget = self._budgets[sessions] = ImageBudget(self._limits)
        try:
            budget.charge(result.images)
        except ImageError as e:
            return result.model_copy(update={"status": ToolStatus.tool_error, "output": "", "images": [],
                                             "error": str(e), "truncated": False})
        return result
