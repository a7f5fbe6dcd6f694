"""Operator alerts in Slack through slack_sdk's WebClient."""

from __future__ import annotations

import http.client
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackRequestError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.webhook import WebhookClient

from rootmail.app.ports import PostedMessage
from rootmail.errors import SlackMessageGone, SlackRejected, SlackUnavailable

# Slack's `error` values that mean "not now" rather than "never".
_TRANSIENT_ERRORS = {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}


class BoundedRateLimitRetryHandler(RateLimitErrorRetryHandler):
    """slack_sdk's 429 handler (it sleeps Retry-After), except that it gives up when Slack asks for a longer wait
    than `max_wait` seconds: the state machine retries later instead of the Lambda sleeping past its timeout."""

    def __init__(self, max_retry_count: int = 2, max_wait: int = 10) -> None:
        super().__init__(max_retry_count=max_retry_count)
        self.max_wait = max_wait

    def _can_retry(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        if response is None or not super()._can_retry(state=state, request=request, response=response):
            return False
        for name, values in response.headers.items():
            if name.lower() == "retry-after":
                try:
                    return int(values[0]) <= self.max_wait
                except (ValueError, IndexError):
                    return True
        return True


class SlackNotifier:
    """Posts to the operators' channel, answers through a command's response_url, opens modals."""

    def __init__(
        self, client: WebClient, channel: str, *, response_url_prefix: str = "https://hooks.slack.com/"
    ) -> None:
        self.client = client
        self.channel = channel
        # A response_url comes inside a request; only Slack's own are followed (never a URL a payload makes up).
        self.response_url_prefix = response_url_prefix

    @classmethod
    def connect(
        cls,
        token: str,
        channel: str,
        base_url: str = "https://slack.com/api/",
        *,
        timeout: int = 10,
        response_url_prefix: str = "https://hooks.slack.com/",
    ) -> SlackNotifier:
        client = WebClient(token=token, base_url=base_url, timeout=timeout)
        # The default handlers retry connection errors once; 429 is retried only with this one added.
        client.retry_handlers.append(BoundedRateLimitRetryHandler(max_retry_count=2))
        return cls(client, channel, response_url_prefix=response_url_prefix)

    def post(
        self, text: str, blocks: list[dict[str, Any]] | None = None, *, channel: str | None = None
    ) -> str:
        """Post to the channel (or another the operators used); return the message's ts."""
        where = channel or self.channel
        response = self._call(
            f"chat.postMessage in {where}",
            lambda: self.client.chat_postMessage(channel=where, text=text, blocks=blocks),
        )
        return str(response["ts"])

    def post_message(self, text: str, blocks: list[dict[str, Any]]) -> PostedMessage:
        """Post to the channel a message to update later: chat.update wants the channel's ID, which Slack returns."""
        response = self._call(
            f"chat.postMessage in {self.channel}",
            lambda: self.client.chat_postMessage(channel=self.channel, text=text, blocks=blocks),
        )
        return PostedMessage(channel=str(response["channel"]), ts=str(response["ts"]))

    def update(self, message: PostedMessage, text: str, blocks: list[dict[str, Any]]) -> None:
        """Update a message this app posted; SlackMessageGone when it was deleted."""
        try:
            self._call(
                f"chat.update of {message.ts}",
                lambda: self.client.chat_update(
                    channel=message.channel, ts=message.ts, text=text, blocks=blocks
                ),
            )
        except SlackRejected as exc:
            if "message_not_found" in str(exc):
                raise SlackMessageGone(str(exc)) from None
            raise

    def open_view(self, trigger_id: str, view: dict[str, Any]) -> str:
        """Open a modal for the operator who clicked (the trigger ID lives 3 seconds); return the view's ID."""
        response = self._call("views.open", lambda: self.client.views_open(trigger_id=trigger_id, view=view))
        return str((response.get("view") or {}).get("id", ""))

    def respond(
        self,
        response_url: str,
        text: str,
        blocks: list[dict[str, Any]] | None = None,
        *,
        ephemeral: bool = False,
    ) -> None:
        """Answer a slash command or a click later through its response_url (valid 30 minutes, 5 uses); to the
        channel, or (`ephemeral`) to the operator alone."""
        if not response_url.startswith(self.response_url_prefix):
            raise SlackRejected(f"not a Slack response_url (expected {self.response_url_prefix}…)")
        try:
            answer = WebhookClient(response_url, timeout=10).send(
                text=text, blocks=blocks, response_type="ephemeral" if ephemeral else "in_channel"
            )
        except (OSError, http.client.HTTPException) as exc:
            raise SlackUnavailable(f"Slack unreachable: {type(exc).__name__}: {exc}") from None
        if answer.status_code == 429 or answer.status_code >= 500:
            raise SlackUnavailable(f"Slack answered {answer.status_code} to a response_url")
        if answer.status_code >= 400:
            raise SlackRejected(f"Slack answered {answer.status_code} to a response_url: {answer.body[:200]}")

    def _call(self, what: str, request: Any) -> Any:
        try:
            return request()
        except SlackApiError as exc:
            status = exc.response.status_code
            error = _error_of(exc.response.data)
            message = f"Slack answered {status} to {what}: {error}"
            if status == 429 or status >= 500 or error in _TRANSIENT_ERRORS:
                raise SlackUnavailable(self._scrub(message)) from None
            raise SlackRejected(self._scrub(message)) from None
        except SlackRequestError as exc:  # the request could not even be built (a bad base URL, say)
            raise SlackRejected(self._scrub(f"Slack request refused before sending: {exc}")) from None
        except (OSError, http.client.HTTPException) as exc:  # URLError, refused, reset, timeouts
            raise SlackUnavailable(self._scrub(f"Slack unreachable: {type(exc).__name__}: {exc}")) from None

    def _scrub(self, text: str) -> str:
        token = self.client.token
        return text.replace(token, "***") if token else text


def _error_of(data: Any) -> str:
    if isinstance(data, dict):
        return str(data.get("error") or "unknown error")
    return "unexpected answer"
