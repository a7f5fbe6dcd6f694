"""Classification: the rule set indexed by the literal text its rules need, and the one decision of a mail's
category and action from it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import re2

from rootmail.domain.rules.model import MAX_CLASSIFIED_SUBJECT, Classification, Rule, domain_suffixes
from rootmail.domain.vocabulary import Action, Category


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
        self._needles = tuple(
            _Needles(index) for index in (self._by_lowered, self._by_subject, self._by_body)
        )

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
        for needles, text in zip(self._needles, (lowered, subject, folded_body), strict=True):
            needles.add_found(text, positions)
        return [self._rules[position] for position in sorted(positions)]


class _Needles:
    """Literal texts, each with the rules it stands for, all looked for in one pass over a text: an RE2 set of
    byte strings, which finds any number of literals in time linear in the text (a substring search per needle
    would read the body once per rule)."""

    def __init__(self, index: dict[str, list[int]]) -> None:
        self._needles = list(index)
        self._rules = list(index.values())
        self._set: Any = None
        if not index:
            return
        options = re2.Options()
        # Bytes against bytes: each needle's UTF-8 is found in the text's UTF-8 exactly where the needle is in the
        # text (UTF-8 is self-synchronising), with no reading of either as characters.
        options.encoding = re2.Options.Encoding.LATIN1
        options.never_capture = True
        options.log_errors = False
        options.max_mem = _SET_MEMORY
        needles = re2.Set.SearchSet(options)
        try:
            for needle in index:
                needles.Add(re2.escape(needle.encode("utf-8", "surrogatepass")))
            needles.Compile()
        except re2.error:
            return  # more needles than the set's memory holds: each is looked for on its own, slower but the same
        self._set = needles

    def add_found(self, text: str, positions: set[int]) -> None:
        """Add to `positions` the rules of every needle `text` holds."""
        if self._set is not None:
            found: Iterable[int] = self._set.Match(text.encode("utf-8", "surrogatepass")) or ()
        else:
            found = (number for number, needle in enumerate(self._needles) if needle in text)
        for number in found:
            positions.update(self._rules[number])


# RE2's budget for a set's automaton, which RE2 builds as it reads and, when the budget is full, clears and builds
# again: slower, never wrong, as a set's search cannot fall back and so never gives up (RE2's DFA, kManyMatch). A set
# whose first states do not fit is refused by Compile (it runs a search to see), and its needles are then looked for
# one by one. The automaton has at most a state per byte of needle: 16 MiB holds a few thousand rules' needles.
_SET_MEMORY = 16 << 20


def classify(
    rules: Sequence[Rule], *, sender: str | None, sender_domain: str | None, subject: str, text: str
) -> Classification:
    """The first rule in matching order wins; every match is reported. No match: unclassified, queued. Subject
    patterns see the subject's first MAX_CLASSIFIED_SUBJECT characters: RE2 is linear in the text, but an operator's
    pattern of wide counted repeats costs tens of microseconds a character, and a forged subject can be long."""
    ruleset = RuleSet.of(rules)
    subject = subject[:MAX_CLASSIFIED_SUBJECT]
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
