"""One error hierarchy for the whole package, mapped to its users at the boundaries.

Every error the package raises on purpose is an :class:`UnipushError`. The CLI maps
them to exit codes (:attr:`UnipushError.exit_code`), the local API to
``<api>:fail <reason>``, the gateway to uni's ``{errCode, errMsg}`` envelope. The
text is always the reason, naming the field or key and the rule. Standard library only:
the wire modules and the clients import it.
"""

from __future__ import annotations

from collections.abc import Awaitable

#: Exit codes: 0 ok, 1 runtime failure, 2 bad usage or bad config.
EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


class UnipushError(Exception):
    """The root: a failure we know how to explain."""

    exit_code = EXIT_FAIL


class ConfigError(UnipushError, ValueError):
    """Configuration that cannot be used; the message names the key and the rule."""

    exit_code = EXIT_USAGE


class UsageError(UnipushError):
    """A command line that cannot work as given."""

    exit_code = EXIT_USAGE


class StoreDamaged(UnipushError):
    """A state file that cannot be read: restarting will not fix it."""

    exit_code = EXIT_USAGE


class ProtocolError(UnipushError, ValueError):
    """A frame that breaks the wire protocol; the text names the field and the rule."""


class ApiFail(UnipushError, ValueError):
    """A failed uni API call; the text is the reason after ``<api>:fail``."""


class NotifyError(UnipushError, RuntimeError):
    """The notification was not shown; the message says why."""


class NotifyTimedOut(NotifyError):
    """The server did not answer in time, but the call is in its queue: a hung server
    that runs again shows it then. ``late`` resolves to the notification's identifier
    if the server answers after all, or None if it never shows it (it went away)."""

    def __init__(self, message: str, late: Awaitable[str | None]) -> None:
        super().__init__(message)
        self.late = late


#: The text of every "no server" failure (createPushMessage:fail no notification server):
#: the notifier raises it, the core tells it from the failures of one notification.
NO_SERVER = "no notification server"


class AlreadyRunning(UnipushError):
    """Another daemon owns this appid and state directory (or its socket)."""


class DaemonUnavailable(UnipushError, ConnectionError):
    """No daemon is listening on the socket."""


class UniApiError(UnipushError, RuntimeError):
    """A call answered ``<api>:fail <reason>``; ``result`` holds the whole answer."""

    def __init__(self, result: dict[str, object]) -> None:
        super().__init__(result.get("errMsg", "fail"))
        self.result = result


class GatewayUnreachable(UnipushError, ConnectionError):
    """The gateway's HTTP API did not answer (or answered something that is not it)."""
