"""`rootmail rules …`: the reviewed rule files and the live rules table, kept in step safely.

validate, list, show, diff (files vs live), push [--dry-run] [--prune], pull (live → files), history, rollback,
and test (what the proposed rules would do to given mails, the queue, or the last N days, before a push).
"""

from __future__ import annotations

import argparse
import getpass
import json
import socket
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rootmail.config import Settings, get_settings
from rootmail.domain.rules.files import (
    SLACK_FILE,
    diff_rules,
    leading_comments,
    load_rule_files,
    render_rule_file,
)
from rootmail.domain.rules.index import RuleSet
from rootmail.domain.rules.model import Rule
from rootmail.domain.rules.sets import compile_rules
from rootmail.errors import RuleConflict, RuleError

DEFAULT_RULES = Path("rules")


def _who() -> str:
    return f"{getpass.getuser()}@{socket.gethostname()}"


def add_commands(commands: Any) -> None:
    rules = commands.add_parser("rules", help="the rule files and the live rules table")
    sub = rules.add_subparsers(dest="rules_command", required=True, metavar="SUBCOMMAND")

    def files_option(parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--rules", type=Path, default=DEFAULT_RULES, metavar="DIR", help="default: rules/"
        )

    def table_options(parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--table", metavar="NAME", help="live rules table (default: $ROOTMAIL_RULES_TABLE)"
        )
        parser.add_argument(
            "--history-table",
            metavar="NAME",
            help="rules history table (default: $ROOTMAIL_RULES_HISTORY_TABLE)",
        )

    def audit_options(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--why", required=True, help="why (kept in the history with who and when)")
        parser.add_argument("--by", default=None, metavar="NAME", help="who (default: user@host)")

    validate = sub.add_parser("validate", help="check the rule files (every problem, with file and line)")
    files_option(validate)

    listing = sub.add_parser("list", help="the rules in matching order")
    files_option(listing)
    table_options(listing)
    listing.add_argument("--live", action="store_true", help="the live rules, with their versions")

    show = sub.add_parser("show", help="one rule")
    show.add_argument("rule_id", metavar="ID")
    files_option(show)
    table_options(show)
    show.add_argument("--live", action="store_true")

    diff = sub.add_parser("diff", help="the rule files against the live rules (exit 1 when they differ)")
    files_option(diff)
    table_options(diff)

    push = sub.add_parser("push", help="make the live rules what the files say")
    files_option(push)
    table_options(push)
    audit_options(push)
    push.add_argument("--dry-run", action="store_true", help="show what would change; write nothing")
    push.add_argument("--prune", action="store_true", help="also remove live rules the files do not have")

    pull = sub.add_parser("pull", help="write the live rules into the rule files")
    files_option(pull)
    table_options(pull)
    pull.add_argument("--force", action="store_true", help="replace changes in the files that are not live")

    history = sub.add_parser("history", help="every version of a rule: who, when, why, before and after")
    history.add_argument("rule_id", metavar="ID")
    table_options(history)
    history.add_argument("--json", action="store_true")

    rollback = sub.add_parser("rollback", help="put a rule back exactly as it was at a version")
    rollback.add_argument("rule_id", metavar="ID")
    rollback.add_argument("version", type=int, metavar="VERSION")
    table_options(rollback)
    audit_options(rollback)

    test = sub.add_parser("test", help="what the proposed rules (the files) would do, next to the live rules")
    test.add_argument("files", nargs="*", type=Path, metavar="FILE", help=".eml files")
    source = test.add_mutually_exclusive_group()
    source.add_argument("--queue", action="store_true", help="the queued mail (ledger and stored mail)")
    source.add_argument("--since", type=float, metavar="DAYS", help="every mail of the last DAYS days")
    source.add_argument(
        "--catalogue",
        type=Path,
        metavar="DIR",
        help="real mail with its expected category (tests/corpus/real): per category and language, mails, decided "
        "by a rule, right, wrong, queued (with the rule files; --accounts for the accounts)",
    )
    files_option(test)
    table_options(test)
    test.add_argument(
        "--current", type=Path, metavar="DIR", help="compare with these rule files, not the live rules"
    )
    test.add_argument("--accounts", type=Path, metavar="FILE", help="for FILEs: ListAccounts JSON")
    test.add_argument("--prune", action="store_true", help="as a push --prune would leave the live rules")
    test.add_argument("--json", action="store_true")


def _settings(args: argparse.Namespace) -> Settings:
    overrides = {}
    if getattr(args, "table", None):
        overrides["rules_table"] = args.table
    if getattr(args, "history_table", None):
        overrides["rules_history_table"] = args.history_table
    return Settings(**overrides) if overrides else get_settings()


def _table(args: argparse.Namespace) -> Any:
    from rootmail.bootstrap import Runtime

    settings = _settings(args)
    settings.require("rules_table")
    return Runtime(settings).rules_table


def run(args: argparse.Namespace) -> int:
    command = args.rules_command
    if command == "validate":
        try:
            rules = load_rule_files(args.rules)
        except RuleError as exc:
            problems = str(exc).splitlines()
            for problem in problems:
                print(problem, file=sys.stderr)
            print(
                f"rootmail rules: {len(problems)} problem(s); nothing is valid until all are fixed",
                file=sys.stderr,
            )
            return 1
        print(f"{len(rules)} rules in {args.rules}: valid")
        return 0
    handlers = {
        "list": _list,
        "show": _show,
        "diff": _diff,
        "push": _push,
        "pull": _pull,
        "history": _history,
        "rollback": _rollback,
        "test": _test,
    }
    return int(handlers[command](args))


def _rule_line(rule: Rule, extra: str = "") -> str:
    return f"{rule.id:<32} {rule.category!s:<19} {rule.action!s:<11} {rule.priority:>5}  {extra}"


def _list(args: argparse.Namespace) -> int:
    if args.live:
        live = _table(args).live()
        rules = compile_rules((r.rule, "table") for r in live.values())
        for rule in rules:
            entry = live[rule.id]
            print(
                _rule_line(
                    rule, f"v{entry.version} by {entry.updated_by or '-'} at {entry.updated_at or '-'}"
                )
            )
        return 0
    for rule in load_rule_files(args.rules):
        print(_rule_line(rule, rule.source))
    return 0


def _show(args: argparse.Namespace) -> int:
    if args.live:
        entry = _table(args).get(args.rule_id)
        if entry is None or not entry.rule:
            print(f"rootmail rules: no live rule {args.rule_id!r}", file=sys.stderr)
            return 1
        print(f"# version {entry.version}, changed by {entry.updated_by} at {entry.updated_at}")
        print(render_rule_file([entry.rule]), end="")
        return 0
    rule = next((r for r in load_rule_files(args.rules) if r.id == args.rule_id), None)
    if rule is None:
        print(f"rootmail rules: no rule {args.rule_id!r} in {args.rules}", file=sys.stderr)
        return 1
    print(f"# {rule.source}")
    print(render_rule_file([rule.to_item()]), end="")
    return 0


def _diff(args: argparse.Namespace) -> int:
    files = [r.to_item() for r in load_rule_files(args.rules)]
    live = [entry.rule for entry in _table(args).live().values()]
    difference = diff_rules(files, live)
    if not difference:
        print(f"{args.rules} and the live rules are the same ({len(files)} rules)")
        return 0
    print("\n".join(difference.lines()))
    return 1


VERSIONS_FILE = ".versions.json"  # beside the rule files: the live version each rule was pulled or pushed at


def _base_versions(directory: Path) -> dict[str, int]:
    path = directory / VERSIONS_FILE
    if not path.exists():
        return {}
    return {str(k): int(v) for k, v in json.loads(path.read_text(encoding="utf-8")).items()}


def _save_base_versions(directory: Path, live: dict[str, Any]) -> None:
    versions = {rule_id: entry.version for rule_id, entry in sorted(live.items()) if entry.rule}
    (directory / VERSIONS_FILE).write_text(json.dumps(versions, indent=1) + "\n", encoding="utf-8")


def resulting_set(files: list[Rule], live: dict[str, Any], *, prune: bool) -> list[Rule]:
    """The live rules after a push of the files: the files' rules, and the live-only ones unless pruned; checked
    as a set (ties and duplicates across files and live included). Raises RuleError with every problem."""
    items: list[tuple[dict[str, Any], str]] = [(r.to_item(), r.source) for r in files]
    in_files = {r.id for r in files}
    if not prune:
        items += [(e.rule, f"live rule {i}") for i, e in live.items() if e.rule and i not in in_files]
    return compile_rules(items)


def _push(args: argparse.Namespace) -> int:
    rules = load_rule_files(args.rules)
    table = _table(args)
    live = table.live(with_removed=True)
    files = {r.id: r for r in rules}
    difference = diff_rules([r.to_item() for r in rules], [e.rule for e in live.values() if e.rule])
    if not difference:
        print(f"nothing to push: the live rules are the files ({len(rules)} rules)")
        _save_base_versions(args.rules, live)
        return 0
    print("\n".join(difference.lines()))
    if difference.removed and not args.prune:
        print(
            f"({len(difference.removed)} live rule(s) not in the files are kept: `rootmail rules pull` adds them to "
            "the files; `push --prune` removes them)"
        )
    resulting_set(rules, live, prune=args.prune)  # refuse a push whose result is not a valid rule set
    if args.dry_run:
        print("dry run: nothing written")
        return 0
    base = _base_versions(args.rules)
    by, conflicts, written = args.by or _who(), 0, 0
    changes: list[tuple[str, dict[str, Any] | None]] = [(r["id"], r) for r in difference.added]
    changes += [(after["id"], after) for _, after in difference.changed]
    if args.prune:
        changes += [(r["id"], None) for r in difference.removed]
    for rule_id, after in changes:
        entry = live.get(rule_id)
        # The version these files were edited from (pulled or pushed): a rule changed live since then conflicts.
        expected = base.get(rule_id, entry.version if entry else 0)
        if rule_id not in base and entry is not None and entry.rule:
            print(
                f"note: no base version recorded for {rule_id} (pull first): editing live version {entry.version}"
            )
        source = Path(files[rule_id].source.split(":")[0]).name if rule_id in files else None
        try:
            version = table.change(
                rule_id, after, expected_version=expected, by=by, why=args.why, file=source
            )
        except RuleConflict as exc:
            conflicts += 1
            print(f"CONFLICT {exc}", file=sys.stderr)
            continue
        written += 1
        print(f"{rule_id}: version {version}")
    _save_base_versions(args.rules, table.live())
    summary = f"pushed {written} change(s) to {table.table}"
    print(summary + (f"; {conflicts} conflict(s), not written" if conflicts else ""))
    return 1 if conflicts else 0


def _pull(args: argparse.Namespace) -> int:
    live = _table(args).live()
    local = load_rule_files(args.rules) if any(args.rules.glob("*.toml")) else []
    base = _base_versions(args.rules)
    difference = diff_rules([r.to_item() for r in local], [e.rule for e in live.values()])
    # Work in the files that is not live: rules only in the files, and edits of rules that did not change live
    # since they were pulled (or whose base is unknown). A pull would lose them.
    unpushed = [r["id"] for r in difference.added]
    unpushed += [
        after["id"]
        for _, after in difference.changed
        if after["id"] not in base or base[after["id"]] >= live[after["id"]].version
    ]
    if unpushed and not args.force:
        print(
            f"rootmail rules pull: the files hold changes that are not live: {', '.join(unpushed)}. Push them, or "
            "pull --force to replace them with the live rules",
            file=sys.stderr,
        )
        return 1
    home = {r.id: Path(r.source.split(":")[0]).name for r in local}
    by_file: dict[str, list[dict[str, Any]]] = {}
    for rule_id, entry in live.items():
        by_file.setdefault(entry.file or home.get(rule_id) or SLACK_FILE, []).append(entry.rule)
    args.rules.mkdir(parents=True, exist_ok=True)
    for existing in sorted(args.rules.glob("*.toml")):
        by_file.setdefault(existing.name, [])
    for name, rules in sorted(by_file.items()):
        path = args.rules / name
        header = (
            leading_comments(path.read_text(encoding="utf-8"))
            if path.exists()
            else "# Pulled from the live rules."
        )
        path.write_text(render_rule_file(rules, header), encoding="utf-8")
        print(f"{path}: {len(rules)} rule(s)")
    _save_base_versions(args.rules, live)
    try:
        load_rule_files(args.rules)
    except RuleError as exc:  # the live set itself has problems: the files show them, to be fixed and pushed
        print(
            f"rootmail rules pull: the live rules have problems to fix before the next push:\n{exc}",
            file=sys.stderr,
        )
        return 1
    return 0


def _history(args: argparse.Namespace) -> int:
    records = _table(args).history(args.rule_id)
    if not records:
        print(f"rootmail rules: no history for {args.rule_id!r}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(records, ensure_ascii=False, indent=2))
        return 0
    for record in records:
        print(
            f"v{record['version']}  {record['at']}  {record['by']}  {record.get('kind', '')}: {record.get('why', '')}"
        )
        before, after = record.get("before") or {}, record.get("after") or {}
        for key in sorted(set(before) | set(after)):
            if before.get(key) != after.get(key):
                print(
                    f"      {key}: {json.dumps(before.get(key), ensure_ascii=False)} → "
                    f"{json.dumps(after.get(key), ensure_ascii=False)}"
                )
    return 0


def _rollback(args: argparse.Namespace) -> int:
    table = _table(args)
    restored = {int(r["version"]): r for r in table.history(args.rule_id)}.get(args.version, {}).get("after")
    items = [(e.rule, f"live rule {i}") for i, e in table.live().items() if i != args.rule_id]
    if restored is not None:
        compile_rules(
            [*items, (restored, f"{args.rule_id} version {args.version}")]
        )  # still valid, as a set too
    version = table.rollback(args.rule_id, args.version, by=args.by or _who(), why=args.why)
    print(f"{args.rule_id}: back to version {args.version}'s content, as version {version}")
    return 0


def _test(args: argparse.Namespace) -> int:
    from rootmail.app import rules_preview
    from rootmail.app.offline import AccountDirectory, load_accounts
    from rootmail.bootstrap import Runtime
    from rootmail.domain.preview import preview

    files_rules = load_rule_files(args.rules)
    if args.catalogue is not None:
        return _score_catalogue(args, files_rules)
    if not args.files and not args.queue and args.since is None:
        print("rootmail rules test: give .eml FILEs, --queue or --since DAYS", file=sys.stderr)
        return 2
    settings = _settings(args)
    rt = Runtime(settings) if (args.queue or args.since is not None or not args.current) else None
    proposed = files_rules
    if args.current:
        current: Sequence[Rule] = load_rule_files(args.current)
    elif rt is not None and settings.rules_table:
        current = rt.rules(fresh=True)
        # What a push would leave live: the files' rules and the live-only ones (kept unless --prune).
        proposed = resulting_set(files_rules, rt.rules_table.live(), prune=args.prune)
    else:
        current = files_rules
    if args.files:
        directory = AccountDirectory.of(load_accounts(args.accounts)) if args.accounts else None
        mails = rules_preview.files(args.files, directory, settings)
    else:
        assert rt is not None
        settings.require("ledger_table")
        mails = rules_preview.queued(rt) if args.queue else rules_preview.since(rt, args.since)
    result = preview(mails, current, proposed, settings.aws_sender_domains)
    if args.json:
        print(json.dumps(result.to_dict(), ensure_ascii=False, indent=2))
    else:
        print("\n".join(result.lines()))
    return 0


def _score_catalogue(args: argparse.Namespace, rules: Sequence[Rule]) -> int:
    import tempfile

    from rootmail.app.catalogue import catalogue, score, score_lines
    from rootmail.app.offline import AccountDirectory, load_accounts, triage_file

    if not args.catalogue.is_dir():
        print(f"rootmail rules test: {args.catalogue}: no such folder", file=sys.stderr)
        return 2
    mails = catalogue(args.catalogue)
    if not mails:
        print(f"rootmail rules test: {args.catalogue}: no catalogue mail (*.json)", file=sys.stderr)
        return 2
    directory = AccountDirectory.of(load_accounts(args.accounts)) if args.accounts else None
    ruleset = RuleSet(rules)
    settings = get_settings()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "mail.eml"

        def decide(raw: bytes) -> dict[str, Any]:
            path.write_bytes(raw)
            return triage_file(path, ruleset, directory, settings)

        table = score(mails, decide)
    if args.json:
        rows = [{"category": c, "language": lang, **row} for (c, lang), row in sorted(table.items())]
        print(json.dumps(rows, ensure_ascii=False, indent=2))
    else:
        print(f"{len(mails)} mails of {args.catalogue}, rules of {args.rules}:")
        print("\n".join(score_lines(table)))
    return 0
