"""The Slack adapter, driving the real slack_sdk WebClient against the local Slack stand-in."""

from __future__ import annotations

import threading

import pytest
from slack_sdk.http_retry import builtin_handlers, handler

from rootmail.adapters.slack import SlackNotifier
from rootmail.app.ports import PostedMessage
from rootmail.errors import SlackMessageGone, SlackRejected, SlackUnavailable
from rootmail_local.standins import SlackStandIn

TOKEN = "xoxb-d0-not-leak-1234"
BLOCKS = [
    {"type": "header", "text": {"type": "plain_text", "text": "Urgent AWS notice"}},
    {"type": "section", "text": {"type": "mrkdwn", "text": "*abuse-report* for `123456789012`"}},
]


class _Clock:
    """Stands in for the `time` module of slack_sdk's retry handlers: records the waits instead of sleeping."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
def slack():
    with SlackStandIn() as standin:
        yield standin


@pytest.fixture
def notifier(slack):
    return SlackNotifier.connect(TOKEN, "#rootmail-ops", slack.base_url)


@pytest.fixture
def clock(monkeypatch):
    fake = _Clock()
    monkeypatch.setattr(builtin_handlers, "time", fake)  # RateLimitErrorRetryHandler's Retry-After wait
    monkeypatch.setattr(handler, "time", fake)  # the connection-error handler's backoff
    return fake


def test_a_post_is_recorded_with_its_blocks_and_returns_the_ts(slack, notifier):
    ts = notifier.post("Urgent AWS notice: abuse-report", BLOCKS)

    (message,) = slack.messages
    assert {k: message[k] for k in ("channel", "text", "blocks", "ts", "updates")} == {
        "channel": "#rootmail-ops",
        "text": "Urgent AWS notice: abuse-report",
        "blocks": BLOCKS,
        "ts": ts,
        "updates": 0,
    }
    (request,) = slack.requests
    assert (request["method"], request["path"], request["status"]) == ("POST", "/api/chat.postMessage", 200)
    assert request["json"] == {
        "channel": "#rootmail-ops",
        "text": "Urgent AWS notice: abuse-report",
        "blocks": BLOCKS,
    }
    assert request["headers"]["Authorization"] == "Bearer (redacted)"
    assert notifier.post("second") != ts


def test_a_message_posted_to_be_updated_is_updated_by_its_channel_id_and_ts(slack, notifier):
    posted = notifier.post_message("Quarantined mail: one", BLOCKS)
    assert posted.channel.startswith("C") and posted.channel != "#rootmail-ops"
    notifier.update(posted, "2 × Quarantined mail: one", BLOCKS[:1])
    (message,) = slack.messages
    assert (message["text"], message["blocks"], message["updates"]) == (
        "2 × Quarantined mail: one",
        BLOCKS[:1],
        1,
    )
    assert (
        slack.requests[-1]["json"]["channel"] == posted.channel
        and slack.requests[-1]["json"]["ts"] == posted.ts
    )
    # Slack finds a message to update by the channel's ID: its name does not do.
    with pytest.raises(SlackRejected, match="channel_not_found"):
        notifier.update(PostedMessage(channel="#rootmail-ops", ts=posted.ts), "3 ×", BLOCKS)


def test_updating_a_message_deleted_in_slack_says_it_is_gone(slack, notifier):
    posted = notifier.post_message("Quarantined mail: one", BLOCKS)
    slack.delete(posted.ts)
    with pytest.raises(SlackMessageGone, match="message_not_found"):
        notifier.update(posted, "2 × Quarantined mail: one", BLOCKS)


def test_429_on_an_update_is_waited_out_then_updated(slack, notifier, clock):
    posted = notifier.post_message("Quarantined mail: one", BLOCKS)
    slack.fail_next(429, retry_after=2)
    notifier.update(posted, "2 × Quarantined mail: one", BLOCKS)
    assert [r["status"] for r in slack.requests] == [200, 429, 200]
    assert len(clock.waits) == 1 and 2 <= clock.waits[0] < 3
    assert slack.messages[0]["updates"] == 1


def test_a_post_without_blocks_sends_none(slack, notifier):
    notifier.post("plain")
    assert slack.requests[0]["json"] == {"channel": "#rootmail-ops", "text": "plain"}
    assert slack.messages[0]["blocks"] is None


def test_429_is_waited_out_then_posted(slack, notifier, clock):
    slack.fail_next(429, retry_after=1)
    ts = notifier.post("after a pause")
    assert [r["status"] for r in slack.requests] == [429, 200]
    assert len(clock.waits) == 1 and 1 <= clock.waits[0] < 2
    assert slack.messages[0]["ts"] == ts


def test_429_beyond_two_retries_is_transient(slack, notifier, clock):
    slack.fail_next(429, times=3, retry_after=0)
    with pytest.raises(SlackUnavailable, match=r"429.*ratelimited"):
        notifier.post("still limited")
    assert [r["status"] for r in slack.requests] == [429, 429, 429]
    assert len(clock.waits) == 2
    assert slack.messages == []


def test_a_long_retry_after_is_not_slept_in_the_lambda(slack, notifier, clock):
    slack.fail_next(429, retry_after=120)
    with pytest.raises(SlackUnavailable, match="429"):
        notifier.post("later")
    assert clock.waits == []
    assert len(slack.requests) == 1


def test_a_real_short_429_wait(slack, notifier):
    slack.fail_next(429, retry_after=0)  # slack_sdk sleeps Retry-After plus up to a second of jitter
    notifier.post("soon")
    assert len(slack.messages) == 1


def test_server_errors_are_transient(slack, notifier):
    slack.fail_next(500)
    with pytest.raises(SlackUnavailable, match="500") as caught:
        notifier.post("x")
    assert TOKEN not in str(caught.value)
    assert slack.messages == []


def test_slack_down_is_transient(slack, notifier, clock):
    slack.stop()
    with pytest.raises(SlackUnavailable, match="unreachable") as caught:
        notifier.post("anyone there?")
    assert TOKEN not in str(caught.value)
    assert len(clock.waits) == 1  # slack_sdk's default handler retried the connection once
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_an_unknown_channel_is_permanent(slack):
    notifier = SlackNotifier.connect(TOKEN, "#does-not-exist", slack.base_url)
    with pytest.raises(SlackRejected, match="channel_not_found") as caught:
        notifier.post("x")
    assert "#does-not-exist" in str(caught.value)
    assert TOKEN not in str(caught.value)
    assert slack.messages == []


def test_a_missing_token_is_permanent(slack):
    notifier = SlackNotifier.connect("", "#rootmail-ops", slack.base_url)
    with pytest.raises(SlackRejected, match="not_authed"):
        notifier.post("x")


def test_the_channel_is_public_for_the_delivery_record(notifier):
    assert notifier.channel == "#rootmail-ops"


def test_auth_test_and_form_encoded_calls_work(slack):
    notifier = SlackNotifier.connect(TOKEN, "#rootmail-ops", slack.base_url)
    assert notifier.client.auth_test()["user_id"] == "U0LOCAL"
    # slack_sdk sends most methods as a form: blocks arrive as a JSON string.
    answer = notifier.client.api_call(
        "chat.postMessage", params={"channel": "#c", "text": "t", "blocks": '[{"type": "divider"}]'}
    )
    assert answer["ok"] is True
    assert slack.messages[-1]["blocks"] == [{"type": "divider"}]


def test_the_stand_in_serves_concurrent_posts_and_stops_without_leftovers():
    before = set(threading.enumerate())
    with SlackStandIn() as slack:
        notifier = SlackNotifier.connect(TOKEN, "#rootmail-ops", slack.base_url)
        stamps: list[str] = []
        workers = [
            threading.Thread(target=lambda n=n: stamps.append(notifier.post(f"m{n}"))) for n in range(20)
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        assert len(set(stamps)) == 20
        assert sorted(m["text"] for m in slack.messages) == sorted(f"m{n}" for n in range(20))
    assert set(threading.enumerate()) <= before
