"""Rule files (reviewed TOML under rules/): loading them with file and line in every error, diffing them
against the live rules, and writing them back.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rootmail.domain.rules.model import _MATCH_KEYS, Rule, compile_rule
from rootmail.domain.rules.sets import set_problems, sort_rules
from rootmail.errors import RuleError


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
