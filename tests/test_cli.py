"""`rootmail triage`: offline classification from the command line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "corpus"
EXPECTED = json.loads((CORPUS / "expected.json").read_text(encoding="utf-8"))


def rootmail(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rootmail.entrypoints.cli", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )


def test_triage_json_prints_one_object_per_file_with_the_promised_fields():
    names = sorted(EXPECTED)[:6] + [n for n, e in EXPECTED.items() if e["malformed"]][:2]
    result = rootmail(
        "triage", "--json", "--accounts", str(CORPUS / "accounts.json"), *(str(CORPUS / n) for n in names)
    )
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [Path(line["file"]).name for line in lines] == names
    for line in lines:
        for field in (
            "file",
            "message_id",
            "account_ids",
            "category",
            "rule_id",
            "action",
            "authentic",
            "case_id",
        ):
            assert field in line
        assert isinstance(line["problems"], list)
        expected = EXPECTED[Path(line["file"]).name]
        assert (line["category"], line["action"]) == (expected["category"], expected["action"])


def test_a_missing_file_is_an_error_on_stderr_and_a_nonzero_exit_but_the_others_are_triaged():
    present = str(CORPUS / sorted(EXPECTED)[0])
    result = rootmail("triage", "--json", present, "does/not/exist.eml")
    assert result.returncode != 0
    assert "does/not/exist.eml: no such file" in result.stderr
    assert len(result.stdout.splitlines()) == 1


def test_a_malformed_accounts_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "accounts.json"
    bad.write_text('{"not": "a list"}', encoding="utf-8")
    result = rootmail("triage", "--accounts", str(bad), str(CORPUS / sorted(EXPECTED)[0]))
    assert result.returncode == 2
    assert "expected a JSON array of ListAccounts items" in result.stderr


def test_human_output_names_category_and_action():
    name = sorted(EXPECTED)[0]
    result = rootmail("triage", str(CORPUS / name))
    expected = EXPECTED[name]
    assert f"{expected['category']} → {expected['action']}" in result.stdout


def test_rules_validate_accepts_the_default_rules():
    result = rootmail("rules", "validate")
    assert result.returncode == 0 and "valid" in result.stdout


def test_rules_test_scores_a_catalogue_per_category_and_language(tmp_path):
    # Two real mails of the catalogue and one copy whose category is set wrong on purpose: the score says so.
    real = CORPUS / "real" / "rules"
    health = json.loads((real / "204-lambda-nodejs12-eos-aws-samples-2022.json").read_text(encoding="utf-8"))
    marketing = json.loads(
        (real / "505-awsome-day-online-reminder-marketing.json").read_text(encoding="utf-8")
    )
    mislabelled = {**health, "category": "billing"}
    for name, mail in (("a.json", health), ("b.json", marketing), ("c.json", mislabelled)):
        (tmp_path / name).write_text(json.dumps(mail), encoding="utf-8")
    result = rootmail(
        "rules", "test", "--catalogue", str(tmp_path), "--accounts", str(CORPUS / "accounts.json"), "--json"
    )
    assert result.returncode == 0, result.stderr
    rows = {(r["category"], r["language"]): r for r in json.loads(result.stdout)}
    assert rows[("health", "en")] == {
        "category": "health",
        "language": "en",
        "mails": 1,
        "decided": 1,
        "right": 1,
        "wrong": 0,
        "queued": 0,
    }
    assert rows[("unclassified", "en")]["right"] == 1 and rows[("unclassified", "en")]["queued"] == 1
    assert rows[("billing", "en")]["wrong"] == 1 and rows[("billing", "en")]["right"] == 0
    text = rootmail("rules", "test", "--catalogue", str(tmp_path / "missing"))
    assert text.returncode == 2 and "no such folder" in text.stderr
