"""Which AWS accounts a mail concerns, and who hears about each account: its customer contacts per kind of notice.

Every account has contacts of three kinds, the three kinds of AWS alternate contact: operations, security and billing.
A mail's category picks the kind (`contact_kind`), so a cost alert reaches the customer's billing people and an
abuse report its security people. Which accounts a mail is delivered for is domain/routing.py's business.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from rootmail.domain.vocabulary import Category

OPERATIONS, SECURITY, BILLING = "operations", "security", "billing"
CONTACT_KINDS: tuple[str, ...] = (OPERATIONS, SECURITY, BILLING)
SUPPORTED_LANGUAGES: tuple[str, ...] = ("en", "ja")
DEFAULT_LANGUAGE = "en"
ACTIVE = "ACTIVE"
CLOSED = "CLOSED"
IMPORTED = "imported"
LEFT_ORGANIZATION = "left the organisation"

# Which kind of contact hears about which category. Configurable (ROOTMAIL_CONTACT_KINDS); categories not named
# here go to the operations contacts.
DEFAULT_CONTACT_KINDS: dict[str, str] = {
    Category.HEALTH.value: OPERATIONS,
    Category.SUPPORT_CASE.value: OPERATIONS,
    Category.ACCOUNT_LIFECYCLE.value: OPERATIONS,
    Category.ABUSE_REPORT.value: SECURITY,
    Category.ACCOUNT_COMPROMISE.value: SECURITY,
    Category.SES_SENDING_STATUS.value: SECURITY,
    Category.CREDENTIALS.value: SECURITY,
    Category.BILLING.value: BILLING,
    Category.COST_ALERT.value: BILLING,
}

_ADDRESS = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)+$"
)
_SEPARATORS = re.compile(r"[\s,;]+")


def valid_address(address: str) -> bool:
    return bool(_ADDRESS.match(address)) and len(address) <= 254


def split_addresses(text: str) -> list[str]:
    """Addresses in a tag value or a list: separated by spaces (tag values cannot hold commas), commas or `;`."""
    return [a for a in _SEPARATORS.split(text.strip()) if a]


def normalize_language(value: str | None) -> str | None:
    """`ja`, `JA`, `ja-JP` → `ja`; a language we have no texts for → None."""
    if not value:
        return None
    primary = value.strip().lower().replace("_", "-").split("-", 1)[0]
    return primary if primary in SUPPORTED_LANGUAGES else None


def contact_kind(category: str, mapping: Mapping[str, str] | None = None) -> str:
    return (mapping if mapping is not None else DEFAULT_CONTACT_KINDS).get(category, OPERATIONS)


def parse_contact_kinds(text: str) -> dict[str, str]:
    """`health=operations,cost-alert=billing` over the defaults; unknown categories or kinds are errors."""
    mapping = dict(DEFAULT_CONTACT_KINDS)
    categories = {c.value for c in Category}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        category, sep, kind = (s.strip().lower() for s in part.partition("="))
        if not sep or category not in categories or kind not in CONTACT_KINDS:
            raise ValueError(
                f"{part!r}: expected category=kind with a category of {sorted(categories)} "
                f"and a kind of {list(CONTACT_KINDS)}"
            )
        mapping[category] = kind
    return mapping


@dataclass(frozen=True)
class Contacts:
    """Customer addresses per kind. Iterating gives every address once (all kinds), in order."""

    operations: tuple[str, ...] = ()
    security: tuple[str, ...] = ()
    billing: tuple[str, ...] = ()

    @classmethod
    def for_all(cls, addresses: Iterable[str]) -> Contacts:
        listed = tuple(addresses)
        return cls(listed, listed, listed)

    @classmethod
    def of_kinds(cls, kinds: Mapping[str, Iterable[str]]) -> Contacts:
        return cls(**{kind: tuple(kinds.get(kind, ())) for kind in CONTACT_KINDS})

    @classmethod
    def from_value(cls, value: Any) -> Contacts:
        """What `to_value` wrote, or a contacts-file entry: a list (every kind) or a mapping per kind, where
        `contacts` is the list for the kinds the mapping does not name."""
        if value is None:
            return cls()
        if isinstance(value, Contacts):
            return value
        if isinstance(value, str):
            return cls.for_all(split_addresses(value))
        if isinstance(value, Mapping):
            general = _address_list(value.get("contacts"))
            return cls.of_kinds(
                {kind: _address_list(value[kind]) if kind in value else general for kind in CONTACT_KINDS}
            )
        return cls.for_all(str(a) for a in value)

    def to_value(self) -> list[str] | dict[str, list[str]]:
        """Compact: one list when every kind has the same addresses, else a list per kind."""
        if self.operations == self.security == self.billing:
            return list(self.operations)
        return {kind: list(self.of(kind)) for kind in CONTACT_KINDS}

    def of(self, kind: str) -> tuple[str, ...]:
        if kind not in CONTACT_KINDS:
            raise ValueError(f"unknown contact kind {kind!r}")
        addresses: tuple[str, ...] = getattr(self, kind)
        return addresses

    def over(self, base: Contacts) -> Contacts:
        """These contacts, and `base`'s for the kinds these have none of."""
        return Contacts.of_kinds({kind: self.of(kind) or base.of(kind) for kind in CONTACT_KINDS})

    def kinds(self) -> tuple[str, ...]:
        return tuple(kind for kind in CONTACT_KINDS if self.of(kind))

    def describe(self) -> str:
        """One line for a person: the addresses, or the addresses per kind when the kinds differ."""
        if not self:
            return "-"
        if self.operations == self.security == self.billing:
            return ", ".join(self.operations)
        return "; ".join(f"{kind}: {', '.join(self.of(kind)) or '-'}" for kind in CONTACT_KINDS)

    def all(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(a for kind in CONTACT_KINDS for a in self.of(kind)))

    def __iter__(self) -> Iterator[str]:
        return iter(self.all())

    def __bool__(self) -> bool:
        return bool(self.operations or self.security or self.billing)


def _address_list(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(split_addresses(value))
    return tuple(str(a).strip() for a in value if str(a).strip())


@dataclass(frozen=True)
class Account:
    """One account as the accounts table holds it: what Organizations says, its contacts, and whether it is
    still active. Inactive accounts (suspended, closed, or gone from the organisation) are kept: old mail about
    them must still resolve."""

    account_id: str
    email: str
    name: str = ""
    status: str = ACTIVE
    contacts: Contacts = field(default_factory=Contacts)
    language: str = DEFAULT_LANGUAGE
    inactive_since: str | None = None
    inactive_reason: str | None = None
    contacts_from: str = ""  # where the contacts came from: tags, alternate-contacts, override, ...
    details_pending: bool = False  # contacts and language not read from Organizations yet
    organization: str = ""  # the name of the synced organisation that lists it ("" before it was recorded)
    management_account: str = ""  # that organisation's management account: who it is, whatever its name
    imported: bool = False  # put in by `rootmail accounts import`: in no organisation the provider syncs

    def __post_init__(self) -> None:
        if not isinstance(self.contacts, Contacts):
            object.__setattr__(self, "contacts", Contacts.from_value(self.contacts))

    @property
    def active(self) -> bool:
        return self.status == ACTIVE and self.inactive_since is None

    @property
    def holds_address(self) -> bool:
        """Whether its root address still reaches this account: it is active, or an organisation still has it
        (suspended or pending closure: its notices must reach its customer). Not once closed or gone from the
        organisations, nor an imported account no longer active."""
        if self.active:
            return True
        return not self.imported and self.status != CLOSED and self.inactive_reason != LEFT_ORGANIZATION

    @property
    def source(self) -> str:
        """Where the account came from, for a person: `imported`, or `organization <name>`."""
        if self.imported:
            return IMPORTED
        return f"organization {self.organization}" if self.organization else "organization"

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "account_id": self.account_id,
            "email": self.email,
            "name": self.name,
            "status": self.status,
            "contacts": self.contacts.to_value(),
            "language": self.language,
        }
        # Only what is set: the table's items stay small.
        if self.inactive_since:
            data["inactive_since"] = self.inactive_since
            data["inactive_reason"] = self.inactive_reason or ""
        if self.contacts_from:
            data["contacts_from"] = self.contacts_from
        if self.details_pending:
            data["details_pending"] = True
        if self.organization:
            data["organization"] = self.organization
        if self.management_account:
            data["management_account"] = self.management_account
        if self.imported:
            data["imported"] = True
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Account:
        return cls(
            account_id=str(data["account_id"]),
            email=str(data.get("email", "")).lower(),
            name=str(data.get("name", "")),
            status=str(data.get("status", ACTIVE)),
            contacts=Contacts.from_value(data.get("contacts")),
            language=normalize_language(data.get("language")) or DEFAULT_LANGUAGE,
            inactive_since=data.get("inactive_since") or None,
            inactive_reason=data.get("inactive_reason") or None,
            contacts_from=str(data.get("contacts_from", "")),
            details_pending=bool(data.get("details_pending", False)),
            organization=str(data.get("organization", "")),
            management_account=str(data.get("management_account", "")),
            imported=bool(data.get("imported", False)),
        )

    @classmethod
    def from_organizations(cls, item: Mapping[str, Any], entry: Mapping[str, Any] | None = None) -> Account:
        """An `Accounts` item of Organizations ListAccounts, with its contacts-file entry if any."""
        status = str(item.get("State") or item.get("Status") or ACTIVE)
        contacts, language = parse_contacts_entry(entry or {})
        return cls(
            account_id=str(item["Id"]),
            email=str(item["Email"]).lower(),
            name=str(item.get("Name", "")),
            status=status,
            contacts=contacts,
            language=language or DEFAULT_LANGUAGE,
            contacts_from="file" if contacts else "",
        )

    def with_override(self, override: ContactOverride | None) -> Account:
        """The account as the pipeline uses it: the operators' override wins over Organizations, kind by kind."""
        if override is None or (not override.contacts and not override.language):
            return self
        sources = [s for s in (self.contacts_from, "override") if s]
        return replace(
            self,
            contacts=override.contacts.over(self.contacts),
            language=override.language or self.language,
            contacts_from="+".join(dict.fromkeys(sources)),
        )


def owner_of_address(candidates: Iterable[Account]) -> Account | None:
    """The account whose mail a root address receives when several items have it: one that still holds the address
    before one that does not (an address reused after an account closed or left), an organisation's before an
    imported one (an organisation's listing is AWS's word; an imported row may be stale), an active one before a
    suspended one, then the lowest ID (stable)."""
    return min(
        candidates, key=lambda a: (not a.holds_address, a.imported, not a.active, a.account_id), default=None
    )


def parse_contacts_entry(entry: Mapping[str, Any]) -> tuple[Contacts, str | None]:
    """A contacts-file or override entry: `{"contacts": [...], "security": [...], "language": "ja"}`. `contacts`
    is every kind; a kind's own list replaces it for that kind. Invalid addresses are errors."""
    if not isinstance(entry, Mapping):
        raise ValueError(f"expected an object with contacts and language, got {entry!r}")
    unknown = set(entry) - {"contacts", "language", *CONTACT_KINDS}
    if unknown:
        raise ValueError(
            f"unknown key(s) {sorted(unknown)}: expected contacts, {', '.join(CONTACT_KINDS)}, language"
        )
    contacts = Contacts.from_value(entry)
    bad = [a for a in contacts if not valid_address(a)]
    if bad:
        raise ValueError(f"invalid address(es): {', '.join(bad)}")
    language = entry.get("language")
    normalized = normalize_language(language)
    if language and normalized is None:
        raise ValueError(f"language {language!r}: expected one of {', '.join(SUPPORTED_LANGUAGES)}")
    return contacts, normalized


@dataclass(frozen=True)
class ContactOverride:
    """What operators set for an account; it wins over Organizations for the kinds (and language) it names."""

    account_id: str
    contacts: Contacts = field(default_factory=Contacts)
    language: str | None = None

    @classmethod
    def from_entry(cls, account_id: str, entry: Mapping[str, Any]) -> ContactOverride:
        """The contacts-file format; kinds the entry does not name (and no `contacts` list) stay unset, so
        `{"security": [...]}` overrides the security contacts only."""
        contacts, language = parse_contacts_entry(entry)
        return cls(account_id, contacts, language)

    def to_entry(self) -> dict[str, Any]:
        entry: dict[str, Any] = {kind: list(self.contacts.of(kind)) for kind in self.contacts.kinds()}
        if self.language:
            entry["language"] = self.language
        return entry
