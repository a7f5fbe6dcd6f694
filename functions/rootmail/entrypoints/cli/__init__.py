"""The `rootmail` command."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from rootmail.domain.rules.files import load_rule_files
from rootmail.domain.rules.index import RuleSet
from rootmail.entrypoints.cli.accounts import add_commands as add_accounts_commands
from rootmail.entrypoints.cli.rules import add_commands as add_rules_commands
from rootmail.entrypoints.cli.slack import add_commands as add_slack_commands
from rootmail.errors import RootmailError

if TYPE_CHECKING:
    from rootmail.app.audit import Finding

DEFAULT_RULES = Path("rules")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rootmail", description="Triage of the mail AWS sends to root addresses."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    triage = commands.add_parser("triage", help="classify mail files offline (no AWS)")
    triage.add_argument("files", nargs="+", type=Path, metavar="FILE")
    triage.add_argument(
        "--rules", type=Path, default=DEFAULT_RULES, metavar="DIR", help="rule files (default: rules/)"
    )
    triage.add_argument(
        "--accounts",
        type=Path,
        metavar="FILE",
        help="JSON array of Organizations ListAccounts items (Id, Email, ...)",
    )
    triage.add_argument("--json", action="store_true", help="one JSON object per file, one per line")

    demo = commands.add_parser("demo", help="run the whole pipeline locally on the emulator")
    demo.add_argument("--mail-dir", type=Path, default=Path("tests/corpus"), metavar="DIR")
    demo.add_argument(
        "--accounts",
        type=Path,
        metavar="FILE",
        help="seeds the local organisations (ListAccounts shape: each item's ARN names its organisation)",
    )
    demo.add_argument(
        "--import",
        dest="imported",
        type=Path,
        metavar="FILE",
        help="accounts in no organisation of the file, imported after the sync (default: imported-accounts.csv "
        "beside --accounts)",
    )
    demo.add_argument(
        "--contacts",
        type=Path,
        metavar="FILE",
        help="customer contacts per account (default: contacts.json beside --accounts)",
    )
    demo.add_argument("--rules", type=Path, default=DEFAULT_RULES, metavar="DIR")
    demo.add_argument("--report", type=Path, default=Path("build/demo-report.json"), metavar="FILE")

    add_rules_commands(commands)
    add_accounts_commands(commands)

    deliveries = commands.add_parser("deliveries", help="one delivery's record; settle one left unconfirmed")
    deliveries_commands = deliveries.add_subparsers(
        dest="deliveries_command", required=True, metavar="SUBCOMMAND"
    )
    for name, text in (
        ("show", "what the delivery guard holds for it"),
        ("confirm", "it arrived: record it as sent (a retry of the mail then skips it)"),
        ("resend", "it did not arrive: release it (a retry of the mail then sends it)"),
    ):
        sub = deliveries_commands.add_parser(name, help=text)
        sub.add_argument("delivery_id", metavar="ID", help="as the mail's queue reason names it")
        sub.add_argument(
            "--table", metavar="NAME", help="deliveries table (default: $ROOTMAIL_DELIVERIES_TABLE)"
        )
        if name != "show":
            sub.add_argument("--by", required=True, metavar="NAME", help="who (kept with the record)")

    audit = commands.add_parser("audit", help="every stored mail against the ledger: what is unprocessed")
    audit.add_argument(
        "--grace", type=int, default=15, metavar="MIN", help="newer mail may be on its way (15)"
    )
    audit.add_argument("--stuck", type=int, default=60, metavar="MIN", help="in flight longer is stuck (60)")
    audit.add_argument(
        "--lookback", type=int, default=48, metavar="HOURS", help="stored mail of the last HOURS (48)"
    )
    audit.add_argument("--all", action="store_true", help="every stored mail, however old")
    audit.add_argument("--redrive", action="store_true", help="start the triage of what it finds again")
    audit.add_argument(
        "--max-attempts",
        type=int,
        metavar="N",
        help="a mail re-driven N times already is queued instead ($ROOTMAIL_RECONCILE_MAX_ATTEMPTS, 3)",
    )
    audit.add_argument("--json", action="store_true")
    replay = commands.add_parser("replay", help="re-run stored mail through the state machine (idempotent)")
    replay.add_argument("keys", nargs="*", metavar="KEY", help="stored mail keys (incoming/...)")
    replay.add_argument("--since", type=float, metavar="DAYS", help="every mail stored in the last DAYS days")
    add_slack_commands(commands)

    contacts = commands.add_parser("contacts", help="customer contacts held after bounces or complaints")
    contacts_commands = contacts.add_subparsers(dest="contacts_command", required=True, metavar="SUBCOMMAND")
    suppressed = contacts_commands.add_parser("suppressed", help="list the contacts forwards are held from")
    clear = contacts_commands.add_parser("clear", help="send to a contact again once its address is fixed")
    clear.add_argument("address")
    clear.add_argument("--by", required=True, metavar="NAME", help="who clears it (kept with the record)")
    for sub in (suppressed, clear):
        sub.add_argument(
            "--table",
            metavar="NAME",
            help="suppressions table (default: $ROOTMAIL_SUPPRESSIONS_TABLE; stack output)",
        )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "triage":
            return _triage(args)
        if args.command == "demo":
            return _demo(args)
        if args.command == "accounts":
            from rootmail.entrypoints.cli.accounts import run as run_accounts

            return run_accounts(args)
        if args.command == "contacts":
            return _contacts(args)
        if args.command in ("audit", "replay"):
            return _audit(args)
        if args.command == "deliveries":
            return _deliveries(args)
        if args.command in ("digest", "slack"):
            from rootmail.entrypoints.cli.slack import run as run_slack

            return run_slack(args)
        from rootmail.entrypoints.cli.rules import run as run_rules

        return run_rules(args)
    except (RootmailError, ValueError) as exc:
        print(f"rootmail: {exc}", file=sys.stderr)
        return 2


def _deliveries(args: argparse.Namespace) -> int:
    import boto3

    from rootmail.adapters.dynamodb.deliveries import DeliveryGuard
    from rootmail.config import get_settings

    guard = DeliveryGuard(boto3.client("dynamodb"), args.table or get_settings().require("deliveries_table"))
    held = guard.get(args.delivery_id)
    if held is None:
        print(f"rootmail deliveries: no delivery {args.delivery_id}", file=sys.stderr)
        return 1
    if args.deliveries_command == "show":
        print(json.dumps(held, indent=2, ensure_ascii=False))
        return 0
    if held.get("status") not in ("sending", "claimed", "failed"):
        print(
            f"rootmail deliveries: {args.delivery_id} is {held.get('status')}: nothing to settle",
            file=sys.stderr,
        )
        return 1
    status = "sent" if args.deliveries_command == "confirm" else "failed"
    who = "confirmed_by" if status == "sent" else "released_by"
    guard.settle(args.delivery_id, status, {**(held.get("detail") or {}), who: args.by})
    then = "a retry skips it" if status == "sent" else "a retry sends it"
    print(f"{args.delivery_id}: {status} (by {args.by}); {then}: /rootmail retry or rootmail replay")
    return 0


def _audit(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime, timedelta

    from rootmail.app import audit
    from rootmail.bootstrap import Runtime
    from rootmail.config import get_settings

    rt = Runtime(get_settings())
    run = f"{args.command}-{datetime.now(UTC).strftime('%Y%m%dT%H%M%S%f')}"
    if args.command == "replay":
        if bool(args.keys) == (args.since is not None):
            print("rootmail replay: give KEYs or --since DAYS", file=sys.stderr)
            return 2
        keys = args.keys or audit.stored_since(rt, args.since)
        started = audit.replay(rt, keys, run=run)
        print(
            f"{len(started)} of {len(keys)} stored mail(s) re-run (run {run}); deliveries already made are not repeated"
        )
        return 0
    report = audit.audit(
        rt,
        grace=timedelta(minutes=args.grace),
        stuck_after=timedelta(minutes=args.stuck),
        lookback=None if args.all else timedelta(hours=args.lookback),
    )
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        states = ", ".join(f"{n} {s}" for s, n in sorted(report.states.items()))
        print(f"{report.stored} stored mail(s): {states or 'none'}")
        for finding in report.findings:
            times = f" (re-driven {finding.redrives} time(s))" if finding.redrives else ""
            print(f"  {finding.mail_id}: {finding.problem} since {finding.since}{times} → {finding.command}")
        print(
            f"{len(report.findings)} mail(s) need attention"
            if report.findings
            else "every stored mail is accounted for"
        )
        for finding in report.given_up:
            _print_given_up(finding)
    if args.redrive and report.findings:
        limit = args.max_attempts or rt.settings.reconcile_max_attempts
        redriven = audit.redrive(rt, report.findings, run=run, max_attempts=limit)
        print(f"re-driven: {len(redriven.started)} execution(s) started (run {run})")
        for finding in redriven.given_up:
            _print_given_up(finding)
    return 1 if report.findings and not args.redrive else 0


def _print_given_up(finding: Finding) -> None:
    """A mail the reconciler stopped re-driving: queued, for an operator to look into and retry."""
    print(
        f"  {finding.mail_id}: {finding.reason} (queued {finding.since}) → /rootmail retry, or {finding.command}"
    )


def _contacts(args: argparse.Namespace) -> int:
    import boto3

    from rootmail.adapters.suppressions import ACTIVE, SuppressionList
    from rootmail.config import get_settings

    table = args.table or get_settings().require("suppressions_table")
    suppressions = SuppressionList(boto3.client("dynamodb"), table)
    if args.contacts_command == "clear":
        if not suppressions.clear(args.address, args.by):
            print(f"rootmail contacts: {args.address} is not suppressed", file=sys.stderr)
            return 1
        print(f"{args.address}: cleared by {args.by}; forwards go to it again")
        return 0
    held = [r for r in suppressions.list() if r.get("status") == ACTIVE]
    for record in sorted(held, key=lambda r: str(r.get("since"))):
        print(
            f"{record['address']}\t{record.get('kind')}\tsince {record.get('since')}\t{record.get('reason')}"
        )
    print(f"{len(held)} contact(s) suppressed", file=sys.stderr)
    return 0


def _triage(args: argparse.Namespace) -> int:
    from rootmail.app.offline import AccountDirectory, load_accounts, triage_file

    rules = RuleSet(load_rule_files(args.rules))
    directory = AccountDirectory.of(load_accounts(args.accounts)) if args.accounts else None
    status = 0
    for path in args.files:
        if not path.is_file():
            print(f"rootmail triage: {path}: no such file", file=sys.stderr)
            status = 1
            continue
        result = triage_file(path, rules, directory)
        if args.json:
            print(json.dumps(result, ensure_ascii=False))
        else:
            accounts = ",".join(result["account_ids"]) or "-"
            if not result["accounts_checked"]:
                accounts += " (not checked)"
            action = result["action"] + (" (private: no customer told)" if result["private"] else "")
            problems = f"  problems: {'; '.join(result['problems'])}" if result["problems"] else ""
            print(
                f"{path}: {result['category']} → {action} "
                f"(rule {result['rule_id'] or '-'}, accounts {accounts}, case {result['case_id'] or '-'})"
                + (f"  held: {result['hold']}" if result["hold"] else "")
                + (f"  alert: urgent words {', '.join(result['signals'])}" if result["alert"] else "")
                + (
                    f"  suggested: {result['suggestion']['category']} ({result['suggestion']['why']})"
                    if result["suggestion"]
                    else ""
                )
                + problems
            )
    return status


def _demo(args: argparse.Namespace) -> int:
    from rootmail_local.demo import load_demo_accounts
    from rootmail_local.demo import main as demo_main

    provider = load_demo_accounts(args.accounts, args.contacts, args.imported)
    if not args.mail_dir.is_dir():
        print(f"rootmail demo: {args.mail_dir}: no such folder", file=sys.stderr)
        return 2
    return demo_main(args.mail_dir, provider, load_rule_files(args.rules), args.report)
