"""Sending through SES v2 (raw messages up to 40 MB; v1 stops at 10 MB)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from rootmail.adapters.aws import THROTTLING_CODES, describe, error_code, is_transient
from rootmail.errors import SesRejected, SesThrottled, SesUnavailable


class SesMailer:
    def __init__(self, sesv2: Any, sender: str, configuration_set: str | None = None) -> None:
        self._ses = sesv2
        self.sender = sender
        self._configuration_set = configuration_set

    def send(self, data: bytes, to: Sequence[str]) -> str:
        """Send one raw MIME message; return SES's message ID."""
        kwargs: dict[str, Any] = {
            "FromEmailAddress": self.sender,
            "Destination": {"ToAddresses": list(to)},
            "Content": {"Raw": {"Data": data}},
        }
        if self._configuration_set:
            kwargs["ConfigurationSetName"] = self._configuration_set
        try:
            return str(self._ses.send_email(**kwargs)["MessageId"])
        except ClientError as exc:
            if error_code(exc) in THROTTLING_CODES:
                raise SesThrottled(describe(exc)) from None
            if is_transient(exc):
                raise SesUnavailable(describe(exc)) from None
            raise SesRejected(describe(exc)) from None
        except BotoCoreError as exc:
            raise SesUnavailable(describe(exc)) from None
