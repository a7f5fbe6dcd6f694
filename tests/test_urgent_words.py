"""Authentic mail no rule knows but whose words are urgent: the operators hear of it the moment it arrives, through
the real state machine, the deployed alert function and the real slack_sdk to the stand-in, with a button that
opens the rule modal filled in with the suggested category; the mail still waits in the queue for a rule, and the
digest counts the alert and proposes the category."""

from __future__ import annotations

import json

import pytest

from rootmail.messages.operators import CREATE_RULE
from rootmail_local.slack_requests import modal_values
from samples import aws_mail, sample_pipeline

SUSPENDED = aws_mail(
    "30-unclassified-reinvent-reminder.eml",
    subject="Amazon Pinpoint: your toll-free number was suspended",
    plain="Messages from your toll-free number were suspended after carriers reported abuse.\n",
)
# A maintenance notice a forward rule takes, but worded as payment trouble: held for an operator, alerted now.
HELD = aws_mail(
    "30-unclassified-reinvent-reminder.eml",
    subject="Scheduled maintenance for your EC2 instances",
    plain="Your card has expired: update it to avoid interruption. Affected resources: i-0abc (us-east-1)\n",
)
REMINDER = aws_mail(
    "30-unclassified-reinvent-reminder.eml",
    subject="Join us at AWS re:Invent",
    plain="Register now for keynotes and sessions.\n",
)


@pytest.fixture(scope="module")
def pipeline():
    with sample_pipeline() as local:
        local.store_mail("suspended", SUSPENDED)
        local.store_mail("reminder", REMINDER)
        local.store_mail("held", HELD)
        local.wait()
        yield local


def buttons(message):
    return [e for b in message["blocks"] or [] if b["type"] == "actions" for e in b["elements"]]


def signal_alerts(pipeline):
    return [m for m in pipeline.slack.messages if m["text"].startswith("Unknown mail with urgent words")]


def test_urgent_words_alert_at_once_and_the_mail_still_waits_for_a_rule(pipeline):
    ledger = pipeline.ledger()
    record = ledger.get("suspended")
    assert record["state"] == "queued" and record["queue_reason"] == "no rule matched"
    assert record["alert"] is True and {"suspended", "abuse"} <= set(record["signals"])
    assert record["suggestion"]["category"] == "abuse-report"
    # Mail without urgent words waits for the digest, silently.
    quiet = ledger.get("reminder")
    assert quiet["state"] == "queued" and quiet["alert"] is False

    [alert] = signal_alerts(pipeline)
    assert "Amazon Pinpoint: your toll-free number was suspended" in alert["text"]
    shown = json.dumps(alert["blocks"], ensure_ascii=False)
    assert "suspended" in shown and "abuse" in shown and "abuse-report" in shown
    assert [m for m in pipeline.slack.messages if "re:Invent" in m["text"]] == []
    # Counted as a Slack delivery of the mail, like every other message the pipeline posts.
    assert [d["channel"] for d in record["deliveries"]] == ["slack"]


def test_mail_a_forward_rule_took_with_urgent_words_is_held_and_alerted_never_forwarded(pipeline):
    record = pipeline.ledger().get("held")
    assert record["state"] == "queued" and record["rule_id"] == "health-notice-wording"
    assert record["alert"] is True and "card has expired" in record["signals"]
    assert "would forward: for an operator" in record["queue_reason"]
    [alert] = [m for m in pipeline.slack.messages if m["text"].startswith("Urgent words in mail rule")]
    assert "health-notice-wording" in alert["text"] and "Scheduled maintenance" in alert["text"]
    assert [m for m in pipeline.sent_mail() if "Scheduled maintenance" in str(m)] == []


def test_the_alert_button_opens_the_rule_modal_with_the_suggestion(pipeline):
    [alert] = signal_alerts(pipeline)
    [create] = buttons(alert)
    assert create["action_id"] == CREATE_RULE
    assert pipeline.slack_click(CREATE_RULE, create["value"])["statusCode"] == 200
    view = pipeline.slack.views[-1]["view"]
    values = modal_values(view)
    assert values["category"]["value"]["selected_option"]["value"] == "abuse-report"
    assert values["action"]["value"]["selected_option"]["value"] == "urgent"
    assert values["sender"]["value"]["value"] == "no-reply-aws@amazon.com"
    intro = view["blocks"][0]["elements"][0]["text"]
    assert "Suggested category: *abuse-report*" in intro and "abuse" in intro


def test_a_retry_of_the_still_unknown_mail_does_not_alert_again(pipeline):
    before = len(signal_alerts(pipeline))
    pipeline.slack_command("retry")
    pipeline.wait()
    assert pipeline.ledger().get("suspended")["state"] == "queued"
    assert len(signal_alerts(pipeline)) == before == 1


def test_the_digest_counts_the_alert_and_proposes_a_category(pipeline):
    pipeline.invoke("digest", {})
    digest = pipeline.slack.messages[-1]
    summary = digest["blocks"][1]["text"]["text"]
    assert "3 mail(s) queued: 2 unclassified in 2 pattern(s), 1 for another reason in 1 reason(s)." in summary
    # The unknown mail and the notice held from its forward rule both alerted the operators.
    assert "2 of them alerted the operators at once for urgent words." in summary
    shown = json.dumps(digest["blocks"], ensure_ascii=False)
    assert "suggested: *abuse-report*" in shown
    assert "1 alerted at once for urgent words" in shown
    # The digest's own button carries the suggestion into the modal too.
    references = [json.loads(b["value"]) for b in buttons(digest) if b["action_id"] == CREATE_RULE]
    suspended = next(r for r in references if "Pinpoint" in r["sample"])
    assert suspended["suggested"] == "abuse-report"
