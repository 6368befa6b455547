"""The OpenAPI 3.1 description of the gateway's HTTP API, served at /openapi.json.

Built from the same tables the gateway dispatches on, so a method cannot be served
without being described.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from .. import __version__
from . import methods
from .send import DEFAULT_TTL_MS, MAX_GROUP_NAME, MAX_LIST, MAX_OPEN_URL, MAX_TTL_MS, STRICT

_STRINGS = {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}

SEND_MESSAGE: dict[str, Any] = {
    "type": "object",
    "description": "Exactly the object uniCloud.getPushManager({appId}).sendMessage takes. "
    "At most one target; none means every cid ever registered for the appId. "
    'null or "" counts as not given; with no title and no content (a transparent '
    "message) a payload is required.",
    "properties": {
        "push_clientid": {
            **_STRINGS,
            "description": f"≤ {MAX_LIST['push_clientid']} cids; devices past 500 are ignored",
        },
        "getui_alias": {**_STRINGS, "description": f"≤ {MAX_LIST['getui_alias']} aliases"},
        "getui_custom_tag": {**_STRINGS, "description": "one tag (a list of one string)"},
        "user_id": {**_STRINGS, "description": "needs a uni-id mapping (bindUniIdDevice)"},
        "user_tag": {**_STRINGS, "description": "needs a uni-id mapping (bindUniIdDevice)"},
        "device_id": {**_STRINGS, "description": "needs a uni-id mapping (bindUniIdDevice)"},
        "title": {
            "type": "string",
            "maxLength": STRICT.title,
            "description": "limits relax with strict_limits = false",
        },
        "content": {"type": "string", "maxLength": STRICT.content},
        "payload": {"oneOf": [{"type": "string", "maxLength": STRICT.payload}, {"type": "object"}]},
        "force_notification": {"type": "boolean", "default": False},
        "before_id": {
            "type": "string",
            "maxLength": 64,
            "description": "a uni-id target's next 500 devices: the previous answer's before_id",
        },
        "request_id": {
            "type": "string",
            "minLength": 10,
            "maxLength": 32,
            "description": "a repeated request_id is not sent again",
        },
        "group_name": {"type": "string", "maxLength": MAX_GROUP_NAME},
        "open_url": {"type": "string", "maxLength": MAX_OPEN_URL - 1, "pattern": "^https?://"},
        "sound": {"type": "string"},
        "category": {"type": "object"},
        "badge": {"oneOf": [{"type": "string"}, {"type": "integer"}]},
        "channelId": {"type": "string"},
        "settings": {
            "type": "object",
            "properties": {
                "ttl": {
                    "type": "integer",
                    "minimum": -1,
                    "maximum": MAX_TTL_MS,
                    "default": DEFAULT_TTL_MS,
                    "description": "ms kept for an offline cid; -1 = online only",
                },
            },
        },
    },
}

ENVELOPE: dict[str, Any] = {
    "type": "object",
    "required": ["errCode", "errMsg", "data"],
    "properties": {
        "errCode": {
            "oneOf": [{"const": 0}, {"type": "string", "pattern": "^uni-cloud-push-error-[0-9]+$"}]
        },
        "errMsg": {"type": "string"},
        "data": {},
    },
}

SUMMARIES = {
    "sendMessage": "Push a message to cids, aliases, a tag, uni-id targets or everyone",
    "cidBindAlias": "Bind aliases to cids: [{cid, alias}]",
    "getAliasByCid": "The alias of a cid",
    "getCidByAlias": "The cids bound to an alias",
    "unboundAlias": "Unbind [{cid, alias}] pairs",
    "unboundAllAlias": "Unbind every cid from an alias",
    "cidBindCustomTags": "Replace a cid's tags: {cid, custom_tag: [...]}",
    "cidsBindCustomTag": "Add one tag to cids: {cids, custom_tag}",
    "cidsUnboundCustomTag": "Remove one tag from cids: {cids, custom_tag}",
    "searchCustomTagByCid": "The tags of a cid",
    "getClientStatusByCid": "online/offline and last login of cids",
    "getClientDetailByCid": "What the gateway knows of cids",
    "getReport": "Counters of tasks: {taskid}",
    "getReportByGroupName": "Counters of a task group",
    "getTodayReport": "Today's use of uni-push's daily quotas (counted, not enforced)",
    "getReportByDate": "Counters of the tasks of one day (yyyy-MM-dd)",
    "bindUniIdDevice": "Gateway extension: map a cid to a uni-id user, tags and device",
}


@cache
def openapi_document() -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for name in ["sendMessage", *methods.METHODS]:
        request = (
            SEND_MESSAGE
            if name == "sendMessage"
            else {"description": "The argument exactly as the uniCloud method takes it"}
        )
        paths[f"/api/{{appId}}/{name}"] = {
            "post": {
                "operationId": name,
                "summary": SUMMARIES[name],
                "parameters": [
                    {"name": "appId", "in": "path", "required": True, "schema": {"type": "string"}}
                ],
                "requestBody": {
                    "required": name not in ("getTodayReport",),
                    "content": {"application/json": {"schema": request}},
                },
                "responses": {
                    str(code): {
                        "description": text,
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/Envelope"}
                            }
                        },
                    }
                    for code, text in (
                        (200, "ok: errCode 0"),
                        (400, "bad argument: the errMsg names the field and the rule"),
                        (401, "missing or wrong Bearer secret"),
                        (403, "a web page's Origin not in allowed_origins"),
                        (404, "unknown method or appId"),
                        (408, "the request body did not arrive within body_timeout_s"),
                        (415, "a body sent without Content-Type: application/json"),
                        (421, "a Host header that is not a name of this gateway"),
                        (
                            429,
                            "rate limit (uni-cloud-push-error-10005, or 30014 for "
                            "broadcasts), or too many failed authentications",
                        ),
                    )
                },
            }
        }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "unipush-bridge gateway",
            "version": __version__,
            "description": "uni-push 2.0's server API (uniCloud.getPushManager) over "
            "HTTP. Methods not listed answer 400 'not supported' or 404.",
        },
        "paths": paths,
        "components": {
            "schemas": {"Envelope": ENVELOPE, "SendMessage": SEND_MESSAGE},
            "securitySchemes": {"server_secret": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"server_secret": []}, {}],
    }
