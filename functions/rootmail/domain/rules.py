"""Rules: named, prioritised matches on sender, subject and body markers that give a mail its category and action.

Rules are data (reviewed TOML files under rules/, and the live rules table); this module validates and compiles them
once, then matches parsed mail with no I/O.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rootmail.domain.vocabulary import Action, Category, urgency
from rootmail.errors import RuleError

_RULE_ID = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")
_MATCH_KEYS = {"senders", "sender_domains", "subject", "body_any", "body_all"}
_RULE_KEYS = {"id", "description", "priority", "category", "action", "match"}


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
    body_any: tuple[str, ...] = ()
    body_all: tuple[str, ...] = ()
    source: str = ""  # where the rule came from: "rules/support.toml" or "table"

    def matches(self, sender: str, sender_domain: str, subject: str, folded_body: str) -> bool:
        if (self.senders or self.sender_domains) and not (
            sender in self.senders or _domain_in(sender_domain, self.sender_domains)
        ):
            return False
        if self.subject is not None and self.subject.search(subject) is None:
            return False
        if self.body_all and not all(marker in folded_body for marker in self.body_all):
            return False
        return not self.body_any or any(marker in folded_body for marker in self.body_any)

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
        return {
            "id": self.id,
            "description": self.description,
            "priority": self.priority,
            "category": str(self.category),
            "action": str(self.action),
            "match": match,
        }


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


def _domain_in(domain: str, domains: Sequence[str]) -> bool:
    return any(domain == d or domain.endswith("." + d) for d in domains)


def compile_rule(data: dict[str, Any], source: str) -> Rule:
    """Validate one rule's data and compile it. Errors name the source and the rule."""
    rule_id = data.get("id")
    where = f"{source}: rule {rule_id!r}" if rule_id else f"{source}: a rule without an id"

    def fail(problem: str) -> RuleError:
        return RuleError(f"{where}: {problem}")

    if not isinstance(rule_id, str) or not _RULE_ID.match(rule_id):
        raise fail("`id` must be lowercase letters, digits and dashes (2-63 characters)")
    unknown = set(data) - _RULE_KEYS
    if unknown:
        raise fail(f"unknown field(s) {sorted(unknown)}; allowed: {sorted(_RULE_KEYS)}")
    try:
        category = Category(str(data.get("category")))
    except ValueError:
        raise fail(
            f"unknown category {data.get('category')!r}; known: {[str(c) for c in Category]}"
        ) from None
    try:
        action = Action(str(data.get("action")))
    except ValueError:
        raise fail(f"unknown action {data.get('action')!r}; known: {[str(a) for a in Action]}") from None
    priority = data.get("priority", 100)
    if not isinstance(priority, int) or isinstance(priority, bool) or not 0 <= priority <= 1000:
        raise fail("`priority` must be a whole number from 0 to 1000")
    match = data.get("match")
    if not isinstance(match, dict) or not match:
        raise fail("`match` must be a table with at least one condition")
    unknown = set(match) - _MATCH_KEYS
    if unknown:
        raise fail(f"unknown match condition(s) {sorted(unknown)}; allowed: {sorted(_MATCH_KEYS)}")

    def strings(key: str) -> tuple[str, ...]:
        value = match.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            raise fail(f"`match.{key}` must be a list of non-empty strings")
        return tuple(value)

    subject = None
    if "subject" in match:
        if not isinstance(match["subject"], str) or not match["subject"]:
            raise fail("`match.subject` must be a non-empty regular expression")
        try:
            subject = re.compile(match["subject"])
        except re.error as exc:
            raise fail(f"`match.subject` does not compile: {exc}") from None
    body_any, body_all = strings("body_any"), strings("body_all")
    if action == Action.FORWARD and subject is None and not body_any and not body_all:
        # A sender-only forward rule would forward every unknown mail from that sender: never a catch-all.
        raise fail("a forward rule needs a subject pattern or body markers, not only a sender")
    return Rule(
        id=rule_id,
        category=category,
        action=action,
        priority=priority,
        description=str(data.get("description", "")),
        senders=frozenset(s.lower() for s in strings("senders")),
        sender_domains=tuple(d.lower().lstrip(".") for d in strings("sender_domains")),
        subject=subject,
        body_any=tuple(m.casefold() for m in body_any),
        body_all=tuple(m.casefold() for m in body_all),
        source=source,
    )


def compile_rules(items: Iterable[tuple[dict[str, Any], str]]) -> list[Rule]:
    """Compile (data, source) pairs; refuse duplicate ids. Returned in matching order."""
    rules: list[Rule] = []
    seen: dict[str, str] = {}
    for data, source in items:
        rule = compile_rule(data, source)
        if rule.id in seen:
            raise RuleError(f"{source}: rule {rule.id!r} is defined twice (also in {seen[rule.id]})")
        seen[rule.id] = source
        rules.append(rule)
    return sort_rules(rules)


def sort_rules(rules: Iterable[Rule]) -> list[Rule]:
    # Most urgent category first, then higher priority, then id: the first match wins, deterministically.
    return sorted(rules, key=lambda r: (urgency(r.category), -r.priority, r.id))


def load_rule_files(directory: Path) -> list[Rule]:
    """Read every *.toml under `directory`: each holds `[[rule]]` tables."""
    files = sorted(directory.glob("*.toml"))
    if not files:
        raise RuleError(f"{directory}: no rule files (*.toml) found")
    items: list[tuple[dict[str, Any], str]] = []
    for path in files:
        try:
            document = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise RuleError(f"{path}: not valid TOML: {exc}") from None
        entries = document.get("rule", [])
        if not isinstance(entries, list) or set(document) - {"rule"}:
            raise RuleError(f"{path}: a rule file holds only [[rule]] tables")
        items.extend((entry, str(path)) for entry in entries)
    return compile_rules(items)


def classify(
    rules: Sequence[Rule], *, sender: str | None, sender_domain: str | None, subject: str, text: str
) -> Classification:
    """The first rule in matching order wins; every match is reported. No match: unclassified, queued."""
    folded = text.casefold()
    sender, domain = (sender or "").lower(), (sender_domain or "").lower()
    matched = [r for r in rules if r.matches(sender, domain, subject, folded)]
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
