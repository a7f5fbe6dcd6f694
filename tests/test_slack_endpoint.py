"""The operators' Slack endpoint on the local emulator: signed requests (and tampered, stale, replayed and
unauthorised ones) reach the Flask app through serverless-wsgi's handler in the deployed `slack` function; retries
run through the real retry workflow and the real triage; replies go through the real slack_sdk to the stand-in."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from pathlib import Path
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rootmail.messages.blocks import CREATE_RULE
from rootmail.messages.rule_modal import rule_modal
from rootmail_local.slack_requests import (
    COMMANDS_PATH,
    INTERACTIONS_PATH,
    button_click,
    command_body,
    interaction_body,
    modal_values,
    signed,
    view_submission,
)
from samples import sample_pipeline

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "corpus"
REMINDER = (CORPUS / "30-unclassified-reinvent-reminder.eml").read_bytes()
OPERATOR, CHANNEL = "U0LOCALOPS", "C0LOCALOPS"


def reminder(number: int, *, year: int, account_address: str = "aws-root+globex") -> bytes:
    """The re:Invent reminder again, as AWS sends it for another year or to another account: the same pattern."""
    return (
        REMINDER.replace(b"aws-root+globex", account_address.encode())
        .replace(b"re:Invent 2026", f"re:Invent {year}".encode())
        .replace(b"c3492aaf-df2a-6937", f"c3492aaf-df2a-{number:04d}".encode())
    )


@pytest.fixture
def pipeline():
    with sample_pipeline() as local:
        yield local


@pytest.fixture
def unknown_mail(pipeline):
    """Three reminders no rule knows, for two accounts: one pattern in the queue."""
    pipeline.store_mail("reminder-1", reminder(1, year=2026))
    pipeline.store_mail("reminder-2", reminder(2, year=2027))
    pipeline.store_mail("reminder-3", reminder(3, year=2028, account_address="aws-root+acme-prod"))
    pipeline.wait()
    return ["reminder-1", "reminder-2", "reminder-3"]


def answer(response):
    assert response["statusCode"] == 200, response
    return json.loads(response["body"]) if response.get("body") else None


def command(pipeline, text, *, user=OPERATOR, channel=CHANNEL, name="command"):
    body = command_body(text, user=user, channel=channel, response_url=pipeline.slack.response_url(name))
    return body, signed(pipeline.signing_secret, body)


def click(pipeline, action_id, value, *, user=OPERATOR, channel=CHANNEL):
    return pipeline.slack_click(action_id, value, user=user, channel=channel)


def submit(pipeline, view, values, *, user=OPERATOR):
    return pipeline.slack_submit(view, values, user=user)


def values_id(values):
    return values["rule_id"]["value"]["value"]


def open_rule_modal(pipeline):
    """The hourly digest, then "Create a rule" on its first pattern: the modal Slack opens."""
    pipeline.invoke("digest", {})
    create, _ = digest_actions(pipeline.slack.messages[-1])[0]["elements"]
    click(pipeline, create["action_id"], create["value"])
    return pipeline.slack.views[-1]["view"]


def states(pipeline, mail_ids):
    ledger = pipeline.ledger()
    return {mail_id: ledger.get(mail_id)["state"] for mail_id in mail_ids}


def digest_actions(message):
    return [b for b in message["blocks"] if b["type"] == "actions"]


# ---- the whole loop ---------------------------------------------------------------------------------------------


def test_unknown_mail_to_rule_to_retry_to_an_empty_queue(pipeline, unknown_mail):
    # The hourly digest shows the pattern.
    pipeline.invoke("digest", {})
    digest = pipeline.slack.messages[-1]
    assert "3 mail(s) queued: 3 unclassified in 1 pattern(s)" in digest["text"]
    create, retry = digest_actions(digest)[0]["elements"]
    reference = json.loads(create["value"])
    assert reference["count"] == 3 and reference["sender"] == "no-reply-aws@amazon.com"
    pattern = retry["value"]

    # "Create a rule" opens the modal, prefilled from the pattern.
    assert click(pipeline, create["action_id"], create["value"])["statusCode"] == 200
    view = pipeline.slack.views[-1]["view"]
    assert view["callback_id"] == "rule_from_pattern"
    # The operator picks what the mail is; the prefilled sender and subject pattern stay.
    values = modal_values(view, category="account-lifecycle", action="forward", rule_id="reinvent-reminders")
    assert answer(submit(pipeline, view, values)) is None  # the modal closes
    saved = pipeline.slack.messages[-1]
    assert "Rule `reinvent-reminders` saved by <@U0LOCALOPS>" in saved["text"]
    assert "3 queued mail(s)" in saved["text"]
    # The preview engine of `rootmail rules test`, on the pattern's queued mail, with the rule now in force.
    assert "Preview: it takes 3 of 3 queued mail(s) checked; a retry would give 3 forward" in saved["text"]
    history = pipeline.rules_table().history("reinvent-reminders")
    assert history[0]["by"] == OPERATOR and history[0]["after"]["category"] == "account-lifecycle"

    # `/rootmail retry pattern P`: the answer only says it started; the retry runs in the retry workflow.
    body, headers = command(pipeline, f"retry pattern {pattern}")
    reply = answer(pipeline.slack_request(COMMANDS_PATH, body, headers))
    assert reply["response_type"] == "in_channel" and f"pattern `{pattern}`" in reply["text"]
    assert "done" not in reply["text"]
    pipeline.wait()
    assert [e["status"] for e in pipeline.retry_executions()] == ["SUCCEEDED"]

    assert states(pipeline, unknown_mail) == dict.fromkeys(unknown_mail, "forwarded")
    forwarded = {tuple(m["destinations"]) for m in pipeline.sent_mail()}
    assert len(pipeline.sent_mail()) == 3 and len(forwarded) == 2  # two accounts' contacts
    outcome = pipeline.slack.responses[-1]
    assert outcome["name"] == "command"
    assert "3 mail(s) re-run" in outcome["text"] and "3 forwarded" in outcome["text"]
    assert "0 still queued" in outcome["text"]

    # The queue is empty, and the next digest says so.
    assert answer(pipeline.slack_command("list"))["text"] == "No mail is queued."
    pipeline.invoke("digest", {})
    assert "All processed" in pipeline.slack.messages[-1]["text"]


def test_a_retry_button_in_the_digest_runs_the_same_retry(pipeline, unknown_mail):
    pipeline.invoke("digest", {})
    _, retry = digest_actions(pipeline.slack.messages[-1])[0]["elements"]
    assert click(pipeline, retry["action_id"], retry["value"])["statusCode"] == 200
    pipeline.wait()
    # No rule knows them yet: they stay queued, and the operators hear why.
    assert set(states(pipeline, unknown_mail).values()) == {"queued"}
    said = [r["text"] for r in pipeline.slack.responses if r["name"] == "button"]
    assert any("asked for a retry" in t for t in said)
    assert any("3 still queued" in t for t in said)
    assert "3 × no rule matched" in pipeline.slack.responses[-1]["blocks"][1]["text"]["text"]
    assert pipeline.ledger().get("reminder-1")["attempts"] == 2


# ---- what the command answers -------------------------------------------------------------------------------------


def test_help_list_and_show(pipeline, unknown_mail):
    assert "/rootmail retry pattern P" in answer(pipeline.slack_command("help"))["text"]
    listed = answer(pipeline.slack_command("list"))
    assert listed["response_type"] == "ephemeral" and "3 in all" in listed["text"]
    shown = json.dumps(listed["blocks"])
    assert all(mail_id in shown for mail_id in unknown_mail)
    detail = answer(pipeline.slack_command("show reminder-2"))
    assert "re:Invent 2027" in json.dumps(detail["blocks"]) and "no rule matched" in json.dumps(
        detail["blocks"]
    )
    assert "No mail `nope`" in answer(pipeline.slack_command("show nope"))["text"]
    assert "unknown subcommand `frobnicate`" in answer(pipeline.slack_command("frobnicate"))["text"]


def test_the_list_pages():
    with sample_pipeline(queue_page_size="2") as small:
        for number in range(3):
            small.store_mail(f"r{number}", reminder(number, year=2026 + number))
        small.wait()
        first = answer(small.slack_command("list"))
        assert "page 1 of 2 (3 in all)" in first["text"] and "`/rootmail list 2`" in json.dumps(
            first["blocks"]
        )
        second = answer(small.slack_command("list 2"))
        assert "page 2 of 2" in second["text"] and json.dumps(second["blocks"]).count("re:Invent") == 1


def test_retry_of_chosen_ids_skips_what_is_not_queued(pipeline, unknown_mail):
    name = "08-abuse-report-ec2"
    pipeline.store_mail(name, (CORPUS / f"{name}.eml").read_bytes())
    pipeline.wait()
    answer(pipeline.slack_command(f"retry {name} no-such-mail"))
    pipeline.wait()
    outcome = pipeline.slack.responses[-1]["text"]
    assert "nothing to retry" in outcome
    assert f"{name} (escalated)" in outcome and "no-such-mail (not in the ledger)" in outcome
    assert len(pipeline.executions()) == 4  # no triage started again


# ---- refusals: nothing changes ----------------------------------------------------------------------------------


def test_a_tampered_request_is_refused(pipeline, unknown_mail):
    body, headers = command(pipeline, "list")
    tampered = body.replace(b"text=list", b"text=retry")
    response = pipeline.slack_request(COMMANDS_PATH, tampered, headers)
    assert response["statusCode"] == 401 and "invalid signature" in response["body"]
    assert pipeline.retry_executions() == []


def test_a_request_signed_with_another_secret_is_refused(pipeline):
    body = command_body(
        "retry", user=OPERATOR, channel=CHANNEL, response_url=pipeline.slack.response_url("x")
    )
    response = pipeline.slack_request(COMMANDS_PATH, body, signed("not-the-secret", body))
    assert response["statusCode"] == 401
    assert pipeline.retry_executions() == []


def test_a_stale_request_is_refused(pipeline, unknown_mail):
    body = command_body(
        "retry", user=OPERATOR, channel=CHANNEL, response_url=pipeline.slack.response_url("x")
    )
    response = pipeline.slack_request(
        COMMANDS_PATH, body, signed(pipeline.signing_secret, body, int(time.time()) - 301)
    )
    assert response["statusCode"] == 401 and "stale request" in response["body"]
    assert pipeline.retry_executions() == []


def test_unsigned_requests_are_refused(pipeline):
    body = command_body(
        "retry", user=OPERATOR, channel=CHANNEL, response_url=pipeline.slack.response_url("x")
    )
    response = pipeline.slack_request(
        COMMANDS_PATH, body, {"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert response["statusCode"] == 401 and "missing Slack signature" in response["body"]
    assert pipeline.retry_executions() == []


def test_a_replayed_retry_is_refused_inside_the_window(pipeline, unknown_mail):
    body, headers = command(pipeline, "retry")
    first = answer(pipeline.slack_request(COMMANDS_PATH, body, headers))
    again = answer(pipeline.slack_request(COMMANDS_PATH, body, headers))
    assert "asked for a retry" in first["text"]
    assert again["response_type"] == "ephemeral" and "already handled" in again["text"]
    pipeline.wait()
    assert len(pipeline.retry_executions()) == 1
    # Reading is harmless: a replayed `list` is answered again.
    body, headers = command(pipeline, "list")
    assert "in all" in answer(pipeline.slack_request(COMMANDS_PATH, body, headers))["text"]
    assert "in all" in answer(pipeline.slack_request(COMMANDS_PATH, body, headers))["text"]


@pytest.mark.parametrize(
    ("user", "channel", "reason"),
    [
        ("U0STRANGER", CHANNEL, "is not one of rootmail's operators"),
        (OPERATOR, "C0RANDOM", "only in the operators' channels"),
    ],
)
def test_unauthorised_commands_and_buttons_are_refused(pipeline, unknown_mail, user, channel, reason):
    body, headers = command(pipeline, "retry", user=user, channel=channel)
    refused = answer(pipeline.slack_request(COMMANDS_PATH, body, headers))
    assert refused["response_type"] == "ephemeral" and reason in refused["text"]
    # A click's acknowledgement shows nothing in Slack: the refusal goes to that operator alone.
    assert click(pipeline, "retry_pattern", "e6ff56f8", user=user, channel=channel)["statusCode"] == 200
    told = pipeline.slack.responses[-1]
    assert told["response_type"] == "ephemeral" and reason in told["text"]
    pipeline.wait()
    assert pipeline.retry_executions() == []
    assert pipeline.slack.messages == [] and pipeline.slack.views == []
    assert set(states(pipeline, unknown_mail).values()) == {"queued"}


def test_an_unauthorised_modal_submission_stores_no_rule(pipeline, unknown_mail):
    view = open_rule_modal(pipeline)
    values = modal_values(view, category="health", action="forward", rule_id="sneaky")
    refused = answer(submit(pipeline, view, values, user="U0STRANGER"))
    assert (
        refused["response_action"] == "errors"
        and "not one of rootmail's operators" in refused["errors"]["rule_id"]
    )
    assert pipeline.rules_table().get("sneaky") is None
    assert all("sneaky" not in m["text"] for m in pipeline.slack.messages)


def test_a_request_from_the_future_is_refused(pipeline):
    body = command_body(
        "retry", user=OPERATOR, channel=CHANNEL, response_url=pipeline.slack.response_url("x")
    )
    # A minute past the 5-minute window: under load a second or two passes between signing and checking.
    response = pipeline.slack_request(
        COMMANDS_PATH, body, signed(pipeline.signing_secret, body, int(time.time()) + 360)
    )
    assert response["statusCode"] == 401 and "stale request" in response["body"]
    assert pipeline.retry_executions() == []


def test_a_replayed_rule_submission_stores_and_announces_once(pipeline, unknown_mail):
    view = open_rule_modal(pipeline)
    body = interaction_body(
        view_submission(
            view, modal_values(view, category="health", action="ignore", rule_id="once"), user=OPERATOR
        )
    )
    headers = signed(pipeline.signing_secret, body)
    assert pipeline.slack_request(INTERACTIONS_PATH, body, headers)["statusCode"] == 200
    posted = len(pipeline.slack.messages)
    assert pipeline.slack_request(INTERACTIONS_PATH, body, headers)["statusCode"] == 200
    assert len(pipeline.slack.messages) == posted
    assert [r["version"] for r in pipeline.rules_table().history("once")] == [1]


def test_a_tampered_or_replayed_interaction_is_refused(pipeline, unknown_mail):
    payload = {
        "type": "block_actions",
        "user": {"id": OPERATOR},
        "channel": {"id": CHANNEL},
        "trigger_id": "t",
        "response_url": pipeline.slack.response_url("button"),
        "actions": [{"action_id": "retry_pattern", "value": "00000000"}],
    }
    body = interaction_body(payload)
    headers = signed(pipeline.signing_secret, body)
    forged = interaction_body({**payload, "user": {"id": "U0STRANGER"}})
    assert pipeline.slack_request(INTERACTIONS_PATH, forged, headers)["statusCode"] == 401
    assert pipeline.slack_request(INTERACTIONS_PATH, body, headers)["statusCode"] == 200
    assert pipeline.slack_request(INTERACTIONS_PATH, body, headers)["statusCode"] == 200
    pipeline.wait()
    assert len(pipeline.retry_executions()) == 1  # the replay started nothing


def test_a_rule_that_does_not_validate_is_shown_in_the_modal_and_not_stored(pipeline, unknown_mail):
    view = open_rule_modal(pipeline)
    bad = modal_values(view, category="health", action="forward", subject="(unclosed")
    errors = answer(submit(pipeline, view, bad))
    assert errors["response_action"] == "errors" and "does not compile" in errors["errors"]["subject"]
    tie = modal_values(view, category="account-lifecycle", action="forward", priority="210")
    assert "same priority 210" in answer(submit(pipeline, view, tie))["errors"]["priority"]
    same_id = modal_values(view, category="health", action="forward", rule_id="health-event")
    assert "already exists" in answer(submit(pipeline, view, same_id))["errors"]["rule_id"]
    assert [r["by"] for r in pipeline.rules_table().history("health-event")] == ["local emulator"]
    assert pipeline.rules_table().get("health-event").version == 1
    ids = {r["id"] for r in pipeline.rules_table().load()}
    assert not ids & {view["blocks"][1]["element"]["initial_value"], values_id(bad)}


def test_a_pattern_re2_cannot_take_is_refused_under_the_subject_field_and_not_stored(pipeline, unknown_mail):
    view = open_rule_modal(pipeline)
    for subject, reason in (
        (r"(?i)re:Invent (?=\d)", "uses a lookahead or lookbehind"),
        (r"(re:Invent) \1", "uses a backreference"),
    ):
        values = modal_values(
            view, category="health", action="forward", rule_id="looks-around", subject=subject
        )
        refused = answer(submit(pipeline, view, values))
        assert refused["response_action"] == "errors"
        assert refused["errors"]["subject"].startswith(
            "slack: rule 'looks-around': `match.subject` " + reason
        )
    assert pipeline.rules_table().get("looks-around") is None
    assert all("looks-around" not in m["text"] for m in pipeline.slack.messages)


def test_a_signed_but_malformed_interaction_gets_a_clear_error_and_changes_nothing(pipeline):
    broken = {"type": "block_actions", "user": {"id": OPERATOR}, "channel": {"id": CHANNEL}}
    broken["actions"] = [{"action_id": "rule_from_pattern", "value": "{not json"}]
    response = pipeline.slack_request(INTERACTIONS_PATH, interaction_body(broken))
    assert response["statusCode"] == 400 and "malformed request" in response["body"]
    no_payload = pipeline.slack_request(INTERACTIONS_PATH, b"nothing=here")
    assert no_payload["statusCode"] == 400
    assert pipeline.slack.views == [] and pipeline.retry_executions() == []


# ---- signed but malformed: a short 400 and a log line, never a 500 ------------------------------------------------

# What a payload could carry that must not reach the logs (a token pasted into a field, a customer's address).
SECRET = "xoxb-0000-SECRET-from-a-payload"
DELETE = object()
JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    st.text(max_size=12),
    st.just(SECRET),
    st.just(f"[[{SECRET}"),
    st.just(json.dumps({"pattern": SECRET, "channel": [SECRET]})),
    st.lists(st.one_of(st.integers(), st.just(SECRET), st.just({})), max_size=3),
    st.dictionaries(st.sampled_from(["id", "value", "type", "values", SECRET]), st.just(SECRET), max_size=3),
)
# Every field the endpoint or the operators' code reads of an interaction payload.
INTERACTION_FIELDS = [
    ("type",),
    ("user",),
    ("user", "id"),
    ("channel",),
    ("channel", "id"),
    ("response_url",),
    ("trigger_id",),
    ("actions",),
    ("actions", 0),
    ("actions", 0, "action_id"),
    ("actions", 0, "value"),
    ("view",),
    ("view", "callback_id"),
    ("view", "private_metadata"),
    ("view", "state"),
    ("view", "state", "values"),
    ("view", "state", "values", "rule_id"),
    ("view", "state", "values", "rule_id", "value"),
    ("view", "state", "values", "rule_id", "value", "value"),
    ("view", "state", "values", "priority", "value", "value"),
    ("view", "state", "values", "category", "value", "selected_option"),
]


def child(parent: object, step: str | int) -> object:
    if isinstance(parent, dict) and isinstance(step, str):
        return parent.get(step)
    if isinstance(parent, list) and isinstance(step, int) and step < len(parent):
        return parent[step]
    return None


def mutated(payload: dict, changes: list) -> object:
    """The payload with each (field, value) change made where the field's parent is still there."""
    payload = json.loads(json.dumps(payload))
    for path, value in changes:
        parent: object = payload
        for step in path[:-1]:
            parent = child(parent, step)
        last = path[-1]
        if isinstance(parent, dict) and isinstance(last, str):
            if value is DELETE:
                parent.pop(last, None)
            else:
                parent[last] = value
        elif isinstance(parent, list) and isinstance(last, int) and last < len(parent):
            if value is DELETE:
                del parent[last]
            else:
                parent[last] = value
    return payload


def signed_bytes(secret: str, body: bytes) -> dict[str, str]:
    """Slack's v0 signature over any body, UTF-8 or not (slack_sdk's generator takes only UTF-8)."""
    stamp = str(int(time.time()))
    digest = hmac.new(secret.encode(), b"v0:" + stamp.encode() + b":" + body, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": f"v0={digest}"}


def assert_answered_or_refused(response, log) -> None:
    """200 (the shape was fine after all) or a short 400 with a log line that holds nothing of the payload."""
    written = log.getvalue()
    log.seek(0)
    log.truncate()
    assert response["statusCode"] in (200, 400), response
    if response["statusCode"] == 400:
        assert len(response["body"]) < 200 and SECRET not in response["body"]
        assert '"level":"WARNING"' in written and SECRET not in written


def test_signed_interactions_of_any_shape_get_an_answer_or_a_400_never_a_500(pipeline, log):
    view = rule_modal({"id": "e6ff56f8", "count": 3, "sample": "Reminder"}, channel=CHANNEL, language="en")
    click = button_click(
        CREATE_RULE,
        json.dumps({"id": "e6ff56f8", "count": 3}),
        user=OPERATOR,
        channel=CHANNEL,
        response_url=pipeline.slack.response_url("malformed"),
    )
    submission = view_submission(
        view, modal_values(view, category="health", action="forward", rule_id="any-shape"), user=OPERATOR
    )

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        base=st.sampled_from([click, submission]),
        changes=st.lists(
            st.tuples(st.sampled_from(INTERACTION_FIELDS), st.one_of(st.just(DELETE), JUNK)),
            min_size=1,
            max_size=3,
        ),
    )
    def check(base, changes):
        payload = mutated(base, changes)
        response = pipeline.slack_request(INTERACTIONS_PATH, interaction_body(payload))
        assert_answered_or_refused(response, log)

    check()


@pytest.mark.parametrize(
    "payload",
    [
        "[" * 10_000 + "]" * 10_000,  # deeper than Python's JSON parser recurses
        json.dumps(SECRET),
        json.dumps([{"type": "block_actions", "user": {"id": OPERATOR}}]),
        "{" + json.dumps(SECRET),
        json.dumps({"type": "view_submission", "user": {"id": OPERATOR}, "view": SECRET}),
        json.dumps({"type": "block_actions", "user": SECRET, "channel": {"id": CHANNEL}}),
        json.dumps(
            {"type": "block_actions", "user": {"id": OPERATOR}, "channel": {"id": CHANNEL}, "actions": SECRET}
        ),
        json.dumps(
            {
                "type": "block_actions",
                "user": {"id": OPERATOR},
                "channel": {"id": CHANNEL},
                "response_url": 7,
                "actions": [{"action_id": CREATE_RULE, "value": SECRET}],
            }
        ),
    ],
)
def test_signed_interaction_payloads_that_are_not_slack_shaped_get_a_400(pipeline, log, payload):
    response = pipeline.slack_request(INTERACTIONS_PATH, urlencode({"payload": payload}).encode())
    assert response["statusCode"] == 400, response
    assert_answered_or_refused(response, log)
    assert pipeline.slack.views == [] and pipeline.slack.responses == [] and pipeline.retry_executions() == []


def test_signed_commands_of_any_shape_get_an_answer_or_a_400_never_a_500(pipeline, log):
    fields = ["token", "team_id", "channel_id", "user_id", "command", "text", "response_url", "trigger_id"]
    texts = st.one_of(st.sampled_from(["help", "list", "list 2", "show x", "", "list pattern zz"]), st.text())

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        form=st.lists(st.tuples(st.one_of(st.sampled_from(fields), st.text(max_size=5)), texts), max_size=10),
        operator=st.booleans(),
        raw=st.one_of(st.none(), st.binary(max_size=60)),
    )
    def check(form, operator, raw):
        pairs = [("user_id", OPERATOR), ("channel_id", CHANNEL)] if operator else []
        body = raw if raw is not None else urlencode(pairs + form).encode()
        response = pipeline.slack_request(COMMANDS_PATH, body, signed_bytes(pipeline.signing_secret, body))
        assert_answered_or_refused(response, log)

    check()


def test_a_signature_header_that_is_not_ascii_is_refused_not_a_500(pipeline):
    body = command_body("list", user=OPERATOR, channel=CHANNEL, response_url=pipeline.slack.response_url("x"))
    headers = {**signed(pipeline.signing_secret, body), "X-Slack-Signature": "v0=ü"}
    response = pipeline.slack_request(COMMANDS_PATH, body, headers)
    assert response["statusCode"] == 401 and "invalid signature" in response["body"]
