"""Block Kit pieces for the operators' messages: mail text shortened and escaped, timestamps as operators read
them, sections, context lines and buttons, each within Slack's limits."""

from __future__ import annotations

from typing import Any

from rootmail.messages.render import mrkdwn

MAX_TEXT = 2900
# Interactivity: what the digest's buttons and the rule modal are called.
CREATE_RULE = "rule_from_pattern"
RETRY_PATTERN = "retry_pattern"
RULE_MODAL = "rule_from_pattern"


def short(text: str, limit: int = 150) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def inline(text: str, limit: int = 150) -> str:
    """Mail text for mrkdwn: shortened, escaped, and unable to close a code span or start a quote."""
    return mrkdwn(short(text, limit)).replace("`", "ˋ")


def when(stamp: str | None) -> str:
    """An ISO timestamp as operators read it: `2026-11-20 10:00 UTC`."""
    if not stamp:
        return "-"
    return stamp[:16].replace("T", " ") + " UTC"


def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text[:MAX_TEXT]}}


def context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text[:MAX_TEXT]}]}


def button(text: str, action_id: str, value: str, *, primary: bool = False) -> dict[str, Any]:
    button: dict[str, Any] = {
        "type": "button",
        "text": {"type": "plain_text", "text": text},
        "action_id": action_id,
        "value": value,
    }
    if primary:
        button["style"] = "primary"
    return button
