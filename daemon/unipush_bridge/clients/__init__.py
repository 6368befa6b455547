"""Clients of the daemon (:class:`PushClient`, :class:`SyncPushClient`) and of the
gateway's HTTP API (:mod:`.pushmanager`). They speak only the wire protocols."""

from ..errors import DaemonUnavailable, UniApiError
from .push import ChannelManager, PushClient, SyncPushClient

__all__ = ["ChannelManager", "DaemonUnavailable", "PushClient", "SyncPushClient", "UniApiError"]
