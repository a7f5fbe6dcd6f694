"""Powertools Logger for the service (JSON logs, the mail as correlation ID), its metrics namespace, and the
optional redaction of e-mail addresses from every log line (ROOTMAIL_REDACT_ADDRESSES)."""

from __future__ import annotations

import logging
import re
from typing import Any

from aws_lambda_powertools import Logger

SERVICE = "rootmail"
METRICS_NAMESPACE = "rootmail"

logger = Logger(service=SERVICE)

_ADDRESS = re.compile(r"(?<![\w.+-])[\w.+-]+@([\w-]+(?:\.[\w-]+)+)")
# The log record's own attributes; everything else on a record is what a log call passed as `extra`.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


def redact(value: Any) -> Any:
    """Addresses replaced by `***@domain` (the domain still tells operators whose mail it is), in nested data."""
    if isinstance(value, str):
        return _ADDRESS.sub(r"***@\1", value)
    if isinstance(value, list | tuple):
        return type(value)(redact(v) for v in value)
    if isinstance(value, dict):
        return {k: redact(v) for k, v in value.items()}
    return value


class RedactAddresses(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:  # %-style arguments, merged first so they are redacted too
            record.msg, record.args = record.getMessage(), None
        record.msg = redact(record.msg)
        for key, value in list(vars(record).items()):
            if key not in _STANDARD:
                setattr(record, key, redact(value))
        if record.exc_info:
            # The exception's text (messages quote recipients), redacted, in the fields Powertools would write.
            name = record.exc_info[0].__name__ if record.exc_info[0] else "Exception"
            record.exception = redact(logging.Formatter().formatException(record.exc_info))
            record.exception_name = name
            record.exc_info, record.exc_text = None, None
        return True


_REDACTION = RedactAddresses()


def redact_addresses(enabled: bool) -> None:
    """Turn the redaction on or off for every log line of the service (set from the settings, once per container)."""
    target = logging.getLogger(SERVICE)
    if enabled and _REDACTION not in target.filters:
        target.addFilter(_REDACTION)
    elif not enabled and _REDACTION in target.filters:
        target.removeFilter(_REDACTION)
