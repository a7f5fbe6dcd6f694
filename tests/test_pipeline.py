"""The whole pipeline on the local emulator: real state machine, real handlers, real zenpy and slack_sdk clients
against the local stand-ins. Every mail must end in exactly one terminal ledger state."""

from __future__ import annotations

import email
import email.policy
import json
from pathlib import Path

import boto3
import pytest

from rootmail.adapters.dynamodb.deliveries import DeliveryGuard
from rootmail.adapters.dynamodb.items import to_item
from rootmail.app.offline import load_accounts
from rootmail.domain.mail.parse import parse_mail
from rootmail.domain.moments import now_iso
from rootmail.domain.rules.files import load_rule_files
from rootmail.domain.vocabulary import STATE_FOR_ACTION, Action
from rootmail_local.emulator import LocalPipeline
from samples import alert_count

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "corpus"
EXPECTED = json.loads((CORPUS / "expected.json").read_text(encoding="utf-8"))
TERMINAL = {"forwarded", "ticketed", "escalated", "restricted", "quarantined", "ignored", "queued"}


@pytest.fixture
def pipeline():
    accounts = load_accounts(CORPUS / "accounts.json", CORPUS / "contacts.json")
    with LocalPipeline() as local:
        local.seed_accounts(accounts)
        local.seed_rules(load_rule_files(ROOT / "rules"))
        yield local


def run_mails(local: LocalPipeline, names: list[str]) -> dict[str, dict]:
    keys = {name: local.store_mail(Path(name).stem, (CORPUS / name).read_bytes()) for name in names}
    local.wait()
    ledger = local.ledger()
    return {name: ledger.get(key.rsplit("/", 1)[-1]) for name, key in keys.items()}


def first(action: str, *, exclude: tuple[str, ...] = ()) -> str:
    return next(n for n, e in sorted(EXPECTED.items()) if e["action"] == action and n not in exclude)


def test_every_corpus_mail_ends_in_the_expected_terminal_state(pipeline):
    records = run_mails(pipeline, sorted(EXPECTED))
    contacts = json.loads((CORPUS / "contacts.json").read_text(encoding="utf-8"))
    for name, expected in EXPECTED.items():
        record = records[name]
        assert record is not None, f"{name}: no ledger record"
        assert record["state"] in TERMINAL, f"{name}: {record['state']}"
        assert record["category"] == expected["category"], name
        assert record["action"] == expected["action"], name
        if expected["action"] == "forward" and any(
            not contacts.get(a, {}).get("contacts") for a in record["account_ids"]
        ):
            assert record["state"] == "queued" and "no customer contact" in record["queue_reason"], name
        else:
            assert record["state"] == STATE_FOR_ACTION[Action(expected["action"])], (
                name,
                record.get("queue_reason"),
            )
    # The evidence matches the actions: one SES mail per forwarded account with contacts, tickets, Slack alerts.
    forwarded = [r for r in records.values() if r["state"] == "forwarded"]
    assert len(pipeline.sent_mail()) == sum(len(r["account_ids"]) for r in forwarded)
    ticketed_cases = {r["case_id"] for r in records.values() if r["state"] == "ticketed"}
    urgent = [r for r in records.values() if r["state"] == "escalated"]
    assert len(pipeline.zendesk.tickets) == len(ticketed_cases) + len(urgent)
    # ...and queued mail no rule knows whose words are urgent alerts the operators too, once: an urgent mail in a
    # message of its own, the others in one message per kind that counts them.
    messages = pipeline.slack.messages
    urgent_alerts = [m for m in messages if m["text"].startswith("Urgent AWS notice")]
    assert len(urgent_alerts) == len(urgent)
    batched = [
        r
        for r in records.values()
        if r["state"] in {"restricted", "quarantined"} or (r.get("alert") and r["state"] != "escalated")
    ]
    batches = [m for m in messages if m not in urgent_alerts]
    assert sum(alert_count(m) for m in batches) == len(batched) and len(batches) < len(batched)
    assert any(r["state"] == "queued" and r.get("alert") for r in records.values())


def test_spoofed_and_credential_mail_never_reach_a_customer(pipeline):
    names = [n for n, e in EXPECTED.items() if e["category"] == "credentials" or not e["authentic"]]
    assert names, "the corpus must hold credential and spoofed mail"
    records = run_mails(pipeline, names)
    assert pipeline.sent_mail() == []
    assert pipeline.zendesk.tickets == []
    for name in names:
        assert records[name]["state"] in {"restricted", "quarantined"}, name
    # The operators hear of each one: one message per kind, counting them.
    assert sum(alert_count(m) for m in pipeline.slack.messages) == len(names)


def test_duplicate_s3_event_starts_no_second_execution_and_sends_once(pipeline):
    name = first("forward")
    run_mails(pipeline, [name])
    assert len(pipeline.sent_mail()) >= 1
    sent_before = len(pipeline.sent_mail())
    event = {
        "Records": [
            {
                "eventSource": "aws:s3",
                "eventName": "ObjectCreated:Put",
                "s3": {"bucket": {"name": pipeline.bucket}, "object": {"key": f"incoming/{Path(name).stem}"}},
            }
        ]
    }
    for _ in range(3):
        answer = boto3.client("lambda").invoke(
            FunctionName="rootmail-local-ingest", Payload=json.dumps(event)
        )
        assert json.loads(answer["Payload"].read())["duplicates"], "the duplicate must find its execution"
    pipeline.wait()
    assert len(pipeline.executions()) == 1
    assert len(pipeline.sent_mail()) == sent_before


def test_a_replayed_execution_delivers_nothing_twice(pipeline):
    names = [first("forward"), first("ticket"), first("urgent")]
    records = run_mails(pipeline, names)
    sent, tickets, comments = (
        len(pipeline.sent_mail()),
        len(pipeline.zendesk.tickets),
        sum(len(t["comments"]) for t in pipeline.zendesk.tickets),
    )
    messages = len(pipeline.slack.messages)
    sfn = boto3.client("stepfunctions")
    for name in names:
        key = f"incoming/{Path(name).stem}"
        mail_id = key.rsplit("/", 1)[-1]
        sfn.start_execution(
            stateMachineArn=pipeline.state_machine_arn,
            name=f"replay-{mail_id}"[:80],
            input=json.dumps(
                {"bucket": pipeline.bucket, "key": key, "mail_id": mail_id, "execution": "replay"}
            ),
        )
    pipeline.wait()
    assert len(pipeline.sent_mail()) == sent
    assert len(pipeline.zendesk.tickets) == tickets
    assert sum(len(t["comments"]) for t in pipeline.zendesk.tickets) == comments
    assert len(pipeline.slack.messages) == messages
    ledger = pipeline.ledger()
    for name in names:
        again = ledger.get(Path(name).stem)
        assert again["state"] == records[name]["state"]
        assert again["attempts"] == 2
        assert {d["status"] for d in again["deliveries"]} == {"already-delivered"}


def test_permanent_delivery_failure_ends_queued_with_its_error(pipeline):
    # SES refuses to send from an unverified address: a permanent rejection.
    boto3.client("sesv2").delete_email_identity(EmailIdentity=pipeline.sender)
    name = first("forward")
    record = run_mails(pipeline, [name])[name]
    assert record["state"] == "queued"
    assert record["queue_reason"].startswith("SesRejected:")
    assert record["action"] == "forward"  # what it was going to do stays recorded
    assert pipeline.sent_mail() == []


def test_zendesk_outage_is_retried_then_queued(pipeline, no_retry_sleep):
    pipeline.zendesk.fail_next(500, times=100)
    name = first("ticket")
    record = run_mails(pipeline, [name])[name]
    assert record["state"] == "queued"
    assert record["queue_reason"].startswith("ZendeskUnavailable:")


def test_a_transient_zendesk_error_is_retried_to_success(pipeline, no_retry_sleep):
    pipeline.zendesk.fail_next(503, times=1)
    name = first("ticket")
    record = run_mails(pipeline, [name])[name]
    assert record["state"] == "ticketed"
    assert len(pipeline.zendesk.tickets) == 1


def test_slack_down_queues_restricted_mail_with_the_reason(pipeline, no_retry_sleep):
    pipeline.slack.fail_next(500, times=100)
    name = next(n for n, e in sorted(EXPECTED.items()) if e["category"] == "credentials")
    record = run_mails(pipeline, [name])[name]
    assert record["state"] == "queued"
    assert record["queue_reason"].startswith("SlackUnavailable:")
    assert pipeline.sent_mail() == []


def test_empty_rules_table_queues_the_mail_instead_of_losing_it(pipeline, no_retry_sleep):
    dynamodb = boto3.client("dynamodb")
    for item in dynamodb.scan(TableName=pipeline.tables["rules"])["Items"]:
        dynamodb.delete_item(TableName=pipeline.tables["rules"], Key={"rule_id": item["rule_id"]})
    name = first("forward")
    record = run_mails(pipeline, [name])[name]
    assert record["state"] == "queued"
    assert record["queue_reason"].startswith("RulesUnavailable:")


def test_malformed_mail_is_recorded_with_its_problems(pipeline):
    names = [n for n, e in EXPECTED.items() if e["malformed"]]
    assert names
    records = run_mails(pipeline, names)
    for name in names:
        assert records[name]["state"] in TERMINAL, name
        assert records[name]["problems"], f"{name}: the problem must be recorded"


def test_forwarded_mail_is_in_the_account_language_with_the_original_attached(pipeline):
    accounts = {a.account_id: a for a in load_accounts(CORPUS / "accounts.json", CORPUS / "contacts.json")}
    names = [n for n, e in EXPECTED.items() if e["action"] == "forward"]
    records = run_mails(pipeline, names)
    sent = pipeline.sent_mail()
    assert sent
    # An account can get several of these mails: each forward is found by its mail and its account.
    forwarded = {}
    for message in sent:
        parsed = email.message_from_string(message["raw"], policy=email.policy.default)
        forwarded[parsed["X-Rootmail-Mail-Id"], parsed["X-Rootmail-Account"]] = parsed
        assert "DKIM-Signature" not in parsed
        assert parsed["From"] == pipeline.sender and parsed["Reply-To"] == pipeline.reply_to
    shared = [r for r in records.values() if r["state"] == "forwarded" and len(r["account_ids"]) > 1]
    assert shared, "the corpus must hold a notice naming several accounts"
    for record in records.values():
        if record["state"] == "forwarded" and len(record["account_ids"]) == 1:
            message = forwarded[record["mail_id"], record["account_ids"][0]]
            assert [p.get_filename() for p in message.iter_attachments()] == ["original.eml"]
    for record in records.values():
        if record["state"] != "forwarded":
            continue
        for account_id in record["account_ids"]:
            message = forwarded[record["mail_id"], account_id]
            account = accounts[account_id]
            assert message["Content-Language"] == account.language
            assert sorted(a.strip() for a in message["To"].split(",")) == sorted(account.contacts)
            body = message.get_body(preferencelist=("plain",)).get_content()
            assert account_id in body
            if account.language == "ja":
                assert "【AWS通知】" in message["Subject"]


def test_each_account_of_a_shared_notice_sees_only_its_own_lines(pipeline):
    name = next(
        n for n, e in sorted(EXPECTED.items()) if e["action"] == "forward" and len(e["account_ids"]) > 1
    )
    record = run_mails(pipeline, [name])[name]
    assert record["state"] == "forwarded" and len(record["account_ids"]) > 1
    messages = [
        email.message_from_string(m["raw"], policy=email.policy.default) for m in pipeline.sent_mail()
    ]
    assert sorted(m["X-Rootmail-Account"] for m in messages) == sorted(record["account_ids"])
    for message in messages:
        own = message["X-Rootmail-Account"]
        body = message.get_body(preferencelist=("plain",)).get_content()
        assert own in body
        for other in record["account_ids"]:
            if other != own:
                assert other not in body.replace("-", ""), f"{own}'s mail shows {other}"
        assert list(message.iter_attachments()) == []  # the original names the other account too


def forward_delivery_id(name: str) -> str:
    """The guard key of the forward of a single-account corpus mail to its envelope account."""
    accounts = {a["Email"].lower(): a["Id"] for a in json.loads((CORPUS / "accounts.json").read_text())}
    return f"{Path(name).stem}#ses#{accounts[parse_mail((CORPUS / name).read_bytes()).envelope_recipient]}"


def test_a_live_claim_of_another_execution_is_waited_for_never_taken_as_delivered(pipeline, no_retry_sleep):
    name = first("forward")
    guard = DeliveryGuard(boto3.client("dynamodb"), pipeline.tables["deliveries"])
    assert guard.claim(forward_delivery_id(name), "some-other-execution")
    record = run_mails(pipeline, [name])[name]
    assert record["state"] == "queued" and record["queue_reason"].startswith("DeliveryInProgress:")
    assert pipeline.sent_mail() == []


def test_a_case_another_execution_is_writing_is_waited_for_never_given_a_second_ticket(
    pipeline, no_retry_sleep
):
    """Two mails of one case at once: the second waits for the first's ticket instead of creating its own."""
    name = first("ticket")
    case_id = parse_mail((CORPUS / name).read_bytes()).case_id
    table = pipeline.tables["deliveries"]
    held = {"delivery_id": f"case#{case_id}", "status": "held", "owner": "another-execution", "at": now_iso()}
    boto3.client("dynamodb").put_item(TableName=table, Item=to_item(held))
    record = run_mails(pipeline, [name])[name]
    assert record["state"] == "queued" and record["queue_reason"].startswith("DeliveryInProgress:")
    assert f"case#{case_id} is held by another-execution" in record["queue_reason"]
    assert pipeline.zendesk.tickets == []
    # A hold whose holder died (older than its lease) is taken over: one ticket, and the hold is released.
    boto3.client("dynamodb").put_item(
        TableName=table, Item=to_item({**held, "at": now_iso(-DeliveryGuard.HOLD_LEASE * 2)})
    )
    pipeline.store_mail(name.removesuffix(".eml") + "-again", (CORPUS / name).read_bytes())
    pipeline.wait()
    assert len(pipeline.zendesk.tickets) == 1
    assert DeliveryGuard(boto3.client("dynamodb"), table).get(f"case#{case_id}")["status"] == "released"


def test_a_stale_claim_is_taken_over_and_the_mail_delivered(pipeline):
    name = first("forward")
    stale = now_iso(-DeliveryGuard.LEASE * 2)
    boto3.client("dynamodb").put_item(
        TableName=pipeline.tables["deliveries"],
        Item=to_item(
            {"delivery_id": forward_delivery_id(name), "status": "claimed", "owner": "crashed", "at": stale}
        ),
    )
    record = run_mails(pipeline, [name])[name]
    assert record["state"] == "forwarded"
    assert len(pipeline.sent_mail()) == 1


def test_a_stale_sending_item_is_never_sent_again_and_ends_unconfirmed_for_an_operator(pipeline):
    """Its holder stopped between the call to SES and the record of it: the mail may have arrived, and SES cannot
    tell a repeat, so the lease running out does not make it ours to send."""
    name = first("forward")
    delivery_id = forward_delivery_id(name)
    stale = now_iso(-DeliveryGuard.LEASE * 2)
    boto3.client("dynamodb").put_item(
        TableName=pipeline.tables["deliveries"],
        Item=to_item({"delivery_id": delivery_id, "status": "sending", "owner": "crashed", "at": stale}),
    )
    record = run_mails(pipeline, [name])[name]
    assert record["state"] == "queued"
    assert record["queue_reason"].startswith("DeliveryUnconfirmed:")
    assert f"{delivery_id} may have been delivered" in record["queue_reason"]
    assert f"rootmail deliveries confirm {delivery_id}" in record["queue_reason"]
    assert pipeline.sent_mail() == []


def test_the_ses_setup_notification_is_not_triaged(pipeline):
    pipeline.store_mail(
        "AMAZON_SES_SETUP_NOTIFICATION", b"Subject: Amazon SES Setup Notification\r\n\r\nx\r\n"
    )
    assert pipeline.executions() == []


def test_a_mail_with_thousands_of_recipients_keeps_a_small_state(pipeline):
    name = first("forward")
    raw = (CORPUS / name).read_bytes()
    many = ", ".join(f"user{i}@spam.example" for i in range(3000)).encode()
    raw = raw.replace(b"\nSubject:", b"\nCc: " + many + b"\nSubject:", 1)
    record = run_mails(pipeline, [name])  # the original first, then the bloated copy under another key
    key = pipeline.store_mail("bloated", raw)
    pipeline.wait()
    bloated = pipeline.ledger().get("bloated")
    assert bloated["state"] in TERMINAL
    # The Cc header is cut before it is parsed; of the recipients read, 10 are kept.
    assert "Cc header of 67,888 characters cut to 16,384" in bloated["problems"]
    assert "748 recipients: only the first 10 kept" in bloated["problems"]
    assert record[name]["state"] == "forwarded" and key.endswith("bloated")


def sns_event(message: dict) -> dict:
    return {
        "Records": [{"EventSource": "aws:sns", "Sns": {"Message": json.dumps(message), "MessageId": "1"}}]
    }


def test_a_bouncing_contact_is_suppressed_operators_told_once_and_cleared_by_an_operator(pipeline):
    from rootmail.adapters.suppressions import SuppressionList
    from rootmail.domain.accounts import OPERATIONS

    name = "13-health-html-only.eml"
    accounts = {a.email: a for a in load_accounts(CORPUS / "accounts.json", CORPUS / "contacts.json")}
    account = accounts[parse_mail((CORPUS / name).read_bytes()).envelope_recipient]
    (contact,) = account.contacts.of(OPERATIONS)
    bounce = {
        "eventType": "Bounce",
        "mail": {"messageId": "ses-1", "headers": [{"name": "X-Rootmail-Mail-Id", "value": "earlier-mail"}]},
        "bounce": {
            "bounceType": "Permanent",
            "bounceSubType": "General",
            "bouncedRecipients": [
                {"emailAddress": contact, "diagnosticCode": "smtp; 550 5.1.1 user unknown"}
            ],
        },
    }
    lambda_client = boto3.client("lambda")
    for _ in range(2):  # SES may report the same address twice: one alert
        answer = lambda_client.invoke(
            FunctionName="rootmail-local-bounces", Payload=json.dumps(sns_event(bounce))
        )
        assert "FunctionError" not in answer
    (alert,) = pipeline.slack.messages
    assert contact in alert["text"] and "rootmail contacts clear" in json.dumps(alert["blocks"])

    record = run_mails(pipeline, [name])[name]
    assert record["state"] == "queued"
    assert f"suppressed after bounces or complaints: {contact}" in record["queue_reason"]
    assert pipeline.sent_mail() == []

    assert SuppressionList(boto3.client("dynamodb"), pipeline.tables["suppressions"]).clear(
        contact, "operator"
    )
    # The next notice to that account (another mail, not a copy of the queued one) reaches the contact again.
    again = pipeline.store_mail(
        "after-clear", (CORPUS / name).read_bytes().replace(b"Message-ID: <", b"Message-ID: <next-", 1)
    )
    pipeline.wait()
    assert pipeline.ledger().get(again.rsplit("/", 1)[-1])["state"] == "forwarded"
    (sent,) = pipeline.sent_mail()
    assert contact in sent["destinations"]


def test_an_urgent_ticket_notifies_the_customer_in_their_language(pipeline):
    from rootmail.domain.accounts import SECURITY

    name = "43-account-compromise-ja.eml"
    accounts = {a.email: a for a in load_accounts(CORPUS / "accounts.json", CORPUS / "contacts.json")}
    account = accounts[parse_mail((CORPUS / name).read_bytes()).envelope_recipient]
    assert account.language == "ja"
    record = run_mails(pipeline, [name])[name]
    assert record["state"] == "escalated"
    (ticket,) = pipeline.zendesk.tickets
    assert ticket["priority"] == "urgent"
    assert ticket["requester"]["email"] == account.contacts.of(SECURITY)[0]
    (comment,) = ticket["comments"]
    assert comment["public"] is True  # Zendesk mails a public comment to the requester
    assert f"お客様の AWS アカウント {account.account_id}" in comment["body"]
    assert "このチケットでサポートチームが対応いたします" in comment["body"]
    (alert,) = pipeline.slack.messages
    assert f"/agent/tickets/{ticket['id']}" in json.dumps(alert["blocks"])


def test_ses_throttling_is_retried_by_the_state_machine_and_sends_once(pipeline, no_retry_sleep):
    from botocore.exceptions import ClientError

    calls = []

    def throttle_first(**kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise ClientError(
                {"Error": {"Code": "TooManyRequestsException", "Message": "Maximum sending rate exceeded"}},
                "SendEmail",
            )

    boto3.setup_default_session()
    boto3.DEFAULT_SESSION.events.register("before-call.sesv2.SendEmail", throttle_first)
    try:
        name = "11-health-single-account.eml"
        record = run_mails(pipeline, [name])[name]
    finally:
        boto3.DEFAULT_SESSION.events.unregister("before-call.sesv2.SendEmail", throttle_first)
    assert len(calls) == 2  # the throttled send, then the state machine's retry
    assert record["state"] == "forwarded"
    assert len(pipeline.sent_mail()) == 1
    history = boto3.client("stepfunctions").get_execution_history(
        executionArn=pipeline.executions()[0]["executionArn"]
    )["events"]
    failed = [e for e in history if e["type"] == "LambdaFunctionFailed"]
    assert [e["lambdaFunctionFailedEventDetails"]["error"] for e in failed] == ["SesThrottled"]
