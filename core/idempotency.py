"""``Idempotency-Key`` handling: the first request with a key does the work, replays get its answer.

A request's claim on its key is a committed row, so that a concurrent replay sees it and gets a
``409``. A request can die holding it (a killed process), so a replay with the same body may take
the claim over after ``IDEMPOTENCY_IN_FLIGHT_SECONDS``. The request may also only be slow (a
stalled database connection), and then two requests run the handler. They are told apart by the
claim's ``generation``, a fencing token: the takeover raises it, and storing an answer is a write
conditional on the generation the request claimed. The slower request finds it lost, rolls its
own work back (its order is never committed) and answers with the winner's stored answer, or a
``409`` while the winner still runs; its client's retry then gets the winner's answer. So there is
one order per key, whichever request finishes first, and never a ``500``.

Why not keep the first request's claim alive instead (a row lock held while it runs, or a
heartbeat)? SQLite has no row locks, a replay would wait on the lock instead of getting its
``409``, and a heartbeat needs a second connection beside the handler's transaction; the fence
needs neither and holds on every database.
"""

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone

from core.api import Conflict, IdempotencyKeyMisuse
from core.errors import ErrorCode
from core.models import IdempotencyRecord


@dataclass(frozen=True)
class StoredResponse:
    status: int
    body: Any
    headers: dict[str, str]


def request_fingerprint(body: Any) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


def idempotency_claim(*, user: User, scope: str, key: str, fingerprint: str) -> IdempotencyRecord | StoredResponse:
    """Claim ``key`` for this request, or return the answer the first request with it got.

    Raises ``IdempotencyKeyMisuse`` (422) when the key came with another body, and ``Conflict``
    (409) while the first request is still being processed. Side effect: a committed claim
    row, so that a concurrent request sees it; ``idempotency_complete`` or
    ``idempotency_release`` ends it. A claim with no answer after ``IDEMPOTENCY_IN_FLIGHT_SECONDS``
    is taken over by a request with the same body (a new generation: the module's docstring says
    why that is safe); answers are remembered for ``IDEMPOTENCY_KEY_TTL_SECONDS`` (24 hours).
    """
    now = timezone.now()
    with transaction.atomic():
        # The row lock serializes two replays taking over one claim (SQLite: the write lock).
        record = IdempotencyRecord.objects.select_for_update().filter(user=user, scope=scope, key=key).first()
        if record is not None and record.created_at < now - timedelta(seconds=settings.IDEMPOTENCY_KEY_TTL_SECONDS):
            record.delete()  # forgotten: the key is new again, whatever body it comes with
            record = None
        if record is None:
            try:
                with transaction.atomic():
                    return IdempotencyRecord.objects.create(
                        user=user, scope=scope, key=key, fingerprint=fingerprint, created_at=now
                    )
            except IntegrityError:
                record = IdempotencyRecord.objects.get(user=user, scope=scope, key=key)
        elif record.fingerprint == fingerprint and _is_abandoned(record, now):
            record.generation += 1
            record.created_at = now
            record.save(update_fields=["generation", "created_at"])
            return record
    if record.fingerprint != fingerprint:
        raise IdempotencyKeyMisuse()
    if record.response_status is None:
        raise Conflict(
            "A request with this Idempotency-Key is still being processed.",
            code=ErrorCode.IDEMPOTENCY_REQUEST_IN_FLIGHT,
        )
    return _stored(record)


def _is_abandoned(record: IdempotencyRecord, now: datetime) -> bool:
    abandoned = now - timedelta(seconds=settings.IDEMPOTENCY_IN_FLIGHT_SECONDS)
    return record.response_status is None and record.created_at < abandoned


def _stored(record: IdempotencyRecord) -> StoredResponse:
    assert record.response_status is not None
    return StoredResponse(record.response_status, record.response_body, record.response_headers)


def _held(claim: IdempotencyRecord) -> QuerySet[IdempotencyRecord]:
    """The claim's row while ``claim`` still holds it: not answered, not taken over since."""
    return IdempotencyRecord.objects.filter(pk=claim.pk, generation=claim.generation, response_status__isnull=True)


def idempotency_complete(*, record: IdempotencyRecord, status: int, body: Any, headers: dict[str, str]) -> bool:
    """Remember the answer; call it in the transaction that did the work, so both commit together.

    Returns ``False`` and stores nothing when a replay took the claim over meanwhile: the
    caller must then roll its work back, since the replay does it (``idempotency_run``). On
    PostgreSQL the conditional ``UPDATE`` waits for a takeover in progress and re-reads the row,
    so exactly one of them wins.
    """
    return _held(record).update(response_status=status, response_body=body, response_headers=headers) == 1


def idempotency_release(*, record: IdempotencyRecord) -> None:
    """Forget a claim whose request was refused (bad input): the key may be used again. A claim
    taken over meanwhile is the replay's now, and stays."""
    _held(record).delete()


class _ClaimLost(Exception):
    """A replay took the claim over while this request ran: its work must not commit."""


def idempotency_run(*, claim: IdempotencyRecord, handler: Callable[[], StoredResponse]) -> tuple[StoredResponse, bool]:
    """Run ``handler`` under ``claim``; return its response and whether it is a replay.

    The handler's work and the stored answer commit in one transaction. A handler that raises
    (bad input) releases the key, so the client can correct the request and use it again. A
    request that lost its claim to a replay (it ran longer than ``IDEMPOTENCY_IN_FLIGHT_SECONDS``)
    commits nothing and answers with the replay's stored answer (a replay: ``True``), or raises
    ``Conflict`` (409) while the replay still runs.
    """
    try:
        with transaction.atomic():
            response = handler()
            if not idempotency_complete(
                record=claim, status=response.status, body=response.body, headers=response.headers
            ):
                raise _ClaimLost()
    except _ClaimLost:
        winner = IdempotencyRecord.objects.filter(pk=claim.pk).first()
        if winner is None or winner.response_status is None:
            raise Conflict(
                "This request took so long that a retry with the same Idempotency-Key took over; this one "
                "created nothing. Send it again to get the retry's answer.",
                code=ErrorCode.IDEMPOTENCY_REQUEST_IN_FLIGHT,
            ) from None
        return _stored(winner), True
    except BaseException:
        idempotency_release(record=claim)
        raise
    return response, False


def idempotent(
    *, user: User, scope: str, key: str, body: Any, handler: Callable[[], StoredResponse]
) -> tuple[StoredResponse, bool]:
    """Run ``handler`` once per ``(user, scope, key)``; return its response and whether it is a replay
    (``idempotency_claim``, then ``idempotency_run``)."""
    claim = idempotency_claim(user=user, scope=scope, key=key, fingerprint=request_fingerprint(body))
    if isinstance(claim, StoredResponse):
        return claim, True
    return idempotency_run(claim=claim, handler=handler)
