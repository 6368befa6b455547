"""gateway/methods.py: uni-push's server methods on a real SQLite store, a fake clock
and a controllable set of online cids."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
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
from unipush_bridge.gateway.sqlitestore import SqliteStore
from unipush_bridge.gateway.storeapi import Store

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
async def store(tmp_path: Path, clock: Clock) -> AsyncIterator[Store]:
    s = SqliteStore(tmp_path / "gw" / "gateway.sqlite3", clock)
    try:
        await s.register(APP, C1, 0)
        await s.register(APP, C2, 0)
        await s.register(APP, C3, 0)
        await s.register(OTHER, GHOST, 0)  # known to another app only
        yield s
    finally:
        await s.close()


@pytest.fixture
def online() -> set[tuple[str, str]]:
    return set()


@pytest.fixture
def ctx(store: Store, online: set[tuple[str, str]], clock: Clock) -> Context:
    async def is_online(appid: str, cids: list[str]) -> set[str]:
        return {c for c in cids if (appid, c) in online}

    return Context(APP, store, is_online, clock)


async def call(ctx: Context, name: str, arg: Any = None) -> Any:
    return await METHODS[name](ctx, arg)


class RollBack(Exception):
    """Ends a test's transaction the way a refusing method ends the server's."""


async def refused(ctx: Context, name: str, arg: Any) -> UniError:
    with pytest.raises(UniError) as info:
        await call(ctx, name, arg)
    err = info.value
    assert err.err_code == ILLEGAL
    assert err.status == 400
    assert err.envelope()["errCode"] == "uni-cloud-push-error-20001"
    return err


def other(ctx: Context) -> Context:
    return Context(OTHER, ctx.store, ctx.online, ctx.clock)


# the tables -----------------------------------------------------------------------------


async def test_method_names() -> None:
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
        "getReportByDate",
        "bindUniIdDevice",
    }
    assert all(callable(m) for m in METHODS.values())


async def test_the_python_push_manager_has_every_served_method() -> None:
    """clients/pushmanager.py reads like uniCloud's getPushManager: each method the
    gateway serves is there under its uni name (getReportByDate was missing)."""
    from unipush_bridge.clients.pushmanager import PushManager

    assert [name for name in METHODS if not callable(getattr(PushManager, name, None))] == []


async def test_not_supported_has_a_reason_for_each_name() -> None:
    assert "stopTaskByTaskid" in NOT_SUPPORTED
    assert "getAdminUrl" in NOT_SUPPORTED
    for name, reason in NOT_SUPPORTED.items():
        assert isinstance(reason, str), name
        assert reason.strip(), name


async def test_methods_and_not_supported_do_not_overlap() -> None:
    assert not set(METHODS) & set(NOT_SUPPORTED)
    assert "sendMessage" not in METHODS
    assert "sendMessage" not in NOT_SUPPORTED


async def test_context_clock_defaults_to_time(store: Store) -> None:
    async def nobody(appid: str, cids: list[str]) -> set[str]:
        return set()

    assert Context(APP, store, nobody).clock is time.time


# aliases --------------------------------------------------------------------------------


async def test_bind_alias_array(ctx: Context) -> None:
    assert (
        await call(
            ctx, "cidBindAlias", [{"cid": C2, "alias": "alice"}, {"cid": C1, "alias": "alice"}]
        )
        is None
    )
    assert await call(ctx, "getCidByAlias", "alice") == {"cid": [C1, C2]}
    assert await call(ctx, "getAliasByCid", C1) == {"alias": "alice"}
    assert await call(ctx, "getAliasByCid", {"cid": C2}) == {"alias": "alice"}


async def test_bind_alias_data_list(ctx: Context) -> None:
    await call(ctx, "cidBindAlias", {"data_list": [{"cid": C1, "alias": "bob_1"}]})
    assert await call(ctx, "getCidByAlias", {"alias": "bob_1"}) == {"cid": [C1]}


@pytest.mark.parametrize("alias", ["a", "A_9", "a" * 39, "张三", "user_张三_1"])
async def test_alias_accepted(ctx: Context, alias: str) -> None:
    await call(ctx, "cidBindAlias", [{"cid": C1, "alias": alias}])
    assert await call(ctx, "getAliasByCid", C1) == {"alias": alias}


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
async def test_bind_alias_rules(ctx: Context, arg: Any, err_msg: str) -> None:
    assert (await refused(ctx, "cidBindAlias", arg)).err_msg == f"illegal params: {err_msg}"
    assert await call(ctx, "getAliasByCid", C1) == {"alias": None}  # checked before any write


async def test_alias_with_a_trailing_newline_is_refused(ctx: Context) -> None:
    err = await refused(ctx, "cidBindAlias", [{"cid": C1, "alias": "x" * 39 + "\n"}])
    assert err.err_msg == f"illegal params: [0].alias {ALIAS_RULE}"


@pytest.mark.parametrize("cid", [GHOST, "never-registered"])
async def test_bind_alias_to_an_unknown_cid(ctx: Context, cid: str) -> None:
    err = await refused(ctx, "cidBindAlias", [{"cid": cid, "alias": "alice"}])
    assert err.err_msg == f"illegal params: cid {cid} is not registered for this appId"
    assert await call(ctx, "getCidByAlias", "alice") == {"cid": []}


async def test_rebinding_moves_the_alias(ctx: Context) -> None:
    await call(ctx, "cidBindAlias", [{"cid": C1, "alias": "alice"}, {"cid": C2, "alias": "alice"}])
    await call(ctx, "cidBindAlias", [{"cid": C1, "alias": "bob"}])
    assert await call(ctx, "getAliasByCid", C1) == {"alias": "bob"}
    assert await call(ctx, "getCidByAlias", "alice") == {"cid": [C2]}
    assert await call(ctx, "getCidByAlias", "bob") == {"cid": [C1]}


async def test_eleventh_cid_on_one_alias_is_refused(ctx: Context, store: Store) -> None:
    assert MAX_CIDS_PER_ALIAS == 10
    cids = [f"{i:032x}" for i in range(11)]
    for cid in cids:
        await store.register(APP, cid, 0)
    await call(ctx, "cidBindAlias", [{"cid": c, "alias": "team"} for c in cids[:10]])
    err = await refused(ctx, "cidBindAlias", [{"cid": cids[10], "alias": "team"}])
    assert err.err_msg == "illegal params: team already has 10 cids bound (the most)"
    assert await call(ctx, "getAliasByCid", cids[10]) == {"alias": None}
    assert await call(ctx, "getCidByAlias", "team") == {"cid": cids[:10]}
    # A cid already on the alias binds again without counting twice.
    await call(ctx, "cidBindAlias", [{"cid": cids[0], "alias": "team"}])
    # Moving one away makes room.
    await call(ctx, "cidBindAlias", [{"cid": cids[0], "alias": "elsewhere"}])
    await call(ctx, "cidBindAlias", [{"cid": cids[10], "alias": "team"}])
    assert await call(ctx, "getCidByAlias", "team") == {"cid": cids[1:]}


async def test_aliases_are_per_app(ctx: Context, store: Store) -> None:
    await call(ctx, "cidBindAlias", [{"cid": C1, "alias": "alice"}])
    assert await call(other(ctx), "getCidByAlias", "alice") == {"cid": []}
    assert await call(other(ctx), "getAliasByCid", C1) == {"alias": None}
    await call(other(ctx), "cidBindAlias", [{"cid": GHOST, "alias": "alice"}])
    assert await call(ctx, "getCidByAlias", "alice") == {"cid": [C1]}


@pytest.mark.parametrize("arg", [None, "", 5, {"cid": ""}, {"cid": 5}, {}, [C1]])
async def test_get_alias_by_cid_rule(ctx: Context, arg: Any) -> None:
    assert (
        await refused(ctx, "getAliasByCid", arg)
    ).err_msg == "illegal params: cid must be a non-empty string"


async def test_get_alias_of_an_unbound_or_unknown_cid(ctx: Context) -> None:
    assert await call(ctx, "getAliasByCid", C1) == {"alias": None}
    assert await call(ctx, "getAliasByCid", "nobody") == {"alias": None}


@pytest.mark.parametrize("arg", [None, "", 5, {"alias": ""}, {}, ["alice"]])
async def test_get_cid_by_alias_rule(ctx: Context, arg: Any) -> None:
    err = await refused(ctx, "getCidByAlias", arg)
    assert err.err_msg == "illegal params: alias must be a non-empty string"


async def test_unbound_alias(ctx: Context) -> None:
    await call(
        ctx,
        "cidBindAlias",
        [{"cid": C1, "alias": "alice"}, {"cid": C2, "alias": "alice"}, {"cid": C3, "alias": "bob"}],
    )
    assert await call(ctx, "unboundAlias", [{"cid": C1, "alias": "alice"}]) is None
    assert await call(ctx, "getCidByAlias", "alice") == {"cid": [C2]}
    # A pair that is not bound changes nothing.
    await call(ctx, "unboundAlias", {"data_list": [{"cid": C3, "alias": "alice"}]})
    assert await call(ctx, "getAliasByCid", C3) == {"alias": "bob"}
    await call(ctx, "unboundAlias", {"data_list": [{"cid": C3, "alias": "bob"}]})
    assert await call(ctx, "getAliasByCid", C3) == {"alias": None}


async def test_unbound_alias_rules(ctx: Context) -> None:
    assert (
        await refused(ctx, "unboundAlias", [])
    ).err_msg == f"illegal params: data_list {PAIRS_RULE}"
    err = await refused(ctx, "unboundAlias", [{"cid": C1, "alias": "a b"}])
    assert err.err_msg == f"illegal params: [0].alias {ALIAS_RULE}"


@pytest.mark.parametrize("form", ["string", "object"])
async def test_unbound_all_alias(ctx: Context, form: str) -> None:
    await call(
        ctx,
        "cidBindAlias",
        [{"cid": C1, "alias": "alice"}, {"cid": C2, "alias": "alice"}, {"cid": C3, "alias": "bob"}],
    )
    assert (
        await call(ctx, "unboundAllAlias", "alice" if form == "string" else {"alias": "alice"})
        is None
    )
    assert await call(ctx, "getCidByAlias", "alice") == {"cid": []}
    assert await call(ctx, "getAliasByCid", C1) == {"alias": None}
    assert await call(ctx, "getCidByAlias", "bob") == {"cid": [C3]}


async def test_unbound_all_alias_rule(ctx: Context) -> None:
    err = await refused(ctx, "unboundAllAlias", {"alias": None})
    assert err.err_msg == "illegal params: alias must be a non-empty string"


# custom tags ----------------------------------------------------------------------------


async def test_bind_custom_tags_overwrites(ctx: Context) -> None:
    assert (
        await call(ctx, "cidBindCustomTags", {"cid": C1, "custom_tag": ["vip", "beta", "vip"]})
        is None
    )
    assert await call(ctx, "searchCustomTagByCid", C1) == {C1: ["beta", "vip"]}
    await call(ctx, "cidBindCustomTags", {"cid": C1, "custom_tag": ["gold"]})
    assert await call(ctx, "searchCustomTagByCid", C1) == {C1: ["gold"]}
    await call(ctx, "cidBindCustomTags", {"cid": C1, "custom_tag": []})
    assert await call(ctx, "searchCustomTagByCid", C1) == {C1: []}


async def test_bind_custom_tags_limits_are_inclusive(ctx: Context) -> None:
    tags = [f"t{i:031d}" for i in range(100)]
    assert all(len(t) == 32 for t in tags)
    await call(ctx, "cidBindCustomTags", {"cid": C1, "custom_tag": tags})
    assert await call(ctx, "searchCustomTagByCid", C1) == {C1: sorted(tags)}


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
async def test_bind_custom_tags_rules(ctx: Context, arg: Any, err_msg: str) -> None:
    await call(ctx, "cidBindCustomTags", {"cid": C1, "custom_tag": ["before"]})
    assert (await refused(ctx, "cidBindCustomTags", arg)).err_msg == f"illegal params: {err_msg}"
    assert await call(ctx, "searchCustomTagByCid", C1) == {C1: ["before"]}


@pytest.mark.parametrize("key", ["cids", "cid"])
async def test_cids_bind_custom_tag(ctx: Context, key: str) -> None:
    await call(ctx, "cidBindCustomTags", {"cid": C1, "custom_tag": ["old"]})
    result = await call(ctx, "cidsBindCustomTag", {key: [C1, C2, GHOST], "custom_tag": "vip"})
    assert result == {C1: "true", C2: "true", GHOST: "false"}
    assert await call(ctx, "searchCustomTagByCid", C1) == {
        C1: ["old", "vip"]
    }  # added, not replaced
    assert await call(ctx, "searchCustomTagByCid", C2) == {C2: ["vip"]}
    assert await call(other(ctx), "searchCustomTagByCid", GHOST) == {GHOST: []}


async def test_cids_bind_custom_tag_keeps_the_limit_of_tags_per_cid(
    ctx: Context, store: Store
) -> None:
    """cidBindCustomTags allows 100 tags a cid; cidsBindCustomTag added one more each
    call with no limit at all. The whole call is refused (its other adds discarded)."""
    full = [f"t{i:03}" for i in range(100)]
    await call(ctx, "cidBindCustomTags", {"cid": C1, "custom_tag": full})
    # a tag the cid has already adds nothing
    assert await call(ctx, "cidsBindCustomTag", {"cids": [C1], "custom_tag": "t000"}) == {
        C1: "true"
    }
    with pytest.raises(UniError) as info:
        async with store.transaction():
            await call(ctx, "cidsBindCustomTag", {"cids": [C2, C1], "custom_tag": "more"})
    assert info.value.err_code == ILLEGAL
    assert info.value.err_msg == (
        f"illegal params: custom_tag more would be tag 101 of cid {C1}: a cid has at most 100 tags"
    )
    assert await store.tags_of(APP, C1) == full
    assert await store.tags_of(APP, C2) == []


async def test_bind_uni_id_device_limits_a_users_tags(ctx: Context, store: Store) -> None:
    tags = [f"t{i:03}" for i in range(101)]
    arg = {"push_clientid": C1, "user_id": "u1", "user_tag": tags}
    err = await refused(ctx, "bindUniIdDevice", arg)
    assert err.err_msg == "illegal params: user_tag must have at most 100 tags"
    await call(ctx, "bindUniIdDevice", {**arg, "user_tag": tags[:100]})
    assert await store.cids_for_user_tags(APP, ["t099"]) == [C1]


async def test_cids_bind_custom_tag_takes_a_comma_separated_string(ctx: Context) -> None:
    result = await call(ctx, "cidsBindCustomTag", {"cids": f"{C1}, {C2},{C1}", "custom_tag": "vip"})
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
async def test_cids_custom_tag_rules(ctx: Context, name: str, arg: Any, err_msg: str) -> None:
    assert (await refused(ctx, name, arg)).err_msg == f"illegal params: {err_msg}"


async def test_cids_unbound_custom_tag(ctx: Context) -> None:
    await call(ctx, "cidBindCustomTags", {"cid": C1, "custom_tag": ["vip", "beta"]})
    await call(ctx, "cidBindCustomTags", {"cid": C2, "custom_tag": ["vip"]})
    result = await call(
        ctx, "cidsUnboundCustomTag", {"cids": [C1, C2, C3, "unknown"], "custom_tag": "vip"}
    )
    assert result == {C1: "true", C2: "true", C3: "true", "unknown": "true"}
    assert await call(ctx, "searchCustomTagByCid", C1) == {C1: ["beta"]}
    assert await call(ctx, "searchCustomTagByCid", C2) == {C2: []}
    assert await call(ctx, "cidsUnboundCustomTag", {"cid": C1, "custom_tag": "beta"}) == {
        C1: "true"
    }
    assert await call(ctx, "searchCustomTagByCid", C1) == {C1: []}


@pytest.mark.parametrize("form", ["string", "object", "list"])
async def test_search_custom_tag_by_cid_forms(ctx: Context, form: str) -> None:
    await call(ctx, "cidBindCustomTags", {"cid": C1, "custom_tag": ["vip"]})
    arg = {"string": C1, "object": {"cid": C1}, "list": [C1]}[form]
    assert await call(ctx, "searchCustomTagByCid", arg) == {C1: ["vip"]}


async def test_search_custom_tag_of_an_unknown_cid(ctx: Context) -> None:
    assert await call(ctx, "searchCustomTagByCid", "unknown") == {"unknown": []}


@pytest.mark.parametrize("arg", [None, "", [C1, C2], [], {"cid": 5}, 5])
async def test_search_custom_tag_rule(ctx: Context, arg: Any) -> None:
    err = await refused(ctx, "searchCustomTagByCid", arg)
    assert err.err_msg == "illegal params: cid must be a non-empty string"


# devices --------------------------------------------------------------------------------


async def test_client_status(ctx: Context, store: Store, clock: Clock, online: set) -> None:
    clock.now = NOW + 60
    await store.touch(APP, C2)  # C2 was last seen a minute later
    online.add((APP, C1))
    online.add((OTHER, C2))  # online for another app only
    result = await call(ctx, "getClientStatusByCid", f"{C1},{C2}, unknown ,{GHOST}")
    assert result == {
        C1: {"last_login_time": ms(NOW), "status": "online"},
        C2: {"last_login_time": ms(NOW + 60), "status": "offline"},
    }
    assert re.fullmatch(r"1715\d{6}500", result[C1]["last_login_time"])  # ms since the epoch


async def test_client_status_forms(ctx: Context, online: set) -> None:
    online.add((APP, C3))
    expected = {
        C1: {"last_login_time": ms(NOW), "status": "offline"},
        C3: {"last_login_time": ms(NOW), "status": "online"},
    }
    assert await call(ctx, "getClientStatusByCid", [C1, C3, C1]) == expected
    assert await call(ctx, "getClientStatusByCid", {"cid": [C1, C3]}) == expected
    assert await call(ctx, "getClientStatusByCid", {"cid": f"{C1},{C3}"}) == expected
    assert await call(ctx, "getClientStatusByCid", C1) == {C1: expected[C1]}
    assert await call(ctx, "getClientStatusByCid", "unknown") == {}


async def test_client_status_asks_the_online_callable(store: Store, clock: Clock) -> None:
    asked: list[tuple[str, list[str]]] = []

    async def online(appid: str, cids: list[str]) -> set[str]:
        asked.append((appid, cids))
        return set(cids)

    ctx = Context(APP, store, online, clock)
    result = await call(ctx, "getClientStatusByCid", [C2, "unknown"])
    assert result[C2]["status"] == "online"
    assert asked == [(APP, [C2])]  # the known cids, asked once for all


async def test_last_login_time_follows_registration(
    ctx: Context, store: Store, clock: Clock
) -> None:
    clock.now = NOW + 3600
    await store.register(APP, C1, 0)
    assert (await call(ctx, "getClientStatusByCid", C1))[C1]["last_login_time"] == ms(NOW + 3600)


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
async def test_cid_list_rules(ctx: Context, name: str, arg: Any, err_msg: str) -> None:
    assert (await refused(ctx, name, arg)).err_msg == f"illegal params: {err_msg}"


async def test_client_status_takes_1000_cids(ctx: Context) -> None:
    cids = [f"{i:032x}" for i in range(999)] + [C1]
    assert list(await call(ctx, "getClientStatusByCid", cids)) == [C1]


async def test_client_detail(ctx: Context, online: set, clock: Clock, store: Store) -> None:
    online.add((APP, C1))
    await call(ctx, "cidBindAlias", [{"cid": C1, "alias": "alice"}])
    await call(ctx, "cidBindCustomTags", {"cid": C1, "custom_tag": ["vip", "beta"]})
    clock.now = NOW + 86_400
    await store.register(APP, C2, 0)  # re-registering keeps the creation time
    result = await call(ctx, "getClientDetailByCid", [GHOST, C1, "unknown", C2])
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


async def test_client_detail_forms(ctx: Context) -> None:
    assert (await call(ctx, "getClientDetailByCid", f"{C1},nope"))["invalidCids"] == ["nope"]
    assert list((await call(ctx, "getClientDetailByCid", {"cid": C1}))["validCids"]) == [C1]
    assert await call(ctx, "getClientDetailByCid", "nope") == {
        "validCids": {},
        "invalidCids": ["nope"],
    }


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


async def deliver(store: Store, taskid: str, cids: list[str], group: str | None = None) -> None:
    """What sendMessage stores: one row per cid, and the task with its counters."""
    for cid in cids:
        await store.add_message(APP, cid, f"m-{taskid}-{cid}", taskid, {"title": "t"}, 259_200)
    await store.add_task(APP, taskid, group, target_num=len(cids) + 1, msg_num=len(cids))


async def ack_all(store: Store, cid: str) -> None:
    rows = await store.after(APP, cid, 0)
    await store.ack(APP, cid, rows[-1][0])


async def test_get_report_counts(ctx: Context, store: Store) -> None:
    await deliver(store, "task-1", [C1, C2])
    await ack_all(store, C1)
    assert await store.count_receipt(APP, C1, f"m-task-1-{C1}", "task-1", "display")
    assert await store.count_receipt(APP, C2, f"m-task-1-{C2}", "task-1", "display")
    # issue 10 item 14: a repeated receipt, and one from another app, count nothing
    assert not await store.count_receipt(APP, C1, f"m-task-1-{C1}", "task-1", "display")
    assert await store.count_receipt(APP, C1, f"m-task-1-{C1}", "task-1", "click")
    assert not await store.count_receipt(OTHER, C1, f"m-task-1-{C1}", "task-1", "click")
    expected = {"task-1": {**split(counters(2, 3, 1, 2, 1)), "actionCntMap": {}}}
    assert await call(ctx, "getReport", {"taskid": "task-1"}) == expected
    assert await call(ctx, "getReport", "task-1") == expected
    await ack_all(store, C2)
    assert (await call(ctx, "getReport", "task-1"))["task-1"]["total"]["receive_num"] == 2


async def test_get_report_of_several_tasks(ctx: Context, store: Store) -> None:
    await deliver(store, "task-1", [C1])
    await deliver(store, "task-2", [C1, C2])
    await ack_all(store, C1)  # receives one message of each task
    result = await call(ctx, "getReport", {"taskid": "task-1,task-2,unknown", "actionIdList": []})
    assert result == {
        "task-1": {**split(counters(1, 2, 1, 0, 0)), "actionCntMap": {}},
        "task-2": {**split(counters(2, 3, 1, 0, 0)), "actionCntMap": {}},
    }
    assert list(await call(ctx, "getReport", {"taskid": ["task-2", "nope"]})) == ["task-2"]


async def test_get_report_of_an_unknown_task(ctx: Context, store: Store) -> None:
    await store.add_task(OTHER, "task-of-b", None, 1, 1)
    for arg in ("unknown", {"taskid": ["a", "b"]}, "task-of-b"):
        err = await refused(ctx, "getReport", arg)
        assert err.err_msg == "illegal params: taskid matches no task of this appId"


@pytest.mark.parametrize("arg", [None, {}, 5, {"taskid": ""}, {"taskid": []}])
async def test_get_report_rule(ctx: Context, arg: Any) -> None:
    assert (await refused(ctx, "getReport", arg)).err_msg.startswith("illegal params: taskid ")


async def test_get_report_by_group_name(ctx: Context, store: Store) -> None:
    await deliver(store, "task-1", [C1], group="spring")
    await deliver(store, "task-2", [C2, C3], group="spring")
    await deliver(store, "task-3", [C1], group="autumn")
    await deliver(store, "task-4", [C1])
    await ack_all(store, C2)
    assert await store.count_receipt(APP, C1, f"m-task-1-{C1}", "task-1", "click")
    assert await store.count_receipt(APP, C1, f"m-task-3-{C1}", "task-3", "click")
    expected = {"spring": split(counters(3, 5, 1, 0, 1))}
    assert await call(ctx, "getReportByGroupName", "spring") == expected
    assert await call(ctx, "getReportByGroupName", {"group_name": "spring"}) == expected
    err = await refused(ctx, "getReportByGroupName", "winter")
    assert err.err_msg == "illegal params: group_name matches no task of this appId"
    assert (await refused(other(ctx), "getReportByGroupName", "spring")).err_msg.endswith(
        "no task of this appId"
    )


@pytest.mark.parametrize("arg", [None, "", {"group_name": 5}, ["spring"]])
async def test_get_report_by_group_name_rule(ctx: Context, arg: Any) -> None:
    err = await refused(ctx, "getReportByGroupName", arg)
    assert err.err_msg == "illegal params: group_name must be a non-empty string"


async def test_today_report_is_todays_use_of_unis_quotas(
    ctx: Context, store: Store, clock: Clock
) -> None:
    """uni's getTodayReport answers the day's push quotas (data.gt.list.remain_num):
    counted here from the tasks made since local midnight, not enforced; limit turns
    true once a quota is used up."""
    midnight = datetime(2024, 5, 10).timestamp()
    clock.now = midnight - 1  # yesterday 23:59:59: not today's
    await store.add_task(APP, "RASA_0509_a", None, 3, 3)
    clock.now = midnight  # the first instant of today counts
    await store.add_task(APP, "RASL_0510_b", None, 1, 1)
    clock.now = midnight + 9 * 3600
    for i in range(100):
        await store.add_task(APP, f"RASA_0510_{i:03d}", None, 3, 3)
    await store.add_task(OTHER, "RASL_0510_other", None, 5, 5)
    clock.now = NOW
    for arg in (None, {}):
        assert await call(ctx, "getTodayReport", arg) == {
            "gt": {
                "app": {"total_num": 100, "remain_num": 0, "limit": True},
                "app_with_tag": {"total_num": 100, "remain_num": 0, "limit": True},
                "list": {"total_num": 2_000_000, "remain_num": 1_999_999, "limit": False},
            }
        }


async def test_report_by_date_counts_that_local_day(
    ctx: Context, store: Store, clock: Clock
) -> None:
    """uni's getReportByDate("yyyy-MM-dd"), bare or as {"date": ...}: the day's tasks
    and no others, today's included."""
    midnight = datetime(2024, 5, 10).timestamp()
    clock.now = midnight - 1
    await deliver(store, "day-before", [C1, C2])
    clock.now = midnight + 3600
    await deliver(store, "that-day", [C1])
    clock.now = midnight + 86_400  # the next midnight belongs to the next day
    await deliver(store, "next-day", [C3])
    clock.now = NOW
    for arg in ("2024-05-10", {"date": "2024-05-10"}):
        assert await call(ctx, "getReportByDate", arg) == {
            "2024-05-10": split(counters(1, 2, 0, 0, 0))
        }
    assert await call(ctx, "getReportByDate", "2024-05-09") == {
        "2024-05-09": split(counters(2, 3, 0, 0, 0))
    }
    assert await call(ctx, "getReportByDate", "2023-01-01") == {"2023-01-01": split(dict(ZERO))}


@pytest.mark.parametrize("arg", ["2024-13-01", "10/05/2024", "yesterday", 20240510, None])
async def test_report_by_date_rule(ctx: Context, arg: Any) -> None:
    err = await refused(ctx, "getReportByDate", arg)
    assert err.err_msg in (
        "illegal params: date must be a date as yyyy-MM-dd, such as 2026-01-02",
        "illegal params: date must be a non-empty string",
    )


async def test_today_report_of_a_day_without_tasks(
    ctx: Context, store: Store, clock: Clock
) -> None:
    await deliver(store, "RASL_today", [C1])
    clock.now = datetime(2024, 5, 11, 0, 0, 1).timestamp()
    quotas = (await call(ctx, "getTodayReport"))["gt"]
    assert quotas["list"]["remain_num"] == quotas["list"]["total_num"] == 2_000_000


# uni-id mapping -------------------------------------------------------------------------


async def test_bind_uni_id_device(ctx: Context, store: Store) -> None:
    assert not await store.has_uniid(APP)
    assert await call(ctx, "bindUniIdDevice", {"push_clientid": C1, "user_id": "u1"}) is None
    await call(ctx, "bindUniIdDevice", {"push_clientid": C2, "user_id": "u1", "device_id": "d2"})
    await call(ctx, "bindUniIdDevice", {"push_clientid": C3, "device_id": "d3"})
    assert await store.has_uniid(APP)
    assert not await store.has_uniid(OTHER)
    assert await store.cids_for_users(APP, ["u1"]) == [C1, C2]
    assert await store.cids_for_users(APP, ["u1", "nobody"]) == [C1, C2]
    assert await store.cids_for_users(APP, ["nobody"]) == []
    assert await store.cids_for_devices(APP, ["d2", "d3"]) == [C2, C3]
    assert await store.cids_for_devices(APP, ["d1"]) == []
    assert await store.cids_for_users(OTHER, ["u1"]) == []


async def test_bind_uni_id_device_user_tags(ctx: Context, store: Store) -> None:
    await call(
        ctx, "bindUniIdDevice", {"push_clientid": C1, "user_id": "u1", "user_tag": ["vip", "cn"]}
    )
    await call(ctx, "bindUniIdDevice", {"push_clientid": C2, "user_id": "u2", "user_tag": ["vip"]})
    await call(ctx, "bindUniIdDevice", {"push_clientid": C3, "user_id": "u1"})  # u1's second device
    assert await store.cids_for_user_tags(APP, ["vip"]) == [C1, C2, C3]
    assert await store.cids_for_user_tags(APP, ["cn"]) == [C1, C3]
    assert await store.cids_for_user_tags(APP, ["cn", "vip"]) == [C1, C2, C3]
    assert await store.cids_for_user_tags(APP, ["none"]) == []
    # Tags belong to the user and are replaced as a whole.
    await call(ctx, "bindUniIdDevice", {"push_clientid": C1, "user_id": "u1", "user_tag": ["cn"]})
    assert await store.cids_for_user_tags(APP, ["vip"]) == [C2]
    assert await store.cids_for_user_tags(OTHER, ["vip"]) == []


async def test_bind_uni_id_device_rebinding_moves_the_cid(ctx: Context, store: Store) -> None:
    await call(ctx, "bindUniIdDevice", {"push_clientid": C1, "user_id": "u1", "device_id": "d1"})
    await call(ctx, "bindUniIdDevice", {"push_clientid": C1, "user_id": "u2", "device_id": "d9"})
    assert await store.cids_for_users(APP, ["u1"]) == []
    assert await store.cids_for_users(APP, ["u2"]) == [C1]
    assert await store.cids_for_devices(APP, ["d1"]) == []
    assert await store.cids_for_devices(APP, ["d9"]) == [C1]


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
async def test_bind_uni_id_device_rules(ctx: Context, store: Store, arg: Any, err_msg: str) -> None:
    assert (await refused(ctx, "bindUniIdDevice", arg)).err_msg == f"illegal params: {err_msg}"
    assert not await store.has_uniid(APP)


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
async def test_bind_uni_id_device_user_tag_rules(
    ctx: Context, store: Store, arg: Any, err_msg: str
) -> None:
    # The server runs each method in a transaction, so a refusal leaves nothing behind.
    with pytest.raises(RollBack):
        async with store.transaction():
            err = await refused(ctx, "bindUniIdDevice", arg)
            assert err.err_msg == f"illegal params: {err_msg}"
            raise RollBack  # as the server does when a method refuses
    assert not await store.has_uniid(APP)
    assert await store.cids_for_user_tags(APP, ["vip"]) == []
