"""``Idempotency-Key`` handling: the first request with a key does the work, replays get its answer."""

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.utils import timezone

from core.api import Conflict, IdempotencyKeyMisuse
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
    ``idempotency_release`` ends it. A claim whose request died is taken over after
    ``IDEMPOTENCY_IN_FLIGHT_SECONDS``; answers are remembered for 24 hours.
    """
    now = timezone.now()
    with transaction.atomic():
        record = IdempotencyRecord.objects.select_for_update().filter(user=user, scope=scope, key=key).first()
        if record is not None and _is_stale(record, now):
            record.delete()
            record = None
        if record is None:
            try:
                with transaction.atomic():
                    return IdempotencyRecord.objects.create(
                        user=user, scope=scope, key=key, fingerprint=fingerprint, created_at=now
                    )
            except IntegrityError:
                record = IdempotencyRecord.objects.get(user=user, scope=scope, key=key)
    if record.fingerprint != fingerprint:
        raise IdempotencyKeyMisuse()
    if record.response_status is None:
        raise Conflict("A request with this Idempotency-Key is still being processed.")
    return StoredResponse(record.response_status, record.response_body, record.response_headers)


def _is_stale(record: IdempotencyRecord, now: Any) -> bool:
    if record.created_at < now - timedelta(seconds=settings.IDEMPOTENCY_KEY_TTL_SECONDS):
        return True
    abandoned = now - timedelta(seconds=settings.IDEMPOTENCY_IN_FLIGHT_SECONDS)
    return record.response_status is None and record.created_at < abandoned


def idempotency_complete(*, record: IdempotencyRecord, status: int, body: Any, headers: dict[str, str]) -> None:
    """Remember the answer; call it in the transaction that did the work, so both commit together."""
    record.response_status = status
    record.response_body = body
    record.response_headers = headers
    record.save(update_fields=["response_status", "response_body", "response_headers"])


def idempotency_release(*, record: IdempotencyRecord) -> None:
    """Forget a claim whose request was refused (bad input): the key may be used again."""
    IdempotencyRecord.objects.filter(pk=record.pk).delete()


def idempotent(
    *, user: User, scope: str, key: str, body: Any, handler: Callable[[], StoredResponse]
) -> tuple[StoredResponse, bool]:
    """Run ``handler`` once per ``(user, scope, key)``; return its response and whether it is a replay.

    The handler's work and the stored answer commit in one transaction. A handler that raises
    (bad input) releases the key, so the client can correct the request and use it again.
    """
    claim = idempotency_claim(user=user, scope=scope, key=key, fingerprint=request_fingerprint(body))
    if isinstance(claim, StoredResponse):
        return claim, True
    try:
        with transaction.atomic():
            response = handler()
            idempotency_complete(record=claim, status=response.status, body=response.body, headers=response.headers)
    except BaseException:
        idempotency_release(record=claim)
        raise
    return response, False
