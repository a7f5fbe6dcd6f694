"""What the logs may and may not hold: never a secret; addresses only as ***@domain when redaction is on."""

from __future__ import annotations

import io
import json
from pathlib import Path

from rootmail.app.offline import load_accounts
from rootmail.bootstrap import Runtime
from rootmail.config import Settings
from rootmail.domain.rules.files import load_rule_files
from rootmail.observability import logger, redact_addresses
from rootmail_local.emulator import LocalPipeline

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "corpus"


def logged(buffer: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in buffer.getvalue().splitlines() if line.startswith("{")]


def test_addresses_are_redacted_from_every_log_line_when_configured(log):
    Runtime(Settings(redact_addresses=True))
    try:
        logger.info(
            "forwarded to ops@acme.example",
            extra={
                "recipient": "ops@acme.example, cloud@acme.example",
                "contacts": ["a.b+c@sakura.example.jp"],
            },
        )
    finally:
        redact_addresses(False)
    (line,) = logged(log)
    text = json.dumps(line)
    assert "ops@" not in text and "cloud@" not in text and "a.b+c@" not in text
    assert line["message"] == "forwarded to ***@acme.example"
    assert line["contacts"] == ["***@sakura.example.jp"]


def test_exceptions_and_arguments_are_redacted_too(log):
    Runtime(Settings(redact_addresses=True))
    try:
        try:
            raise RuntimeError("SES rejected ops@acme.example")
        except RuntimeError:
            logger.exception("delivery to %s failed", "cloud@acme.example")
    finally:
        redact_addresses(False)
    (line,) = logged(log)
    assert "ops@" not in json.dumps(line) and "cloud@" not in json.dumps(line)
    assert line["message"] == "delivery to ***@acme.example failed"
    assert "SES rejected ***@acme.example" in line["exception"] and line["exception_name"] == "RuntimeError"


def test_addresses_stay_readable_unless_configured(log):
    Runtime(Settings())
    logger.info("forwarded", extra={"recipient": "ops@acme.example"})
    assert logged(log)[0]["recipient"] == "ops@acme.example"


def test_no_secret_reaches_the_logs_of_a_whole_run(log, capsys):
    names = [
        "11-health-single-account",
        "01-support-case-new",
        "08-abuse-report-ec2",
        "24-credentials-password-reset",
    ]
    with LocalPipeline() as pipeline:
        pipeline.seed_accounts(load_accounts(CORPUS / "accounts.json", CORPUS / "contacts.json"))
        pipeline.seed_rules(load_rule_files(ROOT / "rules"))
        for name in names:
            pipeline.store_mail(name, (CORPUS / f"{name}.eml").read_bytes())
        pipeline.zendesk.fail_next(500, times=2)  # errors are logged too
        pipeline.wait()
        pipeline.invoke("digest", {})
        pipeline.slack_command("retry")
        pipeline.wait()
        secrets = ["local-zendesk-token", "local-slack-token", pipeline.signing_secret]
    out = capsys.readouterr()
    everything = log.getvalue() + out.out + out.err
    assert "triage started" in everything  # the logs were captured
    for secret in secrets:
        assert secret not in everything
