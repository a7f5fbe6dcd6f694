"""`rootmail demo`: a folder of .eml files through the whole pipeline on the local emulator, then a readable
summary, a JSON report and the evidence (mails sent, tickets opened, Slack messages posted)."""

from __future__ import annotations

import contextlib
import email
import email.policy
import html
import json
import logging
import re
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from rootmail.adapters.dynamodb.accounts import AccountsTable
from rootmail.app.accounts_import import import_accounts
from rootmail.app.offline import load_accounts, read_account_items
from rootmail.domain.accounts import CONTACT_KINDS, IMPORTED, Account
from rootmail.domain.digest import group_queue
from rootmail.domain.imports import json_named, parse_rows, read_rows
from rootmail.domain.moments import now_iso
from rootmail.domain.rules.model import Rule
from rootmail.domain.sync_plan import ListedAccount
from rootmail.domain.vocabulary import IN_FLIGHT
from rootmail.messages.blocks import CREATE_RULE
from rootmail.messages.operators import digest_text
from rootmail_local.emulator import MANAGEMENT_ACCOUNT, LocalPipeline
from rootmail_local.slack_requests import modal_values

_KEY_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def mail_key(path: Path) -> str:
    """The local stand-in for SES's message ID: the file's name, made key-safe."""
    return _KEY_UNSAFE.sub("-", path.stem)


@dataclass(frozen=True)
class SampleProvider:
    """The provider the demo plays: its organisations (name → management account and accounts, as moto holds them)
    and a file of accounts from outside them, imported as an operator would (`rootmail accounts import`)."""

    organizations: dict[str, tuple[str, list[Account]]]
    imported: Path | None = None

    @property
    def accounts(self) -> list[Account]:
        return [a for _, accounts in self.organizations.values() for a in accounts]

    @property
    def management_accounts(self) -> dict[str, str]:
        return {name: management for name, (management, _) in self.organizations.items()}

    def set_up(self, pipeline: LocalPipeline) -> dict[str, Any]:
        """Seed each local organisation, run the deployed `sync` function over all of them, then import the file
        into the accounts table. What the sync and the import reported."""
        for name, (_, accounts) in self.organizations.items():
            pipeline.seed_organization(accounts, name)
        found: dict[str, Any] = {"sync": pipeline.sync_accounts(), "import": None}
        if self.imported is not None:
            table = AccountsTable(pipeline.client("dynamodb"), pipeline.tables["accounts"])
            text = self.imported.read_text(encoding="utf-8")
            report = import_accounts(table, text, json_format=json_named(self.imported.name))
            if not report.ok:
                problems = "; ".join(f"line {p.line}: {p.message}" for p in report.problems)
                raise ValueError(f"{self.imported}: {problems or 'not written'}")
            found["import"] = {"file": str(self.imported), **report.to_dict()}
        return found


def run_pipeline(
    files: Sequence[Path],
    provider: SampleProvider,
    rules: Sequence[Rule],
    *,
    log: TextIO,
    progress: TextIO,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Put the accounts in the local organisations and fill the accounts table with the real sync function and the
    import; then run every file through the local pipeline; return the per-mail report and the evidence."""
    with LocalPipeline(organizations=provider.management_accounts) as pipeline, quiet_logs(log):
        setup = provider.set_up(pipeline)
        sync = setup["sync"]
        table = AccountsTable(pipeline.client("dynamodb"), pipeline.tables["accounts"])
        synced = [a.to_dict() for _, a in sorted(table.load_accounts().items())]
        for name, part in sync.get("organizations", {}).items():
            print(
                f"  organization {name}: the sync function found {part['listed']} account(s) "
                f"({part['added']} added) in {part['api_calls_total']} API call(s)",
                file=progress,
            )
        if setup["import"]:
            print(
                f"  imported from {setup['import']['file']}: {len(setup['import']['added'])} account(s) "
                "in no synced organisation",
                file=progress,
            )
        pipeline.seed_rules(rules)
        keys: dict[str, Path] = {}
        started = time.monotonic()
        for number, path in enumerate(files, 1):
            keys[pipeline.store_mail(mail_key(path), path.read_bytes())] = path
            print(f"\r  stored {number}/{len(files)} mails", end="", file=progress, flush=True)
        executions = pipeline.wait(timeout=60 + 5 * len(files))
        elapsed = time.monotonic() - started
        print(
            f"\r  {len(files)} mails stored, {len(executions)} executions finished in {elapsed:.1f} s",
            file=progress,
        )
        ledger = pipeline.ledger()
        report = []
        for key, path in keys.items():
            record = ledger.get(key.rsplit("/", 1)[-1]) or {}
            report.append(
                {
                    "file": str(path),
                    "key": key,
                    "mail_id": record.get("mail_id"),
                    "message_id": record.get("message_id"),
                    "subject": record.get("subject"),
                    "account_ids": record.get("account_ids", []),
                    "category": record.get("category"),
                    "rule_id": record.get("rule_id"),
                    "action": record.get("action"),
                    "state": record.get("state", "missing"),
                    "reason": record.get("queue_reason") or record.get("reason"),
                    "deliveries": record.get("deliveries", []),
                    "alert": bool(record.get("alert")),
                    "signals": record.get("signals", []),
                    "suggestion": record.get("suggestion"),
                }
            )
        evidence = {
            "accounts_sync": sync,
            "accounts_import": setup["import"],
            "accounts": synced,
            "executions": {s: n for s, n in Counter(e["status"] for e in executions).items()},
            "mails_sent": pipeline.sent_mail(),
            "tickets": pipeline.zendesk.tickets,
            "slack_messages": pipeline.slack.messages,
        }
        evidence["operators"] = operators_in_slack(pipeline)
    return report, evidence


DEFAULT_CHOICE = {"category": "account-lifecycle", "action": "forward"}


def operators_in_slack(pipeline: LocalPipeline) -> dict[str, Any]:
    """What the operators do next, through the deployed functions: the hourly digest, a rule created from its
    first unclassified pattern with the Slack modal, `/rootmail retry pattern P`, then `/rootmail retry`."""
    steps: dict[str, Any] = {}
    pipeline.invoke("digest", {})
    posted = pipeline.slack.messages[-1]
    steps["digest"] = digest_text(
        group_queue(pipeline.ledger().in_state("queued")), language="en", now=now_iso()
    )
    buttons = [e for b in posted["blocks"] or [] if b["type"] == "actions" for e in b["elements"]]
    create = next((b for b in buttons if b["action_id"] == CREATE_RULE), None)
    if create is not None:
        pattern = json.loads(create["value"])["id"]
        pipeline.slack_click(CREATE_RULE, create["value"])
        view = pipeline.slack.views[-1]["view"]
        proposed = modal_values(view)
        steps["proposed"] = {
            field: proposed[field]["value"]["selected_option"]["value"] for field in ("category", "action")
        }
        # The demo's operator takes the modal's proposal when it has one (the words suggest a category), else
        # makes the pattern an account notice to forward.
        chosen = steps["proposed"] if steps["proposed"]["category"] else DEFAULT_CHOICE
        values = modal_values(view, rule_id=f"demo-{pattern}", **chosen)
        pipeline.slack_submit(view, values)
        steps["rule"] = pipeline.slack.messages[-1]["text"]
        steps["retry_pattern"] = _retry(pipeline, f"retry pattern {pattern}")
    steps["retry_all"] = _retry(pipeline, "retry")
    pipeline.invoke("digest", {})
    steps["digest_after"] = pipeline.slack.messages[-1]["text"]
    return steps


def _retry(pipeline: LocalPipeline, text: str) -> dict[str, str]:
    reply = json.loads(pipeline.slack_command(text)["body"])
    pipeline.wait()
    outcome = pipeline.slack.responses[-1]
    # Slack's mrkdwn escapes &, < and >; the terminal shows the text as Slack would.
    why = [
        html.unescape(b["text"]["text"]) for b in outcome.get("blocks") or [] if b.get("type") == "section"
    ][1:]
    return {
        "command": f"/rootmail {text}",
        "reply": reply["text"],
        "outcome": outcome["text"],
        "why": "\n".join(why),
    }


@contextlib.contextmanager
def quiet_logs(log: TextIO) -> Any:
    """Handler logs (Powertools JSON) and EMF metrics go to the log file, not over the summary."""
    handlers = [h for h in logging.getLogger("rootmail").handlers if isinstance(h, logging.StreamHandler)]
    # Swapped without setStream(), which flushes the old stream: it may be closed (an earlier redirected stdout).
    streams = [(h, h.stream) for h in handlers]
    for handler in handlers:
        handler.stream = log
    with contextlib.redirect_stdout(log):
        try:
            yield
        finally:
            for handler, previous in streams:
                handler.stream = previous


def render_summary(
    report: list[dict[str, Any]], evidence: dict[str, Any], report_path: Path, log_path: Path
) -> str:
    lines: list[str] = []
    width = max((len(Path(r["file"]).name) for r in report), default=10)
    lines.append("")
    lines.append(f"{'mail':<{width}}  {'account(s)':<27} {'category':<19} {'rule':<28} {'action':<11} state")
    lines.append("-" * (width + 100))
    for r in report:
        accounts = ",".join(r["account_ids"]) or "-"
        if len(accounts) > 27:
            accounts = accounts[:24] + "..."
        lines.append(
            f"{Path(r['file']).name:<{width}}  {accounts:<27} {r['category'] or '-':<19} "
            f"{(r['rule_id'] or '-')[:28]:<28} {r['action'] or '-':<11} {r['state']}"
        )
        if r["state"] == "queued" and r.get("reason"):
            lines.append(f"{'':<{width}}    ↳ queued: {r['reason'][:150]}")
        if r.get("alert"):
            lines.append(
                f"{'':<{width}}    ↳ operators alerted at once: urgent words {', '.join(r['signals'])}"
            )
        if r["state"] == "queued" and r.get("suggestion"):
            suggestion = r["suggestion"]
            lines.append(
                f"{'':<{width}}    ↳ suggested: {suggestion['category']} ({suggestion['why'][:100]})"
            )
    lines.append("")
    actions = Counter(r["action"] or "none" for r in report)
    states = Counter(r["state"] for r in report)
    lines.append("Totals per action: " + ", ".join(f"{a} {n}" for a, n in sorted(actions.items())))
    lines.append("Terminal states:   " + ", ".join(f"{s} {n}" for s, n in sorted(states.items())))
    alerted = sum(1 for r in report if r.get("alert"))
    lines.append(f"Urgent-word alerts (queued mail no rule knows, operators told at once): {alerted}")
    terminal = sum(n for s, n in states.items() if s not in {IN_FLIGHT, "missing"})
    lines.append(
        f"Every mail in a terminal state: {'yes' if terminal == len(report) else 'NO'} ({terminal}/{len(report)})"
    )
    lines.append(_forwarded_by_source(report, evidence))
    lines.append("")
    lines.extend(_accounts_lines(evidence))
    lines.append("")
    lines.extend(_evidence_lines(evidence))
    lines.append(_cross_check(report, evidence)[1])
    lines.append("")
    lines.append(f"JSON report: {report_path}")
    lines.append(f"Handler logs and metrics: {log_path}")
    return "\n".join(lines)


def _forwarded_by_source(report: list[dict[str, Any]], evidence: dict[str, Any]) -> str:
    """How many forwarded mails went to accounts of each organisation, and to imported accounts."""
    sources = {a["account_id"]: Account.from_dict(a).source for a in evidence.get("accounts", [])}
    counted = Counter(
        sources.get(account_id, "unknown")
        for r in report
        if r["state"] == "forwarded"
        for account_id in r["account_ids"]
    )
    shown = ", ".join(f"{source} {n}" for source, n in sorted(counted.items())) or "none"
    return f"Forwarded, per account, by where the account came from: {shown}"


def _accounts_lines(evidence: dict[str, Any]) -> list[str]:
    """The accounts table as the sync left it: where each account's contacts and language came from."""
    sync = evidence.get("accounts_sync") or {}
    calls = ", ".join(f"{op} {n}" for op, n in sync.get("api_calls", {}).items())
    lines = [
        f"Accounts (synced from the local AWS Organizations by the sync function): added {sync.get('added', 0)}, "
        f"changed {sync.get('changed', 0)}, deactivated {sync.get('deactivated', 0)}; API calls: {calls or 'none'}",
    ]
    for name, part in sync.get("organizations", {}).items():
        listing = "complete" if part["listing_complete"] else f"INCOMPLETE ({part['listing_error']})"
        lines.append(
            f"  organization {name}: listing {listing}, {part['listed']} account(s), contacts read for "
            f"{part['details_read']}, {part['api_calls_total']} API call(s), {part['items_written']} item(s) written"
        )
    imported = evidence.get("accounts_import")
    if imported:
        lines.append(
            f"  imported (rootmail accounts import {imported['file']}): {len(imported['added'])} account(s) in no "
            "synced organisation; the sync never deactivates them"
        )
    lines.append(
        f"  contacts per kind of notice ({', '.join(CONTACT_KINDS)}): one list when the same for every kind"
    )
    for data in evidence.get("accounts", []):
        account = Account.from_dict(data)
        state = "active" if account.active else f"inactive: {account.inactive_reason}"
        source = f" (from {account.contacts_from})" if account.contacts_from else ""
        lines.append(
            f"    {account.account_id} {account.name[:24]:<24} {account.source:<32} [{account.language}] "
            f"{state:<32} {account.contacts.describe()}{source}"
        )
    return lines


def _evidence_lines(evidence: dict[str, Any]) -> list[str]:
    sent, tickets, messages = evidence["mails_sent"], evidence["tickets"], evidence["slack_messages"]
    lines = [
        f"Evidence: {len(sent)} mail(s) sent by SES, {len(tickets)} Zendesk ticket(s), "
        f"{len(messages)} Slack message(s)"
    ]
    lines.append("  SES (to customers):")
    for m in sent:
        parsed = email.message_from_string(m["raw"], policy=email.policy.default)
        # moto lists a recipient once from the API call and again from the To: header.
        destinations = ", ".join(dict.fromkeys(m["destinations"]))
        lines.append(f"    → {destinations} [{parsed.get('Content-Language', '?')}] {parsed['Subject']}")
    if sent:
        lines.append("  One forwarded mail as the customer sees it:")
        lines.extend("    | " + line for line in _rendered(sent[0]["raw"]))
    lines.append("  Zendesk tickets:")
    for t in tickets:
        lines.append(
            f"    #{t['id']} [{t.get('priority') or 'normal'}] {t['subject']} "
            f"(external_id {t.get('external_id')}, {len(t.get('comments', []))} comment(s), "
            f"requester {(t.get('requester') or {}).get('email') or '-'})"
        )
        for comment in t.get("comments", []):
            lines_ = [line for line in comment["body"].splitlines() if line.strip()]
            first = next(
                (line for line in lines_ if line.startswith("Subject: ")), lines_[0] if lines_ else ""
            )
            visibility = "public" if comment.get("public") else "internal"
            attached = (
                f", {len(comment.get('uploads') or [])} attachment(s)" if comment.get("uploads") else ""
            )
            lines.append(f"      - {visibility}{attached}: {first[:100]}")
    lines.append("  Slack (operators' channel):")
    for message in messages:
        lines.append(f"    {message['channel']}: {message['text'][:120]}")
    operators = evidence.get("operators")
    if operators:
        lines.append("")
        lines.append("Operators in Slack (the digest function, then /rootmail through the slack function):")
        lines.extend("  | " + line for line in operators["digest"].splitlines())
        if "proposed" in operators:
            proposed = operators["proposed"]
            lines.append(
                f"  The rule modal proposed: category {proposed['category'] or '(none)'}, "
                f"action {proposed['action']} (the demo's operator "
                + ("takes it)" if proposed["category"] else "chooses account-lifecycle → forward)")
            )
        if "rule" in operators:
            lines.append(f"  Rule from the first pattern (Slack modal): {operators['rule']}")
        for step in ("retry_pattern", "retry_all"):
            if step in operators:
                retry = operators[step]
                lines.append(f"  {retry['command']} → {retry['reply']}")
                lines.append(f"    then: {retry['outcome']}")
                lines.extend(f"      {line}" for line in retry["why"].splitlines())
        lines.append(f"  Next digest: {operators['digest_after'][:160]}")
    return lines


def _cross_check(report: list[dict[str, Any]], evidence: dict[str, Any]) -> tuple[bool, str]:
    """The ledger's deliveries against what the emulator and stand-ins actually received."""
    sent = [d for r in report for d in r["deliveries"] if d.get("status") == "sent"]
    expected = {
        "SES mails": sum(1 for d in sent if d["channel"] == "ses"),
        "tickets opened": sum(1 for d in sent if d["channel"] == "zendesk" and d.get("created")),
        "Slack messages": sum(1 for d in sent if d["channel"] == "slack"),
    }
    actual = {
        "SES mails": len(evidence["mails_sent"]),
        "tickets opened": len(evidence["tickets"]),
        "Slack messages": len(evidence["slack_messages"]),
    }
    if expected == actual:
        return True, "Evidence matches the ledger's deliveries: yes"
    differences = ", ".join(
        f"{k}: ledger {expected[k]}, received {actual[k]}" for k in expected if expected[k] != actual[k]
    )
    return False, f"Evidence matches the ledger's deliveries: NO ({differences})"


def _rendered(raw: str, body_lines: int = 8) -> list[str]:
    message = email.message_from_string(raw, policy=email.policy.default)
    out = [
        f"{h}: {message[h]}" for h in ("From", "To", "Reply-To", "Subject", "Content-Language") if message[h]
    ]
    body = message.get_body(preferencelist=("plain",))
    text = body.get_content() if body is not None else ""
    out.append("")
    out.extend(text.splitlines()[:body_lines])
    attachments = [part.get_content_type() for part in message.iter_attachments()]
    out.append(f"[attached: {', '.join(attachments) or 'nothing'}]")
    return out


def write_report(report: list[dict[str, Any]], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def main(mail_dir: Path, provider: SampleProvider, rules: list[Rule], report_path: Path) -> int:
    files = sorted(p for p in mail_dir.glob("*.eml") if p.is_file())
    if not files:
        print(f"rootmail demo: no .eml files in {mail_dir}", file=sys.stderr)
        return 2
    print(f"rootmail demo: {len(files)} mails from {mail_dir} through the local pipeline")
    print(
        "  (moto: S3, DynamoDB, SES, SSM, Lambda in process, Step Functions running statemachine/triage.asl.json;"
    )
    print("   Zendesk and Slack: local stand-ins for the real zenpy and slack_sdk clients)")
    log_path = report_path.with_suffix(".log")
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("w", encoding="utf-8") as log:
        report, evidence = run_pipeline(files, provider, rules, log=log, progress=sys.stdout)
    write_report(report, report_path)
    print(render_summary(report, evidence, report_path, log_path))
    unfinished = [r for r in report if r["state"] in {IN_FLIGHT, "missing"}]
    return 1 if unfinished or not _cross_check(report, evidence)[0] else 0


def load_demo_accounts(
    path: Path | None, contacts: Path | None = None, imported: Path | None = None
) -> SampleProvider:
    """The sample provider from a ListAccounts-shaped file (contacts.json beside it): each organisation whose
    management account the file lists (the items' ARNs say which organisation each account is in), and the
    accounts of other organisations from the import file (imported-accounts.csv beside it)."""
    if not path:
        return SampleProvider({"main": (MANAGEMENT_ACCOUNT, [])})
    contacts = contacts or path.with_name("contacts.json")
    accounts = {a.account_id: a for a in load_accounts(path, contacts if contacts.is_file() else None)}
    beside = path.with_name("imported-accounts.csv")
    imported = imported or (beside if beside.is_file() else None)
    groups: dict[str, list[Account]] = {}
    for item in read_account_items(path):
        management = ListedAccount.from_item(item).management_account_id or MANAGEMENT_ACCOUNT
        groups.setdefault(management, []).append(accounts[str(item["Id"])])
    organizations: dict[str, tuple[str, list[Account]]] = {}
    elsewhere: list[str] = []
    for management, members in groups.items():
        own = next((a for a in members if a.account_id == management), None)
        if own is None:  # an organisation the provider does not run: its accounts come from the import file
            elsewhere += [a.account_id for a in members]
            continue
        name = _organization_name(own, management)
        organizations[name if name not in organizations else management] = (management, members)
    importing = set(_imported_ids(imported)) if imported else set()
    missing = sorted(set(elsewhere) - importing)
    if missing:
        raise ValueError(
            f"{path}: account(s) {', '.join(missing)} are in organisations whose management account the file does "
            "not list, and no import file names them"
        )
    return SampleProvider(organizations or {"main": (MANAGEMENT_ACCOUNT, [])}, imported)


def _organization_name(management: Account, account_id: str) -> str:
    """`cloudprovider-emea-management` → `cloudprovider-emea`: the organisation named after its management account."""
    name = re.sub(r"[^A-Za-z0-9_.-]", "-", management.name.removesuffix("-management")).strip("-.")[:64]
    return name if name and name != IMPORTED else account_id


def _imported_ids(path: Path) -> list[str]:
    raw, problems = read_rows(path.read_text(encoding="utf-8"), json_format=json_named(path.name))
    rows, invalid = parse_rows(raw)
    if problems or invalid:
        first = [*problems, *invalid][0]
        raise ValueError(f"{path}: line {first.line}: {first.message}")
    return [row.account.account_id for row in rows]
