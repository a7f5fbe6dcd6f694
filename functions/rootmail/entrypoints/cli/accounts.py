"""`rootmail accounts ...`: the accounts table and its sync from AWS Organizations, from an operator's shell.

Uses the shell's AWS credentials (profile, environment, SSO) like any AWS CLI; with AWS_ENDPOINT_URL set, boto3
sends the calls there instead (a moto server, for instance). The table comes from --table or
ROOTMAIL_ACCOUNTS_TABLE, the organisations (the role in each management account) from --organizations or
ROOTMAIL_ORGANIZATIONS.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from rootmail.domain.accounts import CONTACT_KINDS, IMPORTED, ContactOverride

_ACCOUNT_ID = re.compile(r"^\d{12}$")


def add_commands(commands: Any) -> None:
    accounts = commands.add_parser("accounts", help="the accounts table and its sync from AWS Organizations")
    sub = accounts.add_subparsers(dest="accounts_command", required=True, metavar="SUBCOMMAND")

    sync = sub.add_parser("sync", help="sync the accounts table from Organizations now")
    _table_option(sync)
    sync.add_argument(
        "--organizations",
        metavar="SPEC",
        help="the organisations to sync: role ARNs in their management accounts, comma-separated, or a JSON list "
        'of {"name", "roleArn", "externalId"} (default ROOTMAIL_ORGANIZATIONS; empty: this account\'s own)',
    )
    sync.add_argument("--dry-run", action="store_true", help="read and compare, write nothing")
    sync.add_argument(
        "--budget",
        type=int,
        metavar="N",
        help="read the contacts of at most N accounts this run (default: every account that needs it)",
    )
    sync.add_argument(
        "--all-contacts", action="store_true", help="re-read every active account's contacts, not a slice"
    )
    sync.add_argument(
        "--refresh",
        action="append",
        default=[],
        metavar="ID",
        help="re-read this account's contacts now (repeatable)",
    )
    sync.add_argument("--json", action="store_true", help="print the report as JSON")

    listing = sub.add_parser("list", help="the accounts in the table (active ones unless told otherwise)")
    _table_option(listing)
    which = listing.add_mutually_exclusive_group()
    which.add_argument("--inactive", action="store_true", help="only inactive accounts")
    which.add_argument("--all", action="store_true", help="active and inactive accounts")
    listing.add_argument("--json", action="store_true", help="one JSON object per account")
    listing.add_argument(
        "--source",
        nargs="?",
        const="",
        metavar="NAME",
        help="show where each account came from (its organisation, or imported); with NAME, only the accounts "
        "of that organisation (or `imported`)",
    )

    imports = sub.add_parser(
        "import",
        help="put accounts that no synced organisation lists into the table (the sync never deactivates them)",
        description="CSV with a header row, or a JSON list of objects: account_id, root_address, name, contacts, "
        "operations, security, billing, language. Every row is checked first; nothing is written unless the "
        "whole file is valid (or --partial).",
    )
    imports.add_argument("file", type=Path, metavar="FILE", help="a .csv or .json file")
    _table_option(imports)
    imports.add_argument("--partial", action="store_true", help="write the valid rows even if others are bad")
    imports.add_argument("--dry-run", action="store_true", help="check and compare, write nothing")
    imports.add_argument(
        "--format", choices=("csv", "json"), help="the file's format (default: from its extension)"
    )
    imports.add_argument("--json", action="store_true", help="print the report as JSON")

    show = sub.add_parser("show", help="one account: what Organizations says, the override, what mail uses")
    show.add_argument("target", metavar="ID|EMAIL")
    _table_option(show)
    show.add_argument("--json", action="store_true")

    override = sub.add_parser(
        "override", help="set operators' contact overrides from a file (they win over Organizations)"
    )
    override.add_argument(
        "file",
        type=Path,
        metavar="FILE",
        help='{"<account id>": {"contacts": [...], "security": [...], "language": "ja"}, "<id>": null (remove)}',
    )
    _table_option(override)
    override.add_argument("--dry-run", action="store_true")


def _table_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--table", help="the accounts table (default ROOTMAIL_ACCOUNTS_TABLE)")


def run(args: argparse.Namespace) -> int:
    from rootmail.bootstrap import Runtime
    from rootmail.config import get_settings, parse_organizations

    updates: dict[str, Any] = {"accounts_table": args.table} if args.table else {}
    if getattr(args, "organizations", None) is not None:
        try:
            updates["organizations"] = parse_organizations(args.organizations)
        except ValueError as exc:
            print(f"rootmail accounts sync: --organizations: {exc}", file=sys.stderr)
            return 2
    rt = Runtime(get_settings().model_copy(update=updates))
    command = args.accounts_command
    if command == "sync":
        return _sync(args, rt)
    if command == "list":
        return _list(args, rt)
    if command == "show":
        return _show(args, rt)
    if command == "import":
        return _import(args, rt)
    return _override(args, rt)


# ---- sync -----------------------------------------------------------------------------------------------------


class ProgressLine:
    """Progress on stderr: one line rewritten in place on a terminal, a line now and then otherwise. Several
    organisations report at once (their phases interleave): a new phase and a finished one are always shown, the rest
    only every `interval` (ten times that off a terminal)."""

    def __init__(self, stream: TextIO, interval: float = 0.25) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self.interval = interval
        self._last = 0.0
        self._phase = ""
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, phase: str, done: int, total: int) -> None:
        with self._lock:
            now = time.monotonic()
            finished = bool(total) and done == total
            new = phase not in self._seen
            wait = self.interval if self.tty else 10 * self.interval
            if not (new or finished or now - self._last >= wait):
                return
            text = (
                f"{phase}: {done:,}"
                + (f"/{total:,}" if total else "")
                + (" accounts" if phase.startswith("listing") else "")
            )
            if self.tty:
                print(f"\r  {text}\x1b[K", end="", file=self.stream, flush=True)
            else:
                print(f"  {text}", file=self.stream, flush=True)
            self._last, self._phase = now, phase
            self._seen.add(phase)

    def done(self) -> None:
        if self.tty and self._phase:
            print(file=self.stream, flush=True)


def _sync(args: argparse.Namespace, rt: Any) -> int:
    from rootmail.app.accounts_sync import options_from_settings, sync_accounts

    table = rt.accounts  # the table's name is checked before any call to Organizations
    options = options_from_settings(
        rt.settings,
        budget=args.budget,
        dry_run=args.dry_run,
        forced=tuple(args.refresh),
        **({"refresh_hours": 1} if args.all_contacts else {}),
    )
    progress = ProgressLine(sys.stderr)
    print(f"rootmail accounts sync → {table.table}" + (" (dry run)" if args.dry_run else ""), file=sys.stderr)
    organizations = rt.organizations()
    names = ", ".join(o.name for o in organizations)
    print(f"  organizations: {names}", file=sys.stderr)
    report = sync_accounts(organizations, table, options, now=datetime.now(UTC), progress=progress)
    progress.done()
    if args.json:
        print(json.dumps(report.to_dict(), ensure_ascii=False))
    else:
        for line in report.summary_lines():
            print(f"  {line}")
    return 1 if report.partial_failure else 0


# ---- list and show ----------------------------------------------------------------------------------------------


def _list(args: argparse.Namespace, rt: Any) -> int:
    accounts, overrides = rt.accounts.scan()
    shown = 0
    for account_id in sorted(accounts):
        stored = accounts[account_id]
        if (args.inactive and stored.active) or (not args.inactive and not args.all and not stored.active):
            continue
        if args.source and args.source not in (stored.organization, IMPORTED if stored.imported else None):
            continue
        account = stored.with_override(overrides.get(account_id))
        shown += 1
        if args.json:
            print(json.dumps(account.to_dict(), ensure_ascii=False))
            continue
        state = (
            "active"
            if account.active
            else f"inactive since {account.inactive_since} ({account.inactive_reason})"
        )
        where = f"  ({account.source})" if args.source is not None else ""
        print(
            f"{account.account_id}  {account.email}  {account.name or '-'}  [{account.language}]  {state}{where}\n"
            f"    contacts: {account.contacts.describe()}"
            + (f"  (from {account.contacts_from})" if account.contacts_from else "")
            + ("  [contacts not read yet]" if account.details_pending else "")
        )
    if not args.json and args.source is not None:
        sources = Counter(a.source for a in accounts.values())
        print("by source: " + ", ".join(f"{source} {n:,}" for source, n in sorted(sources.items())))
    if not args.json:
        active = sum(1 for a in accounts.values() if a.active)
        print(
            f"{shown:,} shown; the table holds {active:,} active and {len(accounts) - active:,} inactive accounts"
        )
    return 0


def _show(args: argparse.Namespace, rt: Any) -> int:
    table = rt.accounts
    target = args.target.strip()
    if _ACCOUNT_ID.match(target):
        stored = table.stored(target)
    else:
        found = table.by_email(target)
        stored = table.stored(found.account_id) if found else None
    if stored is None:
        print(f"rootmail accounts show: {target}: no such account in {table.table}", file=sys.stderr)
        return 1
    override = table.override(stored.account_id)
    effective = stored.with_override(override)
    if args.json:
        print(
            json.dumps(
                {
                    "stored": stored.to_dict(),
                    "override": override.to_entry() if override else None,
                    "effective": effective.to_dict(),
                },
                ensure_ascii=False,
            )
        )
        return 0
    lines = [
        f"account {stored.account_id} ({stored.name or '-'})",
        f"  root address    {stored.email}",
        f"  status          {stored.status}"
        + (
            f", inactive since {stored.inactive_since} ({stored.inactive_reason})"
            if stored.inactive_since
            else ""
        ),
        f"  language        {effective.language}",
        f"  source          {stored.source}",
    ]
    source = f"  (from {stored.contacts_from})" if stored.contacts_from else ""
    for number, kind in enumerate(CONTACT_KINDS):
        label = "contacts" if number == 0 else ""
        lines.append(f"  {label:<15} {kind + ':':<12}{', '.join(effective.contacts.of(kind)) or '-'}")
    lines.append(f"  {'':<15} {'':<12}{source.strip() or 'no contacts from Organizations'}")
    if override:
        entry = override.to_entry()
        lines.append(f"  override        {json.dumps(entry, ensure_ascii=False)} (wins over Organizations)")
    if stored.details_pending:
        lines.append("  contacts        not read from Organizations yet (the next sync reads them)")
    print("\n".join(lines))
    return 0


# ---- accounts from outside the synced organisations -----------------------------------------------------------


def _import(args: argparse.Namespace, rt: Any) -> int:
    from rootmail.app.accounts_import import import_accounts

    table = rt.accounts
    from rootmail.domain.imports import json_named

    json_format = args.format == "json" if args.format else json_named(args.file.name)
    try:
        text = args.file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        print(f"rootmail accounts import: cannot read {args.file}: {exc}", file=sys.stderr)
        return 2
    report = import_accounts(table, text, json_format=json_format, partial=args.partial, dry_run=args.dry_run)
    if args.json:
        print(json.dumps(report.to_dict(), ensure_ascii=False))
        return 0 if report.ok else 1
    for problem in report.problems:
        print(f"{args.file}:{problem.line}: {problem.message}", file=sys.stderr)
    counts = (
        f"{len(report.added):,} new, {len(report.updated):,} changed, {report.unchanged:,} unchanged "
        f"of {report.rows:,} row(s)"
    )
    if report.refused:
        print(
            f"rootmail accounts import: {len(report.problems):,} problem(s) in {args.file}: nothing written "
            "(fix them, or --partial to write the valid rows)",
            file=sys.stderr,
        )
    elif args.dry_run:
        print(f"dry run: would import into {table.table}: {counts}")
    else:
        print(f"imported into {table.table}: {counts}; {report.written:,} item(s) written")
        if report.write_failed:
            print(f"  not written: {', '.join(report.write_failed)} (run the import again)", file=sys.stderr)
    return 0 if report.ok else 1


# ---- overrides ----------------------------------------------------------------------------------------------------


def read_overrides(path: Path) -> dict[str, ContactOverride | None]:
    """A JSON object of account ID → contacts entry, or null to remove that account's override."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read overrides: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object of account ID → contacts entry")
    overrides: dict[str, ContactOverride | None] = {}
    for account_id, entry in data.items():
        if not _ACCOUNT_ID.match(account_id):
            raise ValueError(f"{path}: {account_id!r} is not a 12-digit account ID")
        try:
            overrides[account_id] = None if entry is None else ContactOverride.from_entry(account_id, entry)
        except ValueError as exc:
            raise ValueError(f"{path}: account {account_id}: {exc}") from None
    return overrides


def _override(args: argparse.Namespace, rt: Any) -> int:
    overrides = read_overrides(args.file)
    table = rt.accounts
    sets = {k: v for k, v in overrides.items() if v is not None}
    removals = [k for k, v in overrides.items() if v is None]
    verbs = ("would set", "would remove") if args.dry_run else ("set", "removed")
    if not args.dry_run:
        for override in sets.values():
            table.put_override(override)
        for account_id in removals:
            table.delete_override(account_id)
    print(f"{verbs[0]} {len(sets)} override(s) and {verbs[1]} {len(removals)} in {table.table}")
    unknown = [k for k in overrides if table.stored(k) is None]
    if unknown:
        print(f"  note: not (yet) in the table: {', '.join(unknown)}", file=sys.stderr)
    return 0
