"""CPU microseconds per sendMessage, per process (issue 17 item 5), beside a bare
aiohttp POST server's in the same run.

req/s on 2 shared CPUs moves with whatever else runs; the CPU a process spends per
request hardly does. So each process's utime+stime (/proc/PID/stat, every thread) is
read before and after N requests, and the difference divided by N:

- gateway: the reference gateway (SQLite store, group commit) with one connected
  daemon (tests/bench/wsclients.py, which acknowledges like a daemon);
- daemon: that wsclients process (read once it has received every push);
- loadgen: this process, POSTing from ``--concurrency`` workers over keep-alive
  connections (bench_gateway.load), the same load for the gateway and the baseline;
- bare: bench_gateway's bare aiohttp server (one POST route, a constant JSON answer
  of the gateway's answer's size) under the same load, with its loadgen beside it.

Each round is a warm-up run (not counted) and a measured run; the table gives the
median of ``--rounds`` rounds, with min and max.

    .venv/bin/python tests/bench/bench_sendmessage_cpu.py [--requests 20000]
        [--concurrency 16] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_gateway as bg

TICK = os.sysconf("SC_CLK_TCK")
#: A measured run never lasts longer than this, whatever --requests says.
MAX_RUN_S = 120.0


def cpu_s(pid: int | str) -> float:
    """utime + stime of every thread of ``pid`` so far, in seconds."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()  # the name may hold spaces
    return (int(fields[11]) + int(fields[12])) / TICK


def measured(
    pids: dict[str, int | str], run: Callable[[], bg.Load], settle: Callable[[], None]
) -> tuple[bg.Load, dict[str, float]]:
    """``run``'s load, and each process's CPU us per request it answered; ``settle``
    returns once the work the requests caused elsewhere is done (pushes received)."""
    before = {name: cpu_s(pid) for name, pid in pids.items()}
    result = run()
    settle()
    after = {name: cpu_s(pid) for name, pid in pids.items()}
    n = max(1, result.ok)
    return result, {name: (after[name] - before[name]) * 1e6 / n for name in pids}


def load_runner(url: str, cid: str, args: argparse.Namespace, start: int) -> Callable[[], bg.Load]:
    def run() -> bg.Load:
        return asyncio.run(
            bg.load(url, cid, args.concurrency, MAX_RUN_S, start=start, limit=args.requests)
        )

    return run


def bare_round(args: argparse.Namespace, n: int) -> tuple[bg.Load, dict[str, float]]:
    port = bg.free_port()
    bare = bg.start_server(bg.BARE_HTTP, str(port), bg.answer_like_gateway(), name="bare")
    try:
        url = f"http://127.0.0.1:{port}/api/{bg.APPID}/sendMessage"
        asyncio.run(bg.load(url, "0" * 32, args.concurrency, bg.WARMUP_S))
        pids: dict[str, int | str] = {"bare": bare.proc.pid, "bare loadgen": "self"}
        return measured(pids, load_runner(url, "0" * 32, args, n * bg.MAX_REQUESTS), lambda: None)
    finally:
        bare.stop()


def gateway_round(base: Path, args: argparse.Namespace, n: int) -> tuple[bg.Load, dict[str, float]]:
    gw = bg.BenchGateway(base / f"gw{n}", env=bg.GATEWAY_ENV, extra=["--log-level", "warning"])
    gw.start()
    try:
        clients, ready = bg.start_clients(f"{gw.ws_url}/ws", 1, 1, "none")
        try:
            url = f"{gw.http_url}/api/{bg.APPID}/sendMessage"
            cid = ready["cid"]
            warm = asyncio.run(bg.load(url, cid, args.concurrency, bg.WARMUP_S))
            sent = [warm.ok]

            def run() -> bg.Load:
                result = load_runner(url, cid, args, n * bg.MAX_REQUESTS)()
                sent.append(result.ok)
                return result

            def settle() -> None:
                clients.send(f"wait received {sum(sent)} {bg.DRAIN_TIMEOUT_S}")
                got = clients.read_json(bg.DRAIN_TIMEOUT_S + 10)
                if got["received"] < sum(sent):
                    raise RuntimeError(f"the daemon got {got['received']} of {sum(sent)}")

            pids: dict[str, int | str] = {
                "gateway": gw.pid,
                "daemon": clients.proc.pid,
                "loadgen": "self",
            }
            return measured(pids, run, settle)
        finally:
            clients.stop()
    finally:
        gw.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000, help="per measured run")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    bg.raise_nofile()
    base = Path(tempfile.mkdtemp(prefix="bench-cpu-"))
    rows: dict[str, list[float]] = {}
    rates: dict[str, list[float]] = {"gateway": [], "bare": []}
    failed = 0
    try:
        for n in range(1, args.rounds + 1):
            for who, (result, per) in (
                ("gateway", gateway_round(base, args, n)),
                ("bare", bare_round(args, n)),
            ):
                failed += result.failed
                rates[who].append(result.rps)
                for name, us in per.items():
                    rows.setdefault(name, []).append(us)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    print(
        f"CPU us per sendMessage ({args.requests} requests, {args.concurrency} in flight, "
        f"{args.rounds} rounds, {os.cpu_count()} CPUs; {failed} failed)"
    )
    print(f"{'process':<14} {'median':>8} {'min':>8} {'max':>8}")
    for name, values in rows.items():
        print(f"{name:<14} {statistics.median(values):8.0f} {min(values):8.0f} {max(values):8.0f}")
    gw, bare = statistics.median(rates["gateway"]), statistics.median(rates["bare"])
    print(f"req/s (noisy, median): gateway {gw:,.0f}, bare {bare:,.0f}, ratio {gw / bare:.2f}")
    print(f"at {time.strftime('%H:%M:%S')}")


if __name__ == "__main__":
    main()
