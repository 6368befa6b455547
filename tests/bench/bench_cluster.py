"""issue 17 item 6 (in part): the Redis store and a two-node cluster, in one run, each
beside the same run's baselines (tests/bench/bench_gateway.py's load and clients).

1. sendMessage/s to one online cid on ONE node: SQLite store, Redis store, and a bare
   aiohttp POST route (the ratio of each store to it).
2. TWO nodes on the same Redis against one: the same load split over both nodes, with
   the daemon on node B (every push crosses the cluster link).
3. Broadcast through node A to N clients split over nodes A and B: time until every
   client has it, and each node's RSS per connection; beside the same broadcast from a
   bare websockets server (bench_gateway.py's baseline) to the same number, split over
   two such servers as over the two nodes. The clients are wsclients.py's raw ones (rawws.py):
   with the websockets client they spent 3 s of CPU on 20,000 frames themselves.
4. Drain: a 10,000-message backlog for one cid, the node restarted (SIGTERM, start):
   time from the node answering /healthz again to the daemon's ack of the last message,
   on the Redis store and on SQLite (the baseline).

    .venv/bin/python tests/bench/bench_cluster.py [--seconds 3] [--concurrency 16]
        [--clients 20000] [--backlog 10000]

The open-files soft limit is raised to the hard one (``ulimit -Hn``); each node and
each client process holds one socket per connection.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_gateway as bg
from tests.redisstack import RedisServer


def node(base: Path, name: str, store: str) -> bg.BenchGateway:
    env = {**bg.GATEWAY_ENV, "UNIPUSH_BRIDGE_GATEWAY_STORE": store}
    env["UNIPUSH_BRIDGE_GATEWAY_MAX_CONNECTIONS"] = "1000000"  # clamped below nofile
    return bg.BenchGateway(base / name, env=env, extra=["--log-level", "warning"]).start()


def measure(urls: list[str], cid: str, concurrency: int, seconds: float) -> bg.Load:
    """The load split evenly over ``urls``, run at once; the summed result."""

    async def run(start: int) -> list[bg.Load]:
        share = max(1, concurrency // len(urls))
        return await asyncio.gather(
            *(
                bg.load(u, cid, share, seconds, start=start + i * bg.MAX_REQUESTS)
                for i, u in enumerate(urls)
            )
        )

    asyncio.run(run(0))  # warm-up
    parts = asyncio.run(run(10 * bg.MAX_REQUESTS))
    total = bg.Load(ok=sum(p.ok for p in parts), elapsed=max(p.elapsed for p in parts))
    for p in parts:
        total.failures.update(p.failures)
    return total


def one_node(base: Path, name: str, store: str, args: argparse.Namespace) -> bg.Load:
    gw = node(base, name, store)
    try:
        clients, ready = bg.start_clients(f"{gw.ws_url}/ws", 1, 1, "none")
        try:
            url = f"{gw.http_url}/api/{bg.APPID}/sendMessage"
            return measure([url], ready["cid"], args.concurrency, args.seconds)
        finally:
            clients.stop()
    finally:
        gw.stop()


def line(who: str, result: bg.Load, baseline: float) -> str:
    ratio = f", {result.rps / baseline:.2f} of bare aiohttp" if baseline else ""
    return f"   {who}: {result.rps:,.0f} req/s ({result.ok} ok, {result.failed} failed{ratio})"


async def drain(ws_url: str, cid: str, last: int) -> float:
    """Hello with cursor 0, ack every push; seconds until the ack of seq ``last``."""
    from websockets.asyncio.client import connect

    t0 = time.perf_counter()
    async with connect(f"{ws_url}/ws", compression=None, max_size=None) as ws:
        hello = {"type": "hello", "v": 1, "appid": bg.APPID, "cid": cid, "acked": 0}
        await ws.send(json.dumps(hello))
        while True:
            frame = json.loads(await asyncio.wait_for(ws.recv(), 30))
            if frame.get("type") != "push":
                continue
            await ws.send(json.dumps({"type": "ack", "seq": frame["seq"]}))
            if frame["seq"] >= last:
                return time.perf_counter() - t0


async def register(ws_url: str) -> str:
    """A new cid with no secret (the drain's daemon says hello again with it)."""
    from websockets.asyncio.client import connect

    async with connect(f"{ws_url}/ws", compression=None) as ws:
        await ws.send(json.dumps({"type": "hello", "v": 1, "appid": bg.APPID, "acked": 0}))
        return str(json.loads(await asyncio.wait_for(ws.recv(), 10))["cid"])


def drain_after_restart(base: Path, name: str, store: str, backlog: int) -> float:
    """Register a cid, fill its backlog straight into the store with the node down,
    restart the node; from /healthz answering to the last ack."""
    from unipush_bridge.gateway.access import GatewayConfig
    from unipush_bridge.gateway.storeapi import open_store

    gw = node(base, name, store)
    try:
        cid = asyncio.run(register(gw.ws_url))
    finally:
        gw.stop()
    config = GatewayConfig(data_dir=base / name, store=store)

    async def fill() -> int:
        st = open_store(config, time.time)
        body = json.dumps({"title": "t", "content": "c", "payload": {}, "taskid": "RASL_x"})
        last = 0
        async with st.transaction():
            for n in range(backlog):
                last = await st.add_message(bg.APPID, cid, f"{n:032x}", "RASL_x", body, 3600)
        last = st.committed(last)[0]
        await st.close()
        return last

    last = asyncio.run(fill())
    gw = node(base, name, store)  # start() returns once /healthz answers
    try:
        return asyncio.run(drain(gw.ws_url, cid, last))
    finally:
        gw.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--clients", type=int, default=20_000)
    parser.add_argument("--backlog", type=int, default=10_000)
    args = parser.parse_args()
    nofile = bg.raise_nofile()
    base = Path(tempfile.mkdtemp(prefix="bench-cluster-"))
    redis_dir = Path(tempfile.mkdtemp(prefix="upredis-"))
    server = RedisServer(redis_dir, appendonly=True)
    server.start()
    out: list[str] = []
    try:
        out.append(f"1. one node, {args.concurrency} in flight, {args.seconds:g} s")
        port = bg.free_port()
        bare = bg.start_server(bg.BARE_HTTP, str(port), bg.answer_like_gateway(), name="bare")
        try:
            url = f"http://127.0.0.1:{port}/api/{bg.APPID}/sendMessage"
            baseline = measure([url], "0" * 32, args.concurrency, args.seconds)
        finally:
            bare.stop()
        sqlite = one_node(base, "sqlite", "", args)
        server.flush()
        redis_one = one_node(base, "redis", server.url, args)
        out.append(line("bare aiohttp POST", baseline, 0))
        out.append(line("SQLite store", sqlite, baseline.rps))
        out.append(line("Redis store", redis_one, baseline.rps))

        server.flush()
        a, b = node(base, "a", server.url), node(base, "b", server.url)
        try:
            clients, ready = bg.start_clients(f"{b.ws_url}/ws", 1, 1, "none")
            try:
                urls = [f"{g.http_url}/api/{bg.APPID}/sendMessage" for g in (a, b)]
                two = measure(urls, ready["cid"], args.concurrency, args.seconds)
            finally:
                clients.stop()
            out.append("2. two nodes on one Redis (daemon on B, load split over A and B)")
            out.append(line("two nodes", two, baseline.rps))
            out.append(f"   two nodes / one node (Redis): {two.rps / redis_one.rps:.2f}")

            half = args.clients // 2
            rss0 = [g.memory_mb()["VmRSS"] for g in (a, b)]
            ca, ra = bg.start_clients(f"{a.ws_url}/ws", half, 200, "none")
            cb, rb = bg.start_clients(f"{b.ws_url}/ws", args.clients - half, 200, "none")
            try:
                rss1 = [g.memory_mb()["VmRSS"] for g in (a, b)]
                t0 = time.perf_counter()
                target = f"{a.http_url}/api/{bg.APPID}/sendMessage"
                status, _answer, _ = asyncio.run(bg.post_broadcast(target))
                for c, n in ((ca, ra["registered"]), (cb, rb["registered"])):
                    c.send(f"wait received {n} {bg.BROADCAST_TIMEOUT_S}")
                got = [c.read_json(bg.BROADCAST_TIMEOUT_S + 10) for c in (ca, cb)]
                took = time.perf_counter() - t0
            finally:
                ca.stop()
                cb.stop()
            n = ra["registered"] + rb["registered"]
            received = sum(g["received"] for g in got)
            out.append(f"3. broadcast through A to {n} clients ({half} on A, {n - half} on B)")
            verdict = "met" if received >= n >= 20_000 and took <= 3.0 else "MISSED"
            out.append(
                f"   HTTP {status}; {received} of {n} received in {took:.2f} s"
                f"   [issue 17 target: 20,000 in <= 3 s: {verdict}]"
            )
            for name, before, after, count in zip("AB", rss0, rss1, (half, n - half), strict=True):
                per = (after - before) * 1024 / max(1, count)
                out.append(f"   node {name} RSS {after:.0f} MB, {per:.1f} KB per connection")
        finally:
            a.stop()
            b.stop()
        out.append(f"   (open files: soft limit raised to the hard limit, {nofile})")
        ns = argparse.Namespace(clients=args.clients, batch=200, compression="none")
        out += bg.broadcast_baseline(ns, servers=2)  # as the two nodes split them

        out.append(f"4. drain of a {args.backlog}-message backlog after a node restart")
        server.flush()
        on_redis = drain_after_restart(base, "drain-redis", server.url, args.backlog)
        on_sqlite = drain_after_restart(base, "drain-sqlite", "", args.backlog)
        out.append(f"   SQLite store (baseline): {on_sqlite:.2f} s")
        out.append(f"   Redis store: {on_redis:.2f} s ({on_redis / on_sqlite:.2f} of SQLite)")
    finally:
        server.kill()
        shutil.rmtree(base, ignore_errors=True)
        shutil.rmtree(redis_dir, ignore_errors=True)
    print("\n".join(out))


if __name__ == "__main__":
    main()
