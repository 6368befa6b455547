"""Gateway throughput and fan-out, each beside a baseline measured in the same run.

A. sendMessage requests/s to ONE online cid (a lightweight websocket client process
   stays registered and acknowledges), at a fixed number of requests in flight over
   aiohttp keep-alive connections. Baseline: a bare aiohttp server process with one
   POST route answering a constant JSON of the same size, under the same load.
B. Broadcast (sendMessage without push_clientid) to N connected clients (a separate
   process, tests/bench/wsclients.py): time from the POST until every client has the
   push, and the gateway's RSS with N connected and its peak after the broadcast.
   Baseline: the same N clients on a bare ``websockets`` server process that sends one
   frame to all with ``websockets.asyncio.server.broadcast``.

Every process runs in its own process group and is stopped in ``finally``.

    .venv/bin/python tests/bench/bench_gateway.py [--clients 5000] [--seconds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import itertools
import json
import os
import queue
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.procs import GatewayProc, free_port

HERE = Path(__file__).resolve().parent
APPID = "__UNI__BENCH"
#: Settings that may exist on the gateway; unknown ones are ignored by pydantic-settings.
GATEWAY_ENV = {
    "UNIPUSH_BRIDGE_GATEWAY_RATE_LIMIT": "0",
    "UNIPUSH_BRIDGE_GATEWAY_BROADCAST_PER_MINUTE": "0",
    # every bench client registers a new cid from 127.0.0.1 within seconds
    "UNIPUSH_BRIDGE_GATEWAY_NEW_CIDS_PER_MINUTE": "0",
}
TARGET_RPS = 2000
TARGET_BROADCAST_S = 2.0
TARGET_RSS_MB = 500
WARMUP_S = 0.5
#: Upper bound on requests per load run, whatever --seconds says.
MAX_REQUESTS = 2_000_000
DRAIN_TIMEOUT_S = 30.0
BROADCAST_TIMEOUT_S = 30.0

RLIMIT_SNIPPET = """
import resource
_soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (_hard, _hard))
"""

# One POST route answering a constant JSON (argv[2]), as the gateway's answer is built.
BARE_HTTP = (
    RLIMIT_SNIPPET
    + """
import json, sys
from aiohttp import web
ANSWER = json.loads(sys.argv[2])
async def handle(request):
    await request.read()
    return web.json_response(ANSWER)
app = web.Application(client_max_size=64 * 1024)
app.add_routes([web.post("/api/{appid}/{method}", handle)])
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None,
            print=lambda *a: print("ready", flush=True))
"""
)

# hello -> welcome like the gateway; a stdin line "go" sends one push frame to all.
BARE_WS = (
    RLIMIT_SNIPPET
    + """
import asyncio, json, secrets, sys
from websockets.asyncio.server import broadcast, serve
CLIENTS = set()
async def handler(ws):
    try:
        await ws.recv()
        cid = secrets.token_hex(16)
        await ws.send(json.dumps({"type": "welcome", "v": 1, "cid": cid, "acked": 0}))
        CLIENTS.add(ws)
        async for _ in ws:
            pass
    except Exception:
        pass
    finally:
        CLIENTS.discard(ws)
async def main():
    async with serve(handler, "127.0.0.1", int(sys.argv[1]), ping_interval=None,
                     max_size=256 * 1024, backlog=128):
        print("ready", flush=True)
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        seq = 0
        while (await reader.readline()).strip() == b"go":
            seq += 1
            message = {"title": "b", "content": "c", "payload": {"x": 1},
                       "taskid": "RASS_" + secrets.token_hex(12)}
            frame = {"type": "push", "seq": seq, "id": secrets.token_hex(16), "message": message}
            broadcast(CLIENTS, json.dumps(frame, separators=(",", ":")))
            print(f"sent {len(CLIENTS)}", flush=True)
asyncio.run(main())
"""
)


# processes --------------------------------------------------------------------------


def raise_nofile() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def stop_group(proc: subprocess.Popen[str] | None, timeout: float = 10.0) -> None:
    """SIGTERM to the process group, then SIGKILL if it is still there.

    Signals go out only while the leader is not reaped, so the group id is still ours.
    """
    if proc is None:
        return
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        if proc.poll() is not None:
            break
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(wait)


class BenchGateway(GatewayProc):
    """GatewayProc in its own process group (stopped as a group)."""

    new_session = True

    def start(self) -> BenchGateway:
        try:
            super().start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int:
        stop_group(self.proc, timeout)
        return self.proc.returncode if self.proc is not None else 0

    def memory_mb(self) -> dict[str, float]:
        return proc_memory_mb(self.pid)


def proc_memory_mb(pid: int) -> dict[str, float]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0]) / 1024
    return out


class Child:
    """A helper process (stdin/stdout pipes, own process group); lines read by a thread."""

    def __init__(self, args: list[str], name: str) -> None:
        self.name = name
        self.proc = subprocess.Popen(
            args,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.stderr_tail: collections.deque[str] = collections.deque(maxlen=20)
        threading.Thread(target=self._pump, daemon=True).start()
        threading.Thread(target=self._pump_err, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.strip())
        self.lines.put(None)

    def _pump_err(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr_tail.append(line.rstrip())

    def readline(self, timeout: float) -> str:
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"{self.name}: no answer within {timeout:g} s") from None
        if line is None:
            self.lines.put(None)
            tail = "\n".join(self.stderr_tail)
            raise RuntimeError(f"{self.name} exited ({self.proc.poll()}):\n{tail}")
        return line

    def read_json(self, timeout: float) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.readline(timeout))
        return data

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(OSError):
                self.send("quit")
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(5)
        stop_group(self.proc, 5)


def start_server(script: str, *argv: str, name: str) -> Child:
    child = Child([sys.executable, "-c", script, *argv], name)
    try:
        if (line := child.readline(20)) != "ready":
            raise RuntimeError(f"{name} did not start: {line}")
    except BaseException:
        child.stop()
        raise
    return child


def start_clients(url: str, n: int, batch: int, compression: str) -> tuple[Child, dict[str, Any]]:
    args = [sys.executable, str(HERE / "wsclients.py"), "--url", url, "--appid", APPID]
    args += ["--clients", str(n), "--batch", str(batch), "--compression", compression]
    child = Child(args, "wsclients")
    try:
        ready = child.read_json(max(60.0, n / 50))
    except BaseException:
        child.stop()
        raise
    return child, ready


# load generator ---------------------------------------------------------------------


@dataclass
class Load:
    ok: int = 0
    elapsed: float = 0.0
    failures: collections.Counter[str] = field(default_factory=collections.Counter)

    @property
    def rps(self) -> float:
        return self.ok / self.elapsed if self.elapsed else 0.0

    @property
    def failed(self) -> int:
        return sum(self.failures.values())


async def load(
    url: str, cid: str, concurrency: int, seconds: float, start: int = 0, limit: int = MAX_REQUESTS
) -> Load:
    """POST sendMessage from ``concurrency`` workers on keep-alive connections."""
    result = Load()
    counter = itertools.count(start)
    loop = asyncio.get_running_loop()
    headers = {"Content-Type": "application/json"}
    connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=concurrency)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
        deadline = loop.time() + seconds

        async def worker() -> None:
            while loop.time() < deadline:
                n = next(counter)
                if n - start >= limit:
                    return
                body = {"push_clientid": cid, "title": "bench", "content": "c", "payload": {"i": n}}
                try:
                    async with http.post(url, data=json.dumps(body), headers=headers) as resp:
                        raw = await resp.read()
                except (aiohttp.ClientError, TimeoutError) as exc:
                    result.failures[type(exc).__name__] += 1
                    continue
                try:
                    answer = json.loads(raw)
                except ValueError:
                    answer = {}
                if resp.status == 200 and answer.get("errCode") == 0:
                    result.ok += 1
                else:
                    result.failures[f"HTTP {resp.status}: {answer.get('errMsg', raw[:60])}"] += 1

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        result.elapsed = time.perf_counter() - t0
    return result


def run_load(url: str, cid: str, concurrency: int, seconds: float) -> tuple[Load, Load]:
    """A warm-up run (not reported), then the measured run."""
    warm = asyncio.run(load(url, cid, concurrency, WARMUP_S))
    return warm, asyncio.run(load(url, cid, concurrency, seconds, start=MAX_REQUESTS))


# part A -----------------------------------------------------------------------------


def answer_like_gateway() -> str:
    """A constant of the size of the gateway's sendMessage answer for one cid."""
    taskid = "RASS_" + "0" * 24
    return json.dumps(
        {"errCode": 0, "errMsg": "", "data": {taskid: {"0" * 32: "successed_online"}}}
    )


def part_a(base: Path, args: argparse.Namespace) -> list[str]:
    out = [f"A. sendMessage to one online cid ({args.concurrency} in flight, {args.seconds:g} s)"]
    gateway = BenchGateway(base / "gw-a", env=GATEWAY_ENV, extra=["--log-level", "warning"]).start()
    clients: Child | None = None
    try:
        clients, ready = start_clients(f"{gateway.ws_url}/ws", 1, 1, args.compression)
        if ready["registered"] != 1:
            raise RuntimeError(f"the client did not register: {ready}")
        url = f"{gateway.http_url}/api/{APPID}/sendMessage"
        warm, gw = run_load(url, ready["cid"], args.concurrency, args.seconds)
        expected = warm.ok + gw.ok
        t_stop = time.perf_counter()
        clients.send(f"wait received {expected} {DRAIN_TIMEOUT_S}")
        stats = clients.read_json(DRAIN_TIMEOUT_S + 10)
        drain_s = time.perf_counter() - t_stop
        mem = gateway.memory_mb()
    finally:
        if clients is not None:
            clients.stop()
        gateway.stop()
    port = free_port()
    bare = start_server(BARE_HTTP, str(port), answer_like_gateway(), name="bare aiohttp server")
    try:
        _, baseline = run_load(
            f"http://127.0.0.1:{port}/api/{APPID}/sendMessage",
            "0" * 32,
            args.concurrency,
            args.seconds,
        )
    finally:
        bare.stop()

    verdict = "met" if gw.rps >= TARGET_RPS and gw.failed == 0 else "MISSED"
    out.append(
        f"   gateway:  {gw.ok} ok in {gw.elapsed:.2f} s = {gw.rps:,.0f} req/s, "
        f"{gw.failed} failed   [target >= {TARGET_RPS:,} req/s: {verdict}]"
    )
    out += [f"      failure {why}: {n}" for why, n in gw.failures.most_common(5)]
    if warm.failed:
        out.append(f"      (warm-up: {warm.failed} failed: {dict(warm.failures.most_common(3))})")
    got = stats["received"]
    drained = "drained" if got >= expected else "NOT drained"
    out.append(
        f"   pushes received by the client: {got} of {expected} (incl. {warm.ok} warm-up), "
        f"{stats['unique']} unique ids; {drained} {drain_s:.2f} s after the load stopped; "
        f"{stats['acks']} acks sent"
    )
    if stats["closed"] or stats["errors"]:
        out.append(f"      client errors: {stats['errors']}")
    out.append(f"   gateway RSS at the end: {mem['VmRSS']:.0f} MB (peak {mem['VmHWM']:.0f} MB)")
    out.append(
        f"   baseline bare aiohttp POST: {baseline.ok} ok in {baseline.elapsed:.2f} s = "
        f"{baseline.rps:,.0f} req/s, {baseline.failed} failed"
    )
    if baseline.rps:
        out.append(f"   ratio gateway/baseline: {gw.rps / baseline.rps:.2f}")
    out += log_summary("gateway (A)", gateway.log_path)
    return out


# part B -----------------------------------------------------------------------------


async def post_broadcast(url: str) -> tuple[int, dict[str, Any], float]:
    body = {"title": "b", "content": "c", "payload": {"x": 1}}
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=BROADCAST_TIMEOUT_S)) as http,
        http.post(url, json=body) as resp,
    ):
        raw = await resp.read()
        t = time.time()
    try:
        answer = json.loads(raw)
    except ValueError:
        answer = {"errMsg": raw[:200].decode(errors="replace")}
    return resp.status, answer, t


def describe_answer(answer: dict[str, Any]) -> str:
    data = answer.get("data")
    if isinstance(data, dict) and len(data) == 1:
        statuses = next(iter(data.values()))
        if isinstance(statuses, dict):
            counts = collections.Counter(statuses.values())
            return f"{len(statuses)} cids: {dict(counts)}"
    return f"data {json.dumps(data)[:120]}"


def part_b(base: Path, args: argparse.Namespace) -> list[str]:
    n = args.clients
    out = [f"B. broadcast to {n} connected clients (connecting {args.batch} at a time)"]
    gateway = BenchGateway(base / "gw-b", env=GATEWAY_ENV, extra=["--log-level", "warning"]).start()
    idle = gateway.memory_mb()
    clients: Child | None = None
    try:
        clients, ready = start_clients(f"{gateway.ws_url}/ws", n, args.batch, args.compression)
        out.append(
            f"   gateway: {ready['registered']} registered, {ready['failed']} failed, "
            f"in {ready['connect_s']:.2f} s"
        )
        if ready["errors"]:
            out.append(f"      connect errors: {ready['errors']}")
        before = gateway.memory_mb()
        verdict = "met" if before["VmHWM"] <= TARGET_RSS_MB else "MISSED"
        out.append(
            f"   gateway RSS: idle {idle['VmRSS']:.0f} MB; with {ready['registered']} connected "
            f"{before['VmRSS']:.0f} MB (peak so far {before['VmHWM']:.0f} MB)"
            f"   [target <= {TARGET_RSS_MB} MB: {verdict}]"
        )
        t0 = time.time()
        status, answer, t_answer = asyncio.run(
            post_broadcast(f"{gateway.http_url}/api/{APPID}/sendMessage")
        )
        if status == 400 and "push_clientid" in str(answer.get("errMsg")):
            out.append(
                "   broadcast not supported by this gateway yet "
                f"(POST answered {status}: {answer.get('errMsg')})"
            )
        elif status != 200 or answer.get("errCode") != 0:
            out.append(f"   broadcast FAILED: HTTP {status}: {json.dumps(answer)[:200]}")
        else:
            clients.send(f"wait with_push {ready['registered']} {BROADCAST_TIMEOUT_S}")
            stats = clients.read_json(BROADCAST_TIMEOUT_S + 10)
            after = gateway.memory_mb()
            out += broadcast_lines("gateway", ready["registered"], stats, t0)
            out.append(
                f"      POST answered after {t_answer - t0:.3f} s: {describe_answer(answer)}"
            )
            peak = after["VmHWM"]
            verdict = "met" if peak <= TARGET_RSS_MB else "MISSED"
            out.append(
                f"   gateway RSS after the broadcast: {after['VmRSS']:.0f} MB, "
                f"peak (VmHWM) {peak:.0f} MB   [target <= {TARGET_RSS_MB} MB: {verdict}]"
            )
    finally:
        if clients is not None:
            clients.stop()
        gateway.stop()
    out += broadcast_baseline(args)
    out += log_summary("gateway (B)", gateway.log_path)
    return out


def broadcast_lines(who: str, n: int, stats: dict[str, Any], t0: float) -> list[str]:
    got = stats["with_push"]
    if stats["last_recv"] is None:
        return [f"   {who}: no client received the push within {BROADCAST_TIMEOUT_S:g} s"]
    first = stats["first_recv"] - t0
    last = stats["last_recv"] - t0
    lines = []
    if got >= n:
        verdict = "met" if last <= TARGET_BROADCAST_S else "MISSED"
        target = (
            f"   [target <= {TARGET_BROADCAST_S:g} s for 5,000: {verdict}]"
            if who == "gateway"
            else ""
        )
        lines.append(
            f"   {who}: all {n} received the push after {last:.3f} s "
            f"(first after {first:.3f} s){target}"
        )
    else:
        lines.append(
            f"   {who}: only {got} of {n} received the push within {BROADCAST_TIMEOUT_S:g} s "
            f"(first after {first:.3f} s, last after {last:.3f} s)"
        )
    if stats["received"] != got or stats["closed"]:
        lines.append(
            f"      {stats['received']} pushes in all, {stats['closed']} connections closed: "
            f"{stats['errors']}"
        )
    return lines


def merged(stats: list[dict[str, Any]]) -> dict[str, Any]:
    """Several client processes' counters as one: sums, the earliest first and latest last."""
    firsts = [s["first_recv"] for s in stats if s["first_recv"] is not None]
    lasts = [s["last_recv"] for s in stats if s["last_recv"] is not None]
    errors: collections.Counter[str] = collections.Counter()
    for s in stats:
        errors.update(s["errors"])
    return {
        **{k: sum(s[k] for s in stats) for k in ("with_push", "received", "closed")},
        "first_recv": min(firsts) if firsts else None,
        "last_recv": max(lasts) if len(lasts) == len(stats) else None,
        "errors": dict(errors),
    }


def broadcast_baseline(args: argparse.Namespace, servers: int = 1) -> list[str]:
    """The bare server's broadcast() to ``args.clients``, split over ``servers`` servers
    (each with its own client process) as the nodes beside it split theirs: one process
    cannot hold 20,000 sockets under a hard limit of 20,000 open files."""
    started: list[tuple[Child, Child, dict[str, Any]]] = []
    try:
        for i in range(servers):
            port = free_port()
            server = start_server(BARE_WS, str(port), name="bare websockets server")
            n = args.clients // servers + (i < args.clients % servers)
            try:
                clients, ready = start_clients(
                    f"ws://127.0.0.1:{port}", n, args.batch, args.compression
                )
            except BaseException:
                server.stop()
                raise
            started.append((server, clients, ready))
        mem = sum(proc_memory_mb(server.proc.pid)["VmRSS"] for server, _, _ in started)
        registered = sum(ready["registered"] for _, _, ready in started)
        lines = [
            f"   baseline bare websockets server{'s' if servers > 1 else ''}: {registered} "
            f"registered, {sum(ready['failed'] for _, _, ready in started)} failed, in "
            f"{max(ready['connect_s'] for _, _, ready in started):.2f} s; "
            f"RSS with them connected {mem:.0f} MB"
        ]
        t0 = time.time()
        for server, _, _ in started:
            server.send("go")
        sent = [server.readline(BROADCAST_TIMEOUT_S) for server, _, _ in started]
        for _, clients, ready in started:
            clients.send(f"wait with_push {ready['registered']} {BROADCAST_TIMEOUT_S}")
        stats = merged([clients.read_json(BROADCAST_TIMEOUT_S + 10) for _, clients, _ in started])
        lines += broadcast_lines("baseline broadcast()", registered, stats, t0)
        lines[-1] += f" ({', '.join(sent)})"
        return lines
    finally:
        for server, clients, _ in started:
            clients.stop()
            server.stop()


# gateway log ------------------------------------------------------------------------


def log_summary(who: str, path: Path) -> list[str]:
    """Warnings, errors and anything that is not a JSON log line (tracebacks)."""
    if not path.exists():
        return [f"   {who} log: missing"]
    seen: collections.Counter[str] = collections.Counter()
    for line in path.read_text(errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            if line.strip():
                seen[f"(not JSON) {line.strip()[:100]}"] += 1
            continue
        level = str(entry.get("level", "")).lower()
        if level not in ("debug", "info"):
            seen[f"{level}: {str(entry.get('event'))[:100]}"] += 1
    if not seen:
        return [f"   {who} log: no warnings or errors"]
    total = sum(seen.values())
    lines = [f"   {who} log: {total} warning/error lines; most common:"]
    lines += [f"      {n} x {what}" for what, n in seen.most_common(5)]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=5000, help="clients for the broadcast")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each load run")
    parser.add_argument("--concurrency", type=int, default=64, help="requests in flight")
    parser.add_argument("--batch", type=int, default=200, help="connections opened at once")
    parser.add_argument(
        "--compression",
        choices=["deflate", "none"],
        default="deflate",
        help="permessage-deflate offered by the clients (the daemon offers it)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the data dirs and logs")
    args = parser.parse_args()
    args.seconds = min(args.seconds, 60.0)
    hard = raise_nofile()  # inherited by every process started from here
    if hard < args.clients + 200:
        print(f"RLIMIT_NOFILE hard limit {hard} is too low for {args.clients} clients")
        sys.exit(2)
    base = Path(tempfile.mkdtemp(prefix="bench-gateway-"))
    print(f"bench_gateway: {os.cpu_count()} cores, RLIMIT_NOFILE {hard}, data in {base}")
    t_start = time.perf_counter()
    try:
        for part in (part_a, part_b):
            try:
                lines = part(base, args)
            except Exception as exc:
                lines = [f"{part.__name__} failed: {type(exc).__name__}: {exc}"]
            print("\n".join(lines), flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    print(
        f"total {time.perf_counter() - t_start:.0f} s"
        + (f"; logs kept in {base}" if args.keep else "")
    )


if __name__ == "__main__":
    main()
