"""Push latency: sendMessage over HTTP until the receive event reaches a local listener.

Beside it, in the same run, two baselines: a raw websocket echo round trip to a
separate process on loopback, and an MQTT QoS 1 publish -> subscriber receipt through a
local mosquitto (tests/bench/mqtt_baseline.py; skipped if mosquitto is not installed).
Prints p50/p99 of each and the ratios of ours to them.

``--http raw`` sends sendMessage with a minimal keep-alive HTTP/1.1 client written on
asyncio streams instead of aiohttp's ClientSession, to take the measuring client's own
cost (about 0.1 ms a request with aiohttp) out of the number.

    .venv/bin/python tests/bench/bench_push_latency.py [--messages 1000] [--http raw]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from websockets.asyncio.client import connect

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.bench.floor_baseline import floor_latency
from tests.bench.mqtt_baseline import BrokerMissing, mqtt_qos1_latency
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


class RawHttp:
    """Keep-alive HTTP/1.1 POSTs of JSON on one connection, nothing else: the cheapest
    honest measuring client (it still reads the whole answer before the next request)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def __aenter__(self) -> RawHttp:
        self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._writer is not None:
            self._writer.close()

    async def post_json(self, path: str, body: object) -> tuple[int, bytes]:
        assert self._reader is not None and self._writer is not None
        data = json.dumps(body).encode()
        self._writer.write(
            f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n".encode()
            + data
        )
        head = await self._reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        return status, await self._reader.readexactly(length)


async def push_latency(
    gateway: GatewayProc,
    daemon: DaemonProc,
    n: int,
    http_client: str = "aiohttp",
    gap_s: float = 0.0,
) -> list[float]:
    arrived: dict[int, float] = {}
    got = asyncio.Event()

    def on_event(event: dict[str, object]) -> None:
        data = event["data"]
        assert isinstance(data, dict)
        arrived[int(data["payload"]["i"])] = time.perf_counter()
        got.set()

    cid = daemon.cid()
    path = f"/api/{daemon.appid}/sendMessage"
    url = f"{gateway.http_url}{path}"
    samples = []
    async with (
        PushClient(daemon.socket) as client,
        aiohttp.ClientSession() as http,
        RawHttp("127.0.0.1", gateway.port) as raw,
    ):
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
            if http_client == "raw":
                status, answer = await raw.post_json(path, body)
                assert status == 200, answer
            else:
                async with http.post(url, json=body) as resp:
                    assert resp.status == 200, await resp.text()
            while i not in arrived:
                await asyncio.wait_for(got.wait(), 10)
                got.clear()
            if i >= 0:
                samples.append(arrived[i] - t0)
            if gap_s:
                await asyncio.sleep(gap_s)
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
    parser.add_argument(
        "--http",
        choices=("aiohttp", "raw"),
        default="aiohttp",
        help="the client that sends sendMessage (default: aiohttp's ClientSession)",
    )
    parser.add_argument(
        "--gap-ms",
        type=float,
        default=0.0,
        help="pause between pushes (0: back to back, each push meets the previous "
        "one's ack, fsync and bookkeeping; a few ms: a push on a quiet system)",
    )
    args = parser.parse_args()
    mqtt: list[float] | None = None
    mqtt_skipped = ""
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
            floor = floor_latency(free_port(), args.messages)
            try:
                mqtt = asyncio.run(mqtt_qos1_latency(args.messages))
            except BrokerMissing as exc:
                mqtt_skipped = str(exc)
            pushes = asyncio.run(
                push_latency(gateway, daemon, args.messages, args.http, args.gap_ms / 1000)
            )
        finally:
            echo.kill()
            daemon.stop()
            gateway.stop()
    p50, p99 = percentiles(pushes)
    b50, b99 = percentiles(baseline)
    print(
        f"push HTTP -> receive event ({len(pushes)} messages, {args.http}):"
        f" p50 {p50:.3f} ms, p99 {p99:.3f} ms"
    )
    print(
        f"baseline websocket echo round trip ({len(baseline)}):          p50 {b50:.3f} ms, "
        f"p99 {b99:.3f} ms"
    )
    f50, f99 = percentiles(floor)
    print(
        f"floor: POST -> aiohttp -> websocket -> unix line, no work ({len(floor)}): "
        f"p50 {f50:.3f} ms, p99 {f99:.3f} ms"
    )
    if mqtt is not None:
        m50, m99 = percentiles(mqtt)
        print(
            f"baseline MQTT QoS 1 publish -> subscriber ({len(mqtt)}):   p50 {m50:.3f} ms, "
            f"p99 {m99:.3f} ms"
        )
    else:
        print(mqtt_skipped)
    print(f"ratio push/echo: p50 {p50 / b50:.1f}x, p99 {p99 / b99:.1f}x")
    if mqtt is not None:
        print(f"ratio push/MQTT: p50 {p50 / m50:.1f}x, p99 {p99 / m99:.1f}x")


if __name__ == "__main__":
    main()
