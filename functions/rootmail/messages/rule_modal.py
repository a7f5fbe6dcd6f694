"""The rule modal: a rule prefilled from a digest pattern, read back from what the operator submitted, and the
message that says it was saved (with what a retry would do)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from rootmail.domain.digest import subject_regex
from rootmail.domain.signals import SUGGESTED_ACTION
from rootmail.domain.vocabulary import Action, Category
from rootmail.messages.blocks import RETRY_PATTERN, RULE_MODAL, button, context, inline, section
from rootmail.messages.operator_texts import texts


def _input(block_id: str, label: str, element: dict[str, Any], *, optional: bool = False) -> dict[str, Any]:
    return {
        "type": "input",
        "block_id": block_id,
        "label": {"type": "plain_text", "text": label},
        "element": {**element, "action_id": "value"},
        "optional": optional,
    }


def _text_input(initial: str | None = None, *, multiline: bool = False) -> dict[str, Any]:
    element: dict[str, Any] = {"type": "plain_text_input", "multiline": multiline}
    if initial:
        element["initial_value"] = initial[:3000]
    return element


def _select(options: Iterable[str], initial: str | None) -> dict[str, Any]:
    choices = [{"text": {"type": "plain_text", "text": o}, "value": o} for o in options]
    element: dict[str, Any] = {"type": "static_select", "options": choices}
    chosen = next((c for c in choices if c["value"] == initial), None)
    if chosen:
        element["initial_option"] = chosen
    return element


def rule_modal(reference: dict[str, Any], *, channel: str, language: str) -> dict[str, Any]:
    """A modal prefilled from a digest pattern: the sender and a subject pattern that takes every mail of it."""
    t = texts(language)
    pattern_id = str(reference.get("id", ""))
    categories = [str(c) for c in Category if c != Category.UNCLASSIFIED]
    actions = [str(a) for a in Action if a != Action.QUEUE]
    suggested = str(reference.get("suggested") or "")
    suggested = suggested if suggested in categories else ""
    action = SUGGESTED_ACTION.get(Category(suggested), Action.FORWARD) if suggested else Action.FORWARD
    intro = t["modal_intro"].format(
        id=pattern_id,
        count=reference.get("count", 0),
        subject=inline(str(reference.get("sample") or ""), 150),
    )
    if suggested:
        intro += "\n" + t["suggested"].format(
            category=suggested, why=inline(str(reference.get("why") or ""), 150)
        )
    return {
        "type": "modal",
        "callback_id": RULE_MODAL,
        "private_metadata": json.dumps({"pattern": pattern_id, "channel": channel}),
        "title": {"type": "plain_text", "text": t["modal_title"][:24]},
        "submit": {"type": "plain_text", "text": t["modal_submit"]},
        "close": {"type": "plain_text", "text": t["modal_close"]},
        "blocks": [
            context(intro),
            _input("rule_id", t["field_id"], _text_input(f"queued-{pattern_id}")),
            _input("description", t["field_description"], _text_input(), optional=True),
            _input("category", t["field_category"], _select(categories, suggested or None)),
            _input("action", t["field_action"], _select(actions, str(action))),
            _input("sender", t["field_sender"], _text_input(reference.get("sender")), optional=True),
            _input(
                "subject",
                t["field_subject"],
                _text_input(
                    subject_regex(
                        str(reference.get("pattern") or ""), whole=bool(reference.get("whole", True))
                    )
                ),
            ),
            _input("priority", t["field_priority"], _text_input("100")),
        ],
    }


def rule_from_modal(values: dict[str, Any]) -> dict[str, Any]:
    """The rule data an operator submitted in the modal (validated by the rules engine afterwards)."""

    def value(block: str) -> str:
        element = values.get(block, {}).get("value", {})
        if element.get("type") == "static_select":
            return str((element.get("selected_option") or {}).get("value") or "")
        return str(element.get("value") or "").strip()

    match: dict[str, Any] = {}
    if value("sender"):
        match["senders"] = [value("sender").lower()]
    if value("subject"):
        match["subject"] = value("subject")
    priority_text = value("priority") or "100"
    return {
        "id": value("rule_id"),
        "description": value("description") or "created in Slack from a digest pattern",
        "priority": int(priority_text) if priority_text.isdigit() else priority_text,
        "category": value("category"),
        "action": value("action"),
        "match": match,
    }


def rule_saved(
    rule: dict[str, Any],
    *,
    who: str,
    pattern: str,
    count: int,
    language: str,
    effect: dict[str, Any] | None = None,
) -> tuple[str, list[dict[str, Any]]]:
    t = texts(language)
    text = t["rule_saved"].format(
        rule=rule["id"],
        who=who,
        category=rule["category"],
        action=rule["action"],
        count=count,
        pattern=pattern,
    )
    if effect is not None:
        actions = ", ".join(f"{n} {a}" for a, n in sorted(effect["actions"].items())) or "-"
        text += " " + t["rule_preview"].format(
            taken=effect["taken"], sampled=effect["sampled"], actions=actions
        )
    blocks = [section(text)]
    if count:
        blocks.append(
            {
                "type": "actions",
                "block_id": f"saved-{pattern}",
                "elements": [button(t["retry_these"], RETRY_PATTERN, pattern, primary=True)],
            }
        )
    return text, blocks
