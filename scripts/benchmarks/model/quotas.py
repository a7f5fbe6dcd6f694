"""AWS quotas, third-party rate limits and the model's assumptions: every figure a parameter, with where it comes
from and when it was read. The report lists them (`Quotas.notes`)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any

from rootmail.bootstrap import SDK_RETRIES, START_RETRIES

CHECKED = "2026-12-07"  # when the sources below were read for this model


@dataclass(frozen=True)
class Quotas:
    # ---- SES ------------------------------------------------------------------------------------------------
    # Recipients a second SES accepts (each recipient of a message counts). 14/s is the rate a new production
    # account was historically given; docs.aws.amazon.com/ses/latest/dg/quotas.html now says only that it "varies
    # based on your specific use case" out of the sandbox (1/s in it): read it in the SES console for the account.
    ses_max_send_rate: float = 14.0
    # SES's bucket: how many recipients it takes at once before throttling. Not documented; assumed one second's
    # worth of the rate.
    ses_burst_seconds: float = 1.0
    # ---- Step Functions (Standard), us-east-1 -------------------------------------------------------------
    # docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html, "Quotas related to API action throttling"
    # (StartExecution: bucket 1,300, refill 300/s in us-east-1) and "Quotas related to state throttling"
    # (StateTransition: bucket 5,000, refill 5,000/s in us-east-1): the figures as commonly cited for us-east-1;
    # the copies of the page read on the date above did not show its tables, so they are unverified here. The page
    # does say that new accounts start with reduced state-transition quotas, raised with use.
    sfn_start_bucket: float = 1300.0
    sfn_start_refill: float = 300.0
    sfn_transition_bucket: float = 5000.0
    sfn_transition_refill: float = 5000.0
    # ---- Lambda ---------------------------------------------------------------------------------------------
    # docs.aws.amazon.com/lambda/latest/dg/lambda-concurrency.html: 1,000 concurrent executions per account and
    # region by default; scaling-behavior.html: each function may add 1,000 execution environments every 10 s
    # (since 2023-11), refilled continuously.
    lambda_account_concurrency: int = 1000
    lambda_scaling_per_10s: int = 1000
    # Init of a new execution environment: an assumption (Python 3.12 on arm64, the 25 MB package with boto3,
    # Powertools, zenpy, slack_sdk imported at start). Not measured; AWS publishes no figure.
    lambda_cold_start_seconds: float = 1.0
    # How long an idle execution environment stays warm: undocumented; 5 to 15 minutes are commonly observed.
    lambda_keep_warm_seconds: float = 600.0
    # docs.aws.amazon.com/lambda/latest/dg/invocation-async-error-handling.html: an asynchronous invocation that
    # fails is retried twice (serverless.yml's maximumRetryAttempts for ingest), 1 minute then 2 minutes later;
    # a throttled one goes back to the queue, retried with backoff from 1 s up to 5 minutes, for up to 6 hours.
    async_retry_delays: tuple[float, ...] = (60.0, 120.0)
    async_throttle_backoff_max: float = 300.0
    # ---- the AWS SDK (boto3, standard retry mode, as rootmail/bootstrap.py configures it) -------------------
    # Attempts in all (botocore's `max_attempts` counts the retries): the functions' clients, and the client
    # that starts executions (ingest, reconcile), which retries a throttled StartExecution longer. A throttling
    # error waits rand(0, 1) x 2^(attempt-1) s (botocore retries/standard.py, base 1 s, at most 20 s).
    sdk_max_attempts: int = 1 + SDK_RETRIES
    start_max_attempts: int = 1 + START_RETRIES
    # ---- Zendesk --------------------------------------------------------------------------------------------
    # developer.zendesk.com/api-reference/introduction/rate-limits and support.zendesk.com "Using the API
    # dashboard": requests a minute per plan, Team 200, Growth and Professional 400, Enterprise 700, the High
    # Volume API add-on (Enterprise Plus) 2,500. The model takes Team. A 429 carries Retry-After (to the minute's
    # end); rootmail's adapter waits it out up to a budget of 20 s per operation, then raises ZendeskUnavailable.
    zendesk_requests_per_minute: int = 200
    zendesk_budget_seconds: float = 20.0
    # ---- Slack ----------------------------------------------------------------------------------------------
    # docs.slack.dev/apis/web-api/rate-limits: chat.postMessage about 1 message a second per channel, short
    # bursts allowed (the burst size is not published: assumed 5); chat.update is Tier 3, 50+ a minute. A 429
    # carries Retry-After; rootmail's handler retries twice if Slack asks for at most 10 s, else SlackUnavailable.
    slack_posts_per_second: float = 1.0
    slack_post_burst: float = 5.0
    slack_updates_per_minute: float = 50.0
    slack_retry_max_wait: float = 10.0
    slack_retries: int = 2
    # ---- rootmail's hourly reconcile (serverless.yml params, rootmail/config.py) ---------------------------
    reconcile_every_seconds: float = 3600.0
    reconcile_first_at: float = 1800.0  # assumed: the burst starts half-way between two runs
    reconcile_grace_seconds: float = 15 * 60.0
    reconcile_stuck_seconds: float = 60 * 60.0
    reconcile_max_attempts: int = 3

    def with_(self, **changes: Any) -> Quotas:
        return replace(self, **changes)

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class Source:
    what: str
    where: str


SOURCES: list[Source] = [
    Source(
        "SES maximum send rate",
        "docs.aws.amazon.com/ses/latest/dg/quotas.html (per recipient; the production rate depends on the account since it left the sandbox: 14/s is the classic starting figure)",
    ),
    Source(
        "Step Functions StartExecution and StateTransition buckets",
        "docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html, us-east-1 (figures as commonly cited, "
        "not seen in the page's tables; new accounts start lower)",
    ),
    Source(
        "Lambda concurrency and scaling rate",
        "docs.aws.amazon.com/lambda/latest/dg/lambda-concurrency.html, scaling-behavior.html",
    ),
    Source(
        "Lambda asynchronous retries",
        "docs.aws.amazon.com/lambda/latest/dg/invocation-async-error-handling.html",
    ),
    Source("boto3 standard retry mode", "botocore/retries/standard.py (the installed botocore)"),
    Source(
        "Zendesk API limits",
        "developer.zendesk.com/api-reference/introduction/rate-limits; support.zendesk.com, Using the API dashboard",
    ),
    Source("Slack rate limits", "docs.slack.dev/apis/web-api/rate-limits"),
]


@dataclass(frozen=True)
class Assumptions:
    """What the model assumes about the pipeline and the mail, apart from the services' quotas."""

    # A burst: AWS writes to every account; SES receives it evenly over this long.
    burst_arrival_seconds: float = 600.0
    # The everyday mix keeps arriving meanwhile: 350,000 mails a year (the cost model's year).
    everyday_mails_a_year: int = 350_000
    # The measured durations are moto's, in process; on AWS each DynamoDB, S3 or SES call is a network round trip.
    duration_scale: float = 1.0
    # How long the model runs at most (simulated): a mail not terminal by then is lost.
    horizon_seconds: float = 48 * 3600.0
    notes: list[str] = field(default_factory=list)

    def with_(self, **changes: Any) -> Assumptions:
        return replace(self, **changes)
