"""/metrics: Prometheus' text format, figures that match the database, for ``core.view_metrics`` and allowed
addresses."""

import threading
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from events.models import InboxEntry
from orders.journal import order_record_action
from orders.models import ActorKind, Order, OrderEvent
from outbox.models import OutboxMessage
from sagas.ledger import get_ledger
from sagas.models import SagaStep
from tests.factories import ProductFactory, StaffFactory, StaffMemberFactory, UserFactory, place

pytestmark = pytest.mark.django_db


def finish(order: Order, name: str, status: str, seconds: float, attempts: int = 1) -> None:
    """Record a step of ``order`` as the runtime would: finished ``seconds`` after it started."""
    start = timezone.now() - timedelta(minutes=5)
    write_step(
        order, name, status=status, attempts=attempts, started_at=start, finished_at=start + timedelta(seconds=seconds)
    )


def write_step(order: Order, name: str, **fields) -> None:
    """Write a step's row as the runtime does: under its saga's lock, recording the progress."""
    with transaction.atomic():
        saga = get_ledger().lock(str(order.pk))
        SagaStep.objects.filter(saga_id=order.pk, name=name).update(**fields)
        saga.touch()


def scrape(client, **extra) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """``/metrics`` parsed: sample name → {sorted labels: value}."""
    response = client.get("/metrics", **extra)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=")
    samples: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def value(samples, name: str, **labels: str) -> float:
    return float(samples[name][tuple(sorted(labels.items()))])


def test_the_figures_are_those_of_the_database_in_both_modes(client, customer):
    # given two orchestrated orders and one choreographed, each of two lines, whose steps ran
    products = [ProductFactory(), ProductFactory()]
    fast, retried = (
        place(customer, *products, coordination="orchestration"),
        place(customer, *products, coordination="orchestration"),
    )
    choreographed = place(customer, *products, coordination="choreography")
    for order in (fast, retried, choreographed):
        for product in products:
            finish(order, f"reserve_stock:{product.sku}", "succeeded", 0.02)
    finish(fast, "charge_payment", "succeeded", 0.3)
    finish(retried, "charge_payment", "failed", 4.0, attempts=5)
    finish(choreographed, "charge_payment", "succeeded", 0.7, attempts=2)
    Order.objects.filter(pk=fast.pk).update(status="paid")
    Order.objects.filter(pk=retried.pk).update(status="compensating")
    SagaStep.objects.create(saga_id=retried.pk, name="release_stock", kind="compensation", position=102)
    finish(retried, "release_stock", "succeeded", 0.05, attempts=3)
    # the sweeper drove the choreographed order on twice, and a staff note that says "sweeper" is no re-drive
    for _ in range(2):
        order_record_action(order=choreographed, actor="sweeper", message="Re-driven after no progress (pending)")
    order_record_action(order=fast, actor="sweeper", actor_kind=ActorKind.STAFF, message="Staff note: sweeper?")
    # the outbox: the three orders' first messages are due; one waited 30 s, one is parked, one is delayed
    first, parked, *_, delayed = OutboxMessage.objects.order_by("id")
    OutboxMessage.objects.filter(pk=first.pk).update(available_at=timezone.now() - timedelta(seconds=30))
    OutboxMessage.objects.filter(pk=parked.pk).update(parked_at=timezone.now(), attempts=5)
    OutboxMessage.objects.filter(pk=delayed.pk).update(available_at=timezone.now() + timedelta(minutes=1))
    due = OutboxMessage.objects.filter(sent_at=None, parked_at=None, available_at__lte=timezone.now()).count()
    scheduled = OutboxMessage.objects.filter(available_at__gt=timezone.now()).count()
    assert (due, scheduled) == (len(OutboxMessage.objects.all()) - 2, 1)
    # and the inbox: one event parked for the notifications
    InboxEntry.objects.create(
        consumer="notifications.email_customer", event_id="6f1d5c3e-0000-4000-8000-000000000001",
        event_name="order.placed", saga_id=str(fast.pk), parked=True, error="SMTPServerDisconnected",
    )  # fmt: skip

    # when Prometheus scrapes, from the loopback address that is allowed by default
    samples = scrape(client)

    # then orders are counted by status and mode, every combination present
    assert value(samples, "shop_orders", status="paid", coordination="orchestration") == 1
    assert value(samples, "shop_orders", status="compensating", coordination="orchestration") == 1
    assert value(samples, "shop_orders", status="pending", coordination="choreography") == 1
    assert value(samples, "shop_orders", status="completed", coordination="choreography") == 0
    # each line's reservation counts under its step, per mode
    reserve = {"step": "reserve_stock", "kind": "forward"}
    assert (
        value(samples, "shop_saga_step_outcomes_total", **reserve, outcome="succeeded", coordination="orchestration")
        == 4
    )
    assert (
        value(samples, "shop_saga_step_outcomes_total", **reserve, outcome="succeeded", coordination="choreography")
        == 2
    )
    charge = {"step": "charge_payment", "kind": "forward"}
    assert (
        value(samples, "shop_saga_step_outcomes_total", **charge, outcome="succeeded", coordination="orchestration")
        == 1
    )
    assert (
        value(samples, "shop_saga_step_outcomes_total", **charge, outcome="failed", coordination="orchestration") == 1
    )
    release = {"step": "release_stock", "kind": "compensation"}
    assert (
        value(samples, "shop_saga_step_outcomes_total", **release, outcome="succeeded", coordination="orchestration")
        == 1
    )
    # durations: the orchestrated charges took 0.3 s and 4 s, the choreographed one 0.7 s
    orchestrated_charge = {**charge, "coordination": "orchestration"}
    assert value(samples, "shop_saga_step_duration_seconds_count", **orchestrated_charge) == 2
    assert value(samples, "shop_saga_step_duration_seconds_sum", **orchestrated_charge) == pytest.approx(4.3)
    assert value(samples, "shop_saga_step_duration_seconds_bucket", **orchestrated_charge, le="0.25") == 0
    assert value(samples, "shop_saga_step_duration_seconds_bucket", **orchestrated_charge, le="0.5") == 1
    assert value(samples, "shop_saga_step_duration_seconds_bucket", **orchestrated_charge, le="5.0") == 2
    assert value(samples, "shop_saga_step_duration_seconds_bucket", **orchestrated_charge, le="+Inf") == 2
    choreographed_charge = {**charge, "coordination": "choreography"}
    assert value(samples, "shop_saga_step_duration_seconds_sum", **choreographed_charge) == pytest.approx(0.7)
    assert value(samples, "shop_saga_step_duration_seconds_bucket", **choreographed_charge, le="0.5") == 0
    assert value(samples, "shop_saga_step_duration_seconds_bucket", **choreographed_charge, le="1.0") == 1
    # retries: attempts beyond the first, compensations included
    assert value(samples, "shop_saga_step_retries_total", **charge, coordination="orchestration") == 4
    assert value(samples, "shop_saga_step_retries_total", **charge, coordination="choreography") == 1
    assert value(samples, "shop_saga_step_retries_total", **release, coordination="orchestration") == 2
    # the sweeper's re-drives, by mode
    assert value(samples, "shop_saga_redrives_total", coordination="choreography") == 2
    assert value(samples, "shop_saga_redrives_total", coordination="orchestration") == 0
    # the outbox: depth, lag of the oldest due message, held back, parked
    assert value(samples, "shop_outbox_depth") == due
    assert 30 <= value(samples, "shop_outbox_lag_seconds") < 60
    assert value(samples, "shop_outbox_scheduled") == scheduled
    assert value(samples, "shop_outbox_parked") == 1
    # the inbox: parked by consumer, and 0 for a consumer with none
    assert value(samples, "shop_inbox_parked", consumer="notifications.email_customer") == 1
    assert value(samples, "shop_inbox_parked", consumer="orders.advance_when_a_step_is_done") == 0


def test_an_empty_shop_scrapes_zeroes(client):
    samples = scrape(client)

    assert value(samples, "shop_outbox_depth") == 0
    assert value(samples, "shop_outbox_lag_seconds") == 0
    assert value(samples, "shop_orders", status="pending", coordination="orchestration") == 0


@pytest.mark.parametrize("address", ["10.0.0.7", "2001:db8::7"])
@pytest.mark.parametrize(
    ("who", "allowed"),
    [
        ("anonymous", False),
        ("customer", False),
        ("staff", False),  # is_staff alone grants nothing (contract §3)
        ("orders.view_order", False),
        ("core.view_metrics", True),
        ("superuser", True),
    ],
)
def test_other_addresses_need_the_metrics_permission(client, address, who, allowed):
    users = {
        "customer": UserFactory,
        "staff": StaffMemberFactory,
        "superuser": StaffFactory,
    }
    if who != "anonymous":
        client.force_login(users[who]() if who in users else StaffMemberFactory(permissions=[who]))

    response = client.get("/metrics", REMOTE_ADDR=address)

    assert response.status_code == (200 if allowed else 403)
    assert ("shop_orders" in response.content.decode()) == allowed


def test_allowed_networks_come_from_the_setting_and_the_trusted_proxies(client, settings):
    # given a scraper network allowed, behind a trusted proxy
    settings.METRICS_ALLOWED_IPS = ["10.8.0.0/16"]
    settings.TRUSTED_PROXIES = ["10.0.0.1"]

    # the proxy reporting a scraper of that network is allowed
    assert client.get("/metrics", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="10.8.3.4").status_code == 200
    # a client claiming that address itself is not, nor is loopback any more
    assert client.get("/metrics", REMOTE_ADDR="10.9.0.1", HTTP_X_FORWARDED_FOR="10.8.3.4").status_code == 403
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 403


def history(customer, orders: int) -> list[Order]:
    """``orders`` orchestrated orders of one line whose reservation and charge succeeded."""
    product = ProductFactory.create()
    placed = [place(customer, product, coordination="orchestration") for _ in range(orders)]
    for order in placed:
        finish(order, f"reserve_stock:{product.sku}", "succeeded", 0.02)
        finish(order, "charge_payment", "succeeded", 0.3, attempts=2)
    return placed


def scrape_queries(client) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        scrape(client)
    return [query["sql"] for query in captured.captured_queries]


HISTORY = (SagaStep._meta.db_table, OrderEvent._meta.db_table, Order._meta.db_table)
# Tables as large as the traffic since their last purge (a day of sent messages, handled events).
TRAFFIC = (OutboxMessage._meta.db_table, InboxEntry._meta.db_table)
# The partial indexes that hold only what a scrape has still to count (and the mismatched orders),
# and the few messages and events that wait (due, parked).
NARROW = (
    "order_to_count", "order_event_redrive_uncounted", "order_ledger_mismatch",
    "outbox_due", "outbox_parked", "inbox_parked",
)  # fmt: skip


def whole_reads(statements: list[str], tables: tuple[str, ...] = HISTORY + TRAFFIC) -> list[str]:
    """The plans' reads of a history or traffic table that no key or narrow index bounds: a scan
    of the table, or of an index of every row (on PostgreSQL with sequential scans off, so that a
    tiny table's plan is the one a large one would get)."""
    found = []
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL enable_seqscan = off")
        for sql in [sql for sql in statements if any(f'"{table}"' in sql for table in tables)]:
            if connection.vendor == "postgresql":
                cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}")
                nodes, reads = [cursor.fetchone()[0][0]["Plan"]], []
                while nodes:
                    node = nodes.pop()
                    nodes += node.get("Plans", [])
                    scan = node["Node Type"].endswith("Scan")  # not the update's own node (it has one)
                    if (
                        scan
                        and node.get("Relation Name") in tables
                        and not (node.get("Index Name") in NARROW or "Index Cond" in node or "Recheck Cond" in node)
                    ):
                        reads.append(f"{node['Node Type']} on {node['Relation Name']}")
            else:
                cursor.execute(f"EXPLAIN QUERY PLAN {sql}")
                details = [row[-1] for row in cursor.fetchall()]
                reads = [
                    d for d in details
                    if d.startswith("SCAN ") and d.split()[1] in tables and not any(i in d for i in NARROW)
                ]  # fmt: skip
            found += [f"{read}: {sql}" for read in reads]
    return found


def test_a_scrape_reads_only_what_changed_since_the_one_before(client, customer):
    # given a history that a scrape has folded already
    history(customer, 3)
    scrape(client)
    idle_small = scrape_queries(client)
    # when ten times as much history is folded in its turn
    history(customer, 30)
    folding = scrape_queries(client)
    idle_large = scrape_queries(client)

    # then a scrape with nothing new sends the same statements, whatever the history's size
    assert len(idle_large) == len(idle_small)
    # and none reads the step log, the journal, the orders, the outbox or the inbox whole: only
    # the rows that changed since they were last counted or that wait (a partial index), or rows
    # by their key
    assert {table for table in HISTORY for sql in folding if f'"{table}"' in sql} == set(HISTORY)
    assert whole_reads([*folding, *idle_large]) == []


def test_two_scrapes_count_once_and_what_changed_between_them_counts(client, customer):
    # given a history, scraped twice
    first, second = history(customer, 2)
    once = scrape(client)
    twice = scrape(client)
    charge = {"step": "charge_payment", "kind": "forward", "coordination": "orchestration"}
    counted = ("shop_orders", "shop_saga_", "shop_reconciler_")  # the rest are ages and queues
    assert {k: v for k, v in twice.items() if k.startswith(counted)} == {
        k: v for k, v in once.items() if k.startswith(counted)
    }
    assert value(twice, "shop_saga_step_outcomes_total", **charge, outcome="succeeded") == 2
    assert value(twice, "shop_saga_step_retries_total", **charge) == 2
    assert value(twice, "shop_orders", status="pending", coordination="orchestration") == 2

    # when a new order's charge fails after three attempts, a settled charge lands again after a
    # longer attempt (its row changes in place), the first order ends and the sweeper re-drives one
    (third,) = history(customer, 1)
    finish(third, "charge_payment", "failed", 12.0, attempts=3)
    finish(second, "charge_payment", "succeeded", 0.04, attempts=4)
    Order.objects.filter(pk=first.pk).update(status="completed")
    order_record_action(order=second, actor="sweeper", message="Re-driven after no progress (reserved)")
    samples = scrape(client)

    # then each figure is what the rows say now, counted once
    assert value(samples, "shop_saga_step_outcomes_total", **charge, outcome="succeeded") == 2
    assert value(samples, "shop_saga_step_outcomes_total", **charge, outcome="failed") == 1
    assert value(samples, "shop_saga_step_retries_total", **charge) == 1 + 3 + 2
    assert value(samples, "shop_saga_step_duration_seconds_count", **charge) == 3
    assert value(samples, "shop_saga_step_duration_seconds_sum", **charge) == pytest.approx(0.3 + 0.04 + 12.0)
    assert value(samples, "shop_saga_step_duration_seconds_bucket", **charge, le="0.05") == 1
    assert value(samples, "shop_saga_step_duration_seconds_bucket", **charge, le="10.0") == 2
    assert value(samples, "shop_orders", status="pending", coordination="orchestration") == 2
    assert value(samples, "shop_orders", status="completed", coordination="orchestration") == 1
    assert value(samples, "shop_saga_redrives_total", coordination="orchestration") == 1
    # and a compensation that was settled and is re-opened leaves its outcome
    SagaStep.objects.create(saga_id=third.pk, name="refund_payment", kind="compensation", position=101)
    finish(third, "refund_payment", "skipped", 0.01)
    refund = {"step": "refund_payment", "kind": "compensation", "coordination": "orchestration"}
    assert value(scrape(client), "shop_saga_step_outcomes_total", **refund, outcome="skipped") == 1
    write_step(third, "refund_payment", status="pending", finished_at=None)
    assert value(scrape(client), "shop_saga_step_outcomes_total", **refund, outcome="skipped") == 0


@pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite runs one writing transaction at a time")
@pytest.mark.django_db(transaction=True)
def test_scrapes_at_once_and_a_step_written_meanwhile_count_each_row_once(client, customer, no_relay):
    # given a history that a scrape has folded, and a step being written as a scrape comes
    first, _ = history(customer, 2)
    scrape(client)
    writing, written = threading.Event(), threading.Event()

    def runtime_writes() -> None:
        try:
            with transaction.atomic():
                finish(first, "charge_payment", "failed", 4.0, attempts=3)
                writing.set()
                assert written.wait(30)
        finally:
            connection.close()

    runtime = threading.Thread(target=runtime_writes)
    runtime.start()
    assert writing.wait(30)
    charge = {"step": "charge_payment", "kind": "forward", "coordination": "orchestration"}

    # when the scrape runs while that step's transaction is open: it does not wait for it
    during = scrape(client)
    written.set()
    runtime.join(30)
    # and then two scrapes run at once, after more orders arrived
    history(customer, 3)
    answers: list[dict] = []

    def scrape_apart() -> None:
        try:
            answers.append(scrape(Client()))
        finally:
            connection.close()

    scrapers = [threading.Thread(target=scrape_apart) for _ in range(2)]
    for scraper in scrapers:
        scraper.start()
    for scraper in scrapers:
        scraper.join(30)

    # then the scrape during the write counted the step as it was, and the later ones as it is, once
    assert value(during, "shop_saga_step_outcomes_total", **charge, outcome="succeeded") == 2
    assert len(answers) == 2
    for samples in [*answers, scrape(client)]:
        assert value(samples, "shop_saga_step_outcomes_total", **charge, outcome="succeeded") == 4
        assert value(samples, "shop_saga_step_outcomes_total", **charge, outcome="failed") == 1
        assert value(samples, "shop_saga_step_retries_total", **charge) == 4 + 2
        assert value(samples, "shop_orders", status="pending", coordination="orchestration") == 5
