"""Rule subject patterns are matched by RE2, in time linear in the subject whatever the pattern; what RE2 cannot run
is refused with the rule's file and line; and \\d, \\w and \\s keep the meaning Python's re gave them, so the
default rules take the same subjects as before (full-width spaces and digits included)."""

from __future__ import annotations

import re
import sys
import unicodedata
from pathlib import Path

import pytest
import re2

from rootmail.domain.mail.parse import parse_mail
from rootmail.domain.rules.files import load_rule_files
from rootmail.domain.rules.index import classify
from rootmail.domain.rules.patterns import compile_subject, pattern_problem
from rootmail.domain.vocabulary import Action, Category
from rootmail.entrypoints.cli import main
from rootmail.errors import RuleError

ROOT = Path(__file__).resolve().parents[1]
RE2_REGEXP = type(re2.compile("x"))

# Patterns the old pattern check let through, each with an 83-character forged subject that sets Python's re
# backtracking (for the first and the last, far past the Lambda's 30 s; for all, past it with a longer subject), and
# a subject the rule is meant to take. scripts/bench.py (crafted-patterns) times Python's re and RE2 on them.
CRAFTED = [
    (r"(?i)invoice.*\d+.*\d+.*\d+.*due", "Invoice " + "1" * 75, "Invoice 2026-05 #12 of 3 is due"),
    (r"\d+\d+\d+\d+x", "1" * 83, "order 12345x"),
    (r"[^x]*[^y]*[^z]*!", "a" * 83, "Act now!"),
    (r"(?:(?:a*)?)+$", "a" * 82 + "!", "anything: the pattern takes every subject"),
]


def rule_file(directory: Path, subjects: list[str]) -> Path:
    """One [[rule]] per subject pattern (`crafted-N`, from aws.com); the subject line of each is line 8 + 9 N."""
    directory.mkdir(exist_ok=True)
    blocks = []
    for number, subject in enumerate(subjects):
        blocks.append(
            "[[rule]]\n"
            f'id = "crafted-{number}"\n'
            'description = "a pattern under test"\n'
            f"priority = {300 + number}\n"
            'category = "billing"\n'
            'action = "forward"\n'
            "[rule.match]\n"
            f"subject = '{subject}'\n"
            'sender_domains = ["aws.com"]\n'
        )
    path = directory / "crafted.toml"
    path.write_text("".join(blocks), encoding="utf-8")
    return path


def subject_line(number: int) -> int:
    return 8 + 9 * number


@pytest.mark.parametrize("number", range(len(CRAFTED)))
def test_a_pattern_that_made_pythons_re_backtrack_is_matched_by_re2(tmp_path, number):
    pattern, forged, meant = CRAFTED[number]
    rule_file(tmp_path / "rules", [p for p, _, _ in CRAFTED])
    rules = {r.id: r for r in load_rule_files(tmp_path / "rules")}
    rule = rules[f"crafted-{number}"]
    assert rule.subject is not None and rule.subject.pattern == pattern
    assert isinstance(rule.subject.regexp, RE2_REGEXP)  # checked first: Python's re would backtrack below

    def outcome(subject: str) -> tuple[Category, Action, str | None]:
        got = classify([rule], sender="no-reply@aws.com", sender_domain="aws.com", subject=subject, text="")
        return got.category, got.action, got.rule_id

    takes_everything = number == 3
    assert outcome(forged) == (
        (Category.BILLING, Action.FORWARD, rule.id)
        if takes_everything
        else (Category.UNCLASSIFIED, Action.QUEUE, None)
    )
    assert outcome(meant) == (Category.BILLING, Action.FORWARD, rule.id)


REFUSED = [
    (r"(?i)invoice (?=\d)", "uses a lookahead or lookbehind"),
    (r"(?<!Re: )Invoice", "uses a lookahead or lookbehind"),
    (r"(invoice) \1", "uses a backreference"),
    (r"(?P<word>\w+) (?P=word)", "uses a backreference"),
    (r"(?x) invoice \d+", "does not compile with RE2: invalid perl operator: (?x"),
    (r"invoice\Z", "does not compile with RE2: invalid escape sequence: \\Z"),
    (r"Invoice #\d{,3}", "`{,3}`"),
    (r"\b請求書", "next to '請'"),
    (r"(?i)お知らせ\B", "next to 'せ'"),
    # Spelled through a bracket, an escape or a class: RE2 would never find the boundary Python's re found.
    (r"請求[書]\b", "next to '[書]'"),
    (r"\x{8acb}\b", "next to '\\x{8acb}'"),
    (r"\w+\b", "next to '\\w'"),
    (r"\d{3}\b", "next to '\\d'"),
    (r"\bnotice\b.*請求", "next to '.'"),
    (r"\C", "\\C"),
    (r"[\p{L}\p{N}_]{1,1000}", "is too large for RE2"),
]


def test_what_re2_cannot_take_is_refused_with_file_and_line_by_rules_validate(tmp_path, capsys):
    path = rule_file(tmp_path / "rules", [p for p, _ in REFUSED])
    assert main(["rules", "validate", "--rules", str(tmp_path / "rules")]) == 1
    err = capsys.readouterr().err
    for number, (_, reason) in enumerate(REFUSED):
        line = next(line for line in err.splitlines() if f"rule 'crafted-{number}':" in line)
        assert line.startswith(f"{path}:{subject_line(number)}: rule 'crafted-{number}': `match.subject` ")
        assert reason in line, line
    assert f"{len(REFUSED)} problem(s)" in err


@pytest.mark.parametrize(("pattern", "reason"), REFUSED)
def test_pattern_problem_names_what_re2_cannot_take(pattern, reason):
    assert reason in (pattern_problem(pattern) or "")
    with pytest.raises(RuleError, match=re.escape(reason)):
        compile_subject(pattern)


@pytest.mark.parametrize(
    ("pattern", "subject"),
    [
        (r"請求書\s*のお知らせ", "請求書　のお知らせ"),  # an ideographic space (U+3000)
        (r"(?i)\[\s*case\s+\d{10,15}\s*\]", "Re: [CASE １７７６６６１０６６００８]"),  # full-width digits
        (r"^\w+ \w+$", "請求書 ｄｅ"),
        (r"AWS\W+請求", "AWS　・請求"),
        (r"[\s\d]{3}", "\u00a0１\u2003"),
        (r"^[^\S]+$", "\u3000\u00a0"),
        (r"\p{Han}{3}", "請求書"),  # RE2's own syntax is welcome too
        (r"\Q[CASE\E", "[CASE 1"),
        (r"\bMFA\b", "Your MFA device"),
    ],
)
def test_classes_keep_the_meaning_pythons_re_gave_them(pattern, subject):
    assert compile_subject(pattern).found_in(subject)


@pytest.mark.parametrize(
    ("pattern", "subject"),
    [
        (r"\d", "一二三"),  # numbers, not decimal digits
        (r"\s", "\u200b"),  # a zero-width space is not whitespace
        (r"\w", "・「」"),
        (r"\bMFA\b", "MFAs"),
    ],
)
def test_classes_do_not_take_what_pythons_re_did_not(pattern, subject):
    assert not compile_subject(pattern).found_in(subject)


# Every code point Python's unicodedata assigns (RE2's tables may know newer ones, which Python calls unassigned).
ASSIGNED = "".join(
    chr(c)
    for c in range(sys.maxunicode + 1)
    if not 0xD800 <= c <= 0xDFFF and unicodedata.category(chr(c)) != "Cn"
)


@pytest.mark.parametrize("escape", ["d", "D", "w", "W", "s", "S"])
@pytest.mark.parametrize("form", ["\\{}+", "[\\{}]+", "[^\\{}]+", "[-\\{}]+"])
@pytest.mark.parametrize("flags", ["", "(?i)"])
def test_each_class_takes_exactly_the_code_points_pythons_re_takes(escape, form, flags):
    pattern = flags + form.format(escape)
    if escape == "W" and form.startswith("["):
        assert "puts \\W inside [...]" in (pattern_problem(pattern) or "")
        return
    left_by_python = re.sub(pattern, "", ASSIGNED)
    left_by_re2 = compile_subject(pattern).regexp.sub("", ASSIGNED)
    differ = set(left_by_python) ^ set(left_by_re2)
    # U+0345 (a combining mark) case-folds to ι: under (?i) RE2 counts it as a letter inside a bracket.
    allowed = {"\u0345"} if flags and escape == "w" and form.startswith("[") else set()
    assert differ <= allowed, sorted(map(hex, map(ord, differ)))


CORPUS = [parse_mail(p.read_bytes()).subject for p in sorted((ROOT / "tests" / "corpus").glob("*.eml"))]


def variants(subject: str) -> list[str]:
    """The subject, with ideographic spaces, with full-width digits, and upper-cased: how Japanese mail clients and
    forwarders rewrite subjects."""
    full_width = subject.translate({ord(d): ord("０") + int(d) for d in "0123456789"})
    return [subject, subject.replace(" ", "\u3000"), full_width, subject.upper(), "Fwd:\u3000" + subject]


def test_the_default_rules_take_the_corpus_subjects_as_pythons_re_did():
    """Python's re is the reference: for every default rule and every corpus subject (and its variants), RE2 decides
    the same."""
    rules = [r for r in load_rule_files(ROOT / "rules") if r.subject is not None]
    assert len(rules) >= 10
    taken = 0
    for rule in rules:
        assert rule.subject is not None
        reference = re.compile(rule.subject.pattern)
        for subject in (v for s in CORPUS for v in variants(s)):
            expected = reference.search(subject) is not None
            assert rule.subject.found_in(subject) == expected, (rule.id, subject)
            taken += expected
    assert taken > 50  # the variants reach the rules, not only the misses


@pytest.mark.parametrize(
    "pattern", [r"\bMFA\b", r"(?i)(password assistance|\bMFA\b|パスワード)", r"[a-z]+\b"]
)
def test_a_boundary_beside_ascii_text_is_accepted(pattern):
    assert pattern_problem(pattern) is None


def test_subject_patterns_see_the_first_thousand_characters_of_a_subject():
    """RE2 is linear in the subject, but an operator's wide counted repeats cost tens of microseconds a character;
    a forged subject can be 16 KB. What AWS writes in a subject is a few hundred characters at most."""
    from rootmail.domain.rules.index import classify
    from rootmail.domain.rules.model import MAX_CLASSIFIED_SUBJECT
    from rootmail.domain.rules.sets import compile_rules

    item = {"id": "late", "category": "billing", "action": "ignore", "match": {"subject": "tail$"}}
    rules = compile_rules([(item, "test")])
    short = "x" * (MAX_CLASSIFIED_SUBJECT - 4) + "tail"
    decided = classify(rules, sender="a@b.example", sender_domain="b.example", subject=short, text="")
    assert decided.rule_id == "late"
    long = "x" * 16_000 + "tail"
    decided = classify(rules, sender="a@b.example", sender_domain="b.example", subject=long, text="")
    assert decided.rule_id is None
