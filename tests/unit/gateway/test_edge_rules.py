"""The edge's rules as plain functions: Host and Origin (issue 10 item 4), the bounded
rate-limit table and a clock stepped back (items 10, 12), the source address key."""

from __future__ import annotations

import pytest

from unipush_bridge.gateway.access import AppSecrets, GatewayConfig, source_of
from unipush_bridge.gateway.ratelimit import RateLimiter
from unipush_bridge.gateway.server import content_type_refusal


class Clock:
    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "127.0.0.1:8787", "localhost:1", "LOCALHOST.", "[::1]:8787", "127.0.0.2"],
)
def test_loopback_names_are_accepted_on_any_port(host: str) -> None:
    """issue 10 item 4."""
    assert GatewayConfig().host_refusal(host) is None


@pytest.mark.parametrize(
    "host", ["evil.example", "evil.example:8787", "127.0.0.1.evil.example", "a b", "[zz]", ""]
)
def test_other_hosts_are_refused_naming_the_setting(host: str) -> None:
    """issue 10 item 4 (DNS rebinding)."""
    why = GatewayConfig().host_refusal(host)
    assert why is not None and "allowed_hosts" in why


def test_bound_address_and_allowed_hosts() -> None:
    """issue 10 item 4: the bound address counts, a wildcard bind does not, * is any."""
    lan = GatewayConfig(host="192.168.1.5", server_secret="s" * 16, client_token="c" * 16)
    assert lan.host_refusal("192.168.1.5:8787") is None
    assert lan.host_refusal("push.example.com") is not None
    anywhere = GatewayConfig(host="0.0.0.0", allowed_hosts=("Push.Example.com",))
    assert anywhere.host_refusal("0.0.0.0:8787") is not None
    assert anywhere.host_refusal("push.example.com:443") is None
    assert GatewayConfig(allowed_hosts=("*",)).host_refusal("anything.example") is None
    assert GatewayConfig().host_refusal(None) is None  # HTTP/1.0, no browser


def test_origins() -> None:
    """issue 10 item 4: none by default, 'null' never, listed ones exactly."""
    config = GatewayConfig(allowed_origins=("https://app.example",))
    assert GatewayConfig().origin_refusal("http://127.0.0.1:8787") is not None
    assert config.origin_refusal(None) is None
    assert config.origin_refusal("https://app.example") is None
    assert config.origin_refusal("HTTPS://APP.EXAMPLE/") is None
    assert config.origin_refusal("https://app.example:444") is not None
    assert config.origin_refusal("null") is not None


@pytest.mark.parametrize(
    ("ctype", "ok"),
    [
        ("application/json", True),
        ("Application/JSON; charset=UTF-8", True),
        ('application/json; charset="utf-8"', True),
        ("application/json; charset=latin-1", False),
        ("text/plain", False),
        ("text/plain;charset=UTF-8", False),
        ("application/x-www-form-urlencoded", False),
        (None, False),
    ],
)
def test_content_types(ctype: str | None, ok: bool) -> None:
    """issue 10 item 4: only JSON bodies; an empty body needs no type."""
    assert (content_type_refusal(ctype, has_body=True) is None) is ok
    assert content_type_refusal(ctype, has_body=False) is None


def test_a_clock_stepped_back_refills_nothing_and_blocks_nothing() -> None:
    """issue 10 item 10: even with a clock that steps back, a bucket is never left owing
    the step (before: tokens went negative, 598 s of 429 after a 600 s step)."""
    clock = Clock()
    limiter = RateLimiter(rate=10.0, burst=3, clock=clock)
    assert [limiter.allow("a") for _ in range(4)] == [True, True, True, False]
    clock.now -= 600
    assert limiter.retry_after("a") == pytest.approx(0.1)
    limiter.allow("a")  # re-anchored at the new time
    clock.now += 0.1
    assert limiter.allow("a") is True


def test_the_bucket_table_is_bounded() -> None:
    """issue 10 item 12: 100,000 keys leave at most max_keys buckets."""
    limiter = RateLimiter(rate=1.0, burst=2, clock=Clock(), max_keys=100)
    for n in range(100_000):
        limiter.allow(f"k{n}")
    assert len(limiter) == 100


def test_idle_full_buckets_are_dropped() -> None:
    """issue 10 item 12: once callers go quiet and their buckets refill, they go."""
    clock = Clock()
    limiter = RateLimiter(rate=1.0, burst=2, clock=clock)
    for n in range(50):
        limiter.allow(f"k{n}")
    clock.now += 10  # every bucket full again
    for _ in range(30):
        limiter.allow("busy")
        limiter.allow("busy")
    assert len(limiter) < 5


def test_a_recent_debt_survives_the_sweep() -> None:
    """issue 10 item 12: dropping full buckets never forgives a drained one."""
    clock = Clock()
    limiter = RateLimiter(rate=1.0, burst=2, clock=clock)
    assert limiter.allow("a") and limiter.allow("a")
    for n in range(20):
        limiter.allow(f"k{n}")
    assert limiter.allow("a") is False
    assert limiter.blocked("a") is True
    assert limiter.blocked("never-seen") is False


def test_source_addresses() -> None:
    """issue 10 item 12: an IPv6 caller counts by its /64, a mapped IPv4 as IPv4."""
    assert source_of("203.0.113.9") == "203.0.113.9"
    assert source_of("2001:db8:1:2::1") == source_of("2001:db8:1:2:ffff::9")
    assert source_of("2001:db8:1:2::1") != source_of("2001:db8:1:3::1")
    assert source_of("::ffff:198.51.100.1") == "198.51.100.1"
    assert source_of(None) == "unknown"


def test_rate_keys() -> None:
    """issue 10 item 12: listed apps by appId, otherwise one bucket per source."""
    assert GatewayConfig().rate_key("__UNI__A", "1.2.3.4") == "from 1.2.3.4"
    assert GatewayConfig().rate_key("__UNI__B", "1.2.3.4") == "from 1.2.3.4"
    listed = GatewayConfig(apps={"__UNI__A": AppSecrets()})
    assert listed.rate_key("__UNI__A", "1.2.3.4") == "__UNI__A"


def test_an_accepted_host_and_content_type_are_checked_once_and_refusals_every_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A sender's keep-alive link sends the same Host and Content-Type on every request:
    checked once (they were parsed again per sendMessage), a refused one every time,
    and the remembered values are bounded (the port in Host is the client's choice)."""
    from aiohttp.test_utils import make_mocked_request

    from unipush_bridge.gateway import server
    from unipush_bridge.gateway.server import Edge

    config = GatewayConfig()
    edge = Edge(config, Clock())
    checked: list[str | None] = []
    real = GatewayConfig.host_refusal
    monkeypatch.setattr(
        GatewayConfig, "host_refusal", lambda self, h: checked.append(h) or real(self, h)
    )
    json_type = {"Content-Type": "application/json"}

    def refusal(host: str, headers: dict[str, str] = json_type) -> int | None:
        req = make_mocked_request("POST", "/api/a/sendMessage", headers={"Host": host, **headers})
        monkeypatch.setattr(type(req), "body_exists", property(lambda self: True))
        answer = edge.refusal(req)
        return None if answer is None else answer.status

    for _ in range(50):
        assert refusal("127.0.0.1:8080") is None
    assert checked == ["127.0.0.1:8080"]
    for _ in range(3):
        assert refusal("evil.example") == 421
    assert checked.count("evil.example") == 3
    assert refusal("127.0.0.1:8080", {"Content-Type": "text/plain"}) == 415
    assert refusal("127.0.0.1:8080", {"Content-Type": "text/plain"}) == 415
    for port in range(200):
        assert refusal(f"localhost:{port}") is None
    assert len(edge._hosts_ok) == server.ACCEPTED_KEPT
