"""uni-push's server API as plain code over the store: what each call means, with no
HTTP and no sockets. The aiohttp server (:mod:`.server`) authenticates, reads bodies
and writes answers; this module decides the answer and which online connections get
which message (the server hands them over after the commit).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NoReturn

import structlog

from ..wire.gateway import CloseCode
from . import errors, methods
from .access import GatewayConfig, source_of
from .errors import UniError
from .ids import ordered_id
from .ratelimit import RateLimiter
from .send import MAX_DEVICES, UNIID_TARGETS, Limits, SendRequest, parse_send_message
from .session import Close, Receipted, Register, error_frame, refuse
from .store import BROADCAST_TASK, secret_hash
from .storeapi import CidTaken, ClaimLost, Store

log = structlog.get_logger(__name__)

#: How long a ttl=-1 (online only) message waits for its acknowledgement.
ONLINE_ONLY_GRACE_S = 60.0
#: A cid this gateway never registered for the appId: nothing stored.
INVALID = "target user is invalid"
#: Past the 500-device cap, or offline with an online-only ttl: nothing stored.
IGNORED = "successed_ignore"

#: How long a call waits for another call making its request_id's answer (a Redis
#: claim lives 5 s at most, redisstore.CLAIM_TTL_S), and how often it looks.
REPEAT_WAIT_S = 10.0
REPEAT_POLL_S = 0.02

#: A cid with no hello for this long is forgotten with its data (uni: three months).
CID_UNSEEN_EXPIRY_S = 90 * 86_400

#: Which of these cids of an app hold a connection (here, or on another node): asked
#: once for all of a request's cids, as one Redis round trip does it for a broadcast.
Online = Callable[[str, list[str]], Awaitable[set[str]]]


@dataclass(frozen=True, slots=True)
class Delivery:
    """A committed message for a connected cid: the server hands it over."""

    cid: str
    seq: int
    msg_id: str
    body_json: str
    #: The cid's seq before this one (0: commits arrive in order, see Store.committed).
    before: int = 0


@dataclass
class Outcome:
    """uni's envelope to answer, and what the server hands over once it is written."""

    answer: dict[str, Any]
    deliveries: list[Delivery] = field(default_factory=list)
    #: Cids whose connections should read the store again: a repeated request_id is
    #: answered from memory, and the first try's commit may have gone in with its
    #: answer lost (the store failed mid-reply), its push never sent.
    recheck: list[str] = field(default_factory=list)


class GatewayService:
    def __init__(
        self,
        config: GatewayConfig,
        store: Store,
        clock: Callable[[], float],
        monotonic: Callable[[], float] = time.monotonic,
    ):
        self.config = config
        self.store = store
        self.clock = clock  # wall clock: timestamps only; durations use monotonic
        self.limits = Limits.for_mode(config.strict_limits)
        self.api_rate = RateLimiter(config.rate_limit, config.rate_burst, monotonic)
        per_minute = config.broadcast_per_minute
        # Keyed by the appId broadcast to, which callers name: a drained app's bucket
        # must not be evicted by broadcasts to 10,000 other appIds (keep_debts).
        self.broadcast_rate = RateLimiter(per_minute / 60, per_minute, monotonic, keep_debts=True)
        per_minute = config.new_cids_per_minute
        self.new_cid_rate = RateLimiter(per_minute / 60, per_minute, monotonic)
        self._day_minute: int | None = None
        self._day_text = ""

    # the websocket side: registrations, acks, receipts ------------------------------

    async def register(self, reg: Register) -> int | Close:
        """Admit a hello: the cursor to resume from, or the refusal that ends the session.
        A cid bound to a secret is only ever registered again with that secret, and the
        connection that holds it now is left alone when a hello is refused."""
        store = self.store
        row = await store.client(reg.appid, reg.cid)
        presented = None if reg.secret is None else secret_hash(reg.secret)
        if row is None:
            # By source (an IPv6 peer by its /64), as the API limits count: per exact
            # address, each address of a /64 had a budget of its own.
            source = source_of(reg.peer)
            if self.config.new_cids_per_minute and not self.new_cid_rate.allow(source):
                log.warning("too many new registrations", appid=reg.appid, peer=reg.peer)
                wait = self.new_cid_rate.retry_after(source)
                return refuse(
                    CloseCode.TOO_MANY_REGISTRATIONS,
                    "too_many_registrations",
                    f"hello: more than {self.config.new_cids_per_minute} new cids a minute "
                    f"from this address; retry in {wait:.0f} s",
                )
        elif row.secret_hash is not None and (
            presented is None or not hmac.compare_digest(presented, row.secret_hash)
        ):
            log.warning(
                "refused a hello for a cid bound to another secret",
                appid=reg.appid,
                cid=reg.cid,
                peer=reg.peer,
                secret="missing" if presented is None else "wrong",
            )
            return refuse(
                CloseCode.CID_TAKEN,
                "cid_taken",
                "hello.secret: "
                + ("missing" if presented is None else "does not match")
                + f"; cid {reg.cid} is bound to the secret of the daemon that registered it",
            )
        if presented is None:
            log.warning(
                "hello without a secret: the cid is not bound to its daemon",
                appid=reg.appid,
                cid=reg.cid,
            )
        try:
            cursor = await store.register(reg.appid, reg.cid, reg.acked, presented)
        except CidTaken:  # bound by another node's hello since the read above
            log.warning("refused a hello for a cid bound meanwhile", appid=reg.appid, cid=reg.cid)
            return refuse(
                CloseCode.CID_TAKEN,
                "cid_taken",
                f"hello.secret: cid {reg.cid} was just bound to the secret of another daemon",
            )
        if row is not None and reg.acked > row.issued:
            log.warning(
                f"cursor ahead of gateway: hello.acked {reg.acked} is past the last seq "
                f"issued to the cid ({row.issued}); reset to {cursor}",
                appid=reg.appid,
                cid=reg.cid,
            )
        return cursor

    async def ack(self, appid: str, cid: str, seq: int) -> str | None:
        """Apply an ack; an error frame to send back (non-fatal) when it is refused
        (the server logs it, throttled: a daemon can repeat it at will)."""
        row = await self.store.client(appid, cid)
        issued = 0 if row is None else row.issued
        if seq > issued:
            return error_frame(
                "bad_frame", f"ack.seq: {seq} is past the last seq sent to this cid ({issued})"
            )
        await self.store.ack(appid, cid, seq)
        return None

    async def ack_many(self, acks: list[tuple[str, str, int]]) -> None:
        """Acks the server has checked (each seq was sent to its cid, so issued)."""
        await self.store.ack_many(acks)

    async def receipt(self, appid: str, cid: str, receipt: Receipted) -> None:
        """Counted once, and only for a message of that task sent to that cid."""
        if not receipt.taskid:
            return
        if not await self.store.count_receipt(
            appid, cid, receipt.id, receipt.taskid, receipt.event
        ):
            log.debug("receipt counted nothing", appid=appid, cid=cid, taskid=receipt.taskid)

    async def purge(self, keep: Iterable[tuple[str, str]]) -> tuple[int, int]:
        """The periodic clean-up: (expired messages, unseen cids) removed; ``keep``
        names the connected cids, which are seen now whatever their last hello."""
        expired = await self.store.purge_expired()
        return expired, await self.store.purge_unseen(CID_UNSEEN_EXPIRY_S, keep)

    def authorize(self, appid: str, authorization: str) -> None:
        """The app is served here and the caller holds its server secret, if it has one."""
        try:
            secret = self.config.secrets_for(appid).server_secret
        except LookupError:
            raise UniError(errors.NOT_FOUND, f"appId {appid} is not served here", 404) from None
        if secret is None:
            return
        if not hmac.compare_digest(authorization.encode(), f"Bearer {secret}".encode()):
            raise UniError(
                errors.AUTH, "unauthorized: send Authorization: Bearer <server_secret>", 401
            )

    def admit(self, appid: str, source: str = "unknown") -> None:
        key = self.config.rate_key(appid, source)
        if not self.api_rate.allow(key):
            whose = "this appId" if self.config.apps else "this source address"
            raise UniError(
                errors.RATE,
                f"too many requests for {whose}; slow down",
                429,
                retry_after=self.api_rate.retry_after(key),
            )

    async def call(self, appid: str, method: str, body: Any, online: Online) -> Outcome:
        """Run one server method; the answer is uni's envelope."""
        if method == "sendMessage":
            return await self.send_message(appid, body, online)
        if method in methods.NOT_SUPPORTED:
            raise UniError(
                errors.PARAMS,
                f"{method} is not supported by this gateway: {methods.NOT_SUPPORTED[method]}",
            )
        handler = methods.METHODS.get(method)
        if handler is None:
            raise UniError(errors.NOT_FOUND, f"{method} is not a uni-push server method", 404)
        ctx = methods.Context(appid, self.store, online, self.clock)
        async with self.store.transaction():
            data = await handler(ctx, body)
        return Outcome({"errCode": 0, "errMsg": "success", "data": data})

    async def send_message(self, appid: str, body: Any, online: Online) -> Outcome:
        req = parse_send_message(body, self.limits)
        store = self.store
        memo = _memo_key(req)
        while True:
            if memo is not None:
                earlier = await self._earlier(appid, memo)
                if earlier is not None:
                    log.info("dropped a repeated request_id", request_id=req.request_id)
                    data = earlier.get("data") or {}
                    cids = await store.all_cids(appid) if "taskid" in data else _answered_cids(data)
                    return Outcome(earlier, recheck=cids)
            try:
                return await self._send(appid, req, memo, online)
            except ClaimLost:
                # Its claim lapsed (the store away) and another call took it: nothing of
                # this one was stored, and the other call's answer is the one.
                log.warning("a request_id's claim lapsed mid-call", request_id=req.request_id)
            except BaseException:
                if memo is not None:  # nothing remembered: the sender may try again
                    with contextlib.suppress(Exception):
                        await store.release_answer(appid, memo)
                raise

    async def _earlier(self, appid: str, memo: str) -> dict[str, Any] | None:
        """The answer of an earlier call with this request_id, or None once this call
        holds the claim to make it. A call making it now is waited for (on Redis: a
        sender's retry while its first try is in progress, or another node's)."""
        deadline = time.monotonic() + REPEAT_WAIT_S
        while True:
            earlier = await self.store.answer_for(appid, memo)
            if earlier is not None or await self.store.claim_answer(appid, memo):
                return earlier
            if time.monotonic() > deadline:
                raise UniError(
                    errors.SERVICE,
                    "a call with this request_id is still in progress; retry it later",
                    503,
                )
            await asyncio.sleep(REPEAT_POLL_S)

    async def _send(
        self, appid: str, req: SendRequest, memo: str | None, online: Online
    ) -> Outcome:
        """sendMessage once this call may make its answer (``memo``: its request_id's)."""
        store = self.store
        broadcast = req.target.kind == "broadcast"
        if broadcast and self.broadcast_rate.blocked(appid):  # refused before any read
            self._broadcast_refused(appid)
        kind = BROADCAST_TASK if broadcast else "RASL"
        taskid = f"{kind}_{self._day(self.clock())}_{ordered_id()}"
        hold_until = None
        if req.message.get("offline") == "hold":
            # The daemon holds it for the next app only while the sender's ttl lasts.
            # On the store's clock, as the welcome's now: the same on every node.
            hold_until = round(store.now() + req.ttl_ms / 1000, 3)
        message = req.stored_json(taskid, hold_until)
        deliveries: list[Delivery] = []
        async with store.transaction():
            groups = await self._resolve(appid, req)
            targets = list(dict.fromkeys(c for cids in groups.values() for c in cids))
            before_id = None
            known = await store.known_many(appid, targets)
            if req.target.kind in UNIID_TARGETS:
                # Pages of registered devices: a cid the mapping still names but this
                # gateway forgot takes no place on a page.
                targets, before_id = _page([c for c in targets if c in known], req.before_id)
                groups = {"": targets}
            statuses: dict[str, str] = {}
            if not known and req.before_id is None:
                _no_target(req)  # a later page may come out empty: devices left meanwhile
            # Only a broadcast that reaches a device takes a token: one to an appId
            # nobody registered (any appId is served with no [apps]) makes no bucket.
            if broadcast and not self.broadcast_rate.allow(appid):
                self._broadcast_refused(appid)
            connected = await online(appid, [c for c in targets if c in known])
            reached = 0
            for cid in targets:
                if cid not in known:
                    statuses[cid] = INVALID
                elif not broadcast and reached >= MAX_DEVICES:
                    statuses[cid] = IGNORED  # uni-push ignores devices past 500
                else:
                    reached += 1
                    statuses[cid] = await self._store_for(
                        appid, cid, req, taskid, message, cid in connected, deliveries
                    )
            stored = sum(s.startswith("successed_") and s != IGNORED for s in statuses.values())
            await store.add_task(appid, taskid, req.group_name, len(statuses), stored)
            answer = {
                "errCode": 0,
                "errMsg": "",
                "data": _answer_data(req, taskid, groups, statuses),
            }
            if before_id is not None:
                answer["before_id"] = before_id
            if memo is not None:
                await store.remember_answer(appid, memo, answer)
        numbered = []
        for d in deliveries:
            seq, before = store.committed(d.seq)  # Redis numbers the messages at the commit
            numbered.append(Delivery(d.cid, seq, d.msg_id, d.body_json, before))
        deliveries = numbered
        return Outcome(answer, deliveries)

    def _day(self, now: float) -> str:
        """A task id's local month and day ("%m%d"), formatted once a minute, not per
        request (3 us each): a local day starts on a whole minute in every time zone
        and at every DST change, so one minute's instants share their day."""
        minute = int(now // 60)
        if minute != self._day_minute:
            self._day_minute = minute
            self._day_text = datetime.fromtimestamp(now).strftime("%m%d")
        return self._day_text

    def _broadcast_refused(self, appid: str) -> NoReturn:
        raise UniError(
            errors.BROADCAST_RATE,
            f"broadcasts are limited to {self.config.broadcast_per_minute} a minute",
            429,
            retry_after=self.broadcast_rate.retry_after(appid),
        )

    async def _resolve(self, appid: str, req: SendRequest) -> dict[str, list[str]]:
        """Target -> cids, grouped by alias for alias targets (uni answers per alias)."""
        kind, values, store = req.target.kind, list(req.target.values), self.store
        if kind == "push_clientid":
            return {"": values}
        if kind == "broadcast":
            return {"": await store.all_cids(appid)}
        if kind == "getui_alias":
            return {alias: await store.cids_of_alias(appid, alias) for alias in values}
        if kind == "getui_custom_tag":
            return {"": await store.cids_with_tag(appid, values[0])}
        if not await store.has_uniid(appid):
            raise UniError(
                errors.ILLEGAL,
                f"illegal params: {kind} targets need a uni-id mapping (uniCloud's "
                "uni-id-device / opendb-device tables), and none is registered for this "
                "appId: register one with bindUniIdDevice, or target push_clientid",
            )
        resolve = {
            "user_id": store.cids_for_users,
            "user_tag": store.cids_for_user_tags,
            "device_id": store.cids_for_devices,
        }[kind]
        return {"": await resolve(appid, values)}

    async def _store_for(
        self,
        appid: str,
        cid: str,
        req: SendRequest,
        taskid: str,
        message: str,
        connected: bool,
        deliveries: list[Delivery],
    ) -> str:
        online_only = req.ttl_ms <= 0  # -1, and 0 (no time to wait at all), mean online only
        if online_only and not connected:
            return IGNORED
        ttl_s = ONLINE_ONLY_GRACE_S if online_only else req.ttl_ms / 1000
        msg_id = message_id(appid, cid, req.request_id)
        seq = await self.store.add_message(appid, cid, msg_id, taskid, message, ttl_s)
        if not connected:
            return "successed_offline"
        deliveries.append(Delivery(cid, seq, msg_id, message))
        return "successed_online"


def _memo_key(req: SendRequest) -> str | None:
    """What a repeated call is known by: its request_id, and the page it asks for.
    uni-push-co sends the same body again for each page, request_id and all, with the
    before_id added; keyed on the request_id alone, every page got the first answer
    back (its before_id too) and the sender paged for ever.

    A page's key is "page:" and the sha256 of [request_id, before_id] as JSON: 69
    characters, so never a request_id (32 at most), and no other pair makes it. It was
    f"{request_id}#before_id:{before_id}", which the request_id
    "abcdefghij#before_id:0" (no before_id) spelled for another call's page."""
    if req.request_id is None or req.before_id is None:
        return req.request_id
    pair = json.dumps([req.request_id, req.before_id])  # ASCII: \u escapes
    return "page:" + hashlib.sha256(pair.encode()).hexdigest()


def _page(cids: list[str], before_id: str | None) -> tuple[list[str], str | None]:
    """A uni-id target's devices after ``before_id``, 500 in cid order, and the
    before_id of the next page if there is one (uni pages these; a list of cids it
    cuts at 500 instead)."""
    after = sorted(c for c in cids if before_id is None or c > before_id)
    if len(after) <= MAX_DEVICES:
        return after, None
    return after[:MAX_DEVICES], after[MAX_DEVICES - 1]


def _no_target(req: SendRequest) -> None:
    """uni fails a call that names no registered device (uni-im tells these errors
    apart from the others: the user's messages wait in its database instead)."""
    kind = req.target.kind
    if kind == "push_clientid":
        raise UniError(errors.ILLEGAL, INVALID)
    if kind == "broadcast":
        raise UniError(errors.ILLEGAL, f"{INVALID}: no device registered here for this appId")
    if kind in UNIID_TARGETS:
        raise UniError(
            errors.USER_INVALID,
            f"{INVALID}: no device registered here for this {kind} (uni-id-device)",
        )


def message_id(appid: str, cid: str, request_id: str | None) -> str:
    """A message's id, which the daemon drops repeats by. Derived from the request_id
    when there is one, so a sender that retries a request whose answer it never got
    (the gateway died after the push left, before its commit) makes the same message
    again, and the daemon that had it already drops it (uni: a repeated request_id
    loses the message). Random otherwise, time first (ids.py)."""
    if request_id is None:
        return ordered_id()
    return hashlib.sha256(f"{appid}\0{cid}\0{request_id}".encode()).hexdigest()[:32]


def _answer_data(
    req: SendRequest, taskid: str, groups: dict[str, list[str]], statuses: dict[str, str]
) -> dict[str, Any]:
    """uni's sendMessage data: per cid, per alias and cid, or the task id for a broadcast."""
    if req.target.kind == "broadcast":
        return {"taskid": taskid}
    if req.target.kind == "getui_alias":
        return {taskid: {alias: {c: statuses[c] for c in cids} for alias, cids in groups.items()}}
    if req.target.kind == "push_clientid":
        return {taskid: {c: statuses[c] for c in req.target.values}}
    return {taskid: statuses}


def _answered_cids(data: dict[str, Any]) -> list[str]:
    """The cids a sendMessage answer's data names: ``{taskid: {cid: status}}``, or per
    alias ``{taskid: {alias: {cid: status}}}``."""
    cids: list[str] = []
    for per_task in data.values():
        for key, value in (per_task if isinstance(per_task, dict) else {}).items():
            cids.extend(value if isinstance(value, dict) else [key])
    return cids
