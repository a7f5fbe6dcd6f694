"""The triage definition read as Step Functions reads it: states, Choice rules, Wait times, Retry and Catch.

Generic over the definition: nothing here names a state. What the model cannot interpret (a state type or a field
it does not follow) is listed by `Definition.unsupported()` and the report shows it.
"""

from __future__ import annotations

import copy
import json
import random
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.common import ROOT
from rootmail_local.asl import get, holds

DEFINITION = ROOT / "statemachine" / "triage.asl.json"
# The model's clock: simulated second 0 is this moment (a Wait's TimestampPath compares timestamps with it).
EPOCH = datetime(2026, 1, 5, tzinfo=UTC)
EPOCH_S = EPOCH.timestamp()

# What each state type may carry that the model follows; anything else is reported.
FOLLOWED = {
    "Task": {"Type", "Comment", "Resource", "ResultPath", "Retry", "Catch", "Next", "End", "TimeoutSeconds"},
    "Choice": {"Type", "Comment", "Choices", "Default"},
    "Wait": {"Type", "Comment", "Seconds", "SecondsPath", "Timestamp", "TimestampPath", "Next", "End"},
    "Pass": {"Type", "Comment", "Result", "ResultPath", "Next", "End"},
    "Succeed": {"Type", "Comment"},
    "Fail": {"Type", "Comment", "Error", "Cause"},
}
COMPARISONS = {
    "StringEquals",
    "BooleanEquals",
    "IsPresent",
    "IsNull",
    "NumericEquals",
    "NumericGreaterThan",
    "NumericGreaterThanEquals",
    "NumericLessThan",
    "NumericLessThanEquals",
}


def iso(seconds: float) -> str:
    """A simulated moment as the timestamp a function writes (whole seconds, UTC)."""
    return datetime.fromtimestamp(EPOCH_S + seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def moment(text: str) -> float:
    """A timestamp in the state (RFC 3339) as simulated seconds."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() - EPOCH_S


def put(state: dict[str, Any], path: str | None, value: Any) -> dict[str, Any]:
    """The state with `value` at `path` (ResultPath): `$` replaces the state, None discards the value. The dicts
    along the path are copied, so a result shared by many mails is never changed through one of them."""
    if path is None:
        return state
    if path == "$":
        return value if isinstance(value, dict) else {"$": value}
    parts = path.removeprefix("$.").split(".")
    top = dict(state)
    node = top
    for part in parts[:-1]:
        child = node.get(part)
        node[part] = dict(child) if isinstance(child, dict) else {}
        node = node[part]
    node[parts[-1]] = value
    return top


def _comparisons(rule: dict[str, Any]) -> set[str]:
    if "And" in rule or "Or" in rule:
        return set().union(*(_comparisons(r) for r in rule.get("And", rule.get("Or", []))))
    if "Not" in rule:
        return _comparisons(rule["Not"])
    return set(rule) - {"Variable", "Next"}


def _variables(rule: dict[str, Any]) -> set[str]:
    if "And" in rule or "Or" in rule:
        return set().union(*(_variables(r) for r in rule.get("And", rule.get("Or", []))))
    if "Not" in rule:
        return _variables(rule["Not"])
    return {rule["Variable"]}


@dataclass(frozen=True)
class Retrier:
    errors: tuple[str, ...]
    interval: float
    backoff: float
    max_attempts: int
    max_delay: float | None
    full_jitter: bool

    @classmethod
    def of(cls, spec: dict[str, Any]) -> Retrier:
        return cls(
            errors=tuple(spec["ErrorEquals"]),
            interval=float(spec.get("IntervalSeconds", 1)),
            backoff=float(spec.get("BackoffRate", 2.0)),
            max_attempts=int(spec.get("MaxAttempts", 3)),
            max_delay=float(spec["MaxDelaySeconds"]) if "MaxDelaySeconds" in spec else None,
            full_jitter=spec.get("JitterStrategy", "NONE") == "FULL",
        )

    def delay(self, attempt: int, rng: random.Random) -> float:
        """The wait before retry number `attempt` (1-based)."""
        delay = self.interval * self.backoff ** (attempt - 1)
        if self.max_delay is not None:
            delay = min(delay, self.max_delay)
        return rng.uniform(0, delay) if self.full_jitter else delay


def matches(errors: tuple[str, ...] | list[str], error: str) -> bool:
    """ErrorEquals: the name itself, States.ALL, or States.TaskFailed (any error but a timeout)."""
    return (
        error in errors
        or "States.ALL" in errors
        or ("States.TaskFailed" in errors and error != "States.Timeout")
    )


class Definition:
    """One state machine definition (a dict as the file holds it)."""

    def __init__(self, spec: dict[str, Any], source: str = "") -> None:
        self.spec = spec
        self.source = source
        self.start: str = spec["StartAt"]
        self.states: dict[str, dict[str, Any]] = spec["States"]
        self.retriers = {
            name: [Retrier.of(r) for r in state.get("Retry", [])] for name, state in self.states.items()
        }

    @classmethod
    def load(cls, path: Path = DEFINITION) -> Definition:
        return cls(json.loads(path.read_text(encoding="utf-8")), str(path.relative_to(ROOT)))

    def copy(self) -> dict[str, Any]:
        """A deep copy of the definition's JSON, to change (tests make crippled variants from it)."""
        return copy.deepcopy(self.spec)

    @staticmethod
    def function(state: dict[str, Any]) -> str:
        """A Task's Lambda function: `Resource: {"Fn::GetAtt": [name, "Arn"]}` (or an ARN ending in it)."""
        resource = state["Resource"]
        if isinstance(resource, dict) and "Fn::GetAtt" in resource:
            return str(resource["Fn::GetAtt"][0])
        return str(resource).rsplit(":", 1)[-1]

    def functions(self) -> list[str]:
        return list(dict.fromkeys(self.function(s) for s in self.states.values() if s["Type"] == "Task"))

    def choose(self, name: str, state: dict[str, Any]) -> str:
        spec = self.states[name]
        for choice in spec["Choices"]:
            if holds(choice, state):
                return str(choice["Next"])
        if "Default" not in spec:
            raise KeyError(f"{name}: no Choice matched and no Default (States.NoChoiceMatched)")
        return str(spec["Default"])

    @staticmethod
    def wait_until(spec: dict[str, Any], state: dict[str, Any], now: float) -> float:
        """When a Wait state ends, in simulated seconds."""
        if "Seconds" in spec:
            return now + float(spec["Seconds"])
        if "SecondsPath" in spec:
            return now + float(get(state, spec["SecondsPath"])[1])
        if "Timestamp" in spec:
            return max(now, moment(spec["Timestamp"]))
        if "TimestampPath" in spec:
            return max(now, moment(str(get(state, spec["TimestampPath"])[1])))
        raise ValueError(f"a Wait without a duration: {spec}")

    def catcher(self, name: str, error: str) -> dict[str, Any] | None:
        return next((c for c in self.states[name].get("Catch", []) if matches(c["ErrorEquals"], error)), None)

    def retrier(self, name: str, error: str) -> tuple[int, Retrier] | None:
        return next(((i, r) for i, r in enumerate(self.retriers[name]) if matches(r.errors, error)), None)

    def after(self, function: str) -> set[str]:
        """The state variables the Choice states right after a Task of `function` test: how the definition reacts
        to what that function returns (e.g. `$.delivery.paced_until`)."""
        found: set[str] = set()
        for state in self.states.values():
            if state["Type"] != "Task" or self.function(state) != function or "Next" not in state:
                continue
            following = self.states[state["Next"]]
            if following["Type"] == "Choice":
                for choice in following["Choices"]:
                    found |= _variables(choice)
        return found

    def loops_back(self, function: str, variable: str) -> bool:
        """True when a Choice after a Task of `function` sends the mail, on `variable`, through a Wait back to a
        Task of the same function: the definition waits for what the function asked."""
        for state in self.states.values():
            if state["Type"] != "Task" or self.function(state) != function or "Next" not in state:
                continue
            following = self.states[state["Next"]]
            if following["Type"] != "Choice":
                continue
            for choice in following["Choices"]:
                if not any(v.endswith(variable) for v in _variables(choice)):
                    continue
                target = self.states.get(choice["Next"], {})
                if target.get("Type") == "Wait":
                    back = self.states.get(target.get("Next", ""), {})
                    if back.get("Type") == "Task" and self.function(back) == function:
                        return True
        return False

    def without_loop(self, function: str, variable: str) -> Definition:
        """A copy in which each Task of `function` followed by a Choice on `variable` goes straight to that
        Choice's Default: the definition as it was before it waited for what the function asks (for contrast)."""
        spec = self.copy()
        for state in spec["States"].values():
            if state["Type"] != "Task" or self.function(state) != function or "Next" not in state:
                continue
            following = spec["States"][state["Next"]]
            if following["Type"] == "Choice" and any(
                v.endswith(variable) for c in following["Choices"] for v in _variables(c)
            ):
                state["Next"] = following["Default"]
        return Definition(spec, f"{self.source} without its {variable} loop after {function}")

    def unsupported(self) -> list[str]:
        """What the model does not follow: state types and fields, Choice comparisons."""
        problems = []
        for name, state in self.states.items():
            kind = state["Type"]
            if kind not in FOLLOWED:
                problems.append(f"{name}: state type {kind}")
                continue
            extra = set(state) - FOLLOWED[kind]
            if extra:
                problems.append(f"{name}: {', '.join(sorted(extra))}")
            for choice in state.get("Choices", []):
                unknown = _comparisons(choice) - COMPARISONS - {"And", "Or", "Not"}
                if unknown:
                    problems.append(f"{name}: Choice comparison {', '.join(sorted(unknown))}")
        return problems
