"""The burst model (scripts/benchmarks/model): a simpy model of the deployed stack that walks the real definition.
Fast (no emulator): fixed task durations and hand-made mail profiles. Outcomes are asserted, never times."""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

from benchmarks.model.asl import Definition, Retrier, holds, iso, moment  # noqa: E402
from benchmarks.model.behaviour import Durations, FunctionSettings, Measurement, fixed_profile  # noqa: E402
from benchmarks.model.quotas import Quotas  # noqa: E402
from benchmarks.model.report import scenarios_bench  # noqa: E402
from benchmarks.model.scenarios import Scenario  # noqa: E402
from benchmarks.model.stack import Stack  # noqa: E402

DEFINITION = Definition.load()
SETTINGS = FunctionSettings.load()
FORWARD = fixed_profile("notice", "forward", terminal="forwarded", recipients=1, kind="health")
RESTRICTED = fixed_profile("held", "restricted", terminal="restricted", kind="credentials")
# Fixed durations: what the model's outcomes must not depend on.
DURATIONS = Durations({f: [0.05, 0.1, 0.2] for f in [*DEFINITION.functions(), "ingest"]})


def burst(
    definition: Definition = DEFINITION,
    *,
    count: int = 300,
    seconds: float = 10.0,
    rate: float = 5.0,
    profile=FORWARD,
    settings: FunctionSettings = SETTINGS,
    zendesk: int | None = None,
    **quotas,
):
    """`count` mails received evenly over `seconds`, SES (and the configured send rate) at `rate` a second; Zendesk
    (and the configured pace) at `zendesk` requests a minute, when given."""
    if zendesk is not None:
        quotas["zendesk_requests_per_minute"] = zendesk
    stack = Stack(
        definition,
        settings,
        DURATIONS,
        quotas=Quotas(ses_max_send_rate=rate, **quotas),
        ses_send_rate=rate,
        zendesk_requests_per_minute=zendesk,
        seed=5,
    )
    mails = stack.run([(i * seconds / count, profile, True) for i in range(count)])
    return stack, mails


def queued_by(mails) -> Counter:
    return Counter(m.reason for m in mails if m.terminal == "queued")


def crippled(max_attempts: int = 1) -> Definition:
    """The real definition as it would be without the forward's wait for a send slot, with its SesThrottled
    retrier cut to `max_attempts` quick tries."""
    spec = DEFINITION.without_loop("forward", "paced_until").copy()
    for state in spec["States"].values():
        for retrier in state.get("Retry", []):
            if "SesThrottled" in retrier["ErrorEquals"]:
                retrier.update(MaxAttempts=max_attempts, IntervalSeconds=1, MaxDelaySeconds=2)
    return Definition(spec, "crippled")


def test_the_model_walks_every_state_of_the_real_definition():
    assert DEFINITION.unsupported() == []
    assert {"parse", "resolve", "classify", "forward", "record"} <= set(DEFINITION.functions())
    assert SETTINGS.memory_mb["forward"] == 512 and SETTINGS.timeout["ticket"] == 60
    assert SETTINGS.ingest_retries == 2


def test_a_burst_far_over_the_send_rate_is_paced_and_nothing_is_queued_for_throttling():
    stack, mails = burst()
    assert len(mails) == 300 and all(m.terminal for m in mails)
    assert Counter(m.terminal for m in mails) == {"forwarded": 300}
    assert queued_by(mails)["SesThrottled"] == 0
    assert stack.paced["forward"] and stack.stats.paced["forward"] > 0  # the definition's Wait did the pacing
    assert stack.stats.ses_recipients == 300  # each mail sent once


def test_without_the_wait_for_a_send_slot_the_model_shows_mails_queued_as_throttled():
    stack, mails = burst(crippled())
    assert not stack.paced["forward"]
    assert all(m.terminal for m in mails)
    assert queued_by(mails)["SesThrottled"] > 50
    assert stack.stats.ses_throttled > 0


def test_the_model_reads_each_retry_from_the_definition():
    _, short = burst(crippled(max_attempts=1))
    _, patient = burst(crippled(max_attempts=8))
    assert queued_by(patient)["SesThrottled"] < queued_by(short)["SesThrottled"]


def test_start_execution_throttled_goes_through_the_retry_chain_and_nothing_is_lost():
    stack, mails = burst(rate=1000.0, sfn_start_bucket=20.0, sfn_start_refill=2.0)
    s = stack.stats
    assert s.start_throttled > 0 and s.dead_lettered > 0  # the SDK's retry, Lambda's two, then the queue
    assert s.redriven >= s.dead_lettered  # the hourly reconcile found each of them
    assert all(m.terminal for m in mails) and Counter(m.terminal for m in mails) == {"forwarded": 300}


def test_reserved_concurrency_in_serverless_yml_limits_the_function(tmp_path):
    text = (ROOT / "serverless.yml").read_text(encoding="utf-8")
    changed = text.replace(
        "    handler: rootmail.entrypoints.handlers.forward.handler\n",
        "    handler: rootmail.entrypoints.handlers.forward.handler\n    reservedConcurrency: 2\n",
    )
    assert changed != text
    (tmp_path / "serverless.yml").write_text(changed, encoding="utf-8")
    settings = FunctionSettings.load(tmp_path / "serverless.yml")
    assert settings.reserved["forward"] == 2
    stack, mails = burst(rate=1000.0, settings=settings)
    assert stack.lambdas.peak["forward"] == 2 and stack.lambdas.throttled["forward"] > 0
    # Throttled tasks are retried as the definition says; what its retries cannot absorb is queued, not lost.
    assert all(m.terminal for m in mails)
    assert set(queued_by(mails)) <= {"Lambda.TooManyRequestsException"}
    assert sum(m.terminal == "forwarded" for m in mails) > 200


def test_alerts_of_one_kind_share_a_slack_message_and_the_definition_waits_for_its_update():
    # Without the definition's wait for the message to show it, every alert is a message of its own, over Slack's
    # 1 a second: some are queued as SlackUnavailable.
    one_each, alone = burst(
        DEFINITION.without_loop("alert", "settle_at"), count=300, seconds=120, profile=RESTRICTED
    )
    assert not one_each.coalesced and max(one_each.slack.posted.values()) >= 60
    assert queued_by(alone)["SlackUnavailable"] > 0
    stack, mails = burst(count=300, seconds=120, profile=RESTRICTED)
    assert stack.coalesced  # the real definition loops through a Wait on $.delivery.settle_at
    assert Counter(m.terminal for m in mails) == {"restricted": 300}
    assert sum(stack.slack.posted.values()) == 1  # one kind, one 5-minute window: one message
    assert 0 < max(stack.slack.updated.values()) <= 20  # at most one update every 3 s


def test_the_asl_pieces_behave_as_step_functions_documents():
    default = Retrier.of({"ErrorEquals": ["States.ALL"]})
    assert (default.interval, default.backoff, default.max_attempts) == (1.0, 2.0, 3)
    capped = Retrier.of({"ErrorEquals": ["X"], "IntervalSeconds": 2, "MaxDelaySeconds": 5})
    assert [capped.delay(n, None) for n in (1, 2, 3)] == [2.0, 4.0, 5.0]  # type: ignore[arg-type]
    import random

    jittered = Retrier.of({"ErrorEquals": ["X"], "IntervalSeconds": 4, "JitterStrategy": "FULL"})
    assert all(0 <= jittered.delay(2, random.Random(n)) <= 8 for n in range(50))
    state = {"a": {"b": True, "s": "x"}}
    assert holds(
        {
            "And": [
                {"Variable": "$.a.b", "BooleanEquals": True},
                {"Not": {"Variable": "$.c", "IsPresent": True}},
            ]
        },
        state,
    )
    assert holds(
        {"Or": [{"Variable": "$.a.s", "StringEquals": "y"}, {"Variable": "$.a.s", "StringEquals": "x"}]},
        state,
    )
    assert moment(iso(125.0)) == 125.0
    wait = {"Type": "Wait", "TimestampPath": "$.t", "Next": "X"}
    assert Definition.wait_until(wait, {"t": iso(100.0)}, now=40.0) == 100.0


def test_the_bench_table_has_every_scenario_on_a_saved_measurement():
    measurement = Measurement(
        profiles={"notice": FORWARD, "held": RESTRICTED},
        durations={f: [0.05, 0.1] for f in DEFINITION.functions()},
    )
    scenarios = [
        Scenario("burst of 200", 200, arrival_seconds=20),
        Scenario("quiet", 0, everyday=20, everyday_seconds=600),
    ]
    bench, _ = scenarios_bench(measurement, DEFINITION, SETTINGS, scenarios=scenarios)
    rows = {row["run"]: row for row in bench.rows}
    assert rows["burst of 200"]["lost"] == 0 and rows["burst of 200"]["mails"] >= 200
    assert rows["quiet"]["mails"] == 20 and rows["burst of 200"]["usd"] > 0
    assert json.dumps(bench.rows)  # the report writes it as JSON
    assert any("2026" in note for note in bench.notes)  # quotas dated


URGENT = fixed_profile("urgent", "urgent", terminal="escalated", kind="abuse-report")


def test_urgent_tickets_over_the_zendesk_limit_are_paced_and_none_is_queued():
    # 200 urgent mails in 20 s against Zendesk's 60 requests a minute (20 tickets): far over the limit.
    stack, mails = burst(count=200, seconds=20, profile=URGENT, zendesk=60)
    assert Counter(m.terminal for m in mails) == {"escalated": 200}
    assert stack.stats.paced["escalate"] > 0
    # Without the wait for a Zendesk slot the same burst runs into 429s and queues mail.
    _, unpaced = burst(
        DEFINITION.without_loop("escalate", "paced_until"),
        count=200,
        seconds=20,
        profile=URGENT,
        zendesk=60,
    )
    assert queued_by(unpaced)["ZendeskUnavailable"] > 0
