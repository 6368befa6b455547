"""The code under test: a shop's server sends push messages through uni-push 2.0's
server API (here the reference gateway the fixtures start)."""

from __future__ import annotations

import json
import urllib.request
from typing import Any


def order_shipped(gateway_url: str, appid: str, cid: str, order: int) -> list[str]:
    """Tell the buyer's device that an order is on its way; returns the task ids."""
    body = {
        "push_clientid": cid,
        "title": "Order shipped",
        "content": f"Your order #{order} is on its way",
        "payload": {"order": order, "path": f"/pages/order?id={order}"},
    }
    req = urllib.request.Request(
        f"{gateway_url}/api/{appid}/sendMessage",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        answer: dict[str, Any] = json.loads(resp.read())
    if answer.get("errCode") != 0:
        raise RuntimeError(answer.get("errMsg"))
    return list(answer["data"])
