"""Rules: validation errors that name the file and rule, matching semantics, most-urgent-wins, no catch-all."""

from __future__ import annotations

from pathlib import Path

import pytest

from rootmail.domain.rules.files import load_rule_files
from rootmail.domain.rules.index import classify
from rootmail.domain.rules.model import compile_rule
from rootmail.domain.rules.sets import compile_rules
from rootmail.domain.vocabulary import Action, Category
from rootmail.errors import RuleError

ROOT = Path(__file__).resolve().parents[1]


def rule(**overrides):
    data = {
        "id": "health-event",
        "category": "health",
        "action": "forward",
        "priority": 100,
        "match": {"sender_domains": ["aws.com"], "body_any": ["AWS Health Event"]},
    }
    data.update(overrides)
    return data


def test_default_rules_load_and_cover_every_category_but_unclassified():
    rules = load_rule_files(ROOT / "rules")
    covered = {r.category for r in rules}
    assert covered == set(Category) - {Category.UNCLASSIFIED}


def test_default_policy_per_category():
    rules = load_rule_files(ROOT / "rules")
    actions: dict[Category, set[Action]] = {}
    for r in rules:
        actions.setdefault(r.category, set()).add(r.action)
    assert actions[Category.SUPPORT_CASE] == {Action.TICKET}
    for urgent in (Category.ABUSE_REPORT, Category.ACCOUNT_COMPROMISE, Category.SES_SENDING_STATUS):
        assert actions[urgent] == {Action.URGENT}
    assert actions[Category.CREDENTIALS] == {Action.RESTRICTED}
    assert actions[Category.HEALTH] == {Action.FORWARD}
    assert Action.FORWARD not in actions[Category.BILLING]


def test_unknown_category_is_refused_with_file_and_rule():
    with pytest.raises(RuleError, match=r"rules/x.toml: rule 'health-event': unknown category 'weather'"):
        compile_rule(rule(category="weather"), "rules/x.toml")


def test_bad_regex_is_refused():
    with pytest.raises(RuleError, match="does not compile"):
        compile_rule(rule(match={"subject": "([unclosed"}), "rules/x.toml")


def test_sender_only_forward_rule_is_refused_as_a_catch_all():
    with pytest.raises(RuleError, match="not only a sender"):
        compile_rule(rule(match={"sender_domains": ["amazon.com"]}), "rules/x.toml")


def test_duplicate_ids_are_refused():
    with pytest.raises(RuleError, match="defined twice"):
        compile_rules([(rule(), "a.toml"), (rule(), "b.toml")])


def test_unknown_match_condition_is_refused():
    with pytest.raises(RuleError, match="unknown match condition"):
        compile_rule(rule(match={"body": ["x"]}), "rules/x.toml")


def test_invalid_toml_names_the_file(tmp_path):
    (tmp_path / "bad.toml").write_text("[[rule]\nid = ", encoding="utf-8")
    with pytest.raises(RuleError, match=r"bad\.toml: not valid TOML"):
        load_rule_files(tmp_path)


def test_sender_domain_matches_subdomains_but_not_lookalikes():
    rules = compile_rules([(rule(), "r")])

    def category(domain: str) -> Category:
        return classify(
            rules, sender=f"x@{domain}", sender_domain=domain, subject="s", text="AWS Health Event"
        ).category

    assert category("aws.com") == Category.HEALTH
    assert category("mail.aws.com") == Category.HEALTH
    assert category("evilaws.com") == Category.UNCLASSIFIED
    assert category("aws.com.evil.net") == Category.UNCLASSIFIED


def test_body_markers_any_and_all_are_case_insensitive():
    rules = compile_rules(
        [(rule(match={"sender_domains": ["aws.com"], "body_all": ["Region:", "Event type code:"]}), "r")]
    )
    hit = classify(
        rules,
        sender="health@aws.com",
        sender_domain="aws.com",
        subject="",
        text="region: x\nEVENT TYPE CODE: y",
    )
    miss = classify(rules, sender="health@aws.com", sender_domain="aws.com", subject="", text="Region: x")
    assert hit.rule_id == "health-event"
    assert miss.category == Category.UNCLASSIFIED and miss.action == Action.QUEUE


def test_most_urgent_category_wins_over_priority():
    health = rule(priority=1000)
    abuse = rule(
        id="abuse",
        category="abuse-report",
        action="urgent",
        priority=0,
        match={"sender_domains": ["aws.com"], "body_any": ["AWS Health Event", "Abuse Time:"]},
    )
    result = classify(
        compile_rules([(health, "r"), (abuse, "r")]),
        sender="health@aws.com",
        sender_domain="aws.com",
        subject="",
        text="AWS Health Event",
    )
    assert (result.category, result.action, result.rule_id) == (Category.ABUSE_REPORT, Action.URGENT, "abuse")
    assert result.candidates == ("abuse", "health-event")


def test_no_rule_means_unclassified_and_queued():
    result = classify(compile_rules([(rule(), "r")]), sender=None, sender_domain=None, subject="", text="")
    assert (result.category, result.action, result.rule_id) == (Category.UNCLASSIFIED, Action.QUEUE, None)


def test_rule_round_trips_through_its_item_form():
    original = compile_rule(
        rule(match={"sender_domains": ["aws.com"], "subject": "(?i)x", "body_all": ["a"]}), "r"
    )
    again = compile_rule(original.to_item(), "table")
    assert again.to_item() == original.to_item()
