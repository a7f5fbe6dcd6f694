"""A state machine definition's paths and Choice rules, evaluated as Step Functions does, for what runs the
definition outside AWS: the in-process walker of the use-case tests (tests/walk.py) and the burst model
(scripts/benchmarks/model)."""

from __future__ import annotations

from typing import Any


def get(state: dict[str, Any], path: str) -> tuple[bool, Any]:
    """A reference path (`$.a.b`) in the state: (present, value)."""
    if path == "$":
        return True, state
    value: Any = state
    for part in path.removeprefix("$.").split("."):
        if not isinstance(value, dict) or part not in value:
            return False, None
        value = value[part]
    return True, value


def holds(rule: dict[str, Any], state: dict[str, Any]) -> bool:
    """A Choice rule (or one of its nested rules) on the state."""
    if "And" in rule:
        return all(holds(r, state) for r in rule["And"])
    if "Or" in rule:
        return any(holds(r, state) for r in rule["Or"])
    if "Not" in rule:
        return not holds(rule["Not"], state)
    present, value = get(state, rule["Variable"])
    if "IsPresent" in rule:
        return present == rule["IsPresent"]
    if "IsNull" in rule:
        return present and (value is None) == rule["IsNull"]
    if not present:
        # Step Functions fails the execution (States.Runtime) when a comparison's Variable is missing; the
        # definition guards each one with IsPresent where it may be.
        raise KeyError(f"Choice rule on a missing {rule['Variable']}")
    if "StringEquals" in rule:
        return isinstance(value, str) and value == rule["StringEquals"]
    if "BooleanEquals" in rule:
        return isinstance(value, bool) and value is rule["BooleanEquals"]
    for name, test in (
        ("NumericEquals", lambda a, b: a == b),
        ("NumericGreaterThan", lambda a, b: a > b),
        ("NumericGreaterThanEquals", lambda a, b: a >= b),
        ("NumericLessThan", lambda a, b: a < b),
        ("NumericLessThanEquals", lambda a, b: a <= b),
    ):
        if name in rule:
            return isinstance(value, int | float) and not isinstance(value, bool) and test(value, rule[name])
    raise NotImplementedError(f"a Choice comparison this evaluator does not know: {sorted(rule)}")
