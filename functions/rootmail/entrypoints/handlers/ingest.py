"""S3 ObjectCreated → one triage execution per stored mail."""

from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools.utilities.data_classes import S3Event
from aws_lambda_powertools.utilities.typing import LambdaContext

from rootmail.app.triage.intake import start_triage
from rootmail.bootstrap import runtime
from rootmail.observability import logger


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # S3 event keys arrive URL-encoded (a space as '+'), for every record.
    objects = [(r.s3.bucket.name, unquote_plus(r.s3.get_object.key)) for r in S3Event(event).records]
    return start_triage(objects, runtime())
