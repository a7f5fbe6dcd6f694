"""API Gateway (HTTP API) → the Slack endpoint's Flask app, through serverless-wsgi."""

from functools import lru_cache
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from flask import Flask
from serverless_wsgi import handle_request

from rootmail.entrypoints.slack_app import create_app
from rootmail.observability import logger


@lru_cache(maxsize=1)
def app() -> Flask:
    return create_app()


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return handle_request(app(), event, context)
