"""The triage state machine's definition walked in process, over in-memory ports: its own Choice rules pick each next
state, a task's result goes where its ResultPath says, and an error goes where its Catch says (retries are the
emulator's to show; a Wait moves the services' clock on instead of waiting). Use-case tests run the steps as the definition chains them, in milliseconds; `triage`
stores a mail and walks its execution, on `services()` (the sample organisation and the default rules)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fakes import Services
from rootmail.app.offline import load_accounts
from rootmail.app.payloads import FinalState, Payload, TriageState
from rootmail.app.triage import deliveries, intake, record
from rootmail.domain.executions import execution_name, mail_id_for
from rootmail.domain.rules.files import load_rule_files
from rootmail_local.asl import get, holds

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "corpus"
DEFINITION = json.loads((ROOT / "statemachine" / "triage.asl.json").read_text(encoding="utf-8"))
MAX_STATES = 25_000 // 3
STEPS: dict[str, Callable[[TriageState, Services], Any]] = {
    "parse": intake.parse_step,
    "resolve": intake.resolve_step,
    "refresh": intake.refresh_step,
    "classify": intake.classify_step,
    "forward": deliveries.forward_step,
    "ticket": deliveries.ticket_step,
    "escalate": deliveries.escalate_step,
    "alert": deliveries.alert_step,
    "record": record.record_step,
}


def _put(state: dict[str, Any], path: str, value: Any) -> None:
    *parents, leaf = path.removeprefix("$.").split(".")
    for part in parents:
        state = state.setdefault(part, {})
    state[leaf] = value


def run(services: Services, execution: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """One execution from its input (what ingest starts it with): its final output and the states it went through."""
    state, name, visited = json.loads(json.dumps(execution)), DEFINITION["StartAt"], []
    while True:
        # Step Functions ends an execution at 25,000 history events (a few per state): a loop that never ends is
        # a failure here too.
        assert len(visited) < MAX_STATES, f"{len(visited)} states and still running: {visited[-6:]}"
        visited.append(name)
        spec = DEFINITION["States"][name]
        if spec["Type"] == "Choice":
            name = next((c["Next"] for c in spec["Choices"] if holds(c, state)), spec["Default"])
            continue
        unknown = set(spec) & {
            "InputPath",
            "Parameters",
            "ResultSelector",
            "OutputPath",
            "Items",
            "ItemSelector",
        }
        assert not unknown, f"{name} uses {unknown}, which this walker does not follow"
        if spec["Type"] == "Wait":
            # No real waiting: the services' clock (when a test set it) moves on to the Wait's end.
            if "TimestampPath" in spec:
                _, until = get(state, spec["TimestampPath"])
                moment = datetime.strptime(until, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
                services.clock.advance_to(int(moment.timestamp() * 1000))
            elif "SecondsPath" in spec:
                _, seconds = get(state, spec["SecondsPath"])
                services.clock.advance_to(services.clock.at_ms + int(seconds) * 1000)
            name = spec["Next"]
            continue
        step = STEPS[spec["Resource"]["Fn::GetAtt"][0]]
        try:
            # As the handler does: the state validated in, the result as JSON out (nothing a state cannot hold).
            model = FinalState if step is record.record_step else TriageState
            result = step(model.model_validate(json.loads(json.dumps(state))), services)
            result = json.loads(json.dumps(result.as_state() if isinstance(result, Payload) else result))
        except Exception as exc:
            error = type(exc).__name__
            catch = next(
                (c for c in spec.get("Catch", []) if {error, "States.ALL"} & set(c["ErrorEquals"])), None
            )
            if catch is None:
                raise
            cause = json.dumps({"errorMessage": str(exc), "errorType": error})
            _put(state, catch["ResultPath"], {"Error": error, "Cause": cause})
            name = catch["Next"]
            continue
        if spec.get("End"):
            return result, visited
        _put(state, spec["ResultPath"], result)
        name = spec["Next"]


# ---- the sample organisation and rules, and a mail stored and triaged as the pipeline does ------------------

ACCOUNTS = load_accounts(CORPUS / "accounts.json", CORPUS / "contacts.json")
RULES = [rule.to_item() for rule in load_rule_files(ROOT / "rules")]


def services(**settings: Any) -> Services:
    return Services(accounts=ACCOUNTS, rules=RULES, **settings)


def triage(
    rt: Services, name: str, raw: bytes | None = None, *, run_name: str | None = None
) -> dict[str, Any]:
    """Store the mail as SES does, start its triage as ingest does, and walk the execution to its end; with
    `run_name`, as an operators' retry run starts it again (its own execution, the rules read fresh)."""
    output, _ = walked(rt, name, raw, run_name=run_name)
    return output


def walked(
    rt: Services, name: str, raw: bytes | None = None, *, run_name: str | None = None
) -> tuple[dict[str, Any], list[str]]:
    """As `triage`, with the states the execution went through."""
    key = rt.mail_store.put(
        f"incoming/{name}", raw if raw is not None else (CORPUS / f"{name}.eml").read_bytes()
    )
    intake.start_triage([(rt.mail_store.bucket, key)], rt)
    name_ = execution_name(key, run_name)
    started = rt.starter.executions.get(name_)
    execution = (
        started["payload"]
        if started and run_name is None
        else {
            "bucket": rt.mail_store.bucket,
            "key": key,
            "mail_id": mail_id_for(key),
            "execution": name_,
            **({"retry": {"run": run_name}} if run_name else {}),
        }
    )
    return run(rt, execution)
