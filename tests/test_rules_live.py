"""Rules operators can change safely: validation that points at file and line, versioned and audited live edits
with optimistic locking, rollback, files ↔ live, pattern safety, and a preview whose counts are what triage does."""

from __future__ import annotations

import json
import re
import shutil
import threading
import time
from pathlib import Path

import pytest
import re2

from rootmail.app.offline import load_accounts
from rootmail.domain.rules.files import load_rule_files
from rootmail.domain.rules.index import classify
from rootmail.domain.rules.model import compile_rule
from rootmail.domain.rules.patterns import compile_subject, pattern_problem
from rootmail.domain.rules.sets import usable_rules
from rootmail.entrypoints.cli import main
from rootmail.errors import RuleConflict, RuleError
from rootmail_local.emulator import LocalPipeline
from samples import sample_pipeline

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "corpus"
RULES = ROOT / "rules"

REMINDER_RULE = """
[[rule]]
id = "event-reminders"
description = "re:Invent session reminders: the customer registered with the root address"
priority = 100
category = "account-lifecycle"
action = "forward"
[rule.match]
senders = ["no-reply-aws@amazon.com"]
subject = '(?i)re:Invent \\d+ session reminder'
"""


def rules_dir(tmp_path: Path, *extra: str) -> Path:
    target = tmp_path / "rules"
    shutil.copytree(RULES, target)
    for number, text in enumerate(extra):
        (target / f"extra-{number}.toml").write_text(text, encoding="utf-8")
    return target


# ---- validation ---------------------------------------------------------------------------------------------


BROKEN = """# two broken rules and a clash
[[rule]]
id = "weather"
priority = 100
category = "weather"
action = "forward"
[rule.match]
subject = 'storm'

[[rule]]
id = "looks-ahead"
category = "health"
action = "forward"
[rule.match]
sender_domains = ["aws.com"]
subject = '(?i)retirement(?! cancelled)'

[[rule]]
id = "everything"
category = "health"
action = "ignore"
[rule.match]
subject = '.*'
"""


def test_validate_reports_every_problem_with_its_file_and_line(tmp_path, capsys):
    directory = tmp_path / "rules"
    directory.mkdir()
    (directory / "broken.toml").write_text(BROKEN, encoding="utf-8")
    assert main(["rules", "validate", "--rules", str(directory)]) == 1
    err = capsys.readouterr().err
    path = directory / "broken.toml"
    assert f"{path}:5: rule 'weather': unknown category 'weather'" in err
    assert f"{path}:16: rule 'looks-ahead': `match.subject` uses a lookahead or lookbehind" in err
    assert f"{path}:23: rule 'everything': matches every mail" in err and "force = true" in err
    assert "3 problem(s)" in err


def test_identical_and_ambiguous_rules_are_refused(tmp_path):
    blocks = (RULES / "notices.toml").read_text(encoding="utf-8").split("[[rule]]")
    same_as_cost_alert = next(b for b in blocks if 'id = "cost-alert"' in b)
    clash = same_as_cost_alert.replace('id = "cost-alert"', 'id = "cost-alert-copy"').replace(
        'category = "cost-alert"', 'category = "billing"'
    )
    directory = rules_dir(tmp_path, "[[rule]]" + clash)
    with pytest.raises(RuleError) as raised:
        load_rule_files(directory)
    message = str(raised.value)
    assert "rule 'cost-alert' matches exactly what rule 'cost-alert-copy'" in message
    assert f"{directory / 'extra-0.toml'}:1" in message
    tie = REMINDER_RULE.replace("priority = 100", "priority = 210").replace(
        'senders = ["no-reply-aws@amazon.com"]', 'sender_domains = ["aws.com"]'
    )
    with pytest.raises(RuleError, match=r"same priority 210 .* give one a higher priority"):
        load_rule_files(rules_dir(tmp_path / "tie", tie))


@pytest.mark.parametrize(
    "pattern",
    [
        r"(a+)+$",
        r"(.*)*x",
        r"(\w+\s?)+$",
        r"(?i)(pass|password)+",
        r"^(([a-z])+.)+[A-Z]$",
        r"(.*a){12}",
        r"(\w+\s*)+$",
        r"(a+b*)+$",
        r"(?:a+|b)+$",
        r"(\w+|-)+$",
        r"((a+)|b)*$",
        r"(a{1,10})+$",
        r"(\d{1,3}\.?)+$",
        r"(a+)(?:b|a+)*c",
        r"([а-я]+\s?)+$",
    ],
)
def test_patterns_that_backtrack_in_pythons_re_are_matched_by_re2(pattern):
    """Once refused as "could take catastrophic time": RE2 matches them in time linear in the subject, so they are
    rules like any other, and a subject crafted to make them backtrack is simply not matched."""
    assert pattern_problem(pattern) is None
    compiled = compile_subject(pattern)
    assert isinstance(compiled.regexp, type(re2.compile("x")))
    short = "a" * 12 + "!"  # short enough for Python's re to answer at once
    assert compiled.found_in(short) == (re.search(pattern, short) is not None)
    assert compiled.found_in("a" * 5_000 + "!") == compiled.found_in(short)


@pytest.mark.parametrize(
    "pattern",
    [
        r"(?i)^\s*\[(action required|scheduled change)\]",
        r"\[\s*case\s+\d{10,15}\s*\]",
        r"(?:\s+\w+)+$",
        r"(ab|cd)*",
    ],
)
def test_ordinary_patterns_pass(pattern):
    assert pattern_problem(pattern) is None


@pytest.mark.parametrize("subject", ["(?s).*", ".+", ".", r"\S", "(?s).+"])
def test_a_rule_taking_every_mail_needs_force(subject):
    data = {"id": "all-health", "category": "health", "action": "ignore", "match": {"subject": subject}}
    with pytest.raises(RuleError, match="matches every mail"):
        compile_rule(data, "t")
    assert compile_rule({**data, "force": True}, "t").forced
    assert compile_rule({**data, "force": True}, "t").to_item()["force"] is True


# ---- the live table: versions, conflicts, audit, rollback --------------------------------------------------------


@pytest.fixture
def local():
    with sample_pipeline() as pipeline:
        yield pipeline


def cli(local, *argv):
    return main([*argv, "--table", local.tables["rules"], "--history-table", local.tables["rules_history"]])


def test_every_change_is_versioned_and_audited_with_before_and_after(local):
    table = local.rules_table()
    first = table.get("cost-alert")
    assert first.version == 1 and first.updated_by == "local emulator"
    changed = {**first.rule, "priority": 225}
    assert table.change("cost-alert", changed, expected_version=1, by="alice", why="above health") == 2
    record = table.history("cost-alert")[-1]
    assert (record["version"], record["by"], record["why"], record["kind"]) == (
        2,
        "alice",
        "above health",
        "update",
    )
    assert record["before"] == first.rule and record["after"] == changed
    assert record["at"] >= first.updated_at


def test_two_operators_editing_the_same_rule_cannot_overwrite_each_other(local):
    table = local.rules_table()
    base = table.get("cost-alert")
    alice = {**base.rule, "description": "alice's"}
    bob = {**base.rule, "description": "bob's"}
    table.change("cost-alert", alice, expected_version=base.version, by="alice", why="wording")
    with pytest.raises(RuleConflict, match=r"at version 2, last changed by alice"):
        table.change("cost-alert", bob, expected_version=base.version, by="bob", why="wording")
    assert table.get("cost-alert").rule["description"] == "alice's"
    assert [r["by"] for r in table.history("cost-alert")] == ["local emulator", "alice"]


def test_concurrent_edits_one_wins_the_other_conflicts(local):
    table = local.rules_table()
    base = table.get("health-event")
    outcomes: list[str] = []

    def edit(who: str) -> None:
        try:
            table.change(
                "health-event",
                {**base.rule, "description": who},
                expected_version=base.version,
                by=who,
                why="x",
            )
            outcomes.append("written")
        except RuleConflict:
            outcomes.append("conflict")

    threads = [threading.Thread(target=edit, args=(f"operator-{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["conflict"] * 3 + ["written"]
    assert table.get("health-event").version == base.version + 1


def test_rollback_restores_a_rule_exactly(local):
    table = local.rules_table()
    original = table.get("billing-statement").rule
    table.change(
        "billing-statement", {**original, "action": "forward"}, expected_version=1, by="a", why="try"
    )
    table.change("billing-statement", None, expected_version=2, by="b", why="remove")
    assert "billing-statement" not in {r["id"] for r in table.load()}
    assert cli(local, "rules", "rollback", "billing-statement", "1", "--why", "the old policy was right") == 0
    restored = table.get("billing-statement")
    assert json.dumps(restored.rule, sort_keys=True) == json.dumps(original, sort_keys=True)
    assert restored.version == 4
    last = table.history("billing-statement")[-1]
    assert last["kind"] == "rollback to 1" and "before" not in last  # it was removed before the rollback
    assert last["after"] == original


def test_diff_push_and_pull_keep_files_and_live_in_step(local, tmp_path, capsys):
    directory = rules_dir(tmp_path, REMINDER_RULE)
    assert cli(local, "rules", "diff", "--rules", str(directory)) == 1
    assert "+ event-reminders: account-lifecycle → forward" in capsys.readouterr().out
    assert cli(local, "rules", "push", "--rules", str(directory), "--why", "t", "--dry-run") == 0
    assert "event-reminders" not in {r["id"] for r in local.rules_table().load()}
    assert cli(local, "rules", "push", "--rules", str(directory), "--why", "reminders", "--by", "carol") == 0
    assert local.rules_table().get("event-reminders").updated_by == "carol"
    assert cli(local, "rules", "diff", "--rules", str(directory)) == 0

    # A rule created elsewhere (Slack) is kept by a push without --prune, and pulled into its own file.
    slack_rule = {
        **json.loads(json.dumps(local.rules_table().get("event-reminders").rule)),
        "id": "from-slack-1",
    }
    slack_rule["match"] = {"senders": ["no-reply-aws@amazon.com"], "subject": "^Webinar"}
    local.rules_table().create(slack_rule, by="U0LOCALOPS", why="digest pattern")
    capsys.readouterr()
    assert cli(local, "rules", "push", "--rules", str(directory), "--why", "again") == 0
    assert "kept" in capsys.readouterr().out and local.rules_table().get("from-slack-1").rule
    pulled = tmp_path / "pulled"
    shutil.copytree(directory, pulled)
    assert cli(local, "rules", "pull", "--rules", str(pulled)) == 0
    assert (pulled / "from-slack.toml").exists()
    assert (pulled / "notices.toml").read_text(encoding="utf-8").startswith("# Notices that concern")
    back = {r.id: r.to_item() for r in load_rule_files(pulled)}
    live = {rule_id: entry.rule for rule_id, entry in local.rules_table().live().items()}
    assert back == live


def test_history_prints_who_when_why_and_the_change(local, capsys):
    table = local.rules_table()
    base = table.get("marketplace-offer")
    table.change(
        "marketplace-offer", {**base.rule, "action": "ignore"}, expected_version=1, by="dave", why="noise"
    )
    assert cli(local, "rules", "history", "marketplace-offer") == 0
    out = capsys.readouterr().out
    assert "v2" in out and "dave" in out and "noise" in out and 'action: "forward" → "ignore"' in out


# ---- the pipeline and the preview -----------------------------------------------------------------------------


def test_the_pipeline_picks_up_a_change_without_redeploying():
    reminder = (CORPUS / "30-unclassified-reinvent-reminder.eml").read_bytes()
    with LocalPipeline(settings={"rules_cache_seconds": "1"}) as pipeline:
        pipeline.seed_accounts(load_accounts(CORPUS / "accounts.json", CORPUS / "contacts.json"))
        pipeline.seed_rules(load_rule_files(RULES))
        pipeline.store_mail("before", reminder)
        pipeline.wait()
        assert pipeline.ledger().get("before")["state"] == "queued"
        rule = compile_rule(json.loads(json.dumps(_reminder_item())), "t").to_item()
        pipeline.rules_table().create(rule, by="erin", why="reminders")
        time.sleep(1.1)  # the functions' rules cache (ROOTMAIL_RULES_CACHE_SECONDS) runs out
        pipeline.store_mail("after", reminder.replace(b"c3492aaf", b"d3492aaf"))
        pipeline.wait()
        record = pipeline.ledger().get("after")
        assert (record["state"], record["rule_id"]) == ("forwarded", "event-reminders")


def _reminder_item():
    import tomllib

    return tomllib.loads(REMINDER_RULE)["rule"][0]


def test_the_previews_counts_are_what_triage_then_does(local, tmp_path, capsys):
    names = [
        "30-unclassified-reinvent-reminder.eml",
        "15-health-unknown-recipient.eml",
        "18-cost-alert-free-tier.eml",
        "11-health-single-account.eml",
    ]
    for name in names:
        local.store_mail(Path(name).stem, (CORPUS / name).read_bytes())
    local.wait()
    queued = {r["mail_id"] for r in local.ledger().in_state("queued")}
    assert len(queued) == 3

    # The proposed rules: the files plus a reminder rule, and the cost alert now ignored.
    directory = rules_dir(tmp_path, REMINDER_RULE)
    notices = directory / "notices.toml"
    text = notices.read_text(encoding="utf-8")
    cost_alert = text.index('id = "cost-alert"')
    action_at = text.index('action = "forward"', cost_alert)
    notices.write_text(text[:action_at] + 'action = "ignore"' + text[action_at + len('action = "forward"') :])
    capsys.readouterr()  # the pipeline's own logs so far
    assert cli(local, "rules", "test", "--queue", "--rules", str(directory), "--json") == 0
    predicted = json.loads(capsys.readouterr().out)
    assert predicted["mails"] == 3
    assert predicted["rules"]["event-reminders"] == {"now": 0, "proposed": 1}
    assert predicted["rules"]["cost-alert"] == {"now": 1, "proposed": 1}
    changed = {c["mail_id"] for c in predicted["changes"]}
    assert changed == {"30-unclassified-reinvent-reminder", "18-cost-alert-free-tier"}

    assert cli(local, "rules", "push", "--rules", str(directory), "--why", "preview checked") == 0
    local.slack_command("retry")
    local.wait()
    ledger = local.ledger()
    for mail_id in queued:
        record = ledger.get(mail_id)
        outcome = predicted["outcomes"][mail_id]
        assert (record["category"], record["action"], record["rule_id"]) == (
            outcome["category"],
            outcome["action"],
            outcome["rule_id"],
        ), mail_id
    assert ledger.get("30-unclassified-reinvent-reminder")["state"] == "forwarded"
    assert ledger.get("18-cost-alert-free-tier")["state"] == "ignored"


def test_preview_of_files_offline(tmp_path, capsys):
    directory = rules_dir(tmp_path, REMINDER_RULE)
    files = [
        str(CORPUS / "30-unclassified-reinvent-reminder.eml"),
        str(CORPUS / "11-health-single-account.eml"),
    ]
    argv = ["rules", "test", *files, "--rules", str(directory), "--current", str(RULES)]
    assert main([*argv, "--accounts", str(CORPUS / "accounts.json")]) == 0
    out = capsys.readouterr().out
    assert "2 mail(s) decided" in out
    assert "1 mail(s) would change category or action" in out
    assert "unclassified/queue (-) → account-lifecycle/forward (event-reminders)" in out


def test_a_table_written_before_rules_had_versions_takes_a_push(local, tmp_path):
    from rootmail.adapters.dynamodb.items import to_item

    dynamodb = local.client("dynamodb")
    old = {**local.rules_table().get("cost-alert").rule, "priority": 200}
    # As rootmail wrote rules before versions: no `version`, no history.
    dynamodb.delete_item(
        TableName=local.tables["rules_history"], Key=to_item({"rule_id": "cost-alert", "version": 1})
    )
    dynamodb.put_item(
        TableName=local.tables["rules"],
        Item=to_item({"rule_id": "cost-alert", "priority": 200, "body": json.dumps(old)}),
    )
    assert local.rules_table().get("cost-alert").version == 0
    assert cli(local, "rules", "push", "--rules", str(rules_dir(tmp_path)), "--why", "upgrade") == 0
    assert local.rules_table().get("cost-alert").version == 1
    assert local.rules_table().get("cost-alert").rule["priority"] == 220


def test_a_tie_in_the_live_rules_never_stops_triage(local):
    table = local.rules_table()
    tie = {**table.get("cost-alert").rule, "id": "cost-alert-twin", "category": "billing"}
    table.change("cost-alert-twin", tie, expected_version=0, by="someone", why="bypassing validation")
    name = "11-health-single-account"
    local.store_mail(name, (CORPUS / f"{name}.eml").read_bytes())
    local.wait()
    assert local.ledger().get(name)["state"] == "forwarded"


def test_a_push_whose_result_would_tie_with_a_live_rule_is_refused(local, tmp_path, capsys):
    table = local.rules_table()
    slack_rule = {
        "id": "slack-made",
        "description": "",
        "priority": 220,
        "category": "billing",
        "action": "ignore",
        "match": {"sender_domains": ["costalerts.amazonaws.com"], "subject": "(?i)invoice"},
    }
    table.create(slack_rule, by="U0LOCALOPS", why="from a digest pattern")
    assert cli(local, "rules", "push", "--rules", str(rules_dir(tmp_path, REMINDER_RULE)), "--why", "x") == 2
    assert "rule 'cost-alert' and rule 'slack-made'" in capsys.readouterr().err
    assert table.get("event-reminders") is None  # nothing written


def test_stale_files_cannot_overwrite_a_newer_live_change(local, tmp_path, capsys):
    alice, bob = tmp_path / "alice", tmp_path / "bob"
    for directory in (alice, bob):
        shutil.copytree(RULES, directory)
        assert cli(local, "rules", "pull", "--rules", str(directory), "--force") == 0
    edit = alice / "notices.toml"
    edit.write_text(
        edit.read_text(encoding="utf-8").replace("priority = 220", "priority = 225"), encoding="utf-8"
    )
    assert (
        cli(local, "rules", "push", "--rules", str(alice), "--why", "cost alerts first", "--by", "alice") == 0
    )
    (bob / "extra.toml").write_text(REMINDER_RULE, encoding="utf-8")
    capsys.readouterr()
    assert cli(local, "rules", "push", "--rules", str(bob), "--why", "reminders", "--by", "bob") == 1
    err = capsys.readouterr().err
    assert (
        "CONFLICT rule 'cost-alert' changed since version 1: it is at version 2, last changed by alice" in err
    )
    assert local.rules_table().get("cost-alert").rule["priority"] == 225  # alice's change stands
    assert local.rules_table().get("event-reminders").updated_by == "bob"  # bob's own change went in


def test_pull_never_loses_changes_that_are_not_live(local, tmp_path, capsys):
    directory = rules_dir(tmp_path, REMINDER_RULE)
    assert cli(local, "rules", "pull", "--rules", str(directory)) == 1
    assert "not live: event-reminders" in capsys.readouterr().err
    assert "event-reminders" in (directory / "extra-0.toml").read_text(encoding="utf-8")
    assert cli(local, "rules", "pull", "--rules", str(directory), "--force") == 0
    assert "event-reminders" not in (directory / "extra-0.toml").read_text(encoding="utf-8")


LOOKAROUND_RULE = REMINDER_RULE.replace(
    "subject = '(?i)re:Invent \\d+ session reminder'", "subject = '(?i)re:Invent (?=\\d)'"
)


def test_a_push_of_a_pattern_re2_cannot_take_is_refused_with_file_and_line(local, tmp_path, capsys):
    assert "(?=" in LOOKAROUND_RULE
    directory = rules_dir(tmp_path, LOOKAROUND_RULE)
    assert cli(local, "rules", "push", "--rules", str(directory), "--why", "x") != 0
    line = LOOKAROUND_RULE.splitlines().index("subject = '(?i)re:Invent (?=\\d)'") + 1
    err = capsys.readouterr().err
    assert (
        f"{directory / 'extra-0.toml'}:{line}: rule 'event-reminders': `match.subject` uses a lookahead"
        in err
    )
    assert local.rules_table().get("event-reminders") is None  # nothing written


def test_a_live_rule_re2_cannot_take_is_left_out_and_said_and_triage_goes_on():
    """A rule stored before subjects were matched by RE2 may use what RE2 cannot run: the pipeline leaves that rule
    out (and says so) and classifies with the others."""
    good = compile_rule(json.loads(json.dumps(_reminder_item())), "t").to_item()
    stale = {**good, "id": "stale-lookbehind", "priority": 90}
    stale["match"] = {**good["match"], "subject": "(?<!Fwd: )re:Invent"}
    rules, problems = usable_rules([(stale, "table"), (good, "table")])
    assert [r.id for r in rules] == ["event-reminders"]
    assert (
        len(problems) == 1
        and "rule 'stale-lookbehind'" in problems[0]
        and "lookahead or lookbehind" in problems[0]
    )
    got = classify(
        rules,
        sender="no-reply-aws@amazon.com",
        sender_domain="amazon.com",
        subject="AWS re:Invent 2026 session reminder",
        text="",
    )
    assert got.rule_id == "event-reminders"
