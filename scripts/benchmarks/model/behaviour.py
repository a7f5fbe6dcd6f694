"""What the model knows of each mail and each function: a mail's profile (what each Lambda function returned for it
when the real handlers ran it on the emulator) and each function's durations (measured samples), plus the
functions' settings in serverless.yml."""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.common import ROOT

SERVERLESS = ROOT / "serverless.yml"
# A checked-in measurement (scripts/bench.py --model-save), for runs without the emulator.
MEASURED = Path(__file__).with_name("measured.json")
# Outputs a delivery step returns while it waits (for a slot of a shared rate, or for a Slack update): the model
# decides those itself, so a profile keeps only the step's final answer.
WAITING_FIELDS = ("paced_until", "settle_at")
# A function the measurement never saw: this long (seconds), as an assumption.
UNMEASURED_SECONDS = 0.05


@dataclass
class Profile:
    """One mail as the real handlers saw it: per function, what each call returned ({"result": ...}) or raised
    ({"error": name}), in call order; the terminal state Record wrote; what it costs beyond Lambda and Step
    Functions (DynamoDB units, S3 requests counted while it ran)."""

    name: str
    kind: str
    calls: dict[str, list[dict[str, Any]]]
    terminal: str
    dynamodb_units: int = 0
    s3_requests: int = 0

    def outcome(self, function: str, call: int) -> dict[str, Any]:
        outcomes = self.calls.get(function) or [{"result": {}}]
        return outcomes[min(call, len(outcomes) - 1)]

    def sends(self) -> list[int]:
        """Recipients of each SES message its forward sent (one message per account)."""
        result: dict[str, Any] = next(
            (o["result"] for o in self.calls.get("forward", []) if "result" in o), {"deliveries": []}
        )
        return [
            len(str(d.get("recipient", "")).split(", "))
            for d in result.get("deliveries", [])
            if d.get("channel") == "ses"
        ]

    def case_id(self) -> str | None:
        parsed: dict[str, Any] = next((o["result"] for o in self.calls.get("parse", []) if "result" in o), {})
        case = parsed.get("case_id")
        return str(case) if case else None


def fixed_profile(
    name: str,
    action: str,
    *,
    terminal: str,
    recipients: int = 1,
    kind: str | None = None,
    case_id: str | None = None,
    refresh: bool = False,
    error: dict[str, str] | None = None,
) -> Profile:
    """A profile made by hand (tests, and runs without a measurement): the path a mail of `action` takes."""
    calls: dict[str, list[dict[str, Any]]] = {
        "parse": [{"result": {"case_id": case_id, "authentic": True}}],
        "resolve": [{"result": {"account_ids": ["111111111111"], "refresh_needed": refresh}}],
        "classify": [{"result": {"action": action, "category": kind or action, "alert": False}}],
        "forward": [
            {
                "result": {
                    "deliveries": [
                        {
                            "channel": "ses",
                            "recipient": ", ".join(f"r{i}@example.com" for i in range(recipients)),
                            "status": "sent",
                        }
                    ],
                    "undelivered": [],
                }
            }
        ],
        "ticket": [{"result": {"deliveries": [{"channel": "zendesk", "status": "sent"}]}}],
        "escalate": [{"result": {"deliveries": [{"channel": "zendesk"}, {"channel": "slack"}]}}],
        "alert": [{"result": {"deliveries": [{"channel": "slack", "status": "sent"}]}}],
        "refresh": [{"result": {"status": "refreshed", "wait_seconds": 0}}],
        "record": [{"result": {"state": terminal}}],
    }
    for function, name_ in (error or {}).items():
        calls[function] = [{"error": name_}]
    return Profile(name, kind or action, calls, terminal)


@dataclass
class Measurement:
    """What the emulator showed: every corpus mail's profile, each function's durations (seconds, one mail at a
    time), and (optionally) a burst through the emulator to check the model against."""

    profiles: dict[str, Profile]
    durations: dict[str, list[float]]
    measured_at: str = ""
    machine: str = ""
    burst: dict[str, Any] | None = None

    def save(self, path: Path) -> None:
        data: dict[str, Any] = {
            "measured_at": self.measured_at,
            "machine": self.machine,
            "durations": {k: [round(v, 4) for v in vs] for k, vs in sorted(self.durations.items())},
            "profiles": {k: asdict(p) for k, p in self.profiles.items()},
        }
        if self.burst:
            data["burst"] = self.burst
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: Path = MEASURED) -> Measurement:
        data = json.loads(path.read_text(encoding="utf-8"))
        return cls(
            profiles={k: Profile(**p) for k, p in data["profiles"].items()},
            durations={k: sorted(v) for k, v in data["durations"].items()},
            measured_at=data.get("measured_at", ""),
            machine=data.get("machine", ""),
            burst=data.get("burst"),
        )

    def by_kind(self) -> dict[str, list[Profile]]:
        kinds: dict[str, list[Profile]] = {}
        for profile in self.profiles.values():
            kinds.setdefault(profile.kind, []).append(profile)
        return kinds


@dataclass
class Durations:
    """Per function, the measured samples (seconds); a call takes one at random, times `scale`."""

    samples: dict[str, list[float]]
    scale: float = 1.0
    unmeasured: set[str] = field(default_factory=set)

    def draw(self, function: str, rng: random.Random) -> float:
        samples = self.samples.get(function)
        if not samples:
            self.unmeasured.add(function)
            return UNMEASURED_SECONDS * self.scale
        return rng.choice(samples) * self.scale


@dataclass(frozen=True)
class FunctionSettings:
    """serverless.yml: each function's memory (MB), timeout (s) and reserved concurrency (None: the shared pool);
    provider defaults where a function sets none. The configured delivery rates (params)."""

    memory_mb: dict[str, int]
    timeout: dict[str, float]
    reserved: dict[str, int | None]
    ingest_retries: int
    params: dict[str, Any]

    @classmethod
    def load(cls, path: Path = SERVERLESS) -> FunctionSettings:
        import yaml

        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
        provider = spec.get("provider", {})
        functions = spec.get("functions", {})
        memory = {n: int(f.get("memorySize", provider.get("memorySize", 1024))) for n, f in functions.items()}
        timeout = {n: float(f.get("timeout", provider.get("timeout", 6))) for n, f in functions.items()}
        reserved = {
            n: (int(f["reservedConcurrency"]) if f.get("reservedConcurrency") is not None else None)
            for n, f in functions.items()
        }
        ingest = functions.get("ingest", {})
        return cls(
            memory_mb=memory,
            timeout=timeout,
            reserved=reserved,
            ingest_retries=int(ingest.get("maximumRetryAttempts", 2)),
            params=dict((spec.get("params") or {}).get("default") or {}),
        )

    def param(self, name: str, default: float) -> float:
        value = self.params.get(name)
        try:
            return float(value) if value not in (None, "") else default
        except (TypeError, ValueError):
            return default
