"""What a set of rules would do to given mails, next to what the rules in force do: the engine behind
`rootmail rules test` and the Slack rule modal. It decides each mail with the pipeline's own `decide` (authenticity,
the credential guard, the account check included), so its counts are what triage then does."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from rootmail.domain.authenticity import assess
from rootmail.domain.mail.model import ParsedMail
from rootmail.domain.routing import Resolution
from rootmail.domain.rules.index import RuleSet
from rootmail.domain.rules.model import Rule
from rootmail.domain.triage import Decision, decide
from rootmail.domain.vocabulary import Category

UNCLASSIFIED = str(Category.UNCLASSIFIED)


@dataclass(frozen=True)
class PreviewMail:
    mail_id: str
    mail: ParsedMail
    resolution: Resolution
    accounts_checked: bool = True


@dataclass(frozen=True)
class Change:
    mail_id: str
    subject: str
    before: Decision
    after: Decision

    def to_dict(self) -> dict[str, Any]:
        return {
            "mail_id": self.mail_id,
            "subject": self.subject,
            "before": self.before.to_dict(),
            "after": self.after.to_dict(),
        }


@dataclass
class Preview:
    mails: int = 0
    taken_now: Counter[str] = field(default_factory=Counter)  # rule → mails it takes with the rules in force
    taken: Counter[str] = field(default_factory=Counter)  # rule → mails it would take with the proposed rules
    changes: list[Change] = field(default_factory=list)  # category or action differ
    newly_unclassified: list[Change] = field(default_factory=list)
    outcomes: dict[str, Decision] = field(default_factory=dict)  # mail → the proposed rules' decision

    def to_dict(self) -> dict[str, Any]:
        return {
            "mails": self.mails,
            "rules": {
                rule: {"now": self.taken_now.get(rule, 0), "proposed": self.taken.get(rule, 0)}
                for rule in sorted(set(self.taken) | set(self.taken_now))
            },
            "changes": [c.to_dict() for c in self.changes],
            "newly_unclassified": [c.mail_id for c in self.newly_unclassified],
            "outcomes": {m: d.to_dict() for m, d in self.outcomes.items()},
        }

    def lines(self, *, limit: int = 50) -> list[str]:
        out = [f"{self.mails} mail(s) decided with the rules in force and with the proposed rules", ""]
        out.append(f"  {'rule':<40} {'now':>6} {'proposed':>9}")
        for rule in sorted(set(self.taken) | set(self.taken_now), key=lambda r: (-self.taken[r], r)):
            marker = "" if self.taken_now[rule] == self.taken[rule] else "  *"
            out.append(f"  {rule:<40} {self.taken_now[rule]:>6} {self.taken[rule]:>9}{marker}")
        out.append("")
        out.append(f"{len(self.changes)} mail(s) would change category or action:")
        for change in self.changes[:limit]:
            before, after = change.before, change.after
            out.append(
                f"  {change.mail_id}: {before.category}/{before.action} ({before.rule_id or '-'}) → "
                f"{after.category}/{after.action} ({after.rule_id or '-'})  {change.subject[:80]}"
            )
        if len(self.changes) > limit:
            out.append(f"  … and {len(self.changes) - limit} more (--json lists them all)")
        out.append(f"{len(self.newly_unclassified)} mail(s) would become unclassified")
        for change in self.newly_unclassified[:limit]:
            out.append(f"  {change.mail_id}: was {change.before.category} ({change.before.rule_id})")
        return out


NO_RULE = "(no rule: unclassified)"


def preview(
    mails: Iterable[PreviewMail],
    current: Sequence[Rule],
    proposed: Sequence[Rule],
    aws_sender_domains: Sequence[str],
) -> Preview:
    result = Preview()
    current, proposed = RuleSet.of(current), RuleSet.of(proposed)  # indexed once, not per mail
    for item in mails:
        authenticity = assess(item.mail, aws_sender_domains)
        before = decide(
            item.mail, authenticity, item.resolution, current, accounts_checked=item.accounts_checked
        )
        after = decide(
            item.mail, authenticity, item.resolution, proposed, accounts_checked=item.accounts_checked
        )
        result.mails += 1
        result.taken_now[before.rule_id or NO_RULE] += 1
        result.taken[after.rule_id or NO_RULE] += 1
        result.outcomes[item.mail_id] = after
        if (before.category, before.action) != (after.category, after.action):
            change = Change(item.mail_id, item.mail.subject, before, after)
            result.changes.append(change)
            if str(after.category) == UNCLASSIFIED and str(before.category) != UNCLASSIFIED:
                result.newly_unclassified.append(change)
    return result
