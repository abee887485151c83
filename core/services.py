"""Housekeeping: what is kept about users only as long as it serves them (beat runs these)."""

from datetime import timedelta
from importlib import import_module

from django.conf import settings
from django.utils import timezone

from core.models import Heartbeat, IdempotencyRecord


def idempotency_records_purge() -> int:
    """Delete the ``Idempotency-Key`` records older than their 24 h (they hold whole response
    bodies, addresses included). A replay after that is a new request, as the contract says.
    Returns how many were deleted."""
    cutoff = timezone.now() - timedelta(seconds=settings.IDEMPOTENCY_KEY_TTL_SECONDS)
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=cutoff).delete()
    return deleted


def sessions_clear_expired() -> None:
    """Delete expired sessions, as ``manage.py clearsessions`` does."""
    engine = import_module(settings.SESSION_ENGINE)
    engine.SessionStore.clear_expired()


def heartbeat_record(*, name: str) -> None:
    """Stamp ``name`` (``queue:<name>`` or ``beat``) as seen now: one upsert, which two
    machines may race on harmlessly (the later stamp wins). No compensation: it is a fact."""
    Heartbeat.objects.bulk_create(
        [Heartbeat(name=name, seen_at=timezone.now())],
        update_conflicts=True,
        unique_fields=["name"],
        update_fields=["seen_at"],
    )
