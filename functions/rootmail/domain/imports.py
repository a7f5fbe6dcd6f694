"""Accounts in no organisation the provider syncs (a customer's own organisation, a standalone account) whose root
mail still comes to the provider's domain: read from an operator's file, checked row by row, and planned against
the accounts table.

The file is CSV with a header row, or a JSON list of objects, with the same fields:
  account_id    the 12-digit account ID (required)
  root_address  the account's root address (required)
  name          a name for people (optional)
  contacts      addresses for every kind of notice, separated by spaces, commas or `;` (a list in JSON)
  operations, security, billing   addresses for that kind only (they win over `contacts` for it)
  language      en or ja (default en)

A problem is reported with the line it is on. An account an organisation lists is not imported (the organisation is
its source; operators set its contacts with an override), nor an account whose root address another account has.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rootmail.domain.accounts import (
    CONTACT_KINDS,
    DEFAULT_LANGUAGE,
    LEFT_ORGANIZATION,
    Account,
    parse_contacts_entry,
    valid_address,
)

FIELDS: tuple[str, ...] = ("account_id", "root_address", "name", "contacts", *CONTACT_KINDS, "language")
REQUIRED: tuple[str, ...] = ("account_id", "root_address")
IMPORT_SOURCE = "import"
_ACCOUNT_ID = re.compile(r"[0-9]{12}")


@dataclass(frozen=True)
class Problem:
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


@dataclass(frozen=True)
class ImportRow:
    line: int
    account: Account


def json_named(file_name: str) -> bool:
    """Whether a file is read as JSON (rather than CSV), by its name."""
    return file_name.lower().endswith(".json")


def read_rows(text: str, *, json_format: bool) -> tuple[list[tuple[int, dict[str, Any]]], list[Problem]]:
    """The file's rows with the line each starts on; what cannot be read at all is a problem on its line."""
    return _json_rows(text) if json_format else _csv_rows(text)


def _csv_rows(text: str) -> tuple[list[tuple[int, dict[str, Any]]], list[Problem]]:
    # strict: an unterminated quote is an error on its line, never the rest of the file swallowed into one field
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff"), newline=""), strict=True)
    try:
        header = next(reader)
    except StopIteration:
        return [], [Problem(1, "the file is empty: expected a header row")]
    except csv.Error as exc:
        return [], [Problem(1, f"not CSV: {exc}")]
    names = [h.strip().lower() for h in header]
    problems = [
        Problem(1, f"unknown column {h!r}: expected {', '.join(FIELDS)}") for h in names if h not in FIELDS
    ]
    problems += [Problem(1, f"column {h!r} twice") for h in sorted({h for h in names if names.count(h) > 1})]
    missing = [f for f in REQUIRED if f not in names]
    if missing:
        problems.append(Problem(1, f"missing column(s) {', '.join(missing)}"))
    if problems:
        return [], problems
    rows: list[tuple[int, dict[str, Any]]] = []
    line = reader.line_num + 1
    while True:
        try:
            values = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            problems.append(Problem(line, f"not CSV: {exc}"))
            break
        if any(v.strip() for v in values):
            if reader.line_num > line and any("\n" in v for v in values):
                # A value over several lines is an unterminated quote far more often than a name with a newline.
                problems.append(Problem(line, f"a quoted value runs over lines {line}–{reader.line_num}"))
            elif len(values) > len(names):
                problems.append(Problem(line, f"{len(values)} values for {len(names)} columns"))
            else:
                rows.append((line, dict(zip(names, values, strict=False))))
        line = reader.line_num + 1
    return rows, problems


def _json_rows(text: str) -> tuple[list[tuple[int, dict[str, Any]]], list[Problem]]:
    """A JSON list, read one element at a time so each row knows its line."""
    decoder = json.JSONDecoder(object_pairs_hook=_fields)
    text = text.lstrip("\ufeff")
    lines = _Lines(text)
    position = _skip_space(text, 0)
    if position >= len(text) or text[position] != "[":
        return [], [Problem(lines.at(position), "expected a JSON list of account objects")]
    position += 1
    rows: list[tuple[int, dict[str, Any]]] = []
    problems: list[Problem] = []
    while True:
        position = _skip_space(text, position)
        if position < len(text) and text[position] == "]":
            break
        try:
            value, end = decoder.raw_decode(text, position)
        except (ValueError, RecursionError) as exc:
            return rows, [*problems, Problem(lines.at(position), f"not JSON: {exc}")]
        if isinstance(value, dict):
            rows.append((lines.at(position), value))
        else:
            problems.append(
                Problem(lines.at(position), "expected an object with account_id and root_address")
            )
        position = _skip_space(text, end)
        if position < len(text) and text[position] == ",":
            position += 1
        elif position >= len(text) or text[position] != "]":
            return rows, [*problems, Problem(lines.at(position), "expected ',' or ']' after an account")]
    if text[position + 1 :].strip():
        problems.append(Problem(lines.at(position + 1), "text after the list's end"))
    return rows, problems


class _Fields(dict[str, Any]):
    """A JSON object's fields, and those it gives more than once (CSV refuses a column twice too)."""

    repeated: tuple[str, ...] = ()


def _fields(pairs: list[tuple[str, Any]]) -> _Fields:
    fields = _Fields(pairs)
    keys = [key for key, _ in pairs]
    fields.repeated = tuple(sorted({key for key in keys if keys.count(key) > 1}))
    return fields


def _skip_space(text: str, position: int) -> int:
    while position < len(text) and text[position] in " \t\r\n":
        position += 1
    return position


class _Lines:
    """The line of a position in the text, counted on from the last one asked (positions only grow)."""

    def __init__(self, text: str) -> None:
        self._text, self._position, self._line = text, 0, 1

    def at(self, position: int) -> int:
        self._line += self._text.count("\n", self._position, position)
        self._position = position
        return self._line


def parse_rows(rows: Sequence[tuple[int, Mapping[str, Any]]]) -> tuple[list[ImportRow], list[Problem]]:
    """Each row checked on its own and against the rows before it (an account or root address twice)."""
    accepted: list[ImportRow] = []
    problems: list[Problem] = []
    ids: dict[str, int] = {}
    addresses: dict[str, int] = {}
    for line, row in rows:
        try:
            account = _account(row)
        except ValueError as exc:
            problems.append(Problem(line, str(exc)))
            continue
        if account.account_id in ids:
            problems.append(
                Problem(line, f"account {account.account_id} again (first on line {ids[account.account_id]})")
            )
            continue
        if account.email in addresses:
            problems.append(
                Problem(
                    line, f"root address {account.email} again (first on line {addresses[account.email]})"
                )
            )
            continue
        ids[account.account_id], addresses[account.email] = line, line
        accepted.append(ImportRow(line, account))
    return accepted, problems


def _account(row: Mapping[str, Any]) -> Account:
    repeated = getattr(row, "repeated", ())
    if repeated:
        raise ValueError(f"field(s) given twice: {', '.join(repeated)}")
    unknown = sorted(set(row) - set(FIELDS))
    if unknown:
        raise ValueError(f"unknown field(s) {', '.join(unknown)}: expected {', '.join(FIELDS)}")
    for key in ("account_id", "root_address", "name", "language"):
        if row.get(key) is not None and not isinstance(row[key], str):
            raise ValueError(f"{key}: expected text, not {_kind(row[key])}")
    for key in ("contacts", *CONTACT_KINDS):
        value = row.get(key)
        listed = isinstance(value, list) and all(isinstance(v, str) for v in value)
        if value is not None and not isinstance(value, str) and not listed:
            raise ValueError(f"{key}: expected addresses (text, or a list of text)")
    account_id = _text(row.get("account_id"))
    if not _ACCOUNT_ID.fullmatch(account_id):
        raise ValueError(f"account_id {account_id!r} is not a 12-digit account ID")
    address = _text(row.get("root_address")).lower()
    if not valid_address(address):
        raise ValueError(f"root_address {address!r} is not an e-mail address")
    entry = {
        key: value
        for key in ("contacts", *CONTACT_KINDS, "language")
        if (value := row.get(key)) not in (None, "", [])
    }
    contacts, language = parse_contacts_entry(entry)
    return Account(
        account_id=account_id,
        email=address,
        name=_text(row.get("name")),
        contacts=contacts,
        language=language or DEFAULT_LANGUAGE,
        contacts_from=IMPORT_SOURCE if contacts else "",
        imported=True,
    )


def _kind(value: Any) -> str:
    """What a JSON value is, in JSON's words."""
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    return (
        "an object"
        if isinstance(value, dict)
        else "a list"
        if isinstance(value, list)
        else type(value).__name__
    )


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


@dataclass(frozen=True)
class ImportPlan:
    added: tuple[Account, ...] = ()
    updated: tuple[Account, ...] = ()
    unchanged: int = 0

    @property
    def writes(self) -> tuple[Account, ...]:
        return (*self.added, *self.updated)


def plan_import(
    rows: Sequence[ImportRow], current: Mapping[str, Account]
) -> tuple[ImportPlan, list[Problem]]:
    """What the rows change in the table: new imported accounts, imported accounts whose row differs, and accounts
    that left the synced organisations (a customer took its account to an organisation of its own). An account an
    organisation has, or a root address another account still holds (a suspended account's too), is a problem on
    its row."""
    owners = {a.email: a for a in current.values() if a.holds_address}
    added: list[Account] = []
    updated: list[Account] = []
    unchanged = 0
    problems: list[Problem] = []
    for row in rows:
        account = row.account
        before = current.get(account.account_id)
        if before is not None and not before.imported and before.inactive_reason != LEFT_ORGANIZATION:
            where = f"organization {before.organization}" if before.organization else "an organization"
            problems.append(
                Problem(
                    row.line,
                    f"account {account.account_id} is synced from {where}: not imported "
                    "(set its contacts with `rootmail accounts override`)",
                )
            )
            continue
        owner = owners.get(account.email)
        if owner is not None and owner.account_id != account.account_id:
            problems.append(
                Problem(row.line, f"root address {account.email} belongs to account {owner.account_id}")
            )
            continue
        if before is None:
            added.append(account)
        elif account != before:
            updated.append(account)
        else:
            unchanged += 1
    return ImportPlan(tuple(added), tuple(updated), unchanged), problems
