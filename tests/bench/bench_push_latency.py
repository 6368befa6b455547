"""Push latency: sendMessage over HTTP until the receive event reaches a local listener.

Beside it, in the same run, the baseline: a raw websocket echo round trip to a
separate process on loopback. Prints p50/p99 of both and their ratio.

    .venv/bin/python tests/bench/bench_push_latency.py [--messages 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from websockets.asyncio.client import connect

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.procs import DaemonProc, GatewayProc, free_port, wait_for

from unipush_bridge.clients import PushClient

NO_SERVER = {"DBUS_SESSION_BUS_ADDRESS": "unix:path=/nonexistent/bus", "DISPLAY": ""}
ECHO_SERVER = """
import asyncio, sys
from websockets.asyncio.server import serve
async def echo(ws):
    async for m in ws:
        await ws.send(m)
async def main():
    async with serve(echo, "127.0.0.1", int(sys.argv[1])):
        print("ready", flush=True)
        await asyncio.Future()
asyncio.run(main())
"""


def percentiles(samples: list[float]) -> tuple[float, float]:
    qs = statistics.quantiles(samples, n=100, method="inclusive")
    return qs[49] * 1000, qs[98] * 1000


async def push_latency(gateway: GatewayProc, daemon: DaemonProc, n: int) -> list[float]:
    arrived: dict[int, float] = {}
    got = asyncio.Event()

    def on_event(event: dict[str, object]) -> None:
        data = event["data"]
        assert isinstance(data, dict)
        arrived[int(data["payload"]["i"])] = time.perf_counter()
        got.set()

    cid = daemon.cid()
    url = f"{gateway.http_url}/api/{daemon.appid}/sendMessage"
    samples = []
    async with PushClient(daemon.socket) as client, aiohttp.ClientSession() as http:
        await client.on_push_message(on_event)
        for i in range(-50, n):  # the first 50 warm up the path and are not counted
            got.clear()
            t0 = time.perf_counter()
            body = {
                "push_clientid": cid,
                "title": "bench",
                "content": "latency",
                "payload": {"i": i},
            }
            async with http.post(url, json=body) as resp:
                assert resp.status == 200, await resp.text()
            while i not in arrived:
                await asyncio.wait_for(got.wait(), 10)
                got.clear()
            if i >= 0:
                samples.append(arrived[i] - t0)
    return samples


async def echo_latency(port: int, n: int) -> list[float]:
    samples = []
    async with connect(f"ws://127.0.0.1:{port}") as ws:
        for i in range(-50, n):
            msg = f'{{"type":"push","seq":{i},"message":{{"title":"bench"}}}}'
            t0 = time.perf_counter()
            await ws.send(msg)
            await ws.recv()
            if i >= 0:
                samples.append(time.perf_counter() - t0)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        gateway = GatewayProc(base / "gw", env=NO_SERVER).start()
        daemon = DaemonProc(
            base / "d", gateway.ws_url, env=NO_SERVER, extra=["--log-level", "warning"]
        ).start()
        port = free_port()
        echo = subprocess.Popen(
            [sys.executable, "-c", ECHO_SERVER, str(port)], stdout=subprocess.PIPE, text=True
        )
        try:
            assert echo.stdout is not None
            wait_for(lambda: echo.stdout.readline().strip() == "ready", 10, "echo server")
            baseline = asyncio.run(echo_latency(port, args.messages))
            pushes = asyncio.run(push_latency(gateway, daemon, args.messages))
        finally:
            echo.kill()
            daemon.stop()
            gateway.stop()
    p50, p99 = percentiles(pushes)
    b50, b99 = percentiles(baseline)
    print(
        f"push HTTP -> receive event ({len(pushes)} messages): p50 {p50:.3f} ms, p99 {p99:.3f} ms"
    )
    print(
        f"baseline websocket echo round trip ({len(baseline)}):   p50 {b50:.3f} ms, "
        f"p99 {b99:.3f} ms"
    )
    print(f"ratio push/echo: p50 {p50 / b50:.1f}x, p99 {p99 / b99:.1f}x")


if __name__ == "__main__":
    main()
