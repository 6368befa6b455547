"""The floor of the push path with the libraries we use, measured in the same run:
an HTTP POST to an aiohttp handler that forwards the body over an aiohttp websocket
to a second process (websockets client), which writes it as one line on a Unix socket
to the measuring process. Three hops, no validation, no storage, no routing: what a
push could cost here if the gateway and the daemon did nothing at all.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GATEWAY = r"""
import asyncio, sys
from aiohttp import web, WSMsgType
conns = []
async def post(request):
    body = await request.read()
    for ws in conns:
        await ws.send_str(body.decode())
    return web.json_response({"errCode": 0})
async def wsh(request):
    ws = web.WebSocketResponse(); await ws.prepare(request); conns.append(ws)
    async for m in ws: pass
    return ws
app = web.Application(); app.add_routes([web.post("/p", post), web.get("/ws", wsh)])
def ready(*a):
    print("ready", flush=True)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=ready)
"""
DAEMON = r"""
import asyncio, sys
from websockets.asyncio.client import connect
async def main():
    writers = []
    async def serve(r, w): writers.append(w); await r.read()
    srv = await asyncio.start_unix_server(serve, sys.argv[2])
    async with connect(f"ws://127.0.0.1:{sys.argv[1]}/ws", compression=None) as ws:
        print("ready", flush=True)
        async for m in ws:
            for w in writers: w.write(m.encode() + b"\n")
asyncio.run(main())
"""


async def _measure(port: int, path: str, n: int) -> list[float]:
    unix_reader, _ = await asyncio.open_unix_connection(path)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    samples = []
    for i in range(-50, n):
        data = json.dumps({"i": i}).encode()
        t0 = time.perf_counter()
        writer.write(
            b"POST /p HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % len(data) + data
        )
        await unix_reader.readline()
        if i >= 0:
            samples.append(time.perf_counter() - t0)
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length")
        )
        await reader.readexactly(length)
    writer.close()
    return samples


def floor_latency(port: int, n: int) -> list[float]:
    path = str(Path(tempfile.mkdtemp()) / "floor.sock")
    gateway = subprocess.Popen(
        [sys.executable, "-c", GATEWAY, str(port)], stdout=subprocess.PIPE, text=True
    )
    daemon = None
    try:
        assert gateway.stdout is not None
        gateway.stdout.readline()
        daemon = subprocess.Popen(
            [sys.executable, "-c", DAEMON, str(port), path], stdout=subprocess.PIPE, text=True
        )
        assert daemon.stdout is not None
        daemon.stdout.readline()
        time.sleep(0.2)  # the websocket is registered once the first frame can go
        return asyncio.run(_measure(port, path, n))
    finally:
        gateway.kill()
        if daemon is not None:
            daemon.kill()
