"""The scenarios: bursts of mail (AWS writing to every account within minutes) on top of the everyday mix, and a
quiet day; each run through the model of the deployed stack and summed up."""

from __future__ import annotations

import math
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from benchmarks.common import MIX
from benchmarks.cost import PRICES
from benchmarks.model.asl import Definition
from benchmarks.model.behaviour import Durations, FunctionSettings, Measurement, Profile
from benchmarks.model.quotas import Assumptions, Quotas
from benchmarks.model.stack import Stack

SECONDS_A_YEAR = 365 * 24 * 3600.0


@dataclass(frozen=True)
class Scenario:
    name: str
    burst: int  # mails in the burst (one per account)
    burst_terminal: str = "forwarded"  # the burst's notice: a profile that ends so (a notice forwarded)
    arrival_seconds: float = 600.0  # SES receives the burst evenly over this long
    ses_rate: float | None = None  # a raised SES rate: the quota and the configured pacing rate
    everyday: int | None = None  # everyday mails in the window instead of the year's rate
    everyday_seconds: float | None = None  # the everyday mix's window (default: the burst's)


SCENARIOS = [
    Scenario("burst of 1,000", 1_000),
    Scenario("burst of 10,000", 10_000),
    Scenario("burst of 50,000, SES raised to 200/s", 50_000, ses_rate=200.0),
    Scenario("burst of 1,000 restricted (Slack alerts)", 1_000, burst_terminal="restricted"),
    Scenario("quiet day: 1,000 mails over 24 h", 0, everyday=1_000, everyday_seconds=24 * 3600.0),
]


def pick(profiles: dict[str, Profile], terminal: str) -> Profile:
    """The burst's notice: the first profile (by name) that ends in `terminal`, preferring a single-recipient-set
    notice (one SES message)."""
    found = sorted(
        (p for p in profiles.values() if p.terminal == terminal),
        key=lambda p: (len(p.sends()) != 1, p.name),
    )
    if not found:
        raise ValueError(f"no profile ends {terminal}: measure the corpus, or pass one")
    return found[0]


def everyday(profiles: dict[str, Profile], count: int, seconds: float, rng: random.Random) -> list[Profile]:
    """`count` mails in the assumed mix (benchmarks.common.MIX), each a corpus mail of its kind."""
    kinds: dict[str, list[Profile]] = {}
    for profile in profiles.values():
        kinds.setdefault(profile.kind, []).append(profile)
    present = [k for k in MIX if k in kinds]
    if not present:
        return [rng.choice(list(profiles.values())) for _ in range(count)]
    chosen = rng.choices(present, weights=[MIX[k] for k in present], k=count)
    return [rng.choice(sorted(kinds[k], key=lambda p: p.name)) for k in chosen]


def arrivals(
    scenario: Scenario, profiles: dict[str, Profile], assumptions: Assumptions, seed: int = 11
) -> list[tuple[float, Profile, bool]]:
    rng = random.Random(seed)
    result: list[tuple[float, Profile, bool]] = []
    if scenario.burst:
        notice = pick(profiles, scenario.burst_terminal)
        step = scenario.arrival_seconds / scenario.burst
        result += [(i * step, notice, True) for i in range(scenario.burst)]
    window = scenario.everyday_seconds or scenario.arrival_seconds
    count = scenario.everyday
    if count is None:  # the year's rate over the window, a Poisson count
        expected = assumptions.everyday_mails_a_year * window / SECONDS_A_YEAR
        count = _poisson(expected, rng)
    times = sorted(rng.uniform(0, window) for _ in range(count))
    result += [(t, p, False) for t, p in zip(times, everyday(profiles, count, window, rng), strict=True)]
    return result


def _poisson(mean: float, rng: random.Random) -> int:
    limit, k, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        k += 1
        product *= rng.random()
    return k


def percentile(values: list[float], share: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(share * len(ordered)) - 1))]


@dataclass
class Outcome:
    """One scenario's figures."""

    scenario: str
    row: dict[str, Any]
    dollars: dict[str, float] = field(default_factory=dict)
    unmeasured: set[str] = field(default_factory=set)


def simulate(
    scenario: Scenario,
    definition: Definition,
    settings: FunctionSettings,
    measurement: Measurement,
    *,
    quotas: Quotas | None = None,
    assumptions: Assumptions | None = None,
    seed: int = 7,
) -> Outcome:
    quotas = quotas or Quotas()
    assumptions = assumptions or Assumptions()
    if scenario.ses_rate:
        quotas = quotas.with_(ses_max_send_rate=scenario.ses_rate)
    durations = Durations(measurement.durations, scale=assumptions.duration_scale)
    stack = Stack(
        definition,
        settings,
        durations,
        quotas=quotas,
        assumptions=assumptions,
        ses_send_rate=scenario.ses_rate,
        seed=seed,
    )
    mails = stack.run(arrivals(scenario, measurement.profiles, assumptions, seed=seed + 4))
    return summarise(scenario.name, stack, mails, durations)


def summarise(name: str, stack: Stack, mails: list[Any], durations: Durations) -> Outcome:
    s = stack.stats
    first = min((m.received for m in mails), default=0.0)
    terminal = [m for m in mails if m.terminal is not None]
    lost = [m for m in mails if m.terminal is None]
    end = max((m.terminal_at for m in terminal), default=first)
    drain = end - first
    last = max((m.received for m in mails), default=0.0)
    delivered = [m.delivered_at - m.received for m in mails if m.delivered_at is not None]
    states = Counter(m.terminal for m in terminal)
    queued = Counter(m.reason or "?" for m in terminal if m.terminal == "queued")
    posts = stack.slack.posted
    updates = stack.slack.updated
    invocations = sum(s.invocations.values())
    # DynamoDB: what each mail's triage used on the emulator, plus the model's own extra writes (a reservation of
    # a shared rate is one or two writes; the cost model counts a unit an item written).
    units = sum(m.profile.dynamodb_units * max(1, len(m.executions)) for m in mails) + 2 * s.reservations
    s3 = sum(m.profile.s3_requests * max(1, len(m.executions)) for m in mails)
    dollars = {
        "step_functions": s.transitions * PRICES["standard_transition"],
        "lambda": invocations * PRICES["lambda_request"] + s.gb_seconds * PRICES["lambda_gb_second_arm64"],
        "ses": len(mails) * (PRICES["ses_mail_received"] + PRICES["ses_chunk_received"])
        + s.ses_recipients * PRICES["ses_mail_sent"],
        "dynamodb": units * PRICES["dynamodb_write_unit"],
        "s3": s3 * PRICES["s3_get"],
    }
    total = sum(dollars.values())
    p50, p99 = percentile(delivered, 0.5), percentile(delivered, 0.99)
    row: dict[str, Any] = {
        "run": name,
        "mails": len(mails),
        "minutes_to_all_terminal": round(drain / 60, 1),
        "minutes_after_last_receipt": round(max(0.0, end - last) / 60, 1),
        "queued": sum(queued.values()),
        "lost": len(lost),
        "dead_lettered": sum(1 for m in mails if m.dead_lettered),
        "delivery_p50_s": None if p50 is None else round(p50, 1),
        "delivery_p99_s": None if p99 is None else round(p99, 1),
        "slack_posts_peak_per_min": max(posts.values(), default=0),
        "slack_updates_peak_per_min": max(updates.values(), default=0),
        "transitions": s.transitions,
        "lambda_invocations": invocations,
        "lambda_gb_seconds": round(s.gb_seconds, 1),
        "ses_recipients": s.ses_recipients,
        "usd": round(total, 2),
        "usd_per_1000": round(1000 * total / max(1, len(mails)), 3),
        "terminal_states": dict(states.most_common()),
        "queued_by_error": dict(queued.most_common()),
        "throttles": {
            "ses": s.ses_throttled,
            "start_execution": s.start_throttled,
            "lambda": sum(stack.lambdas.throttled.values()),
            "zendesk_429": stack.zendesk.rejected,
            "slack_429": stack.slack.rejected,
            "state_transition_wait_s": round(s.transition_wait, 1),
        },
        "paced_waits": dict(s.paced),
        "peak_concurrency": dict(stack.lambdas.peak.most_common()),
        "cold_starts": sum(stack.lambdas.cold_starts.values()),
        "reconcile": {"redriven": s.redriven, "given_up": s.given_up, "runs": s.reconcile_runs},
        "failed_executions": dict(s.failed_executions),
        "usd_by_service": {k: round(v, 2) for k, v in dollars.items()},
    }
    return Outcome(name, row, dollars, set(durations.unmeasured))
