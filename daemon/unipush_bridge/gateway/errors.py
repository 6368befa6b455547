"""uni's answer envelope for failures, with the HTTP status that tells their class."""

from __future__ import annotations

from typing import Any

#: errCodes from the uni-push server docs. Success answers errCode 0 (a number); a
#: failure answers the string "uni-cloud-push-error-<n>", as the docs describe.
NOT_OBJECT = 1
SERVICE = 2  # the service is not (yet) able to answer
PARAMS = 400
AUTH = 401
FORBIDDEN = 403
NOT_FOUND = 404
RATE = 10005  # calls per minute over the limit
ILLEGAL = 20001
TAG_FAILED = 23001
BROADCAST_RATE = 30014  # broadcasts per minute over the limit
PREFIX = "uni-cloud-push-error-"
#: uni's own code (not Getui's) when a uni-id target has no device to push to.
USER_INVALID = "uni-push-user-invalid"


class UniError(Exception):
    """An answer in uni's envelope with an HTTP status for its class."""

    def __init__(
        self,
        err_code: int | str,
        err_msg: str,
        status: int = 400,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(err_msg)
        self.err_code = err_code
        self.err_msg = err_msg
        self.status = status
        #: Seconds until a rate-limited call may succeed (sent as Retry-After).
        self.retry_after = retry_after

    def envelope(self) -> dict[str, Any]:
        code = self.err_code if isinstance(self.err_code, str) else f"{PREFIX}{self.err_code}"
        return {"errCode": code, "errMsg": self.err_msg, "data": None}


def invalid(field: str, rule: str) -> UniError:
    return UniError(ILLEGAL, f"illegal params: {field} {rule}")
