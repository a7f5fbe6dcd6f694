"""The names that tie a stored mail to its ledger record and its triage executions."""

from __future__ import annotations

import hashlib
import re

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
# The object SES writes when a receipt rule is set up: not a mail.
SES_SETUP_NOTIFICATION = "AMAZON_SES_SETUP_NOTIFICATION"


def mail_id_for(key: str) -> str:
    """The ledger's key for a stored mail: the object key's last part, which is SES's message ID."""
    return key.rsplit("/", 1)[-1]


def execution_name(key: str, run: str | None = None) -> str:
    """A Step Functions execution name derived from the object key (SES's message ID), so a duplicate S3 event
    names the same execution. A retry run gives its own name, so each retry of a mail is a new execution, and the
    same retry step replayed finds its execution already there. Names allow 80 characters of [A-Za-z0-9-_]; a
    digest keeps long or unusual keys unique."""
    leaf = _UNSAFE.sub("-", key.rsplit("/", 1)[-1])
    if run is None:
        return f"{leaf[:60]}-{hashlib.sha256(key.encode('utf-8')).hexdigest()[:16]}"
    digest = hashlib.sha256(f"{key}\x1f{run}".encode()).hexdigest()[:16]
    return f"{leaf[:54]}-retry-{digest}"
