"""The local AWS Organizations: moto's Organizations and Account Management backends of one management account,
filled with given accounts (given IDs and root addresses, statuses, tags, alternate contacts). The sync then reads
them through the real APIs, exactly as it reads AWS.

moto's CreateAccount draws a random 12-digit ID, and mail is addressed to given accounts, so the organisation is
built from moto's own objects: moto's FakeAccount with moto's ID generator answering the given ID, its `close()` for
suspended accounts, and the account backend's `put_alternate_contact`. Set directly on moto's objects: the
management account's own address and name, and each account's join time (accounts created in one loop could share
one, and moto's ListAccounts paging keys on it, so they are spaced a millisecond apart in the given order).
Later changes (removing, closing, tagging accounts) go through the real API.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from unittest import mock

from rootmail.domain.accounts import ACTIVE, CONTACT_KINDS, DEFAULT_LANGUAGE, Account

PARTITION = "aws"


@dataclass(frozen=True)
class SeedAccount:
    account_id: str
    email: str
    name: str = ""
    status: str = ACTIVE  # ACTIVE, SUSPENDED or PENDING_CLOSURE
    tags: Mapping[str, str] = field(default_factory=dict)
    alternate_contacts: Mapping[str, str] = field(default_factory=dict)  # kind (operations, ...) → address


def seed_of(account: Account, *, contacts_tag: str, language_tag: str) -> SeedAccount:
    """How an organisation would hold an account's contacts: one address for every kind as the three AWS
    alternate contacts (which hold one address each); several addresses, or different ones per kind, as tags."""
    contacts = account.contacts
    tags: dict[str, str] = {}
    alternates: dict[str, str] = {}
    if contacts.operations == contacts.security == contacts.billing:
        if len(contacts.operations) == 1:
            alternates = dict.fromkeys(CONTACT_KINDS, contacts.operations[0])
        elif contacts.operations:
            tags[contacts_tag] = " ".join(contacts.operations)
    else:
        for kind in contacts.kinds():
            tags[f"{contacts_tag}:{kind}"] = " ".join(contacts.of(kind))
    if account.language != DEFAULT_LANGUAGE:
        tags[language_tag] = account.language
    return SeedAccount(account.account_id, account.email, account.name, account.status, tags, alternates)


class LocalOrganization:
    """The organisation whose management account is `management_account`, inside a running moto mock."""

    def __init__(self, management_account: str, region: str = "us-east-1") -> None:
        self.management_account = management_account
        self.region = region
        self._joined: Any = None

    @property
    def backend(self) -> Any:
        from moto.organizations.models import organizations_backends

        return organizations_backends[self.management_account][PARTITION]

    def create(self, *, email: str | None = None, name: str | None = None) -> None:
        """The organisation itself, with its management account (moto names it `master`, master@example.com)."""
        from moto.organizations.models import organizations_backends

        backend = self.backend
        if backend.org is None:
            # moto keeps which organisation each member account joined in one dict for the whole process, across
            # mocks: an account that was a member of an earlier mock's organisation could not manage this one.
            organizations_backends.master_accounts.pop(self.management_account, None)
            backend.create_organization(region=self.region, FeatureSet="ALL")
        management = backend.get_account_by_id(self.management_account)
        if email:
            management.email = backend.org.master_account_email = email
        if name:
            management.name = name
        self._joined = management.create_time

    def add(self, accounts: Iterable[SeedAccount]) -> int:
        """Add the accounts (the management account's own entry updates it). Returns how many were added."""
        from moto.account.models import account_backends
        from moto.organizations.models import FakeAccount, organizations_backends

        backend = self.backend
        if backend.org is None:
            self.create()
        added = 0
        for seed in accounts:
            tags = [{"Key": k, "Value": v} for k, v in seed.tags.items()]
            if seed.account_id == self.management_account:
                account = backend.get_account_by_id(seed.account_id)
                account.email, account.name = seed.email, seed.name or account.name
                account.tags.update(seed.tags)
            else:
                # What the backend's create_account does, less attaching the default policies (a linear search
                # per account in moto, so quadratic for a large organisation; nothing here reads policies).
                with _account_id(seed.account_id):
                    account = FakeAccount(
                        backend.org, AccountName=seed.name or seed.account_id, Email=seed.email, Tags=tags
                    )
                backend.accounts.append(account)
                organizations_backends.master_accounts[account.id] = (self.management_account, PARTITION)
                self._joined = (self._joined or account.create_time) + timedelta(milliseconds=1)
                account.create_time = self._joined
                added += 1
            if seed.status == "SUSPENDED":
                account.close()  # what CloseAccount does
            elif seed.status != ACTIVE:
                account.status = account.state = seed.status
            contacts = account_backends[seed.account_id][PARTITION]
            for kind, address in seed.alternate_contacts.items():
                contacts.put_alternate_contact(
                    alternate_contact_type=kind.upper(),
                    email_address=address,
                    name=f"{kind} contact",
                    phone_number="+0-000-000-0000",
                    title=kind,
                )
        return added

    def rename(self, account_id: str, name: str) -> None:
        """What `account:PutAccountName` does (moto does not offer it)."""
        self.backend.get_account_by_id(account_id).name = name


@contextmanager
def _account_id(account_id: str) -> Iterator[None]:
    with mock.patch("moto.organizations.utils.make_random_account_id", return_value=account_id):
        yield


def synthetic_organization(
    count: int,
    *,
    start: int = 0,
    contacts_tag: str = "rootmail:contacts",
    language_tag: str = "rootmail:language",
) -> list[SeedAccount]:
    """An organisation of `count` member accounts shaped like a provider's: 90% tagged with a contacts list, 4%
    with contacts per kind, 4% with only AWS alternate contacts (operations and security), 2% with none; a third
    Japanese; 2% suspended and 0.5% pending closure. Deterministic: account i is always the same (accounts
    `start` … `start + count - 1`, so that several organisations hold different accounts)."""
    accounts = []
    for i in range(start, start + count):
        domain = f"customer{i:05d}.example"
        tags: dict[str, str] = {}
        alternates: dict[str, str] = {}
        shape = i % 100
        if shape < 90:
            tags[contacts_tag] = f"ops@{domain} cloud@{domain}"
        elif shape < 94:
            tags[contacts_tag] = f"ops@{domain}"
            tags[f"{contacts_tag}:security"] = f"security@{domain}"
            tags[f"{contacts_tag}:billing"] = f"billing@{domain}"
        elif shape < 98:
            alternates = {"operations": f"noc@{domain}", "security": f"soc@{domain}"}
        if i % 3 == 0:
            tags[language_tag] = "ja"
        status = "SUSPENDED" if i % 50 == 7 else "PENDING_CLOSURE" if i % 200 == 11 else ACTIVE
        accounts.append(
            SeedAccount(
                account_id=f"{200000000000 + i:012d}",
                email=f"aws-root+c{i:05d}@provider.example",
                name=f"customer-{i:05d}",
                status=status,
                tags=tags,
                alternate_contacts=alternates,
            )
        )
    return accounts


def create_accounts_table(dynamodb: Any, name: str) -> None:
    """The accounts table as serverless.yml declares it: key account_id, index by-email (for code that runs the sync
    on its own, without the whole local pipeline)."""
    dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "account_id", "KeyType": "HASH"}],
        AttributeDefinitions=[
            {"AttributeName": "account_id", "AttributeType": "S"},
            {"AttributeName": "email", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
        GlobalSecondaryIndexes=[
            {
                "IndexName": "by-email",
                "KeySchema": [{"AttributeName": "email", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    )
