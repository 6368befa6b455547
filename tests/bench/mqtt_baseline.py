"""MQTT QoS 1 baseline: publish -> subscriber receipt through a local mosquitto.

The yardstick for bench_push_latency.py: the same one-at-a-time measurement, but through
a real message broker on loopback. The broker is Debian's ``mosquitto`` with a minimal
config (one loopback listener, anonymous access, nothing persisted), started here on a
free port and stopped afterwards. The publisher and the subscriber are separate MQTT
connections, and the subscriber runs in a separate process (this file, run with
``--subscriber``): it PUBACKs each PUBLISH and reports the receipt time. Both sides read
CLOCK_MONOTONIC, which is one clock for every process on Linux.

The MQTT 3.1.1 client here is deliberately small and standard-library only: CONNECT /
CONNACK, SUBSCRIBE / SUBACK, PUBLISH (QoS 0 and 1) and PUBACK, DISCONNECT.

    .venv/bin/python tests/bench/mqtt_baseline.py [--messages 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import socket
import statistics
import struct
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

# Control packet types (MQTT 3.1.1, section 2.2.1).
CONNECT = 1
CONNACK = 2
PUBLISH = 3
PUBACK = 4
SUBSCRIBE = 8
SUBACK = 9
DISCONNECT = 14

#: Messages sent before the measured ones, to warm up both ends (as the push bench does).
WARMUP = 50
#: How long a broker or a subscriber gets to come up.
START_TIMEOUT_S = 10.0
#: This file, run again as the subscriber process.
SCRIPT = str(Path(__file__).resolve())
#: How long one message may take before the run is called failed.
MESSAGE_TIMEOUT_S = 10.0


class MqttError(RuntimeError):
    """The broker broke the protocol or refused us."""


class BrokerMissing(RuntimeError):
    """No mosquitto binary on this machine: the baseline is skipped, not failed."""


def clock_ns() -> int:
    """CLOCK_MONOTONIC: comparable between the publisher's and the subscriber's process."""
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC)


# Wire format ------------------------------------------------------------------------------


def _remaining_length(n: int) -> bytes:
    out = bytearray()
    while True:
        n, digit = divmod(n, 128)
        out.append(digit | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _utf8(text: str) -> bytes:
    raw = text.encode()
    return struct.pack("!H", len(raw)) + raw


def encode_packet(kind: int, flags: int, body: bytes) -> bytes:
    return bytes([kind << 4 | flags]) + _remaining_length(len(body)) + body


async def read_packet(reader: asyncio.StreamReader) -> tuple[int, int, bytes]:
    """One control packet: (type, flags, body)."""
    first = (await reader.readexactly(1))[0]
    length, multiplier = 0, 1
    for _ in range(4):
        digit = (await reader.readexactly(1))[0]
        length += (digit & 0x7F) * multiplier
        if not digit & 0x80:
            break
        multiplier *= 128
    else:
        raise MqttError("malformed remaining length")
    body = await reader.readexactly(length) if length else b""
    return first >> 4, first & 0x0F, body


@dataclass(frozen=True, slots=True)
class Message:
    topic: str
    payload: bytes
    qos: int


def parse_publish(flags: int, body: bytes) -> tuple[Message, int | None]:
    """A PUBLISH body: the message and, for QoS 1 and 2, its packet id."""
    qos = (flags >> 1) & 0x03
    (topic_len,) = struct.unpack_from("!H", body)
    pos = 2 + topic_len
    topic = body[2:pos].decode()
    packet_id: int | None = None
    if qos:
        (packet_id,) = struct.unpack_from("!H", body, pos)
        pos += 2
    return Message(topic, body[pos:], qos), packet_id


# Client -----------------------------------------------------------------------------------

OnMessage = Callable[[Message], None]


class MqttClient:
    """One MQTT 3.1.1 connection (clean session). A reader task answers the broker:
    it resolves PUBACK and SUBACK waiters, PUBACKs every QoS 1 PUBLISH it gets and then
    calls ``on_message`` with it, on the reader task itself (no queue between)."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        on_message: OnMessage | None = None,
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._on_message = on_message
        self._next_id = 0
        self._waiting: dict[tuple[int, int], asyncio.Future[bytes]] = {}
        self._task: asyncio.Task[None] | None = None

    @classmethod
    async def connect(
        cls,
        host: str,
        port: int,
        client_id: str,
        on_message: OnMessage | None = None,
        keepalive: int = 60,
    ) -> MqttClient:
        reader, writer = await asyncio.open_connection(host, port)
        # asyncio sets TCP_NODELAY on TCP transports already; say so for the reader.
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        flags = 0x02  # clean session, no will, no credentials
        body = _utf8("MQTT") + bytes([4, flags]) + struct.pack("!H", keepalive) + _utf8(client_id)
        writer.write(encode_packet(CONNECT, 0, body))
        kind, _, answer = await asyncio.wait_for(read_packet(reader), START_TIMEOUT_S)
        if kind != CONNACK or len(answer) != 2:
            writer.close()
            raise MqttError(f"expected CONNACK, got packet type {kind}")
        if answer[1] != 0:
            writer.close()
            raise MqttError(f"broker refused the connection: return code {answer[1]}")
        client = cls(reader, writer, on_message)
        client._task = asyncio.get_running_loop().create_task(client._read())
        return client

    def _packet_id(self) -> int:
        self._next_id = self._next_id % 0xFFFF + 1
        return self._next_id

    def _expect(self, kind: int, packet_id: int) -> asyncio.Future[bytes]:
        fut: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._waiting[(kind, packet_id)] = fut
        return fut

    async def subscribe(self, topic: str, qos: int = 1) -> int:
        """Subscribe and wait for the SUBACK; returns the QoS the broker granted."""
        packet_id = self._packet_id()
        fut = self._expect(SUBACK, packet_id)
        body = struct.pack("!H", packet_id) + _utf8(topic) + bytes([qos])
        self._writer.write(encode_packet(SUBSCRIBE, 0x02, body))
        granted = (await asyncio.wait_for(fut, START_TIMEOUT_S))[0]
        if granted == 0x80:
            raise MqttError(f"the broker refused the subscription to {topic}")
        return granted

    async def publish(self, topic: str, payload: bytes, qos: int = 1) -> None:
        """Publish; with QoS 1, return once the broker's PUBACK is in."""
        if qos == 0:
            self._writer.write(encode_packet(PUBLISH, 0, _utf8(topic) + payload))
            await self._writer.drain()
            return
        if qos != 1:
            raise ValueError("this client publishes with QoS 0 or 1 only")
        packet_id = self._packet_id()
        fut = self._expect(PUBACK, packet_id)
        body = _utf8(topic) + struct.pack("!H", packet_id) + payload
        self._writer.write(encode_packet(PUBLISH, qos << 1, body))
        await fut

    async def _read(self) -> None:
        error: BaseException = MqttError("the broker closed the connection")
        try:
            while True:
                kind, flags, body = await read_packet(self._reader)
                if kind == PUBLISH:
                    message, packet_id = parse_publish(flags, body)
                    if message.qos == 1 and packet_id is not None:
                        self._writer.write(encode_packet(PUBACK, 0, struct.pack("!H", packet_id)))
                    if self._on_message is not None:
                        self._on_message(message)
                elif kind in (PUBACK, SUBACK):
                    (packet_id,) = struct.unpack_from("!H", body)
                    fut = self._waiting.pop((kind, packet_id), None)
                    if fut is not None and not fut.done():
                        fut.set_result(body[2:])
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            error = MqttError(f"connection to the broker lost: {exc}")
        finally:
            for fut in self._waiting.values():
                if not fut.done():
                    fut.set_exception(error)
            self._waiting.clear()

    async def close(self) -> None:
        with contextlib.suppress(ConnectionError):
            self._writer.write(encode_packet(DISCONNECT, 0, b""))
            await self._writer.drain()
        self._writer.close()
        with contextlib.suppress(ConnectionError):
            await self._writer.wait_closed()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


# Broker -----------------------------------------------------------------------------------


def find_mosquitto() -> str:
    found = shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin:/sbin")
    if found is None:
        raise BrokerMissing(
            "MQTT baseline skipped: no mosquitto binary (Debian: apt-get install mosquitto)"
        )
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-2000:]


async def _wait_port(port: int, proc: asyncio.subprocess.Process, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        if proc.returncode is not None:
            raise MqttError(f"mosquitto exited ({proc.returncode}): {_tail(log)}")
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"mosquitto did not listen on {port}") from None
            await asyncio.sleep(0.02)
            continue
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
        return


@contextlib.asynccontextmanager
async def running_broker() -> AsyncIterator[int]:
    """A private mosquitto on a free loopback port (the port is yielded); not a service."""
    binary = find_mosquitto()
    with tempfile.TemporaryDirectory(prefix="mqtt-baseline-") as tmp:
        port = _free_port()
        conf = Path(tmp) / "mosquitto.conf"
        conf.write_text(
            f"listener {port} 127.0.0.1\n"
            "allow_anonymous true\n"
            "persistence false\n"
            "log_dest stderr\n"
            "log_type error\n"
            "log_type warning\n"
        )
        log = Path(tmp) / "mosquitto.log"
        with log.open("wb") as err:
            proc = await asyncio.create_subprocess_exec(
                binary,
                "-c",
                str(conf),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=err,
            )
        try:
            await _wait_port(port, proc, log)
            yield port
        finally:
            if proc.returncode is None:
                proc.terminate()
                try:
                    await asyncio.wait_for(proc.wait(), 5)
                except TimeoutError:
                    proc.kill()
                    await proc.wait()


# Measurement ------------------------------------------------------------------------------


async def _subscriber(port: int, topic: str) -> None:
    """The subscriber process: one line per message, "<payload> <CLOCK_MONOTONIC ns>"."""
    out = sys.stdout.buffer

    def received(message: Message) -> None:
        stamp = clock_ns()
        out.write(message.payload + b" " + str(stamp).encode() + b"\n")
        out.flush()

    client = await MqttClient.connect("127.0.0.1", port, f"bench-sub-{os.getpid()}", received)
    try:
        granted = await client.subscribe(topic, qos=1)
        if granted != 1:
            raise MqttError(f"the broker granted QoS {granted}, not 1")
        out.write(b"ready\n")
        out.flush()
        # Run until the parent closes our stdin (or kills us).
        stdin = asyncio.StreamReader()
        await asyncio.get_running_loop().connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin
        )
        await stdin.read()
    finally:
        await client.close()


async def mqtt_qos1_latency(n: int) -> list[float]:
    """Seconds from publish (QoS 1) to the subscriber's receipt, for ``n`` messages sent
    one at a time: the next goes once the PUBACK and the receipt are both in.
    Raises BrokerMissing when mosquitto is not installed."""
    topic = f"bench/{os.getpid()}"
    samples: list[float] = []
    async with running_broker() as port:
        sub = await asyncio.create_subprocess_exec(
            sys.executable,
            SCRIPT,
            "--subscriber",
            str(port),
            topic,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        assert sub.stdout is not None and sub.stdin is not None
        publisher: MqttClient | None = None
        try:
            ready = await asyncio.wait_for(sub.stdout.readline(), START_TIMEOUT_S)
            if ready.strip() != b"ready":
                raise MqttError(f"the subscriber did not start: {ready!r}")
            publisher = await MqttClient.connect("127.0.0.1", port, f"bench-pub-{os.getpid()}")
            for i in range(-WARMUP, n):
                payload = str(i).encode()
                t0 = clock_ns()
                await asyncio.wait_for(publisher.publish(topic, payload, qos=1), MESSAGE_TIMEOUT_S)
                line = await asyncio.wait_for(sub.stdout.readline(), MESSAGE_TIMEOUT_S)
                got, _, stamp = line.strip().partition(b" ")
                if got != payload:
                    raise MqttError(f"expected message {i}, the subscriber got {line!r}")
                if i >= 0:
                    samples.append((int(stamp) - t0) / 1e9)
        finally:
            if publisher is not None:
                await publisher.close()
            sub.stdin.close()
            try:
                await asyncio.wait_for(sub.wait(), 5)
            except TimeoutError:
                sub.kill()
                await sub.wait()
    return samples


def percentiles_ms(samples: list[float]) -> tuple[float, float]:
    qs = statistics.quantiles(samples, n=100, method="inclusive")
    return qs[49] * 1000, qs[98] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--subscriber", nargs=2, metavar=("PORT", "TOPIC"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.subscriber is not None:
        asyncio.run(_subscriber(int(args.subscriber[0]), args.subscriber[1]))
        return
    try:
        samples = asyncio.run(mqtt_qos1_latency(args.messages))
    except BrokerMissing as exc:
        print(exc)
        return
    p50, p99 = percentiles_ms(samples)
    print(
        f"MQTT QoS 1 publish -> subscriber ({len(samples)} messages, mosquitto): "
        f"p50 {p50:.3f} ms, p99 {p99:.3f} ms"
    )


if __name__ == "__main__":
    main()
