"""The reviewed rule files against the live rules: what differs, and the live rules written back as files."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

SLACK_FILE = "from-slack.toml"  # where rules created in Slack go on `rules pull`


def canonical(rule: Mapping[str, Any]) -> str:
    return json.dumps(rule, ensure_ascii=False, sort_keys=True)


@dataclass
class RulesDiff:
    added: list[dict[str, Any]] = field(default_factory=list)
    changed: list[tuple[dict[str, Any], dict[str, Any]]] = field(default_factory=list)  # (live, file)
    removed: list[dict[str, Any]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.added or self.changed or self.removed)

    def lines(self) -> list[str]:
        """A readable diff: `+` a rule only in the files, `-` only live, `~` changed with the fields that differ."""
        out = [f"+ {r['id']}: {r['category']} → {r['action']} (priority {r['priority']})" for r in self.added]
        for live, proposed in self.changed:
            out.append(f"~ {proposed['id']}:")
            for key in sorted(set(live) | set(proposed)):
                if live.get(key) != proposed.get(key):
                    out.append(f"    {key}: {_show(live.get(key))} → {_show(proposed.get(key))}")
        out += [f"- {r['id']}: {r['category']} → {r['action']} (only live)" for r in self.removed]
        return out


def _show(value: Any) -> str:
    return "(none)" if value is None else json.dumps(value, ensure_ascii=False)


def diff_rules(files: Iterable[Mapping[str, Any]], live: Iterable[Mapping[str, Any]]) -> RulesDiff:
    """What pushing the files would change in the live rules."""
    proposed = {r["id"]: dict(r) for r in files}
    current = {r["id"]: dict(r) for r in live}
    result = RulesDiff()
    for rule_id in sorted(proposed):
        if rule_id not in current:
            result.added.append(proposed[rule_id])
        elif canonical(current[rule_id]) != canonical(proposed[rule_id]):
            result.changed.append((current[rule_id], proposed[rule_id]))
    result.removed = [current[i] for i in sorted(set(current) - set(proposed))]
    return result


def _toml_string(value: str, *, literal: bool = False) -> str:
    """A TOML string: a literal '...' for patterns when it can be (no backslash doubling), else a basic string
    (JSON's escapes are TOML's)."""
    if literal and "'" not in value and "\n" not in value and value.isprintable():
        return f"'{value}'"
    return json.dumps(value, ensure_ascii=False)


def _toml_list(values: Iterable[str]) -> str:
    return "[" + ", ".join(_toml_string(v) for v in values) + "]"


def render_rule_file(rules: Iterable[Mapping[str, Any]], header: str = "") -> str:
    """Rules as a rule file: `[[rule]]` tables in a stable order, readable and loadable by `load_rule_files`."""
    parts = [header.rstrip() + "\n"] if header.strip() else []
    for rule in sorted(rules, key=lambda r: (-int(r.get("priority", 100)), r["id"])):
        lines = ["[[rule]]", f"id = {_toml_string(rule['id'])}"]
        if rule.get("description"):
            lines.append(f"description = {_toml_string(rule['description'])}")
        lines.append(f"priority = {int(rule.get('priority', 100))}")
        lines.append(f"category = {_toml_string(rule['category'])}")
        lines.append(f"action = {_toml_string(rule['action'])}")
        if rule.get("force"):
            lines.append("force = true")
        lines.append("[rule.match]")
        match = rule.get("match") or {}
        for key in ("senders", "sender_domains"):
            if match.get(key):
                lines.append(f"{key} = {_toml_list(match[key])}")
        if match.get("subject"):
            lines.append(f"subject = {_toml_string(match['subject'], literal=True)}")
        for key in ("body_any", "body_all"):
            if match.get(key):
                lines.append(f"{key} = {_toml_list(match[key])}")
        parts.append("\n".join(lines) + "\n")
    return "\n".join(parts)


def leading_comments(text: str) -> str:
    """A rule file's opening comment block, kept when `rules pull` rewrites the file."""
    kept: list[str] = []
    for line in text.splitlines():
        if line.startswith("#") or (not line.strip() and kept):
            kept.append(line)
        else:
            break
    return "\n".join(kept).rstrip()
