"""The web endpoint's decisions as plain functions (issue 15 item 2): which Host, Origin
and hello let a page in, and the pairing file. No sockets; runtime/web.py's I/O is
tested in tests/integration/test_web.py."""

from __future__ import annotations

import http
import json
import os
import stat
from pathlib import Path

import pytest
from websockets.datastructures import Headers

from unipush_bridge.errors import ConfigError
from unipush_bridge.runtime import web, webpair

PORT = 8790
ALLOWED = frozenset({"http://localhost:5173"})


@pytest.mark.parametrize(
    "host", ["127.0.0.1:8790", "localhost:8790", "[::1]:8790", "LOCALHOST:8790"]
)
def test_loopback_hosts_with_our_port_pass(host: str) -> None:
    assert web.host_refusal(host, PORT) is None


@pytest.mark.parametrize(
    "host",
    [None, "evil.example:8790", "127.0.0.1", "127.0.0.1:8791", "127.0.0.2:8790", "0.0.0.0:8790"],
)
def test_other_hosts_are_refused_dns_rebinding(host: str | None) -> None:
    why = web.host_refusal(host, PORT)
    assert why is not None
    if host is not None:
        assert "DNS rebinding" in why and repr(host) in why


def test_origin_rules() -> None:
    assert web.origin_refusal("http://localhost:5173", ALLOWED) is None
    assert web.origin_refusal("HTTP://LOCALHOST:5173/", ALLOWED) is None  # as browsers vary
    assert "Origin header is required" in str(web.origin_refusal(None, ALLOWED))
    for origin in ("null", "http://localhost:5174", "file://", "http://evil.example"):
        assert web.origin_refusal(origin, ALLOWED) == (
            f"Origin {origin!r} is not in the web_origins setting"
        )


def test_refusal_order_host_path_origin_connections() -> None:
    good = Headers([("Host", "localhost:8790"), ("Origin", "http://localhost:5173")])
    assert web.refusal("/ws", good, PORT, ALLOWED, 0) is None
    assert web.refusal("/ws?x=1", good, PORT, ALLOWED, 0) is None
    bad_host = Headers([("Host", "evil:8790"), ("Origin", "http://localhost:5173")])
    assert web.refusal("/ws", bad_host, PORT, ALLOWED, 0).status == http.HTTPStatus.FORBIDDEN  # type: ignore[union-attr]
    assert web.refusal("/nope", good, PORT, ALLOWED, 0).status == http.HTTPStatus.NOT_FOUND  # type: ignore[union-attr]
    full = web.refusal("/ws", good, PORT, ALLOWED, web.MAX_CONNECTIONS)
    assert full is not None and full.status == http.HTTPStatus.SERVICE_UNAVAILABLE


@pytest.mark.parametrize("twice", ["Host", "Origin"])
def test_a_header_the_checks_read_may_come_once(twice: str) -> None:
    pairs = [("Host", "localhost:8790"), ("Origin", "http://localhost:5173")]
    headers = Headers([*pairs, next(p for p in pairs if p[0] == twice)])
    assert web.refusal("/ws", headers, PORT, ALLOWED, 0) == web.Refusal(
        http.HTTPStatus.BAD_REQUEST,
        f"more than one {twice} header: a request must carry exactly one",
    )


def test_pairing_file_keeps_hashes_only_and_is_private(tmp_path: Path) -> None:
    path = webpair.pairs_file(tmp_path / "state", "__UNI__A")
    token, entry = webpair.pair(path, "http://localhost:5173/")
    assert entry.origin == "http://localhost:5173"
    text = path.read_text()
    assert token not in text and webpair.digest(token) in text
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert webpair.check(path, "http://localhost:5173", token) is None
    assert "another origin" in str(webpair.check(path, "http://localhost:5174", token))
    assert "pairing token is required" in str(webpair.check(path, "http://localhost:5173", None))
    assert "unknown or revoked" in str(webpair.check(path, "http://localhost:5173", "x" * 43))
    assert webpair.revoke(path, entry.id) == [entry]
    assert "unknown or revoked" in str(webpair.check(path, "http://localhost:5173", token))


def test_revoke_by_origin_and_a_damaged_file(tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    webpair.pair(path, "http://a.example")
    webpair.pair(path, "http://a.example")
    _, kept = webpair.pair(path, "http://b.example")
    assert len(webpair.revoke(path, "http://A.example/")) == 2
    assert webpair.load(path) == [kept]
    path.write_text("{not json")
    with pytest.raises(ConfigError, match="cannot read the web pairings"):
        webpair.check(path, "http://b.example", "t")


@pytest.mark.parametrize("value", ["null", "file:///x", "http://a.example/path", "ws://a", ""])
def test_what_is_not_an_origin_is_named(value: str) -> None:
    with pytest.raises(ConfigError, match=r"web_origins: .* is not a web origin"):
        webpair.normalize_origin(value, "web_origins")


def test_hello_rules(tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    token, _ = webpair.pair(path, "http://localhost:5173")
    hello = json.dumps({"id": 0, "method": "hello", "params": {"token": token}})
    assert web.hello_refusal(hello, path, "http://localhost:5173") == (0, None)
    rid, why = web.hello_refusal('{"id": 3, "method": "status"}', path, "http://localhost:5173")
    assert rid == 3 and "first message must be a hello" in str(why)
    rid, why = web.hello_refusal("nope", path, "http://localhost:5173")
    assert rid is None and "first message must be a hello: request is not JSON" in str(why)
