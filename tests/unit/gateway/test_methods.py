"""gateway/methods.py: uni-push's server methods on a real SQLite store, a fake clock
and a controllable set of online cids."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from unipush_bridge.gateway.errors import ILLEGAL, UniError
from unipush_bridge.gateway.methods import (
    MAX_CIDS_PER_ALIAS,
    METHODS,
    NOT_SUPPORTED,
    Context,
)
from unipush_bridge.gateway.store import GatewayStore

APP = "__UNI__A"
OTHER = "__UNI__B"
C1 = "c1" + "0" * 30
C2 = "c2" + "0" * 30
C3 = "c3" + "0" * 30
GHOST = "ff" * 16
#: 2024-05-10 10:00:00.5 local time: .5 s is exact in binary, so ms are too.
NOW = datetime(2024, 5, 10, 10, 0, 0, 500_000).timestamp()


def ms(t: float) -> str:
    """uni's last_login_time: epoch milliseconds as a string (exact: t ends in .5)."""
    return str(round(t * 1000))


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
def store(tmp_path: Path, clock: Clock) -> Iterator[GatewayStore]:
    s = GatewayStore(tmp_path / "gw" / "gateway.sqlite3", clock)
    s.register(APP, C1, 0)
    s.register(APP, C2, 0)
    s.register(APP, C3, 0)
    s.register(OTHER, GHOST, 0)  # known to another app only
    yield s
    s.close()


@pytest.fixture
def online() -> set[tuple[str, str]]:
    return set()


@pytest.fixture
def ctx(store: GatewayStore, online: set[tuple[str, str]], clock: Clock) -> Context:
    return Context(APP, store, lambda appid, cids: {c for c in cids if (appid, c) in online}, clock)


def call(ctx: Context, name: str, arg: Any = None) -> Any:
    return METHODS[name](ctx, arg)


class RollBack(Exception):
    """Ends a test's transaction the way a refusing method ends the server's."""


def refused(ctx: Context, name: str, arg: Any) -> UniError:
    with pytest.raises(UniError) as info:
        call(ctx, name, arg)
    err = info.value
    assert err.err_code == ILLEGAL
    assert err.status == 400
    assert err.envelope()["errCode"] == "uni-cloud-push-error-20001"
    return err


def other(ctx: Context) -> Context:
    return Context(OTHER, ctx.store, ctx.online, ctx.clock)


# the tables -----------------------------------------------------------------------------


def test_method_names() -> None:
    assert set(METHODS) == {
        "cidBindAlias",
        "getAliasByCid",
        "getCidByAlias",
        "unboundAlias",
        "unboundAllAlias",
        "cidBindCustomTags",
        "cidsBindCustomTag",
        "cidsUnboundCustomTag",
        "searchCustomTagByCid",
        "getClientStatusByCid",
        "getClientDetailByCid",
        "getReport",
        "getReportByGroupName",
        "getTodayReport",
        "bindUniIdDevice",
    }
    assert all(callable(m) for m in METHODS.values())


def test_not_supported_has_a_reason_for_each_name() -> None:
    assert "stopTaskByTaskid" in NOT_SUPPORTED
    assert "getReportByDate" in NOT_SUPPORTED
    for name, reason in NOT_SUPPORTED.items():
        assert isinstance(reason, str), name
        assert reason.strip(), name


def test_methods_and_not_supported_do_not_overlap() -> None:
    assert not set(METHODS) & set(NOT_SUPPORTED)
    assert "sendMessage" not in METHODS
    assert "sendMessage" not in NOT_SUPPORTED


def test_context_clock_defaults_to_time(store: GatewayStore) -> None:
    assert Context(APP, store, lambda a, c: False).clock is time.time


# aliases --------------------------------------------------------------------------------


def test_bind_alias_array(ctx: Context) -> None:
    assert (
        call(ctx, "cidBindAlias", [{"cid": C2, "alias": "alice"}, {"cid": C1, "alias": "alice"}])
        is None
    )
    assert call(ctx, "getCidByAlias", "alice") == {"cid": [C1, C2]}
    assert call(ctx, "getAliasByCid", C1) == {"alias": "alice"}
    assert call(ctx, "getAliasByCid", {"cid": C2}) == {"alias": "alice"}


def test_bind_alias_data_list(ctx: Context) -> None:
    call(ctx, "cidBindAlias", {"data_list": [{"cid": C1, "alias": "bob_1"}]})
    assert call(ctx, "getCidByAlias", {"alias": "bob_1"}) == {"cid": [C1]}


@pytest.mark.parametrize("alias", ["a", "A_9", "a" * 39, "张三", "user_张三_1"])
def test_alias_accepted(ctx: Context, alias: str) -> None:
    call(ctx, "cidBindAlias", [{"cid": C1, "alias": alias}])
    assert call(ctx, "getAliasByCid", C1) == {"alias": alias}


ALIAS_RULE = "must be under 40 letters, digits, '_' or Chinese characters"
PAIRS_RULE = "must be a non-empty array of {cid, alias}"


@pytest.mark.parametrize(
    ("arg", "err_msg"),
    [
        (None, f"data_list {PAIRS_RULE}"),
        ([], f"data_list {PAIRS_RULE}"),
        ({}, f"data_list {PAIRS_RULE}"),
        ({"data_list": []}, f"data_list {PAIRS_RULE}"),
        ({"data_list": {"cid": C1, "alias": "a"}}, f"data_list {PAIRS_RULE}"),
        ("alias", f"data_list {PAIRS_RULE}"),
        ([{"cid": C1, "alias": "a"}] * 1001, "data_list must have at most 1000 items"),
        ([5], "[0] must be an object {cid, alias}"),
        ([{"cid": C1, "alias": "a"}, "x"], "[1] must be an object {cid, alias}"),
        ([{"alias": "a"}], "[0].cid must be a non-empty string"),
        ([{"cid": 5, "alias": "a"}], "[0].cid must be a non-empty string"),
        ([{"cid": C1}], "[0].alias must be a non-empty string"),
        ([{"cid": C1, "alias": ""}], "[0].alias must be a non-empty string"),
        ([{"cid": C1, "alias": 7}], "[0].alias must be a non-empty string"),
        ([{"cid": C1, "alias": "a" * 40}], f"[0].alias {ALIAS_RULE}"),
        ([{"cid": C1, "alias": "a b"}], f"[0].alias {ALIAS_RULE}"),
        ([{"cid": C1, "alias": "a-b"}], f"[0].alias {ALIAS_RULE}"),
        ([{"cid": C1, "alias": "a@b.c"}], f"[0].alias {ALIAS_RULE}"),
        ([{"cid": C1, "alias": "ok"}, {"cid": C2, "alias": "no!"}], f"[1].alias {ALIAS_RULE}"),
    ],
)
def test_bind_alias_rules(ctx: Context, arg: Any, err_msg: str) -> None:
    assert refused(ctx, "cidBindAlias", arg).err_msg == f"illegal params: {err_msg}"
    assert call(ctx, "getAliasByCid", C1) == {"alias": None}  # checked before any write


def test_alias_with_a_trailing_newline_is_refused(ctx: Context) -> None:
    err = refused(ctx, "cidBindAlias", [{"cid": C1, "alias": "x" * 39 + "\n"}])
    assert err.err_msg == f"illegal params: [0].alias {ALIAS_RULE}"


@pytest.mark.parametrize("cid", [GHOST, "never-registered"])
def test_bind_alias_to_an_unknown_cid(ctx: Context, cid: str) -> None:
    err = refused(ctx, "cidBindAlias", [{"cid": cid, "alias": "alice"}])
    assert err.err_msg == f"illegal params: cid {cid} is not registered for this appId"
    assert call(ctx, "getCidByAlias", "alice") == {"cid": []}


def test_rebinding_moves_the_alias(ctx: Context) -> None:
    call(ctx, "cidBindAlias", [{"cid": C1, "alias": "alice"}, {"cid": C2, "alias": "alice"}])
    call(ctx, "cidBindAlias", [{"cid": C1, "alias": "bob"}])
    assert call(ctx, "getAliasByCid", C1) == {"alias": "bob"}
    assert call(ctx, "getCidByAlias", "alice") == {"cid": [C2]}
    assert call(ctx, "getCidByAlias", "bob") == {"cid": [C1]}


def test_eleventh_cid_on_one_alias_is_refused(ctx: Context, store: GatewayStore) -> None:
    assert MAX_CIDS_PER_ALIAS == 10
    cids = [f"{i:032x}" for i in range(11)]
    for cid in cids:
        store.register(APP, cid, 0)
    call(ctx, "cidBindAlias", [{"cid": c, "alias": "team"} for c in cids[:10]])
    err = refused(ctx, "cidBindAlias", [{"cid": cids[10], "alias": "team"}])
    assert err.err_msg == "illegal params: team already has 10 cids bound (the most)"
    assert call(ctx, "getAliasByCid", cids[10]) == {"alias": None}
    assert call(ctx, "getCidByAlias", "team") == {"cid": cids[:10]}
    # A cid already on the alias binds again without counting twice.
    call(ctx, "cidBindAlias", [{"cid": cids[0], "alias": "team"}])
    # Moving one away makes room.
    call(ctx, "cidBindAlias", [{"cid": cids[0], "alias": "elsewhere"}])
    call(ctx, "cidBindAlias", [{"cid": cids[10], "alias": "team"}])
    assert call(ctx, "getCidByAlias", "team") == {"cid": cids[1:]}


def test_aliases_are_per_app(ctx: Context, store: GatewayStore) -> None:
    call(ctx, "cidBindAlias", [{"cid": C1, "alias": "alice"}])
    assert call(other(ctx), "getCidByAlias", "alice") == {"cid": []}
    assert call(other(ctx), "getAliasByCid", C1) == {"alias": None}
    call(other(ctx), "cidBindAlias", [{"cid": GHOST, "alias": "alice"}])
    assert call(ctx, "getCidByAlias", "alice") == {"cid": [C1]}


@pytest.mark.parametrize("arg", [None, "", 5, {"cid": ""}, {"cid": 5}, {}, [C1]])
def test_get_alias_by_cid_rule(ctx: Context, arg: Any) -> None:
    assert (
        refused(ctx, "getAliasByCid", arg).err_msg
        == "illegal params: cid must be a non-empty string"
    )


def test_get_alias_of_an_unbound_or_unknown_cid(ctx: Context) -> None:
    assert call(ctx, "getAliasByCid", C1) == {"alias": None}
    assert call(ctx, "getAliasByCid", "nobody") == {"alias": None}


@pytest.mark.parametrize("arg", [None, "", 5, {"alias": ""}, {}, ["alice"]])
def test_get_cid_by_alias_rule(ctx: Context, arg: Any) -> None:
    err = refused(ctx, "getCidByAlias", arg)
    assert err.err_msg == "illegal params: alias must be a non-empty string"


def test_unbound_alias(ctx: Context) -> None:
    call(
        ctx,
        "cidBindAlias",
        [{"cid": C1, "alias": "alice"}, {"cid": C2, "alias": "alice"}, {"cid": C3, "alias": "bob"}],
    )
    assert call(ctx, "unboundAlias", [{"cid": C1, "alias": "alice"}]) is None
    assert call(ctx, "getCidByAlias", "alice") == {"cid": [C2]}
    # A pair that is not bound changes nothing.
    call(ctx, "unboundAlias", {"data_list": [{"cid": C3, "alias": "alice"}]})
    assert call(ctx, "getAliasByCid", C3) == {"alias": "bob"}
    call(ctx, "unboundAlias", {"data_list": [{"cid": C3, "alias": "bob"}]})
    assert call(ctx, "getAliasByCid", C3) == {"alias": None}


def test_unbound_alias_rules(ctx: Context) -> None:
    assert refused(ctx, "unboundAlias", []).err_msg == f"illegal params: data_list {PAIRS_RULE}"
    err = refused(ctx, "unboundAlias", [{"cid": C1, "alias": "a b"}])
    assert err.err_msg == f"illegal params: [0].alias {ALIAS_RULE}"


@pytest.mark.parametrize("form", ["string", "object"])
def test_unbound_all_alias(ctx: Context, form: str) -> None:
    call(
        ctx,
        "cidBindAlias",
        [{"cid": C1, "alias": "alice"}, {"cid": C2, "alias": "alice"}, {"cid": C3, "alias": "bob"}],
    )
    assert call(ctx, "unboundAllAlias", "alice" if form == "string" else {"alias": "alice"}) is None
    assert call(ctx, "getCidByAlias", "alice") == {"cid": []}
    assert call(ctx, "getAliasByCid", C1) == {"alias": None}
    assert call(ctx, "getCidByAlias", "bob") == {"cid": [C3]}


def test_unbound_all_alias_rule(ctx: Context) -> None:
    err = refused(ctx, "unboundAllAlias", {"alias": None})
    assert err.err_msg == "illegal params: alias must be a non-empty string"


# custom tags ----------------------------------------------------------------------------


def test_bind_custom_tags_overwrites(ctx: Context) -> None:
    assert call(ctx, "cidBindCustomTags", {"cid": C1, "custom_tag": ["vip", "beta", "vip"]}) is None
    assert call(ctx, "searchCustomTagByCid", C1) == {C1: ["beta", "vip"]}
    call(ctx, "cidBindCustomTags", {"cid": C1, "custom_tag": ["gold"]})
    assert call(ctx, "searchCustomTagByCid", C1) == {C1: ["gold"]}
    call(ctx, "cidBindCustomTags", {"cid": C1, "custom_tag": []})
    assert call(ctx, "searchCustomTagByCid", C1) == {C1: []}


def test_bind_custom_tags_limits_are_inclusive(ctx: Context) -> None:
    tags = [f"t{i:031d}" for i in range(100)]
    assert all(len(t) == 32 for t in tags)
    call(ctx, "cidBindCustomTags", {"cid": C1, "custom_tag": tags})
    assert call(ctx, "searchCustomTagByCid", C1) == {C1: sorted(tags)}


TAG_RULE = "must be at most 32 characters without spaces"


@pytest.mark.parametrize(
    ("arg", "err_msg"),
    [
        (None, "argument must be an object {cid, custom_tag}"),
        ([C1, ["vip"]], "argument must be an object {cid, custom_tag}"),
        ({"custom_tag": ["vip"]}, "cid must be a non-empty string"),
        ({"cid": C1}, "custom_tag must be an array of tags"),
        ({"cid": C1, "custom_tag": "vip"}, "custom_tag must be an array of tags"),
        ({"cid": C1, "custom_tag": ["t"] * 101}, "custom_tag must have at most 100 tags"),
        ({"cid": C1, "custom_tag": ["x" * 33]}, f"custom_tag[0] {TAG_RULE}"),
        ({"cid": C1, "custom_tag": ["ok", "has space"]}, f"custom_tag[1] {TAG_RULE}"),
        ({"cid": C1, "custom_tag": [" "]}, f"custom_tag[0] {TAG_RULE}"),
        ({"cid": C1, "custom_tag": ["ok", ""]}, "custom_tag[1] must be a non-empty string"),
        ({"cid": C1, "custom_tag": [5]}, "custom_tag[0] must be a non-empty string"),
        ({"cid": GHOST, "custom_tag": ["vip"]}, f"cid {GHOST} is not registered for this appId"),
    ],
)
def test_bind_custom_tags_rules(ctx: Context, arg: Any, err_msg: str) -> None:
    call(ctx, "cidBindCustomTags", {"cid": C1, "custom_tag": ["before"]})
    assert refused(ctx, "cidBindCustomTags", arg).err_msg == f"illegal params: {err_msg}"
    assert call(ctx, "searchCustomTagByCid", C1) == {C1: ["before"]}


@pytest.mark.parametrize("key", ["cids", "cid"])
def test_cids_bind_custom_tag(ctx: Context, key: str) -> None:
    call(ctx, "cidBindCustomTags", {"cid": C1, "custom_tag": ["old"]})
    result = call(ctx, "cidsBindCustomTag", {key: [C1, C2, GHOST], "custom_tag": "vip"})
    assert result == {C1: "true", C2: "true", GHOST: "false"}
    assert call(ctx, "searchCustomTagByCid", C1) == {C1: ["old", "vip"]}  # added, not replaced
    assert call(ctx, "searchCustomTagByCid", C2) == {C2: ["vip"]}
    assert call(other(ctx), "searchCustomTagByCid", GHOST) == {GHOST: []}


def test_cids_bind_custom_tag_takes_a_comma_separated_string(ctx: Context) -> None:
    result = call(ctx, "cidsBindCustomTag", {"cids": f"{C1}, {C2},{C1}", "custom_tag": "vip"})
    assert result == {C1: "true", C2: "true"}


@pytest.mark.parametrize(
    ("arg", "err_msg"),
    [
        (None, "argument must be an object {cids, custom_tag}"),
        ([C1], "argument must be an object {cids, custom_tag}"),
        (
            {"custom_tag": "vip"},
            "cids must be a cid, a comma-separated string of cids or an array",
        ),
        (
            {"cids": [C1, 5], "custom_tag": "vip"},
            "cids must be a cid, a comma-separated string of cids or an array",
        ),
        ({"cids": [], "custom_tag": "vip"}, "cids is required"),
        ({"cids": " , ", "custom_tag": "vip"}, "cids is required"),
        (
            {"cids": [f"{i}" for i in range(1001)], "custom_tag": "v"},
            "cids must list at most 1000 cids",
        ),
        ({"cids": [C1]}, "custom_tag must be a non-empty string"),
        ({"cids": [C1], "custom_tag": ["vip"]}, "custom_tag must be a non-empty string"),
        ({"cids": [C1], "custom_tag": "v i p"}, f"custom_tag {TAG_RULE}"),
        ({"cids": [C1], "custom_tag": "v" * 33}, f"custom_tag {TAG_RULE}"),
    ],
)
@pytest.mark.parametrize("name", ["cidsBindCustomTag", "cidsUnboundCustomTag"])
def test_cids_custom_tag_rules(ctx: Context, name: str, arg: Any, err_msg: str) -> None:
    assert refused(ctx, name, arg).err_msg == f"illegal params: {err_msg}"


def test_cids_unbound_custom_tag(ctx: Context) -> None:
    call(ctx, "cidBindCustomTags", {"cid": C1, "custom_tag": ["vip", "beta"]})
    call(ctx, "cidBindCustomTags", {"cid": C2, "custom_tag": ["vip"]})
    result = call(
        ctx, "cidsUnboundCustomTag", {"cids": [C1, C2, C3, "unknown"], "custom_tag": "vip"}
    )
    assert result == {C1: "true", C2: "true", C3: "true", "unknown": "true"}
    assert call(ctx, "searchCustomTagByCid", C1) == {C1: ["beta"]}
    assert call(ctx, "searchCustomTagByCid", C2) == {C2: []}
    assert call(ctx, "cidsUnboundCustomTag", {"cid": C1, "custom_tag": "beta"}) == {C1: "true"}
    assert call(ctx, "searchCustomTagByCid", C1) == {C1: []}


@pytest.mark.parametrize("form", ["string", "object", "list"])
def test_search_custom_tag_by_cid_forms(ctx: Context, form: str) -> None:
    call(ctx, "cidBindCustomTags", {"cid": C1, "custom_tag": ["vip"]})
    arg = {"string": C1, "object": {"cid": C1}, "list": [C1]}[form]
    assert call(ctx, "searchCustomTagByCid", arg) == {C1: ["vip"]}


def test_search_custom_tag_of_an_unknown_cid(ctx: Context) -> None:
    assert call(ctx, "searchCustomTagByCid", "unknown") == {"unknown": []}


@pytest.mark.parametrize("arg", [None, "", [C1, C2], [], {"cid": 5}, 5])
def test_search_custom_tag_rule(ctx: Context, arg: Any) -> None:
    err = refused(ctx, "searchCustomTagByCid", arg)
    assert err.err_msg == "illegal params: cid must be a non-empty string"


# devices --------------------------------------------------------------------------------


def test_client_status(ctx: Context, store: GatewayStore, clock: Clock, online: set) -> None:
    clock.now = NOW + 60
    store.touch(APP, C2)  # C2 was last seen a minute later
    online.add((APP, C1))
    online.add((OTHER, C2))  # online for another app only
    result = call(ctx, "getClientStatusByCid", f"{C1},{C2}, unknown ,{GHOST}")
    assert result == {
        C1: {"last_login_time": ms(NOW), "status": "online"},
        C2: {"last_login_time": ms(NOW + 60), "status": "offline"},
    }
    assert re.fullmatch(r"1715\d{6}500", result[C1]["last_login_time"])  # ms since the epoch


def test_client_status_forms(ctx: Context, online: set) -> None:
    online.add((APP, C3))
    expected = {
        C1: {"last_login_time": ms(NOW), "status": "offline"},
        C3: {"last_login_time": ms(NOW), "status": "online"},
    }
    assert call(ctx, "getClientStatusByCid", [C1, C3, C1]) == expected
    assert call(ctx, "getClientStatusByCid", {"cid": [C1, C3]}) == expected
    assert call(ctx, "getClientStatusByCid", {"cid": f"{C1},{C3}"}) == expected
    assert call(ctx, "getClientStatusByCid", C1) == {C1: expected[C1]}
    assert call(ctx, "getClientStatusByCid", "unknown") == {}


def test_client_status_asks_the_online_callable(store: GatewayStore, clock: Clock) -> None:
    asked: list[tuple[str, list[str]]] = []

    def online(appid: str, cids: list[str]) -> set[str]:
        asked.append((appid, cids))
        return set(cids)

    ctx = Context(APP, store, online, clock)
    result = call(ctx, "getClientStatusByCid", [C2, "unknown"])
    assert result[C2]["status"] == "online"
    assert asked == [(APP, [C2])]  # the known cids, asked once for all


def test_last_login_time_follows_registration(
    ctx: Context, store: GatewayStore, clock: Clock
) -> None:
    clock.now = NOW + 3600
    store.register(APP, C1, 0)
    assert call(ctx, "getClientStatusByCid", C1)[C1]["last_login_time"] == ms(NOW + 3600)


CID_LIST_RULE = "must be a cid, a comma-separated string of cids or an array"


@pytest.mark.parametrize(
    ("arg", "err_msg"),
    [
        (None, f"cid {CID_LIST_RULE}"),
        (5, f"cid {CID_LIST_RULE}"),
        ([C1, 5], f"cid {CID_LIST_RULE}"),
        ([C1, ""], f"cid {CID_LIST_RULE}"),
        ({"cids": [C1]}, f"cid {CID_LIST_RULE}"),
        ("", "cid is required"),
        (",,", "cid is required"),
        ([], "cid is required"),
        ([f"{i:032x}" for i in range(1001)], "cid must list at most 1000 cids"),
        (",".join(f"{i:032x}" for i in range(1001)), "cid must list at most 1000 cids"),
    ],
)
@pytest.mark.parametrize("name", ["getClientStatusByCid", "getClientDetailByCid"])
def test_cid_list_rules(ctx: Context, name: str, arg: Any, err_msg: str) -> None:
    assert refused(ctx, name, arg).err_msg == f"illegal params: {err_msg}"


def test_client_status_takes_1000_cids(ctx: Context) -> None:
    cids = [f"{i:032x}" for i in range(999)] + [C1]
    assert list(call(ctx, "getClientStatusByCid", cids)) == [C1]


def test_client_detail(ctx: Context, online: set, clock: Clock, store: GatewayStore) -> None:
    online.add((APP, C1))
    call(ctx, "cidBindAlias", [{"cid": C1, "alias": "alice"}])
    call(ctx, "cidBindCustomTags", {"cid": C1, "custom_tag": ["vip", "beta"]})
    clock.now = NOW + 86_400
    store.register(APP, C2, 0)  # re-registering keeps the creation time
    result = call(ctx, "getClientDetailByCid", [GHOST, C1, "unknown", C2])
    assert result["invalidCids"] == [GHOST, "unknown"]
    valid = result["validCids"]
    assert list(valid) == [C1, C2]
    assert valid[C1] == {
        "client_app_id": APP,
        "package_name": "unipush-bridge",
        "device_token": "",
        "phone_type": 0,
        "phoneModel": "desktop",
        "notificationSwitch": True,
        "createTime": "2024-05-10 10:00:00",
        "loginFreq": 0,
        "online": True,
        "alias": "alice",
        "custom_tag": ["beta", "vip"],
    }
    assert valid[C2]["online"] is False
    assert valid[C2]["alias"] is None
    assert valid[C2]["custom_tag"] == []
    assert valid[C2]["createTime"] == "2024-05-10 10:00:00"


def test_client_detail_forms(ctx: Context) -> None:
    assert call(ctx, "getClientDetailByCid", f"{C1},nope")["invalidCids"] == ["nope"]
    assert list(call(ctx, "getClientDetailByCid", {"cid": C1})["validCids"]) == [C1]
    assert call(ctx, "getClientDetailByCid", "nope") == {"validCids": {}, "invalidCids": ["nope"]}


# reports --------------------------------------------------------------------------------

ZERO = dict.fromkeys(("msg_num", "target_num", "receive_num", "display_num", "click_num"), 0)


def split(total: dict[str, int]) -> dict[str, Any]:
    return {"total": total, "gt": {k: v for k, v in total.items() if k != "msg_num"}}


def counters(msg: int, target: int, receive: int, display: int, click: int) -> dict[str, int]:
    return {
        "msg_num": msg,
        "target_num": target,
        "receive_num": receive,
        "display_num": display,
        "click_num": click,
    }


def deliver(store: GatewayStore, taskid: str, cids: list[str], group: str | None = None) -> None:
    """What sendMessage stores: one row per cid, and the task with its counters."""
    for cid in cids:
        store.add_message(APP, cid, f"m-{taskid}-{cid}", taskid, {"title": "t"}, 259_200)
    store.add_task(APP, taskid, group, target_num=len(cids) + 1, msg_num=len(cids))


def ack_all(store: GatewayStore, cid: str) -> None:
    rows = store.after(APP, cid, 0)
    store.ack(APP, cid, rows[-1][0])


def test_get_report_counts(ctx: Context, store: GatewayStore) -> None:
    deliver(store, "task-1", [C1, C2])
    ack_all(store, C1)
    assert store.count_receipt(APP, C1, f"m-task-1-{C1}", "task-1", "display")
    assert store.count_receipt(APP, C2, f"m-task-1-{C2}", "task-1", "display")
    # issue 10 item 14: a repeated receipt, and one from another app, count nothing
    assert not store.count_receipt(APP, C1, f"m-task-1-{C1}", "task-1", "display")
    assert store.count_receipt(APP, C1, f"m-task-1-{C1}", "task-1", "click")
    assert not store.count_receipt(OTHER, C1, f"m-task-1-{C1}", "task-1", "click")
    expected = {"task-1": {**split(counters(2, 3, 1, 2, 1)), "actionCntMap": {}}}
    assert call(ctx, "getReport", {"taskid": "task-1"}) == expected
    assert call(ctx, "getReport", "task-1") == expected
    ack_all(store, C2)
    assert call(ctx, "getReport", "task-1")["task-1"]["total"]["receive_num"] == 2


def test_get_report_of_several_tasks(ctx: Context, store: GatewayStore) -> None:
    deliver(store, "task-1", [C1])
    deliver(store, "task-2", [C1, C2])
    ack_all(store, C1)  # receives one message of each task
    result = call(ctx, "getReport", {"taskid": "task-1,task-2,unknown", "actionIdList": []})
    assert result == {
        "task-1": {**split(counters(1, 2, 1, 0, 0)), "actionCntMap": {}},
        "task-2": {**split(counters(2, 3, 1, 0, 0)), "actionCntMap": {}},
    }
    assert list(call(ctx, "getReport", {"taskid": ["task-2", "nope"]})) == ["task-2"]


def test_get_report_of_an_unknown_task(ctx: Context, store: GatewayStore) -> None:
    store.add_task(OTHER, "task-of-b", None, 1, 1)
    for arg in ("unknown", {"taskid": ["a", "b"]}, "task-of-b"):
        err = refused(ctx, "getReport", arg)
        assert err.err_msg == "illegal params: taskid matches no task of this appId"


@pytest.mark.parametrize("arg", [None, {}, 5, {"taskid": ""}, {"taskid": []}])
def test_get_report_rule(ctx: Context, arg: Any) -> None:
    assert refused(ctx, "getReport", arg).err_msg.startswith("illegal params: taskid ")


def test_get_report_by_group_name(ctx: Context, store: GatewayStore) -> None:
    deliver(store, "task-1", [C1], group="spring")
    deliver(store, "task-2", [C2, C3], group="spring")
    deliver(store, "task-3", [C1], group="autumn")
    deliver(store, "task-4", [C1])
    ack_all(store, C2)
    assert store.count_receipt(APP, C1, f"m-task-1-{C1}", "task-1", "click")
    assert store.count_receipt(APP, C1, f"m-task-3-{C1}", "task-3", "click")
    expected = {"spring": split(counters(3, 5, 1, 0, 1))}
    assert call(ctx, "getReportByGroupName", "spring") == expected
    assert call(ctx, "getReportByGroupName", {"group_name": "spring"}) == expected
    err = refused(ctx, "getReportByGroupName", "winter")
    assert err.err_msg == "illegal params: group_name matches no task of this appId"
    assert refused(other(ctx), "getReportByGroupName", "spring").err_msg.endswith(
        "no task of this appId"
    )


@pytest.mark.parametrize("arg", [None, "", {"group_name": 5}, ["spring"]])
def test_get_report_by_group_name_rule(ctx: Context, arg: Any) -> None:
    err = refused(ctx, "getReportByGroupName", arg)
    assert err.err_msg == "illegal params: group_name must be a non-empty string"


def test_today_report_counts_tasks_since_local_midnight(
    ctx: Context, store: GatewayStore, clock: Clock
) -> None:
    midnight = datetime(2024, 5, 10).timestamp()
    clock.now = midnight - 1  # yesterday 23:59:59
    deliver(store, "yesterday", [C1, C2, C3])
    clock.now = midnight  # the first instant of today counts
    deliver(store, "at-midnight", [C1])
    clock.now = midnight + 9 * 3600
    deliver(store, "morning", [C2])
    store.add_task(OTHER, "other-app", None, 5, 5)
    clock.now = NOW
    ack_all(store, C1)  # receives 'yesterday' and 'at-midnight'
    assert store.count_receipt(APP, C2, f"m-morning-{C2}", "morning", "display")
    assert store.count_receipt(APP, C3, f"m-yesterday-{C3}", "yesterday", "click")
    for arg in (None, {}):
        assert call(ctx, "getTodayReport", arg) == {"2024-05-10": split(counters(2, 4, 1, 1, 0))}


def test_today_report_of_a_day_without_tasks(
    ctx: Context, store: GatewayStore, clock: Clock
) -> None:
    deliver(store, "today", [C1])
    clock.now = datetime(2024, 5, 11, 0, 0, 1).timestamp()
    assert call(ctx, "getTodayReport") == {"2024-05-11": split(dict(ZERO))}


# uni-id mapping -------------------------------------------------------------------------


def test_bind_uni_id_device(ctx: Context, store: GatewayStore) -> None:
    assert not store.has_uniid(APP)
    assert call(ctx, "bindUniIdDevice", {"push_clientid": C1, "user_id": "u1"}) is None
    call(ctx, "bindUniIdDevice", {"push_clientid": C2, "user_id": "u1", "device_id": "d2"})
    call(ctx, "bindUniIdDevice", {"push_clientid": C3, "device_id": "d3"})
    assert store.has_uniid(APP)
    assert not store.has_uniid(OTHER)
    assert store.cids_for_users(APP, ["u1"]) == [C1, C2]
    assert store.cids_for_users(APP, ["u1", "nobody"]) == [C1, C2]
    assert store.cids_for_users(APP, ["nobody"]) == []
    assert store.cids_for_devices(APP, ["d2", "d3"]) == [C2, C3]
    assert store.cids_for_devices(APP, ["d1"]) == []
    assert store.cids_for_users(OTHER, ["u1"]) == []


def test_bind_uni_id_device_user_tags(ctx: Context, store: GatewayStore) -> None:
    call(ctx, "bindUniIdDevice", {"push_clientid": C1, "user_id": "u1", "user_tag": ["vip", "cn"]})
    call(ctx, "bindUniIdDevice", {"push_clientid": C2, "user_id": "u2", "user_tag": ["vip"]})
    call(ctx, "bindUniIdDevice", {"push_clientid": C3, "user_id": "u1"})  # u1's second device
    assert store.cids_for_user_tags(APP, ["vip"]) == [C1, C2, C3]
    assert store.cids_for_user_tags(APP, ["cn"]) == [C1, C3]
    assert store.cids_for_user_tags(APP, ["cn", "vip"]) == [C1, C2, C3]
    assert store.cids_for_user_tags(APP, ["none"]) == []
    # Tags belong to the user and are replaced as a whole.
    call(ctx, "bindUniIdDevice", {"push_clientid": C1, "user_id": "u1", "user_tag": ["cn"]})
    assert store.cids_for_user_tags(APP, ["vip"]) == [C2]
    assert store.cids_for_user_tags(OTHER, ["vip"]) == []


def test_bind_uni_id_device_rebinding_moves_the_cid(ctx: Context, store: GatewayStore) -> None:
    call(ctx, "bindUniIdDevice", {"push_clientid": C1, "user_id": "u1", "device_id": "d1"})
    call(ctx, "bindUniIdDevice", {"push_clientid": C1, "user_id": "u2", "device_id": "d9"})
    assert store.cids_for_users(APP, ["u1"]) == []
    assert store.cids_for_users(APP, ["u2"]) == [C1]
    assert store.cids_for_devices(APP, ["d1"]) == []
    assert store.cids_for_devices(APP, ["d9"]) == [C1]


@pytest.mark.parametrize(
    ("arg", "err_msg"),
    [
        (None, "argument must be an object {push_clientid, user_id, device_id, ...}"),
        ([C1], "argument must be an object {push_clientid, user_id, device_id, ...}"),
        ({"user_id": "u1"}, "push_clientid must be a non-empty string"),
        ({"push_clientid": ["x"], "user_id": "u1"}, "push_clientid must be a non-empty string"),
        (
            {"push_clientid": GHOST, "user_id": "u1"},
            f"push_clientid {GHOST} is not registered for this appId",
        ),
        ({"push_clientid": C1}, "user_id or device_id is required"),
        ({"push_clientid": C1, "user_tag": ["vip"]}, "user_id or device_id is required"),
        ({"push_clientid": C1, "user_id": 5}, "user_id must be a non-empty string"),
        ({"push_clientid": C1, "user_id": ""}, "user_id must be a non-empty string"),
        ({"push_clientid": C1, "device_id": ["d"]}, "device_id must be a non-empty string"),
    ],
)
def test_bind_uni_id_device_rules(
    ctx: Context, store: GatewayStore, arg: Any, err_msg: str
) -> None:
    assert refused(ctx, "bindUniIdDevice", arg).err_msg == f"illegal params: {err_msg}"
    assert not store.has_uniid(APP)


@pytest.mark.parametrize(
    ("arg", "err_msg"),
    [
        ({"push_clientid": C1, "device_id": "d1", "user_tag": ["vip"]}, "user_tag needs a user_id"),
        (
            {"push_clientid": C1, "user_id": "u1", "user_tag": "vip"},
            "user_tag must be an array of tags",
        ),
        (
            {"push_clientid": C1, "user_id": "u1", "user_tag": ["vip", ""]},
            "user_tag must be a non-empty string",
        ),
    ],
)
def test_bind_uni_id_device_user_tag_rules(
    ctx: Context, store: GatewayStore, arg: Any, err_msg: str
) -> None:
    # The server runs each method in a transaction, so a refusal leaves nothing behind.
    with pytest.raises(RollBack), store.transaction():
        assert refused(ctx, "bindUniIdDevice", arg).err_msg == f"illegal params: {err_msg}"
        raise RollBack  # as the server does when a method refuses
    assert not store.has_uniid(APP)
    assert store.cids_for_user_tags(APP, ["vip"]) == []
