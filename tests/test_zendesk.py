"""The Zendesk adapter, driving the real zenpy client against the local Zendesk stand-in."""

from __future__ import annotations

import threading
import time

import pytest
import zenpy.lib.api
from zenpy.lib.api_objects import Comment, Ticket
from zenpy.lib.exception import APIException

from rootmail.adapters.zendesk import MARKER, TicketRef, ZendeskDesk
from rootmail.errors import ZendeskRejected, ZendeskUnavailable
from rootmail_local.standins import ZendeskStandIn

TOKEN = "zd-token-d0-not-leak-7f3a"
EML = b"From: no-reply-aws@amazon.com\r\nSubject: Case 171234567890\r\n\r\nHello from AWS Support\r\n"


@pytest.fixture
def zendesk(monkeypatch):
    with ZendeskStandIn() as standin:
        monkeypatch.setenv("ZENPY_FORCE_NETLOC", standin.netloc)
        monkeypatch.setenv("ZENPY_FORCE_SCHEME", "http")
        yield standin


@pytest.fixture
def desk(zendesk):
    return ZendeskDesk.connect("acme", "rootmail@acme.example", TOKEN)


def case(
    desk: ZendeskDesk, key: str, *, case_id: str = "171234567890", body: str = "AWS wrote", **kw
) -> TicketRef:
    return desk.case_ticket(
        case_id=case_id,
        message_key=key,
        subject=f"AWS case {case_id}",
        body=body,
        requester_email=kw.pop("requester_email", "ops@customer.example"),
        tags=kw.pop("tags", ["rootmail", "aws-support-case"]),
        **kw,
    )


def calls(standin: ZendeskStandIn, since: int = 0) -> list[tuple[str, str, int]]:
    return [(r["method"], r["path"], r["status"]) for r in standin.requests[since:]]


def test_first_mail_of_a_case_creates_the_ticket_with_external_id_and_idempotency_key(zendesk, desk):
    ref = case(desk, "msg-1", body="Your case was updated.")

    assert ref == TicketRef(1, created=True, commented=True, url="https://acme.zendesk.com/agent/tickets/1")
    assert calls(zendesk) == [("GET", "/api/v2/tickets.json", 200), ("POST", "/api/v2/tickets.json", 201)]
    lookup, create = zendesk.requests
    assert lookup["query"]["external_id"] == "aws-case-171234567890"
    assert create["headers"]["Idempotency-Key"] == "rootmail-msg-1"
    assert create["headers"]["Authorization"] == "Basic (redacted)"
    assert create["json"] == {
        "ticket": {
            "external_id": "aws-case-171234567890",
            "subject": "AWS case 171234567890",
            "tags": ["rootmail", "aws-support-case"],
            "requester": {"email": "ops@customer.example"},
            "comment": {"body": f"Your case was updated.\n\n{MARKER}msg-1", "public": False},
        }
    }
    (ticket,) = zendesk.tickets
    assert ticket["requester"] == {"email": "ops@customer.example", "name": "ops@customer.example"}
    assert [c["public"] for c in ticket["comments"]] == [False]  # correspondence is an internal note
    # The session is left as it was: the key went out with the creation only.
    assert "Idempotency-Key" not in desk._session.headers


def test_a_later_mail_of_the_case_becomes_a_comment_on_the_same_ticket(zendesk, desk):
    case(desk, "msg-1")
    stamp = zendesk.tickets[0]["updated_at"]
    mark = len(zendesk.requests)

    ref = case(desk, "msg-2", body="AWS replied again.")

    assert ref == TicketRef(1, created=False, commented=True, url="https://acme.zendesk.com/agent/tickets/1")
    assert calls(zendesk, mark) == [
        ("GET", "/api/v2/tickets.json", 200),
        ("GET", "/api/v2/tickets/1/comments.json", 200),
        ("PUT", "/api/v2/tickets/1.json", 200),
    ]
    put = zendesk.requests[-1]
    assert "Idempotency-Key" not in put["headers"]
    assert put["json"] == {
        "ticket": {
            "id": 1,
            "comment": {"body": f"AWS replied again.\n\n{MARKER}msg-2", "public": False},
            "safe_update": True,
            "updated_stamp": stamp,
        }
    }
    (ticket,) = zendesk.tickets
    assert [c["body"].splitlines()[-1] for c in ticket["comments"]] == [f"{MARKER}msg-1", f"{MARKER}msg-2"]


@pytest.mark.parametrize("replayed", ["msg-1", "msg-2"])
def test_the_same_mail_twice_adds_no_ticket_and_no_comment(zendesk, desk, replayed):
    case(desk, "msg-1")
    case(desk, "msg-2")
    mark = len(zendesk.requests)

    ref = case(desk, replayed)

    assert (ref.ticket_id, ref.created, ref.commented) == (1, False, False)
    assert {method for method, _, _ in calls(zendesk, mark)} == {"GET"}
    assert len(zendesk.tickets) == 1
    assert len(zendesk.tickets[0]["comments"]) == 2


def test_a_marker_is_found_beyond_the_first_page_of_comments(zendesk, desk):
    ticket_id = zendesk.seed_ticket(
        subject="long case",
        external_id="aws-case-42",
        comments=[f"note {i}" for i in range(149)] + [f"old mail\n\n{MARKER}msg-late"],
    )
    mark = len(zendesk.requests)

    ref = case(desk, "msg-late", case_id="42")

    assert (ref.ticket_id, ref.commented) == (ticket_id, False)
    pages = [r for r in zendesk.requests[mark:] if r["path"].endswith("/comments.json")]
    assert [r["query"].get("page[after]") for r in pages] == [None, "100"]
    assert len(zendesk.tickets[0]["comments"]) == 150


def test_a_marker_for_another_key_does_not_count(zendesk, desk):
    case(desk, "msg-10")
    ref = case(desk, "msg-1")  # a prefix of msg-10's marker must not match
    assert ref.commented is True
    assert len(zendesk.tickets[0]["comments"]) == 2


def test_several_tickets_with_the_external_id_the_lowest_is_used_and_named(zendesk, desk):
    first = zendesk.seed_ticket(subject="case 55", external_id="aws-case-55")
    zendesk.seed_ticket(subject="unrelated", external_id="aws-case-56")
    third = zendesk.seed_ticket(subject="case 55, again", external_id="aws-case-55")

    ref = case(desk, "msg-1", case_id="55", body="New correspondence.")

    assert (ref.ticket_id, ref.created, ref.commented) == (first, False, True)
    assert ref.note is not None
    assert f"#{first}" in ref.note and f"#{third}" in ref.note and "aws-case-55" in ref.note
    # Both candidates were searched for the marker, and the ticket itself says what happened.
    assert {r["path"] for r in zendesk.requests if r["path"].endswith("/comments.json")} == {
        f"/api/v2/tickets/{first}/comments.json",
        f"/api/v2/tickets/{third}/comments.json",
    }
    comment = zendesk.tickets[0]["comments"][-1]["body"]
    assert ref.note in comment and comment.endswith(f"{MARKER}msg-1")
    assert len(zendesk.tickets[2]["comments"]) == 1


def test_a_mail_already_on_a_higher_duplicate_is_not_written_again(zendesk, desk):
    zendesk.seed_ticket(subject="case 55", external_id="aws-case-55")
    higher = zendesk.seed_ticket(
        subject="case 55", external_id="aws-case-55", comments=[f"x\n\n{MARKER}msg-1"]
    )

    ref = case(desk, "msg-1", case_id="55")

    assert (ref.ticket_id, ref.created, ref.commented) == (higher, False, False)
    assert not any(r["method"] == "PUT" for r in zendesk.requests)


def test_urgent_ticket_fields(zendesk, desk):
    ref = desk.urgent_ticket(
        message_key="msg-abuse",
        subject="[URGENT] Abuse report for 123456789012",
        body="AWS received an abuse report.",
        requester_email="Owner@Customer.example",
        requester_name="Customer KK",
        tags=["rootmail", "urgent", "abuse-report", "aws-123456789012"],
    )

    assert ref == TicketRef(1, created=True, commented=True, url="https://acme.zendesk.com/agent/tickets/1")
    lookup, create = zendesk.requests
    assert lookup["query"]["external_id"] == "rootmail-msg-abuse"
    assert create["headers"]["Idempotency-Key"] == "rootmail-urgent-msg-abuse"
    assert create["json"]["ticket"] == {
        "external_id": "rootmail-msg-abuse",
        "subject": "[URGENT] Abuse report for 123456789012",
        "tags": ["rootmail", "urgent", "abuse-report", "aws-123456789012"],
        "priority": "urgent",
        "type": "incident",
        "requester": {"email": "Owner@Customer.example", "name": "Customer KK"},
        "comment": {"body": f"AWS received an abuse report.\n\n{MARKER}msg-abuse", "public": True},
    }
    (ticket,) = zendesk.tickets
    assert (ticket["priority"], ticket["type"]) == ("urgent", "incident")
    assert ticket["requester"] == {"email": "owner@customer.example", "name": "Customer KK"}
    assert ticket["comments"][0]["public"] is True  # Zendesk notifies the customer

    again = desk.urgent_ticket(
        message_key="msg-abuse", subject="x", body="y", requester_email=None, requester_name=None, tags=[]
    )
    assert (again.ticket_id, again.created, again.commented) == (1, False, False)
    assert len(zendesk.tickets) == 1


def test_urgent_ticket_without_a_contact_has_no_requester(zendesk, desk):
    desk.urgent_ticket(
        message_key="m", subject="s", body="b", requester_email=None, requester_name="X", tags=[]
    )
    assert "requester" not in zendesk.requests[-1]["json"]["ticket"]
    assert zendesk.tickets[0]["requester"] is None


def test_the_attachment_is_uploaded_and_referenced_by_the_comment(zendesk, desk):
    case(desk, "msg-1", attachment=("original.eml", EML))

    upload = next(r for r in zendesk.requests if r["path"] == "/api/v2/uploads.json")
    assert upload["method"] == "POST"
    assert upload["query"] == {"filename": "original.eml"}
    assert upload["headers"]["Content-Type"] == "message/rfc822"
    ((token, stored),) = zendesk.uploads.items()
    assert stored["attachments"][0]["data"] == EML
    create = zendesk.requests[-1]
    assert create["json"]["ticket"]["comment"]["uploads"] == [token]
    (comment,) = zendesk.tickets[0]["comments"]
    assert comment["uploads"] == [token]
    assert comment["attachments"][0]["file_name"] == "original.eml"
    assert comment["attachments"][0]["size"] == len(EML)


def test_an_odd_attachment_name_is_made_safe_for_the_query_string(zendesk, desk):
    case(desk, "msg-1", attachment=("re: case&x=1.eml", EML))
    upload = next(r for r in zendesk.requests if r["path"] == "/api/v2/uploads.json")
    assert upload["query"] == {"filename": "re_case_x_1.eml"}


def test_an_upload_retried_after_429_sends_the_whole_file(zendesk, desk, monkeypatch):
    monkeypatch.setattr(zenpy.lib.api, "sleep", lambda seconds: None)
    zendesk.fail_next(429, retry_after=1, method="POST")
    case(desk, "msg-1", attachment=("original.eml", EML))
    uploads = [r for r in zendesk.requests if r["path"] == "/api/v2/uploads.json"]
    assert [r["status"] for r in uploads] == [429, 201]
    ((_, stored),) = zendesk.uploads.items()
    assert stored["attachments"][0]["data"] == EML


def test_a_creation_replayed_by_zendesk_is_not_reported_as_created(zendesk, desk, monkeypatch):
    case(desk, "msg-1")
    # Zendesk's list has not caught up yet: the lookup misses, the creation goes out again with the same key.
    lookup = desk._lookup
    monkeypatch.setattr(desk, "_lookup", lambda external_id: [])
    ref = case(desk, "msg-1")
    monkeypatch.setattr(desk, "_lookup", lookup)

    assert (ref.ticket_id, ref.created, ref.commented) == (1, False, False)
    assert ref.note is not None and "Idempotency-Key" in ref.note
    assert len(zendesk.tickets) == 1 and len(zendesk.tickets[0]["comments"]) == 1


def test_a_replayed_key_with_a_new_upload_token_finds_the_ticket_instead(zendesk, desk, monkeypatch):
    case(desk, "msg-1", attachment=("original.eml", EML))
    lookup = desk._lookup
    missed: list[str] = []

    def miss_once(
        external_id: str,
    ):  # the first lookup misses; after Zendesk's 400 the second finds the ticket
        if not missed:
            missed.append(external_id)
            return []
        return lookup(external_id)

    monkeypatch.setattr(desk, "_lookup", miss_once)
    mark = len(zendesk.requests)

    ref = case(desk, "msg-1", attachment=("original.eml", EML))

    assert (ref.ticket_id, ref.created, ref.commented) == (1, False, False)
    assert ("POST", "/api/v2/tickets.json", 400) in calls(zendesk, mark)
    assert not any(r["method"] == "PUT" for r in zendesk.requests)
    assert len(zendesk.tickets) == 1 and len(zendesk.tickets[0]["comments"]) == 1


def test_a_ticket_changed_between_check_and_write_is_retried_not_doubled(zendesk, desk, monkeypatch):
    case(desk, "msg-1")
    other = ZendeskDesk.connect("acme", "rootmail@acme.example", TOKEN)
    check = desk._has_marker

    def check_then_someone_writes(ticket_id: int, message_key: str) -> bool:
        seen = check(ticket_id, message_key)
        # Another execution comments on the ticket between our check and our write.
        other._client.tickets.update(Ticket(id=ticket_id, comment=Comment(body="agent note", public=False)))
        return seen

    monkeypatch.setattr(desk, "_has_marker", check_then_someone_writes)
    with pytest.raises(ZendeskUnavailable, match="409"):
        case(desk, "msg-2")
    monkeypatch.setattr(desk, "_has_marker", check)

    assert case(desk, "msg-2").commented is True
    assert case(desk, "msg-2").commented is False
    bodies = [c["body"] for c in zendesk.tickets[0]["comments"]]
    assert sum(b.endswith(f"{MARKER}msg-2") for b in bodies) == 1


def test_429_with_retry_after_is_waited_out_and_resent(zendesk, desk):
    zendesk.fail_next(429, retry_after=1)
    started = time.monotonic()
    ref = case(desk, "msg-1")
    assert time.monotonic() - started >= 1
    assert ref.created is True
    assert calls(zendesk)[:3] == [
        ("GET", "/api/v2/tickets.json", 429),
        ("GET", "/api/v2/tickets.json", 200),
        ("POST", "/api/v2/tickets.json", 201),
    ]


def test_429_with_retry_after_zero_is_left_to_the_state_machine(zendesk, desk):
    # zenpy resends only when Retry-After > 0; a zero wait surfaces as a transient error, and the retry succeeds.
    zendesk.fail_next(429, retry_after=0)
    with pytest.raises(ZendeskUnavailable, match="429"):
        case(desk, "msg-1")
    assert zendesk.tickets == []
    assert case(desk, "msg-1").created is True
    assert len(zendesk.tickets) == 1


def test_rate_limiting_past_the_budget_fails_transiently_and_each_call_gets_a_whole_budget(
    zendesk, desk, monkeypatch
):
    waited: list[float] = []
    monkeypatch.setattr(zenpy.lib.api, "sleep", waited.append)
    zendesk.fail_next(429, retry_after=30)
    with pytest.raises(ZendeskUnavailable, match="budget"):
        case(desk, "msg-1")
    assert 0 < sum(waited) < 20  # the budget given to connect(), not Zendesk's 30 seconds
    assert zendesk.tickets == []

    waited.clear()
    zendesk.fail_next(429, times=1, retry_after=15)
    assert case(desk, "msg-1").created is True  # a fresh budget, though the last call spent it
    assert sum(waited) == 15


def test_server_errors_are_transient(zendesk, desk):
    zendesk.fail_next(500)
    with pytest.raises(ZendeskUnavailable) as caught:
        case(desk, "msg-1")
    assert "500" in str(caught.value) and "/api/v2/tickets.json" in str(caught.value)
    assert TOKEN not in str(caught.value)
    assert zendesk.tickets == []


def test_a_503_on_a_read_is_retried_by_the_transport(zendesk, desk):
    zendesk.fail_next(503)
    assert case(desk, "msg-1").created is True
    assert calls(zendesk)[:2] == [("GET", "/api/v2/tickets.json", 503), ("GET", "/api/v2/tickets.json", 200)]


def test_a_503_on_the_comment_write_is_not_resent_blindly(zendesk, desk):
    case(desk, "msg-1")
    zendesk.fail_next(503, method="PUT")
    with pytest.raises(ZendeskUnavailable, match="503"):
        case(desk, "msg-2")
    assert [r["status"] for r in zendesk.requests if r["method"] == "PUT"] == [503]
    assert case(desk, "msg-2").commented is True
    assert len(zendesk.tickets[0]["comments"]) == 2


@pytest.mark.parametrize(
    ("status", "text"), [(404, "RecordNotFound"), (422, "RecordInvalid"), (401, "authenticate")]
)
def test_client_errors_are_permanent_and_name_status_and_zendesk_text(zendesk, desk, status, text):
    zendesk.fail_next(status)
    with pytest.raises(ZendeskRejected) as caught:
        case(desk, "msg-1")
    message = str(caught.value)
    assert str(status) in message and text in message
    assert TOKEN not in message
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_zendesk_down_is_transient(zendesk, desk):
    zendesk.stop()
    with pytest.raises(ZendeskUnavailable, match="unreachable") as caught:
        case(desk, "msg-1")
    assert TOKEN not in str(caught.value)


def test_unusual_identifiers_survive_the_query_string_and_the_header(zendesk, desk):
    # zenpy does not encode query values: the adapter does, so "&" cannot smuggle in another parameter.
    ref = case(desk, "メール 1", case_id="1&external_id=other")
    assert case(desk, "メール 1", case_id="1&external_id=other").ticket_id == ref.ticket_id
    assert len(zendesk.tickets) == 1 and len(zendesk.tickets[0]["comments"]) == 1
    lookup, create = zendesk.requests[:2]
    assert lookup["query"]["external_id"] == "aws-case-1&external_id=other"
    assert create["headers"]["Idempotency-Key"].startswith("rootmail-sha256-")  # headers are Latin-1 only
    assert zendesk.tickets[0]["comments"][0]["body"].endswith(f"{MARKER}メール 1")


def test_a_message_key_with_a_line_break_is_refused_before_any_request(zendesk, desk):
    with pytest.raises(ZendeskRejected, match="message key"):
        case(desk, "msg-1\nrootmail-message: msg-2")
    assert zendesk.requests == []


def test_idempotency_key_semantics_of_the_stand_in(zendesk, desk):
    api = desk._client.tickets
    session = api.session
    session.headers["Idempotency-Key"] = "k-1"
    try:
        first = api.create(Ticket(subject="a", comment=Comment(body="b")))
        again = api.create(Ticket(subject="a", comment=Comment(body="b")))
        with pytest.raises(APIException, match="IdempotentRequestError"):
            api.create(Ticket(subject="a", comment=Comment(body="different")))
    finally:
        del session.headers["Idempotency-Key"]
    assert first.ticket.id == again.ticket.id == 1
    posts = [r for r in zendesk.requests if r["method"] == "POST"]
    assert [r["status"] for r in posts] == [201, 201, 400]
    assert len(zendesk.tickets) == 1


def test_the_stand_in_serves_concurrent_requests_and_stops_without_leftovers(monkeypatch):
    before = set(threading.enumerate())
    with ZendeskStandIn() as standin:
        monkeypatch.setenv("ZENPY_FORCE_NETLOC", standin.netloc)
        monkeypatch.setenv("ZENPY_FORCE_SCHEME", "http")
        desks = [ZendeskDesk.connect("acme", "rootmail@acme.example", TOKEN) for _ in range(4)]
        errors: list[BaseException] = []

        def work(n: int) -> None:
            try:
                for i in range(5):
                    case(desks[n], f"m-{n}-{i}", case_id=f"{n}")
            except BaseException as exc:  # reported below
                errors.append(exc)

        workers = [threading.Thread(target=work, args=(n,)) for n in range(4)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        assert errors == []
        assert sorted(len(t["comments"]) for t in standin.tickets) == [5, 5, 5, 5]
        assert len({t["id"] for t in standin.tickets}) == 4
    assert set(threading.enumerate()) <= before


def test_a_mail_on_a_case_whose_ticket_is_closed_opens_a_linked_follow_up(zendesk, desk):
    closed = zendesk.seed_ticket(
        subject="AWS case 171234567890", external_id="aws-case-171234567890", status="closed"
    )
    ref = case(desk, "msg-9", body="AWS reopened the case.")

    assert ref.created and ref.ticket_id != closed
    follow_up = zendesk.tickets[-1]
    assert follow_up["external_id"] == "aws-case-171234567890"
    assert follow_up["via_followup_source_id"] == closed
    assert [c["body"].splitlines()[0] for c in follow_up["comments"]] == ["AWS reopened the case."]
    assert len(zendesk.tickets[0]["comments"]) == 1  # the closed ticket is left as it was
    # The next mail of the case threads into the follow-up, not the closed ticket nor a third one.
    again = case(desk, "msg-10", body="More from AWS.")
    assert again.ticket_id == ref.ticket_id and again.commented and len(zendesk.tickets) == 2


def test_a_mail_already_on_a_closed_ticket_is_not_written_again(zendesk, desk):
    closed = zendesk.seed_ticket(
        subject="AWS case 171234567890",
        external_id="aws-case-171234567890",
        comments=[f"old text\n\n{MARKER}msg-1"],
        status="closed",
    )
    ref = case(desk, "msg-1")
    assert (ref.ticket_id, ref.created, ref.commented) == (closed, False, False)
    assert len(zendesk.tickets) == 1
