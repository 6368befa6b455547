"""One blocking request to the daemon, for the one-shot commands (cid, notify, status,
...): a plain socket, the wire module's lines and the same checks as PushClient (a
private socket dir, a peer running as this user), without asyncio.

It sits on ``_socket``, not ``socket``: the wrapper's enums and selectors are about 5 ms
of a command that should take tens (issue 13).
"""

from __future__ import annotations

import _socket
import os

from .errors import DaemonUnavailable, ProtocolError
from .paths import check_peer, check_socket_dir
from .wire.local import MAX_LINE, Answer, Request, encode_request, parse_daemon_line

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

#: How long a one-shot local command waits for the daemon's answer (showing a
#: notification waits for the notification server, which has its own timeout).
ANSWER_TIMEOUT_S = 60.0


class DaemonCall:
    """``DaemonCall(path)(method, params)`` is the daemon's answer (its ``result``)."""

    def __init__(self, path: str | os.PathLike[str], timeout: float = ANSWER_TIMEOUT_S) -> None:
        self.path = path
        self.timeout = timeout

    def __call__(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        if os.path.lexists(os.path.dirname(os.fspath(self.path)) or "."):
            check_socket_dir(self.path)
        sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        try:
            sock.settimeout(self.timeout)
            try:
                sock.connect(os.fspath(self.path))
            except (FileNotFoundError, ConnectionRefusedError):
                raise DaemonUnavailable(
                    f"no daemon is listening on {self.path} (start one with `unipush-bridge run`)"
                ) from None
            except OSError as exc:
                raise DaemonUnavailable(f"cannot reach the daemon on {self.path}: {exc}") from None
            check_peer(sock, f"the daemon on {self.path}")
            try:
                try:
                    sock.sendall(encode_request(Request(1, method, params)))
                except OSError as exc:
                    return self._refusal(sock, exc)
                return self._answer(sock)
            except TimeoutError:
                raise DaemonUnavailable(
                    f"the daemon on {self.path} did not answer {method} within {self.timeout:g} s"
                ) from None
            except OSError as exc:
                raise DaemonUnavailable(
                    f"the daemon on {self.path} closed the connection: {exc}"
                ) from None
        finally:
            sock.close()

    def _refusal(self, sock: Any, exc: OSError) -> dict[str, Any]:
        """The daemon may refuse a connection (past its cap) and close before the
        request is written: the write fails, but the reason is already in the receive
        buffer, and it says more than the write's "Broken pipe"."""
        sock.settimeout(1.0)
        try:
            return self._answer(sock)
        except (OSError, DaemonUnavailable, ProtocolError):
            raise exc from None

    def _answer(self, sock: Any) -> dict[str, Any]:
        """Lines until the answer to request 1 (events before it are skipped), or the
        daemon's refusal of the line or the connection."""
        buf = b""
        while True:
            end = buf.find(b"\n")
            if end < 0:
                if len(buf) > MAX_LINE:
                    raise ProtocolError(f"a line from the daemon is over {MAX_LINE} bytes")
                chunk = sock.recv(65536)
                if not chunk:
                    raise DaemonUnavailable(f"the daemon on {self.path} closed the connection")
                buf += chunk
                continue
            line, buf = buf[: end + 1], buf[end + 1 :]
            if len(line) > MAX_LINE:
                raise ProtocolError(f"a line from the daemon is over {MAX_LINE} bytes")
            msg = parse_daemon_line(line)
            # id null: the daemon could not take request 1 at all (a line over its
            # limit, a connection past its cap); its reason beats "closed the connection".
            if isinstance(msg, Answer) and (msg.id == 1 or (msg.id is None and msg.failed)):
                return msg.result
