"""State machine task: write the mail's terminal state to the ledger, and count it."""

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.utilities.typing import LambdaContext

from rootmail.app.triage_steps import record_step
from rootmail.bootstrap import runtime
from rootmail.observability import METRICS_NAMESPACE, logger


@logger.inject_lambda_context(correlation_id_path="mail_id", clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    result = record_step(event, runtime())
    # One self-contained EMF record per mail: dimensions category, action and terminal state.
    with single_metric(
        name="MailTriaged", unit=MetricUnit.Count, value=1, namespace=METRICS_NAMESPACE
    ) as metric:
        metric.add_dimension(name="category", value=str(result.get("category") or "none"))
        metric.add_dimension(name="action", value=str(result.get("action") or "none"))
        metric.add_dimension(name="state", value=str(result["state"]))
    logger.info("mail recorded", extra={"state": result["state"], "rule_id": result.get("rule_id")})
    return result
