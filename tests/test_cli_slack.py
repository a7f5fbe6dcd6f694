"""`rootmail digest` and `rootmail slack serve`: the digest in a terminal, the Slack endpoint on localhost."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from rootmail.domain.rules.files import load_rule_files
from rootmail.entrypoints.cli import main
from rootmail_local.emulator import LocalPipeline
from rootmail_local.slack_requests import command_body, signed

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "corpus"
REMINDER = "30-unclassified-reinvent-reminder.eml"


@pytest.fixture
def queued_reminder():
    with LocalPipeline() as local:
        local.seed_rules(load_rule_files(ROOT / "rules"))
        local.store_mail("reminder", (CORPUS / REMINDER).read_bytes())
        local.wait()
        yield local


def test_digest_prints_the_patterns_and_posts_only_when_asked(queued_reminder, capsys):
    assert main(["digest"]) == 0
    out = capsys.readouterr().out
    assert "1 mail(s) queued: 1 unclassified in 1 pattern(s)" in out
    assert "AWS re:Invent <n> session reminder" in out and "reminder" in out
    assert queued_reminder.slack.messages == []

    assert main(["digest", "--post", "--language", "ja"]) == 0
    assert "未分類 1 件" in capsys.readouterr().out
    assert "未分類 1 件" in queued_reminder.slack.messages[-1]["text"]

    assert main(["digest", "--json"]) == 0
    patterns = json.loads(capsys.readouterr().out)
    assert [p["mail_ids"] for p in patterns] == [["reminder"]]


def test_digest_without_a_ledger_says_what_is_missing(monkeypatch, capsys):
    monkeypatch.delenv("ROOTMAIL_LEDGER_TABLE", raising=False)
    from rootmail.config import get_settings

    get_settings.cache_clear()
    assert main(["digest"]) == 2
    assert "ROOTMAIL_LEDGER_TABLE is not set" in capsys.readouterr().err


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.loads(answer.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_slack_serve_local_answers_signed_requests_over_http(tmp_path):
    mails = tmp_path / "mails"
    mails.mkdir()
    shutil.copy(CORPUS / REMINDER, mails / REMINDER)
    port = free_port()
    argv = [
        sys.executable,
        "-m",
        "rootmail.entrypoints.cli",
        "slack",
        "serve",
        "--local",
        "--port",
        str(port),
    ]
    argv += ["--mail-dir", str(mails), "--accounts", str(CORPUS / "accounts.json")]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ROOTMAIL_", "AWS_"))}
    server = subprocess.Popen(
        argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        printed = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = server.stdout.readline()
            printed.append(line)
            if "Ctrl-C" in line or server.poll() is not None:
                break
        banner = "".join(printed)
        assert f"http://127.0.0.1:{port}/slack/commands" in banner and "curl -sS" in banner, banner
        url = f"http://127.0.0.1:{port}/slack/commands"
        body = command_body(
            "list", user="U0LOCALOPS", channel="C0LOCALOPS", response_url="http://x/response/1"
        )
        for _ in range(50):  # the banner comes just before Flask listens
            try:
                status, answer = post(url, body, signed("local-signing-secret", body))
                break
            except urllib.error.URLError:
                time.sleep(0.1)
        assert status == 200 and "1 in all" in answer["text"]
        status, answer = post(url, body.replace(b"list", b"help"), signed("local-signing-secret", body))
        assert status == 401 and "invalid signature" in answer["error"]
    finally:
        server.terminate()
        server.wait(timeout=20)
