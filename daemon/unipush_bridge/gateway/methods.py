"""uni-push's server methods besides sendMessage: aliases, custom tags, device status,
reports, and the uni-id mapping that uniCloud keeps in its own tables.

Each method takes the argument exactly as ``getPushManager({appId})[method](arg)``
does (a string, an array or an object) and returns the ``data`` of the answer; a bad
argument raises :class:`UniError` naming the field and the rule.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from .errors import ILLEGAL, UniError, invalid
from .store import COUNTERS, DAY
from .storeapi import Store

ALIAS_RE = re.compile(r"[0-9A-Za-z_\u4e00-\u9fff]{1,39}")
MAX_CIDS_PER_ALIAS = 10
MAX_BIND_ITEMS = 1000
MAX_TAGS = 100
MAX_TAG_LEN = 32
MAX_STATUS_CIDS = 1000
MAX_REPORT_TASKS = 200

#: Methods of uniCloud.getPushManager that mean nothing for a desktop gateway.
NOT_SUPPORTED = {
    "stopTaskByTaskid": "scheduled and throttled tasks are not kept: messages go out at once",
    "getTaskScheduleByTaskid": "scheduled tasks are not supported",
    "deleteTaskScheduleByTaskid": "scheduled tasks are not supported",
    "getTaskDetail": "per-device task timelines are not recorded",
    "addCidToBlacklist": "blacklists are not supported",
    "removeCidInBlacklist": "blacklists are not supported",
    "getDeviceStatusByCid": "there is no device state beyond getClientStatusByCid",
    "getClientCount": "user counts by big-data tag are not supported",
    "setBadgeByCid": "badges are iOS-only",
    "getReportDetailByTaskid": "per-device reports are not recorded",
    "getClientReportByDate": "client statistics are not recorded",
    "getTodayOnlineClientReport": "client statistics are not recorded",
    "getAdminUrl": "there is no uni-push web console: reports come from getReport and "
    "getTodayReport",
}


@dataclass(frozen=True)
class Context:
    appid: str
    store: Store
    #: Which of these cids hold a connection (service.Online).
    online: Callable[[str, list[str]], Awaitable[set[str]]]
    clock: Callable[[], float] = time.time


Method = Callable[[Context, Any], Awaitable[Any]]


# argument helpers -----------------------------------------------------------------------


def _str(value: Any, field: str) -> str:
    if not isinstance(value, str) or not value:
        raise invalid(field, "must be a non-empty string")
    return value


def _field(arg: Any, key: str) -> Any:
    """uni passes some arguments bare and some inside an object: take either."""
    return arg.get(key) if isinstance(arg, dict) else arg


def _cid_list(value: Any, field: str, limit: int) -> list[str]:
    """A cid string, a comma-separated string, or an array of cids."""
    if isinstance(value, str):
        items = [c.strip() for c in value.split(",") if c.strip()]
    elif isinstance(value, list) and all(isinstance(c, str) and c for c in value):
        items = list(value)
    else:
        raise invalid(field, "must be a cid, a comma-separated string of cids or an array")
    if not items:
        raise invalid(field, "is required")
    if len(items) > limit:
        raise invalid(field, f"must list at most {limit} cids")
    return list(dict.fromkeys(items))


def _pairs(arg: Any) -> list[tuple[str, str]]:
    items = arg.get("data_list") if isinstance(arg, dict) else arg
    if not isinstance(items, list) or not items:
        raise invalid("data_list", "must be a non-empty array of {cid, alias}")
    if len(items) > MAX_BIND_ITEMS:
        raise invalid("data_list", f"must have at most {MAX_BIND_ITEMS} items")
    pairs = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise invalid(f"[{i}]", "must be an object {cid, alias}")
        cid = _str(item.get("cid"), f"[{i}].cid")
        alias = _str(item.get("alias"), f"[{i}].alias")
        if not ALIAS_RE.fullmatch(alias):
            raise invalid(
                f"[{i}].alias", "must be under 40 letters, digits, '_' or Chinese characters"
            )
        pairs.append((cid, alias))
    return pairs


def _tag(value: Any, field: str) -> str:
    tag = _str(value, field)
    if len(tag) > MAX_TAG_LEN or " " in tag:
        raise invalid(field, f"must be at most {MAX_TAG_LEN} characters without spaces")
    return tag


async def _known(ctx: Context, cid: str, field: str = "cid") -> None:
    if not await ctx.store.known(ctx.appid, cid):
        raise UniError(ILLEGAL, f"illegal params: {field} {cid} is not registered for this appId")


# aliases ----------------------------------------------------------------------------------


async def cid_bind_alias(ctx: Context, arg: Any) -> None:
    pairs = _pairs(arg)
    store = ctx.store
    # Each alias's cids as this call leaves them: a store's reads inside the transaction
    # need not see its own queued writes (Redis' MULTI does not), and the cap holds for
    # the whole list, not item by item against what was there before the call.
    bound: dict[str, set[str]] = {}
    alias_of: dict[str, str] = {}  # each cid this call has bound, to its alias
    for cid, alias in pairs:
        await _known(ctx, cid)
        if alias not in bound:
            before = await store.cids_of_alias(ctx.appid, alias)
            bound[alias] = {c for c in before if alias_of.get(c, alias) == alias}
        for cids in bound.values():
            cids.discard(cid)  # one alias per cid: rebinding moves it
        if len(bound[alias]) >= MAX_CIDS_PER_ALIAS:
            raise _alias_full(alias, len(bound[alias]))
        bound[alias].add(cid)
        alias_of[cid] = alias
    # The store checks the cap again as it writes the list, in one step: on Redis the
    # reads above were made before the commit, and another node's (or request's) list
    # may have been bound meanwhile. All or none of the list is bound.
    await store.bind_aliases(ctx.appid, pairs, MAX_CIDS_PER_ALIAS, _alias_full)


def _alias_full(alias: str, _cids: int) -> UniError:
    return invalid(alias, f"already has {MAX_CIDS_PER_ALIAS} cids bound (the most)")


async def get_alias_by_cid(ctx: Context, arg: Any) -> dict[str, Any]:
    cid = _str(_field(arg, "cid"), "cid")
    return {"alias": await ctx.store.alias_of(ctx.appid, cid)}


async def get_cid_by_alias(ctx: Context, arg: Any) -> dict[str, Any]:
    alias = _str(_field(arg, "alias"), "alias")
    return {"cid": await ctx.store.cids_of_alias(ctx.appid, alias)}


async def unbound_alias(ctx: Context, arg: Any) -> None:
    for cid, alias in _pairs(arg):
        await ctx.store.unbind_alias(ctx.appid, cid, alias)


async def unbound_all_alias(ctx: Context, arg: Any) -> None:
    await ctx.store.unbind_all_alias(ctx.appid, _str(_field(arg, "alias"), "alias"))


# custom tags ------------------------------------------------------------------------------


async def cid_bind_custom_tags(ctx: Context, arg: Any) -> None:
    if not isinstance(arg, dict):
        raise invalid("argument", "must be an object {cid, custom_tag}")
    cid = _str(arg.get("cid"), "cid")
    tags = arg.get("custom_tag")
    if not isinstance(tags, list):
        raise invalid("custom_tag", "must be an array of tags")
    if len(tags) > MAX_TAGS:
        raise invalid("custom_tag", f"must have at most {MAX_TAGS} tags")
    clean = [_tag(t, f"custom_tag[{i}]") for i, t in enumerate(tags)]
    await _known(ctx, cid)
    await ctx.store.set_tags(ctx.appid, cid, clean)


def _cids_and_tag(arg: Any) -> tuple[list[str], str]:
    if not isinstance(arg, dict):
        raise invalid("argument", "must be an object {cids, custom_tag}")
    cids = arg.get("cids", arg.get("cid"))  # the docs spell it both ways
    return _cid_list(cids, "cids", MAX_BIND_ITEMS), _tag(arg.get("custom_tag"), "custom_tag")


async def cids_bind_custom_tag(ctx: Context, arg: Any) -> dict[str, str]:
    cids, tag = _cids_and_tag(arg)
    result = {}

    def full(cid: str, have: int) -> UniError:
        return invalid(
            "custom_tag",
            f"{tag} would be tag {have + 1} of cid {cid}: a cid has at most {MAX_TAGS} tags",
        )

    tagged = []
    for cid in cids:
        if await ctx.store.known(ctx.appid, cid):
            # The limit cidBindCustomTags keeps, kept here too: one more tag a call
            # made a cid's set grow without end.
            have = await ctx.store.tags_of(ctx.appid, cid)
            if tag not in have and len(have) >= MAX_TAGS:
                raise full(cid, len(have))
            tagged.append(cid)
            result[cid] = "true"
        else:
            result[cid] = "false"
    # Checked again by the store as it writes, in one step (as cidBindAlias's list).
    await ctx.store.add_tag_to(ctx.appid, tagged, tag, MAX_TAGS, full)
    return result


async def cids_unbound_custom_tag(ctx: Context, arg: Any) -> dict[str, str]:
    cids, tag = _cids_and_tag(arg)
    result = {}
    for cid in cids:
        await ctx.store.remove_tag(ctx.appid, cid, tag)
        result[cid] = "true"
    return result


async def search_custom_tag_by_cid(ctx: Context, arg: Any) -> dict[str, list[str]]:
    cid = _field(arg, "cid")
    if isinstance(cid, list) and len(cid) == 1:
        cid = cid[0]
    cid = _str(cid, "cid")
    return {cid: await ctx.store.tags_of(ctx.appid, cid)}


# devices ----------------------------------------------------------------------------------


async def get_client_status_by_cid(ctx: Context, arg: Any) -> dict[str, Any]:
    cids = _cid_list(_field(arg, "cid"), "cid", MAX_STATUS_CIDS)
    known = await ctx.store.clients(ctx.appid, cids)
    online = await ctx.online(ctx.appid, list(known))
    return {
        cid: {
            "last_login_time": str(int(seen * 1000)),
            "status": "online" if cid in online else "offline",
        }
        for cid, (_, seen) in known.items()
    }


async def get_client_detail_by_cid(ctx: Context, arg: Any) -> dict[str, Any]:
    cids = _cid_list(_field(arg, "cid"), "cid", MAX_STATUS_CIDS)
    known = await ctx.store.clients(ctx.appid, cids)
    online = await ctx.online(ctx.appid, list(known))
    valid = {
        cid: {
            "client_app_id": ctx.appid,
            "package_name": "unipush-bridge",
            "device_token": "",
            "phone_type": 0,  # neither Android (1) nor iOS (2): a desktop
            "phoneModel": "desktop",
            "notificationSwitch": True,
            "createTime": datetime.fromtimestamp(created).strftime("%Y-%m-%d %H:%M:%S"),
            "loginFreq": 0,
            "online": cid in online,
            "alias": await ctx.store.alias_of(ctx.appid, cid),
            "custom_tag": await ctx.store.tags_of(ctx.appid, cid),
        }
        for cid, (created, _) in known.items()
    }
    return {"validCids": valid, "invalidCids": [c for c in cids if c not in known]}


# reports ----------------------------------------------------------------------------------


def _split(counters: dict[str, int]) -> dict[str, Any]:
    """uni's report shape: totals, and the same per channel ("gt" = the gateway's own)."""
    gt = {k: v for k, v in counters.items() if k != "msg_num"}
    return {"total": dict(counters), "gt": gt}


async def get_report(ctx: Context, arg: Any) -> dict[str, Any]:
    taskids = _cid_list(_field(arg, "taskid"), "taskid", MAX_REPORT_TASKS)
    result = {}
    for taskid in taskids:
        counters = await ctx.store.report(ctx.appid, "taskid=?", (taskid,))
        if counters is not None:
            result[taskid] = {**_split(counters), "actionCntMap": {}}
    if not result:
        raise invalid("taskid", "matches no task of this appId")
    return result


async def get_report_by_group_name(ctx: Context, arg: Any) -> dict[str, Any]:
    group = _str(_field(arg, "group_name"), "group_name")
    counters = await ctx.store.report(ctx.appid, "group_name=?", (group,))
    if counters is None:
        raise invalid("group_name", "matches no task of this appId")
    return {group: _split(counters)}


#: uni-push's daily quotas on Getui's channel (its docs, errCodes 30007, 30008, 30010):
#: broadcasts ("app"), list pushes, and pushes by tag, which share the broadcasts' 100.
DAILY_QUOTAS = {"app": 100, "app_with_tag": 100, "list": 2_000_000}


async def get_today_report(ctx: Context, arg: Any) -> dict[str, Any]:
    """uni's getTodayReport: today's use of the push quotas, in its shape
    (``data.gt.list.remain_num``). Counted here, not enforced: the gateway's own limits
    are broadcast_per_minute and the API rate. The day's counters are getReportByDate."""
    start, end = _day_window(datetime.fromtimestamp(ctx.clock()).date())
    broadcasts, others = await ctx.store.tasks_made(ctx.appid, start, end)
    used = {"app": broadcasts, "app_with_tag": broadcasts, "list": others}
    quotas = {}
    for kind, total in DAILY_QUOTAS.items():
        remain = max(total - used[kind], 0)
        # limit: "true once the day's total is used up" (uni's docs)
        quotas[kind] = {"total_num": total, "remain_num": remain, "limit": remain == 0}
    return {"gt": quotas}


async def get_report_by_date(ctx: Context, arg: Any) -> dict[str, Any]:
    """uni's ``getReportByDate("yyyy-MM-dd")``: the counters of the tasks made that day
    (the gateway's local day), today's too (uniCloud answers only for days gone by)."""
    text = _str(_field(arg, "date"), "date")
    try:
        day = datetime.strptime(text, "%Y-%m-%d").date()
    except ValueError:
        raise invalid("date", "must be a date as yyyy-MM-dd, such as 2026-01-02") from None
    return {text: await _day_report(ctx, day)}


async def _day_report(ctx: Context, day: date) -> dict[str, Any]:
    counters = await ctx.store.report(ctx.appid, DAY, _day_window(day))
    return _split(counters or dict.fromkeys(COUNTERS, 0))


def _day_window(day: date) -> tuple[float, float]:
    """The gateway's local day, as Unix times: its first instant and the next day's."""
    start = datetime.combine(day, datetime.min.time())
    return start.timestamp(), (start + timedelta(days=1)).timestamp()


# the uni-id mapping (a gateway extension, not a uni-push method) --------------------------


async def bind_uni_id_device(ctx: Context, arg: Any) -> None:
    """Stand-in for uniCloud's uni-id-device and opendb-device tables, so that
    user_id, user_tag and device_id targets can be resolved to cids."""
    if not isinstance(arg, dict):
        raise invalid("argument", "must be an object {push_clientid, user_id, device_id, ...}")
    cid = _str(arg.get("push_clientid"), "push_clientid")
    await _known(ctx, cid, "push_clientid")
    user_id = arg.get("user_id")
    device_id = arg.get("device_id")
    if user_id is None and device_id is None:
        raise invalid("user_id", "or device_id is required")
    if user_id is not None:
        user_id = _str(user_id, "user_id")
    if device_id is not None:
        device_id = _str(device_id, "device_id")
    await ctx.store.bind_uniid(ctx.appid, cid, user_id, device_id)
    tags = arg.get("user_tag")
    if tags is not None:
        if user_id is None:
            raise invalid("user_tag", "needs a user_id")
        if not isinstance(tags, list):
            raise invalid("user_tag", "must be an array of tags")
        if len(tags) > MAX_TAGS:  # as a cid's custom tags: a user's set is bounded too
            raise invalid("user_tag", f"must have at most {MAX_TAGS} tags")
        await ctx.store.set_user_tags(ctx.appid, user_id, [_str(t, "user_tag") for t in tags])


METHODS: dict[str, Method] = {
    "cidBindAlias": cid_bind_alias,
    "getAliasByCid": get_alias_by_cid,
    "getCidByAlias": get_cid_by_alias,
    "unboundAlias": unbound_alias,
    "unboundAllAlias": unbound_all_alias,
    "cidBindCustomTags": cid_bind_custom_tags,
    "cidsBindCustomTag": cids_bind_custom_tag,
    "cidsUnboundCustomTag": cids_unbound_custom_tag,
    "searchCustomTagByCid": search_custom_tag_by_cid,
    "getClientStatusByCid": get_client_status_by_cid,
    "getClientDetailByCid": get_client_detail_by_cid,
    "getReport": get_report,
    "getReportByGroupName": get_report_by_group_name,
    "getTodayReport": get_today_report,
    "getReportByDate": get_report_by_date,
    "bindUniIdDevice": bind_uni_id_device,
}
