"""/metrics: Prometheus' text format, figures that match the database, for ``core.view_metrics`` and allowed
addresses."""

from datetime import timedelta

import pytest
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from events.models import InboxEntry
from orders.models import ActorKind, Order
from orders.transitions import order_record_action
from outbox.models import OutboxMessage
from sagas.models import SagaStep
from tests.factories import ProductFactory, StaffFactory, StaffMemberFactory, UserFactory, place

pytestmark = pytest.mark.django_db


def finish(order: Order, name: str, status: str, seconds: float, attempts: int = 1) -> None:
    """Record a step of ``order`` as the runtime would: finished ``seconds`` after it started."""
    start = timezone.now() - timedelta(minutes=5)
    SagaStep.objects.filter(saga_id=order.pk, name=name).update(
        status=status, attempts=attempts, started_at=start, finished_at=start + timedelta(seconds=seconds)
    )


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
