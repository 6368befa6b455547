"""Local commands as whole processes (issue 13): `unipush-bridge notify --content x`
(until the daemon has the notification server's answer) and `cid` against a running
daemon, beside `notify-send x` to the same server and `python -c pass`, in the same run.

    .venv/bin/python tests/bench/bench_cli_startup.py [--rounds 20]

Each round runs the four commands in turn (so a drift in the machine's speed hits all
of them alike); each process is timed from fork to reaping, and its peak memory is
the kernel's ru_maxrss of that child. Prints each command's median, min and max, its
median ratio to `python -c pass`, and the targets of issue 13. Two more rows split
the time: "imports only" is a process that starts and imports what `cid` imports
(the console script's re included) and stops; "call, warm" is the same request made
from this already-running process, so it is the socket round trip and the daemon's work.
"""

from __future__ import annotations

import argparse
import compileall
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.notifstack import DunstStack
from tests.procs import DaemonProc

#: Targets on the reference machine (issue 13 item 3): median ms, peak MB.
TARGETS = {"cid": 40.0, "notify": 50.0}
PEAK_MB = 20.0
PACKAGE = Path(__file__).resolve().parents[2] / "daemon" / "unipush_bridge"
#: GNU time measures each command's own peak memory.
TIME = Path("/usr/bin/time").is_file()


def command() -> list[str]:
    """What a user runs: the console script beside this interpreter, if installed."""
    script = Path(sys.executable).parent / "unipush-bridge"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "unipush_bridge.launch"]


#: What `cid` imports before it connects (the console script imports re itself).
IMPORTS = "import re, json, unipush_bridge.launch, unipush_bridge.localcall, unipush_bridge.logs"


def warm_calls(
    sock: Path,
    method: str,
    params: dict[str, object],
    n: int,
    between: Callable[[], object] = lambda: None,
) -> list[float]:
    """ms per request from a process that has everything loaded already."""
    from unipush_bridge.localcall import DaemonCall

    call = DaemonCall(sock)
    times = []
    for _ in range(n):
        between()  # as in the rounds: the server never redraws a stack
        start = time.perf_counter()
        result = call(method, params)
        times.append((time.perf_counter() - start) * 1000)
        assert str(result["errMsg"]).endswith(":ok"), result
    return times


def timed(argv: list[str], env: Mapping[str, str]) -> tuple[float, float, int]:
    """Wall ms from spawn to reaping, peak MB, exit code. The peak is GNU time's %M
    for the command: a child forked from this (large) process would report this
    process's pages as its own maximum. Every command pays the same small launcher."""
    with tempfile.NamedTemporaryFile("r") as out:
        full = ["/usr/bin/time", "-f", "%M", "-o", out.name, *argv] if TIME else argv
        path = shutil.which(full[0]) or full[0]
        devnull = [(os.POSIX_SPAWN_OPEN, fd, os.devnull, os.O_WRONLY, 0) for fd in (1, 2)]
        start = time.perf_counter()
        pid = os.posix_spawn(path, full, dict(env), file_actions=devnull)
        _, status, _ = os.wait4(pid, 0)
        wall = (time.perf_counter() - start) * 1000
        peak = int(out.read().split()[-1]) / 1024 if TIME else float("nan")
    return wall, peak, os.waitstatus_to_exitcode(status)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    reason = DunstStack.ensure_tools(install=True)
    if reason:
        sys.exit(f"no notification stack: {reason}")
    with tempfile.TemporaryDirectory() as tmp, DunstStack(monitor=False) as stack:
        env = {**stack.env, "UNIPUSH_BRIDGE_SLEEP_BUS": "off"}
        # An installed package has its bytecode (pip compiles it); a checkout run with
        # PYTHONDONTWRITEBYTECODE would compile every module on every start instead.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        compileall.compile_dir(str(PACKAGE), quiet=1)
        daemon = DaemonProc(Path(tmp) / "d", None, env=env, extra=["--log-level", "warning"])
        daemon.start()
        sock = ["--socket", str(daemon.socket)]
        cases = {
            "notify": [*command(), "notify", "--content", "x", *sock],
            "cid": [*command(), "cid", *sock],
            "imports only": [sys.executable, "-c", IMPORTS],
            "python -c pass": [sys.executable, "-c", "pass"],
        }
        if shutil.which("notify-send"):
            cases["notify-send"] = ["notify-send", "x"]
        walls: dict[str, list[float]] = {name: [] for name in cases}
        peaks: dict[str, list[float]] = {name: [] for name in cases}
        try:
            for name, argv in cases.items():  # warm-up, and a check that each works
                _, _, code = timed(argv, env)
                if code != 0:
                    sys.exit(f"{name} exited {code}: {' '.join(argv)}")
            for _ in range(args.rounds):
                for name, argv in cases.items():
                    wall, peak, _ = timed(argv, env)
                    walls[name].append(wall)
                    peaks[name].append(peak)
                stack.close_all()
            walls["cid call, warm"] = warm_calls(
                daemon.socket, "getPushClientId", {"timeout": 30}, args.rounds
            )
            walls["notify call, warm"] = warm_calls(
                daemon.socket, "createPushMessage", {"content": "x"}, args.rounds, stack.close_all
            )
            stack.close_all()
        finally:
            daemon.stop()
    base = statistics.median(walls["python -c pass"])
    print(f"{args.rounds} rounds, whole processes, wall ms, and peak MB (GNU time %M)")
    print(f"{'command':16} {'median':>8} {'min':>8} {'max':>8} {'x pass':>8} {'peak MB':>8}")
    for name, w in walls.items():
        med = statistics.median(w)
        print(
            f"{name:16} {med:8.1f} {min(w):8.1f} {max(w):8.1f} {med / base:8.2f} "
            f"{max(peaks.get(name, [float('nan')])):8.1f}"
        )
    for name, target in TARGETS.items():
        med = statistics.median(walls[name])
        peak = max(peaks[name])
        verdict = "met" if med <= target and peak <= PEAK_MB else "MISSED"
        print(f"target {name}: median <= {target:g} ms, peak <= {PEAK_MB:g} MB: {verdict}")


if __name__ == "__main__":
    main()
