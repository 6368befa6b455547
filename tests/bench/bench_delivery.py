"""Delivery benchmarks: backlog drain with durable acknowledgements, time from a
restored link to the first redelivered message, and the daemon's idle RSS and CPU.

    .venv/bin/python tests/bench/bench_delivery.py [--messages 10000] [--idle-seconds 60]

The drain goes through the real gateway and daemon processes to a listener: every
message is committed to the daemon's SQLite file before it is acknowledged. Baseline,
in the same run: the same number of frames pushed over a bare websocket to a client
that acknowledges each batch, with no storage at all.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

from websockets.asyncio.client import connect
from websockets.asyncio.server import serve

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.procs import DaemonProc, GatewayProc, wait_for

from unipush_bridge.clients import PushClient
from unipush_bridge.gateway.store import GatewayStore

NO_SERVER = {
    "DBUS_SESSION_BUS_ADDRESS": "unix:path=/nonexistent/bus",
    "DISPLAY": "",
    "UNIPUSH_BRIDGE_SLEEP_BUS": "off",
}
APPID = "__UNI__DESKTOP"


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


async def drain(
    gateway: GatewayProc, daemon: DaemonProc, cid: str, n: int, data_dir: Path
) -> tuple[float, float]:
    """Returns (seconds from SIGCONT to the first message, messages per second)."""
    arrived: list[float] = []
    done = asyncio.Event()

    def on_event(event: dict[str, object]) -> None:
        arrived.append(time.perf_counter())
        if len(arrived) == n:
            done.set()

    async with PushClient(daemon.socket) as client:
        await client.on_push_message(on_event)
        gateway.stop()
        wait_for(lambda: daemon.status()["connection"]["state"] != "connected", 10, "link down")
        store = GatewayStore(data_dir / "gateway.sqlite3", time.time)
        body = {"title": "bench", "content": "drain", "payload": {"k": "v"}, "taskid": "bench"}
        with store.transaction():
            for i in range(n):
                store.add_message(APPID, cid, f"m{i:08d}", "bench", body, 3600)
        store.close()
        gateway.start()
        woke = time.perf_counter()
        daemon.send_signal(signal.SIGCONT)  # reconnect now: measure without the backoff
        await asyncio.wait_for(done.wait(), 120)
    first, last = arrived[0], arrived[-1]
    return first - woke, (n - 1) / (last - first)


async def baseline(n: int, batch: int = 500) -> float:
    """Bare websocket: push n frames, the client acks every batch; frames per second."""
    frame = '{"type":"push","seq":1,"id":"m","message":{"title":"bench","content":"drain"}}'
    acked = asyncio.Event()

    async def handler(ws: object) -> None:
        for _ in range(n):
            await ws.send(frame)  # type: ignore[attr-defined]
        async for message in ws:  # type: ignore[attr-defined]
            if message == str(n):
                acked.set()
                return

    async with serve(handler, "127.0.0.1", 0, compression=None) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        async with connect(f"ws://127.0.0.1:{port}", compression=None, max_queue=2000) as ws:
            started = time.perf_counter()
            for i in range(1, n + 1):
                await ws.recv()
                if i % batch == 0 or i == n:
                    await ws.send(str(i))
            await acked.wait()
            return n / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--idle-seconds", type=float, default=60.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        gateway = GatewayProc(base / "gw", env=NO_SERVER, extra=["--log-level", "warning"]).start()
        daemon = DaemonProc(
            base / "d", gateway.ws_url, env=NO_SERVER, extra=["--log-level", "warning"]
        ).start()
        try:
            cid = daemon.cid()
            time.sleep(2)
            rss = rss_mb(daemon.pid)
            cpu0, t0 = cpu_seconds(daemon.pid), time.monotonic()
            time.sleep(args.idle_seconds)
            idle_cpu = (cpu_seconds(daemon.pid) - cpu0) / (time.monotonic() - t0) * 100
            first, rate = asyncio.run(drain(gateway, daemon, cid, args.messages, base / "gw"))
            rss_after = rss_mb(daemon.pid)
        finally:
            daemon.stop()
            gateway.stop()
    bare = asyncio.run(baseline(args.messages))
    print(
        f"backlog drain, {args.messages} messages, durable acks, gateway -> daemon -> "
        f"listener: {rate:,.0f} msg/s   [target >= 10,000 msg/s: "
        f"{'met' if rate >= 10_000 else 'MISSED'}]"
    )
    print(f"baseline bare websocket push + batch acks: {bare:,.0f} msg/s; ratio {rate / bare:.2f}")
    print(
        f"restored link (SIGCONT, no backoff) -> first redelivered message: "
        f"{first * 1000:.0f} ms   [target <= 1 s: {'met' if first <= 1 else 'MISSED'}]"
    )
    print(
        f"daemon idle RSS: {rss:.1f} MB (after the drain: {rss_after:.1f} MB)   "
        f"[target <= 40 MB: {'met' if rss <= 40 else 'MISSED'}]"
    )
    print(
        f"daemon idle CPU over {args.idle_seconds:g} s: {idle_cpu:.3f} %   "
        f"[target <= 0.1 %: {'met' if idle_cpu <= 0.1 else 'MISSED'}]"
    )


if __name__ == "__main__":
    main()
