"""Hourly: every stored mail against the ledger; what was never triaged or stopped half-way is re-driven."""

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.utilities.typing import LambdaContext

from rootmail.app.audit import NOT_TRIAGED, STUCK, reconcile
from rootmail.bootstrap import runtime
from rootmail.observability import METRICS_NAMESPACE, logger


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    result = reconcile(runtime())
    problems = [f["problem"] for f in result["findings"]]
    oldest = result["oldest_queued"]
    waiting = 0.0
    if oldest:
        waiting = (datetime.now(UTC) - datetime.fromisoformat(oldest.replace("Z", "+00:00"))).total_seconds()
    # What the alarms watch: mail found unprocessed (re-driven now), mail re-driven often enough and queued instead
    # (its executions fail in a way no Catch handles), and how long the oldest queued mail waits.
    for name, value, unit in (
        ("MailNotTriaged", problems.count(NOT_TRIAGED), MetricUnit.Count),
        ("MailStuckInFlight", problems.count(STUCK), MetricUnit.Count),
        ("MailGivenUp", len(result["given_up"]), MetricUnit.Count),
        ("OldestQueuedMailAge", round(waiting), MetricUnit.Seconds),
    ):
        with single_metric(name=name, unit=unit, value=value, namespace=METRICS_NAMESPACE):
            pass
    for given_up in result["given_up"]:
        logger.warning(
            "mail given up",
            extra={
                "mail_id": given_up["mail_id"],
                "key": given_up["key"],
                "redrives": given_up["redrives"],
                "queue_reason": given_up["reason"],
            },
        )
    summary = {k: v for k, v in result.items() if k != "findings"}
    summary["given_up"] = [g["mail_id"] for g in result["given_up"]]
    logger.info("reconciled", extra=summary)
    return {**summary, "findings": len(result["findings"])}
