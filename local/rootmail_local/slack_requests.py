"""Requests as Slack sends them to the /rootmail endpoint, signed with a signing secret: for the local demo,
`rootmail slack serve`'s example and the tests. They reach the Flask app through serverless-wsgi (an API Gateway
HTTP API event) or over HTTP (curl)."""

from __future__ import annotations

import base64
import json
import shlex
import time
from typing import Any
from urllib.parse import urlencode

from slack_sdk.signature import SignatureVerifier

COMMANDS_PATH = "/slack/commands"
INTERACTIONS_PATH = "/slack/interactions"


def signed(secret: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    """The headers Slack adds: the request's time and the v0 signature over `v0:{time}:{body}`."""
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    signature = SignatureVerifier(secret).generate_signature(timestamp=stamp, body=body)
    return {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": str(signature),
    }


def command_body(
    text: str,
    *,
    user: str,
    channel: str,
    response_url: str,
    command: str = "/rootmail",
    trigger_id: str = "local.trigger",
) -> bytes:
    return urlencode(
        {
            "token": "deprecated-verification-token",
            "team_id": "T0LOCAL",
            "channel_id": channel,
            "user_id": user,
            "command": command,
            "text": text,
            "response_url": response_url,
            "trigger_id": trigger_id,
        }
    ).encode()


def interaction_body(payload: dict[str, Any]) -> bytes:
    return urlencode({"payload": json.dumps(payload, ensure_ascii=False)}).encode()


def http_api_event(path: str, headers: dict[str, str], body: bytes) -> dict[str, Any]:
    """An API Gateway HTTP API (payload 2.0) event for a POST, as Lambda receives it."""
    return {
        "version": "2.0",
        "routeKey": f"POST {path}",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {k.lower(): v for k, v in headers.items()},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "domainName": "local.execute-api.localhost",
            "http": {"method": "POST", "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1"},
            "requestId": f"local-{time.monotonic_ns()}",
            "routeKey": f"POST {path}",
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime()),
            "timeEpoch": int(time.time() * 1000),
        },
        "body": base64.b64encode(body).decode(),
        "isBase64Encoded": True,
    }


def curl(url: str, headers: dict[str, str], body: bytes) -> str:
    """The same request as a curl command line."""
    parts = ["curl", "-sS", url]
    for name, value in headers.items():
        parts += ["-H", f"{name}: {value}"]
    parts += ["--data-binary", body.decode()]
    return " ".join(shlex.quote(p) for p in parts)


def button_click(
    action_id: str,
    value: str,
    *,
    user: str,
    channel: str,
    response_url: str,
    trigger_id: str = "local.trigger",
) -> dict[str, Any]:
    """The interaction payload Slack sends when an operator clicks a button of a message."""
    return {
        "type": "block_actions",
        "user": {"id": user},
        "channel": {"id": channel},
        "trigger_id": trigger_id,
        "response_url": response_url,
        "actions": [{"action_id": action_id, "value": value, "type": "button"}],
    }


def view_submission(view: dict[str, Any], values: dict[str, Any], *, user: str) -> dict[str, Any]:
    """The interaction payload Slack sends when an operator submits a modal."""
    return {"type": "view_submission", "user": {"id": user}, "view": {**view, "state": {"values": values}}}


def modal_values(view: dict[str, Any], **choices: str) -> dict[str, Any]:
    """A modal's submitted state: each input's prefilled value, unless chosen here (by block ID)."""
    values: dict[str, Any] = {}
    for block in view["blocks"]:
        if block["type"] != "input":
            continue
        element, chosen = block["element"], choices.get(block["block_id"])
        if element["type"] == "static_select":
            picked = chosen or (element.get("initial_option") or {}).get("value")
            values[block["block_id"]] = {
                "value": {"type": "static_select", "selected_option": {"value": picked}}
            }
        else:
            text = chosen if chosen is not None else element.get("initial_value", "")
            values[block["block_id"]] = {"value": {"type": "plain_text_input", "value": text}}
    return values
