"""Stop a listener again and again (SIGKILL, SIGTERM) while ~300 pushes a second stream:
no push is lost, and a push reaches a restarted listener a second time only if it was in
flight at the stop.

A listener acknowledges each push after its callback returned; the daemon keeps what no
listener acknowledged, and when a listener goes away its unacknowledged events go to the
listeners that remain, or are held for the next one that subscribes. Each listener run
here is its own ``tests/faults/listener.py`` process (so its own PushClient, with an
empty id filter) writing to a file of its own: a line cut short by a kill cannot spoil
the next run's first line, and every duplicate can be told apart from a replay the
client filters.
"""

from __future__ import annotations

import itertools
import math
import random
import signal
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from tests.faults.conftest import Cleanup
from tests.faults.harness import (
    NO_SERVER,
    ReconnectingListener,
    api_call,
    exactly_once,
    listening_daemon,
    seeded_rng,
    send_n,
    settle,
    start_daemon_fast,
    wait_registered,
)
from tests.procs import DaemonProc, GatewayProc

#: Pushes a second the senders aim at, and how many threads send.
RATE = 300.0
SENDERS = 2
#: The least time the stream lasts; it goes on until STOPS stops were made.
STREAM_S = 25.0
#: The most time the stream lasts, whatever happens.
STREAM_MAX_S = 32.0
STOPS = 20
#: A stop comes this long after the run it stops has subscribed.
STOP_AFTER_S = (0.2, 1.2)
#: How long a push stays in flight at a listener (delivered, its callback not yet
#: returned, its ack not yet at the daemon), taken wide: a listener keeps up with the
#: stream, so few pushes are in flight at a stop (the socket-buffer rule lost 2-3 a
#: stop on average, 28 at most, on a loaded 2-core machine).
IN_FLIGHT_S = 0.1
#: Duplicates a stop may cause on average: the pushes in flight then. The bound is on
#: the total over all stops, so one stop that lands in a burst does not fail the test.
DUPS_PER_STOP = math.ceil(RATE * IN_FLIGHT_S)


class ListenerRuns(ReconnectingListener):
    """One listener slot, a new ``listener.py`` process after each stop; ``lines()`` (so
    ``numbers()``) is the union of every run's output, in run order."""

    def __init__(self, sock: Path, out_dir: Path, name: str, cleanup: Cleanup) -> None:
        self.out_dir = out_dir
        self.name = name
        self.cleanup = cleanup
        self.runs: list[ReconnectingListener] = []
        super().__init__(sock, out_dir / f"{name}-000.out")

    def start(self) -> ListenerRuns:
        run = ReconnectingListener(
            self.sock, self.out_dir / f"{self.name}-{len(self.runs):03d}.out"
        )
        self.runs.append(run.start())
        self.cleanup.add(run.stop)
        self.proc, self.out = run.proc, run.out
        return self

    def stop_with(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)
        self.proc.wait(5)

    def lines(self) -> list[dict[str, Any]]:
        return [line for run in self.runs for line in run.lines()]

    def wait_subscribed(self, count: int = 1, timeout: float = 15.0) -> None:
        """The current run is subscribed (``count`` counts within that run)."""
        run = self.runs[-1]
        try:
            run.wait_subscribed(count, timeout)
        except TimeoutError:
            try:
                status: object = api_call(self.sock, "status")
            except (OSError, ValueError, KeyError) as exc:
                status = exc
            err = run.out.with_suffix(".err")
            raise AssertionError(
                f"listener run #{len(self.runs) - 1} ({run.out.name}) did not subscribe "
                f"within {timeout:g} s; alive: {run.proc is not None and run.proc.poll() is None}; "
                f"its stderr: {err.read_text()[-2000:] if err.exists() else ''!r}; "
                f"the daemon's status: {status}"
            ) from None

    def per_run(self) -> list[list[int]]:
        return [run.numbers() for run in self.runs]


class Stream:
    """Numbered pushes at RATE a second, each with a request_id of its own (send_n), from
    SENDERS threads (one alone cannot keep the pace), until stopped."""

    def __init__(self, gateway: GatewayProc, cid: str, run: str) -> None:
        self.gateway, self.cid, self.run = gateway, cid, run
        self.sent: list[int] = []
        self.errors: list[BaseException] = []
        self._next = itertools.count()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._send, daemon=True) for _ in range(SENDERS)]
        self.started = self.ended = 0.0

    def start(self) -> Stream:
        self.started = time.monotonic()
        for thread in self._threads:
            thread.start()
        return self

    def _send(self) -> None:
        try:
            while not self._stop.is_set() and not self.errors:
                n = next(self._next)
                delay = self.started + n / RATE - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                send_n(self.gateway, self.cid, n, self.run, time.monotonic() + 20)
                self.sent.append(n)
        except BaseException as exc:
            self.errors.append(exc)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)
        self.ended = time.monotonic()
        assert not any(t.is_alive() for t in self._threads), "a sender hangs"
        assert not self.errors, self.errors

    def rate(self) -> float:
        return len(self.sent) / max(self.ended - self.started, 1e-9)


def stop_again_and_again(
    slot: ListenerRuns, stream: Stream, rng: random.Random, gaps: bool
) -> list[tuple[int, str, int]]:
    """Stop the slot's listener at random moments, SIGKILL and SIGTERM in turn, and start
    a new one right after (with ``gaps``, now and then after a moment with none). Returns
    (stop number, signal, pushes sent by then) for each stop."""
    stops: list[tuple[int, str, int]] = []
    begun = time.monotonic()
    while len(stops) < STOPS or time.monotonic() - begun < STREAM_S:
        if time.monotonic() - begun > STREAM_MAX_S:
            break
        slot.wait_subscribed()
        time.sleep(rng.uniform(*STOP_AFTER_S))
        sig = signal.SIGKILL if len(stops) % 2 == 0 else signal.SIGTERM
        slot.stop_with(sig)
        stops.append((len(stops) + 1, sig.name, len(stream.sent)))
        if gaps and rng.random() < 0.3:
            time.sleep(rng.uniform(0.05, 0.5))  # no listener at all: pushes are held
        slot.start()
    slot.wait_subscribed()
    return stops


def where_lost(missing: list[int], stops: list[tuple[int, str, int]]) -> str:
    """How many missing pushes each stop accounts for: a push lost at a stop was in
    flight then, so it is among the last sent before it (by the sender's count)."""
    at: Counter[tuple[int, str]] = Counter()
    for n in missing:
        after = [(k, f"#{k} {sig}") for k, sig, count in stops if count > n]
        at[after[0] if after else (len(stops) + 1, "after the last stop")] += 1
    return ", ".join(f"{where}: {count}" for (_, where), count in sorted(at.items()))


def across_runs_duplicates(per_run: list[list[int]]) -> tuple[list[int], list[int]]:
    """(numbers a single run got more than once, numbers more than one run got)."""
    within = sorted({n for numbers in per_run for n, c in Counter(numbers).items() if c > 1})
    runs_with: Counter[int] = Counter(n for numbers in per_run for n in set(numbers))
    across = sorted(n for n, c in runs_with.items() if c > 1)
    return within, across


def test_a_listener_killed_again_and_again_loses_nothing(
    tmp_path: Path, cleanup: Cleanup, gateway: GatewayProc
) -> None:
    rng = seeded_rng()
    daemon = DaemonProc(tmp_path / "daemon", gateway.ws_url, env=NO_SERVER)
    cleanup.proc(daemon)
    start_daemon_fast(daemon)
    cid = wait_registered(daemon)
    slot = ListenerRuns(daemon.socket, tmp_path, "run", cleanup).start()
    slot.wait_subscribed()

    stream = Stream(gateway, cid, "ls").start()
    try:
        stops = stop_again_and_again(slot, stream, rng, gaps=True)
    finally:
        stream.stop()
    expected = set(stream.sent)
    settle(slot, daemon, expected, timeout=10)
    time.sleep(0.5)  # a late duplicate would show up now

    per_run = slot.per_run()
    received = slot.numbers()
    missing = sorted(expected - set(received))
    within, across = across_runs_duplicates(per_run)
    bound = DUPS_PER_STOP * len(stops)
    print(
        f"sent {len(expected)} ({stream.rate():.0f}/s), received {len(set(received))} "
        f"distinct in {len(received)} events over {len(per_run)} runs; {len(stops)} stops; "
        f"duplicates {len(across)} across runs (bound {bound}), {len(within)} within a run; "
        f"missing {len(missing)}; pushes sent by each stop: {stops}"
    )
    assert len(stops) >= STOPS
    assert not missing, (
        f"{len(missing)} of {len(expected)} pushes never reached a listener run "
        f"(first missing: {missing[:20]}); lost at stop {where_lost(missing, stops)}"
    )
    assert not within, f"{len(within)} pushes reached one listener run twice: {within[:20]}"
    assert len(across) <= bound, (
        f"{len(across)} pushes reached more than one run, more than could be in flight at "
        f"{len(stops)} stops ({DUPS_PER_STOP} each): {across[:20]}"
    )
    assert set(received) == expected, f"unexpected: {sorted(set(received) - expected)[:20]}"


def test_with_a_second_listener_the_other_takes_over(
    tmp_path: Path, cleanup: Cleanup, gateway: GatewayProc
) -> None:
    """Each push goes to every subscribed listener, and what a stopped one had not
    acknowledged goes to the one that remains: the stable listener, subscribed from
    before the first push to the end, gets every push, once (one PushClient, so one id
    filter); nothing is lost from the union either."""
    rng = seeded_rng()
    daemon, cid, stable = listening_daemon(tmp_path, cleanup, gateway.ws_url, NO_SERVER)
    slot = ListenerRuns(daemon.socket, tmp_path, "killed", cleanup).start()
    slot.wait_subscribed()

    stream = Stream(gateway, cid, "lt").start()
    try:
        stops = stop_again_and_again(slot, stream, rng, gaps=False)
    finally:
        stream.stop()
    expected = set(stream.sent)
    settle(stable, daemon, expected, timeout=10)
    time.sleep(0.5)  # a late duplicate would show up now

    on_stable = stable.numbers()
    on_killed = slot.numbers()
    union = set(on_stable) | set(on_killed)
    missing = sorted(expected - union)
    print(
        f"sent {len(expected)} ({stream.rate():.0f}/s); {len(stops)} stops of the killed "
        f"listener over {len(slot.runs)} runs; stable got {len(set(on_stable))} distinct in "
        f"{len(on_stable)} events ({stable.suppressed()} replays dropped by its id filter), "
        f"the killed one {len(set(on_killed))} distinct; missing from both {len(missing)}"
    )
    assert len(stops) >= STOPS
    assert not missing, (
        f"{len(missing)} of {len(expected)} pushes reached neither listener "
        f"(first missing: {missing[:20]}); lost at stop {where_lost(missing, stops)}"
    )
    exactly_once(on_stable, expected)
