"""Local HTTP stand-ins for Zendesk and Slack. The real zenpy and slack_sdk clients talk to them (zenpy through
ZENPY_FORCE_NETLOC / ZENPY_FORCE_SCHEME=http, slack_sdk through its base_url) in the demo and the tests; they record
what they receive and can be told to fail.

They implement the slice of each API that rootmail uses, with the behaviour that matters for it: Zendesk's
Idempotency-Key on ticket creation (a replay answers `x-idempotency-lookup: hit`, the same key with another payload
answers 400 IdempotentRequestError), `safe_update` conflicts (409), cursor pagination, uploads; Slack's
`{"ok": false, "error": ...}` answers. Each serves on 127.0.0.1 on a free port, one thread per request, under a lock.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, urlencode, urlsplit


@dataclass
class _Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers.items() if k.lower() == name.lower()), None)

    def json(self) -> Any:
        try:
            return json.loads(self.body) if self.body else None
        except ValueError:
            return None


@dataclass
class _Answer:
    status: int
    body: Any  # a dict or list goes out as JSON, a str as text
    headers: dict[str, str] = field(default_factory=dict)


class _Server(ThreadingHTTPServer):
    # Request threads are not daemons, so server_close() joins them: nothing lingers after stop().
    daemon_threads = False
    block_on_close = True
    request_queue_size = 128  # the default 5 makes bursts of connections wait for SYN retransmits (1 s)


class _StandIn:
    """Lifecycle, request recording and fault injection shared by both stand-ins."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._faults: list[tuple[int, int | None, str | None]] = []
        self._requests: list[dict[str, Any]] = []
        self._stopped_port: int | None = None

    # ---- lifecycle ----------------------------------------------------------------------------------------

    def start(self) -> Self:
        if self._server is None:
            self._server = _Server(("127.0.0.1", 0), self._handler_class())
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"{type(self).__name__}:{self.port}",
                daemon=True,  # only a safety net: stop() joins it
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join()
        self._server = self._thread = None
        self._stopped_port = int(server.server_address[1])

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is not None:
            return int(self._server.server_address[1])
        if self._stopped_port is None:
            raise RuntimeError(f"{type(self).__name__} is not started: call start() first")
        return self._stopped_port  # a stopped stand-in keeps its address, so clients now find nobody there

    @property
    def netloc(self) -> str:
        return f"127.0.0.1:{self.port}"

    # ---- recording and faults -----------------------------------------------------------------------------

    @property
    def requests(self) -> list[dict[str, Any]]:
        """Every request received: method, path, query, headers (credentials redacted), json, status."""
        with self._lock:
            return copy.deepcopy(self._requests)

    def fail_next(
        self, status: int, times: int = 1, retry_after: int | None = None, *, method: str | None = None
    ) -> None:
        """Answer the next `times` requests (only those with `method`, when given) with `status`, and a
        Retry-After header when given."""
        with self._lock:
            self._faults.extend([(status, retry_after, method)] * times)

    def heal(self) -> None:
        """Forget the faults not yet used: the service is back."""
        with self._lock:
            self._faults.clear()

    def _serve(self, request: _Request) -> _Answer:
        with self._lock:
            fault = next((f for f in self._faults if f[2] in (None, request.method)), None)
            if fault is not None:
                self._faults.remove(fault)
                status, retry_after, _ = fault
                answer = self._fault(status)
                if retry_after is not None:
                    answer.headers["Retry-After"] = str(retry_after)
            else:
                answer = self._route(request)
            self._requests.append(
                {
                    "method": request.method,
                    "path": request.path,
                    "query": dict(request.query),
                    "headers": {k: _redacted(k, v) for k, v in request.headers.items()},
                    "json": request.json(),
                    "status": answer.status,
                }
            )
            return answer

    def _route(self, request: _Request) -> _Answer:
        raise NotImplementedError

    def _fault(self, status: int) -> _Answer:
        raise NotImplementedError

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = (
                "HTTP/1.0"  # one request per connection: no idle keep-alive threads to wait for
            )
            timeout = 10

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                url = urlsplit(self.path)
                query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
                answer = standin._serve(
                    _Request(self.command, url.path, query, dict(self.headers.items()), body)
                )
                if isinstance(answer.body, dict | list):
                    payload, content_type = (
                        json.dumps(answer.body).encode(),
                        "application/json; charset=utf-8",
                    )
                else:
                    payload, content_type = str(answer.body).encode(), "text/plain; charset=utf-8"
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = _handle

            def log_message(self, format: str, *args: Any) -> None:
                return None  # the recorded requests are the log

        return Handler


def _redacted(name: str, value: str) -> str:
    if name.lower() == "authorization":
        return value.split(" ", 1)[0] + " (redacted)"
    return value


# ---- Zendesk -------------------------------------------------------------------------------------------------

_API_USER_ID = 1
_PRIORITIES = {None, "urgent", "high", "normal", "low"}
_TYPES = {None, "problem", "incident", "question", "task"}


class ZendeskStandIn(_StandIn):
    """The ticket, comment, upload and user endpoints of the Zendesk Support API that zenpy calls for rootmail."""

    def __init__(self) -> None:
        super().__init__()
        self._tickets: list[dict[str, Any]] = []
        self._uploads: dict[str, dict[str, Any]] = {}
        self._users: dict[int, dict[str, Any]] = {
            _API_USER_ID: {
                "id": _API_USER_ID,
                "email": "rootmail-api@zendesk.invalid",
                "name": "rootmail (API)",
            }
        }
        self._idempotency: dict[str, tuple[str, _Answer]] = {}
        self._ids = itertools.count(1)
        self._comment_ids = itertools.count(1001)
        self._user_ids = itertools.count(501)
        self._upload_ids = itertools.count(1)
        self._audit_ids = itertools.count(90001)
        self._last_stamp = datetime(2000, 1, 1, tzinfo=UTC)

    @property
    def tickets(self) -> list[dict[str, Any]]:
        """Tickets as recorded: id, subject, external_id, priority, type, status, tags, requester ({email, name} or
        None for the API user), comments (body, public, uploads = the tokens sent, attachments)."""
        with self._lock:
            return [self._record(t) for t in self._tickets]

    @property
    def uploads(self) -> dict[str, dict[str, Any]]:
        """Uploaded files by token: file_name, content_type, data."""
        with self._lock:
            return copy.deepcopy(self._uploads)

    def seed_ticket(
        self,
        *,
        subject: str,
        external_id: str | None = None,
        comments: list[str] | None = None,
        public: bool = False,
        status: str = "open",
    ) -> int:
        """A ticket that exists before the test (made by someone else); returns its id."""
        with self._lock:
            ticket = self._new_ticket(
                {"subject": subject, "external_id": external_id, "status": status}, _API_USER_ID
            )
            for body in comments or ["(seeded)"]:
                self._add_comment(ticket, {"body": body, "public": public})
            return int(ticket["id"])

    # ---- routing --------------------------------------------------------------------------------------------

    def _route(self, request: _Request) -> _Answer:
        if not request.header("Authorization"):
            return _Answer(401, {"error": "Couldn't authenticate you"})
        routes: list[tuple[str, str, Callable[..., _Answer]]] = [
            ("GET", r"/api/v2/tickets\.json", self._list_tickets),
            ("POST", r"/api/v2/tickets\.json", self._create_ticket),
            ("GET", r"/api/v2/tickets/(\d+)\.json", self._show_ticket),
            ("PUT", r"/api/v2/tickets/(\d+)\.json", self._update_ticket),
            ("GET", r"/api/v2/tickets/(\d+)/comments\.json", self._list_comments),
            ("POST", r"/api/v2/uploads\.json", self._upload),
            ("GET", r"/api/v2/users/me\.json", lambda r: _Answer(200, {"user": self._users[_API_USER_ID]})),
            ("GET", r"/api/v2/users/(\d+)\.json", self._show_user),
        ]
        for method, pattern, action in routes:
            match = re.fullmatch(pattern, request.path)
            if match and request.method == method:
                return action(request, *(int(g) for g in match.groups()))
        return _Answer(404, {"error": "InvalidEndpoint", "description": "Not found"})

    def _fault(self, status: int) -> _Answer:
        if status >= 500:
            return _Answer(status, HTTPStatus(status).phrase)  # like a load balancer's page: not JSON
        errors = {
            401: {"error": "Couldn't authenticate you"},
            404: {"error": "RecordNotFound", "description": "Not found"},
            409: {"error": "UpdateConflict", "description": "The ticket was updated by someone else"},
            422: {"error": "RecordInvalid", "description": "Record validation errors"},
            429: {"error": "TooManyRequests", "description": "Rate limit exceeded"},
        }
        return _Answer(status, errors.get(status, {"error": HTTPStatus(status).phrase}))

    # ---- tickets --------------------------------------------------------------------------------------------

    def _list_tickets(self, request: _Request) -> _Answer:
        external_id = request.query.get("external_id")
        found = [t for t in self._tickets if external_id is None or t["external_id"] == external_id]
        return self._page(request, "tickets", [self._view(t) for t in found])

    def _show_ticket(self, request: _Request, ticket_id: int) -> _Answer:
        ticket = self._find(ticket_id)
        return _Answer(200, {"ticket": self._view(ticket)}) if ticket else _not_found()

    def _create_ticket(self, request: _Request) -> _Answer:
        payload = request.json()
        key = request.header("Idempotency-Key")
        fingerprint = json.dumps(payload, sort_keys=True)
        if key is not None and key in self._idempotency:
            earlier, answer = self._idempotency[key]
            if earlier != fingerprint:
                return _Answer(
                    400,
                    {
                        "error": "IdempotentRequestError",
                        "description": "Request parameters don't match the given idempotency key",
                    },
                )
            return _Answer(answer.status, copy.deepcopy(answer.body), {"x-idempotency-lookup": "hit"})
        fields = payload.get("ticket") if isinstance(payload, dict) else None
        if not isinstance(fields, dict):
            return _Answer(400, {"error": "InvalidJson", "description": "expected a ticket object"})
        invalid = self._invalid(fields, creating=True)
        if invalid:
            return invalid
        ticket = self._new_ticket(fields, self._requester_id(fields))
        self._add_comment(ticket, fields.get("comment") or {"body": fields.get("description")})
        answer = _Answer(201, {"ticket": self._view(ticket), "audit": self._audit(ticket)})
        if key is not None:
            self._idempotency[key] = (fingerprint, copy.deepcopy(answer))
            answer.headers["x-idempotency-lookup"] = "miss"
        return answer

    def _update_ticket(self, request: _Request, ticket_id: int) -> _Answer:
        ticket = self._find(ticket_id)
        if ticket is None:
            return _not_found()
        payload = request.json()
        fields = payload.get("ticket") if isinstance(payload, dict) else None
        if not isinstance(fields, dict):
            return _Answer(400, {"error": "InvalidJson", "description": "expected a ticket object"})
        if fields.get("safe_update") and fields.get("updated_stamp") != ticket["updated_at"]:
            return _Answer(
                409, {"error": "UpdateConflict", "description": "The ticket was updated since updated_stamp"}
            )
        if ticket["status"] == "closed":
            # As Zendesk: a closed ticket cannot be changed; a new mail needs a follow-up ticket.
            details = {
                "status": [{"description": "Status: closed prevents ticket update", "error": "ClosedTicket"}]
            }
            return _Answer(
                422, {"error": "RecordInvalid", "description": "Record validation errors", "details": details}
            )
        invalid = self._invalid(fields, creating=False)
        if invalid:
            return invalid
        for name in ("subject", "priority", "type", "status", "tags", "external_id"):
            if name in fields:
                ticket[name] = fields[name]
        if fields.get("comment"):
            self._add_comment(ticket, fields["comment"])
        ticket["updated_at"] = self._stamp()
        return _Answer(200, {"ticket": self._view(ticket), "audit": self._audit(ticket)})

    def _list_comments(self, request: _Request, ticket_id: int) -> _Answer:
        ticket = self._find(ticket_id)
        if ticket is None:
            return _not_found()
        return self._page(request, "comments", [self._comment_view(c) for c in ticket["comments"]])

    def _invalid(self, fields: dict[str, Any], *, creating: bool) -> _Answer | None:
        problems = []
        comment = fields.get("comment") or {}
        if creating and not (comment.get("body") or comment.get("html_body") or fields.get("description")):
            problems.append("Description: cannot be blank")
        if fields.get("priority") not in _PRIORITIES:
            problems.append(f"Priority: {fields.get('priority')!r} is not a priority")
        if fields.get("type") not in _TYPES:
            problems.append(f"Type: {fields.get('type')!r} is not a ticket type")
        if not problems:
            return None
        details = {"base": [{"description": p, "error": "InvalidValue"} for p in problems]}
        return _Answer(
            422, {"error": "RecordInvalid", "description": "Record validation errors", "details": details}
        )

    # ---- uploads and users ----------------------------------------------------------------------------------

    def _upload(self, request: _Request) -> _Answer:
        name = request.query.get("filename")
        if not name:
            return _Answer(400, {"error": "InvalidUpload", "description": "filename is required"})
        token = (
            request.query.get("token")
            or hashlib.sha1(f"upload-{next(self._upload_ids)}".encode()).hexdigest()
        )
        attachment = {
            "id": next(self._upload_ids),
            "file_name": name,
            "content_type": request.header("Content-Type") or "application/octet-stream",
            "size": len(request.body),
            "content_url": f"http://{self.netloc}/attachments/token/{token}/?name={name}",
        }
        upload = self._uploads.setdefault(token, {"attachments": []})
        upload["attachments"].append({**attachment, "data": request.body})
        view = {
            "token": token,
            "expires_at": (self._stamp_value() + timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "attachment": attachment,
            "attachments": [{k: v for k, v in a.items() if k != "data"} for a in upload["attachments"]],
        }
        return _Answer(201, {"upload": view})

    def _show_user(self, request: _Request, user_id: int) -> _Answer:
        user = self._users.get(user_id)
        return _Answer(200, {"user": user}) if user else _not_found()

    def _requester_id(self, fields: dict[str, Any]) -> int:
        requester = fields.get("requester")
        if isinstance(requester, dict) and requester.get("email"):
            email = str(requester["email"]).lower()
            for user in self._users.values():
                if user["email"] == email:
                    return int(user["id"])
            user_id = next(self._user_ids)
            self._users[user_id] = {"id": user_id, "email": email, "name": requester.get("name") or email}
            return user_id
        if fields.get("requester_id") in self._users:
            return int(fields["requester_id"])
        return _API_USER_ID

    # ---- state ----------------------------------------------------------------------------------------------

    def _new_ticket(self, fields: dict[str, Any], requester_id: int) -> dict[str, Any]:
        stamp = self._stamp()
        ticket = {
            "id": next(self._ids),
            "external_id": fields.get("external_id"),
            "subject": fields.get("subject") or "",
            "priority": fields.get("priority"),
            "type": fields.get("type"),
            "status": fields.get("status") or "new",
            "via_followup_source_id": fields.get("via_followup_source_id"),
            "tags": list(fields.get("tags") or []),
            "requester_id": requester_id,
            "comments": [],
            "created_at": stamp,
            "updated_at": stamp,
        }
        self._tickets.append(ticket)
        return ticket

    def _add_comment(self, ticket: dict[str, Any], comment: dict[str, Any]) -> None:
        tokens = [str(t) for t in comment.get("uploads") or []]
        attachments = [
            {k: v for k, v in a.items() if k != "data"}
            for token in tokens
            for a in self._uploads.get(token, {}).get("attachments", [])
        ]
        ticket["comments"].append(
            {
                "id": next(self._comment_ids),
                "body": comment.get("body") or comment.get("html_body") or "",
                "public": bool(comment.get("public", True)),
                "uploads": tokens,
                "attachments": attachments,
                "author_id": _API_USER_ID,
                "created_at": self._stamp(),
            }
        )

    def _find(self, ticket_id: int) -> dict[str, Any] | None:
        return next((t for t in self._tickets if t["id"] == ticket_id), None)

    def _stamp_value(self) -> datetime:
        # Strictly increasing, second resolution like Zendesk's: every change gets a new updated_at.
        now = datetime.now(UTC).replace(microsecond=0)
        self._last_stamp = max(now, self._last_stamp + timedelta(seconds=1))
        return self._last_stamp

    def _stamp(self) -> str:
        return self._stamp_value().strftime("%Y-%m-%dT%H:%M:%SZ")

    # ---- views ----------------------------------------------------------------------------------------------

    def _view(self, ticket: dict[str, Any]) -> dict[str, Any]:
        first = ticket["comments"][0]["body"] if ticket["comments"] else ""
        view = {k: v for k, v in ticket.items() if k != "comments"}
        view.update(
            url=f"http://{self.netloc}/api/v2/tickets/{ticket['id']}.json",
            raw_subject=ticket["subject"],
            description=first,
            submitter_id=_API_USER_ID,
        )
        return copy.deepcopy(view)

    def _comment_view(self, comment: dict[str, Any]) -> dict[str, Any]:
        view = {k: v for k, v in comment.items() if k != "uploads"}
        view.update(type="Comment", plain_body=comment["body"], html_body=f"<p>{comment['body']}</p>")
        return copy.deepcopy(view)

    def _audit(self, ticket: dict[str, Any]) -> dict[str, Any]:
        return {"id": next(self._audit_ids), "ticket_id": ticket["id"], "created_at": ticket["updated_at"]}

    def _record(self, ticket: dict[str, Any]) -> dict[str, Any]:
        record = copy.deepcopy({k: v for k, v in ticket.items() if k != "requester_id"})
        user = self._users.get(ticket["requester_id"])
        api_user = ticket["requester_id"] == _API_USER_ID
        record["requester"] = (
            None if api_user or user is None else {"email": user["email"], "name": user["name"]}
        )
        for comment in record["comments"]:
            del comment["author_id"]
        return record

    def _page(self, request: _Request, key: str, items: list[dict[str, Any]]) -> _Answer:
        """Cursor pagination when zenpy asks for it (page[size]), else a single offset page."""
        if "page[size]" not in request.query:
            return _Answer(200, {key: items, "next_page": None, "previous_page": None, "count": len(items)})
        size = max(1, min(100, int(request.query["page[size]"])))
        start = int(request.query.get("page[after]") or 0)
        more = start + size < len(items)
        following = None
        if more:
            query = {
                **{k: v for k, v in request.query.items() if k != "page[after]"},
                "page[after]": start + size,
            }
            following = f"http://{self.netloc}{request.path}?{urlencode(query)}"
        meta = {"has_more": more, "after_cursor": str(start + size) if more else None, "before_cursor": None}
        return _Answer(200, {key: items[start : start + size], "meta": meta, "links": {"next": following}})


def _not_found() -> _Answer:
    return _Answer(404, {"error": "RecordNotFound", "description": "Not found"})


# ---- Slack ---------------------------------------------------------------------------------------------------

MISSING_CHANNEL = "#does-not-exist"


class SlackStandIn(_StandIn):
    """chat.postMessage, chat.update, views.open and auth.test of the Slack Web API, and response_urls (as Slack's hooks)."""

    RESPONSE_PATH = "/response/"

    def __init__(self) -> None:
        super().__init__()
        self._messages: list[dict[str, Any]] = []
        self._channel_ids: set[str] = set()  # the channels posted to (a deleted message leaves its channel)
        self._views: list[dict[str, Any]] = []
        self._responses: list[dict[str, Any]] = []
        self._ts = itertools.count(1)

    @property
    def base_url(self) -> str:
        return f"http://{self.netloc}/api/"

    @property
    def response_url_prefix(self) -> str:
        return f"http://{self.netloc}{self.RESPONSE_PATH}"

    def response_url(self, name: str) -> str:
        """A response_url as Slack puts in a command or interaction request."""
        return self.response_url_prefix + name

    @property
    def messages(self) -> list[dict[str, Any]]:
        """Posted messages: channel (and its ID), text, blocks, ts, and how often chat.update changed them."""
        with self._lock:
            return copy.deepcopy(self._messages)

    def delete(self, ts: str) -> None:
        """As an operator deleting a message in the channel."""
        with self._lock:
            self._messages = [m for m in self._messages if m["ts"] != ts]

    @property
    def views(self) -> list[dict[str, Any]]:
        """Opened modals: trigger_id, view."""
        with self._lock:
            return copy.deepcopy(self._views)

    @property
    def responses(self) -> list[dict[str, Any]]:
        """Messages sent to a response_url: name, text, blocks, response_type."""
        with self._lock:
            return copy.deepcopy(self._responses)

    def _route(self, request: _Request) -> _Answer:
        if request.method != "POST":
            return _Answer(405, {"ok": False, "error": "method_not_allowed"})
        if request.path.startswith(self.RESPONSE_PATH):
            body = request.json()
            if not isinstance(body, dict) or not (body.get("text") or body.get("blocks")):
                return _Answer(400, "invalid_payload")
            self._responses.append({"name": request.path[len(self.RESPONSE_PATH) :], **body})
            return _Answer(200, "ok")
        args = self._arguments(request)
        authorization = request.header("Authorization") or ""
        if not (authorization.startswith("Bearer ") and authorization[7:].strip()) and not args.get("token"):
            return _Answer(200, {"ok": False, "error": "not_authed"})
        if request.path == "/api/auth.test":
            return _Answer(
                200,
                {
                    "ok": True,
                    "url": "https://rootmail-local.slack.com/",
                    "team": "rootmail local",
                    "user": "rootmail",
                    "team_id": "T0LOCAL",
                    "user_id": "U0LOCAL",
                    "bot_id": "B0LOCAL",
                },
            )
        if request.path == "/api/chat.postMessage":
            return self._post_message(args)
        if request.path == "/api/chat.update":
            return self._update_message(args)
        if request.path == "/api/views.open":
            return self._open_view(args)
        return _Answer(404, {"ok": False, "error": "unknown_method"})

    def _post_message(self, args: dict[str, Any]) -> _Answer:
        channel = str(args.get("channel") or "")
        if not channel or channel == MISSING_CHANNEL:
            return _Answer(200, {"ok": False, "error": "channel_not_found"})
        content = self._content(args)
        if isinstance(content, _Answer):
            return content
        text, blocks = content
        ts = f"1700000000.{next(self._ts):06d}"
        channel_id = self._channel_id(channel)
        self._channel_ids.add(channel_id)
        self._messages.append(
            {
                "channel": channel,
                "channel_id": channel_id,
                "text": text or "",
                "blocks": blocks,
                "ts": ts,
                "updates": 0,
            }
        )
        message = {"type": "message", "text": text or "", "blocks": blocks, "ts": ts, "bot_id": "B0LOCAL"}
        return _Answer(200, {"ok": True, "channel": channel_id, "ts": ts, "message": message})

    @staticmethod
    def _content(args: dict[str, Any]) -> tuple[str | None, Any] | _Answer:
        """A message's text and blocks as Slack checks them (JSON or form-encoded blocks; at most 50 blocks)."""
        text, blocks = args.get("text"), args.get("blocks")
        if isinstance(blocks, str):
            try:
                blocks = json.loads(blocks)
            except ValueError:
                return _Answer(200, {"ok": False, "error": "invalid_blocks"})
        if not text and not blocks:
            return _Answer(200, {"ok": False, "error": "no_text"})
        if blocks is not None and (not isinstance(blocks, list) or len(blocks) > 50):
            return _Answer(200, {"ok": False, "error": "invalid_blocks"})
        return text, blocks

    @staticmethod
    def _channel_id(channel: str) -> str:
        return (
            channel
            if re.fullmatch(r"[CG][A-Z0-9]{8,}", channel)
            else "C" + hashlib.sha1(channel.encode()).hexdigest()[:10].upper()
        )

    def _update_message(self, args: dict[str, Any]) -> _Answer:
        """chat.update: as Slack, by the channel's ID (a name is channel_not_found) and the message's ts."""
        channel, ts = str(args.get("channel") or ""), str(args.get("ts") or "")
        found = [m for m in self._messages if m["channel_id"] == channel and m["ts"] == ts]
        if not found:
            error = "message_not_found" if channel in self._channel_ids else "channel_not_found"
            return _Answer(200, {"ok": False, "error": error})
        content = self._content(args)
        if isinstance(content, _Answer):
            return content
        text, blocks = content
        message = found[0]
        message.update(text=text or message["text"], blocks=blocks, updates=message["updates"] + 1)
        return _Answer(200, {"ok": True, "channel": channel, "ts": ts, "text": message["text"]})

    def _open_view(self, args: dict[str, Any]) -> _Answer:
        view = args.get("view")
        if isinstance(view, str):
            try:
                view = json.loads(view)
            except ValueError:
                return _Answer(200, {"ok": False, "error": "invalid_arguments"})
        if not args.get("trigger_id"):
            return _Answer(200, {"ok": False, "error": "invalid_trigger_id"})
        if not isinstance(view, dict) or view.get("type") != "modal" or len(view.get("blocks") or []) > 100:
            return _Answer(200, {"ok": False, "error": "invalid_arguments"})
        view_id = f"V{len(self._views) + 1:08d}"
        self._views.append({"trigger_id": args["trigger_id"], "view": view, "id": view_id})
        return _Answer(200, {"ok": True, "view": {**view, "id": view_id}})

    def _fault(self, status: int) -> _Answer:
        error = "ratelimited" if status == 429 else "internal_error" if status >= 500 else "invalid_request"
        return _Answer(status, {"ok": False, "error": error})

    @staticmethod
    def _arguments(request: _Request) -> dict[str, Any]:
        """slack_sdk sends JSON for chat.postMessage and a form for most other methods; accept both."""
        content_type = (request.header("Content-Type") or "").lower()
        if content_type.startswith("application/json"):
            body = request.json()
            return body if isinstance(body, dict) else {}
        form = parse_qs(request.body.decode("utf-8", "replace"), keep_blank_values=True)
        return {**request.query, **{k: v[-1] for k, v in form.items()}}
