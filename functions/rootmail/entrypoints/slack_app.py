"""The Slack endpoint: `/rootmail` and the digest's buttons and modal, a Flask app that runs on Lambda through
serverless-wsgi (rootmail/entrypoints/handlers/slack.py) and on localhost through `rootmail slack serve`.

Every request is checked before anything else: Slack's v0 signature over the raw body within 5 minutes, then the
operator's user ID and channel against the configured lists. Anything else gets a clear refusal and a log line, and
changes nothing. Replays of requests that change something are refused in rootmail/app/slack_commands.py.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
import traceback
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

from flask import Flask, Response, jsonify, request

from rootmail.app.slack_commands import SlackRequest, answer_command, answer_interaction, tell_refusal
from rootmail.bootstrap import Runtime, runtime
from rootmail.errors import RootmailError
from rootmail.messages.operators import refusal
from rootmail.observability import logger

WINDOW_SECONDS = 300  # Slack's own: a request older (or newer) than this is refused
MAX_BODY = 256 * 1024
# Slack's user, team and channel IDs (U0123ABCD, W…, C…, G…, D…): what the configured lists hold.
_SLACK_ID = re.compile(r"[A-Z0-9]{1,64}")
# A slash command's or an interaction's type as Slack names them (/rootmail, block_actions, view_submission).
_NAME = re.compile(r"/?[a-z0-9_-]{1,40}")


def create_app(runtime_of: Callable[[], Runtime] = runtime) -> Flask:
    app = Flask("rootmail")
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY

    @app.post("/slack/commands")
    def commands() -> Any:
        rt = runtime_of()
        body = request.get_data(
            cache=True
        )  # the raw bytes, before Flask parses the form: the signature covers them
        unverified = _unverified(rt, body)
        if unverified:
            return unverified
        form = {
            k: v[-1] for k, v in parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True).items()
        }
        problem = _not_an_id(form.get("user_id"), "user_id") or _not_an_id(
            form.get("channel_id"), "channel_id"
        )
        if problem:
            return _malformed(problem)
        slack_request = SlackRequest(
            user_id=form["user_id"],
            channel_id=form["channel_id"],
            signature=request.headers.get("X-Slack-Signature", ""),
            response_url=form.get("response_url") or None,
            trigger_id=form.get("trigger_id") or None,
        )
        command = form.get("command", "/rootmail")
        refused = _unauthorised(rt, slack_request, command if _NAME.fullmatch(command) else "a slash command")
        if refused:
            refused.pop("reason")
            return jsonify(refused)
        return _answer(rt, lambda: answer_command(rt, form.get("text", ""), slack_request))

    @app.post("/slack/interactions")
    def interactions() -> Any:
        rt = runtime_of()
        body = request.get_data(cache=True)
        unverified = _unverified(rt, body)
        if unverified:
            return unverified
        form = parse_qs(body.decode("utf-8", "replace"))
        try:
            payload = json.loads(form["payload"][-1]) if "payload" in form else None
        except (ValueError, RecursionError):  # not JSON, or nested deeper than the parser recurses
            payload = None
        if payload is None:
            return _malformed("no interaction payload")
        problem = _interaction_problem(payload)
        if problem:
            return _malformed(problem)
        channel = (payload.get("channel") or {}).get("id") or ""
        if not channel and payload.get("view"):
            # A modal's submission has no channel: the one it was opened from travels in its metadata.
            channel = json.loads(payload["view"].get("private_metadata") or "{}").get("channel") or ""
        slack_request = SlackRequest(
            user_id=payload["user"]["id"],
            channel_id=channel,
            signature=request.headers.get("X-Slack-Signature", ""),
            response_url=payload.get("response_url") or None,
            trigger_id=payload.get("trigger_id") or None,
        )
        refused = _unauthorised(rt, slack_request, f"interaction {payload.get('type')}")
        if refused:
            if payload.get("type") == "view_submission":
                return jsonify({"response_action": "errors", "errors": {"rule_id": refused["text"][:150]}})
            # Slack shows nothing of a click's acknowledgement: the refusal goes to the operator alone.
            tell_refusal(rt, slack_request, refused["reason"])
            return Response(status=200)
        return _answer(rt, lambda: answer_interaction(rt, payload, slack_request))

    return app


def _unverified(rt: Runtime, body: bytes) -> Response | None:
    """None when Slack signed this body within the window; otherwise the 401 to answer (and a log line)."""
    timestamp = request.headers.get("X-Slack-Request-Timestamp", "")
    signature = request.headers.get("X-Slack-Signature", "")
    if not timestamp or not signature:
        return _refuse("missing Slack signature headers")
    try:
        age = abs(time.time() - int(timestamp))
    except ValueError:
        return _refuse("malformed X-Slack-Request-Timestamp")
    if age > WINDOW_SECONDS:
        return _refuse(f"stale request ({int(age)} s outside Slack's {WINDOW_SECONDS} s window)")
    if not _signed(rt.signing_secret, timestamp, body, signature):
        return _refuse("invalid signature")
    return None


def _signed(secret: str, timestamp: str, body: bytes, signature: str) -> bool:
    """Slack's v0 signature: HMAC-SHA256 over `v0:{timestamp}:{body}`, the body's raw bytes (slack_sdk's verifier
    decodes them as UTF-8 first, and fails on a body that is not)."""
    base = b"v0:" + timestamp.encode("utf-8", "replace") + b":" + body
    expected = "v0=" + hmac.new(secret.encode("utf-8"), base, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode("ascii"), signature.encode("utf-8", "replace"))


def _refuse(reason: str) -> Response:
    logger.warning("Slack request refused", extra={"reason": reason, "path": request.path})
    return _status(401, f"refused: {reason}")


def _status(code: int, text: str) -> Response:
    response = jsonify({"ok": False, "error": text})
    response.status_code = code
    return response


def _unauthorised(rt: Runtime, slack_request: SlackRequest, what: str) -> dict[str, Any] | None:
    """A refusal when the user is not an operator or the channel is not an operators' channel."""
    operators, channels = rt.settings.slack_operator_ids, rt.settings.slack_channel_ids
    reason = None
    if not operators or not channels:
        reason = "no operators or channels are configured (ROOTMAIL_SLACK_OPERATOR_IDS, ROOTMAIL_SLACK_CHANNEL_IDS)"
    elif slack_request.user_id not in operators:
        reason = f"<@{slack_request.user_id}> is not one of rootmail's operators"
    elif slack_request.channel_id not in channels:
        reason = "rootmail answers only in the operators' channels"
    if reason is None:
        return None
    logger.warning(
        "unauthorised Slack request refused",
        extra={"user": slack_request.user_id, "channel": slack_request.channel_id, "what": what[:100]},
    )
    return {**refusal(reason, rt.settings.operator_language), "reason": reason}


def _answer(rt: Runtime, work: Callable[[], dict[str, Any] | None]) -> Any:
    try:
        answer = work()
    except RootmailError as exc:
        logger.exception("Slack request failed")
        reason = f"rootmail could not do that now ({type(exc).__name__}); try again"
        return jsonify(refusal(reason, rt.settings.operator_language))
    except (ValueError, LookupError, TypeError, AttributeError) as exc:
        # A payload shaped as Slack sends it on the outside, not deeper in. The log names the error and where it
        # was raised, not its message: that quotes the payload, which may hold anything an operator pasted.
        frames = traceback.extract_tb(exc.__traceback__)
        where = next((f for f in reversed(frames) if "rootmail" in f.filename), frames[-1])
        return _malformed(f"{type(exc).__name__} in {where.name}, line {where.lineno}")
    if answer is None:
        return Response(status=200)
    return jsonify(answer)


def _malformed(problem: str) -> Response:
    """A signed request not shaped as Slack sends it: 400, and a log line that says what is wrong with it (field
    names and kinds of value, never the values)."""
    logger.warning("malformed Slack request refused", extra={"problem": problem, "path": request.path})
    return _status(400, "malformed request")


def _kind(value: object) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number"
    )


def _not_an_id(value: object, name: str) -> str | None:
    if isinstance(value, str):
        return None if _SLACK_ID.fullmatch(value) else f"{name} is not a Slack ID"
    return f"{name} is {_kind(value)}, not a Slack ID"


def _interaction_problem(payload: object) -> str | None:
    """What in an interaction payload is not as Slack sends it, by field name and kind of value; None when every
    field the endpoint and the operators' code read has the shape they read it with."""
    if not isinstance(payload, dict):
        return f"the payload is {_kind(payload)}, not an object"
    fields: tuple[tuple[str, type, bool], ...] = (
        ("type", str, True),
        ("user", dict, True),
        ("channel", dict, False),
        ("response_url", str, False),
        ("trigger_id", str, False),
        ("actions", list, False),
        ("view", dict, False),
    )
    for name, kind, required in fields:
        value = payload.get(name)
        if not isinstance(value, kind) and (required or value is not None):
            return f"{name} is {_kind(value)}"
    problem = None if _NAME.fullmatch(payload["type"]) else "type is not an interaction type"
    problem = problem or _not_an_id(payload["user"].get("id"), "user.id")
    channel = (payload.get("channel") or {}).get("id")
    if not problem and channel is not None:
        problem = _not_an_id(channel, "channel.id")
    for number, action in enumerate(payload.get("actions") or []):
        if not problem and not isinstance(action, dict):
            problem = f"actions[{number}] is {_kind(action)}"
        elif not problem and not all(isinstance(action.get(k), str | None) for k in ("action_id", "value")):
            problem = f"actions[{number}] has an action_id or value that is not a string"
    return problem or _view_problem(payload.get("view"))


def _view_problem(view: dict[str, Any] | None) -> str | None:
    """The modal's fields as rootmail wrote them (callback_id, private_metadata) and its submitted state."""
    if view is None:
        return None
    for name in ("callback_id", "private_metadata"):
        if not isinstance(view.get(name), str | None):
            return f"view.{name} is {_kind(view.get(name))}"
    if view.get("private_metadata"):
        try:
            metadata = json.loads(view["private_metadata"])
        except (ValueError, RecursionError):
            return "view.private_metadata is not JSON"
        if not isinstance(metadata, dict):
            return f"view.private_metadata is {_kind(metadata)}, not an object"
        if metadata.get("channel"):
            problem = _not_an_id(metadata["channel"], "view.private_metadata.channel")
            if problem:
                return problem
    state = view.get("state")
    values = state.get("values") if isinstance(state, dict) else None
    if not isinstance(state, dict | None):
        return f"view.state is {_kind(state)}"
    if not isinstance(values, dict | None):
        return f"view.state.values is {_kind(values)}"
    for block in (values or {}).values():
        elements = block.values() if isinstance(block, dict) else [block]
        for element in elements:
            if not isinstance(element, dict):
                return f"view.state.values holds {_kind(element)} where an object belongs"
            if not isinstance(element.get("selected_option"), dict | None):
                return (
                    f"view.state.values holds a selected_option that is {_kind(element['selected_option'])}"
                )
    return None
