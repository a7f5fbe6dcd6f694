"""Hourly: every stored mail against the ledger; what was never triaged or stopped half-way is re-driven."""

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.utilities.typing import LambdaContext

from rootmail.audit import NOT_TRIAGED, STUCK, reconcile
from rootmail.observability import METRICS_NAMESPACE, logger
from rootmail.runtime import runtime


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    result = reconcile(runtime())
    problems = [f["problem"] for f in result["findings"]]
    oldest = result["oldest_queued"]
    waiting = 0.0
    if oldest:
        waiting = (datetime.now(UTC) - datetime.fromisoformat(oldest.replace("Z", "+00:00"))).total_seconds()
    # What the alarms watch: mail found unprocessed (re-driven now), and how long the oldest queued mail waits.
    for name, value, unit in (
        ("MailNotTriaged", problems.count(NOT_TRIAGED), MetricUnit.Count),
        ("MailStuckInFlight", problems.count(STUCK), MetricUnit.Count),
        ("OldestQueuedMailAge", round(waiting), MetricUnit.Seconds),
    ):
        with single_metric(name=name, unit=unit, value=value, namespace=METRICS_NAMESPACE):
            pass
    summary = {k: v for k, v in result.items() if k != "findings"}
    logger.info("reconciled", extra=summary)
    return {**summary, "findings": len(result["findings"])}
