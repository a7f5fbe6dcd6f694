"""Digest grouping: queued mail as patterns with the variable parts masked."""

from __future__ import annotations

import pytest

from rootmail.domain.digest import group_queue, mask


@pytest.mark.parametrize(
    ("subject", "pattern"),
    [
        (
            "Your AWS account 123456789012 has exceeded 85% of the limit",
            "Your AWS account <account> has exceeded <n> of the limit",
        ),
        ("RE:[CASE 177666106600814] EC2 issue", "RE:[CASE <case>] EC2 issue"),
        ("New Support case: 5244329601", "New Support case: <case>"),
        (
            'Instance i-0abc12345def67890 "prod-db" retires 2026-11-20 12:00 UTC',
            "Instance <resource> <name> retires <date>",
        ),
        ("Reminder: Dec 3, 2026 for ops@acme.example", "Reminder: <date> for <address>"),
        ("メンテナンス 2026年5月12日 「本番」", "メンテナンス <date> <name>"),
        ("arn:aws:ec2:us-east-1:123456789012:instance/i-1 stopped", "<arn> stopped"),
    ],
)
def test_mask(subject, pattern):
    assert mask(subject) == pattern


def record(
    mail_id,
    subject,
    *,
    sender="no-reply-aws@amazon.com",
    reason="no rule matched",
    at="2026-11-20T10:00:00Z",
    accounts=("111111111111",),
    state="queued",
    category="unclassified",
):
    return {
        "mail_id": mail_id,
        "state": state,
        "category": category,
        "sender": sender,
        "subject": subject,
        "queue_reason": reason,
        "received_at": at,
        "account_ids": list(accounts),
    }


def test_unclassified_mail_groups_by_sender_and_masked_subject():
    patterns = group_queue(
        [
            record("a", "Session reminder: Dec 3, 2026", at="2026-11-20T10:00:00Z"),
            record(
                "b", "Session reminder: Dec 4, 2026", at="2026-11-21T10:00:00Z", accounts=("222222222222",)
            ),
            record("c", "Session reminder: Dec 5, 2026", sender="events@aws.com"),
            record("d", "Already done", state="forwarded"),
        ]
    )
    first = patterns[0]
    assert (first.kind, first.sender, first.pattern, first.count) == (
        "unclassified",
        "no-reply-aws@amazon.com",
        "Session reminder: <date>",
        2,
    )
    assert first.to_dict()["accounts"] == 2
    assert (first.first_seen, first.last_seen) == ("2026-11-20T10:00:00Z", "2026-11-21T10:00:00Z")
    assert first.sample_subject == "Session reminder: Dec 4, 2026"
    assert first.mail_ids == ["a", "b"]
    assert [p.sender for p in patterns] == ["no-reply-aws@amazon.com", "events@aws.com"]


def test_delivery_failures_group_by_reason_separately_from_unclassified_mail():
    patterns = group_queue(
        [
            record(
                "a", "Health", category="health", reason="111111111111: the account has no customer contact"
            ),
            record(
                "b", "Health 2", category="health", reason="222222222222: the account has no customer contact"
            ),
            record("c", "Unknown", reason="no rule matched"),
        ]
    )
    failed = next(p for p in patterns if p.kind == "failed")
    assert failed.pattern == "<account>: the account has no customer contact" and failed.count == 2
    assert {p.kind for p in patterns} == {"failed", "unclassified"}
    assert len({p.id for p in patterns}) == len(patterns)


def test_pattern_ids_are_stable_across_runs():
    one = group_queue([record("a", "Reminder 1")])[0].id
    two = group_queue([record("z", "Reminder 2", at="2027-01-01T00:00:00Z")])[0].id
    assert one == two


def test_nothing_queued_means_no_patterns():
    assert group_queue([record("a", "x", state="ignored")]) == []
