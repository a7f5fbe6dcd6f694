"""Rules: named, prioritised matches on sender, subject and body markers that give a mail its category and action.

Rules are data (reviewed TOML files under rules/, and the live rules table); this module validates and compiles them
once, then matches parsed mail with no I/O.
"""

from __future__ import annotations

import re
import string
import tomllib
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

# The parser and compiler re itself uses (re._parser and re._compiler since 3.11): the pattern-safety check reads
# the same parse tree the matcher runs, instead of guessing from the text.
from re import _compiler as _sre_compiler  # type: ignore[attr-defined]
from re import _constants as _sre_constants  # type: ignore[attr-defined]
from re import _parser as _sre_parser  # type: ignore[attr-defined]
from typing import Any

from rootmail.domain.vocabulary import Action, Category, urgency
from rootmail.errors import RuleError

_RULE_ID = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")
_MATCH_KEYS = {"senders", "sender_domains", "subject", "body_any", "body_all"}
_RULE_KEYS = {"id", "description", "priority", "category", "action", "match", "force"}
MAX_PATTERN = 1000
# Subjects any rule that "matches every mail" would take: a rule with no sender and no body marker whose subject
# pattern takes all of these is refused unless `force = true`.
_PROBE_SUBJECTS = (
    "",
    "x",
    "Hello",
    "Your AWS account 123456789012",
    "[Action Required] Amazon EC2 instance retirement",
    "ご利用のアカウントについて",
    "RE: [CASE 1234567890] question",
)


@dataclass(frozen=True)
class SubjectScreen:
    """Literal text a subject pattern cannot match without: at least one of `needles` is in the subject (in
    `subject.lower()` when `lowered`). A substring test costs a tenth of a regex search, and most mail fails it
    for most rules, so the regex runs only where it might match."""

    needles: tuple[str, ...]
    lowered: bool


# Under re.IGNORECASE a literal matches its case variants. For these characters the variants are exactly what
# `str.lower()` maps onto the literal's lowercase: ASCII (except i, k and s, which also match İ, ı, K (Kelvin) and
# ſ) and uncased letters and digits (kana, kanji, hangul...). A screen is built from these characters only.
_UNCASED = ("Lo", "Lm", "Nd")


def _screenable(char: str) -> bool:
    if char.isascii():
        return char.lower() not in "iks"
    return unicodedata.category(char) in _UNCASED


def subject_screen(pattern: re.Pattern[str]) -> SubjectScreen | None:
    """The longest literal text the pattern requires, read from its parse tree; None when it requires none."""
    flags = pattern.flags
    if flags & re.LOCALE:
        return None
    ignorecase = bool(flags & re.IGNORECASE)
    try:
        tree = _sre_parser.parse(pattern.pattern, flags)
    except re.error:  # it compiled, so it parses; were it not so, the regex alone would decide
        return None
    ignorecase = ignorecase or bool(tree.state.flags & re.IGNORECASE)
    needles = _required_text(list(tree), ignorecase)
    if not needles or min(map(len, needles)) < 2:
        return None
    return SubjectScreen(tuple(sorted(needles)), ignorecase)


def _required_text(items: list[tuple[Any, Any]], ignorecase: bool) -> frozenset[str] | None:
    """Alternatives of which one must appear in any text the sequence matches: the best of its literal runs, its
    repeats of at least one and its alternations whose every branch requires some text."""
    found: list[frozenset[str]] = []
    run: list[str] = []

    def end_run() -> None:
        if run:
            found.append(frozenset(["".join(run)]))
            run.clear()

    def walk(sequence: list[tuple[Any, Any]]) -> None:
        for op, av in sequence:
            if op is _sre_constants.LITERAL:
                char = chr(av)
                if ignorecase and not _screenable(char):
                    end_run()
                else:
                    run.append(char.lower() if ignorecase else char)
            elif op is _sre_constants.AT:
                continue  # zero-width: the literals on either side are adjacent in the text
            elif op is _sre_constants.SUBPATTERN and not av[1] and not av[2]:
                walk(list(av[3]))  # a group without flags of its own is part of the sequence
            elif op is _sre_constants.BRANCH:
                end_run()
                branches = [_required_text(list(branch), ignorecase) for branch in av[1]]
                if all(branches):
                    found.append(frozenset().union(*branches))  # type: ignore[arg-type]
            elif op in (_sre_constants.MAX_REPEAT, _sre_constants.MIN_REPEAT) and av[0] >= 1:
                end_run()
                inner = _required_text(list(av[2]), ignorecase)
                if inner:
                    found.append(inner)
            else:
                end_run()

    walk(items)
    end_run()
    if not found:
        return None
    return max(found, key=lambda alternatives: (min(map(len, alternatives)), -len(alternatives)))


@dataclass(frozen=True)
class Rule:
    id: str
    category: Category
    action: Action
    priority: int = 100
    description: str = ""
    senders: frozenset[str] = frozenset()
    sender_domains: tuple[str, ...] = ()
    subject: re.Pattern[str] | None = None
    body_any: tuple[str, ...] = ()  # as written; matched case-insensitively
    body_all: tuple[str, ...] = ()
    source: str = ""  # where the rule came from: "rules/support.toml:12" or "table"
    forced: bool = False  # takes every mail on purpose (`force = true`)
    folded_any: tuple[str, ...] = field(default=(), repr=False, compare=False)
    folded_all: tuple[str, ...] = field(default=(), repr=False, compare=False)
    domain_set: frozenset[str] = field(default=frozenset(), repr=False, compare=False)
    screen: SubjectScreen | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        # What matching uses, derived from the rule's conditions however the Rule was made.
        object.__setattr__(self, "folded_any", tuple(m.casefold() for m in self.body_any))
        object.__setattr__(self, "folded_all", tuple(m.casefold() for m in self.body_all))
        object.__setattr__(self, "domain_set", frozenset(self.sender_domains))
        if self.subject is not None:
            object.__setattr__(self, "screen", subject_screen(self.subject))

    def matches(
        self, sender: str, suffixes: frozenset[str], subject: str, lowered: str, folded_body: str
    ) -> bool:
        """The sender's domain comes as all its suffixes (`domain_suffixes`): one set test per rule, in C.
        `lowered` is `subject.lower()`, for the subject screen."""
        if (
            (self.senders or self.domain_set)
            and sender not in self.senders
            and self.domain_set.isdisjoint(suffixes)
        ):
            return False
        if self.subject is not None:
            screen = self.screen
            if screen is not None and not any(
                needle in (lowered if screen.lowered else subject) for needle in screen.needles
            ):
                return False
            if self.subject.search(subject) is None:
                return False
        if self.folded_all and not all(marker in folded_body for marker in self.folded_all):
            return False
        return not self.folded_any or any(marker in folded_body for marker in self.folded_any)

    def to_item(self) -> dict[str, Any]:
        """The rule as plain data, the same shape a rule file holds (without `source`)."""
        match: dict[str, Any] = {}
        if self.senders:
            match["senders"] = sorted(self.senders)
        if self.sender_domains:
            match["sender_domains"] = list(self.sender_domains)
        if self.subject is not None:
            match["subject"] = self.subject.pattern
        if self.body_any:
            match["body_any"] = list(self.body_any)
        if self.body_all:
            match["body_all"] = list(self.body_all)
        item: dict[str, Any] = {
            "id": self.id,
            "description": self.description,
            "priority": self.priority,
            "category": str(self.category),
            "action": str(self.action),
            "match": match,
        }
        if self.forced:
            item["force"] = True
        return item

    def conditions(self) -> tuple[Any, ...]:
        """What the rule matches on, to find two rules that match exactly the same mail."""
        return (
            self.senders,
            frozenset(self.sender_domains),
            self.subject.pattern if self.subject is not None else None,
            frozenset(self.folded_any),
            frozenset(self.folded_all),
        )


@dataclass(frozen=True)
class Classification:
    category: Category
    action: Action
    rule_id: str | None
    reason: str
    candidates: tuple[str, ...] = field(default=())  # every rule that matched, winner first
    matched_categories: frozenset[Category] = field(default=frozenset())

    def to_dict(self) -> dict[str, Any]:
        return {
            "category": str(self.category),
            "action": str(self.action),
            "rule_id": self.rule_id,
            "reason": self.reason,
            "candidates": list(self.candidates),
        }


def domain_suffixes(domain: str) -> frozenset[str]:
    """`mail.aws.com` → {mail.aws.com, aws.com, com}: a rule's domain matches when it is one of these."""
    parts = domain.split(".") if domain else []
    return frozenset(".".join(parts[i:]) for i in range(len(parts)))


def _domain_in(domain: str, domains: Sequence[str]) -> bool:
    return any(domain == d or domain.endswith("." + d) for d in domains)


def compile_rule(
    data: dict[str, Any], source: str, locate: Callable[[str | None], str] | None = None
) -> Rule:
    """Validate one rule's data and compile it. Errors name the source (the file and line of the field, when
    `locate` can tell it) and the rule."""
    rule_id = data.get("id")
    named = f"rule {rule_id!r}" if isinstance(rule_id, str) and rule_id else "a rule without an id"

    def fail(problem: str, key: str | None = None) -> RuleError:
        return RuleError(f"{locate(key) if locate else source}: {named}: {problem}")

    if not isinstance(rule_id, str) or not _RULE_ID.match(rule_id):
        raise fail("`id` must be lowercase letters, digits and dashes (2-63 characters)", "id")
    unknown = set(data) - _RULE_KEYS
    if unknown:
        raise fail(f"unknown field(s) {sorted(unknown)}; allowed: {sorted(_RULE_KEYS)}", sorted(unknown)[0])
    try:
        category = Category(str(data.get("category")))
    except ValueError:
        raise fail(
            f"unknown category {data.get('category')!r}; known: {[str(c) for c in Category]}", "category"
        ) from None
    try:
        action = Action(str(data.get("action")))
    except ValueError:
        raise fail(
            f"unknown action {data.get('action')!r}; known: {[str(a) for a in Action]}", "action"
        ) from None
    priority = data.get("priority", 100)
    if not isinstance(priority, int) or isinstance(priority, bool) or not 0 <= priority <= 1000:
        raise fail("`priority` must be a whole number from 0 to 1000", "priority")
    forced = data.get("force", False)
    if not isinstance(forced, bool):
        raise fail("`force` must be true or false", "force")
    match = data.get("match")
    if not isinstance(match, dict) or not match:
        raise fail("`match` must be a table with at least one condition", "match")
    unknown = set(match) - _MATCH_KEYS
    if unknown:
        raise fail(
            f"unknown match condition(s) {sorted(unknown)}; allowed: {sorted(_MATCH_KEYS)}",
            sorted(unknown)[0],
        )

    def strings(key: str) -> tuple[str, ...]:
        value = match.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            raise fail(f"`match.{key}` must be a list of non-empty strings", key)
        return tuple(value)

    subject = None
    if "subject" in match:
        if not isinstance(match["subject"], str) or not match["subject"]:
            raise fail("`match.subject` must be a non-empty regular expression", "subject")
        problem = pattern_problem(match["subject"])
        if problem:
            raise fail(f"`match.subject` {problem}", "subject")
        subject = re.compile(match["subject"])
    body_any, body_all = strings("body_any"), strings("body_all")
    senders, domains = strings("senders"), strings("sender_domains")
    if any("." not in d.strip(".") for d in domains):
        raise fail(
            "`match.sender_domains` holds domains like aws.com, not a top-level name or a dot",
            "sender_domains",
        )
    if any("@" not in s for s in senders):
        raise fail("`match.senders` holds whole addresses (name@domain)", "senders")
    if action == Action.FORWARD and subject is None and not body_any and not body_all:
        # A sender-only forward rule would forward every unknown mail from that sender: never a catch-all.
        raise fail("a forward rule needs a subject pattern or body markers, not only a sender", "match")
    if (
        not senders
        and not domains
        and not body_any
        and not body_all
        and (subject is None or all(subject.search(probe) for probe in _PROBE_SUBJECTS if probe))
        and not forced
    ):
        raise fail(
            "matches every mail (no sender, no body marker, a subject pattern that takes anything): "
            "narrow it, or set `force = true` if that is really meant",
            "subject" if subject is not None else "match",
        )
    return Rule(
        id=rule_id,
        category=category,
        action=action,
        priority=priority,
        description=str(data.get("description", "")),
        senders=frozenset(s.lower() for s in senders),
        sender_domains=tuple(d.lower().lstrip(".") for d in domains),
        subject=subject,
        body_any=body_any,
        body_all=body_all,
        source=locate(None) if locate else source,
        forced=forced,
    )


def pattern_problem(pattern: str) -> str | None:
    r"""Why a subject pattern is refused, if it is: it does not compile, it is too long, or it could take
    catastrophic (exponential) time on a crafted subject. Python's re backtracks; what explodes is a repeat whose
    iterations can split the same text in many ways: a repeat ending in a repeat of what it starts with (`(a+)+`,
    `(\w+\s?)*`, `(.*)*`), or a repeated alternation whose branches can start alike (`(a|ab)+`)."""
    if len(pattern) > MAX_PATTERN:
        return f"is longer than {MAX_PATTERN} characters"
    try:
        parsed = _sre_parser.parse(pattern)
    except re.error as exc:
        return f"does not compile: {exc}"
    found = _ambiguous_repeat(parsed.state, list(parsed))
    if found:
        return (
            f"could take catastrophic time ({found}); rewrite it so each repeat can split a text one way only"
        )
    return None


_REPEATS = {_sre_constants.MAX_REPEAT, _sre_constants.MIN_REPEAT}
# The characters a piece of a pattern is checked against (ASCII, and some Japanese and Latin-1).
_SAMPLE = string.printable + "あア漢éßяЖΩ€\u3000\u00a0\u200b"


def _ambiguous_repeat(state: Any, items: list[tuple[Any, Any]]) -> str | None:
    for op, av in items:
        children: list[list[tuple[Any, Any]]] = []
        if op in _REPEATS:
            _, high, body = av
            body = list(body)
            if high == _sre_constants.MAXREPEAT or high > 1:
                first = _first(state, body)
                ends_in_repeat, last = _last(state, body)
                if ends_in_repeat and first & last:
                    return "a repeat that ends in a repeat of what it starts with"
                if _overlapping_branches(state, body):
                    return "a repeated alternation whose branches can start alike"
                if _repeat_then_alike(state, body):
                    return "a repeat inside a repeat, followed by what it repeats"
            children = [body]
        elif op == _sre_constants.SUBPATTERN:
            children = [list(av[-1])]
        elif op == _sre_constants.BRANCH:
            children = [list(b) for b in av[1]]
        elif op in (_sre_constants.ASSERT, _sre_constants.ASSERT_NOT):
            children = [list(av[1])]
        for child in children:
            found = _ambiguous_repeat(state, child)
            if found:
                return found
    return None


def _chars(state: Any, item: tuple[Any, Any]) -> frozenset[str]:
    """The sample characters one element can start with."""
    op, av = item
    if op in _REPEATS:
        return _first(state, list(av[2]))
    if op == _sre_constants.SUBPATTERN:
        return _first(state, list(av[-1]))
    if op == _sre_constants.BRANCH:
        return frozenset().union(*(_first(state, list(b)) for b in av[1]))
    if op in (_sre_constants.AT, _sre_constants.ASSERT, _sre_constants.ASSERT_NOT):
        return frozenset()
    try:
        single = _sre_compiler.compile(_sre_parser.SubPattern(state, [item]))
    except (re.error, TypeError, ValueError):
        return frozenset(_SAMPLE)
    return frozenset(c for c in _SAMPLE if single.fullmatch(c))


def _may_be_empty(item: tuple[Any, Any]) -> bool:
    op, av = item
    if op in _REPEATS:
        return bool(av[0] == 0) or all(_may_be_empty(i) for i in av[2])
    if op == _sre_constants.SUBPATTERN:
        return all(_may_be_empty(i) for i in av[-1])
    if op == _sre_constants.BRANCH:
        return any(all(_may_be_empty(i) for i in b) for b in av[1])
    return op in (_sre_constants.AT, _sre_constants.ASSERT, _sre_constants.ASSERT_NOT)


def _first(state: Any, items: list[tuple[Any, Any]]) -> frozenset[str]:
    found: frozenset[str] = frozenset()
    for item in items:
        found |= _chars(state, item)
        if not _may_be_empty(item):
            break
    return found


def _last(state: Any, items: list[tuple[Any, Any]]) -> tuple[bool, frozenset[str]]:
    """Whether a sequence can end in an unbounded repeat (only optional parts after it), and what those trailing
    parts and that repeat can match."""
    found: frozenset[str] = frozenset()
    repeated = False
    for item in reversed(items):
        op, av = item
        if op in _REPEATS and av[1] > 1:
            found |= _chars(state, item)
            repeated = True
        elif op == _sre_constants.SUBPATTERN:
            inner, chars = _last(state, list(av[-1]))
            found |= chars
            repeated = repeated or inner
        elif op == _sre_constants.BRANCH:
            for branch in av[1]:
                inner, chars = _last(state, list(branch))
                found |= chars
                repeated = repeated or inner
        else:
            found |= _chars(state, item)
        if not _may_be_empty(item):
            return repeated, found
    return repeated, found


def _unbounded(item: tuple[Any, Any]) -> bool:
    """A repeat that can take more than one character's worth (`a+`, `a*`, `a{1,10}`)."""
    op, av = item
    return op in _REPEATS and av[1] > 1


def _repeat_then_alike(state: Any, items: list[tuple[Any, Any]]) -> bool:
    """An unbounded repeat followed (past optional parts) by something that can take the same characters."""
    for index, item in enumerate(items):
        op, av = item
        if op == _sre_constants.SUBPATTERN and _repeat_then_alike(state, list(av[-1])):
            return True
        if not _unbounded(item):
            continue
        repeated = _chars(state, item)
        for following in items[index + 1 :]:
            if _chars(state, following) & repeated:
                return True
            if not _may_be_empty(following):
                break
    return False


def _overlapping_branches(state: Any, items: list[tuple[Any, Any]]) -> bool:
    """The body of a repeat is (or holds, in a group) an alternation with an empty branch or two branches that
    can start with the same character."""
    for op, av in items:
        if op == _sre_constants.SUBPATTERN and _overlapping_branches(state, list(av[-1])):
            return True
        if op == _sre_constants.BRANCH:
            starts = [(_first(state, list(b)), not b) for b in av[1]]
            if any(empty for _, empty in starts):
                return True
            for i, (first, _) in enumerate(starts):
                if any(first & other for other, _ in starts[i + 1 :]):
                    return True
    return False


def _compile_each(items: Iterable[tuple[dict[str, Any], str]]) -> tuple[list[Rule], list[str]]:
    """Every rule that compiles, and what is wrong with the others."""
    rules: list[Rule] = []
    problems: list[str] = []
    for data, source in items:
        try:
            rules.append(compile_rule(data, source))
        except RuleError as exc:
            problems.append(str(exc))
    return rules, problems


def compile_rules(items: Iterable[tuple[dict[str, Any], str]]) -> list[Rule]:
    """Compile (data, source) pairs and check them as a set. Returned in matching order."""
    rules, problems = _compile_each(items)
    problems += set_problems(rules)
    if problems:
        raise RuleError("\n".join(problems))
    return sort_rules(rules)


def usable_rules(items: Iterable[tuple[dict[str, Any], str]]) -> tuple[list[Rule], list[str]]:
    """The live rules as the pipeline uses them: a rule invalid on its own is left out (and said), but problems of
    the set (a tie, two rules alike) never stop triage: the order is still deterministic (urgency, priority, ID).
    Writes are validated as a set before they happen (`rootmail rules push`, the Slack modal, rollback)."""
    rules, problems = _compile_each(items)
    ids: set[str] = set()
    unique = []
    for rule in rules:
        if rule.id not in ids:
            ids.add(rule.id)
            unique.append(rule)
    return sort_rules(unique), problems + set_problems(rules)


def set_problems(rules: Sequence[Rule]) -> list[str]:
    """What is wrong with rules together: an ID twice, two rules with the same conditions, and two rules that can
    take the same mail at the same rank (urgency and priority) with different outcomes, where only their IDs would
    decide."""
    problems: list[str] = []
    seen: dict[str, Rule] = {}
    conditions: dict[tuple[Any, ...], Rule] = {}
    for rule in rules:
        if rule.id in seen:
            problems.append(
                f"{rule.source}: rule {rule.id!r} is defined twice (also at {seen[rule.id].source})"
            )
            continue
        seen[rule.id] = rule
        same = conditions.setdefault(rule.conditions(), rule)
        if same is not rule:
            problems.append(
                f"{rule.source}: rule {rule.id!r} matches exactly what rule {same.id!r} ({same.source}) matches: "
                "merge them or make one narrower"
            )
    unique = list(seen.values())
    for index, rule in enumerate(unique):
        for other in unique[index + 1 :]:
            if (
                urgency(rule.category) == urgency(other.category)
                and rule.priority == other.priority
                and (rule.category, rule.action) != (other.category, other.action)
                and _senders_overlap(rule, other)
            ):
                problems.append(
                    f"{rule.source}: rule {rule.id!r} and rule {other.id!r} ({other.source}) can match the same "
                    f"mail with the same priority {rule.priority} but give {rule.category}/{rule.action} and "
                    f"{other.category}/{other.action}: give one a higher priority"
                )
    return problems


def _senders_overlap(one: Rule, other: Rule) -> bool:
    """Could one sender pass both rules' sender conditions? (No sender condition: any sender.)"""
    if not (one.senders or one.sender_domains) or not (other.senders or other.sender_domains):
        return True
    if one.senders & other.senders:
        return True
    for a, b in ((one, other), (other, one)):
        if any(_domain_in(s.rpartition("@")[2], b.sender_domains) for s in a.senders):
            return True
    return any(
        _domain_in(d, other.sender_domains) or _domain_in(e, one.sender_domains)
        for d in one.sender_domains
        for e in other.sender_domains
    )


def sort_rules(rules: Iterable[Rule]) -> list[Rule]:
    # Most urgent category first, then higher priority, then id: the first match wins, deterministically.
    return sorted(rules, key=lambda r: (urgency(r.category), -r.priority, r.id))


def load_rule_files(directory: Path) -> list[Rule]:
    """Read every *.toml under `directory`: each holds `[[rule]]` tables. Every problem in every file is reported
    at once, each with its file and line."""
    files = sorted(directory.glob("*.toml"))
    if not files:
        raise RuleError(f"{directory}: no rule files (*.toml) found")
    rules: list[Rule] = []
    problems: list[str] = []
    for path in files:
        text = path.read_text(encoding="utf-8")
        try:
            document = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            problems.append(f"{path}: not valid TOML: {exc}")
            continue
        entries = document.get("rule", [])
        if not isinstance(entries, list) or set(document) - {"rule"}:
            problems.append(f"{path}:1: a rule file holds only [[rule]] tables")
            continue
        for index, entry in enumerate(entries):
            if not isinstance(entry, dict):
                problems.append(f"{path}: `rule` entries must be [[rule]] tables, not {type(entry).__name__}")
                continue
            try:
                rules.append(compile_rule(entry, str(path), _locator(path, text, index)))
            except RuleError as exc:
                problems.append(str(exc))
    problems += set_problems(rules)
    if problems:
        raise RuleError("\n".join(problems))
    return sort_rules(rules)


_TABLE_HEADER = re.compile(r"^\s*\[\[\s*rule\s*\]\]")
_MATCH_HEADER = re.compile(r"^\s*\[\s*rule\.match\s*\]")


def _locator(path: Path, text: str, index: int) -> Callable[[str | None], str]:
    """`file:line` of the index-th [[rule]] table, or of one of its keys (in [rule.match] for match keys)."""
    lines = text.splitlines()
    headers = [number for number, line in enumerate(lines) if _TABLE_HEADER.match(line)]
    start = headers[index] if index < len(headers) else 0
    end = headers[index + 1] if index + 1 < len(headers) else len(lines)

    def locate(key: str | None) -> str:
        if key is not None:
            in_match = False
            for number in range(start, end):
                line = lines[number]
                if _MATCH_HEADER.match(line):
                    in_match = True
                    continue
                if re.match(rf"^\s*{re.escape(key)}\s*=", line) and (in_match or key not in _MATCH_KEYS):
                    return f"{path}:{number + 1}"
        return f"{path}:{start + 1}"

    return locate


class RuleSet(Sequence[Rule]):
    """Rules in matching order, indexed by literal text each one cannot match without (a subject screen's needles,
    else a body marker), so a mail is matched in full only against the rules whose text it holds. Build it once per
    set of rules (the pipeline does, when it loads them) and classify many mails with it."""

    def __init__(self, rules: Iterable[Rule]) -> None:
        self._rules = tuple(rules)
        self._always: list[int] = []  # rules with no text to index by: matched in full every time
        self._by_subject: dict[str, list[int]] = {}  # needle (in the subject as it is) → rules
        self._by_lowered: dict[str, list[int]] = {}  # needle (in the lowercased subject) → rules
        self._by_body: dict[str, list[int]] = {}  # casefolded body marker → rules
        for position, rule in enumerate(self._rules):
            if rule.screen is not None:
                index = self._by_lowered if rule.screen.lowered else self._by_subject
                keys: Iterable[str] = rule.screen.needles
            elif rule.folded_all:
                index, keys = self._by_body, rule.folded_all[:1]
            elif rule.folded_any:
                index, keys = self._by_body, rule.folded_any
            else:
                self._always.append(position)
                continue
            for key in keys:
                index.setdefault(key, []).append(position)

    @classmethod
    def of(cls, rules: Sequence[Rule]) -> RuleSet:
        """`rules` indexed, unless they already are."""
        return rules if isinstance(rules, RuleSet) else cls(rules)

    def __len__(self) -> int:
        return len(self._rules)

    def __getitem__(self, index: Any) -> Any:
        return self._rules[index]

    def __iter__(self) -> Iterator[Rule]:
        return iter(self._rules)

    def __repr__(self) -> str:
        return f"RuleSet({len(self._rules)} rules)"

    def candidates(self, subject: str, lowered: str, folded_body: str) -> list[Rule]:
        """The rules that may match, in matching order: a superset of those that do."""
        positions = set(self._always)
        for index, text in (
            (self._by_lowered, lowered),
            (self._by_subject, subject),
            (self._by_body, folded_body),
        ):
            for key, found in index.items():
                if key in text:
                    positions.update(found)
        return [self._rules[position] for position in sorted(positions)]


def classify(
    rules: Sequence[Rule], *, sender: str | None, sender_domain: str | None, subject: str, text: str
) -> Classification:
    """The first rule in matching order wins; every match is reported. No match: unclassified, queued."""
    ruleset = RuleSet.of(rules)
    folded, lowered = text.casefold(), subject.lower()
    sender, domain = (sender or "").lower(), (sender_domain or "").lower()
    suffixes = domain_suffixes(domain)
    matched = [
        r
        for r in ruleset.candidates(subject, lowered, folded)
        if r.matches(sender, suffixes, subject, lowered, folded)
    ]
    if not matched:
        return Classification(Category.UNCLASSIFIED, Action.QUEUE, None, "no rule matched")
    winner = matched[0]
    reason = f"rule {winner.id}"
    if len(matched) > 1:
        reason += f" (most urgent of {len(matched)} matching rules)"
    return Classification(
        winner.category,
        winner.action,
        winner.id,
        reason,
        tuple(r.id for r in matched),
        frozenset(r.category for r in matched),
    )
