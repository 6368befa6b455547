"""A warm process that forks the plugin's gateways and daemons (issue 16 item 5).

Why: starting ``python -m unipush_bridge.cli gateway`` or ``run`` costs ~0.5 s of
imports (aiohttp, pydantic, desktop-notifier) before anything listens; a test's fixture
set paid that twice. The zygote imports all of it once per pytest session; each child is
a fork of it (a real process with its own pid, process group, environment and log) that
runs the CLI's command exactly as the console script would.

Protocol on the zygote's stdin/stdout, one JSON line each way:
``{"argv": [...], "env": {...}, "log": PATH}`` -> ``{"pid": N}``. When its stdin closes
(the test session ended or died), it kills every child's process group and exits.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
from typing import Any

__all__ = ["Zygote", "zygote"]

#: Imported before the first fork (a failed import is left to the child to report).
PRELOAD = (
    "unipush_bridge.cli",
    "unipush_bridge.config",
    "unipush_bridge.runtime.daemon",
    "unipush_bridge.gateway.server",
    "desktop_notifier",
)


def _exec_in_place(path: Any, argv: Any) -> None:
    """The child's os.execv: ``run`` re-executes as ``-m unipush_bridge.runtime.daemon``;
    that module is loaded already, so run it in this process instead."""
    args = list(argv)
    if args[1:3] == ["-m", "unipush_bridge.runtime.daemon"]:
        from unipush_bridge.runtime.daemon import main

        os._exit(main(args[3:]))
    _real_execv(path, argv)


_real_execv = os.execv


def _child(req: dict[str, Any]) -> None:
    """In the forked child: a session of its own, its env and log, then the command."""
    os.setsid()
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    devnull = os.open(os.devnull, os.O_RDONLY)
    log = os.open(req["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    os.dup2(devnull, 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    for fd in (devnull, log):
        os.close(fd)
    os.environ.clear()
    os.environ.update(req["env"])
    sys.argv = ["unipush-bridge", *req["argv"]]
    os.execv = _exec_in_place  # type: ignore[assignment]  # `run` ends in execv
    code = 1
    try:
        from unipush_bridge.cli import main

        code = main(list(req["argv"]))
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def serve() -> int:
    import importlib

    for name in PRELOAD:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
    children: list[int] = []
    out = sys.stdout
    print(json.dumps({"ready": os.getpid()}), file=out, flush=True)
    for line in sys.stdin:
        req = json.loads(line)
        pid = os.fork()
        if pid == 0:
            _child(req)
        children.append(pid)
        print(json.dumps({"pid": pid}), file=out, flush=True)
    for pid in children:
        with contextlib.suppress(OSError):
            os.killpg(pid, signal.SIGKILL)
    return 0


class Zygote:
    """The pytest side: starts the zygote on first use, asks it for children."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[str] | None = None

    def _started(self) -> subprocess.Popen[str]:
        if self._proc is None or self._proc.poll() is not None:
            proc = subprocess.Popen(
                [sys.executable, "-m", "unipush_bridge.testing.zygote"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                start_new_session=True,
            )
            assert proc.stdout is not None
            if "ready" not in json.loads(proc.stdout.readline() or "{}"):
                raise RuntimeError("the unipush zygote did not start")
            self._proc = proc
        return self._proc

    def spawn(self, argv: list[str], env: dict[str, str], log: str) -> int:
        with self._lock:
            proc = self._started()
            assert proc.stdin is not None and proc.stdout is not None
            proc.stdin.write(json.dumps({"argv": argv, "env": env, "log": log}) + "\n")
            proc.stdin.flush()
            answer = json.loads(proc.stdout.readline() or "{}")
        if "pid" not in answer:
            raise RuntimeError("the unipush zygote died")
        return int(answer["pid"])

    def stop(self) -> None:
        with self._lock:
            if self._proc is not None:
                assert self._proc.stdin is not None
                self._proc.stdin.close()
                try:
                    self._proc.wait(5)
                except subprocess.TimeoutExpired:
                    self._proc.kill()
                    self._proc.wait()
                self._proc = None


_ZYGOTE: Zygote | None = None


def zygote() -> Zygote:
    """The session's zygote (started on first spawn, stopped at interpreter exit)."""
    global _ZYGOTE  # noqa: PLW0603
    if _ZYGOTE is None:
        import atexit

        _ZYGOTE = Zygote()
        atexit.register(_ZYGOTE.stop)
    return _ZYGOTE


if __name__ == "__main__":
    sys.exit(serve())
