"""Start a stdio MCP server that dies with its parent: ``python -m ... mcp_launcher CMD ARGS...``.

On Linux it asks the kernel (``prctl(PR_SET_PDEATHSIG, SIGTERM)``) to send the server a
SIGTERM when the process that spawned it dies, even by SIGKILL, then ``exec``s the
server in place (same PID, so ``ps`` shows the real command). Elsewhere it just execs.
This backs up :meth:`ToolManager.aclose` and the ``atexit`` sweep, which cannot run
when a Ray worker is killed hard.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import sys

PR_SET_PDEATHSIG = 1


def _die_with_parent(parent: int) -> None:
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def main(argv: list[str]) -> None:
    if not argv:
        sys.exit("usage: python -m rlfactory_plugins.tools.mcp_launcher COMMAND [ARGS...]")
    _die_with_parent(int(os.environ.get("RLFACTORY_MCP_PARENT", os.getppid())))
    command = shutil.which(argv[0]) or argv[0]
    try:
        os.execv(command, [argv[0], *argv[1:]])
    except OSError as e:
        sys.exit(f"cannot start MCP server command {argv[0]!r}: {e}")


if __name__ == "__main__":
    main(sys.argv[1:])
