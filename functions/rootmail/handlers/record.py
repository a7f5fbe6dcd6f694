"""State machine task: write the mail's terminal state to the ledger, and count it."""

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from rootmail.observability import logger, metrics
from rootmail.pipeline import record_step
from rootmail.runtime import runtime


@metrics.log_metrics
@logger.inject_lambda_context(correlation_id_path="mail_id", clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    result = record_step(event, runtime())
    metrics.add_dimension(name="category", value=str(result.get("category") or "none"))
    metrics.add_dimension(name="action", value=str(result.get("action") or "none"))
    metrics.add_metric(name="MailTriaged", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name=f"MailEnded_{result['state']}", unit=MetricUnit.Count, value=1)
    logger.info("mail recorded", extra={"state": result["state"], "rule_id": result.get("rule_id")})
    return result
