"""``metrics_scrape``: what a ``/metrics`` scrape costs with 10,000 and with 1,000,000 steps in
the step log (issue 32, item 6), beside the collector as it was before, which read the step log
and the journal whole.

The history is generated, not run: orders of five finished steps each (two lines reserved, the
screening, the charge, the shipment; one in twenty retried once, durations up to a second), two
journal lines each, one order in a hundred re-driven by the sweeper. Made by ``INSERT ...
SELECT generate_series``, so PostgreSQL only. At each size:

- ``first``: the first scrape after the rows were written, which folds them all into the running
  totals (what the first scrape after the migration does with a shop's history, once);
- ``steady``: a scrape after 20 more orders (100 steps) arrived since the one before, median of 11,
  once the tables were vacuumed (``steady_unvacuumed``: right after the first scrape, whose
  updates left the partial index full of dead entries until autovacuum comes by);
- ``idle``: a scrape with nothing new, median of 11;
- ``before``: the same scrape with the orders' collector of ``BASELINE`` (the commit before this
  figure, read from git), once.

Alone, on a database of yours (migrated here; what it generates stays):

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/<yours> .venv/bin/python -m bench.metrics_scrape
"""

import json
import os
import statistics
import subprocess
import time
import types
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from prometheus_client import CollectorRegistry, generate_latest  # noqa: E402

from core.metrics import REGISTRY, HeartbeatCollector  # noqa: E402
from events.metrics import InboxCollector  # noqa: E402
from orders.models import Order, OrderEvent  # noqa: E402
from outbox.metrics import OutboxCollector  # noqa: E402
from sagas.models import SagaStep  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SIZES = (10_000, 1_000_000)
STEPS = ("reserve_stock:BENCH-1", "reserve_stock:BENCH-2", "screen_order", "charge_payment", "create_shipment")
BASELINE = "542c174"  # the last commit whose collector read the whole step log and journal
ROUNDS = 11

GENERATE = f"""
WITH new AS (
    INSERT INTO {Order._meta.db_table} (id, user_id, status, total, currency, shipping_address, payment_token,
        coordination, created_at, updated_at, progressed_at, recoveries, ledger_mismatch, reconcile_repairs)
    SELECT md5(%(run)s || g)::uuid, %(user)s, 'completed', 10, 'USD', '{{}}'::jsonb, 'tok_visa',
        CASE WHEN g %% 2 = 0 THEN 'orchestration' ELSE 'choreography' END, now(), now(), now(), 0, '', 0
    FROM generate_series(1, %(orders)s) g
    RETURNING id
), steps AS (
    INSERT INTO {SagaStep._meta.db_table} (order_id, name, kind, position, status, attempts, started_at,
        finished_at, error)
    SELECT new.id, step.name, 'forward', step.position, 'succeeded', CASE WHEN random() < 0.05 THEN 2 ELSE 1 END,
        now() - interval '1 hour', now() - interval '1 hour' + random() * interval '1 second', ''
    FROM new, unnest(%(steps)s::text[]) WITH ORDINALITY AS step(name, position)
)
INSERT INTO {OrderEvent._meta.db_table} (order_id, created_at, from_status, to_status, actor, actor_kind, message,
    service, kind, name, trace_id)
SELECT new.id, now(), '', 'completed', CASE WHEN line = 2 AND random() < 0.01 THEN 'sweeper' ELSE 'system' END,
    'system', '', 'orders', CASE WHEN line = 2 THEN 'action' ELSE 'status' END, '', ''
FROM new, generate_series(1, 2) line
"""


def generate(orders: int, user_id: int) -> None:
    """``orders`` completed orders of five finished steps each, as a shop would have written them."""
    with connection.cursor() as cursor:
        cursor.execute(GENERATE, {"run": uuid.uuid4().hex, "user": user_id, "orders": orders, "steps": list(STEPS)})


def timed(fn: Callable[[], object]) -> float:
    """Milliseconds ``fn`` took."""
    started = time.perf_counter()
    fn()
    return round((time.perf_counter() - started) * 1000, 1)


def scrape() -> None:
    generate_latest(REGISTRY)


def scrape_before() -> Callable[[], object] | None:
    """A scrape with the orders' collector as ``BASELINE`` had it (``None`` without git)."""
    try:
        source = subprocess.run(
            ["git", "show", f"{BASELINE}:orders/metrics.py"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    module = types.ModuleType("orders_metrics_before")
    exec(compile(source, "orders/metrics.py@" + BASELINE, "exec"), module.__dict__)
    registry = CollectorRegistry(auto_describe=False)
    for collector in (module.OrderCollector(), OutboxCollector(), InboxCollector(), HeartbeatCollector()):
        registry.register(collector)
    return lambda: generate_latest(registry)


def steady(user_id: int) -> float:
    """The median scrape after 20 more orders each time."""
    took = []
    for _ in range(ROUNDS):
        generate(20, user_id)
        took.append(timed(scrape))
    return statistics.median(took)


def vacuum() -> None:
    """What autovacuum does after so many rows written (``VACUUM`` runs outside a transaction)."""
    tables = ", ".join(model._meta.db_table for model in (SagaStep, Order, OrderEvent))
    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM ANALYZE {tables}")


def figure() -> dict[str, Any]:
    if connection.vendor != "postgresql":
        return {"skipped": "PostgreSQL only (the history is generated with generate_series)"}
    user, _ = get_user_model().objects.get_or_create(username="bench-metrics")
    before = scrape_before()
    scrape()  # whatever the database held already is folded before the first size
    results: dict[str, Any] = {"sizes": {}, "baseline": BASELINE}
    have = SagaStep.objects.count()
    for size in SIZES:
        generate(max(size - have, 0) // len(STEPS), user.pk)
        have = SagaStep.objects.count()
        vacuum()
        row: dict[str, Any] = {"steps": have, "journal": OrderEvent.objects.count(), "orders": Order.objects.count()}
        row["first_ms"] = timed(scrape)
        row["steady_unvacuumed_ms"] = steady(user.pk)
        vacuum()
        row["steady_ms"] = steady(user.pk)
        row["idle_ms"] = statistics.median(timed(scrape) for _ in range(ROUNDS))
        row["before_ms"] = timed(before) if before else None
        have = SagaStep.objects.count()
        results["sizes"][str(size)] = row
        print(f"metrics_scrape {size}: {json.dumps(row)}", flush=True)
    return results


def main() -> None:
    call_command("migrate", verbosity=0)
    print(json.dumps(figure(), indent=2))


if __name__ == "__main__":
    main()
