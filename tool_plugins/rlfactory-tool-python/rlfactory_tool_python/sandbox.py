"""Run untrusted Python in a separate, limited, throw-away process.

One run = one fresh ``sys.executable -I -B`` interpreter (isolated mode: no ``PYTHON*``
environment variables, no user site, the work dir not on ``sys.path``; ``-S`` is added
when ``site_packages`` is off) started with ``asyncio.create_subprocess_exec`` in a new
session, in a fresh temporary work dir that is deleted afterwards. :mod:`.child` sets it
up before the code runs. What is enforced on Linux:

- kernel: RLIMIT_CPU, RLIMIT_AS, RLIMIT_FSIZE, RLIMIT_NOFILE, no core dumps; wall time
  (the parent kills the run); as root, a private network namespace (no interface but a
  down loopback), a private pid namespace (host processes can be neither seen by pid
  nor signalled; ``/proc`` is still the host's) and a pids cgroup capping processes+threads; as root with an
  interpreter an unprivileged user can read, a fresh uid per run (so file permissions
  stop writes outside the work dir and RLIMIT_NPROC applies). As non-root, an
  unprivileged user+network namespace where the kernel allows it.
- cleanup: on exit or timeout every process of the run is SIGKILLed — its process
  group, its descendants (psutil), the members of its cgroup and the processes of its
  uid — then the work dir is removed.
- best effort (in-interpreter audit hook, which ctypes can bypass): no sockets except
  AF_UNIX inside the work dir, no name lookups, no writes outside the work dir.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import shutil
import signal
import sys
import sysconfig
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from rlfactory_tool_python import cgroup
from rlfactory_tool_python.limits import SandboxLimits

CHILD_SOURCE = (Path(__file__).with_name("child.py")).read_text()
MARKER = "\x00rlfactory-sandbox "
UID_BASE, UID_SPAN = 1_000_000_000, 1_000_000_000
SETUP_FAILED = 113


@dataclass
class RunOutcome:
    """What one sandboxed run did."""

    stdout: str
    stderr: str
    returncode: int | None
    pid: int
    seconds: float
    wall_timeout: bool = False
    cpu_limit: bool = False
    truncated: bool = False
    enforced: dict = field(default_factory=dict)
    """What the child reported: ``cgroup``, ``network``, ``uid``."""
    uid: int | None = None


def _world_traversable(path: Path) -> bool:
    """Whether an arbitrary unprivileged user can reach and read ``path``."""
    path = path.resolve()
    for p in [path, *path.parents]:
        try:
            mode = p.stat().st_mode
        except OSError:
            return False
        if p != path and not mode & 0o001:
            return False
    return bool(path.stat().st_mode & 0o004)


def _sandbox_uid(limits: SandboxLimits) -> int | None:
    if not limits.drop_privileges or os.geteuid() != 0:
        return None
    needed = [Path(sys.executable), Path(sysconfig.get_path("stdlib"))]
    if limits.site_packages:
        needed.append(Path(sysconfig.get_path("purelib")))
    if not all(_world_traversable(p) for p in needed):
        return None  # e.g. a pyenv under /root (0700): the code could not even import the stdlib
    return UID_BASE + secrets.randbelow(UID_SPAN)


def _child_env(workdir: str) -> dict[str, str]:
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": workdir,
        "TMPDIR": workdir,
        "LANG": "C.UTF-8",
        "MPLBACKEND": "Agg",
        "MPLCONFIGDIR": workdir,
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }


async def _read_capped(stream: asyncio.StreamReader, cap: int) -> tuple[bytes, bool]:
    """Keep the first ``cap`` bytes and drain the rest, so the child never blocks on a full pipe."""
    kept, truncated = bytearray(), False
    while chunk := await stream.read(65536):
        room = cap - len(kept)
        if len(chunk) > room:
            truncated = True
        kept += chunk[: max(room, 0)]
    return bytes(kept), truncated


def _run_processes(pid: int, group: cgroup.PidsCgroup | None, uid: int | None) -> list[psutil.Process]:
    found: dict[int, psutil.Process] = {}
    with contextlib.suppress(psutil.Error):
        root = psutil.Process(pid)
        for p in [root, *root.children(recursive=True)]:
            found[p.pid] = p
    for other in group.pids() if group else []:
        with contextlib.suppress(psutil.Error):
            found[other] = psutil.Process(other)
    if uid is not None:
        for p in psutil.process_iter(["uids"]):
            if p.info["uids"] is not None and p.info["uids"].real == uid:
                found[p.pid] = p
    return [p for p in found.values() if p.pid != os.getpid()]


def kill_run(pid: int, group: cgroup.PidsCgroup | None, uid: int | None) -> None:
    """SIGKILL every process of the run, until none is left (a fork bomb keeps forking)."""
    for _ in range(50):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
        victims = [p for p in _run_processes(pid, group, uid) if _alive(p)]
        if not victims:
            return
        for p in victims:
            with contextlib.suppress(psutil.Error):
                p.kill()
        # The run's own process is reaped by asyncio; waiting on it here would steal its status.
        psutil.wait_procs([p for p in victims if p.pid != pid], timeout=0.2)


def _alive(p: psutil.Process) -> bool:
    try:
        return p.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _split_report(stderr: str) -> tuple[dict, str]:
    if stderr.startswith(MARKER):
        line, _, rest = stderr.partition("\n")
        with contextlib.suppress(ValueError):
            return json.loads(line[len(MARKER) :]), rest
    return {}, stderr


async def run_sandboxed(code: str, limits: SandboxLimits | None = None) -> RunOutcome:
    """Run ``code`` under ``limits``; always leaves no process and no work dir behind."""
    limits = limits or SandboxLimits()
    workdir = tempfile.mkdtemp(prefix="rlf_python_")
    uid = _sandbox_uid(limits)
    group = cgroup.create(limits.max_processes)
    config = {
        "cpu_s": limits.cpu_s,
        "memory_mb": limits.memory_mb,
        "max_file_mb": limits.max_file_mb,
        "max_open_files": limits.max_open_files,
        "max_processes": limits.max_processes,
        "audit_hooks": limits.audit_hooks,
        "uid": uid,
        "cgroup_procs": str(group.procs_file) if group else None,
    }
    flags = ["-I", "-B"] + ([] if limits.site_packages else ["-S"])
    cap = limits.max_output_chars * 4  # bytes; cut to characters after decoding
    start = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, *flags, "-c", CHILD_SOURCE, json.dumps(config),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        cwd=workdir, env=_child_env(workdir), start_new_session=True,
    )  # fmt: skip
    readers = [asyncio.ensure_future(_read_capped(s, cap)) for s in (proc.stdout, proc.stderr)]
    wall_timeout = False
    try:
        proc.stdin.write(code.encode("utf-8", "surrogatepass"))
        with contextlib.suppress(ConnectionError):
            await proc.stdin.drain()
        proc.stdin.close()
        try:
            await asyncio.wait_for(proc.wait(), timeout=limits.wall_s)
        except asyncio.TimeoutError:
            wall_timeout = True
    finally:
        # Runs on cancellation too (the tool manager's own timeout): nothing may outlive the call.
        await asyncio.to_thread(kill_run, proc.pid, group, uid)
        with contextlib.suppress(ProcessLookupError):
            await proc.wait()
        done, pending = await asyncio.wait(readers, timeout=2.0)
        for task in pending:
            task.cancel()
        if group is not None:
            group.remove()
        shutil.rmtree(workdir, ignore_errors=True)
    (out, out_cut), (err, err_cut) = (t.result() if t in done else (b"", True) for t in readers)
    enforced, stderr = _split_report(err.decode("utf-8", "replace"))
    stdout = out.decode("utf-8", "replace")
    truncated = out_cut or err_cut or len(stdout) > limits.max_output_chars or len(stderr) > limits.max_output_chars
    rc = proc.returncode
    if enforced.get("pids") and rc is not None and 128 < rc < 128 + 65:
        rc = 128 - rc  # the namespace's init relays "killed by signal N" as exit status 128+N
    return RunOutcome(
        stdout=stdout[: limits.max_output_chars],
        stderr=stderr[: limits.max_output_chars],
        returncode=rc,
        pid=proc.pid,
        seconds=time.monotonic() - start,
        wall_timeout=wall_timeout,
        cpu_limit=not wall_timeout and rc in (-signal.SIGXCPU, -signal.SIGKILL),
        truncated=truncated,
        enforced=enforced,
        uid=uid,
    )
