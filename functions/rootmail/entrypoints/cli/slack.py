"""`rootmail digest` and `rootmail slack serve`: the operators' digest in a terminal, and the Slack endpoint on
localhost (against the configured AWS, or with --local on the embedded emulator with the sample mail)."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

from rootmail.config import Settings, get_settings


def add_commands(commands: Any) -> None:
    digest = commands.add_parser("digest", help="the operators' digest of queued mail, in the terminal")
    digest.add_argument("--post", action="store_true", help="also post it to the operators' Slack channel")
    digest.add_argument("--json", action="store_true", help="print the patterns as JSON")
    digest.add_argument("--language", choices=("en", "ja"), help="default: $ROOTMAIL_OPERATOR_LANGUAGE or en")
    digest.add_argument("--table", metavar="NAME", help="ledger table (default: $ROOTMAIL_LEDGER_TABLE)")

    slack = commands.add_parser("slack", help="the Slack endpoint (/rootmail, buttons, the rule modal)")
    slack_commands = slack.add_subparsers(dest="slack_command", required=True, metavar="SUBCOMMAND")
    serve = slack_commands.add_parser("serve", help="serve the Slack endpoint on localhost")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=3000)
    serve.add_argument(
        "--local",
        action="store_true",
        help="run on the embedded emulator, with the sample mail triaged first (no AWS, no Slack)",
    )
    serve.add_argument("--mail-dir", type=Path, default=Path("tests/corpus"), metavar="DIR")
    serve.add_argument("--accounts", type=Path, default=Path("tests/corpus/accounts.json"), metavar="FILE")
    serve.add_argument("--rules", type=Path, default=Path("rules"), metavar="DIR")


def run(args: argparse.Namespace) -> int:
    if args.command == "digest":
        return _digest(args)
    return _serve(args)


def _digest(args: argparse.Namespace) -> int:
    from rootmail.app.slack_commands import digest
    from rootmail.bootstrap import Runtime
    from rootmail.domain.digest import group_queue
    from rootmail.messages.operators import digest_text

    overrides: dict[str, Any] = {}
    if args.table:
        overrides["ledger_table"] = args.table
    if args.language:
        overrides["operator_language"] = args.language
    settings = Settings(**overrides) if overrides else get_settings()
    settings.require("ledger_table")
    rt = Runtime(settings)
    result = digest(rt, post=args.post)
    if args.json:
        print(json.dumps(result["patterns"], ensure_ascii=False, indent=2))
    else:
        patterns = group_queue(rt.ledger.in_state("queued")) if result["queued"] else []
        print(digest_text(patterns, language=settings.operator_language, now=result["at"]))
    if args.post:
        print(f"posted to {settings.slack_channel} (ts {result['ts']})", file=sys.stderr)
    return 0


def _serve(args: argparse.Namespace) -> int:
    from rootmail.entrypoints.slack_app import create_app

    with contextlib.ExitStack() as stack:
        if args.local:
            pipeline = stack.enter_context(_local_pipeline(args))
            _print_local_help(pipeline, f"http://{args.host}:{args.port}")
        else:
            settings = get_settings()
            for name in ("slack_signing_secret_parameter", "ledger_table", "slack_requests_table"):
                settings.require(name)
            print(
                f"Serving the Slack endpoint on http://{args.host}:{args.port}/slack/commands and /slack/interactions"
            )
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        create_app().run(host=args.host, port=args.port, threaded=True)
    return 0


@contextlib.contextmanager
def _local_pipeline(args: argparse.Namespace) -> Any:
    from rootmail.domain.rules.files import load_rule_files
    from rootmail_local.demo import load_demo_accounts, mail_key, quiet_logs
    from rootmail_local.emulator import LocalPipeline

    provider = load_demo_accounts(args.accounts)
    files = sorted(args.mail_dir.glob("*.eml"))
    with LocalPipeline(organizations=provider.management_accounts) as pipeline:
        print(
            f"Local emulator: {len(provider.accounts)} account(s) in {len(provider.organizations)} "
            f"organisation(s), {len(files)} sample mail(s) from {args.mail_dir} …"
        )
        with open(os.devnull, "w") as sink, quiet_logs(sink):  # the functions' JSON logs, as on Lambda
            provider.set_up(pipeline)
            pipeline.seed_rules(load_rule_files(args.rules))
            for path in files:
                pipeline.store_mail(mail_key(path), path.read_bytes())
            pipeline.wait(timeout=60 + 5 * len(files))
        yield pipeline


def _print_local_help(pipeline: Any, base: str) -> None:
    from rootmail_local.slack_requests import COMMANDS_PATH, command_body, curl, signed

    user, channel = pipeline.operator_ids[0], pipeline.channel_ids[0]
    body = command_body("list", user=user, channel=channel, response_url=pipeline.slack.response_url("curl"))
    print(
        f"Serving the Slack endpoint on {base}{COMMANDS_PATH} and {base}/slack/interactions\n"
        f"  signing secret: {pipeline.signing_secret} (local only) · operator {user} · channel {channel}\n"
        f"  Slack stand-in (messages, response_urls): {pipeline.slack.base_url}\n"
        "A signed `/rootmail list`, valid for 5 minutes (sign your own with the README's recipe):\n"
        f"  {curl(base + COMMANDS_PATH, signed(pipeline.signing_secret, body), body)}\n"
        "Ctrl-C stops the server and the emulator."
    )
