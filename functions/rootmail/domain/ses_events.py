"""SES's bounce and complaint notifications, read into what rootmail acts on: which address to stop sending to.

SES publishes them (through a configuration set's event destination, or an identity's notification topic) to SNS
as JSON: `eventType` (or `notificationType`) "Bounce" / "Complaint", with the recipients concerned. A permanent
bounce or any complaint suppresses the address; a transient bounce (mailbox full, greylisting) does not.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Suppression:
    address: str
    kind: str  # "bounce" or "complaint"
    reason: str
    message_id: str | None  # SES's ID of the message that bounced
    mail_id: str | None  # rootmail's mail it forwarded (from our X-Rootmail-Mail-Id header), if SES kept it


def _header(mail: dict[str, Any], name: str) -> str | None:
    for header in mail.get("headers") or []:
        if str(header.get("name", "")).lower() == name.lower():
            return str(header.get("value"))
    return None


def suppressions_from(message: str | dict[str, Any]) -> list[Suppression]:
    """The addresses one SES notification tells us to stop sending to; [] for anything else (deliveries,
    transient bounces, unreadable messages)."""
    if isinstance(message, str):
        try:
            message = json.loads(message)
        except ValueError:
            return []
    if not isinstance(message, dict):
        return []
    kind = str(message.get("eventType") or message.get("notificationType") or "").lower()
    mail: dict[str, Any] = message["mail"] if isinstance(message.get("mail"), dict) else {}
    message_id = mail.get("messageId")
    mail_id = _header(mail, "X-Rootmail-Mail-Id")
    found: list[Suppression] = []
    if kind == "bounce":
        bounce = message.get("bounce") or {}
        if bounce.get("bounceType") != "Permanent":
            return []
        reason = f"permanent bounce ({bounce.get('bounceSubType', 'General')})"
        for recipient in bounce.get("bouncedRecipients") or []:
            detail = recipient.get("diagnosticCode") or recipient.get("status")
            text = f"{reason}: {detail}" if detail else reason
            found.append(
                Suppression(
                    str(recipient.get("emailAddress", "")).lower(), "bounce", text[:500], message_id, mail_id
                )
            )
    elif kind == "complaint":
        complaint = message.get("complaint") or {}
        reason = f"complaint ({complaint.get('complaintFeedbackType') or 'unspecified'})"
        for recipient in complaint.get("complainedRecipients") or []:
            found.append(
                Suppression(
                    str(recipient.get("emailAddress", "")).lower(), "complaint", reason, message_id, mail_id
                )
            )
    return [s for s in found if "@" in s.address]
