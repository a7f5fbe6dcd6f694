"""The mails a rules preview runs on: stored mail from the ledger (the queue, or the last N days) read from S3 and
resolved against the accounts table as the pipeline does, or .eml files offline."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rootmail.app.offline import AccountDirectory
from rootmail.app.ports import Services
from rootmail.config import Settings, get_settings
from rootmail.domain.mail.model import ParsedMail
from rootmail.domain.mail.parse import parse_mail
from rootmail.domain.moments import stamp
from rootmail.domain.preview import PreviewMail
from rootmail.domain.routing import Resolution, resolve, unchecked


def resolution_for(rt: Services, mail: ParsedMail) -> Resolution:
    """The accounts a mail concerns, as the pipeline's Resolve step finds them (no refresh: a preview reads)."""
    return resolve(mail, rt.accounts, rt.settings.routing)


def stored(rt: Services, records: Iterable[dict[str, Any]]) -> Iterator[PreviewMail]:
    """Ledger records → their stored mail, parsed and resolved."""
    for record in records:
        key = record.get("object_key")
        if not key:
            continue
        mail = parse_mail(rt.mail_store.get(str(key)))
        yield PreviewMail(str(record["mail_id"]), mail, resolution_for(rt, mail))


def queued(rt: Services, mail_ids: Iterable[str] | None = None) -> Iterator[PreviewMail]:
    wanted = set(mail_ids) if mail_ids is not None else None
    records = rt.ledger.in_state("queued")
    return stored(rt, (r for r in records if wanted is None or r["mail_id"] in wanted))


def since(rt: Services, days: float) -> Iterator[PreviewMail]:
    """Every mail received in the last `days` days, whatever became of it."""
    cutoff = stamp(datetime.now(UTC) - timedelta(days=days))
    return stored(rt, (r for r in rt.ledger.scan() if str(r.get("received_at") or "") >= cutoff))


def files(
    paths: Iterable[Path], directory: AccountDirectory | None, settings: Settings | None = None
) -> Iterator[PreviewMail]:
    """.eml files, with the accounts of a ListAccounts file when given (else no account check, as `triage`)."""
    policy = (settings or get_settings()).routing
    for path in paths:
        mail = parse_mail(path.read_bytes())
        resolution = unchecked(mail, policy) if directory is None else resolve(mail, directory, policy)
        yield PreviewMail(str(path), mail, resolution, accounts_checked=directory is not None)
