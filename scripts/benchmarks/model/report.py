"""The burst-model benchmark: the scenarios through the model of the deployed stack, and the model checked against
the local emulator on the same burst."""

from __future__ import annotations

import argparse
from collections import Counter
from dataclasses import replace
from pathlib import Path

from benchmarks.common import Benchmark
from benchmarks.cost import PRICES_CHECKED
from benchmarks.model.asl import Definition
from benchmarks.model.behaviour import MEASURED, Durations, FunctionSettings, Measurement
from benchmarks.model.quotas import CHECKED, SOURCES, Assumptions, Quotas
from benchmarks.model.scenarios import SCENARIOS, Outcome, Scenario, percentile, simulate
from benchmarks.model.stack import INF, Stack


def emulator_rates() -> tuple[float, float]:
    """The rates the emulator's functions pace to: rootmail's settings defaults (LocalPipeline sets none)."""
    try:
        from rootmail.config import Settings

        fields = Settings.model_fields
        ses = fields["ses_send_rate"].default if "ses_send_rate" in fields else 14.0
        zendesk = (
            fields["zendesk_requests_per_minute"].default if "zendesk_requests_per_minute" in fields else 200
        )
        return float(ses), float(zendesk)
    except ImportError:  # pragma: no cover
        return 14.0, 200.0


def emulator_quotas() -> Quotas:
    """The emulator's limits: none. moto throttles nothing (no SES rate, no Step Functions buckets), every task
    runs at once in a thread of its own (no Lambda concurrency, no cold start), the Zendesk and Slack stand-ins
    never answer 429."""
    return Quotas(
        ses_max_send_rate=INF,
        sfn_start_bucket=INF,
        sfn_start_refill=INF,
        sfn_transition_bucket=INF,
        sfn_transition_refill=INF,
        lambda_account_concurrency=10**9,
        lambda_scaling_per_10s=10**9,
        lambda_cold_start_seconds=0.0,
        zendesk_requests_per_minute=10**9,
        slack_post_burst=INF,
        slack_updates_per_minute=INF,
    )


def check(
    measurement: Measurement, definition: Definition, settings: FunctionSettings, seed: int = 3
) -> Benchmark:
    """The burst the emulator ran, through the model with the emulator's limits and the durations measured under
    that load: terminal states (must agree exactly) and the drain's shape."""
    observed = measurement.burst or {}
    rows = [r for r in observed.get("mails", []) if "start" in r]
    ses_rate, zendesk_rate = emulator_rates()
    # moto enforces no Lambda timeout (the handlers run in process) and the definition sets no TimeoutSeconds.
    unbounded = replace(settings, timeout=dict.fromkeys(settings.timeout, INF))
    stack = Stack(
        definition,
        unbounded,
        Durations(observed.get("durations", {})),
        quotas=emulator_quotas(),
        ses_send_rate=ses_rate,
        zendesk_requests_per_minute=zendesk_rate,
        seed=seed,
        emulator=True,
    )
    mails = stack.run([(r["start"], measurement.profiles[r["corpus"]], False) for r in rows])
    emulator_states = Counter(r["state"] for r in observed.get("mails", []))
    model_states = Counter(m.terminal or "missing" for m in mails)
    emulator_times = sorted(r["stop"] for r in rows if "stop" in r)
    model_times = sorted(m.terminal_at for m in mails if m.terminal_at is not None)
    count = len(observed.get("mails", []))
    bench = Benchmark(
        "burst-model-check",
        f"The model against the local emulator: the same {count:,} mails at once (the corpus mails in turn, as "
        "pipeline-burst stores them) through the emulator and through the model configured with the emulator's "
        "limits (none: every execution and task at once, no SES, Step Functions, Zendesk or Slack throttling, no "
        f"cold start; SES pacing at {ses_rate:g}/s and Zendesk at {zendesk_rate:g}/min as the emulator's settings "
        "say), each execution started when the emulator's did, with each function's durations measured in that "
        "burst.",
        {"mails": count, "ses_send_rate": ses_rate, "zendesk_requests_per_minute": zendesk_rate},
    )
    agree = emulator_states == model_states
    for state in sorted(set(emulator_states) | set(model_states)):
        bench.rows.append(
            {
                "run": f"terminal state {state}",
                "emulator": emulator_states[state],
                "model": model_states[state],
                "agree": emulator_states[state] == model_states[state],
            }
        )
    for share in (0.25, 0.5, 0.75, 0.9, 1.0):
        emulator_at = percentile(emulator_times, share)
        model_at = percentile(model_times, share)
        bench.rows.append(
            {
                "run": f"seconds to {share:.0%} terminal",
                "emulator": None if emulator_at is None else round(emulator_at, 1),
                "model": None if model_at is None else round(model_at, 1),
                "ratio_model_to_emulator": (
                    round(model_at / emulator_at, 2) if emulator_at and model_at is not None else None
                ),
            }
        )
    drain = emulator_times[-1] if emulator_times else 0.0
    for share in (0.25, 0.5, 0.75, 1.0):
        at = share * drain
        bench.rows.append(
            {
                "run": f"terminal at {share:.0%} of the emulator's drain ({at:.0f} s)",
                "emulator": f"{sum(t <= at for t in emulator_times) / max(1, count):.0%}",
                "model": f"{sum(t <= at for t in model_times) / max(1, count):.0%}",
            }
        )
    p90_e, p90_m = percentile(emulator_times, 0.9), percentile(model_times, 0.9)
    ratio = round(p90_m / p90_e, 2) if p90_e and p90_m is not None else None
    bench.summary.append(
        (
            f"burst model vs the emulator, {count:,} mails",
            f"terminal states agree: {'yes' if agree else 'NO'}; 90% terminal after {p90_m and round(p90_m)} s "
            f"in the model, {p90_e and round(p90_e)} s on the emulator (ratio {ratio})",
            "the same outcomes exactly; the drain's shape close",
        )
    )
    bench.notes += [
        f"The emulator's burst took {observed.get('seconds', 0):.0f} s of wall clock. The model replays what each "
        "function returned for that corpus mail when it ran alone; the services (the pacer, the Zendesk case lock, "
        "Slack) decide the rest, as in the model's AWS scenarios.",
        "Not modelled here: the emulator's one interpreter shared by every thread (its durations under load "
        "carry it), moto's own scheduling of Wait and Retry (it sleeps in whole seconds).",
    ]
    return bench


def _durations_note(measurement: Measurement) -> str:
    parts = []
    for function, samples in sorted(measurement.durations.items()):
        median = percentile(samples, 0.5) or 0.0
        parts.append(f"{function} {1000 * median:.0f} ms (n={len(samples)})")
    return ", ".join(parts)


def scenarios_bench(
    measurement: Measurement,
    definition: Definition,
    settings: FunctionSettings,
    *,
    scenarios: list[Scenario] | None = None,
    quotas: Quotas | None = None,
    assumptions: Assumptions | None = None,
    source: str = "",
) -> tuple[Benchmark, list[Outcome]]:
    quotas = quotas or Quotas()
    assumptions = assumptions or Assumptions()
    outcomes = [
        simulate(s, definition, settings, measurement, quotas=quotas, assumptions=assumptions)
        for s in scenarios or SCENARIOS
    ]
    probe = Stack(definition, settings, Durations(measurement.durations), quotas=quotas)
    if probe.paced["forward"] and scenarios is None:
        # For contrast: the same burst on the definition without its wait for a send slot (as it was before).
        bypass = definition.without_loop("forward", "paced_until")
        contrast = Scenario("burst of 10,000, the definition without its send-slot Wait (contrast)", 10_000)
        outcomes.insert(
            2, simulate(contrast, bypass, settings, measurement, quotas=quotas, assumptions=assumptions)
        )
    bench = Benchmark(
        "burst-model",
        "Bursts of mail through a discrete-event model (simpy) of the deployed stack: the definition in "
        f"{definition.source or 'statemachine/triage.asl.json'} walked state by state (its Choice rules, Waits, "
        "Retry and Catch), each task on a Lambda execution environment under the account's concurrency and the "
        "function's scaling rate, with its duration drawn from those measured on the emulator; S3 → ingest "
        "(asynchronous, with Lambda's retries and the dead-letter queue) → StartExecution; SES, Zendesk and Slack "
        "throttling as their quotas say; the hourly reconcile re-driving what never started. A burst is one AWS "
        f"notice to every account, received evenly over {assumptions.burst_arrival_seconds / 60:.0f} minutes, "
        "with the everyday mix arriving meanwhile.",
        {
            "quotas": quotas.as_dict(),
            "quotas_checked": CHECKED,
            "ses_send_rate_configured": probe.ses_send_rate,
            "zendesk_requests_per_minute_configured": probe.zendesk_rate,
            "paced_by_the_definition": {k: v for k, v in probe.paced.items() if v},
            "slack_alerts_coalesced": probe.coalesced,
            "durations": source,
            "prices_checked": PRICES_CHECKED,
        },
    )
    for outcome in outcomes:
        bench.rows.append(outcome.row)
    unsupported = definition.unsupported()
    unmeasured = sorted(set().union(*(o.unmeasured for o in outcomes)))
    for outcome in outcomes:
        row = outcome.row
        if not row["run"].startswith("burst of") or "restricted" in row["run"] or "contrast" in row["run"]:
            continue
        throttled = row["queued_by_error"].get("SesThrottled", 0)
        bench.summary.append(
            (
                f"burst model: {row['run']}",
                f"all terminal after {row['minutes_to_all_terminal']} min; queued {row['queued']:,} "
                f"(SesThrottled {throttled:,}); lost {row['lost']}; delivery p99 "
                f"{row['delivery_p99_s']} s; ${row['usd']:,.2f}",
                "0 lost, 0 queued by throttling",
            )
        )
    bench.notes += [
        "Columns: minutes until every mail of the run is terminal (from the first receipt); mails queued and why "
        "(by the error a Catch recorded); lost (never terminal, not even by the reconcile: must be 0); mails "
        "whose ingest went to the dead-letter queue (the reconcile re-drives them); receipt to delivery (SES sent, "
        "ticket written, Slack posted) p50 and p99; Slack messages posted and updated in the busiest minute; "
        "state transitions (each state entered and each retry); Lambda invocations and GB-seconds (at each "
        "function's memory in serverless.yml, init included); SES recipients sent; the cost at list prices "
        f"({PRICES_CHECKED}): Standard transitions, Lambda requests and GB-s at arm64, SES received (one 256 KB "
        "chunk a mail) and sent (a recipient each), DynamoDB units (what each mail used on the emulator plus two "
        "writes a reservation of a shared rate), S3 requests. Free tiers left out.",
        "Task durations: each call draws one of the durations measured on the emulator for its function (moto in "
        f"process, so AWS's network round trips are not in them): {_durations_note(measurement)}. "
        f"A new execution environment adds {quotas.lambda_cold_start_seconds:g} s of init (assumed).",
        "What each function returns for a mail is what the real handler returned for that corpus mail on the "
        "emulator (its profile); the model decides only what the services change: a send paced to a later slot "
        "(rootmail/domain/pacing.py's arithmetic), SES throttling, a Zendesk 429, a case held by another mail, "
        "a Slack 429, a throttled Lambda or StartExecution.",
        f"Quotas and assumptions (read {CHECKED}): "
        + "; ".join(f"{s.what}: {s.where}" for s in SOURCES)
        + ". The figures and their reasons are in scripts/benchmarks/model/quotas.py.",
        "Ingest: S3 invokes it asynchronously; a throttled StartExecution is retried once by the SDK (standard "
        "mode, max_attempts 2, as rootmail/bootstrap.py sets it), then the invocation fails and Lambda retries it "
        f"twice ({', '.join(f'{d:.0f} s' for d in quotas.async_retry_delays)} later), then it goes to the "
        "ingest failures queue; the hourly reconcile (first run assumed "
        f"{quotas.reconcile_first_at / 60:.0f} min after the burst starts) re-drives stored mail with no ledger "
        f"record after {quotas.reconcile_grace_seconds / 60:.0f} minutes, and mail in flight for "
        f"{quotas.reconcile_stuck_seconds / 60:.0f}.",
    ]
    if unsupported:
        bench.notes.append("The model does not follow: " + "; ".join(unsupported) + ".")
    if unmeasured:
        bench.notes.append(
            f"No measured durations for {', '.join(unmeasured)}: each call of these was assumed to take 50 ms."
        )
    return bench, outcomes


def burst_model(args: argparse.Namespace) -> list[Benchmark]:
    """scripts/bench.py's entry: measure on the emulator (or read a saved measurement), run the scenarios, and
    check the model against the emulator's burst."""
    definition = Definition.load()
    settings = FunctionSettings.load()
    saved: Path | None = getattr(args, "model_measured", None)
    check_size = int(getattr(args, "model_check", 500) or 0)
    if saved is not None:
        measurement = Measurement.load(saved)
        source = f"read from {saved} (measured {measurement.measured_at} on {measurement.machine})"
    else:
        from benchmarks.model.measure import measure

        measurement = measure(burst=check_size)
        source = f"measured on the emulator in this run ({measurement.machine})"
    target: Path | None = getattr(args, "model_save", None)
    if target is not None:
        measurement.save(target)
    bench, _ = scenarios_bench(measurement, definition, settings, source=source)
    result = [bench]
    if measurement.burst:
        result.append(check(measurement, definition, settings))
    return result


def default_measurement() -> Measurement:
    """The checked-in measurement (scripts/bench.py --only burst-model --model-save ...)."""
    return Measurement.load(MEASURED)
