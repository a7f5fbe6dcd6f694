"""The operators' side in plain Python: the slash command's grammar, the digest and replies as Block Kit, the rule
modal, and the subject pattern a rule gets from a digest pattern."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rootmail.domain.commands import Command, parse_command
from rootmail.domain.digest import group_queue, mask, subject_regex
from rootmail.domain.rules.index import classify
from rootmail.domain.rules.model import compile_rule
from rootmail.domain.rules.patterns import compile_subject, pattern_problem
from rootmail.errors import CommandError
from rootmail.messages.blocks import CREATE_RULE, RETRY_PATTERN
from rootmail.messages.operators import (
    digest_message,
    digest_text,
    pattern_reference,
    queue_page,
    retry_outcome,
)
from rootmail.messages.rule_modal import rule_from_modal, rule_modal

NOW = "2026-11-23T14:00:00.000Z"


@pytest.mark.parametrize(
    ("text", "command"),
    [
        ("", Command("help")),
        ("help", Command("help")),
        ("list", Command("list")),
        ("list 3", Command("list", page=3)),
        ("list e6ff56f8 2", Command("list", pattern="e6ff56f8", page=2)),
        ("show 0100018f-abc", Command("show", mail_ids=("0100018f-abc",))),
        ("retry", Command("retry")),
        ("retry a b a", Command("retry", mail_ids=("a", "b"))),
        ("RETRY pattern E6FF56F8", Command("retry", pattern="e6ff56f8")),
    ],
)
def test_commands(text, command):
    assert parse_command(text) == command


@pytest.mark.parametrize(
    ("text", "hint"),
    [
        ("delete everything", "unknown subcommand `delete`"),
        ("show", "one mail ID"),
        ("retry pattern", "one pattern ID"),
        ("retry pattern nothex!!", "one pattern ID"),
        ("retry <!channel>", "not a mail ID"),
        ("list please", "not `please`"),
    ],
)
def test_bad_commands_say_what_to_type(text, hint):
    with pytest.raises(CommandError, match=re.escape(hint)):
        parse_command(text)


def test_only_retry_changes_something():
    assert parse_command("retry").changes_something
    assert not parse_command("list").changes_something


def queued(
    mail_id, subject, *, sender="no-reply-aws@amazon.com", reason="no rule matched", account="111111111111"
):
    return {
        "mail_id": mail_id,
        "state": "queued",
        "category": "unclassified" if reason == "no rule matched" else "health",
        "sender": sender,
        "subject": subject,
        "queue_reason": reason,
        "received_at": f"2026-11-2{len(mail_id) % 3}T10:00:00.000Z",
        "account_ids": [account],
    }


def sample_queue():
    return [
        queued("m1", "AWS re:Invent 2026 session reminder: SEC401 starts in one hour"),
        queued(
            "m2", "AWS re:Invent 2027 session reminder: SEC401 starts in one hour", account="222222222222"
        ),
        queued(
            "m3",
            "[Service Notice] S3 change",
            sender="health@aws.com",
            reason="ZendeskUnavailable: Zendesk answered 503 at 2026-11-20T10:00:00Z",
        ),
    ]


def texts_of(blocks):
    return json.dumps(blocks, ensure_ascii=False)


def shown(node):
    """Every text Slack renders (mrkdwn and plain_text objects); button values are opaque and never shown."""
    if isinstance(node, dict):
        found = [node["text"]] if node.get("type") in ("mrkdwn", "plain_text") else []
        return found + [t for k, v in node.items() if k != "value" for t in shown(v)]
    if isinstance(node, list):
        return [t for v in node for t in shown(v)]
    return []


def test_the_digest_shows_each_pattern_with_its_counts_dates_sample_and_buttons():
    text, blocks = digest_message(group_queue(sample_queue()), language="en", now=NOW)
    assert "3 mail(s) queued: 2 unclassified in 1 pattern(s), 1 for another reason in 1 reason(s)" in text
    body = texts_of(blocks)
    assert "*2 mail(s)* · 2 account(s) · no-reply-aws@amazon.com" in body
    assert "AWS re:Invent &lt;n&gt; session reminder: SEC401 starts in one hour" in body
    assert "ZendeskUnavailable: Zendesk answered &lt;n&gt; at &lt;date&gt;" in body
    actions = [b for b in blocks if b["type"] == "actions"]
    unclassified, failed = actions
    assert [e["action_id"] for e in unclassified["elements"]] == [CREATE_RULE, RETRY_PATTERN]
    assert [e["action_id"] for e in failed["elements"]] == [RETRY_PATTERN]  # no rule fixes a failed delivery
    reference = json.loads(unclassified["elements"][0]["value"])
    assert reference["sender"] == "no-reply-aws@amazon.com" and reference["count"] == 2
    assert "/rootmail list " + reference["id"] in body


@pytest.mark.parametrize(("language", "phrase"), [("en", "All processed"), ("ja", "すべて処理済み")])
def test_an_empty_queue_is_one_short_all_processed_message(language, phrase):
    text, blocks = digest_message([], language=language, now=NOW)
    assert phrase in text and len(blocks) == 1
    assert phrase in digest_text([], language=language, now=NOW)


def test_each_empty_half_says_all_processed():
    _, blocks = digest_message(group_queue(sample_queue()[:2]), language="ja", now=NOW)
    assert "その他の理由: すべて処理済みです" in texts_of(blocks)
    assert "未分類のメール" in texts_of(blocks)


def test_mail_text_cannot_ping_the_channel_or_break_out_of_formatting():
    hostile = queued("m9", "<!channel> urgent `code` <https://evil.example|click> & more")
    _, blocks = digest_message(group_queue([hostile]), language="en", now=NOW)
    rendered = "\n".join(shown(blocks))
    assert "<" not in rendered.replace("<@", "") and "`code`" not in rendered
    assert "&lt;!channel&gt;" in rendered
    page = queue_page([hostile], page=1, per_page=10, total=1, language="en")
    assert "<!channel>" not in "\n".join(shown(page["blocks"])) and "`code`" not in json.dumps(page)
    view = rule_modal(json.loads(blocks[-3]["elements"][0]["value"]), channel="C1", language="en")
    assert "<!channel>" not in "\n".join(
        t for b in view["blocks"] if b["type"] == "context" for t in shown(b)
    )


def family(i):
    return f"{chr(65 + i % 26)}{chr(65 + i // 26)}"


@pytest.mark.parametrize(("unclassified", "failed"), [(60, 0), (0, 60), (30, 30), (2, 40), (15, 15)])
def test_a_big_queue_stays_inside_slacks_limits_and_points_to_the_terminal(unclassified, failed):
    many = [queued(f"u{i}", f"Subject family {family(i)}") for i in range(unclassified)]
    many += [queued(f"f{i}", "x", reason=f"SesRejected: reason family {family(i)}") for i in range(failed)]
    _, blocks = digest_message(group_queue(many), language="en", now=NOW)
    assert len(blocks) <= 50
    assert all(len(b.get("text", {}).get("text", "")) <= 3000 for b in blocks)
    patterns = sum(1 for b in blocks if b["type"] == "actions")
    assert patterns == min(14, unclassified + failed)  # every block the budget allows is used
    more = sum(int(n) for n in re.findall(r"and (\d+) more pattern", texts_of(blocks)))
    assert more == unclassified + failed - patterns  # what is not shown is counted, per section
    printed = digest_text(group_queue(many), language="en", now=NOW)
    assert printed.count("family") >= unclassified + failed


def test_request_ids_in_reasons_are_masked_so_timeouts_group_together():
    reasons = [f"States.Timeout: RequestId: {n:08x}-0b2d-4c8e-9f1a-7d6e5c4b3a21 timed out" for n in range(5)]
    patterns = group_queue([queued(f"t{n}", "x", reason=reason) for n, reason in enumerate(reasons)])
    assert [(p.pattern, p.count) for p in patterns] == [("States.Timeout: RequestId: <id> timed out", 5)]


def test_a_long_pattern_is_cut_at_a_word_and_its_rule_still_takes_its_mail():
    subject = "Notice " + " ".join(f"word{i} 1234" for i in range(80))
    pattern = group_queue([queued("long", subject)])[0]
    reference = json.loads(pattern_reference(pattern))
    assert len(json.dumps(reference)) <= 2000 and not reference["whole"]
    assert not reference["pattern"].endswith("<")
    regex = subject_regex(reference["pattern"], whole=reference["whole"])
    assert re.search(regex, subject) and not regex.endswith("$")


def test_a_subject_the_ledger_cut_short_makes_a_rule_for_its_start():
    from rootmail.domain.mail.model import ParsedMail

    # Characters beyond the BMP cost 12 bytes of JSON: 200 of them pass the summary's 2,048 bytes, so the ledger keeps
    # a start of about 170 and "…", short enough that the pattern itself is not cut.
    long = "【重要】𠮷野家 " + "𠮷" * 200
    kept = ParsedMail(subject=long).to_summary()["subject"]
    assert kept.endswith("…") and len(kept) < 300
    reference = json.loads(pattern_reference(group_queue([queued("cut", kept)])[0]))
    assert not reference["whole"] and re.search(subject_regex(reference["pattern"], whole=False), long)
    # A subject the ledger kept whole still gets a rule for exactly it.
    whole = json.loads(pattern_reference(group_queue([queued("whole", "【重要】𠮷野家 お知らせ")])[0]))
    assert whole["whole"]


def test_the_terminal_digest_lists_the_mail_ids():
    printed = digest_text(group_queue(sample_queue()), language="en", now=NOW)
    assert "m1, m2" in printed or "m2, m1" in printed
    assert "Queued for another reason" in printed


def test_the_retry_outcome_counts_states_and_groups_reasons():
    text, blocks = retry_outcome(
        selection={"pattern": "e6ff56f8"},
        who="<@U1>",
        states={"forwarded": 3, "queued": 1},
        reasons=[("no rule matched", 1)],
        unfinished=1,
        skipped=["x (forwarded)"],
        remaining=0,
        language="en",
    )
    assert "Retry of pattern `e6ff56f8` done" in text and "5 mail(s) re-run" in text
    assert "3 forwarded" in text and "1 still queued" in text
    body = texts_of(blocks)
    assert "1 × no rule matched" in body and "1 still running" in body and "Skipped: x (forwarded)" in body


def test_the_japanese_outcome():
    text, _ = retry_outcome(
        selection={},
        who="<@U1>",
        states={"forwarded": 2},
        reasons=[],
        unfinished=0,
        skipped=[],
        remaining=4,
        language="ja",
    )
    assert "キュー内のすべてのメール の再実行が完了しました" in text and "転送 2" in text


SUBJECTS = [
    "AWS re:Invent 2026 session reminder: SEC401 starts in one hour",
    "Your AWS account 1234-5678-9012 has exceeded 85% of the limit",
    'Instance i-0abc12345def67890 "prod-db" retires 2026-11-20 12:00 UTC',
    "メンテナンス 2026年5月12日 「本番」 (1/2) [要対応]",
    "RE:[CASE 177666106600814] EC2 issue ... $ ^ *",
]


@pytest.mark.parametrize("subject", SUBJECTS)
def test_a_patterns_subject_regex_matches_the_mail_it_came_from(subject):
    assert re.search(subject_regex(mask(subject)), subject)


@settings(max_examples=300, deadline=None)
@given(st.text(st.characters(blacklist_categories=("Cs",)), max_size=80))
def test_subject_regex_matches_any_subject_of_its_pattern(subject):
    subject = " ".join(subject.split())
    regex = subject_regex(mask(subject))
    assert re.search(regex, subject)
    assert pattern_problem(regex) is None  # the modal's prefill is a rule the rules engine accepts
    assert compile_subject(regex).found_in(subject)  # and, matched by RE2 as rules are, it takes the subject


def test_the_modal_is_prefilled_and_its_rule_takes_the_patterns_mail():
    pattern = group_queue(sample_queue())[0]
    reference = json.loads(
        json.dumps({"id": pattern.id, "sender": pattern.sender, "pattern": pattern.pattern})
    )
    view = rule_modal(reference, channel="C1", language="en")
    blocks = {b.get("block_id"): b for b in view["blocks"]}
    assert blocks["sender"]["element"]["initial_value"] == "no-reply-aws@amazon.com"
    assert json.loads(view["private_metadata"]) == {"pattern": pattern.id, "channel": "C1"}
    # What Slack sends back on submit: the same blocks with the operator's choices.
    values = {
        block: {"value": {"type": "plain_text_input", "value": element["element"].get("initial_value", "")}}
        for block, element in blocks.items()
        if block and element["element"]["type"] == "plain_text_input"
    }
    values["category"] = {"value": {"type": "static_select", "selected_option": {"value": "marketplace"}}}
    values["action"] = {"value": {"type": "static_select", "selected_option": {"value": "forward"}}}
    rule = compile_rule(rule_from_modal(values), "slack")
    for record in sample_queue()[:2]:
        got = classify(
            [rule], sender=record["sender"], sender_domain="amazon.com", subject=record["subject"], text=""
        )
        assert got.rule_id == rule.id
    other = classify(
        [rule], sender="no-reply-aws@amazon.com", sender_domain="amazon.com", subject="Hi", text=""
    )
    assert other.rule_id is None
