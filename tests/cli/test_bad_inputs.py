"""What a new user hit (issue 12): every bad input as a real ``unipush-bridge``
process, against a real daemon with its embedded gateway and a web server that is
not a gateway. Each row asserts the exit code, that stderr names the cause, and that
no traceback is printed."""

from __future__ import annotations

import json
import shlex
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.procs import CLI, DaemonProc, Listener, cli, free_port, wait_for
from unipush_bridge import __version__

#: A bus address that leads nowhere: the daemon runs without a notification server.
#: Every command a new user meets in the README.
COMMANDS = ["run", "gateway", "send", "cid", "listen", "notify", "channel", "history", "status"]
NO_SERVER = {"DBUS_SESSION_BUS_ADDRESS": "unix:path=/nonexistent/bus", "DISPLAY": ""}


@dataclass
class Stack:
    daemon: DaemonProc
    cid: str
    gateway: str  # the embedded gateway's base HTTP URL
    web: str  # a web server that is not a gateway
    announced: str  # what `run` printed


class NotAGateway(BaseHTTPRequestHandler):
    """Another web server: HTML at /, an empty 404 under /empty, text 404 elsewhere."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.path.startswith("/empty"):
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = b"<html><body><h1>Welcome to nginx!</h1></body></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("cli")
    daemon = DaemonProc(tmp / "daemon", None, env=NO_SERVER).start()
    web = ThreadingHTTPServer(("127.0.0.1", 0), NotAGateway)
    thread = threading.Thread(target=web.serve_forever, daemon=True)
    thread.start()
    try:
        status = daemon.status()
        ws = str(status["gateway"])
        http = "http://" + ws.removeprefix("ws://").split("/", 1)[0]
        announced = wait_for(lambda: "listen:" in daemon.stdout() and daemon.stdout(), 10, "run")
        yield Stack(daemon, status["cid"], http, f"http://127.0.0.1:{web.server_port}", announced)
    finally:
        web.shutdown()
        daemon.stop()


@dataclass
class Case:
    """One bad input: the arguments (given the stack), the exit code, and what stderr
    must say."""

    name: str
    argv: Callable[[Stack], list[str]]
    code: int
    says: list[str] = field(default_factory=list)
    never: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)


def local(*args: str) -> Callable[[Stack], list[str]]:
    return lambda s: [*args, "--socket", str(s.daemon.socket)]


def config_file(text: str) -> str:
    """A config file a new user wrote by hand, with the typo under test."""
    path = Path(tempfile.mkdtemp(prefix="cli-config-")) / "config.toml"
    path.write_text(text)
    return str(path)


def send(*args: str, url: str | None = None) -> Callable[[Stack], list[str]]:
    def argv(s: Stack) -> list[str]:
        base = s.gateway if url is None else url.format(gw=s.gateway, web=s.web)
        rest = [a.replace("{cid}", s.cid) for a in args]
        return ["send", "--gateway-url", base, "--title", "T", "--content", "C", *rest]

    return argv


CASES = [
    # item 2: a JSON typo in --payload exits 2 showing where parsing stopped
    Case(
        "payload-typo",
        send("--to", "{cid}", "--payload", '{"hello": 1'),
        2,
        ["--payload", "not JSON", "column 12", "^", "--payload '\"text\"'"],
    ),
    Case(
        "notify-payload-typo",
        local("notify", "--content", "x", "--payload", "[1,"),
        2,
        ["--payload", "not JSON"],
    ),
    # item 3: an unknown flag is named first, before missing required ones
    Case("send-bogus", lambda s: ["send", "--bogus"], 2, ["--bogus"], ["required"]),
    Case("notify-bogus", lambda s: ["notify", "--bogus=1"], 2, ["--bogus"], ["required"]),
    Case("channel-set-bogus", local("channel", "set", "--bogus"), 2, ["--bogus"], ["required"]),
    # an empty --to would be an empty target: a broadcast to every cid of the appId
    Case("send-empty-to", send("--to", ""), 2, ["--to", "empty", "broadcast"]),
    # item 4: nothing accepted exits 1 naming each target and why
    Case(
        "send-not-cids",
        send("--to", "abc", "--to", "0123"),
        1,
        ["abc: target user is invalid", "0123", "not a cid", "no target accepted"],
    ),
    Case(
        "send-unknown-appid",
        send("--appid", "__UNI__NOPE", "--to", "{cid}"),
        1,
        ["{cid}: target user is invalid", "appId __UNI__NOPE", "no target accepted"],
    ),
    # item 5: something that is not the gateway: the URL, the status, and what it is not
    Case(
        "send-other-web-server",
        send("--to", "{cid}", url="{web}"),
        1,
        ["{web}/api/__UNI__DESKTOP/sendMessage", "HTTP 200", "not a unipush-bridge gateway"],
        ["<html>"],
    ),
    Case(
        "send-wrong-path",
        send("--to", "{cid}", url="{gw}/push"),
        1,
        ["{gw}/push/api/", "HTTP 404", "not a unipush-bridge gateway"],
    ),
    Case(
        "send-empty-404",
        send("--to", "{cid}", url="{web}/empty"),
        1,
        ["HTTP 404", "an empty body", "not a unipush-bridge gateway"],
    ),
    Case(
        "send-nothing-listening",
        send("--to", "{cid}", url=f"http://127.0.0.1:{free_port()}"),
        1,
        ["cannot reach the gateway"],
    ),
    Case("send-not-http", send("--to", "{cid}", url="ws://x"), 2, ["--gateway-url", "http(s)"]),
    # item 6: usage errors exit 2 with the rule, never a traceback
    *(
        Case(
            f"history-limit-{n}",
            local("history", "--limit", n),
            2,
            ["--limit", "from 1 to 10000", repr(n)],
        )
        for n in ("0", "-1", "100000", "ten")
    ),
    Case("cid-timeout", local("cid", "--timeout", "soon"), 2, ["--timeout", "soon"]),
    Case("notify-delay", local("notify", "--content", "x", "--delay", "x"), 2, ["--delay"]),
    # float() reads "3_0" as 30; the daemon (JavaScript's Number()) reads no number.
    Case(
        "notify-delay-underscore",
        local("notify", "--content", "x", "--delay", "3_0"),
        2,
        ["--delay"],
    ),
    Case("no-daemon", lambda s: ["status", "--socket", "/nonexistent/d.sock"], 1, ["/nonexistent"]),
    # item 7: a typo'd key names the nearest real one, not a flag made from the typo
    Case(
        "run-config-typo",
        lambda s: ["run", "--print-config", "--config", config_file("embeded_port = 0\n")],
        2,
        ["embeded_port", "did you mean 'embedded_port'"],
        ["UNIPUSH_BRIDGE_EMBEDED_PORT", "--embeded-port"],
    ),
    Case(
        "gateway-config-typo",
        lambda s: ["gateway", "--config", config_file("prot = 8788\n")],
        2,
        ["prot", "did you mean 'port'"],
    ),
    # item 7: a typo'd variable is a warning naming the nearest one; the run goes on
    Case(
        "run-env-typo",
        lambda s: ["run", "--print-config"],
        0,
        ["UNIPUSH_BRIDGE_EMBEDED_PORT", "UNIPUSH_BRIDGE_EMBEDDED_PORT"],
        env={"UNIPUSH_BRIDGE_EMBEDED_PORT": "0"},
    ),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_bad_input(stack: Stack, case: Case) -> None:
    """issue 12 items 2, 3, 4, 5, 6, 7: exit code and a message naming the cause."""
    res = cli(*case.argv(stack), env={**NO_SERVER, **case.env}, timeout=20)
    fill = {"{cid}": stack.cid, "{web}": stack.web, "{gw}": stack.gateway}

    def filled(text: str) -> str:
        for key, value in fill.items():
            text = text.replace(key, value)
        return text

    assert res.returncode == case.code, (res.stdout, res.stderr)
    assert "Traceback" not in res.stderr + res.stdout
    for text in map(filled, case.says):
        assert text in res.stderr, (text, res.stderr)
    for text in map(filled, case.never):
        assert text not in res.stderr + res.stdout, (text, res.stderr, res.stdout)


def test_some_targets_accepted_exits_0_and_names_the_others(stack: Stack) -> None:
    """issue 12 item 4: a partly accepted send is a success that still names the
    target that did not get it."""
    res = cli(*send("--to", "{cid}", "--to", "abc")(stack), env=NO_SERVER)
    assert res.returncode == 0, res.stderr
    assert "abc: target user is invalid (not a cid" in res.stderr
    assert "no target accepted" not in res.stderr
    answer = json.loads(res.stdout)
    (targets,) = answer["data"].values()
    assert targets[stack.cid] == "successed_online"


def test_empty_history_says_so(stack: Stack) -> None:
    """issue 12 item 9: an empty history is said, on stderr; --json prints []."""
    res = cli(*local("history")(stack), env=NO_SERVER)
    assert res.returncode == 0, res.stderr
    assert res.stdout == ""
    assert "no notifications shown yet" in res.stderr
    res = cli(*local("history", "--json")(stack), env=NO_SERVER)
    assert json.loads(res.stdout) == []


def test_the_commands_run_prints_produce_what_the_readme_shows(
    stack: Stack, tmp_path: Path
) -> None:
    """issue 12 item 9: the printed `listen` has --json, and the printed `send` makes
    it print the README's sample line."""
    lines = dict(line.split(": ", 1) for line in stack.announced.splitlines() if ": " in line)
    listen_argv, send_argv = shlex.split(lines["listen"]), shlex.split(lines["send a push"])
    assert listen_argv[1:3] == ["listen", "--json"]
    assert send_argv[1] == "send"
    listener = Listener(stack.daemon.socket, tmp_path / "listener.log", NO_SERVER)
    listener.args = listen_argv[1:]  # exactly as printed
    listener.start()
    try:
        wait_for(lambda: stack.daemon.status()["listeners"] >= 1, 10, "the listener")
        sent = subprocess.run(
            [*CLI, *send_argv[1:]], capture_output=True, text=True, env=None, check=False
        )
        assert sent.returncode == 0, sent.stderr
        # Earlier rows' pushes were held for a listener: they come too, before ours.
        event = wait_for(
            lambda: next((e for e in listener.events() if e["data"]["title"] == "Hello"), None),
            10,
            "the pasted push on the listener",
        )
    finally:
        listener.stop()
    assert event["type"] == "receive"
    assert event["data"] == {
        "unipush_version": "2.0",
        "title": "Hello",
        "content": "from unipush-bridge",
        "payload": {"hello": 1},
        "__UUID__": event["push_id"],
        "appid": "__UNI__DESKTOP",
    }
    assert set(event) == {"type", "data", "push_id"}


def test_version_and_help_list_every_command() -> None:
    """issue 12 item 16: --version, and --help gives each command one line."""
    res = cli("--version")
    assert (res.returncode, res.stdout.strip()) == (0, f"unipush-bridge {__version__}")
    res = cli("--help")
    assert res.returncode == 0
    lines = {line.split()[0]: line.split()[1:] for line in res.stdout.splitlines() if line.strip()}
    for name in COMMANDS:
        assert len(lines.get(name, [])) >= 3, (name, res.stdout)  # a line of what it is for


def test_a_local_command_answers_fast(stack: Stack) -> None:
    """Sanity for the table above: the daemon is up and answers a plain command."""
    start = time.monotonic()
    res = cli(*local("cid")(stack), env=NO_SERVER)
    assert res.stdout.strip() == stack.cid
    assert time.monotonic() - start < 10
