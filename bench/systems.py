"""The systems under measure, set up and run: the benchmark's database (migrated, its user and
products), the shop's queues, the gunicorn it serves from, and waiting until what the orders set
off has finished. The processes themselves are ``bench/procs.py``'s.
"""

import contextlib
import logging
import os
import random
import time
from datetime import datetime
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from accounts.services import user_token
from bench import bare, floor
from bench.configuration import POOL, SIZES, check_floor_config, progress
from bench.procs import SupervisedWorker
from bench.settings import BENCH_DIR
from orders.models import TERMINAL_STATUSES, Order, Reason, Status
from shop.models import Product

WEB: Any = None  # the shop's gunicorn, started by ``bench.run_config.main``


def setup() -> str:
    check_floor_config()
    logging.getLogger("celery").setLevel(logging.WARNING)  # the profiles run tasks in this process
    (BENCH_DIR / "static").mkdir(parents=True, exist_ok=True)
    progress("migrating the benchmark database")
    call_command("migrate", verbosity=0)
    bare.create_table()
    floor.create_table()
    if os.environ.get("BENCH_DBOS_DB") and connection.vendor == "postgresql":
        from bench.peers import dbos_saga

        dbos_saga.create_schema()
    user = get_user_model().objects.create_user(
        username="bench", email="bench@example.com", password="bench-password-2026"
    )
    token = user_token(user=user)
    rng = random.Random(5)
    Product.objects.bulk_create(
        Product(sku=f"BENCH-P{i:04d}", name=f"Pool product {i:04d}", price=rng.randint(100, 9999) / 100, stock=10**9)
        for i in range(POOL)
    )
    purge_shop_queues()
    floor.purge()
    return token


def seed_catalog() -> None:
    rng = random.Random(10)
    words = ["mug", "tee", "cap", "tote", "notebook", "pen", "bottle", "socks", "poster", "lamp", "candle"]
    missing = SIZES["products"] - Product.objects.count()
    Product.objects.bulk_create(
        (
            Product(
                sku=f"BENCH-C{i:05d}",
                name=f"{rng.choice(words).title()} {rng.choice(words)} {i:05d}",
                description=f"Catalog filler number {i} for the benchmark.",
                price=rng.randint(100, 50000) / 100,
                stock=rng.choice([0, 5, 50, 500]),
            )
            for i in range(max(0, missing))
        ),
        batch_size=1000,
    )


def set_aside_unstarted_orders() -> None:
    """The orders of the latency runs and the profiles were placed with no worker running: their
    sagas wait in the outbox, which a worker's relay would publish. Drop those messages and set
    the orders aside (``cancelled``, so that no sweeper re-drives them) before a saga figure."""
    from outbox.models import OutboxMessage

    OutboxMessage.objects.filter(sent_at__isnull=True).delete()
    Order.objects.filter(status=Status.PENDING).update(status=Status.CANCELLED, cancellation_reason=Reason.EXPIRED)
    purge_shop_queues()


def purge_shop_queues() -> None:
    from config.celery import app

    with app.connection_for_write() as conn:
        for queue in settings.SHOP_QUEUES:
            with contextlib.suppress(Exception):  # the queue may not exist yet
                conn.default_channel.queue_purge(queue)  # type: ignore[attr-defined]


STALL_SECONDS = 20.0


def wait_for_orders(
    since: datetime, expected: int, worker: SupervisedWorker, timeout: float, label: str
) -> tuple[float, dict[str, int], float]:
    """Wait until ``expected`` orders created since ``since`` are terminal.

    Restarts the worker if it dies, and gives up once no order has finished for
    ``STALL_SECONDS`` (a lost message strands its saga until the sweeper, which is not run
    here). Returns (when the last order finished, statuses, when the wait ended).
    """
    deadline = time.monotonic() + timeout
    last_report = last_progress = time.monotonic()
    best = -1
    while True:
        worker.check()
        rows = Order.objects.filter(created_at__gte=since).values_list("status", flat=True)
        statuses: dict[str, int] = {}
        for status in rows:
            statuses[status] = statuses.get(status, 0) + 1
        done = sum(n for s, n in statuses.items() if s in TERMINAL_STATUSES)
        now = time.monotonic()
        if done > best:
            best, last_progress = done, now
        if done >= expected:
            return now, statuses, now
        if now > deadline or now - last_progress > STALL_SECONDS:
            progress(f"{label}: gave up with {done}/{expected} terminal: {statuses} (worker crashes: {worker.crashes})")
            return last_progress, statuses, now
        if now - last_report > 5:
            progress(f"{label}: {done}/{expected} orders terminal")
            last_report = now
        time.sleep(0.1 if expected < 50 else 0.25)


def statuses_since(since: datetime) -> dict[str, int]:
    statuses: dict[str, int] = {}
    for status in Order.objects.filter(created_at__gte=since).values_list("status", flat=True):
        statuses[status] = statuses.get(status, 0) + 1
    return statuses


def settle(since: datetime, timeout: float = 60.0) -> float | None:
    """Wait until what the orders set off after their saga is done too: nothing due left in the
    outbox, both emails of every terminal order (placed, and how it ended) recorded, and nothing
    waiting in the broker's queues (a choreographed order's status may be caught up by a later
    event while the earlier ones still wait in the orders queue: they are no-ops, but work all
    the same, which the next figure must not inherit). Returns the seconds it took, None on
    timeout."""
    from notifications.models import Notification
    from outbox.models import OutboxMessage

    started = time.monotonic()
    run = Order.objects.filter(created_at__gte=since)
    while time.monotonic() < started + timeout:
        due = OutboxMessage.objects.filter(
            sent_at__isnull=True, parked_at__isnull=True, available_at__lte=timezone.now()
        ).exists()
        terminal = run.filter(status__in=TERMINAL_STATUSES).count()
        emails = Notification.objects.filter(order_id__in=run.values("pk")).count()
        # The broker is asked only once the database says the rest is done (a connection a round).
        waiting = queued_messages() if not due and emails >= 2 * terminal else None
        if waiting == 0:
            return round(time.monotonic() - started, 2)
        time.sleep(0.1)
    progress(
        f"settle: after {timeout:.0f}s, {emails}/{2 * terminal} emails, messages still due: {due}, "
        f"waiting in the broker's queues: {'not asked' if waiting is None else waiting}"
    )
    return None


def queued_messages() -> int:
    """Messages waiting in the shop's queues (not those a worker took and has yet to acknowledge)."""
    from config.celery import app

    waiting = 0
    with app.connection_for_write() as conn:
        for queue in settings.SHOP_QUEUES:
            with contextlib.suppress(Exception):  # a queue nobody declared yet holds nothing
                declared = conn.default_channel.queue_declare(queue=queue, passive=True)  # type: ignore[attr-defined]
                waiting += declared.message_count
    return waiting
