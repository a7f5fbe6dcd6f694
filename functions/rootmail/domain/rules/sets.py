"""A set of rules as a whole: compiled together, sorted by urgency and priority, and checked for ties and
twins that would leave a mail's outcome to rule IDs.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from rootmail.domain.rules.model import Rule, compile_rule, domain_in
from rootmail.domain.vocabulary import urgency
from rootmail.errors import RuleError


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
        if any(domain_in(s.rpartition("@")[2], b.sender_domains) for s in a.senders):
            return True
    return any(
        domain_in(d, other.sender_domains) or domain_in(e, one.sender_domains)
        for d in one.sender_domains
        for e in other.sender_domains
    )


def sort_rules(rules: Iterable[Rule]) -> list[Rule]:
    # Most urgent category first, then higher priority, then id: the first match wins, deterministically.
    return sorted(rules, key=lambda r: (urgency(r.category), -r.priority, r.id))
