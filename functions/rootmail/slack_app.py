"""The Slack endpoint: `/rootmail` and the digest's buttons and modal, a Flask app that runs on Lambda through
serverless-wsgi (rootmail/handlers/slack.py) and on localhost through `rootmail slack serve`.

Every request is checked before anything else: Slack's v0 signature over the raw body within 5 minutes, then the
operator's user ID and channel against the configured lists. Anything else gets a clear refusal and a log line, and
changes nothing. Replays of requests that change something are refused in rootmail/operators.py.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

from flask import Flask, Response, jsonify, request
from slack_sdk.signature import SignatureVerifier

from rootmail.domain.operator_messages import refusal
from rootmail.errors import RootmailError
from rootmail.observability import logger
from rootmail.operators import SlackRequest, answer_command, answer_interaction, tell_refusal
from rootmail.runtime import Runtime, runtime

WINDOW_SECONDS = 300  # Slack's own: a request older (or newer) than this is refused
MAX_BODY = 256 * 1024


def create_app(runtime_of: Callable[[], Runtime] = runtime) -> Flask:
    app = Flask("rootmail")
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY

    @app.post("/slack/commands")
    def commands() -> Any:
        rt = runtime_of()
        body = request.get_data(
            cache=True
        )  # the raw bytes, before Flask parses the form: the signature covers them
        problem = _unverified(rt, body)
        if problem:
            return problem
        form = {
            k: v[-1] for k, v in parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True).items()
        }
        slack_request = SlackRequest(
            user_id=form.get("user_id", ""),
            channel_id=form.get("channel_id", ""),
            signature=request.headers.get("X-Slack-Signature", ""),
            response_url=form.get("response_url") or None,
            trigger_id=form.get("trigger_id") or None,
        )
        refused = _unauthorised(rt, slack_request, form.get("command", "/rootmail"))
        if refused:
            refused.pop("reason")
            return jsonify(refused)
        return _answer(rt, lambda: answer_command(rt, form.get("text", ""), slack_request))

    @app.post("/slack/interactions")
    def interactions() -> Any:
        rt = runtime_of()
        body = request.get_data(cache=True)
        problem = _unverified(rt, body)
        if problem:
            return problem
        form = parse_qs(body.decode("utf-8", "replace"))
        try:
            payload = json.loads(form["payload"][-1]) if "payload" in form else None
        except ValueError:
            payload = None
        if not isinstance(payload, dict):
            logger.warning("Slack interaction without a payload refused")
            return _status(400, "no interaction payload")
        channel = (payload.get("channel") or {}).get("id") or ""
        if not channel and payload.get("view"):
            # A modal's submission has no channel: the one it was opened from travels in its metadata.
            try:
                channel = json.loads(payload["view"].get("private_metadata") or "{}").get("channel") or ""
            except ValueError:
                channel = ""
        slack_request = SlackRequest(
            user_id=(payload.get("user") or {}).get("id", ""),
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
    if not SignatureVerifier(rt.signing_secret).is_valid(body, timestamp, signature):
        return _refuse("invalid signature")
    return None


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
    except (ValueError, KeyError, TypeError, AttributeError):  # a payload not shaped as Slack sends it
        logger.exception("malformed Slack request")
        return _status(400, "malformed request")
    if answer is None:
        return Response(status=200)
    return jsonify(answer)
