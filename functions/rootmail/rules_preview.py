"""The mails a rules preview runs on: stored mail from the ledger (the queue, or the last N days) read from S3 and
resolved against the accounts table as the pipeline does, or .eml files offline."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rootmail.adapters.tables import stamp
from rootmail.domain.accounts import Account, Resolution, resolve_accounts
from rootmail.domain.mail import ParsedMail
from rootmail.domain.parsing import parse_mail
from rootmail.domain.preview import PreviewMail
from rootmail.offline import AccountDirectory
from rootmail.runtime import Runtime


def resolution_for(rt: Runtime, mail: ParsedMail) -> Resolution:
    """The accounts a mail concerns, as the pipeline's Resolve step finds them (no refresh: a preview reads)."""
    return resolve_accounts(
        mail.envelope_recipient,
        list(mail.account_ids),
        rt.accounts.by_email,
        rt.accounts.by_id,
        multi_account=(mail.sender or "") in rt.settings.multi_account_senders,
    )


def stored(rt: Runtime, records: Iterable[dict[str, Any]]) -> Iterator[PreviewMail]:
    """Ledger records → their stored mail, parsed and resolved."""
    for record in records:
        key = record.get("object_key")
        if not key:
            continue
        mail = parse_mail(rt.mail_store.get(str(key)))
        yield PreviewMail(str(record["mail_id"]), mail, resolution_for(rt, mail))


def queued(rt: Runtime, mail_ids: Iterable[str] | None = None) -> Iterator[PreviewMail]:
    wanted = set(mail_ids) if mail_ids is not None else None
    records = rt.ledger.in_state("queued")
    return stored(rt, (r for r in records if wanted is None or r["mail_id"] in wanted))


def since(rt: Runtime, days: float) -> Iterator[PreviewMail]:
    """Every mail received in the last `days` days, whatever became of it."""
    cutoff = stamp(datetime.now(UTC) - timedelta(days=days))
    return stored(rt, (r for r in rt.ledger.scan() if str(r.get("received_at") or "") >= cutoff))


def files(paths: Iterable[Path], directory: AccountDirectory | None) -> Iterator[PreviewMail]:
    """.eml files, with the accounts of a ListAccounts file when given (else no account check, as `triage`)."""
    for path in paths:
        mail = parse_mail(path.read_bytes())
        if directory is None:
            resolution = resolve_accounts(None, mail.account_ids, lambda _: None, lambda i: Account(i, ""))
        else:
            resolution = resolve_accounts(
                mail.envelope_recipient, mail.account_ids, directory.by_email, directory.by_id
            )
        yield PreviewMail(str(path), mail, resolution, accounts_checked=directory is not None)
