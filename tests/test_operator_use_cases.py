"""What the operators do in Slack, as use cases over the in-memory ports: the digest, `/rootmail`, the rule modal
and its preview, replays refused. The web layer (signatures, who may ask) is tests/test_slack_endpoint.py's, on the
emulator; here each request is one already verified."""

from __future__ import annotations

import json
from typing import Any

from rootmail.app import slack_commands
from rootmail.app.slack_commands import SlackRequest
from rootmail.errors import SlackRejected
from rootmail.messages.blocks import CREATE_RULE, RETRY_PATTERN
from rootmail_local.slack_requests import modal_values
from walk import CORPUS, services, triage

REMINDER = (CORPUS / "30-unclassified-reinvent-reminder.eml").read_bytes()


def queued_reminders(rt: Any) -> list[str]:
    """The re:Invent reminder as AWS sends it three years running: one pattern no rule knows, three in the queue."""
    names = []
    for number, year in enumerate((2026, 2027, 2028)):
        raw = REMINDER.replace(b"re:Invent 2026", f"re:Invent {year}".encode()).replace(
            b"c3492aaf-df2a-6937", f"c3492aaf-df2a-{number:04d}".encode()
        )
        names.append(triage(rt, f"reminder-{number}", raw)["mail_id"])
    return names


def request(signature: str = "v0=1") -> SlackRequest:
    return SlackRequest(
        user_id="U0OPS", channel_id="C0OPS", signature=signature, response_url=None, trigger_id="t"
    )


def actions(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for b in blocks if b["type"] == "actions" for e in b["elements"]]


def test_the_digest_groups_the_queue_into_one_pattern_with_its_buttons():
    rt = services()
    queued_reminders(rt)
    result = slack_commands.digest(rt, post=True)
    assert result["queued"] == 3 and len(result["patterns"]) == 1
    (posted,) = rt.slack.posts
    assert "3 mail(s) queued: 3 unclassified in 1 pattern(s)" in posted["text"]
    create, retry = actions(posted["blocks"])
    assert (create["action_id"], retry["action_id"]) == (CREATE_RULE, RETRY_PATTERN)
    assert json.loads(create["value"])["count"] == 3
    assert slack_commands.hourly_digest(rt)["patterns"] == 1 and len(rt.slack.posts) == 2


def test_list_show_and_an_unknown_command():
    rt = services(queue_page_size=2)
    mail_ids = queued_reminders(rt)
    first = slack_commands.answer_command(rt, "list", request())
    assert "page 1 of 2 (3 in all)" in first["text"]
    assert "page 2 of 2" in slack_commands.answer_command(rt, "list 2", request())["text"]
    assert mail_ids[0] in json.dumps(slack_commands.answer_command(rt, f"show {mail_ids[0]}", request()))
    assert (
        "unknown subcommand `frobnicate`"
        in slack_commands.answer_command(rt, "frobnicate", request())["text"]
    )


def test_a_retry_starts_the_retry_workflow_once_and_a_replay_changes_nothing():
    rt = services()
    queued_reminders(rt)
    (pattern,) = slack_commands.current_patterns(rt)
    answer = slack_commands.answer_command(rt, f"retry pattern {pattern.id}", request("v0=a"))
    assert "retry" in answer["text"].lower()
    ((run, started),) = rt.retries.executions.items()
    assert started["payload"]["selection"] == {"pattern": pattern.id}
    replayed = slack_commands.answer_command(rt, f"retry pattern {pattern.id}", request("v0=a"))
    assert "already handled" in replayed["text"] and list(rt.retries.executions) == [run]


def test_a_rule_made_in_the_modal_is_saved_with_who_and_why_and_previewed_on_the_pattern():
    rt = services()
    queued_reminders(rt)
    slack_commands.digest(rt, post=True)
    create, _ = actions(rt.slack.posts[-1]["blocks"])
    click = {"type": "block_actions", "trigger_id": "t", "actions": [create]}
    assert slack_commands.answer_interaction(rt, click, request("v0=click")) is None
    (opened,) = rt.slack.views
    view = opened["view"]
    values = modal_values(view, category="account-lifecycle", action="forward", rule_id="reinvent-reminders")
    submission = {"type": "view_submission", "view": {**view, "state": {"values": values}}}
    assert slack_commands.answer_interaction(rt, submission, request("v0=submit")) is None
    assert rt.rules_table.rules["reinvent-reminders"]["category"] == "account-lifecycle"
    ((rule_id, by, why),) = rt.rules_table.changes
    assert (rule_id, by) == ("reinvent-reminders", "U0OPS") and "from digest pattern" in why
    saved = rt.slack.posts[-1]["text"]
    assert "Rule `reinvent-reminders` saved by <@U0OPS>" in saved
    assert "Preview: it takes 3 of 3 queued mail(s) checked; a retry would give 3 forward" in saved
    # The same submission again (Slack retries, or a replay): nothing stored or announced twice.
    posts = len(rt.slack.posts)
    assert slack_commands.answer_interaction(rt, submission, request("v0=submit")) is None
    assert len(rt.slack.posts) == posts and len(rt.rules_table.changes) == 1


def test_a_rule_that_does_not_validate_is_shown_under_its_field_and_not_stored():
    rt = services()
    queued_reminders(rt)
    slack_commands.digest(rt, post=True)
    create, _ = actions(rt.slack.posts[-1]["blocks"])
    slack_commands.answer_interaction(rt, {"type": "block_actions", "actions": [create]}, request("v0=c"))
    view = rt.slack.views[-1]["view"]
    values = modal_values(view, rule_id="Not An Id!", category="account-lifecycle", action="forward")
    answer = slack_commands.answer_interaction(
        rt, {"type": "view_submission", "view": {**view, "state": {"values": values}}}, request("v0=s")
    )
    assert answer["response_action"] == "errors" and "rule_id" in answer["errors"]
    assert rt.rules_table.changes == []


def test_a_refusal_meant_for_one_operator_is_never_posted_to_the_channel():
    """A refused click is answered to the operator alone; when Slack refuses the response_url (expired), the
    refusal is dropped rather than shown to the whole channel."""
    rt = services()

    def expired(*_: Any, **__: Any) -> None:
        raise SlackRejected("response_url expired")

    rt.slack.respond = expired  # type: ignore[method-assign]
    asked = SlackRequest(
        user_id="U0OPS", channel_id="C0OPS", signature="v0=r", response_url="https://hooks.slack.com/x"
    )
    slack_commands.tell_refusal(rt, asked, "only in the operators' channels")
    assert rt.slack.posts == []
