"""The gateway and the daemon as real processes on loopback, with no notification
server on the bus: receive events, offline storage, cid persistence, errors."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.procs import (
    DaemonProc,
    GatewayProc,
    Listener,
    Proc,
    cli,
    free_port,
    wait_for,
    wait_listeners,
)
from unipush_bridge.gateway.store import GatewayStore
from unipush_bridge.paths import DEFAULT_APPID

#: A bus address that leads nowhere: the daemon must run without a notification server.
NO_SERVER = {"DBUS_SESSION_BUS_ADDRESS": "unix:path=/nonexistent/bus", "DISPLAY": ""}


@pytest.fixture
def gateway(tmp_path: Path, procs: list[Proc]) -> GatewayProc:
    gw = GatewayProc(tmp_path / "gw", env=NO_SERVER).start()
    procs.append(gw)
    return gw


def start_daemon(
    tmp_path: Path, procs: list[Proc], gateway: str | None, name: str = "daemon"
) -> DaemonProc:
    daemon = DaemonProc(tmp_path / name, gateway, env=NO_SERVER).start()
    procs.append(daemon)
    return daemon


def start_listener(
    tmp_path: Path, procs: list[Proc], daemon: DaemonProc, name: str = "listener"
) -> Listener:
    before = daemon.status()["listeners"]
    listener = Listener(daemon.socket, tmp_path / f"{name}.log", NO_SERVER).start()
    procs.append(listener)
    wait_listeners(daemon, before + 1)
    return listener


def push(gateway: GatewayProc, cid: str, **fields: object) -> dict[str, object]:
    body = {"push_clientid": cid, "title": "T", "content": "C", "payload": {"n": 1}, **fields}
    status, answer = gateway.send(body)
    assert status == 200, answer
    return answer


def statuses(answer: dict[str, object]) -> dict[str, str]:
    data = answer["data"]
    assert isinstance(data, dict)
    ((taskid, per_cid),) = data.items()
    assert taskid.startswith("RASL_")
    return dict(per_cid)


def test_embedded_gateway_prints_cid_and_a_send_command_that_works(
    tmp_path: Path, procs: list[Proc]
) -> None:
    daemon = start_daemon(tmp_path, procs, gateway=None)
    out = wait_for(lambda: "send a push:" in daemon.stdout() and daemon.stdout(), 10, "banner")
    cid = re.search(r"^cid: ([0-9a-f]{32})$", out, re.M)
    assert cid is not None, out
    assert cid.group(1) == daemon.cid()
    command = re.search(r"^send a push: (.+)$", out, re.M)
    assert command is not None
    argv = shlex.split(command.group(1))
    assert argv[1] == "send"
    listener = start_listener(tmp_path, procs, daemon)
    sent = cli(*argv[1:], env=NO_SERVER)
    assert sent.returncode == 0, sent.stderr
    assert statuses(json.loads(sent.stdout)) == {cid.group(1): "successed_online"}
    (event,) = listener.wait_events(1)
    push_id = event.pop("push_id")
    assert re.fullmatch(r"[0-9a-f]{32}", push_id)  # for an app to dedupe
    assert event == {
        "type": "receive",
        "data": {
            "unipush_version": "2.0",
            "title": "Hello",
            "content": "from unipush-bridge",
            "payload": {"hello": 1},
            "__UUID__": push_id,  # uni's pages dedupe by res.data.__UUID__
            "appid": DEFAULT_APPID,
        },
    }


def test_receive_reaches_every_listener_once(
    tmp_path: Path, procs: list[Proc], gateway: GatewayProc
) -> None:
    daemon = start_daemon(tmp_path, procs, gateway.ws_url)
    first = start_listener(tmp_path, procs, daemon, "l1")
    second = start_listener(tmp_path, procs, daemon, "l2")
    cid = daemon.cid()
    for i in range(5):
        answer = push(gateway, cid, payload=f"text {i}")
        assert statuses(answer) == {cid: "successed_online"}
    for listener in (first, second):
        events = listener.wait_events(5)
        assert [e["data"]["payload"] for e in events] == [f"text {i}" for i in range(5)]
        assert {e["type"] for e in events} == {"receive"}
    assert len(first.events()) == 5


def test_cid_survives_a_restart_and_offline_messages_wait_for_it(
    tmp_path: Path, procs: list[Proc], gateway: GatewayProc
) -> None:
    daemon = start_daemon(tmp_path, procs, gateway.ws_url)
    cid = daemon.cid()
    assert re.fullmatch(r"[0-9a-f]{32}", cid)
    assert daemon.stop(signal.SIGTERM) == 0
    answer = push(gateway, cid, payload={"while": "offline"})
    assert statuses(answer) == {cid: "successed_offline"}
    restarted = start_daemon(tmp_path, procs, gateway.ws_url)
    assert restarted.cid() == cid
    # No listener and no notification server: the message is held, not lost, and
    # reaches the first app that subscribes.
    wait_for(lambda: restarted.status()["held_for_listener"] == 1, 10, "held message")
    listener = start_listener(tmp_path, procs, restarted)
    (event,) = listener.wait_events(1)
    assert event["type"] == "receive"
    assert event["data"]["payload"] == {"while": "offline"}
    assert restarted.status()["held_for_listener"] == 0


def test_force_notification_without_a_server_still_reaches_listeners(
    tmp_path: Path, procs: list[Proc], gateway: GatewayProc
) -> None:
    daemon = start_daemon(tmp_path, procs, gateway.ws_url)
    listener = start_listener(tmp_path, procs, daemon)
    push(gateway, daemon.cid(), force_notification=True)
    (event,) = listener.wait_events(1)
    assert event["data"]["force_notification"] is True
    warnings = [e for e in daemon.logs() if e["event"].startswith("no notification server")]
    assert len(warnings) == 1  # said once, not per message


def test_get_push_client_id_waits_for_registration(tmp_path: Path, procs: list[Proc]) -> None:
    port = free_port()
    daemon = DaemonProc(tmp_path / "d", f"ws://127.0.0.1:{port}", env=NO_SERVER)
    procs.append(daemon.start(wait_registered=False))
    early = cli("cid", "--socket", str(daemon.socket), "--timeout", "0.2", env=NO_SERVER)
    assert early.returncode == 1
    assert early.stderr.startswith("getPushClientId:fail register fail:")
    waiting = Proc(
        ["cid", "--socket", str(daemon.socket), "--timeout", "30"], tmp_path / "cid.log", NO_SERVER
    ).start()
    procs.append(waiting)
    gw = GatewayProc(tmp_path / "gw", port=port, env=NO_SERVER).start()
    procs.append(gw)
    assert waiting.proc is not None
    assert waiting.proc.wait(30) == 0
    assert re.fullmatch(r"[0-9a-f]{32}\n", waiting.stdout())


def test_create_push_message_errors_in_uni_form(
    tmp_path: Path, procs: list[Proc], gateway: GatewayProc
) -> None:
    daemon = start_daemon(tmp_path, procs, gateway.ws_url)
    empty = cli("notify", "--socket", str(daemon.socket), "--content", "", env=NO_SERVER)
    assert empty.returncode == 1
    assert empty.stderr.strip() == "createPushMessage:fail content is required"
    no_server = cli("notify", "--socket", str(daemon.socket), "--content", "x", env=NO_SERVER)
    assert no_server.returncode == 1
    assert no_server.stderr.strip() == "createPushMessage:fail no notification server"


def test_send_validation_errors_name_the_field(gateway: GatewayProc) -> None:
    status, answer = gateway.send(
        {"push_clientid": "x", "title": "t", "content": "c", "payload": {}, "request_id": "short"}
    )
    assert status == 400
    assert answer["errCode"] == "uni-cloud-push-error-20001"
    assert "request_id" in answer["errMsg"]
    status, answer = gateway.send({"title": "t"}, method="noSuchMethod")
    assert status == 404
    assert "noSuchMethod" in answer["errMsg"]


def test_request_id_is_sent_once(tmp_path: Path, procs: list[Proc], gateway: GatewayProc) -> None:
    daemon = start_daemon(tmp_path, procs, gateway.ws_url)
    listener = start_listener(tmp_path, procs, daemon)
    cid = daemon.cid()
    first = push(gateway, cid, request_id="order-12345", payload="once")
    again = push(gateway, cid, request_id="order-12345", payload="twice")
    assert first == again
    push(gateway, cid, payload="after")
    events = listener.wait_events(2)
    assert [e["data"]["payload"] for e in events] == ["once", "after"]


def test_local_socket_is_private(tmp_path: Path, procs: list[Proc], gateway: GatewayProc) -> None:
    daemon = start_daemon(tmp_path, procs, gateway.ws_url)
    assert stat.S_IMODE(os.stat(daemon.socket).st_mode) == 0o600
    store = tmp_path / "daemon" / "__UNI__DESKTOP.sqlite3"
    assert stat.S_IMODE(os.stat(store).st_mode) == 0o600


def test_a_second_daemon_on_the_same_socket_is_refused(
    tmp_path: Path, procs: list[Proc], gateway: GatewayProc
) -> None:
    daemon = start_daemon(tmp_path, procs, gateway.ws_url)
    second = cli(
        "run",
        "--gateway",
        gateway.ws_url,
        "--state-dir",
        str(tmp_path / "other"),
        "--socket",
        str(daemon.socket),
        env=NO_SERVER,
        timeout=20,
    )
    assert second.returncode == 1
    assert "another daemon is already listening" in second.stderr


def test_a_second_run_for_the_same_appid_names_the_first_and_leaves_it_alone(
    tmp_path: Path, procs: list[Proc]
) -> None:
    """One daemon per appid and state dir: the refused start names the running one and
    touches nothing of it (its socket, its state); status still finds it."""
    daemon = start_daemon(tmp_path, procs, None)  # with its embedded gateway
    pid = daemon.status()["pid"]
    port = daemon.status()["gateway"].split(":")[2].split("/")[0]
    second = cli(
        "run",
        "--state-dir",
        str(tmp_path / "daemon"),
        "--embedded-port",
        str(free_port()),
        env=NO_SERVER,
        timeout=20,
    )
    assert second.returncode == 1
    assert f"pid {pid}" in second.stderr
    assert str(daemon.socket) in second.stderr
    assert daemon.socket.exists()
    assert daemon.status()["pid"] == pid
    # Another appid in the same state dir, on the first one's embedded port: the
    # message says whose port it is.
    third = cli(
        "run",
        "--appid",
        "__UNI__OTHER",
        "--state-dir",
        str(tmp_path / "daemon"),
        "--embedded-port",
        port,
        env=NO_SERVER,
        timeout=20,
    )
    assert third.returncode == 1
    assert f"port {port} is held by the embedded gateway of the running daemon" in third.stderr
    assert f"pid {pid}" in third.stderr
    assert daemon.status()["pid"] == pid


def test_bad_config_file_exits_2_naming_the_key(tmp_path: Path) -> None:
    conf = tmp_path / "daemon.toml"
    conf.write_text('appid = "__UNI__X"\nembeded_port = 9000\n')
    res = cli("run", "--config", str(conf), "--state-dir", str(tmp_path), env=NO_SERVER)
    assert res.returncode == 2
    assert "embeded_port" in res.stderr and "unknown key" in res.stderr
    conf.write_text("embedded_port = 70000\n")
    res = cli("run", "--config", str(conf), "--state-dir", str(tmp_path), env=NO_SERVER)
    assert res.returncode == 2
    assert "embedded_port" in res.stderr and "65535" in res.stderr
    conf.write_text("appid = \n")
    res = cli("run", "--config", str(conf), env=NO_SERVER)
    assert res.returncode == 2
    assert "not valid TOML" in res.stderr
    res = cli("run", "--config", str(tmp_path / "missing.toml"), env=NO_SERVER)
    assert res.returncode == 2
    assert "not found" in res.stderr


def test_bad_environment_value_exits_2(tmp_path: Path) -> None:
    res = cli(
        "run", "--state-dir", str(tmp_path), env={**NO_SERVER, "UNIPUSH_BRIDGE_PING_INTERVAL": "-1"}
    )
    assert res.returncode == 2
    assert "ping_interval" in res.stderr and "UNIPUSH_BRIDGE_PING_INTERVAL" in res.stderr


def test_gateway_refuses_a_public_address_without_secrets(tmp_path: Path) -> None:
    res = cli("gateway", "--host", "0.0.0.0", "--port", "0", "--data-dir", str(tmp_path))
    assert res.returncode == 2
    assert "server_secret" in res.stderr and "client_token" in res.stderr


def test_client_commands_without_a_daemon_say_so(tmp_path: Path) -> None:
    res = cli("status", "--socket", str(tmp_path / "none.sock"))
    assert res.returncode == 1
    assert "no daemon is listening" in res.stderr


def test_usage_error_exits_2() -> None:
    res = cli("send", "--title", "x")
    assert res.returncode == 2
    assert "--to" in res.stderr


def test_python_client_reads_like_uni(
    tmp_path: Path, procs: list[Proc], gateway: GatewayProc
) -> None:
    daemon = start_daemon(tmp_path, procs, gateway.ws_url)
    script = tmp_path / "app.py"
    script.write_text(f"""
import json, sys
from unipush_bridge.clients import SyncPushClient
seen = []
client = SyncPushClient({str(daemon.socket)!r})
cb = seen.append
client.on_push_message(cb)
client.on_push_message(cb)  # the same callback twice is one listener
results = []
client.get_push_client_id(success=lambda r: results.append(("success", r["errMsg"])),
                          complete=lambda r: results.append(("complete", r["errMsg"])))
failed = client.create_push_message(fail=lambda r: results.append(("fail", r["errMsg"])))
print(json.dumps({{"results": results, "failed": failed}}))
sys.stdout.flush()
import time
deadline = time.time() + 10
while not seen and time.time() < deadline:
    time.sleep(0.02)
time.sleep(0.3)
print(json.dumps(seen))
client.off_push_message()
client.close()
""")
    proc = subprocess.Popen(
        [sys.executable, str(script)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, **NO_SERVER},
    )
    assert proc.stdout is not None
    first = json.loads(proc.stdout.readline())
    assert first["results"] == [
        ["success", "getPushClientId:ok"],
        ["complete", "getPushClientId:ok"],
        ["fail", "createPushMessage:fail content is required"],
    ]
    assert first["failed"]["errMsg"] == "createPushMessage:fail content is required"
    wait_listeners(daemon, 1)
    push(gateway, daemon.cid(), payload="to python")
    seen = json.loads(proc.stdout.readline())
    assert proc.wait(10) == 0
    (push_id,) = [event.pop("push_id") for event in seen]
    assert re.fullmatch(r"[0-9a-f]{32}", push_id)
    assert seen == [
        {
            "type": "receive",
            "data": {
                "unipush_version": "2.0",
                "title": "T",
                "content": "C",
                "payload": "to python",
                "__UUID__": push_id,
                "appid": DEFAULT_APPID,
            },
        }
    ]


def test_gateway_data_reset_does_not_swallow_new_messages(
    tmp_path: Path, procs: list[Proc], gateway: GatewayProc
) -> None:
    daemon = start_daemon(tmp_path, procs, gateway.ws_url)
    listener = start_listener(tmp_path, procs, daemon)
    cid = daemon.cid()
    for i in range(3):
        push(gateway, cid, payload=f"before {i}")
    listener.wait_events(3)
    assert gateway.stop() == 0
    shutil.rmtree(tmp_path / "gw")
    fresh = GatewayProc(tmp_path / "gw", port=gateway.port, env=NO_SERVER).start()
    procs.append(fresh)
    wait_for(lambda: daemon.status()["connection"]["state"] == "connected", 15, "reconnect")
    assert daemon.cid() == cid  # the daemon keeps its cid; the new gateway learns it
    assert statuses(push(fresh, cid, payload="after reset")) == {cid: "successed_online"}
    events = listener.wait_events(4)
    assert events[-1]["data"]["payload"] == "after reset"


def test_sigterm_stops_within_5_s_with_exit_0_and_nothing_lost(
    tmp_path: Path, procs: list[Proc], gateway: GatewayProc
) -> None:
    daemon = start_daemon(tmp_path, procs, gateway.ws_url)
    listener = start_listener(tmp_path, procs, daemon)
    cid = daemon.cid()
    for i in range(50):
        push(gateway, cid, payload={"n": i})
    started = time.monotonic()
    assert daemon.stop(signal.SIGTERM, timeout=10) == 0
    assert time.monotonic() - started < 5
    assert "stopped" in [e["event"] for e in daemon.logs()]
    # Whatever the stop cut short is still there for the next run.
    restarted = start_daemon(tmp_path, procs, gateway.ws_url)
    second = start_listener(tmp_path, procs, restarted, "l2")
    for i in range(50, 60):
        push(gateway, cid, payload={"n": i})
    first_half = {e["data"]["payload"]["n"] for e in listener.events()}
    wait_for(
        lambda: first_half | {e["data"]["payload"]["n"] for e in second.events()} >= set(range(60)),
        15,
        "all 60 messages across the restart",
    )


def test_sighup_reloads_the_config_file(
    tmp_path: Path, procs: list[Proc], gateway: GatewayProc
) -> None:
    conf = tmp_path / "daemon.toml"
    conf.write_text('log_level = "info"\napp_name = "Before"\n')
    daemon = DaemonProc(
        tmp_path / "d", gateway.ws_url, env=NO_SERVER, extra=["--config", str(conf)]
    )
    procs.append(daemon.start())
    conf.write_text('log_level = "info"\napp_name = "After"\nclient_token = "a-new-token-1234"\n')
    daemon.send_signal(signal.SIGHUP)
    wait_for(lambda: "config reloaded" in [e["event"] for e in daemon.logs()], 10, "reload")
    restart_only = [e for e in daemon.logs() if e["event"].startswith("these settings change")]
    assert restart_only and restart_only[-1]["keys"] == ["client_token"]
    res = cli("notify", "--socket", str(daemon.socket), "--content", "", env=NO_SERVER)
    assert res.returncode == 1  # still the same daemon and socket after the reload
    conf.write_text("ping_interval = -5\n")
    daemon.send_signal(signal.SIGHUP)
    wait_for(
        lambda: (
            "config reload failed; keeping the running config"
            in [e["event"] for e in daemon.logs()]
        ),
        10,
        "refused reload",
    )
    assert daemon.alive()
    assert daemon.status()["connection"]["state"] == "connected"


def test_a_long_backlog_drains_in_order(
    tmp_path: Path, procs: list[Proc], gateway: GatewayProc
) -> None:
    daemon = start_daemon(tmp_path, procs, gateway.ws_url)
    cid = daemon.cid()
    assert daemon.stop() == 0
    store = GatewayStore(tmp_path / "gw" / "gateway.sqlite3", time.time)
    body = {"title": "T", "content": "C", "taskid": "RASL_backlog"}
    with store.transaction():
        for i in range(3000):
            store.add_message(
                "__UNI__DESKTOP",
                cid,
                f"m{i:05d}",
                "RASL_backlog",
                {**body, "payload": {"n": i}},
                3600,
            )
    store.close()
    restarted = start_daemon(tmp_path, procs, gateway.ws_url)
    # No listener and no notification server: all 3000 wait, in order, for one.
    wait_for(lambda: restarted.status()["held_for_listener"] == 3000, 30, "the backlog")
    status = restarted.status()
    assert status["connection"]["backlog_at_connect"] == 3000
    assert status["counters"]["received"] == 3000
    listener = start_listener(tmp_path, procs, restarted)
    events = listener.wait_events(3000, timeout=30)
    assert [e["data"]["payload"]["n"] for e in events] == list(range(3000))
    assert gateway.send({"push_clientid": cid, "title": "t", "content": "c", "payload": "x"})[0]


def test_listen_follow_survives_a_daemon_restart(
    tmp_path: Path, procs: list[Proc], gateway: GatewayProc
) -> None:
    daemon = start_daemon(tmp_path, procs, gateway.ws_url)
    cid = daemon.cid()
    follower = Proc(
        ["listen", "--json", "--follow", "--socket", str(daemon.socket)],
        tmp_path / "follow.log",
        NO_SERVER,
    ).start()
    procs.append(follower)
    wait_listeners(daemon, 1)
    push(gateway, cid, payload="before")
    wait_for(lambda: "before" in follower.stdout(), 10, "the first push")
    assert daemon.stop() == 0
    restarted = start_daemon(tmp_path, procs, gateway.ws_url)
    wait_listeners(restarted, 1, timeout=15)
    push(gateway, cid, payload="after")
    wait_for(lambda: "after" in follower.stdout(), 10, "the push after the restart")
    assert follower.alive()
    payloads = [json.loads(line)["data"]["payload"] for line in follower.stdout().splitlines()]
    assert payloads == ["before", "after"]
