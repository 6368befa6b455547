"""gateway/openapi.py: the OpenAPI 3.1 document, checked for structure (no validator)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from unipush_bridge import __version__
from unipush_bridge.gateway import methods
from unipush_bridge.gateway.errors import UniError
from unipush_bridge.gateway.openapi import ENVELOPE, SEND_MESSAGE, openapi_document
from unipush_bridge.gateway.send import MAX_LIST, MAX_TTL_MS, STRICT

NAMES = ["sendMessage", *methods.METHODS]
ENVELOPE_REF = {"$ref": "#/components/schemas/Envelope"}


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    return openapi_document()


def resolve(doc: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/")
    node: Any = doc
    for part in ref[2:].split("/"):
        node = node[part]
    return node


def refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for v in node.values() for r in refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in refs(v)]
    return []


def test_top_level(doc: dict[str, Any]) -> None:
    assert doc["openapi"] == "3.1.0"
    assert doc["info"]["title"]
    assert doc["info"]["version"] == __version__
    assert isinstance(doc["paths"], dict)
    assert doc["components"]["securitySchemes"]["server_secret"] == {
        "type": "http",
        "scheme": "bearer",
    }
    for requirement in doc["security"]:
        for scheme in requirement:
            assert scheme in doc["components"]["securitySchemes"]


def test_is_json_serialisable_and_cached(doc: dict[str, Any]) -> None:
    assert json.loads(json.dumps(doc)) == doc
    assert openapi_document() is doc


def test_a_path_for_send_message_and_every_method(doc: dict[str, Any]) -> None:
    assert set(doc["paths"]) == {f"/api/{{appId}}/{name}" for name in NAMES}
    for name in methods.NOT_SUPPORTED:
        assert f"/api/{{appId}}/{name}" not in doc["paths"]


@pytest.mark.parametrize("name", NAMES)
def test_each_operation(doc: dict[str, Any], name: str) -> None:
    path = f"/api/{{appId}}/{name}"
    item = doc["paths"][path]
    assert set(item) == {"post"}
    op = item["post"]
    assert op["operationId"] == name
    assert isinstance(op["summary"], str)
    assert op["summary"]
    templated = re.findall(r"{(\w+)}", path)
    params = op["parameters"]
    assert [(p["name"], p["in"], p["required"]) for p in params] == [
        (t, "path", True) for t in templated
    ]
    assert all(p["schema"] == {"type": "string"} for p in params)
    body = op["requestBody"]
    assert isinstance(body["required"], bool)
    assert "schema" in body["content"]["application/json"]
    responses = op["responses"]
    # 403, 408, 415, 421: the edge's refusals (issue 10 items 4 and 9)
    assert set(responses) == {"200", "400", "401", "403", "404", "408", "415", "421", "429"}
    for code, response in responses.items():
        assert isinstance(response["description"], str), code
        assert response["description"]
        assert response["content"]["application/json"]["schema"] == ENVELOPE_REF


def test_operation_ids_are_unique(doc: dict[str, Any]) -> None:
    ids = [op["operationId"] for item in doc["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids)) == len(NAMES)


def test_every_ref_resolves(doc: dict[str, Any]) -> None:
    found = refs(doc)
    assert ENVELOPE_REF["$ref"] in found
    for ref in found:
        assert isinstance(resolve(doc, ref), dict)


def test_send_message_schema(doc: dict[str, Any]) -> None:
    op = doc["paths"]["/api/{appId}/sendMessage"]["post"]
    assert op["requestBody"]["required"] is True
    schema = op["requestBody"]["content"]["application/json"]["schema"]
    assert schema == SEND_MESSAGE == doc["components"]["schemas"]["SendMessage"]
    assert schema["type"] == "object"
    assert "required" not in schema  # a transparent message has no title or content
    assert "transparent" in schema["description"]
    props = schema["properties"]
    for key in ("push_clientid", "getui_alias", "user_id", "user_tag", "device_id"):
        assert key in props
    assert props["title"]["maxLength"] == STRICT.title
    assert props["content"]["maxLength"] == STRICT.content
    assert props["request_id"]["minLength"] == 10
    assert props["request_id"]["maxLength"] == 32
    assert props["settings"]["properties"]["ttl"]["minimum"] == -1
    assert props["settings"]["properties"]["ttl"]["maximum"] == MAX_TTL_MS
    assert str(MAX_LIST["push_clientid"]) in props["push_clientid"]["description"]
    assert "getui_big_data_tag" not in props
    assert "before_id" in props


def test_envelope_schema(doc: dict[str, Any]) -> None:
    assert doc["components"]["schemas"]["Envelope"] == ENVELOPE
    assert set(ENVELOPE["required"]) == {"errCode", "errMsg", "data"}
    ok, failure = ENVELOPE["properties"]["errCode"]["oneOf"]
    assert ok == {"const": 0}
    code = UniError(20001, "x").envelope()["errCode"]
    assert re.fullmatch(failure["pattern"], code)


def test_only_get_today_report_has_an_optional_body(
    doc: dict[str, Any],
) -> None:
    optional = [
        name
        for name in NAMES
        if not doc["paths"][f"/api/{{appId}}/{name}"]["post"]["requestBody"]["required"]
    ]
    assert optional == ["getTodayReport"]
