"""Handlers for the moto adapter tests: they record calls and fail on demand."""

from __future__ import annotations

from typing import Any

calls: list[dict[str, Any]] = []


class ProbeTransient(Exception):
    pass


class ProbePermanent(Exception):
    pass


def echo(event: dict[str, Any], context: Any) -> dict[str, Any]:
    calls.append({"event": event, "function": context.function_name, "arn": context.invoked_function_arn})
    return {"echo": event, "function": context.function_name}


def flaky(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Fails with ProbeTransient until it has been called `fail_times` times, then answers."""
    calls.append({"event": event, "function": context.function_name})
    if len([c for c in calls if c["function"] == context.function_name]) <= event.get("fail_times", 0):
        raise ProbeTransient("not yet")
    if event.get("permanent"):
        raise ProbePermanent("never")
    return {"ok": True, "calls": len(calls)}
