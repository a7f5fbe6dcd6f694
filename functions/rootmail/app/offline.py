"""Offline triage of mail files: the pipeline's decision without AWS, for operators and for rule work."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rootmail.config import Settings, get_settings
from rootmail.domain.accounts import Account
from rootmail.domain.authenticity import assess
from rootmail.domain.mail.parse import parse_mail
from rootmail.domain.routing import resolve, unchecked
from rootmail.domain.rules.model import Rule
from rootmail.domain.triage import decide


@dataclass(frozen=True)
class AccountDirectory:
    """Accounts held in memory, looked up like the accounts table."""

    by_id_map: dict[str, Account]
    by_email_map: dict[str, Account]

    @classmethod
    def of(cls, accounts: Sequence[Account]) -> AccountDirectory:
        return cls({a.account_id: a for a in accounts}, {a.email: a for a in accounts})

    def by_id(self, account_id: str) -> Account | None:
        return self.by_id_map.get(account_id)

    def by_email(self, email: str) -> Account | None:
        return self.by_email_map.get(email.lower())


def read_account_items(path: Path) -> list[dict[str, Any]]:
    """A JSON array shaped like Organizations ListAccounts' `Accounts` (or the whole answer)."""
    try:
        items = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read accounts: {exc}") from None
    if isinstance(items, dict) and "Accounts" in items:
        items = items["Accounts"]
    if not isinstance(items, list) or not all(
        isinstance(i, dict) and "Id" in i and "Email" in i for i in items
    ):
        raise ValueError(f"{path}: expected a JSON array of ListAccounts items, each with Id and Email")
    return items


def load_accounts(path: Path, contacts_path: Path | None = None) -> list[Account]:
    """Accounts from a ListAccounts-shaped file, with optional contacts (`{"<id>": {"contacts": [...],
    "language": "ja"}}`: every kind of notice; `"operations"`, `"security"`, `"billing"` lists set one kind)."""
    items = read_account_items(path)
    try:
        contacts = json.loads(contacts_path.read_text(encoding="utf-8")) if contacts_path else {}
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read contacts: {exc}") from None
    accounts = []
    for item in items:
        try:
            accounts.append(Account.from_organizations(item, contacts.get(str(item["Id"]))))
        except ValueError as exc:
            raise ValueError(f"{contacts_path}: account {item['Id']}: {exc}") from None
    return accounts


def triage_file(
    path: Path,
    rules: Sequence[Rule],
    directory: AccountDirectory | None,
    settings: Settings | None = None,
) -> dict[str, Any]:
    """The pipeline's decision for one stored mail, with the pipeline's settings (the ROOTMAIL_* environment: sender
    allowlist, multi-account and third-party senders, root address tags). Without `directory` nothing about the
    accounts is checked: the accounts shown are those the mail would go to if they were known."""
    settings = settings or get_settings()
    raw = path.read_bytes()
    mail = parse_mail(raw)
    authenticity = assess(mail, settings.aws_sender_domains)
    if directory is None:
        resolution = unchecked(mail, settings.routing)
    else:
        resolution = resolve(mail, directory, settings.routing)
    decision = decide(mail, authenticity, resolution, rules, accounts_checked=directory is not None)
    return {
        "file": str(path),
        "message_id": mail.message_id,
        "subject": mail.subject,
        "sender": mail.sender,
        "envelope_recipient": mail.envelope_recipient,
        "account_ids": list(resolution.account_ids),
        "accounts_checked": directory is not None,
        "unknown_account_ids": list(resolution.unknown_account_ids),
        "other_account_ids": list(resolution.other_account_ids),
        "hold": resolution.hold,
        "notes": list(resolution.notes),
        "category": str(decision.category),
        "rule_id": decision.rule_id,
        "action": str(decision.action),
        "private": decision.private,
        "reason": decision.reason,
        "authentic": decision.authentic,
        "authenticity_reasons": authenticity.reasons,
        "case_id": mail.case_id,
        "problems": list(mail.problems),
        "alert": decision.alert,
        "signals": list(decision.signals),
        "suggestion": decision.suggestion.to_dict() if decision.suggestion else None,
    }
