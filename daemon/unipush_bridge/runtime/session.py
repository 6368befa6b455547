"""The daemon's side of one gateway session, as a state machine without I/O.

Text frames go in, events and frames to send come out. The link feeds it; the
bridge acts on its events. Acknowledgement is cumulative and happens only when the
caller says a message is durably recorded (:meth:`ClientSession.recorded`).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Literal

from ..errors import ProtocolError
from ..wire import gateway as protocol
from ..wire.gateway import PushMessage

ReceiptEvent = Literal["display", "click"]


class State(enum.Enum):
    IDLE = "idle"
    HELLO_SENT = "hello_sent"
    REGISTERED = "registered"


@dataclass(frozen=True, slots=True)
class Registered:
    cid: str
    #: True when the gateway handed out a cid we did not have before.
    new_cid: bool
    #: Where the gateway resumes: pushes after this seq are still to come.
    acked: int
    #: How many messages the gateway holds for us.
    backlog: int = 0
    #: The gateway's clock at the welcome (None from a gateway that does not say).
    gateway_time: float | None = None


@dataclass(frozen=True, slots=True)
class Deliver:
    seq: int
    id: str
    message: PushMessage


@dataclass(frozen=True, slots=True)
class Refused:
    """A frame broke the protocol; it is dropped and the link stays up."""

    reason: str


@dataclass(frozen=True, slots=True)
class GatewayError:
    code: str
    message: str
    fatal: bool


Event = Registered | Deliver | Refused | GatewayError


class ClientSession:
    """One registration attempt on one connection; make a new one per connection."""

    def __init__(
        self,
        appid: str,
        cid: str | None,
        acked: int,
        token: str | None = None,
        secret: str | None = None,
    ) -> None:
        self.appid = appid
        self.cid = cid
        self.acked = acked
        self.token = token
        #: Proves this install owns its cid (the gateway binds the cid to it).
        self.secret = secret
        self.state = State.IDLE

    def hello(self) -> str:
        if self.state is not State.IDLE:
            raise RuntimeError("hello already sent on this session")
        self.state = State.HELLO_SENT
        frame = protocol.Hello(
            appid=self.appid, cid=self.cid, token=self.token, acked=self.acked, secret=self.secret
        )
        return protocol.encode(frame)

    def receive(self, text: str | bytes) -> list[Event]:
        try:
            frame = protocol.parse_server_frame(text)
        except ProtocolError as exc:
            return [Refused(str(exc))]
        if isinstance(frame, protocol.Welcome):
            if self.state is State.REGISTERED:
                return [Refused("welcome: unexpected, session already registered")]
            if self.state is not State.HELLO_SENT:
                return [Refused("welcome: unexpected, hello not sent yet")]
            new_cid = frame.cid != self.cid
            self.cid = frame.cid
            # The gateway's cursor wins: it is ours for a known cid, its own for a new one,
            # and its own (lower) one when ours is past what it ever issued (its data came
            # back from a backup): later pushes are then acked again, and redeliveries
            # are dropped by message id, not by seq.
            self.acked = frame.acked
            self.state = State.REGISTERED
            return [Registered(frame.cid, new_cid, frame.acked, frame.backlog, frame.now)]
        if isinstance(frame, protocol.Push):
            if self.state is not State.REGISTERED:
                return [Refused("push: arrived before welcome")]
            return [Deliver(frame.seq, frame.id, frame.message)]
        return [GatewayError(frame.code, frame.message, frame.fatal)]

    def recorded(self, seq: int) -> str | None:
        """The message with ``seq`` is durable: the ack frame to send, if any is due."""
        if seq <= self.acked:
            return None
        self.acked = seq
        return protocol.encode(protocol.Ack(seq=seq))

    def receipt(self, message_id: str, taskid: str | None, event: ReceiptEvent) -> str:
        return protocol.encode(protocol.Receipt(id=message_id, taskid=taskid, event=event))
