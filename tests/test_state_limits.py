"""Every state of a triage stays under Step Functions' 256 KB, whatever the mail holds.

On AWS a state above the limit fails the execution with States.DataLimitExceeded, which no Catch can handle: the
mail would never be recorded (moto's interpreter catches it, so the emulator cannot show this). So every field that
enters state is bounded in bytes of JSON, and these tests add the bounds up: the largest summary Parse can produce,
a model of the whole state at its largest, and a hostile mail through the real state machine.
"""

from __future__ import annotations

import json
from pathlib import Path

import boto3
from hypothesis import given, settings
from hypothesis import strategies as st

from rootmail.app.offline import load_accounts
from rootmail.app.triage.deliveries import MAX_DELIVERY_FIELD_BYTES
from rootmail.app.triage.intake import MAX_REASON_BYTES as MAX_AUTHENTICITY_REASON_BYTES
from rootmail.app.triage.intake import MAX_REASONS
from rootmail.domain.mail.model import MAX_ACCOUNT_IDS, MAX_SUMMARY_BYTES, ParsedMail, Verdicts
from rootmail.domain.routing import MAX_HOLD_BYTES, MAX_NOTE_BYTES, MAX_NOTES, Resolution
from rootmail.domain.rules.files import load_rule_files
from rootmail.domain.triage import MAX_REASON_BYTES, Decision
from rootmail.domain.vocabulary import Action, Category
from rootmail.errors import RootmailError
from rootmail_local.emulator import LocalPipeline

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "corpus"
STATE_LIMIT = 256 * 1024
WIDE = (
    "\U0001f600"  # a character outside the BMP: 12 bytes of JSON when escaped, the most any character takes
)


def size(value: object) -> int:
    """Bytes of JSON, the larger of the two ways it is written (escaped, as Python's json and Lambda do; UTF-8)."""
    return max(len(json.dumps(value)), len(json.dumps(value, ensure_ascii=False).encode("utf-8")))


def largest_mail() -> ParsedMail:
    """A parsed mail with every field far beyond its bound."""
    huge = WIDE * 100_000
    many = [f"{WIDE * 400}@{i}.example" for i in range(5_000)]
    ids = [f"{i:012d}" for i in range(5_000)]
    return ParsedMail(
        message_id=huge,
        sender=huge,
        sender_name=huge,
        sender_domain=huge,
        from_addresses=many,
        other_senders=many,
        subject=huge,
        date=huge,
        envelope_recipient=huge,
        recipients=many,
        text=huge,
        other_text=huge,
        account_ids=ids,
        listed_account_ids=ids,
        resource_account_ids=ids,
        case_id=huge,
        verdicts=Verdicts(huge, huge, huge, huge, huge),
        ses_received=True,
        size=40 * 1024 * 1024,
        truncated=True,
        problems=[huge] * 5_000,
    )


def test_the_largest_summary_parse_can_produce_stays_within_its_bound():
    summary = largest_mail().to_summary()
    assert size(summary) <= MAX_SUMMARY_BYTES
    assert summary["account_ids_cut"] and "5000 recipients: only the first 10 kept" in summary["problems"]


@settings(max_examples=60, deadline=None)
@given(
    text=st.text(min_size=0, max_size=3_000),
    entries=st.lists(st.text(max_size=400), max_size=300),
    ids=st.lists(st.from_regex(r"[0-9]{12}", fullmatch=True), max_size=300),
)
def test_a_summary_of_any_fields_stays_within_its_bound(text, entries, ids):
    mail = ParsedMail(
        message_id=text,
        sender=text,
        sender_name=text,
        subject=text * 3,
        envelope_recipient=text,
        from_addresses=entries,
        other_senders=entries,
        recipients=entries,
        account_ids=ids,
        listed_account_ids=ids,
        problems=entries,
    )
    summary = mail.to_summary()
    assert size(summary) <= MAX_SUMMARY_BYTES
    kept = ParsedMail.from_summary(summary)
    assert kept.account_ids == ids[:MAX_ACCOUNT_IDS]  # IDs are never cut, only counted out


def test_the_whole_state_at_its_largest_stays_under_256_kb():
    """The state the Record step receives at its largest: the event, Parse's summary with the authenticity
    reasons, the resolution, the decision, and the larger of a delivery (one per account) and a caught error."""
    huge = WIDE * 100_000
    event = {"bucket": "b" * 63, "key": "k" * 1024, "mail_id": "k" * 1024, "execution": "e" * 80}
    mail = {
        **largest_mail().to_summary(),
        "authentic": False,
        "authenticity_reasons": ["r" * (MAX_AUTHENTICITY_REASON_BYTES)] * MAX_REASONS,
        "duplicate_of": "k" * 1024,
        "duplicate_state": "in-flight",
    }
    ids = tuple(f"{i:012d}" for i in range(MAX_ACCOUNT_IDS + 1))
    resolution = Resolution(
        account_ids=ids,
        envelope_account_id=ids[0],
        unknown_account_ids=ids,
        other_account_ids=ids,
        hold=huge,
        notes=(huge,) * 100,
        refresh_needed=True,
    ).to_dict()
    resolution = Resolution.from_dict(resolution).with_note(huge).to_dict()
    decision = Decision(Category.HEALTH, Action.FORWARD, "r" * 63, huge, True).to_dict()
    delivery = {
        "channel": "ses",
        "recipient": "x" * MAX_DELIVERY_FIELD_BYTES,
        "account_id": ids[0],
        "language": "en",
        "subject": "s" * MAX_DELIVERY_FIELD_BYTES,
        "message_id": "m" * 200,
        "status": "already-delivered",
    }
    deliveries = {"deliveries": [delivery] * len(ids), "undelivered": []}
    error = {
        "Error": "DeliveryRejected",
        "Cause": json.dumps(
            {
                "errorMessage": str(RootmailError(huge)),
                "errorType": "DeliveryRejected",
                "stackTrace": ["  File x, line 1\n" * 40],
            }
        ),
    }
    refresh = {
        "status": "refreshed",
        "at": "2026-01-01T00:00:00Z",
        "detail": "x" * 300,
        "added": 1,
        "wait_seconds": 0,
    }
    state = {**event, "mail": mail, "resolution": resolution, "refresh": refresh, "classification": decision}
    assert size(resolution) <= 3 * len(ids) * 15 + MAX_NOTES * MAX_NOTE_BYTES + MAX_HOLD_BYTES + 512
    assert size(decision) <= MAX_REASON_BYTES + 512
    largest = max(
        size({**state, "delivery": deliveries}), size({**state, "error": error, "delivery": deliveries})
    )
    assert largest < STATE_LIMIT, largest


EXTRA = [f"{i:012d}" for i in range(100_000_000_001, 100_000_000_100)]  # 99 more accounts of the organisation


def hostile_notice(*, strangers: int = 0) -> bytes:
    """AWS Health's notice listing the most accounts one mail is delivered for, with headers far beyond their
    bounds; sent on behalf of `strangers` others (then inauthentic)."""
    raw = (CORPUS / "11-health-single-account.eml").read_bytes()
    head, _, rest = raw.partition(b"\nFrom: ")
    rest = rest.split(b"\n", 1)[1]
    name = (WIDE * 2_000).encode()
    senders = b", ".join(b"s%d@sender.example" % i for i in range(strangers))
    raw = (
        head
        + b'\nFrom: "'
        + name
        + b'" <health@aws.com>\n'
        + (b"Sender: " + senders + b"\n" if strangers else b"")
        + rest
    )
    raw = raw.replace(b"Message-ID: <", b"Message-ID: <" + b"m" * 50_000, 1)
    raw = raw.replace(b"Subject: ", b"Subject: " + (WIDE * 2_000).encode(), 1)
    recipients = b", ".join(b"t%d" % i + b"x" * 300 + b"@example.net" for i in range(1_000))
    raw = raw.replace(b"\nTo: ", b"\nTo: " + recipients + b", ", 1)
    listed = "".join(f"Account: {account_id}\n" for account_id in EXTRA).encode()
    return raw.replace(b"Account: 123456789012\n", b"Account: 123456789012\n" + listed, 1)


def execution_state_sizes(execution_arn: str) -> list[int]:
    sfn = boto3.client("stepfunctions")
    pages = sfn.get_paginator("get_execution_history").paginate(executionArn=execution_arn)
    return [
        len(details[field].encode("utf-8"))
        for page in pages
        for event in page["events"]
        for details in (event.get("stateEnteredEventDetails"), event.get("stateExitedEventDetails"))
        if details
        for field in ("input", "output")
        if field in details
    ]


def test_hostile_notices_run_through_the_state_machine_with_every_state_under_256_kb():
    from rootmail.domain.accounts import Account

    accounts = load_accounts(CORPUS / "accounts.json", CORPUS / "contacts.json")
    # Each with ten contacts as long as an address can be: the forward's output names them.
    long_contacts = tuple(f"{'c' * 60}{n}@{'d' * 50}.example" for n in range(10))
    accounts += [Account(a, f"root+{a}@cloudprovider.example", contacts=long_contacts) for a in EXTRA]
    with LocalPipeline() as local:
        local.seed_accounts(accounts)
        local.seed_rules(load_rule_files(ROOT / "rules"))
        local.store_mail("hostile-authentic", hostile_notice())
        local.store_mail("hostile-strangers", hostile_notice(strangers=500))
        executions = {e["name"].split("-")[1]: e for e in local.wait(timeout=600)}
        ledger = local.ledger()
        authentic, strangers = ledger.get("hostile-authentic"), ledger.get("hostile-strangers")
        sizes = [size for e in executions.values() for size in execution_state_sizes(e["executionArn"])]
        sent = local.sent_mail()
    assert {e["status"] for e in executions.values()} == {"SUCCEEDED"}
    assert authentic["state"] == "forwarded" and len(authentic["account_ids"]) == len(EXTRA) + 1
    assert len(sent) == len(EXTRA) + 1
    assert strangers["state"] == "quarantined"
    assert "500 Sender/Resent addresses: only the first 10 kept" in strangers["problems"]
    assert sizes and max(sizes) < STATE_LIMIT
