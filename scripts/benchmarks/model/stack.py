"""The deployed stack as a simpy model: S3 → ingest (asynchronous Lambda) → StartExecution → the definition walked
state by state (Task, Choice, Wait, Retry, Catch) with each task on a Lambda execution environment, and the services
the tasks reach (SES, Zendesk, Slack, the shared rate limiter) behaving as their quotas say.

One simpy process per mail (its receipt and ingest) and per execution; the services are shared objects whose state
(tokens, windows, instances) is computed from the simulation's clock when asked.
"""

from __future__ import annotations

import math
import random
from collections import Counter, deque
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass, field
from typing import Any

import simpy

from benchmarks.model.asl import EPOCH_S, Definition, get, iso, put
from benchmarks.model.behaviour import Durations, FunctionSettings, Profile
from benchmarks.model.quotas import Assumptions, Quotas
from rootmail.config import Settings
from rootmail.domain import alerts as _alerts
from rootmail.domain import pacing as _pacing
from rootmail.messages.render import alert_headline


def _headline(data: dict[str, Any]) -> str:
    """An alert's kind, as messages/render.py's alert_headline names it (its batch key)."""
    classification = get(data, "$.classification")[1] or {}
    action, category = str(classification.get("action")), str(classification.get("category"))
    signal = bool(classification.get("alert")) and action == "queue"
    return alert_headline(action, category, signal=signal, rule_id=classification.get("rule_id"))


ZENDESK_REQUESTS_PER_TICKET = _pacing.ZENDESK_REQUESTS_PER_TICKET
# The pipeline's accounts refresh for an unknown root address, at its defaults (rootmail/config.py).
REFRESH_WINDOW_SECONDS = Settings.model_fields["accounts_refresh_seconds"].default
REFRESH_WAIT_SECONDS = Settings.model_fields["accounts_refresh_wait_seconds"].default
THROTTLED = "Lambda.TooManyRequestsException"
TIMED_OUT = "Sandbox.Timedout"
INF = float("inf")
Outcome = tuple[bool, Any]  # (succeeded, the result or the error's name)
Process = Generator[simpy.Event, Any, Any]


def reserve(tat_us: int | None, now_us: int, cost: int, rate: float) -> tuple[int, bool, str, int]:
    """GCRA, as the pipeline computes it (domain/pacing.py): (slot start ms, due now, the slot as a Wait's
    timestamp, the new TAT in microseconds)."""
    slot, tat = _pacing.reserve(tat_us, now_us, cost, rate)
    return slot.starts_ms, slot.due, slot.timestamp(), tat


class TokenBucket:
    """A token bucket read lazily from the clock: `take` succeeds or not (an API throttles); `reserve` always
    succeeds and says how long to wait for the token (a service that delays instead)."""

    def __init__(self, env: simpy.Environment, capacity: float, rate: float) -> None:
        self.env, self.capacity, self.rate = env, capacity, rate
        self.tokens, self.at = capacity, 0.0

    def _refill(self) -> None:
        now = self.env.now
        if self.rate == INF:
            self.tokens = self.capacity
        else:
            self.tokens = min(self.capacity, self.tokens + (now - self.at) * self.rate)
        self.at = now

    def take(self, count: float = 1.0) -> bool:
        if self.capacity == INF:
            return True
        self._refill()
        # A request larger than the bucket is taken when the bucket is full (it then runs into debt).
        if self.tokens >= count or self.tokens >= self.capacity:
            self.tokens -= count
            return True
        return False

    def wait_for(self, count: float = 1.0) -> float:
        if self.capacity == INF:
            return 0.0
        self._refill()
        self.tokens -= count
        return 0.0 if self.tokens >= 0 else -self.tokens / self.rate

    def seconds_until(self, count: float = 1.0) -> float:
        self._refill()
        return max(0.0, (count - self.tokens) / self.rate)


@dataclass
class Instance:
    function: str
    cold: bool


class Lambdas:
    """Execution environments per function: warm ones reused (most recent first, expired after keep-warm), new ones
    limited by the function's scaling rate; all limited by the account's concurrency (less what is reserved) or
    the function's reserved concurrency. At a limit an invocation is throttled, not queued."""

    def __init__(self, env: simpy.Environment, quotas: Quotas, settings: FunctionSettings) -> None:
        self.env, self.quotas = env, quotas
        self.reserved = {f: r for f, r in settings.reserved.items() if r is not None}
        self.unreserved_limit = quotas.lambda_account_concurrency - sum(self.reserved.values())
        self.unreserved_busy = 0
        self.busy: Counter[str] = Counter()
        self.peak: Counter[str] = Counter()
        self.idle: dict[str, deque[float]] = {}
        self.scaling: dict[str, TokenBucket] = {}
        self.cold_starts: Counter[str] = Counter()
        self.throttled: Counter[str] = Counter()

    def acquire(self, function: str) -> Instance | None:
        limit = self.reserved.get(function)
        if limit is not None:
            if self.busy[function] >= limit:
                self.throttled[function] += 1
                return None
        elif self.unreserved_busy >= self.unreserved_limit:
            self.throttled[function] += 1
            return None
        idle = self.idle.setdefault(function, deque())
        now = self.env.now
        while idle and now - idle[0] > self.quotas.lambda_keep_warm_seconds:
            idle.popleft()
        cold = not idle
        if cold:
            scaling = self.scaling.get(function)
            if scaling is None:
                per_10s = self.quotas.lambda_scaling_per_10s
                scaling = self.scaling[function] = TokenBucket(self.env, per_10s, per_10s / 10)
            if not scaling.take():
                self.throttled[function] += 1
                return None
            self.cold_starts[function] += 1
        else:
            idle.pop()
        self.busy[function] += 1
        if limit is None:
            self.unreserved_busy += 1
        self.peak[function] = max(self.peak[function], self.busy[function])
        return Instance(function, cold)

    def release(self, instance: Instance) -> None:
        self.busy[instance.function] -= 1
        if instance.function not in self.reserved:
            self.unreserved_busy -= 1
        self.idle.setdefault(instance.function, deque()).append(self.env.now)


class Zendesk:
    """The plan's requests a minute, counted in fixed minutes; a request over the limit gets 429 with Retry-After
    (seconds to the next minute)."""

    def __init__(self, env: simpy.Environment, per_minute: float) -> None:
        self.env, self.per_minute = env, per_minute
        self.minute, self.count = -1, 0
        self.requests = 0
        self.rejected = 0

    def request(self) -> float:
        """0 when accepted, else the Retry-After in seconds."""
        minute = int(self.env.now // 60)
        if minute != self.minute:
            self.minute, self.count = minute, 0
        if self.count >= self.per_minute:
            self.rejected += 1
            return max(1.0, math.ceil((minute + 1) * 60 - self.env.now))
        self.count += 1
        self.requests += 1
        return 0.0


@dataclass
class AlertWindow:
    """One Slack message that alerts of one kind share for a window (a batch)."""

    opened: float
    poster: int  # the mail whose turn it is to post the message
    poster_at: float
    joins: int = 0
    shown: int = 0
    posted: bool = False
    next_update: float = 0.0


class Slack:
    """chat.postMessage (about 1 a second per channel, short bursts) and chat.update (Tier 3), each a bucket; a
    429's Retry-After is waited for up to the adapter's limit. Posts and updates counted by minute."""

    def __init__(self, env: simpy.Environment, quotas: Quotas, *, unlimited: bool = False) -> None:
        self.env, self.quotas = env, quotas
        big = INF if unlimited else None
        self.posts = TokenBucket(env, big or quotas.slack_post_burst, quotas.slack_posts_per_second)
        self.updates = TokenBucket(
            env, big or quotas.slack_updates_per_minute, quotas.slack_updates_per_minute / 60
        )
        self.posted: Counter[int] = Counter()
        self.updated: Counter[int] = Counter()
        self.rejected = 0
        self.windows: dict[str, AlertWindow] = {}

    def call(self, bucket: TokenBucket, counter: Counter[int]) -> Process:
        """One Web API call with the adapter's 429 handling: True when Slack took it."""
        for attempt in range(self.quotas.slack_retries + 1):
            if bucket.take():
                counter[int(self.env.now // 60)] += 1
                return True
            self.rejected += 1
            wait = max(1.0, math.ceil(bucket.seconds_until()))
            if wait > self.quotas.slack_retry_max_wait or attempt == self.quotas.slack_retries:
                return False
            yield self.env.timeout(wait)
        return False


@dataclass
class Mail:
    number: int
    profile: Profile
    received: float
    burst: bool
    parsed_at: float | None = None
    terminal: str | None = None
    reason: str | None = None
    terminal_at: float | None = None
    delivered_at: float | None = None
    sent: set[int] = field(default_factory=set)
    executions: list[Execution] = field(default_factory=list)
    dead_lettered: bool = False
    redrives: int = 0
    # Its operators' alert, once joined (whatever execution runs it): the batch, its place in it, when it joined.
    alert: tuple[str, int, float] | None = None


@dataclass
class Execution:
    mail: Mail
    name: str
    running: bool = True
    calls: Counter[str] = field(default_factory=Counter)


@dataclass
class Stats:
    transitions: int = 0
    transition_wait: float = 0.0
    invocations: Counter[str] = field(default_factory=Counter)
    gb_seconds: float = 0.0
    start_throttled: int = 0
    executions: int = 0
    failed_executions: Counter[str] = field(default_factory=Counter)
    ses_messages: int = 0
    ses_recipients: int = 0
    ses_throttled: int = 0
    reservations: int = 0
    paced: Counter[str] = field(default_factory=Counter)
    dead_lettered: int = 0
    redriven: int = 0
    given_up: int = 0
    reconcile_runs: int = 0
    delivery_in_progress: int = 0
    zendesk_gave_up: int = 0


class Stack:
    """The deployed pipeline under one set of quotas. `run(arrivals)` simulates until every mail is terminal (or
    the horizon) and returns the mails; `stats` and the services hold the rest."""

    def __init__(
        self,
        definition: Definition,
        settings: FunctionSettings,
        durations: Durations,
        *,
        quotas: Quotas | None = None,
        assumptions: Assumptions | None = None,
        ses_send_rate: float | None = None,
        zendesk_requests_per_minute: float | None = None,
        seed: int = 7,
        emulator: bool = False,
    ) -> None:
        self.env = simpy.Environment()
        self.definition, self.settings, self.durations = definition, settings, durations
        self.quotas = quotas or Quotas()
        self.assumptions = assumptions or Assumptions()
        self.rng = random.Random(seed)
        self.emulator = emulator  # started directly, as the emulator's inline ingest does
        q = self.quotas
        # The rates the pipeline paces itself to (serverless.yml params), apart from the services' own limits.
        self.ses_send_rate = ses_send_rate or settings.param("sesSendRate", q.ses_max_send_rate)
        self.zendesk_rate = zendesk_requests_per_minute or settings.param(
            "zendeskRequestsPerMinute", q.zendesk_requests_per_minute
        )
        self.lambdas = Lambdas(self.env, q, settings)
        self.starts = TokenBucket(self.env, q.sfn_start_bucket, q.sfn_start_refill)
        self.transitions = TokenBucket(self.env, q.sfn_transition_bucket, q.sfn_transition_refill)
        self.ses = TokenBucket(self.env, q.ses_max_send_rate * q.ses_burst_seconds, q.ses_max_send_rate)
        self.zendesk = Zendesk(self.env, q.zendesk_requests_per_minute)
        self.slack = Slack(self.env, q, unlimited=q.slack_post_burst == INF)
        self.tat: dict[str, int | None] = {}
        self.case_locks: dict[str, str] = {}
        self.refresh: dict[str, float | None] = {"running_until": None, "finished": None}
        self.stats = Stats()
        self.mails: list[Mail] = []
        self.names: dict[str, Execution] = {}
        self._open = 0
        self._all_terminal = self.env.event()
        # How the definition reacts to what a delivery step returns: does it wait for a slot, or for an update?
        self.paced = {
            f: definition.loops_back(f, "paced_until") for f in ("forward", "ticket", "escalate", "alert")
        }
        self.coalesced = definition.loops_back("alert", "settle_at")
        self.behaviours: dict[str, Callable[[Execution, dict[str, Any]], Process]] = {
            "forward": self._forward,
            "ticket": self._ticket,
            "escalate": self._escalate,
            "alert": self._alert,
            "refresh": self._refresh,
            "record": self._record,
        }

    # ---- running --------------------------------------------------------------------------------------------

    def run(self, arrivals: Iterable[tuple[float, Profile, bool]]) -> list[Mail]:
        """Mails arriving at (simulated second, profile, part of the burst), in any order."""
        ordered = sorted(arrivals, key=lambda a: a[0])
        self._open = len(ordered)
        if not ordered:
            return []
        self.env.process(self._arrive(ordered))
        if not self.emulator:
            self.env.process(self._reconcile())
        horizon = self.env.timeout(self.assumptions.horizon_seconds)
        self.env.run(until=self.env.any_of([self._all_terminal, horizon]))
        return self.mails

    def _arrive(self, arrivals: list[tuple[float, Profile, bool]]) -> Process:
        for number, (at, profile, burst) in enumerate(arrivals):
            if at > self.env.now:
                yield self.env.timeout(at - self.env.now)
            mail = Mail(number, profile, self.env.now, burst)
            self.mails.append(mail)
            if self.emulator:
                self._start(mail, f"m{number}")
            else:
                self.env.process(self._ingest(mail))

    def _done(self, mail: Mail, state: str, reason: str | None) -> None:
        if mail.terminal is not None:
            return
        mail.terminal, mail.reason, mail.terminal_at = state, reason, self.env.now
        self._open -= 1
        if self._open == 0:
            self._all_terminal.succeed()

    # ---- S3 → ingest → StartExecution, Lambda's asynchronous retries, the dead-letter queue ----------------

    def _ingest(self, mail: Mail) -> Process:
        failures, backoff = 0, 1.0
        while True:
            instance = self.lambdas.acquire("ingest")
            if instance is None:  # throttled: back to the asynchronous queue, retried with backoff
                yield self.env.timeout(backoff)
                backoff = min(2 * backoff, self.quotas.async_throttle_backoff_max)
                continue
            started = yield from self._run_function(
                instance, lambda: self._start_with_sdk_retries(mail, f"m{mail.number}")
            )
            if started:
                return
            if failures < min(self.settings.ingest_retries, len(self.quotas.async_retry_delays)):
                yield self.env.timeout(self.quotas.async_retry_delays[failures])
                failures += 1
                continue
            mail.dead_lettered = True  # onFailure destination: the ingest failures queue
            self.stats.dead_lettered += 1
            return

    def _start_with_sdk_retries(self, mail: Mail, name: str) -> Process:
        """StartExecution as the SDK makes it: a throttled call retried after rand(0, 1) x 2^attempt s."""
        yield self.env.timeout(self.durations.draw("ingest", self.rng))
        for attempt in range(self.quotas.start_max_attempts):
            if name in self.names:
                return True  # ExecutionAlreadyExists: a duplicate, nothing to do
            if self.starts.take():
                self._start(mail, name)
                return True
            self.stats.start_throttled += 1
            if attempt + 1 < self.quotas.start_max_attempts:
                yield self.env.timeout(self.rng.random() * min(2**attempt, 20))
        return False

    def _run_function(self, instance: Instance, body: Callable[[], Process]) -> Process:
        """A Lambda invocation on `instance`: init if new, the body, billed at the function's memory."""
        began = self.env.now
        if instance.cold:
            yield self.env.timeout(self.quotas.lambda_cold_start_seconds)
        try:
            result = yield from body()
        finally:
            self.lambdas.release(instance)
            function = instance.function
            self.stats.invocations[function] += 1
            memory = self.settings.memory_mb.get(function, 512)
            billed = min(self.env.now - began, self.settings.timeout.get(function, 30.0))
            self.stats.gb_seconds += billed * memory / 1024
        return result

    def _start(self, mail: Mail, name: str) -> None:
        execution = Execution(mail, name)
        self.names[name] = execution
        mail.executions.append(execution)
        self.stats.executions += 1
        payload = {"mail_id": f"mail-{mail.number}", "execution": name, "key": f"incoming/{mail.number}"}
        self.env.process(self._execute(execution, payload))

    # ---- the hourly reconcile -------------------------------------------------------------------------------

    def _reconcile(self) -> Process:
        """Hourly; a run that fails (a StartExecution still throttled after the SDK's retry raises
        TriageNotStarted) is retried by Lambda as any asynchronous invocation (EventBridge's schedule)."""
        q = self.quotas
        yield self.env.timeout(q.reconcile_first_at)
        while True:
            began = self.env.now
            for delay in (*q.async_retry_delays, None):
                completed = yield from self._reconcile_run()
                if completed or delay is None:
                    break
                yield self.env.timeout(delay)
            yield self.env.timeout(max(0.0, q.reconcile_every_seconds - (self.env.now - began)))

    def _reconcile_run(self) -> Process:
        q = self.quotas
        self.stats.reconcile_runs += 1
        began = self.env.now
        budget = self.settings.timeout.get("reconcile", 300.0)
        for mail in [m for m in self.mails if m.terminal is None]:
            if self.env.now - began > budget:
                return True  # timed out: the rest wait for the next run
            if mail.parsed_at is None:
                if self.env.now - mail.received < q.reconcile_grace_seconds:
                    continue
                first = self.names.get(f"m{mail.number}")
                if first is not None and first.running:
                    continue  # on its way after all
            elif self.env.now - mail.parsed_at < q.reconcile_stuck_seconds:
                continue
            if mail.redrives >= q.reconcile_max_attempts:
                self.stats.given_up += 1
                self._done(mail, "queued", "given up by the reconcile")
                continue
            name = f"m{mail.number}"
            if name in self.names:
                name = f"{name}-r{self.stats.reconcile_runs}"
            started = yield from self._reconcile_start(mail, name)
            if not started:
                return False
            mail.redrives += 1
            self.stats.redriven += 1
        return True

    def _reconcile_start(self, mail: Mail, name: str) -> Process:
        yield self.env.timeout(0.02)  # one StartExecution and a ledger write, in sequence (assumed 20 ms)
        for attempt in range(self.quotas.start_max_attempts):
            if self.starts.take():
                self._start(mail, name)
                return True
            self.stats.start_throttled += 1
            if attempt + 1 < self.quotas.start_max_attempts:
                yield self.env.timeout(self.rng.random() * min(2**attempt, 20))
        return False

    # ---- an execution: the definition, state by state --------------------------------------------------------

    def _transition(self) -> Process:
        self.stats.transitions += 1
        wait = self.transitions.wait_for()
        if wait > 0:
            self.stats.transition_wait += wait
            yield self.env.timeout(wait)

    def _execute(self, execution: Execution, data: dict[str, Any]) -> Process:
        definition = self.definition
        name = definition.start
        try:
            while True:
                yield from self._transition()
                spec = definition.states[name]
                kind = spec["Type"]
                if kind == "Choice":
                    try:
                        name = definition.choose(name, data)
                    except KeyError:  # a comparison on a missing variable, or no match and no Default
                        self.stats.failed_executions["States.Runtime"] += 1
                        return
                    continue
                if kind == "Wait":
                    until = definition.wait_until(spec, data, self.env.now)
                    if until > self.env.now:
                        yield self.env.timeout(until - self.env.now)
                elif kind == "Pass":
                    data = put(data, spec.get("ResultPath", "$"), spec.get("Result", data))
                elif kind == "Succeed":
                    return
                elif kind == "Fail":
                    self.stats.failed_executions[str(spec.get("Error", "Fail"))] += 1
                    return
                elif kind == "Task":
                    data, following = yield from self._task(execution, name, spec, data)
                    if following is None:
                        return
                    name = following
                    continue
                else:
                    raise NotImplementedError(f"{name}: the model does not run {kind} states")
                if spec.get("End"):
                    return
                name = spec["Next"]
        finally:
            execution.running = False

    def _task(
        self, execution: Execution, name: str, spec: dict[str, Any], data: dict[str, Any]
    ) -> Generator[simpy.Event, Any, tuple[dict[str, Any], str | None]]:
        definition = self.definition
        function = definition.function(spec)
        attempts: Counter[int] = Counter()
        while True:
            ok, value = yield from self._invoke(execution, function, data, spec.get("TimeoutSeconds"))
            if ok:
                data = put(data, spec.get("ResultPath", "$"), value)
                return data, (None if spec.get("End") else str(spec["Next"]))
            error = str(value)
            found = definition.retrier(name, error)
            if found is not None:
                index, retrier = found
                if attempts[index] < retrier.max_attempts:
                    attempts[index] += 1
                    yield self.env.timeout(retrier.delay(attempts[index], self.rng))
                    yield from self._transition()  # a retry is billed as a transition
                    continue
            catcher = definition.catcher(name, error)
            if catcher is None:
                self.stats.failed_executions[error] += 1
                return data, None
            failure = {"Error": error, "Cause": f"the model: {error} in {name}"}
            data = put(data, catcher.get("ResultPath", "$"), failure)
            return data, str(catcher["Next"])

    def _invoke(
        self, execution: Execution, function: str, data: dict[str, Any], limit: float | None = None
    ) -> Process:
        instance = self.lambdas.acquire(function)
        if instance is None:
            return False, THROTTLED
        behaviour = self.behaviours.get(function)
        began = self.env.now
        ok, value = yield from self._run_function(
            instance,
            lambda: behaviour(execution, data) if behaviour else self._replay(execution, function),
        )
        if self.env.now - began > self.settings.timeout.get(function, 30.0):
            return False, TIMED_OUT
        if limit is not None and self.env.now - began > limit:
            return False, "States.Timeout"  # the Task's own TimeoutSeconds
        if function == "parse" and execution.mail.parsed_at is None and ok:
            execution.mail.parsed_at = self.env.now  # Parse opened the ledger record (in flight)
        return ok, value

    # ---- what each function does ----------------------------------------------------------------------------

    def _outcome(self, execution: Execution, function: str) -> dict[str, Any]:
        call = execution.calls[function]
        execution.calls[function] += 1
        return execution.mail.profile.outcome(function, call)

    def _work(self, function: str) -> simpy.Event:
        return self.env.timeout(self.durations.draw(function, self.rng))

    @staticmethod
    def _answer(outcome: dict[str, Any]) -> Outcome:
        return ("result" in outcome, outcome.get("result", outcome.get("error")))

    def _replay(self, execution: Execution, function: str) -> Process:
        """Any function the model has no service for: what it returned (or raised) for this mail."""
        yield self._work(function)
        return self._answer(self._outcome(execution, function))

    def _reserve(self, limit: str, cost: int, rate: float) -> tuple[bool, str]:
        now_us = round((EPOCH_S + self.env.now) * 1_000_000)
        _, due, stamp, tat = reserve(self.tat.get(limit), now_us, cost, rate)
        self.tat[limit] = tat
        self.stats.reservations += 1
        return due, stamp

    @staticmethod
    def _holds_slot(data: dict[str, Any]) -> bool:
        present, value = get(data, "$.delivery.paced_until")
        return present and value is not None

    def _sdk(self, attempt_once: Callable[..., bool], on_throttle: Callable[[], None]) -> Process:
        for attempt in range(self.quotas.sdk_max_attempts):
            if attempt_once():
                return True
            on_throttle()
            if attempt + 1 < self.quotas.sdk_max_attempts:
                yield self.env.timeout(self.rng.random() * min(2**attempt, 20))
        return False

    def _ses_throttled(self) -> None:
        self.stats.ses_throttled += 1

    def _forward(self, execution: Execution, data: dict[str, Any]) -> Process:
        outcome = self._outcome(execution, "forward")
        if "error" in outcome:
            yield self._work("forward")
            return self._answer(outcome)
        mail = execution.mail
        sends = mail.profile.sends()
        recipients_all = sum(sends)
        if self.paced["forward"] and recipients_all > 0 and not self._holds_slot(data):
            due, stamp = self._reserve("ses", recipients_all, self.ses_send_rate)
            if not due:
                self.stats.paced["forward"] += 1
                execution.calls["forward"] -= 1  # the send is still to come
                yield self._work("forward")
                return True, {"deliveries": [], "undelivered": [], "paced_until": stamp}
        for index, recipients in enumerate(sends):
            if index in mail.sent:
                continue  # the delivery guard: sent by an earlier run
            sent = yield from self._sdk(lambda r=recipients: self.ses.take(r), self._ses_throttled)
            if not sent:
                yield self._work("forward")
                return False, "SesThrottled"
            mail.sent.add(index)
            self.stats.ses_messages += 1
            self.stats.ses_recipients += recipients
        if mail.delivered_at is None:
            mail.delivered_at = self.env.now
        yield self._work("forward")
        return True, outcome["result"]

    def _zendesk_requests(self, count: int) -> Process:
        """`count` Zendesk requests, each 429 waited out (Retry-After) within the adapter's budget."""
        spent = 0.0
        for _ in range(count):
            while True:
                wait = self.zendesk.request()
                if not wait:
                    break
                if spent + wait > self.quotas.zendesk_budget_seconds:
                    self.stats.zendesk_gave_up += 1
                    return False
                spent += wait
                yield self.env.timeout(wait)
        return True

    def _zendesk_slot(self, function: str, data: dict[str, Any]) -> str | None:
        if not self.paced[function] or self._holds_slot(data):
            return None
        due, stamp = self._reserve("zendesk", ZENDESK_REQUESTS_PER_TICKET, self.zendesk_rate / 60)
        if due:
            return None
        self.stats.paced[function] += 1
        return stamp

    def _ticket(self, execution: Execution, data: dict[str, Any]) -> Process:
        outcome = self._outcome(execution, "ticket")
        if "error" in outcome:
            yield self._work("ticket")
            return self._answer(outcome)
        stamp = self._zendesk_slot("ticket", data)
        if stamp is not None:
            execution.calls["ticket"] -= 1
            yield self._work("ticket")
            return True, {"deliveries": [], "undelivered": [], "paced_until": stamp}
        case = execution.mail.profile.case_id()
        holder = self.case_locks.get(case) if case else None
        if holder is not None and holder != execution.name:
            self.stats.delivery_in_progress += 1
            execution.calls["ticket"] -= 1
            yield self._work("ticket")
            return False, "DeliveryInProgress"
        if case:
            self.case_locks[case] = execution.name
        try:
            accepted = yield from self._zendesk_requests(ZENDESK_REQUESTS_PER_TICKET)
            yield self._work("ticket")
        finally:
            if case and self.case_locks.get(case) == execution.name:
                del self.case_locks[case]
        if not accepted:
            execution.calls["ticket"] -= 1
            return False, "ZendeskUnavailable"
        if execution.mail.delivered_at is None:
            execution.mail.delivered_at = self.env.now
        return True, outcome["result"]

    def _escalate(self, execution: Execution, data: dict[str, Any]) -> Process:
        outcome = self._outcome(execution, "escalate")
        if "error" in outcome:
            yield self._work("escalate")
            return self._answer(outcome)
        stamp = self._zendesk_slot("escalate", data)
        if stamp is not None:
            execution.calls["escalate"] -= 1
            yield self._work("escalate")
            return True, {"deliveries": [], "undelivered": [], "paced_until": stamp}
        accepted = yield from self._zendesk_requests(ZENDESK_REQUESTS_PER_TICKET)
        if not accepted:
            execution.calls["escalate"] -= 1
            yield self._work("escalate")
            return False, "ZendeskUnavailable"
        posted = yield from self.slack.call(
            self.slack.posts, self.slack.posted
        )  # one message per urgent mail
        yield self._work("escalate")
        if not posted:
            execution.calls["escalate"] -= 1
            return False, "SlackUnavailable"
        if execution.mail.delivered_at is None:
            execution.mail.delivered_at = self.env.now
        return True, outcome["result"]

    def _alert(self, execution: Execution, data: dict[str, Any]) -> Process:
        outcome = self._outcome(execution, "alert")
        if "error" in outcome:
            yield self._work("alert")
            return self._answer(outcome)
        if not self.coalesced:
            posted = yield from self.slack.call(self.slack.posts, self.slack.posted)
            yield self._work("alert")
            if not posted:
                execution.calls["alert"] -= 1
                return False, "SlackUnavailable"
            execution.mail.delivered_at = execution.mail.delivered_at or self.env.now
            return True, outcome["result"]
        ok, value = yield from self._coalesced_alert(execution, data)
        if ok and "settle_at" not in value:
            execution.mail.delivered_at = execution.mail.delivered_at or self.env.now
            return True, outcome["result"]
        execution.calls["alert"] -= 1
        return ok, value

    def _coalesced_alert(self, execution: Execution, data: dict[str, Any]) -> Process:
        """rootmail/domain/alerts.py: the alerts of one kind (the headline, and the same mail: its sender and
        subject pattern) within a fixed window share a Slack message. A mail joins once; the first posts the
        message (another takes the post over once its turn has run out); the others wait (`settle_at`, a Wait in
        the definition) until the message counts them: whoever finds the update turn free (one update every few
        seconds) updates it with the count so far. A mail not counted within SHOW_WITHIN_MS fails
        (SlackUnavailable), for the definition's Retry and Catch."""
        window_s = float(_alerts.WINDOW_SECONDS)
        every_s = _alerts.UPDATE_EVERY_MS / 1000
        mail, now = execution.mail, self.env.now
        if mail.alert is None:
            kind = f"{_headline(data)}|{mail.profile.name}"
            key = f"{kind}#{int((EPOCH_S + now) // window_s)}"
            batch = self.slack.windows.get(key)
            if batch is None:
                batch = self.slack.windows[key] = AlertWindow(opened=now, poster=mail.number, poster_at=now)
            batch.joins += 1
            mail.alert = (key, batch.joins, now)
        key, position, joined_at = mail.alert
        batch = self.slack.windows[key]
        if batch.shown >= position:
            yield self._work("alert")
            return True, {}
        if now - joined_at > _alerts.SHOW_WITHIN_MS / 1000:
            yield self._work("alert")
            return False, "SlackUnavailable"
        if not batch.posted:
            lease_over = now - batch.poster_at > _alerts.TURN_LEASE_MS / 1000
            if batch.poster != mail.number and not lease_over:
                yield self._work("alert")
                return True, {"deliveries": [], "undelivered": [], "settle_at": iso(math.ceil(now + every_s))}
            batch.poster, batch.poster_at = mail.number, now
            count = batch.joins
            posted = yield from self.slack.call(self.slack.posts, self.slack.posted)
            yield self._work("alert")
            if not posted:
                return False, "SlackUnavailable"
            batch.posted, batch.shown = True, max(batch.shown, count)
            return True, {}
        if now < batch.next_update:
            yield self._work("alert")
            settle = max(batch.next_update, now + 1)
            return True, {"deliveries": [], "undelivered": [], "settle_at": iso(math.ceil(settle))}
        batch.next_update = now + _alerts.TURN_LEASE_MS / 1000  # this mail's turn, until it ends it
        count = batch.joins
        updated = yield from self.slack.call(self.slack.updates, self.slack.updated)
        yield self._work("alert")
        batch.next_update = self.env.now + (every_s if updated else 0.0)
        if not updated:
            return False, "SlackUnavailable"
        batch.shown = max(batch.shown, count)
        return True, {}

    def _refresh(self, execution: Execution, data: dict[str, Any]) -> Process:
        """One refresh per window for the whole pipeline: a mail finding one running waits and resolves again."""
        running, finished = self.refresh["running_until"], self.refresh["finished"]
        window = float(REFRESH_WINDOW_SECONDS)
        # A refresh that finds another's claim answers after one conditional write (timed as Record's).
        if running is not None and running > self.env.now:
            yield self._work("record")
            return True, {"status": "in-progress", "wait_seconds": REFRESH_WAIT_SECONDS}
        if finished is not None and self.env.now - finished < window:
            yield self._work("record")
            return True, {"status": "recent", "wait_seconds": 0}
        duration = self.durations.draw("refresh", self.rng)
        self.refresh["running_until"] = self.env.now + duration
        yield self.env.timeout(duration)
        self.refresh["running_until"], self.refresh["finished"] = None, self.env.now
        return self._answer(self._outcome(execution, "refresh"))

    def _record(self, execution: Execution, data: dict[str, Any]) -> Process:
        outcome = self._outcome(execution, "record")
        yield self._work("record")
        if "error" in outcome:
            return self._answer(outcome)
        present, error = get(data, "$.error")
        mail = execution.mail
        if present and isinstance(error, dict):
            self._done(mail, "queued", str(error.get("Error")))
        else:
            terminal = mail.profile.terminal
            self._done(mail, terminal, f"as triaged ({mail.profile.kind})" if terminal == "queued" else None)
        return True, outcome["result"]
