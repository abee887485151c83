"""/readyz: ready only while every queue is served, beat ticks and the outbox drains."""

import time
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from core.models import Heartbeat
from core.tasks import heartbeats_send
from outbox.models import OutboxMessage
from tests.core.test_metrics import scrape
from tests.worker import SagaWorker, wait_until

QUEUES = list(settings.SHOP_QUEUES)
ALL_OK = {"queues": dict.fromkeys(QUEUES, "ok"), "beat": "ok", "outbox": "ok"}


def served_since(moment, queues) -> bool:
    names = {f"queue:{queue}" for queue in queues}
    return Heartbeat.objects.filter(name__in=names, seen_at__gte=moment).count() == len(names)


def everything_seen_now() -> None:
    for name in ["beat", *(f"queue:{queue}" for queue in QUEUES)]:
        Heartbeat.objects.update_or_create(name=name, defaults={"seen_at": timezone.now()})


# One coordination mode is enough: readiness knows no orders.
@pytest.mark.parametrize("coordination", ["orchestration"])
def test_ready_while_a_worker_serves_every_queue(saga, anonymous, coordination):
    # given a shop whose worker has never been seen: not ready
    assert anonymous.get("/readyz").status_code == 503
    # when beat sends its heartbeats and the real worker takes them
    moment = timezone.now()
    heartbeats_send()
    wait_until(lambda: served_since(moment, QUEUES), timeout=30, what="the worker to take every heartbeat")
    # then the shop is ready
    response = anonymous.get("/readyz")
    assert response.status_code == 200
    assert response.json() == ALL_OK


@pytest.mark.parametrize("coordination", ["orchestration"])
def test_not_ready_naming_the_queue_no_worker_serves(saga, anonymous, settings, tmp_path, coordination):
    # given every queue served but shipping: its worker stopped, another serves the rest
    settings.HEALTH_WORKER_STALE_SECONDS = 1.0
    saga.stop()
    partial = SagaWorker(tmp_path / "worker.log", concurrency=1, queues=[q for q in QUEUES if q != "shipping"])
    partial.start()
    try:
        moment = timezone.now()
        heartbeats_send()
        wait_until(lambda: served_since(moment, set(QUEUES) - {"shipping"}), timeout=30, what="the heartbeats")
        # when the staleness threshold has passed, beat ticking on
        time.sleep(1.2)
        moment = timezone.now()
        heartbeats_send()
        wait_until(lambda: served_since(moment, set(QUEUES) - {"shipping"}), timeout=30, what="the heartbeats")
        # then readiness names shipping, and only shipping
        response = anonymous.get("/readyz")
        assert response.status_code == 503
        assert response.json() == ALL_OK | {"queues": dict.fromkeys(QUEUES, "ok") | {"shipping": "stale"}}
    finally:
        partial.stop()


@pytest.mark.django_db
def test_not_ready_naming_the_outbox_when_a_due_message_waits_too_long(anonymous, settings):
    # given a shop whose queues are served and whose beat ticks
    settings.HEALTH_OUTBOX_STALE_SECONDS = 30.0
    everything_seen_now()
    OutboxMessage.objects.create(shard="x", name="orders.noop", message={}, available_at=timezone.now())
    assert anonymous.get("/readyz").status_code == 200  # a message due just now is no lag
    # when a due message has waited longer than the threshold
    OutboxMessage.objects.update(available_at=timezone.now() - timedelta(seconds=31))
    # then readiness names the outbox
    response = anonymous.get("/readyz")
    assert response.status_code == 503
    assert response.json() == ALL_OK | {"outbox": "stale"}


@pytest.mark.django_db
def test_not_ready_naming_beat_when_it_stopped_ticking(anonymous, settings):
    # given queues just served, but beat's last tick older than its threshold
    settings.HEALTH_BEAT_STALE_SECONDS = 60.0
    everything_seen_now()
    Heartbeat.objects.filter(name="beat").update(seen_at=timezone.now() - timedelta(seconds=61))
    # then readiness names beat
    response = anonymous.get("/readyz")
    assert response.status_code == 503
    assert response.json() == ALL_OK | {"beat": "stale"}


@pytest.mark.django_db
def test_metrics_show_how_long_ago_each_queue_was_served_and_beat_ticked(client):
    # given beat's last tick 2 minutes ago, orders served 10 s ago, the other queues never
    now = timezone.now()
    Heartbeat.objects.create(name="beat", seen_at=now - timedelta(minutes=2))
    Heartbeat.objects.create(name="queue:orders", seen_at=now - timedelta(seconds=10))
    # when Prometheus scrapes (from loopback, allowed by default)
    figures = scrape(client)
    # then each age is there, the never-served queues infinite
    served = figures["shop_queue_last_served_seconds"]
    assert 10 <= served[(("queue", "orders"),)] < 60
    assert served[(("queue", "payments"),)] == float("inf")
    assert 120 <= figures["shop_beat_last_tick_seconds"][()] < 180
