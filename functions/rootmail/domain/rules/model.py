"""A rule as the pipeline uses it: validated and compiled once from its TOML or table form, then matched
against parsed mail with no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from rootmail.domain.rules.patterns import PatternRefused, SubjectPattern, compile_subject
from rootmail.domain.rules.screen import SubjectScreen, subject_screen
from rootmail.domain.vocabulary import Action, Category
from rootmail.errors import RuleError

_RULE_ID = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")
_MATCH_KEYS = {"senders", "sender_domains", "subject", "body_any", "body_all"}
_RULE_KEYS = {"id", "description", "priority", "category", "action", "match", "force"}
MAX_CLASSIFIED_SUBJECT = 1000  # characters: AWS's subjects are a few hundred at most


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
class Rule:
    id: str
    category: Category
    action: Action
    priority: int = 100
    description: str = ""
    senders: frozenset[str] = frozenset()
    sender_domains: tuple[str, ...] = ()
    subject: SubjectPattern | None = None
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
            object.__setattr__(self, "screen", subject_screen(self.subject.pattern))

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
            if not self.subject.found_in(subject):
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


def domain_in(domain: str, domains: Sequence[str]) -> bool:
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
        try:
            subject = compile_subject(match["subject"])
        except PatternRefused as exc:
            raise fail(f"`match.subject` {exc}", "subject") from None
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
        and (subject is None or all(subject.found_in(probe) for probe in _PROBE_SUBJECTS if probe))
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
