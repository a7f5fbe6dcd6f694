"""Zendesk tickets through zenpy: one ticket per AWS support case (later mails become comments), one urgent ticket
per urgent mail. Safe under retries and concurrent executions:

- creation sends `Idempotency-Key: rootmail-<message_key>` (`rootmail-urgent-<message_key>` for urgent tickets; a
  digest for keys that are not header-safe): Zendesk replays the first answer for 2 hours, and answers 400
  IdempotentRequestError when the payload differs (a retry uploads the attachment again, with a new token); then
  the ticket exists and is looked up again;
- every comment we write ends with the line `rootmail-message: <message_key>`, and a mail whose marker is already on
  the ticket is not written again;
- a comment is added with `safe_update` and the ticket's `updated_stamp`, so a ticket changed between our check and
  our write answers 409 and the (retried) call checks the markers again.

Two different first mails of one case racing each other can still open two tickets (Zendesk does not enforce a
unique external_id): later mails then thread into the lowest id and say so, in the comment and in TicketRef.note.

Case correspondence is an internal note (public=False): it is AWS talking to the provider, and the support team
decides what the customer hears. Urgent tickets get a public comment, so Zendesk notifies the requester (the customer
contact) from the support address.
"""

from __future__ import annotations

import hashlib
import mimetypes
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote, urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry
from zenpy import Zenpy
from zenpy.lib.api_objects import Comment, Ticket, User
from zenpy.lib.exception import APIException, RatelimitBudgetExceeded

from rootmail.app.ports import TicketRef
from rootmail.errors import ZendeskRejected, ZendeskUnavailable

MARKER = "rootmail-message: "
# zenpy puts query values into URLs unencoded: the lookup quotes external_id itself, the upload's name is tamed.
_UNSAFE_FILENAME = re.compile(r"[^A-Za-z0-9._-]+")
# Header-safe identifiers go into Idempotency-Key as they are; others (spaces, non-ASCII) as a digest.
_PLAIN_KEY = re.compile(r"[A-Za-z0-9._-]{1,200}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# 409 is a safe_update conflict (the ticket changed under us): transient, the retry checks the markers again.
_TRANSIENT_STATUSES = {409, 429}


class ZendeskDesk:
    def __init__(self, client: Zenpy, subdomain: str) -> None:
        self._client = client
        self.subdomain = subdomain
        self._session: requests.Session = client.tickets.session
        # zenpy spends ratelimit_budget for good (it is decremented per second waited, per API object): restore it
        # before each operation so a warm Lambda container keeps a whole budget per mail.
        self._budget: int | None = client.tickets.ratelimit_budget
        # One operation at a time: the Idempotency-Key lives on the shared session for the one creating call.
        self._lock = threading.Lock()
        auth = getattr(self._session, "auth", None)
        self._secrets = [s for s in (auth if isinstance(auth, tuple) else ()) if isinstance(s, str) and s]

    @classmethod
    def connect(
        cls, subdomain: str, email: str, token: str, *, ratelimit_budget: int = 20, timeout: float = 10.0
    ) -> ZendeskDesk:
        client = Zenpy(
            subdomain=subdomain,
            email=email,
            token=token,
            ratelimit_budget=ratelimit_budget,
            timeout=timeout,
            disable_cache=True,  # ticket lookups must see Zendesk, not a 30-second-old copy
        )
        # zenpy's transport retries (503, connection errors) also resend PUT, which could add a comment twice
        # after a read timeout; retry GETs only (connect errors are retried for every method: nothing was sent).
        retry = Retry(
            total=3,
            allowed_methods=frozenset({"GET"}),
            status_forcelist=(503,),
            respect_retry_after_header=False,
        )
        for prefix in ("https://", "http://"):
            client.tickets.session.mount(prefix, HTTPAdapter(max_retries=retry))
        return cls(client, subdomain)

    # ---- public operations ------------------------------------------------------------------------------------

    def case_ticket(
        self,
        *,
        case_id: str,
        message_key: str,
        subject: str,
        body: str,
        requester_email: str | None,
        tags: list[str],
        attachment: tuple[str, bytes] | None = None,
        public: bool = False,
    ) -> TicketRef:
        """The ticket of AWS support case `case_id`: created by its first mail, commented by every later one."""
        fields: dict[str, Any] = {"subject": subject, "tags": list(tags)}
        if requester_email:
            fields["requester"] = User(email=requester_email)
        return self._thread(
            external_id=f"aws-case-{_checked(case_id, 'case id')}",
            idempotency_key=_idempotency_key("rootmail-", _checked(message_key, "message key")),
            message_key=message_key,
            body=body,
            public=public,
            fields=fields,
            attachment=attachment,
        )

    def urgent_ticket(
        self,
        *,
        message_key: str,
        subject: str,
        body: str,
        requester_email: str | None,
        requester_name: str | None,
        tags: list[str],
        attachment: tuple[str, bytes] | None = None,
        public: bool = True,
    ) -> TicketRef:
        """One urgent incident per mail, requested by the customer contact when known."""
        fields: dict[str, Any] = {
            "subject": subject,
            "tags": list(tags),
            "priority": "urgent",
            "type": "incident",
        }
        if requester_email:
            fields["requester"] = User(email=requester_email, name=requester_name or requester_email)
        key = _checked(message_key, "message key")
        return self._thread(
            external_id=f"rootmail-{key}",
            idempotency_key=_idempotency_key("rootmail-urgent-", key),
            message_key=message_key,
            body=body,
            public=public,
            fields=fields,
            attachment=attachment,
        )

    # ---- find-or-create ---------------------------------------------------------------------------------------

    def _thread(
        self,
        *,
        external_id: str,
        idempotency_key: str,
        message_key: str,
        body: str,
        public: bool,
        fields: dict[str, Any],
        attachment: tuple[str, bytes] | None,
    ) -> TicketRef:
        with self._lock, self._errors_mapped():
            self._restore_budget()
            found = self._lookup(external_id)
            closed = [t for t in found if t.status == "closed"]
            if found and len(closed) == len(found):
                # Every ticket of this case is closed (Zendesk refuses changes to closed tickets): unless this mail
                # is already on one of them, it opens a follow-up linked to the newest.
                for ticket in found:
                    if self._has_marker(ticket.id, message_key):
                        return self._ref(ticket.id, created=False, commented=False, note=None)
                fields = {**fields, "via_followup_source_id": int(closed[-1].id)}
                found = []
            found = [t for t in found if t.status != "closed"]
            if not found:
                comment = self._comment(body, message_key, public, attachment)
                try:
                    ticket_id, replayed = self._create(
                        Ticket(external_id=external_id, comment=comment, **fields), idempotency_key
                    )
                except APIException as exc:
                    # Same key, different payload (a new upload token): an earlier attempt created the ticket.
                    if _error_name(exc) != "IdempotentRequestError":
                        raise
                    found = self._lookup(external_id)
                    if not found:
                        raise ZendeskUnavailable(
                            f"Zendesk refused idempotency key {idempotency_key} as used before, but no ticket "
                            f"has external_id {external_id} yet"
                        ) from None
                else:
                    note = "Zendesk replayed an earlier creation (Idempotency-Key hit)" if replayed else None
                    return self._ref(ticket_id, created=not replayed, commented=not replayed, note=note)
            return self._comment_once(found, external_id, message_key, body, public, attachment)

    def _comment_once(
        self,
        found: list[Ticket],
        external_id: str,
        message_key: str,
        body: str,
        public: bool,
        attachment: tuple[str, bytes] | None,
    ) -> TicketRef:
        target = found[0]
        note = None
        if len(found) > 1:
            others = ", ".join(f"#{t.id}" for t in found[1:])
            note = (
                f"{len(found)} tickets carry external_id {external_id}; rootmail threads into the lowest, "
                f"#{target.id} (also: {others})"
            )
        # Look for the marker on every candidate: a racing first mail may have landed on a higher ticket.
        for ticket in found:
            if self._has_marker(ticket.id, message_key):
                return self._ref(ticket.id, created=False, commented=False, note=note)
        text = f"{body.rstrip()}\n\n[{note}]" if note else body
        update = Ticket(
            id=target.id,
            comment=self._comment(text, message_key, public, attachment),
            safe_update=True,
            updated_stamp=target.updated_at,
        )
        self._client.tickets.update(update)
        return self._ref(target.id, created=False, commented=True, note=note)

    def _lookup(self, external_id: str) -> list[Ticket]:
        # external_id is not unique in Zendesk: sort so every caller picks the same (lowest) ticket.
        found = self._client.tickets(external_id=quote(external_id, safe=""))
        return sorted(found, key=lambda t: int(t.id))

    def _has_marker(self, ticket_id: int, message_key: str) -> bool:
        marker = f"{MARKER}{message_key}"
        for comment in self._client.tickets.comments(ticket=ticket_id):
            text = comment.body or comment.plain_body or ""
            if any(line.strip() == marker for line in text.splitlines()):
                return True
        return False

    def _comment(
        self, body: str, message_key: str, public: bool, attachment: tuple[str, bytes] | None
    ) -> Comment:
        comment = Comment(body=f"{body.rstrip()}\n\n{MARKER}{message_key}", public=public)
        if attachment is not None:
            comment.uploads = [self._upload(*attachment)]
        return comment

    def _upload(self, filename: str, data: bytes) -> str:
        name = _UNSAFE_FILENAME.sub("_", filename).strip("._") or "attachment"
        content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        # Bytes, not a file object: zenpy resends the same object after a 429, and a read stream would go out empty.
        upload = self._client.attachments.upload(bytes(data), target_name=name, content_type=content_type)
        return str(upload.token)

    def _create(self, ticket: Ticket, idempotency_key: str) -> tuple[int, bool]:
        """POST the ticket with an Idempotency-Key; return its id and whether Zendesk replayed an earlier one."""
        with self._idempotent(idempotency_key) as lookup:
            result = self._client.tickets.create(ticket)
        created = getattr(result, "ticket", None) or result  # a TicketAudit (ticket + audit), or the ticket
        return int(created.id), lookup.get("value") == "hit"

    @contextmanager
    def _idempotent(self, key: str) -> Iterator[dict[str, str]]:
        """The Idempotency-Key header on the session for one call (zenpy cannot pass headers per request), and
        Zendesk's `x-idempotency-lookup` answer. Callers hold self._lock."""
        seen: dict[str, str] = {}

        def remember(response: requests.Response, *args: Any, **kwargs: Any) -> None:
            if "x-idempotency-lookup" in response.headers:
                seen["value"] = response.headers["x-idempotency-lookup"].lower()

        previous = self._session.headers.get("Idempotency-Key")
        hooks: list[Callable[..., Any]] = self._session.hooks.setdefault("response", [])
        self._session.headers["Idempotency-Key"] = key
        hooks.append(remember)
        try:
            yield seen
        finally:
            hooks.remove(remember)
            if previous is None:
                self._session.headers.pop("Idempotency-Key", None)
            else:
                self._session.headers["Idempotency-Key"] = previous

    def _restore_budget(self) -> None:
        for api in (self._client.tickets, self._client.attachments):
            api.ratelimit_budget = self._budget

    def _ref(self, ticket_id: int, *, created: bool, commented: bool, note: str | None) -> TicketRef:
        url = f"https://{self.subdomain}.zendesk.com/agent/tickets/{ticket_id}"
        return TicketRef(int(ticket_id), created=created, commented=commented, url=url, note=note)

    # ---- errors -----------------------------------------------------------------------------------------------

    @contextmanager
    def _errors_mapped(self) -> Iterator[None]:
        """zenpy and requests errors become rootmail's typed errors (`from None`: no request details chained)."""
        try:
            yield
        except RatelimitBudgetExceeded:
            raise ZendeskUnavailable("Zendesk kept answering 429: the rate-limit budget is spent") from None
        except APIException as exc:  # zenpy: a JSON error body
            raise self._by_status(exc.response, str(exc)) from None
        except requests.HTTPError as exc:  # zenpy: an error without a JSON body
            raise self._by_status(
                exc.response, exc.response.text if exc.response is not None else ""
            ) from None
        except requests.RequestException as exc:  # connection refused or reset, timeouts, exhausted retries
            raise ZendeskUnavailable(
                self._scrub(f"Zendesk unreachable: {type(exc).__name__}: {exc}")
            ) from None

    def _by_status(self, response: requests.Response | None, text: str) -> Exception:
        status = response.status_code if response is not None else 0
        request = response.request if response is not None else None
        where = f" to {request.method} {_path(request.url)}" if request is not None and request.url else ""
        message = self._scrub(f"Zendesk answered {status}{where}: {' '.join(text.split())[:300]}")
        if status >= 500 or status in _TRANSIENT_STATUSES or status == 0:
            return ZendeskUnavailable(message)
        return ZendeskRejected(message)

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text


def _checked(value: str, what: str) -> str:
    # A line break would split the marker line; anything else is fine in an external_id or a comment.
    if not value or len(value) > 200 or _CONTROL.search(value):
        raise ZendeskRejected(f"the {what} {value!r} cannot identify a Zendesk ticket or comment")
    return value


def _idempotency_key(prefix: str, key: str) -> str:
    if _PLAIN_KEY.fullmatch(key):
        return prefix + key
    return prefix + "sha256-" + hashlib.sha256(key.encode()).hexdigest()[:40]


def _error_name(exc: APIException) -> str:
    try:
        return str(exc.response.json().get("error", ""))
    except (AttributeError, ValueError):
        return ""


def _path(url: str) -> str:
    return urlsplit(url).path
