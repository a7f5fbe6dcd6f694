"""Which AWS accounts a mail concerns: the envelope recipient's account, then the account IDs named in the mail."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Account:
    account_id: str
    email: str
    name: str = ""
    status: str = "ACTIVE"
    contacts: tuple[str, ...] = ()
    language: str = "en"

    def to_dict(self) -> dict[str, Any]:
        return {
            "account_id": self.account_id,
            "email": self.email,
            "name": self.name,
            "status": self.status,
            "contacts": list(self.contacts),
            "language": self.language,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Account:
        return cls(
            account_id=str(data["account_id"]),
            email=str(data.get("email", "")).lower(),
            name=str(data.get("name", "")),
            status=str(data.get("status", "ACTIVE")),
            contacts=tuple(str(c) for c in data.get("contacts", ()) or ()),
            language=str(data.get("language", "en")),
        )

    @classmethod
    def from_organizations(cls, item: dict[str, Any], contacts: dict[str, Any] | None = None) -> Account:
        """An `Accounts` item of Organizations ListAccounts, with its contacts entry if any."""
        contacts = contacts or {}
        return cls(
            account_id=str(item["Id"]),
            email=str(item["Email"]).lower(),
            name=str(item.get("Name", "")),
            status=str(item.get("Status", "ACTIVE")),
            contacts=tuple(contacts.get("contacts", ())),
            language=str(contacts.get("language", "en")),
        )


# Senders whose one mail may concern several accounts (AWS Health's aggregated notifications): each account
# named in it is a recipient. From anyone else, account IDs in the text (which may be customer-written, like a
# budget's name) never add recipients to a mail whose envelope account is known.
DEFAULT_MULTI_ACCOUNT_SENDERS: tuple[str, ...] = ("health@aws.com", "notifications@aws.com")


@dataclass(frozen=True)
class Resolution:
    accounts: tuple[Account, ...] = ()
    unknown_account_ids: tuple[str, ...] = ()
    other_account_ids: tuple[str, ...] = ()  # known accounts named in the mail that it is not delivered to
    envelope_known: bool = False
    notes: tuple[str, ...] = field(default=())

    @property
    def account_ids(self) -> list[str]:
        return [a.account_id for a in self.accounts]

    def to_dict(self) -> dict[str, Any]:
        return {
            "accounts": [a.to_dict() for a in self.accounts],
            "account_ids": self.account_ids,
            "unknown_account_ids": list(self.unknown_account_ids),
            "other_account_ids": list(self.other_account_ids),
            "envelope_known": self.envelope_known,
            "notes": list(self.notes),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Resolution:
        return cls(
            accounts=tuple(Account.from_dict(a) for a in data.get("accounts", [])),
            unknown_account_ids=tuple(data.get("unknown_account_ids", [])),
            other_account_ids=tuple(data.get("other_account_ids", [])),
            envelope_known=bool(data.get("envelope_known", False)),
            notes=tuple(data.get("notes", [])),
        )


def resolve_accounts(
    envelope_recipient: str | None,
    mentioned_ids: list[str],
    by_email: Callable[[str], Account | None],
    by_id: Callable[[str], Account | None],
    *,
    multi_account: bool = False,
) -> Resolution:
    """The envelope recipient is the reliable key (To: may be an alias). IDs named in the mail add accounts
    only for a multi-account sender, or stand in when the envelope account is unknown. Unknown IDs and the known
    accounts left out are kept so operators see them."""
    accounts: dict[str, Account] = {}
    notes: list[str] = []
    envelope_known = False
    if envelope_recipient:
        account = by_email(envelope_recipient.lower())
        if account is not None:
            accounts[account.account_id] = account
            envelope_known = True
        else:
            notes.append(f"no account has the root address {envelope_recipient}")
    else:
        notes.append("no envelope recipient in the mail")
    unknown: list[str] = []
    others: list[str] = []
    for account_id in mentioned_ids:
        if account_id in accounts:
            continue
        account = by_id(account_id)
        if account is None:
            unknown.append(account_id)
        elif multi_account or not envelope_known:
            accounts[account_id] = account
        else:
            others.append(account_id)
    if unknown:
        notes.append(f"unknown account id(s): {', '.join(unknown)}")
    if others:
        notes.append(f"also names account(s) {', '.join(others)}, not delivered to them")
    return Resolution(tuple(accounts.values()), tuple(unknown), tuple(others), envelope_known, tuple(notes))
