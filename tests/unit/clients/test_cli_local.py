"""The CLI's local API commands against the fake daemon: what they print and their
exit codes (a failed call prints its errMsg, never a traceback)."""

from __future__ import annotations

import json

import pytest

from tests.unit.clients.fakedaemon import CID, DETAILS, ThreadedDaemon
from unipush_bridge import cli
from unipush_bridge.wire.local import fail


def run(threaded: ThreadedDaemon, *argv: str) -> int:
    return cli.main([*argv, "--socket", str(threaded.daemon.path)])


def test_channel_list_prints_one_line_per_channel(
    threaded: ThreadedDaemon, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(threaded, "channel", "list") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        f"{'DcloudChannelID':24} importance=3 sound=default  Default",
        f"{'news':24} importance=4 sound=pling  News",
    ]
    assert "getChannelDetails" in threaded.daemon.methods()


def test_channel_list_json_prints_the_details(
    threaded: ThreadedDaemon, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(threaded, "channel", "list", "--json") == 0
    assert json.loads(capsys.readouterr().out) == DETAILS


def test_channel_set_prints_err_msg(
    threaded: ThreadedDaemon, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["channel", "set", "--channel-id", "a", "--channel-desc", "A", "--importance", "2"]
    assert run(threaded, *args) == 0
    assert capsys.readouterr().out == "setPushChannel:ok\n"
    sent = next(r for r in threaded.daemon.requests if r.method == "setPushChannel")
    assert sent.params == {
        "channelId": "a",
        "channelDesc": "A",
        "enableLights": False,
        "enableVibration": False,
        "importance": 2,
    }


def test_cid_and_notify(threaded: ThreadedDaemon, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(threaded, "cid") == 0
    assert run(threaded, "notify", "--content", "hi", "--payload", '{"k": 1}') == 0
    assert capsys.readouterr().out == f"{CID}\ncreatePushMessage:ok\n"


def test_a_failed_call_prints_its_err_msg_and_exits_1(
    threaded: ThreadedDaemon, capsys: pytest.CaptureFixture[str]
) -> None:
    threaded.daemon.override["status"] = fail("status", "broken")
    threaded.daemon.override["getChannelDetails"] = fail("request", "unknown method")
    assert run(threaded, "status") == 1
    assert run(threaded, "channel", "list") == 1
    out = capsys.readouterr()
    assert out.out == ""
    assert out.err == "status:fail broken\nrequest:fail unknown method\n"


def test_no_daemon_names_the_socket(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["status", "--socket", "/nonexistent/d.sock"]) == 1
    assert "/nonexistent/d.sock" in capsys.readouterr().err
