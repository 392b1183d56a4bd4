"""Runs inside the sandbox's fresh interpreter, before the model's code; stdlib only.

The parent passes this file's source with ``-c`` and a JSON config as ``argv[1]``; the
code arrives on stdin. Order matters: join the pids cgroup and leave the network
namespace while still root, then drop to the sandbox uid, then set the rlimits, then
install the audit hook, then run the code. The first stderr line reports what was
enforced (the parent strips it).
"""

import ctypes
import json
import os
import resource
import sys
import traceback

MARKER = "\x00rlfactory-sandbox "
CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x10000000, 0x20000000, 0x40000000
AF_UNIX = 1
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
PATH_EVENTS = {"os.remove": 1, "os.rmdir": 1, "os.mkdir": 1, "os.chmod": 1, "os.chown": 1, "os.truncate": 1,
               "os.utime": 1, "os.rename": 2, "os.link": 2, "os.symlink": 2, "shutil.rmtree": 1}


def join_cgroup(procs_file):
    if not procs_file:
        return None
    with open(procs_file, "w") as f:
        f.write(str(os.getpid()))
    return "pids cgroup"


def isolate_network():
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNET) == 0:
        return "network namespace"
    if os.getuid() != 0 and libc.unshare(CLONE_NEWUSER | CLONE_NEWNET) == 0:
        return "user+network namespace"
    return None


def _relay(pid):
    """Wait for ``pid`` (reaping orphans meanwhile) and exit as it did; a signal becomes 128+N."""
    while True:
        done, status = os.waitpid(-1, 0)
        if done == pid:
            code = os.waitstatus_to_exitcode(status)
            os._exit(128 - code if code < 0 else code)


def enter_pid_namespace():
    """Run the code as pid 2 of a new pid namespace: it cannot see or signal host processes,
    and when the namespace's init (pid 1) exits the kernel kills everything left in it."""
    if ctypes.CDLL(None, use_errno=True).unshare(CLONE_NEWPID) != 0:
        return None
    init = os.fork()
    if init:
        _relay(init)
    runner = os.fork()
    if runner:
        _relay(runner)
    return "pid namespace"


def drop_privileges(uid, workdir):
    if uid is None:
        return None
    os.chown(workdir, uid, uid)
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)
    return uid


def set_limits(cfg, dropped):
    mb = 1024 * 1024
    limits = [
        (resource.RLIMIT_CPU, cfg["cpu_s"], cfg["cpu_s"] + 1),
        (resource.RLIMIT_AS, cfg["memory_mb"] * mb, cfg["memory_mb"] * mb),
        (resource.RLIMIT_FSIZE, cfg["max_file_mb"] * mb, cfg["max_file_mb"] * mb),
        (resource.RLIMIT_NOFILE, cfg["max_open_files"], cfg["max_open_files"]),
        (resource.RLIMIT_CORE, 0, 0),
    ]
    if dropped:  # RLIMIT_NPROC counts every process of the real uid: only meaningful for a fresh uid
        limits.append((resource.RLIMIT_NPROC, cfg["max_processes"], cfg["max_processes"]))
    for which, soft, hard in limits:
        resource.setrlimit(which, (soft, hard))


def install_audit_hook(workdir):
    root = os.path.realpath(workdir)

    def inside(path):
        try:
            real = os.path.realpath(os.fsdecode(path))
        except (TypeError, ValueError):
            return False
        return real == root or real.startswith(root + os.sep)

    def deny_path(path):
        raise PermissionError(f"python sandbox: only the working directory is writable, not {path!r}")

    def hook(event, args):
        if event == "open":
            path, mode, flags = args
            writes = (mode is not None and any(c in mode for c in "wax+")) or bool(flags and flags & WRITE_FLAGS)
            if writes and not isinstance(path, int) and not inside(path):
                deny_path(path)
        elif event in PATH_EVENTS:
            for path in args[: PATH_EVENTS[event]]:
                if not isinstance(path, int) and not inside(path):
                    deny_path(path)
        elif event == "socket.__new__" and args[1] != AF_UNIX:
            raise PermissionError("python sandbox: network access is disabled")
        elif event in ("socket.connect", "socket.bind", "socket.sendto") and isinstance(args[1], str | bytes):
            if not inside(args[1]):
                raise PermissionError("python sandbox: network access is disabled")
        elif event in ("socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyname_ex"):
            raise PermissionError("python sandbox: network access is disabled")

    sys.addaudithook(hook)


def run_code(code):
    filename = "<code>"
    import linecache

    linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)
    try:
        compiled = compile(code, filename, "exec")
        exec(compiled, {"__name__": "__main__", "__builtins__": __builtins__})
    except SystemExit:
        raise
    except BaseException as e:  # noqa: BLE001 - this is the model's exception, reported to it
        tb = e.__traceback__.tb_next if e.__traceback__ is not None else None
        sys.stdout.flush()
        traceback.print_exception(type(e), e, tb)
        sys.exit(1)


def main():
    cfg = json.loads(sys.argv[1])
    code = sys.stdin.read()
    sys.stdin.close()
    report = {"cgroup": join_cgroup(cfg["cgroup_procs"]), "network": isolate_network()}
    report["pids"] = enter_pid_namespace()
    report["uid"] = drop_privileges(cfg["uid"], os.getcwd())
    set_limits(cfg, report["uid"] is not None)
    if cfg["audit_hooks"]:
        install_audit_hook(os.getcwd())
    sys.stderr.write(MARKER + json.dumps(report) + "\n")
    sys.stderr.flush()
    del cfg, report
    run_code(code)


main()
