"""Bounces and complaints from SES: stop sending to the address, and tell the operators once."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rootmail.app.ports import Services
from rootmail.domain.ses_events import Suppression, suppressions_from
from rootmail.messages.render import header_text, mrkdwn
from rootmail.observability import logger


def suppression_alert(suppression: Suppression) -> tuple[str, list[dict[str, Any]]]:
    text = mrkdwn(f"Stopped sending to {suppression.address}: {header_text(suppression.reason, 300)}")
    clear = f"rootmail contacts clear {suppression.address}"
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": f":no_entry: *{text}*"}},
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": mrkdwn(
                        f"Forwards to this contact are held until it is fixed and cleared: `{clear}`"
                        + (f" · mail {suppression.mail_id}" if suppression.mail_id else "")
                    ),
                }
            ],
        },
    ]
    return text, blocks


def record_ses_events(messages: Iterable[str], rt: Services) -> dict[str, Any]:
    """Suppress every address the notifications name; alert the operators for each newly suppressed one."""
    suppressed: list[str] = []
    already: list[str] = []
    for message in messages:
        for suppression in suppressions_from(message):
            if rt.suppressions.suppress(suppression):
                suppressed.append(suppression.address)
                rt.slack.post(*suppression_alert(suppression))
            else:
                already.append(suppression.address)
    logger.info("ses events recorded", extra={"suppressed": len(suppressed)})
    return {"suppressed": suppressed, "already_suppressed": already}
