"""What is kept about users is purged on a schedule: idempotency records after 24 h, expired
sessions and expired API tokens (beat)."""

from datetime import timedelta
from importlib import import_module

from django.conf import settings
from django.contrib.sessions.models import Session
from django.utils import timezone
from knox.models import AuthToken

from accounts.services import user_token
from accounts.tasks import purge_expired_tokens
from config.celery import app
from core.models import IdempotencyRecord
from core.tasks import clear_expired_sessions, purge_idempotency_records


def test_beat_runs_the_purges():
    scheduled = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    purges = {"core.purge_idempotency_records", "core.clear_expired_sessions", "accounts.purge_expired_tokens"}
    assert purges <= scheduled
    assert purges <= set(app.tasks)


def test_idempotency_records_older_than_a_day_are_purged(customer):
    now = timezone.now()
    old = IdempotencyRecord.objects.create(
        user=customer, scope="orders.create", key="old", fingerprint="f", created_at=now - timedelta(hours=25)
    )
    fresh = IdempotencyRecord.objects.create(
        user=customer, scope="orders.create", key="new", fingerprint="f", created_at=now - timedelta(hours=23)
    )
    assert purge_idempotency_records.apply().get() == 1
    assert list(IdempotencyRecord.objects.values_list("pk", flat=True)) == [fresh.pk]
    assert not IdempotencyRecord.objects.filter(pk=old.pk).exists()


def test_expired_sessions_are_cleared(db):
    store = import_module(settings.SESSION_ENGINE).SessionStore
    live, dead = store(), store()
    live.create()
    dead.set_expiry(-1)
    dead.create()
    clear_expired_sessions.apply().get()
    assert list(Session.objects.values_list("session_key", flat=True)) == [live.session_key]


def test_expired_tokens_are_purged(customer):
    user_token(user=customer)
    user_token(user=customer)
    AuthToken.objects.filter(pk=AuthToken.objects.first().pk).update(expiry=timezone.now() - timedelta(seconds=1))
    assert purge_expired_tokens.apply().get() == 1
    assert AuthToken.objects.count() == 1
