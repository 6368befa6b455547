"""issue 13: cid and notify answered without the full CLI (unipush_bridge.launch).

The fast path must send exactly what the full CLI sends, leave to the full CLI every
command line it is not sure of (before anything is sent), and load none of argparse,
pathlib, typing or socket.py. Real daemons answer these commands in
tests/integration/test_loop.py, whose `cli(...)` runs the installed entry point.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from unipush_bridge import cli, launch, localcall

SOCK = "/nonexistent/dir/x.sock"

SAME = [
    ["cid"],
    ["cid", "--timeout", "0.5"],
    ["cid", "--timeout=5", "--appid", "__UNI__A"],
    ["cid", "--appid", ""],
    ["cid", "--socket", SOCK],
    ["notify", "--content", "x"],
    ["notify", "--content=", "--title", "t"],
    ["notify", "--content", "x", "--payload", '{"k": [1, "二"]}', "--cover"],
    ["notify", "--content", "x", "--payload", "null", "--sound", "none"],
    ["notify", "--content", "x", "--delay", "1.5", "--when", "1700000000000"],
    ["notify", "--content", "x", "--when", "2030-01-01T00:00:00Z", "--channel-id", "c"],
    ["notify", "--content", "x", "--when", "²"],  # isdigit(), not int(): the daemon refuses
    ["notify", "--category", "im.received", "--icon", "/a/b.png", "--content", "x y"],
    ["notify", "--socket", SOCK, "--content", "x", "--appid", "__UNI__B"],
]

FULL_CLI_DECIDES = [
    [],
    ["--help"],
    ["cid", "--help"],
    ["cid", "-h"],
    ["cid", "--time", "1"],  # an abbreviation argparse accepts
    ["cid", "--timeout", "soon"],
    ["cid", "--timeout=inf"],  # no socket timeout takes it: the full CLI says so
    ["cid", "--timeout", "nan"],
    ["cid", "--timeout"],
    ["cid", "--timeout", "1", "--timeout", "2"],
    ["cid", "--socket", "./x.sock"],  # argparse's Path writes it as x.sock
    ["cid", "--socket", "a//b.sock"],
    ["cid", "--socket", ""],
    ["cid", "extra"],
    ["notify"],
    ["notify", "--title", "t"],
    ["notify", "--content", "-x"],
    ["notify", "--content", "x", "--payload", "{oops"],
    ["notify", "--content", "x", "--sound", "loud"],
    ["notify", "--content", "x", "--cover=yes"],
    ["notify", "--content", "x", "--delay", "later"],
    ["notify", "--content", "x", "--delay", "1e400"],  # Infinity: no JSON for it
    ["notify", "--content", "x", "--", "y"],
    ["status"],
    ["history", "--limit", "3"],
]


class Recorder:
    """Stands in for the socket call and records what would have been sent."""

    calls: list[tuple[str, float, str, dict[str, Any]]]

    def __init__(self, path: Any, timeout: float = localcall.ANSWER_TIMEOUT_S) -> None:
        self.path, self.timeout = os.fspath(path), timeout

    def __call__(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        Recorder.calls.append((self.path, self.timeout, method, params))
        return {"errMsg": f"{method}:ok", "cid": "0" * 32}


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> type[Recorder]:
    Recorder.calls = []
    monkeypatch.setattr(localcall, "DaemonCall", Recorder)
    monkeypatch.setenv("XDG_RUNTIME_DIR", "/run/user/1234")
    return Recorder


@pytest.mark.parametrize("argv", SAME, ids=lambda a: " ".join(a)[:40])
def test_the_fast_path_sends_what_the_full_cli_sends(
    argv: list[str], recorder: type[Recorder], capsys: pytest.CaptureFixture[str]
) -> None:
    launch.parse_fast(argv)  # answered here: no fallback
    assert launch.main(argv) == 0
    fast_out = capsys.readouterr()
    assert cli.main(argv) == 0
    full_out = capsys.readouterr()
    fast, full = recorder.calls
    assert fast == full
    assert fast_out == full_out


@pytest.mark.parametrize("argv", FULL_CLI_DECIDES, ids=lambda a: " ".join(a)[:40] or "none")
def test_what_the_fast_path_is_not_sure_of_goes_to_the_full_cli(
    argv: list[str],
    recorder: type[Recorder],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[list[str]] = []
    monkeypatch.setattr(cli, "main", lambda a: seen.append(a) or 0)
    assert launch.main(argv) == 0
    assert seen == [argv]
    assert recorder.calls == []


def test_the_appid_comes_from_the_environment_as_in_the_full_cli(
    recorder: type[Recorder], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("UNIPUSH_BRIDGE_APPID", "__UNI__ENV")
    launch.main(["cid"])
    cli.main(["cid"])
    fast, full = recorder.calls
    assert fast == full and fast[0] == "/run/user/1234/unipush-bridge/__UNI__ENV.sock"


def test_a_daemon_error_is_reported_as_the_full_cli_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sock = str(tmp_path / "none.sock")
    fast = launch.main(["cid", "--socket", sock])
    fast_err = capsys.readouterr().err
    full = cli.main(["cid", "--socket", sock])
    assert (fast, fast_err) == (full, capsys.readouterr().err)
    assert fast == 1 and f"no daemon is listening on {sock}" in fast_err


def test_a_failed_call_prints_its_errmsg(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    class Failing(Recorder):
        def __call__(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
            return {"errMsg": f"{method}:fail content: must be text \x1b[2J"}

    monkeypatch.setattr(localcall, "DaemonCall", Failing)
    assert launch.main(["notify", "--content", "x"]) == 1
    err = capsys.readouterr().err
    assert "createPushMessage:fail content: must be text \\x1b[2J" in err


LIGHT_PROBE = """
import sys
from unipush_bridge import launch
code = launch.main(sys.argv[1:])
print(sorted(m for m in sys.modules if m in {mods!r}))
"""
NOT_IN_THE_FAST_PATH = [
    "argparse",
    "pathlib",
    "typing",
    "socket",
    "asyncio",
    "tempfile",
    "unipush_bridge.cli",
]


@pytest.mark.parametrize(
    "argv", [["cid"], ["notify", "--content", "x", "--payload", '{"a": 1}']], ids=str
)
def test_the_fast_path_loads_only_what_it_uses(argv: list[str], tmp_path: Path) -> None:
    """In a fresh interpreter, with the default socket (XDG_RUNTIME_DIR set)."""
    env = {**os.environ, "XDG_RUNTIME_DIR": str(tmp_path)}
    res = subprocess.run(
        [sys.executable, "-c", LIGHT_PROBE.format(mods=set(NOT_IN_THE_FAST_PATH)), *argv],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
        check=False,
    )
    assert "no daemon is listening" in res.stderr  # it got as far as the socket
    assert json.loads(res.stdout.strip().splitlines()[-1].replace("'", '"')) == []
