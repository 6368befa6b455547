"""gateway/service.py: sendMessage's orchestration as plain code, no HTTP, no sockets."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from unipush_bridge.gateway.access import GatewayConfig
from unipush_bridge.gateway.errors import UniError
from unipush_bridge.gateway.service import Delivery, GatewayService
from unipush_bridge.gateway.store import GatewayStore

APP = "__UNI__SVC"
ON, OFF, NEVER = "a" * 32, "b" * 32, "c" * 32


@pytest.fixture
def service(tmp_path: Path) -> GatewayService:
    clock = itertools.count(1_800_000_000).__next__
    store = GatewayStore(tmp_path / "gw.sqlite3", lambda: float(clock()))
    store.register(APP, ON, 0)
    store.register(APP, OFF, 0)
    return GatewayService(GatewayConfig(data_dir=tmp_path), store, lambda: 1_800_000_000.0)


def online(appid: str, cids: list[str]) -> set[str]:
    return {ON} & set(cids)


def body(**extra: object) -> dict[str, object]:
    return {
        "push_clientid": [ON, OFF, NEVER],
        "title": "T",
        "content": "C",
        "payload": "p",
        **extra,
    }


def test_statuses_and_only_online_cids_are_handed_over(service: GatewayService) -> None:
    outcome = service.send_message(APP, body(), online)
    ((taskid, statuses),) = outcome.answer["data"].items()
    assert statuses == {
        ON: "successed_online",
        OFF: "successed_offline",
        NEVER: "target user is invalid",
    }
    (delivery,) = outcome.deliveries
    assert isinstance(delivery, Delivery) and delivery.cid == ON
    assert f'"taskid": "{taskid}"' in delivery.body_json
    assert service.store.after_raw(APP, OFF, 0)  # stored for later


def test_a_repeated_request_id_answers_the_same_and_hands_over_nothing(
    service: GatewayService,
) -> None:
    first = service.send_message(APP, body(request_id="r" * 12), online)
    again = service.send_message(APP, body(request_id="r" * 12), online)
    assert again.answer == first.answer
    assert again.deliveries == []


def test_online_only_stores_nothing_for_an_offline_cid(service: GatewayService) -> None:
    outcome = service.send_message(APP, body(settings={"ttl": -1}), online)
    ((_, statuses),) = outcome.answer["data"].items()
    assert statuses[OFF] == "successed_ignore"
    assert service.store.after_raw(APP, OFF, 0) == []


def test_other_methods_go_through_the_same_call(service: GatewayService) -> None:
    outcome = service.call(APP, "getClientStatusByCid", {"cid": ON}, online)
    assert outcome.answer["errCode"] == 0 and outcome.deliveries == []
    with pytest.raises(UniError, match="not a uni-push server method"):
        service.call(APP, "noSuchMethod", {}, online)


def test_authorize_names_what_to_send(tmp_path: Path) -> None:
    store = GatewayStore(tmp_path / "gw.sqlite3", lambda: 0.0)
    config = GatewayConfig(data_dir=tmp_path, server_secret="s" * 16)
    service = GatewayService(config, store, lambda: 0.0)
    service.authorize(APP, "Bearer " + "s" * 16)
    with pytest.raises(UniError, match="Authorization: Bearer <server_secret>"):
        service.authorize(APP, "Bearer wrong")
