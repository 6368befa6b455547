"""A private redis-server for the Redis store's tests (issue 17): on a unix socket in its
own temporary directory (Redis cannot take port 0), no snapshots, appendonly as asked,
SIGKILLed at the end; and the switch that runs the gateway suite against both stores.

``gateway_store`` is autouse under tests/unit/gateway and tests/integration (their
conftest.py imports it with pytest_generate_tests, which parametrises it with "sqlite" and
"redis" for the modules in STORE_MODULES). With "redis", every ``SqliteStore(path,
clock)`` a test module builds (the awaited Store protocol) and every Gateway's store is
a RedisStore on a flushed database: the same tests run against both.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

#: The test modules that build a store or a gateway: each of their tests runs twice.
STORE_MODULES = {
    "test_store",
    "test_methods",
    "test_service",
    "test_trust_store",
    "test_resend",
    "test_connection",
    "test_gateway_api",
    "test_gateway_trust",
    "test_slow_daemon",
}

#: Tests about the SQLite file itself (its mode bits, a damaged or old file, a
#: second process on it): there is no file with Redis.
SQLITE_ONLY = {
    "test_file_is_private",
    "test_only_the_hash_of_the_secret_is_stored",
    "test_a_store_from_before_secrets_upgrades_and_keeps_its_cids",
    "test_a_hostile_store_file_is_migrated_safely",
    "test_an_older_file_loses_the_index_of_null_groups",
    "test_an_ack_counts_its_tasks_in_one_statement_however_many_tasks",
    "test_a_transaction_begun_while_another_requests_is_suspended_is_refused",
}


def redis_server_path() -> str | None:
    return shutil.which("redis-server")


def require_redis() -> str:
    """redis-server, or fail under CI (dev.sh installs it) and skip elsewhere."""
    path = redis_server_path()
    if path is not None:
        return path
    reason = "redis-server not installed (apt-get install redis-server; dev.sh test does)"
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


@dataclasses.dataclass
class RedisServer:
    """One redis-server process; restart() keeps its directory (and appendonly file)."""

    directory: Path
    appendfsync: str = "everysec"
    appendonly: bool = False
    proc: subprocess.Popen[bytes] | None = None

    @property
    def socket(self) -> Path:
        return self.directory / "redis.sock"

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def start(self) -> None:
        binary = require_redis()
        if self.socket.exists():
            self.socket.unlink()
        args = [binary, "--port", "0", "--unixsocket", str(self.socket)]
        args += ["--unixsocketperm", "700", "--dir", str(self.directory), "--save", ""]
        args += ["--appendonly", "yes" if self.appendonly else "no"]
        args += ["--appendfsync", self.appendfsync, "--daemonize", "no", "--loglevel", "warning"]
        log = (self.directory / "redis.log").open("ab")
        self.proc = subprocess.Popen(args, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        # The socket file appears at bind(), before listen(): wait for a connection,
        # not for the file (a busy machine showed "Connection refused" in between).
        while not self._accepts():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                text = (self.directory / "redis.log").read_text(errors="replace")
                raise RuntimeError(f"redis-server did not start: {text[-2000:]}")
            time.sleep(0.005)

    def _accepts(self) -> bool:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            try:
                sock.connect(str(self.socket))
            except OSError:
                return False
        return True

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(10)
        self.proc = None

    def restart(self, sig: int = signal.SIGKILL) -> None:
        self.kill(sig)
        self.start()

    def flush(self) -> None:
        import redis

        with redis.Redis.from_url(self.url) as r:
            r.flushall()


@contextlib.contextmanager
def own_redis(appendonly: bool) -> Iterator[RedisServer]:
    """A redis-server in a directory of its own, killed and removed at the end."""
    require_redis()
    directory = Path(tempfile.mkdtemp(prefix="upredis-"))
    server = RedisServer(directory, appendonly=appendonly)
    server.start()
    try:
        yield server
    finally:
        server.kill()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="session")
def shared_redis() -> Iterator[RedisServer]:
    """One server for the parametrised suite (each test flushes it first)."""
    with own_redis(appendonly=False) as server:
        yield server


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A server of the test's own, appendonly, for tests that kill or restart it."""
    with own_redis(appendonly=True) as server:
        yield server


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Imported by a conftest.py: both stores for STORE_MODULES."""
    if "gateway_store" not in metafunc.fixturenames:
        return
    module = metafunc.module.__name__.rsplit(".", 1)[-1]
    if module not in STORE_MODULES:
        return
    kinds = ["sqlite"]
    if metafunc.function.__name__ not in SQLITE_ONLY:
        kinds.append("redis")
    metafunc.parametrize("gateway_store", kinds, indirect=True)


@pytest.fixture(autouse=True)
def gateway_store(request: pytest.FixtureRequest) -> Iterator[str]:
    """Autouse where a conftest.py imports it: "sqlite" leaves everything as it is;
    "redis" makes the module's SqliteStore and every Gateway's store Redis."""
    kind: str = getattr(request, "param", "sqlite")
    if kind == "sqlite":
        yield kind
        return
    from unipush_bridge.gateway import server as gateway_server
    from unipush_bridge.gateway import storeapi
    from unipush_bridge.gateway.redisstore import RedisStore

    redis_srv: RedisServer = request.getfixturevalue("shared_redis")
    redis_srv.flush()
    url = redis_srv.url

    def redis_store(_path: Path, clock: Callable[[], float], *_: Any) -> RedisStore:
        return RedisStore(url, clock)

    def open_store(config: Any, clock: Callable[[], float], *rest: Any) -> Any:
        return storeapi.open_store(dataclasses.replace(config, store=url), clock, *rest)

    mp = pytest.MonkeyPatch()
    if hasattr(request.module, "SqliteStore"):
        mp.setattr(request.module, "SqliteStore", redis_store)
    mp.setattr(gateway_server, "open_store", open_store)
    try:
        yield kind
    finally:
        mp.undo()


def command_calls(r: Any) -> dict[str, int]:
    """How many times Redis ran each command since CONFIG RESETSTAT (INFO commandstats;
    the commands a script runs count too)."""
    stats = r.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()}
