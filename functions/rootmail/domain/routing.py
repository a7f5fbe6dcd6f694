"""Which accounts' customers a mail may reach, decided from the envelope and from where the mail names accounts.

The envelope recipient (SES's `Received: ... for <root address>`) is the mail's account: AWS writes to an account's
root address (and to its alternate contacts, which anyone can point at an address of ours). Account IDs in the
text route nothing by themselves, because anyone can put words into authentic AWS mail (a budget's name, a support
case they open and copy any address on, a resource's description). The rules, in order:

- **Unknown or missing envelope**: no account. An ID in the text never stands in for it; the mail is queued (or, if
  urgent, escalated without telling any customer) and operators decide.
- **Senders whose text anyone can write** (Budgets, Cost Anomaly Detection, SNS: `third_party_senders`) and
  **support case mail** (a case ID: whoever opened the case wrote it, and may have copied any root address on it):
  no customer hears of it without an operator (`hold`): the mail cannot prove its account.
- **Multi-account notifiers** (AWS Health): the accounts a notice *lists* (a line holding an account label and IDs
  only, see domain/mail/identifiers.py) are its recipients, each sent only its own part; the root's account only when it
  is listed or nothing is. An ID elsewhere in the text is recorded, never routed on.
- **Any other sender**: the mail is about the accounts it lists (or, if it lists none, the accounts it names). If
  that is an account other than the envelope's, no customer hears of it without an operator (`hold`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any, Protocol

from rootmail.domain.accounts import Account
from rootmail.domain.mail.identifiers import subject_tags
from rootmail.domain.mail.model import MAX_ACCOUNT_IDS, ParsedMail, fit

# Senders whose one mail may concern several accounts (AWS Health's aggregated notifications).
DEFAULT_MULTI_ACCOUNT_SENDERS: tuple[str, ...] = ("health@aws.com", "notifications@aws.com")
# Senders whose mail carries text any AWS customer writes and can send to any address, with no account of AWS's
# own to check it against: Budgets alerts (the budget's name, in the subject and the body; the current layout names
# no account), Cost Anomaly Detection (monitor and account names), SNS e-mail notifications (the whole message).
# An entry is an address or an exact domain. Free Tier alerts are not among them: their text is AWS's, naming the
# account they are about, which the ordinary rule checks.
DEFAULT_THIRD_PARTY_SENDERS: tuple[str, ...] = (
    "budgets@costalerts.amazonaws.com",
    "anomalydetection@costalerts.amazonaws.com",
    "sns.amazonaws.com",
)
MAX_NOTES = 10
MAX_NOTE_BYTES = 320
MAX_HOLD_BYTES = 640


def canonical_address(address: str) -> str:
    """One spelling per mailbox: no angle brackets or quotes around a plain local part, lowercase, no trailing dot
    on the domain, an internationalised domain in its ASCII (IDNA) form."""
    value = address.strip().strip("<>").strip()
    local, at, domain = value.rpartition("@")
    if not at:
        return value.lower()
    if len(local) > 2 and local.startswith('"') and local.endswith('"') and '"' not in local[1:-1]:
        local = local[1:-1]
    domain = domain.strip().rstrip(".")
    if not domain.isascii():
        with suppress(UnicodeError):  # not a valid IDN: it will simply find no account
            domain = domain.encode("idna").decode("ascii")
    return f"{local}@{domain}".lower()


def untagged(address: str, separator: str) -> str | None:
    """`root+tag@example.com` → `root@example.com`; None when the address has no tag."""
    local, at, domain = address.rpartition("@")
    base, sep, _ = local.partition(separator)
    return f"{base}@{domain}" if at and sep and base else None


def _sender_in(sender: str, entries: Iterable[str]) -> bool:
    domain = sender.rpartition("@")[2]
    return any(sender == e if "@" in e else domain == e for e in entries)


@dataclass(frozen=True)
class RoutingPolicy:
    """What the provider configured (config.Settings builds it): who writes about several accounts, whose text
    third parties set, and whether a `+tag` on a root address is part of it."""

    multi_account_senders: tuple[str, ...] = DEFAULT_MULTI_ACCOUNT_SENDERS
    third_party_senders: tuple[str, ...] = DEFAULT_THIRD_PARTY_SENDERS
    # None: a tag is part of the address (root+acme@ and root+globex@ are two accounts). "+": the provider's root
    # addresses carry no tags, so root+anything@ is root@ (tried after the address as written).
    address_tag_separator: str | None = None

    def multi_account(self, sender: str | None) -> bool:
        return _sender_in((sender or "").lower(), (e.lower() for e in self.multi_account_senders))

    def third_party(self, sender: str | None) -> bool:
        return _sender_in((sender or "").lower(), (e.lower() for e in self.third_party_senders))


class AccountLookup(Protocol):
    def by_email(self, email: str) -> Account | None: ...

    def by_id(self, account_id: str) -> Account | None: ...


@dataclass(frozen=True)
class Resolution:
    """The accounts a mail is delivered for, and what operators need to know about the others it names. Only IDs:
    it travels in Step Functions state; the delivery steps read the accounts they deliver to."""

    account_ids: tuple[str, ...] = ()  # delivered for, the envelope's account first
    envelope_account_id: str | None = None
    unknown_account_ids: tuple[str, ...] = ()  # named in the mail, not in the accounts table
    other_account_ids: tuple[str, ...] = ()  # known, named in the mail, not delivered for
    # Why no customer may hear of this mail without an operator (it is about another account than its root's).
    hold: str | None = None
    notes: tuple[str, ...] = field(default=())
    # The envelope recipient is unknown: refresh the accounts once, then resolve again.
    refresh_needed: bool = False

    @property
    def envelope_known(self) -> bool:
        return self.envelope_account_id is not None

    def to_dict(self) -> dict[str, Any]:
        """JSON for Step Functions state, bounded like a mail's summary (see domain/mail/model.py)."""
        return {
            "account_ids": list(self.account_ids[: MAX_ACCOUNT_IDS + 1]),  # the envelope's and those listed
            "envelope_account_id": self.envelope_account_id,
            "unknown_account_ids": list(self.unknown_account_ids[:MAX_ACCOUNT_IDS]),
            "other_account_ids": list(self.other_account_ids[:MAX_ACCOUNT_IDS]),
            "hold": fit(self.hold, MAX_HOLD_BYTES) if self.hold else None,
            "notes": list(_bounded_notes(self.notes)),
            "refresh_needed": self.refresh_needed,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Resolution:
        return cls(
            account_ids=tuple(str(a) for a in data.get("account_ids") or ()),
            envelope_account_id=data.get("envelope_account_id"),
            unknown_account_ids=tuple(str(a) for a in data.get("unknown_account_ids") or ()),
            other_account_ids=tuple(str(a) for a in data.get("other_account_ids") or ()),
            hold=data.get("hold"),
            notes=tuple(str(n) for n in data.get("notes") or ()),
            refresh_needed=bool(data.get("refresh_needed", False)),
        )

    def with_note(self, note: str) -> Resolution:
        return Resolution(**{**self.__dict__, "notes": (*self.notes, note)})


def _bounded_notes(notes: Sequence[str]) -> tuple[str, ...]:
    """The first notes, each cut to its bound; the last one kept says how many more there were. The most recent
    note (a refresh's outcome) is kept whatever comes before it."""
    if len(notes) <= MAX_NOTES:
        return tuple(fit(n, MAX_NOTE_BYTES) for n in notes)
    kept = [fit(n, MAX_NOTE_BYTES) for n in notes[: MAX_NOTES - 2]]
    return (*kept, f"… and {len(notes) - MAX_NOTES + 1} more note(s)", fit(notes[-1], MAX_NOTE_BYTES))


def _ids(ids: Iterable[str]) -> str:
    listed = list(ids)
    shown = ", ".join(listed[:5])
    return shown + (f" and {len(listed) - 5} more" if len(listed) > 5 else "")


def find_root_account(address: str, directory: AccountLookup, policy: RoutingPolicy) -> Account | None:
    """The account whose root address this is, however the envelope spelled it."""
    canonical = canonical_address(address)
    account = directory.by_email(canonical)
    if account is None and policy.address_tag_separator:
        base = untagged(canonical, policy.address_tag_separator)
        account = directory.by_email(base) if base else None
    return account


def resolve(
    mail: ParsedMail, directory: AccountLookup, policy: RoutingPolicy, *, may_refresh: bool = False
) -> Resolution:
    """The accounts `mail` is delivered for (see the module's rules). `may_refresh`: an unknown envelope recipient
    asks for one refresh of the accounts (an account created since the last sync) before the mail is resolved
    again."""
    notes: list[str] = []
    envelope = mail.envelope_recipient
    root = find_root_account(envelope, directory, policy) if envelope else None
    if not envelope:
        notes.append("no envelope recipient in the mail")
    elif root is None:
        notes.append(f"no account has the root address {envelope}")
    recipients: dict[str, Account] = {root.account_id: root} if root else {}
    named = list(dict.fromkeys([*mail.listed_account_ids, *mail.account_ids]))
    sender = mail.sender
    multi = policy.multi_account(sender)
    tag = _subject_tag(mail.subject) if multi else _SubjectTag()
    hold: str | None = None
    if root is None:
        pass  # an unknown root address: never replaced by an account the text names
    elif policy.third_party(sender):
        hold = (
            f"{sender} carries text anyone with an AWS account writes (a budget's name, a message), about any "
            "account, to any address: for an operator"
        )
    elif mail.case_id:
        hold = (
            f"support case {mail.case_id}: whoever opened the case wrote its text, and may have copied any address "
            "on it: for an operator"
        )
    elif multi and tag.problem:
        hold = f"{tag.problem}: for an operator"
    elif multi:
        # Listed in the text, or else named by AWS's one subject tag ([AWS Account: N]).
        listed = tuple(mail.listed_account_ids) or tag.account_ids
        if mail.account_ids_cut or len(listed) > MAX_ACCOUNT_IDS:
            hold = f"lists more than {MAX_ACCOUNT_IDS} accounts, more than one mail is delivered for: for an operator"
        elif listed:
            # The accounts it lists, and no other: AWS also writes to an account's alternate contacts, which anyone
            # can point at a root address of ours.
            recipients = {a: account for a in listed if (account := directory.by_id(a)) is not None}
            if root.account_id not in listed:
                notes.append(
                    f"lists account(s) {_ids(listed)}, not {root.account_id} whose root address received it"
                )
    else:
        concerned = list(mail.listed_account_ids) or list(mail.account_ids)
        strangers = [a for a in concerned if a != root.account_id]
        if strangers:
            hold = (
                f"about account(s) {_ids(strangers)}, but received at the root address of {root.account_id}: "
                "for an operator"
            )
    if root is None and named:
        notes.append(f"names account(s) {_ids(named)}: never used in place of an unknown root address")
    unknown: list[str] = []
    others: list[str] = []
    for account_id in named:
        if account_id in recipients:
            continue
        (others if directory.by_id(account_id) is not None else unknown).append(account_id)
    if unknown:
        notes.append(f"unknown account id(s): {_ids(unknown)}")
    if others:
        notes.append(f"also names account(s) {_ids(others)}, not delivered to them")
    for account in recipients.values():
        if not account.active:
            since = f" since {account.inactive_since}" if account.inactive_since else ""
            notes.append(
                f"account {account.account_id} is inactive{since} ({account.inactive_reason or account.status})"
            )
    return Resolution(
        account_ids=tuple(recipients),
        envelope_account_id=root.account_id if root else None,
        unknown_account_ids=tuple(unknown[:MAX_ACCOUNT_IDS]),
        other_account_ids=tuple(others[:MAX_ACCOUNT_IDS]),
        hold=hold,
        notes=tuple(notes),
        refresh_needed=may_refresh and bool(envelope) and root is None,
    )


@dataclass(frozen=True)
class _SubjectTag:
    account_ids: tuple[str, ...] = ()  # the one account AWS's one subject tag names, if it does
    problem: str | None = None  # why the tags cannot say whose notice it is


def _subject_tag(subject: str) -> _SubjectTag:
    tags = subject_tags(subject)
    if not tags:
        return _SubjectTag()
    if len(tags) == 1 and len(tags[0]) == 1:
        return _SubjectTag(account_ids=tags[0])
    ids = _ids([a for tag in tags for a in tag])
    return _SubjectTag(problem=f"its subject tags account(s) {ids}, not exactly one")


def unchecked(mail: ParsedMail, policy: RoutingPolicy) -> Resolution:
    """Without the accounts (offline triage of files with no accounts list): the accounts the mail would go to were
    its root address and the accounts it names known. Nothing is checked; `decide` is told so."""
    multi = policy.multi_account(mail.sender)
    ids = (
        (tuple(mail.listed_account_ids) or _subject_tag(mail.subject).account_ids)
        if multi
        else (mail.listed_account_ids or mail.account_ids)
    )
    note = "accounts not checked: give an accounts list to see what the pipeline does"
    return Resolution(account_ids=tuple(ids), notes=(note,))
