"""The triage steps, the operators' commands, the reconciler and bounces as use cases: over in-memory ports
(tests/fakes.py), the triage definition walked in process (tests/walk.py). No moto, no emulator: milliseconds each.
The emulator runs of tests/test_pipeline.py and friends show the same on the real state machine."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import pytest

from fakes import Organization, Services
from rootmail.app import audit, bounces, slack_commands
from rootmail.app.payloads import RetriageItem, RetryRun, TriageState
from rootmail.app.triage import deliveries, intake
from rootmail.app.triage.record import record_step
from rootmail.domain.accounts import Contacts
from rootmail.domain.executions import execution_name
from rootmail.domain.moments import stamp
from rootmail.domain.routing import Resolution
from rootmail.domain.rules.model import compile_rule
from rootmail.domain.sync_plan import AccountDetails, ListedAccount
from rootmail.domain.vocabulary import STATE_FOR_ACTION, Action
from rootmail.errors import DeliveryInProgress, DeliveryRejected, SesUnavailable, SlackUnavailable
from rootmail.messages.operators import CREATE_RULE
from samples import alert_count, aws_mail, copy_of
from walk import ACCOUNTS, CORPUS, RULES, run, services, triage, walked

EXPECTED = json.loads((CORPUS / "expected.json").read_text(encoding="utf-8"))


def sent_to(rt: Services) -> list[list[str]]:
    return [to for _, to in rt.mailer.sent]


# ---- the sample corpus, every mail ------------------------------------------------------------------------------


def test_every_sample_mail_ends_in_its_expected_state_with_matching_evidence():
    rt = services()
    records = {Path(name).stem: triage(rt, Path(name).stem) for name in sorted(EXPECTED)}
    contacts = {a.account_id: a.contacts for a in ACCOUNTS}
    for name, expected in EXPECTED.items():
        record = records[Path(name).stem]
        assert (record["category"], record["action"]) == (expected["category"], expected["action"]), name
        no_contact = expected["action"] == "forward" and any(
            not contacts[a].all() for a in record["account_ids"]
        )
        if no_contact:
            assert record["state"] == "queued" and "no customer contact" in record["queue_reason"], name
        else:
            assert record["state"] == STATE_FOR_ACTION[Action(expected["action"])], (
                name,
                record.get("queue_reason"),
            )
        assert rt.ledger.get(record["mail_id"])["state"] == record["state"]
    forwarded = [r for r in records.values() if r["state"] == "forwarded"]
    assert len(rt.mailer.sent) == sum(len(r["account_ids"]) for r in forwarded)
    cases = {r["case_id"] for r in records.values() if r["state"] == "ticketed"}
    escalated = [r for r in records.values() if r["state"] == "escalated"]
    assert len(rt.desk.tickets) == len(cases) + len(escalated)
    # An urgent mail's alert is its own message; the others share one message per kind (headline, sender, subject
    # pattern), which counts them: each mail is counted once.
    escalated_alerts = [p for p in rt.slack.posts if p["text"].startswith("Urgent AWS notice")]
    assert len(escalated_alerts) == len(escalated)
    batched = [
        r
        for r in records.values()
        if r["state"] in {"restricted", "quarantined"} or (r["alert"] and r["state"] != "escalated")
    ]
    batches = [p for p in rt.slack.posts if p not in escalated_alerts]
    assert sum(alert_count(p) for p in batches) == len(batched)
    counted = [(dimensions["category"], dimensions["state"]) for _, _, _, dimensions in rt.metrics.figures]
    assert sorted(counted) == sorted((r["category"], r["state"]) for r in records.values())


def test_spoofed_and_credential_mail_reach_no_customer_and_no_ticket():
    rt = services()
    names = [
        Path(n).stem for n, e in EXPECTED.items() if e["category"] == "credentials" or not e["authentic"]
    ]
    for name in names:
        assert triage(rt, name)["state"] in {"restricted", "quarantined"}, name
    assert rt.mailer.sent == [] and rt.desk.tickets == {}
    # The operators hear of every one (each different mail in a message of its own here), each counted once.
    assert {p["blocks"][0]["text"]["text"] for p in rt.slack.posts} == {
        "Quarantined mail",
        "Restricted mail (operators only)",
    }
    assert sum(alert_count(p) for p in rt.slack.posts) == len(names)


def test_an_execution_started_without_its_fields_still_ends_in_the_ledger_with_why():
    """A hand-started execution missing what ingest always gives: its steps refuse the state, and Record, which
    reads any state, still writes the mail's terminal state."""
    rt = services()
    rt.mail_store.put("incoming/by-hand", (CORPUS / "11-health-single-account.eml").read_bytes())
    output, visited = run(
        rt, {"bucket": rt.mail_store.bucket, "key": "incoming/by-hand", "mail_id": "by-hand"}
    )
    assert visited == ["Parse", "Record"]
    assert output["state"] == "queued" and output["queue_reason"].startswith("ValidationError")
    assert "execution" in output["queue_reason"] and rt.ledger.get("by-hand")["state"] == "queued"
    assert rt.mailer.sent == []


# ---- forwarding ---------------------------------------------------------------------------------------------------


def test_a_forward_goes_to_each_account_s_contacts_in_its_language_with_the_original():
    rt = services()
    record = triage(rt, "12-health-multi-account")
    assert record["state"] == "forwarded"
    assert sorted(map(sorted, sent_to(rt))) == [["aws-alerts@globex.example"], ["infra@initech.example"]]
    for data, _ in rt.mailer.sent:
        forward = message_from_bytes(data, policy=policy.default)
        assert forward["From"] == rt.mailer.sender and forward["Reply-To"] == "support@provider.example"
    assert [d["status"] for d in record["deliveries"]] == ["sent", "sent"]


def resolved(rt: Services, name: str, raw: bytes | None = None) -> TriageState:
    """The state a mail reaches the delivery steps with: stored, parsed, resolved and classified."""
    key = rt.mail_store.put(f"incoming/{name}", raw or (CORPUS / f"{name}.eml").read_bytes())
    state = TriageState(bucket=rt.mail_store.bucket, key=key, mail_id=name, execution="x")
    state = state.model_copy(update={"mail": intake.parse_step(state, rt)})
    state = state.model_copy(update={"resolution": Resolution.from_dict(intake.resolve_step(state, rt))})
    return state.model_copy(update={"classification": intake.classify_step(state, rt)})


def test_an_account_gone_since_resolve_is_undelivered_with_why_and_the_mail_queued():
    rt = services()
    state = resolved(rt, "12-health-multi-account")
    del rt.accounts.accounts["345678901234"]
    state = state.model_copy(update={"delivery": deliveries.forward_step(state, rt)})
    record = record_step(state, rt)
    assert record["state"] == "queued"
    assert "345678901234: the account is no longer in the accounts table" in record["queue_reason"]
    assert sent_to(rt) == [["aws-alerts@globex.example"]]  # the other account still gets its notice


def test_suppressed_contacts_are_left_out_and_an_account_with_none_left_is_queued():
    from rootmail.domain.ses_events import Suppression

    rt = services()
    rt.suppressions.suppress(Suppression("infra@initech.example", "bounce", "550 no such user", "m-1", None))
    record = triage(rt, "12-health-multi-account")
    assert sent_to(rt) == [["aws-alerts@globex.example"]]
    assert record["state"] == "queued"
    assert (
        "every operations contact is suppressed after bounces or complaints: infra@initech.example"
        in (record["queue_reason"])
    )


def test_a_forward_that_ses_refuses_is_queued_with_the_error_and_can_be_sent_by_a_retry():
    rt = services()
    rt.mailer.failure = SesUnavailable("SES throttled the send")
    record = triage(rt, "11-health-single-account")
    assert record["state"] == "queued" and "SesUnavailable: SES throttled the send" in record["queue_reason"]
    rt.mailer.failure = None
    again = triage(rt, "11-health-single-account", run_name="retry-1")
    assert again["state"] == "forwarded" and len(rt.mailer.sent) == 1


def test_a_replayed_execution_sends_nothing_twice_and_keeps_the_first_proof():
    rt = services()
    first = triage(rt, "11-health-single-account")
    again = triage(rt, "11-health-single-account")  # the same execution name: a replay of it
    assert len(rt.mailer.sent) == 1
    assert again["deliveries"][0]["status"] == "already-delivered"
    assert again["deliveries"][0]["message_id"] == first["deliveries"][0]["message_id"]


def test_a_delivery_sent_but_not_recorded_stops_the_mail_and_is_never_sent_again():
    rt = services()
    settle = rt.guard.settle

    def failing(delivery_id: str, status: str, detail: dict[str, Any]) -> None:
        if status == "sent":
            raise OSError("the table is unreachable")
        settle(delivery_id, status, detail)

    rt.guard.settle = failing  # type: ignore[method-assign]
    record = triage(rt, "11-health-single-account")
    assert record["state"] == "queued" and "DeliveryUnconfirmed" in record["queue_reason"]
    assert "rootmail deliveries confirm" in record["queue_reason"]
    rt.guard.settle = settle  # type: ignore[method-assign]
    again = triage(rt, "11-health-single-account")  # its execution run again
    assert again["state"] == "queued" and "may have been delivered" in again["queue_reason"]
    assert len(rt.mailer.sent) == 1
    with pytest.raises(DeliveryInProgress):  # another execution waits (the state machine retries it)
        rt.guard.claim("11-health-single-account#ses#123456789012", "another-execution")


# ---- copies -------------------------------------------------------------------------------------------------------


def test_a_copy_stored_under_another_key_is_ignored_as_a_copy():
    rt = services()
    raw = (CORPUS / "11-health-single-account.eml").read_bytes()
    triage(rt, "first", raw)
    copy = triage(rt, "second", raw)
    assert copy["state"] == "ignored" and "a copy of first" in copy["reason"]
    assert len(rt.mailer.sent) == 1


def test_a_copy_takes_over_from_a_first_copy_that_was_queued():
    rt = services()
    raw = (CORPUS / "11-health-single-account.eml").read_bytes()
    rt.mailer.failure = SesUnavailable("SES throttled the send")
    assert triage(rt, "first", raw)["state"] == "queued"
    rt.mailer.failure = None
    assert triage(rt, "second", raw)["state"] == "forwarded"
    assert len(rt.mailer.sent) == 1


# ---- tickets and escalations --------------------------------------------------------------------------------------


def test_mails_of_one_support_case_thread_onto_one_private_ticket():
    rt = services()
    for name in ("01-support-case-new", "03-support-case-correspondence"):
        assert triage(rt, name)["state"] == "ticketed"
    (ticket,) = rt.desk.tickets.values()
    assert rt.desk.cases == {"177666106600814": ticket.ticket_id}
    assert len(ticket.comments) == 2 and ticket.fields["requester"] is None  # private: nobody notified
    assert "aws-support-case" in ticket.fields["tags"]


def test_a_case_held_by_another_execution_is_not_given_a_second_ticket():
    rt = services()
    with rt.guard.holding("case#177666106600814", "another-execution"):
        record = triage(rt, "01-support-case-new")
    assert record["state"] == "queued" and "DeliveryInProgress" in record["queue_reason"]
    assert rt.desk.tickets == {}
    assert triage(rt, "01-support-case-new", run_name="retry-1")["state"] == "ticketed"


def test_a_ticket_for_mail_without_a_case_id_is_refused_with_why():
    rt = services()
    state = resolved(rt, "11-health-single-account")
    ticket = state.decision().model_copy(update={"category": "support-case", "action": "ticket"})
    state = state.model_copy(update={"classification": ticket})
    with pytest.raises(DeliveryRejected, match="without an AWS case ID"):
        deliveries.ticket_step(state, rt)
    assert rt.desk.tickets == {}


def test_an_urgent_notice_opens_a_public_ticket_for_the_customer_and_alerts_with_its_link():
    rt = services()
    record = triage(rt, "08-abuse-report-ec2")
    assert record["state"] == "escalated"
    (ticket,) = rt.desk.tickets.values()
    assert ticket.fields["requester"] == "aws-alerts@globex.example" and ticket.comments[0]["public"]
    assert ticket.comments[0]["attachment"][0] == "original.eml"
    (alert,) = rt.slack.posts
    assert "Urgent AWS notice" in alert["text"] and ticket_url(ticket.ticket_id) in json.dumps(
        alert["blocks"]
    )


def ticket_url(ticket_id: int) -> str:
    return f"https://desk.example/tickets/{ticket_id}"


def test_mail_no_rule_knows_with_urgent_words_alerts_once_with_the_create_rule_button():
    rt = services()
    record = triage(rt, "34-unclassified-urgent-words")
    assert record["state"] == "queued" and record["alert"] and record["signals"]
    (alert,) = rt.slack.posts
    assert CREATE_RULE in json.dumps(alert["blocks"])
    triage(rt, "34-unclassified-urgent-words", run_name="retry-1")
    assert len(rt.slack.posts) == 1  # the retry's alert is the same delivery: not posted again


# ---- accounts created since the last sync ------------------------------------------------------------------------


def test_mail_for_an_account_created_since_the_sync_refreshes_once_then_is_forwarded():
    listed = [ListedAccount(a.account_id, a.email, a.name, a.status) for a in ACCOUNTS]
    new = ListedAccount("111122223333", "aws-root+newco@cloudprovider.example", "newco", "ACTIVE")
    details = {new.account_id: AccountDetails(Contacts.for_all(["ops@newco.example"]), "en", "tags")}
    rt = Services(accounts=ACCOUNTS, rules=RULES, organization=Organization([*listed, new], details))
    raw = (CORPUS / "11-health-single-account.eml").read_bytes()
    raw = raw.replace(b"aws-root+acme-prod@", b"aws-root+newco@").replace(b"123456789012", b"111122223333")
    record = triage(rt, "newco", raw)
    assert record["state"] == "forwarded" and record["account_ids"] == ["111122223333"]
    assert sent_to(rt) == [["ops@newco.example"]]
    assert rt.accounts.marker is not None and rt.accounts.marker["state"] == "done"


# ---- the operators' retry workflow -------------------------------------------------------------------------------


def test_the_retry_selection_takes_the_queued_mail_oldest_first_and_skips_the_rest():
    rt = services(retry_batch_limit=2)
    for name in (
        "30-unclassified-reinvent-reminder",
        "15-health-unknown-recipient",
        "11-health-single-account",
    ):
        triage(rt, name)
    queued = [r["mail_id"] for r in rt.ledger.in_state("queued", oldest_first=True)]
    asked = RetryRun.model_validate(
        {"run": "r1", "selection": {"mail_ids": [*queued, "11-health-single-account"]}}
    )
    chosen = slack_commands.select_step(asked, rt)
    assert [i.mail_id for i in chosen.items] == queued
    assert chosen.skipped == ["11-health-single-account (forwarded)"]
    every = slack_commands.select_step(RetryRun(run="r2"), rt)
    assert every.count == 2 and every.remaining == 0


def test_the_retry_report_is_posted_once_however_often_its_step_runs():
    rt = services()
    triage(rt, "30-unclassified-reinvent-reminder")
    mail_id = "30-unclassified-reinvent-reminder"
    item = {"mail_id": mail_id, "bucket": "mail", "key": f"incoming/{mail_id}"}
    event = {
        "run": "retry-1",
        "selection": {},
        "requested_by": "U0OPS",
        "channel": "C0OPS",
        "selected": {"items": [item]},
        "retried": [{"mail_id": mail_id, "status": "SUCCEEDED"}],
    }
    first = slack_commands.report_step(RetryRun.model_validate(event), rt)
    slack_commands.report_step(RetryRun.model_validate(event), rt)
    assert first["states"] == {"queued": 1}
    assert len(rt.slack.posts) == 1 and "queued" in rt.slack.posts[0]["text"]


def test_a_retriage_starts_the_mail_again_under_the_run_and_waits_longer_each_poll():
    rt = services(retry_poll_seconds=5, retry_max_polls=3)
    item = RetriageItem(run="retry-1", mail_id="m1", bucket="mail", key="incoming/m1")
    first = slack_commands.retriage_step(item, rt)
    assert (first.status, first.polls, first.waiting, first.wait_seconds) == ("RUNNING", 1, True, 5)
    started = rt.starter.executions[first.execution]["payload"]
    assert started["retry"] == {"run": "retry-1"} and started["execution"] == first.execution
    again = slack_commands.retriage_step(item.model_copy(update={"triage": first}), rt)
    assert (again.execution, again.polls, again.wait_seconds) == (first.execution, 2, 10)
    assert len(rt.starter.executions) == 1  # started once, whatever the polls
    last = slack_commands.retriage_step(item.model_copy(update={"triage": again}), rt)
    assert not last.waiting  # the polls are used up: the report counts it as unfinished


# ---- the reconciler and bounces ----------------------------------------------------------------------------------


def test_the_reconciler_re_drives_stored_mail_with_no_record_then_gives_up_after_the_limit():
    rt = services(reconcile_max_attempts=2)
    old = stamp(datetime.now(UTC) - timedelta(hours=2))
    rt.mail_store.put("incoming/lost", b"Subject: x\r\n\r\nx\r\n", stored_at=old)
    for attempt in range(2):
        report = audit.reconcile(rt, now=datetime.now(UTC) + timedelta(hours=attempt))
        assert len(report["redriven"]) == 1 and report["given_up"] == []
        for execution in rt.starter.executions.values():
            execution |= {"status": "FAILED", "error": "States.Runtime"}  # it failed before Parse
    assert rt.ledger.get("lost")["redrives"] == 2
    report = audit.reconcile(rt, now=datetime.now(UTC) + timedelta(hours=3))
    assert report["redriven"] == [] and [f["mail_id"] for f in report["given_up"]] == ["lost"]
    assert rt.ledger.get("lost")["state"] == "queued"
    # What the alarms watch, each hour.
    assert rt.metrics.of("MailNotTriaged") == [1, 1, 1] and rt.metrics.of("MailGivenUp") == [0, 0, 1]


def test_a_bounce_suppresses_the_address_and_tells_the_operators_once():
    rt = services()
    notice = json.dumps(
        {
            "eventType": "Bounce",
            "bounce": {
                "bounceType": "Permanent",
                "bouncedRecipients": [{"emailAddress": "ops@acme.example"}],
            },
            "mail": {"messageId": "ses-1", "tags": {}},
        }
    )
    assert bounces.record_ses_events([notice], rt)["suppressed"] == ["ops@acme.example"]
    assert bounces.record_ses_events([notice], rt)["already_suppressed"] == ["ops@acme.example"]
    assert len(rt.slack.posts) == 1 and "ops@acme.example" in rt.slack.posts[0]["text"]
    assert rt.suppressions.suppressed(["OPS@acme.example", "x@y.example"]) == {"ops@acme.example"}


# ---- what no customer may see, and the paths a review's planted bugs found untested ------------------------------


def sign_in_code_case() -> bytes:
    case = (
        "Amazon Web Services has opened case 5244329601 on your behalf.\n\nCase ID: 5244329601\n"
        "To finish, enter the verification code 482913 in the console.\n"
    )
    return aws_mail(
        "01-support-case-new.eml", subject="Amazon Web Services: New Support case: 5244329601", plain=case
    )


def test_a_case_mail_carrying_a_code_opens_a_ticket_with_neither_its_text_nor_its_original():
    rt = services()
    assert triage(rt, "case", sign_in_code_case())["state"] == "ticketed"
    (ticket,) = rt.desk.tickets.values()
    (comment,) = ticket.comments
    assert ticket.fields["requester"] is None and not comment["public"]
    assert "482913" not in comment["body"] and comment["attachment"] is None


def test_an_urgent_notice_with_a_reset_link_tells_no_customer_and_carries_no_token():
    reset = "https://signin.aws.amazon.com/resetpassword?type=RootUser&token=SECRETRESETTOKEN42&key=k1"
    text = f"Your AWS account 123456789012 is compromised.\nWe have reset your root password: {reset}\n"
    raw = aws_mail("05-account-compromise.eml", subject="Your AWS account is compromised", plain=text)
    rt = services()
    assert triage(rt, "compromised", raw)["state"] == "escalated"
    (ticket,) = rt.desk.tickets.values()
    assert ticket.fields["requester"] is None and not any(c["public"] for c in ticket.comments)
    seen = json.dumps([c["body"] for c in ticket.comments]) + json.dumps(rt.slack.posts)
    assert "SECRETRESETTOKEN42" not in seen and all(c["attachment"] is None for c in ticket.comments)


def test_an_urgent_notice_naming_two_accounts_keeps_the_other_s_part_and_original_from_the_requester():
    raw = (CORPUS / "07-account-compromise-health.eml").read_bytes()
    raw = raw.replace(b"Account: 901234567890", b"Account: 901234567890\nAccount: 345678901234")
    rt = services()
    record = triage(rt, "two", raw)
    assert record["state"] == "escalated" and record["account_ids"] == ["901234567890", "345678901234"]
    (ticket,) = rt.desk.tickets.values()
    (comment,) = ticket.comments
    assert ticket.fields["requester"] == "security@wayne-media.example" and comment["public"]
    assert comment["attachment"] is None and "345678901234" not in comment["body"]


def test_a_shared_notice_hides_the_part_of_an_account_it_lists_but_nobody_here_owns():
    raw = (CORPUS / "12-health-multi-account.eml").read_bytes().replace(b"345678901234", b"555555555555")
    rt = services()
    record = triage(rt, "shared", raw)
    assert record["state"] == "forwarded" and record["account_ids"] == ["210987654321"]
    ((data, to),) = rt.mailer.sent
    body = message_from_bytes(data, policy=policy.default).get_body(("plain",)).get_content()
    assert to == ["aws-alerts@globex.example"] and "i-0b6e2d9f4c1a7e3d5" in body
    assert "555555555555" not in body and "i-04a8c3e7b2d9f1c6e" not in body


def test_a_forged_replay_of_a_delivered_mail_is_quarantined_not_taken_for_its_copy():
    raw = (CORPUS / "11-health-single-account.eml").read_bytes()
    rt = services()
    assert triage(rt, "real", raw)["state"] == "forwarded"
    forged = raw.replace(b"X-SES-Spam-Verdict: PASS", b"X-SES-Spam-Verdict: FAIL", 1)
    replay = triage(rt, "forged", forged)
    assert replay["state"] == "quarantined" and "copy" not in replay["reason"]
    assert len(rt.mailer.sent) == 1 and len(rt.slack.posts) == 1  # the operators hear of the forgery


def test_ses_s_setup_notification_starts_no_triage():
    rt = services()
    key = rt.mail_store.put(
        "incoming/AMAZON_SES_SETUP_NOTIFICATION", b"Subject: Amazon SES Setup Notification\r\n\r\n"
    )
    result = intake.start_triage([(rt.mail_store.bucket, key)], rt)
    assert result == {"started": [], "duplicates": [], "skipped": [key]} and rt.starter.executions == {}


def test_of_two_copies_of_a_queued_mail_only_one_takes_over():
    raw = (CORPUS / "11-health-single-account.eml").read_bytes()
    rt = services()
    rt.mailer.failure = SesUnavailable("SES throttled the send")
    assert triage(rt, "first", raw)["state"] == "queued"
    rt.mailer.failure = None
    states = [triage(rt, name, raw)["state"] for name in ("second", "third")]
    assert states == ["forwarded", "ignored"] and len(rt.mailer.sent) == 1


def test_mail_for_a_root_address_still_unknown_after_the_refresh_is_queued_saying_so():
    rt = services()
    record = triage(rt, "15-health-unknown-recipient")
    assert record["state"] == "queued"
    assert "still unknown after refreshing the accounts from Organizations" in record["queue_reason"]
    assert rt.accounts.marker is not None and rt.accounts.marker["state"] == "done"


def test_one_accounts_refresh_per_window_and_a_mail_that_finds_one_running_waits():
    rt = services(accounts_refresh_wait_seconds=30)
    state = TriageState(bucket="mail", key="incoming/m", mail_id="m", execution="x")
    now = datetime.now(UTC)
    rt.accounts.marker = {"state": "running", "started_at": stamp(now)}
    running = intake.refresh_step(state, rt)
    assert (running.status, running.wait_seconds) == ("in-progress", 30)
    rt.accounts.marker = {"state": "done", "started_at": stamp(now), "finished_at": stamp(now)}
    recent = intake.refresh_step(state, rt)
    assert (recent.status, recent.wait_seconds) == ("recent", 0)


def test_an_operators_retry_decides_with_the_rules_as_they_are_now():
    rt = services()
    assert (
        triage(rt, "30-unclassified-reinvent-reminder")["state"] == "queued"
    )  # the container's rules cached
    rule = {
        "id": "reinvent-reminders",
        "description": "re:Invent reminders",
        "category": "account-lifecycle",
        "action": "ignore",
        "priority": 100,
        "match": {"senders": ["no-reply-aws@amazon.com"], "subject": "(?i)re:Invent"},
    }
    rt.rules_table.create(compile_rule(rule, "test").to_item(), by="U0OPS", why="test")
    assert triage(rt, "30-unclassified-reinvent-reminder", run_name="retry-1")["state"] == "ignored"


def test_a_zendesk_delivery_its_own_execution_left_sending_is_made_again_not_left_unconfirmed():
    rt = services()
    key = "incoming/01-support-case-new"
    delivery = "01-support-case-new#zendesk#case-177666106600814"
    rt.guard.items[delivery] = {
        "status": "sending",
        "owner": execution_name(key),
        "at": stamp(datetime.now(UTC)),
    }
    assert triage(rt, "01-support-case-new")["state"] == "ticketed"  # Zendesk knows a repeat by its key
    assert len(rt.desk.tickets) == 1


def test_mail_held_for_urgent_words_then_restricted_by_a_rule_tells_the_operators_again():
    rt = services()
    assert triage(rt, "34-unclassified-urgent-words")["alert"] and len(rt.slack.posts) == 1
    rule = {
        "id": "pinpoint-suspensions",
        "description": "Pinpoint number suspensions",
        "category": "account-lifecycle",
        "action": "restricted",
        "priority": 100,
        "match": {"senders": ["no-reply-aws@amazon.com"], "subject": "(?i)toll-free number was suspended"},
    }
    rt.rules_table.create(compile_rule(rule, "test").to_item(), by="U0OPS", why="test")
    assert triage(rt, "34-unclassified-urgent-words", run_name="retry-1")["state"] == "restricted"
    assert len(rt.slack.posts) == 2 and "restricted" in rt.slack.posts[-1]["text"].lower()


def test_the_retry_selection_stops_at_its_limit_and_says_how_many_remain():
    rt = services(retry_batch_limit=2)
    for name in ("30-unclassified-reinvent-reminder", "15-health-unknown-recipient", "19-cost-alert-budgets"):
        assert triage(rt, name)["state"] == "queued", name
    chosen = slack_commands.select_step(RetryRun(run="r"), rt)
    assert (chosen.count, chosen.remaining) == (2, 1)


def test_the_reconciler_leaves_mail_stored_within_the_grace_alone():
    rt = services(reconcile_grace_minutes=15)
    rt.mail_store.put("incoming/just-now", b"Subject: x\r\n\r\nx\r\n", stored_at=stamp(datetime.now(UTC)))
    report = audit.reconcile(rt)
    assert report["redriven"] == [] and rt.starter.executions == {}
    assert rt.metrics.of("MailNotTriaged") == [0]


def test_lost_mail_is_re_driven_under_the_execution_its_s3_event_would_have_started():
    rt = services()
    rt.mail_store.put(
        "incoming/lost", b"Subject: x\r\n\r\nx\r\n", stored_at=stamp(datetime.now(UTC) - timedelta(hours=1))
    )
    report = audit.reconcile(rt)
    assert report["redriven"] == [execution_name("incoming/lost")]
    # The late S3 event then finds its execution there: nothing starts twice.
    assert (
        intake.start_triage([(rt.mail_store.bucket, "incoming/lost")], rt)["duplicates"] == report["redriven"]
    )


# ---- shared rates in a burst --------------------------------------------------------------------------------------


def copies(name: str, count: int) -> list[bytes]:
    """The same notice `count` times, each its own mail (its own Message-ID), as a burst brings them."""
    raw = (CORPUS / f"{name}.eml").read_bytes()
    return [copy_of(raw, f"burst-{n}") for n in range(count)]


def classified(rt: Services, raws: list[bytes], prefix: str) -> list[TriageState]:
    """Mails stored and taken through Parse, Resolve and Classify, ready for their delivery step (all at once, as
    a burst's executions reach it)."""
    return [resolved(rt, f"{prefix}-{number}", raw) for number, raw in enumerate(raws)]


def test_a_burst_of_forwards_takes_the_shared_send_rate_s_slots_in_order_and_sends_each_once():
    rt = services(
        ses_send_rate=4
    )  # the notice goes to its account's two contacts: one mail every half second
    start = rt.clock.at_ms
    states = classified(rt, copies("11-health-single-account", 8), "burst")
    # All at once: a slot starting within a second is used at once (the first three); each later one is a slot
    # half a second after the one before, in the order asked, and nothing is sent for it yet.
    first = [deliveries.forward_step(state, rt) for state in states]
    assert [len(outcome.deliveries) for outcome in first] == [1, 1, 1, 0, 0, 0, 0, 0]
    assert [o.paced_until for o in first[3:]] == [
        stamp(datetime.fromtimestamp(-(-(start + n * 500) // 1000), UTC)).replace(".000", "")
        for n in range(3, 8)
    ]
    assert len(rt.mailer.sent) == 3
    # Each runs again once its slot has come (the state machine's Wait), holding it: sent without asking again.
    for state, outcome in zip(states[3:], first[3:], strict=True):
        again = deliveries.forward_step(state.model_copy(update={"delivery": outcome}), rt)
        assert [d["status"] for d in again.deliveries] == ["sent"]
    assert len(rt.mailer.sent) == 8
    assert rt.pacer.tats["ses"] == (start + 8 * 500) * 1000  # microseconds
    assert rt.pacer.reservations == [("ses", 2)] * 8


def test_a_paced_forward_walks_through_the_wait_for_its_slot_and_is_forwarded():
    rt = services(ses_send_rate=1)  # two recipients: a mail every two seconds
    runs = [walked(rt, f"paced-{n}", raw) for n, raw in enumerate(copies("11-health-single-account", 2))]
    assert [record["state"] for record, _ in runs] == ["forwarded"] * 2
    assert [visited.count("AwaitSendSlot") for _, visited in runs] == [0, 1]
    assert len(rt.mailer.sent) == 2


def test_a_forward_reserves_a_slot_for_each_recipient_it_sends_to():
    rt = services(ses_send_rate=1)
    triage(rt, "12-health-multi-account")
    assert rt.pacer.reservations == [("ses", 2)]


def test_tickets_in_a_burst_take_the_zendesk_limit_s_slots_and_each_is_opened_once():
    rt = services(zendesk_requests_per_minute=60)  # one request a second: a ticket's three requests take 3 s
    runs = [walked(rt, f"urgent-{n}", raw) for n, raw in enumerate(copies("08-abuse-report-ec2", 3))]
    assert [record["state"] for record, _ in runs] == ["escalated"] * 3
    assert [visited.count("AwaitUrgentSlot") for _, visited in runs] == [0, 1, 1]
    assert len(rt.desk.tickets) == 3 and len(rt.slack.posts) == 3


# ---- the operators' channel in a burst ----------------------------------------------------------------------------


def test_200_quarantined_mails_in_a_minute_are_a_few_messages_counting_all_and_an_urgent_one_is_its_own():
    rt = services()
    start = rt.clock.at_ms = 1_800_000_100_000  # early in a five-minute window
    forged = copies("31-spoofed-lookalike-abuse", 200)
    urgent_at = 120
    for number, raw in enumerate(forged):
        rt.clock.advance_to(start + number * 300)  # 200 in a minute (waits move the clock on too)
        if number == urgent_at:
            before = len(rt.slack.posts)
            record, _ = walked(rt, "urgent", (CORPUS / "08-abuse-report-ec2.eml").read_bytes())
            assert record["state"] == "escalated"
            # The urgent mail's alert is a message of its own, posted as it arrives.
            (alert,) = rt.slack.posts[before:]
            assert alert["text"].startswith("Urgent AWS notice") and alert_count(alert) == 1
        record, visited = walked(rt, f"forged-{number}", raw)
        assert record["state"] == "quarantined"
        assert visited[-1] == "Record"
    batches = [p for p in rt.slack.posts if p["blocks"][0]["text"]["text"] == "Quarantined mail"]
    assert 1 <= len(batches) <= 3  # a window's message each (a minute may straddle two windows)
    assert sum(alert_count(p) for p in batches) == 200
    assert len(rt.slack.posts) == len(batches) + 1
    # The latest update names the accounts and says how to see the mails.
    assert "123456789012" in json.dumps(batches[-1]["blocks"]) and "`/rootmail show" in json.dumps(
        batches[-1]["blocks"]
    )


def test_a_batch_message_is_updated_at_most_every_three_seconds_and_each_mail_waits_until_it_is_counted():
    rt = services()
    rt.clock.at_ms = 1_800_000_100_000
    runs = [walked(rt, f"forged-{n}", raw) for n, raw in enumerate(copies("31-spoofed-lookalike-abuse", 5))]
    (batch,) = rt.slack.posts
    assert alert_count(batch) == 5
    # The first posts; the second updates at once; the third and later wait for the next turn (3 s on).
    assert [visited.count("AwaitAlertUpdate") for _, visited in runs] == [0, 0, 1, 1, 1]
    assert batch["updates"] <= 4


def test_with_slack_refusing_every_post_each_alert_ends_queued_in_bounded_time_not_waiting_forever():
    rt = services()
    rt.slack.failure = SlackUnavailable("Slack answered 503 to chat.postMessage")
    runs = [walked(rt, f"forged-{n}", raw) for n, raw in enumerate(copies("31-spoofed-lookalike-abuse", 4))]
    for record, visited in runs:
        assert record["state"] == "queued" and "SlackUnavailable" in record["queue_reason"]
        # Each waits its turn to post (the first's lasts a minute) and fails; none loops past ten minutes.
        assert visited.count("AwaitAlertUpdate") <= 10 * 60 // 3
    assert rt.slack.posts == []


def test_a_batch_message_deleted_in_slack_is_posted_anew_and_the_counts_still_add_up():
    rt = services()
    rt.clock.at_ms = 1_800_000_100_000  # early in a five-minute window: one batch
    forged = copies("31-spoofed-lookalike-abuse", 4)
    walked(rt, "forged-0", forged[0])
    walked(rt, "forged-1", forged[1])
    deleted = rt.slack.posts.pop()  # an operator deleted the message (it counted 2)
    assert alert_count(deleted) == 2
    for number in (2, 3):
        record, _ = walked(rt, f"forged-{number}", forged[number])
        assert record["state"] == "quarantined"
    (anew,) = rt.slack.posts
    assert alert_count(anew) == 4  # the new message counts the batch from its start


def test_different_mails_of_one_headline_never_hide_behind_one_another_s_alert():
    rt = services()
    rt.clock.at_ms = 1_800_000_100_000
    first = copies("31-spoofed-lookalike-abuse", 2)
    other = aws_mail(
        "31-spoofed-lookalike-abuse.eml", subject="Unauthorized root sign-in detected on your account"
    )
    for number, raw in enumerate([first[0], other, first[1]]):
        walked(rt, f"forged-{number}", raw)
    subjects = sorted(json.dumps(p["blocks"]) for p in rt.slack.posts)
    assert len(rt.slack.posts) == 2 and any("Unauthorized root sign-in" in s for s in subjects)
    assert sorted(alert_count(p) for p in rt.slack.posts) == [1, 2]


def test_a_mail_its_batch_s_message_never_counts_is_queued_after_ten_minutes_with_why():
    rt = services()
    rt.clock.at_ms = start = 1_800_000_100_000
    forged = copies("31-spoofed-lookalike-abuse", 2)
    walked(rt, "forged-0", forged[0])
    rt.alert_batches.take_turn = lambda *args, **kwargs: False  # the update turn never comes free
    record, visited = walked(rt, "forged-1", forged[1])
    assert (
        record["state"] == "queued" and "does not count this mail 10 minutes after" in record["queue_reason"]
    )
    assert 10 * 60 * 1000 < rt.clock.at_ms - start < 11 * 60 * 1000
    assert visited.count("AwaitAlertUpdate") <= 10 * 60 + 1  # a look a second at most


def test_mails_that_join_while_an_update_is_made_are_counted_by_the_next_one_update_for_all():
    rt = services()
    rt.clock.at_ms = 1_800_000_100_000
    states = classified(rt, copies("31-spoofed-lookalike-abuse", 10), "forged")
    first = [deliveries.alert_step(state, rt) for state in states]  # all ten reach AlertOperators at once
    # The first posts, the second updates at once (2), the other eight wait for the next turn, 3 s on.
    assert [o.settle_at is None for o in first] == [True, True] + [False] * 8
    rt.clock.advance_to(rt.clock.at_ms + 3_000)
    again = [
        deliveries.alert_step(state.model_copy(update={"delivery": outcome}), rt)
        for state, outcome in zip(states[2:], first[2:], strict=True)
    ]
    assert all(o.settle_at is None for o in again)
    (message,) = rt.slack.posts
    # The third's update counted all ten: the seven after it needed none.
    assert alert_count(message) == 10 and message["updates"] == 2
    assert [o.deliveries[0]["status"] for o in first[:1] + again] == ["sent"] + ["counted"] * 8


def test_a_batch_message_names_its_first_thirty_accounts_and_says_the_mails_may_concern_more():
    from rootmail.messages.render import batched_alert

    accounts = [f"{n:012d}" for n in range(30)]
    _, blocks = batched_alert(
        "Quarantined mail: x",
        [],
        count=400,
        accounts=accounts,
        since=datetime(2026, 12, 7, 1, 5, tzinfo=UTC),
        listing=False,
    )
    line = blocks[1]["text"]["text"]
    assert line.startswith("*400 mails* of this kind since 01:05 UTC")
    assert "000000000029 (the first 30; the 400 mails may concern more)" in line
