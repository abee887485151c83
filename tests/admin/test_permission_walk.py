"""The permission walk (issue 33): every admin URL of the orders, payments and shipping apps (and of
the operators' pages the orders app adds for the outbox and the inbox), as the admin site declares
them (lists, pages, history, the custom views and actions), opened and posted to by a staff member
holding each single permission of those apps, shows and does no more than the API gives the same
user (contract §3):

- a page of an order, or of anything that carries its data (payment, shipment, the carrier's
  record, a parked message or event), only when ``GET /api/orders/<id>/`` answers them ``200``;
  the provider's ledger (its page, and its references and idempotency keys on any page) only
  when ``GET /api/payments/transactions/`` does;
- an action on an order only with the right to see it and the action's own permission (the
  API's cancel answers ``202`` exactly then), a note only with the right to see the order, and
  nothing else changes anything.
"""

import re
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.apps import apps
from django.contrib import admin
from django.db import transaction
from django.db.models import Model
from django.test import Client, RequestFactory
from django.urls import URLPattern
from django.utils import timezone
from rest_framework.test import APIClient

from events.models import InboxEntry
from orders.models import Order, OrderEvent, Status
from orders.services import OrderItem, order_place
from orders.staff import STAFF_ACTIONS
from outbox.models import OutboxMessage
from payments.models import Payment, ProviderTransaction
from shipping.models import CarrierShipment, Shipment
from tests.factories import ProductFactory, StaffFactory, StaffMemberFactory, UserFactory, address

pytestmark = pytest.mark.django_db

APPS = ("orders", "payments", "shipping")
# The models whose admin the orders app declares besides its own (``orders.operations_admin``).
OPERATIONS: tuple[type[Model], ...] = (OutboxMessage, InboxEntry)


def app_permissions() -> list[str]:
    """Every permission of the walked models: Django's (view, add, change, delete) and their own."""
    names = []
    for model in [*(m for app in APPS for m in apps.get_app_config(app).get_models()), *OPERATIONS]:
        opts = model._meta
        names += [f"{opts.app_label}.{action}_{opts.model_name}" for action in opts.default_permissions]
        names += [f"{opts.app_label}.{codename}" for codename, _ in opts.permissions]
    return names


# Each single permission; none; seeing orders with each action, with the ledger, with the parked
# rows and the right to re-queue them; every right.
WHO = [
    *app_permissions(),
    "staff",
    *(f"orders.view_order+orders.{action.permission}" for action in STAFF_ACTIONS.values()),
    "orders.view_order+payments.view_providertransaction",
    "orders.view_order+outbox.view_outboxmessage+events.view_inboxentry+orders.retry_saga",
    "superuser",
]

CUSTOMER = "ada-walk-customer"
LINE1 = "12 Analytical Row"
TRACKING = "TRK-WALK-0001"
CHARGE_REFERENCE = "ch_walk_ledger_7f3a"
IDEMPOTENCY_KEY = "walk-ledger-charge-key-51c2"
PAYMENT_REFERENCE = "pi_walk_ledger_90be"
ORDER_MARKERS = (CUSTOMER, LINE1, TRACKING)
LEDGER_MARKERS = (CHARGE_REFERENCE, IDEMPOTENCY_KEY, PAYMENT_REFERENCE)
WITHHELD = "Withheld: the payment provider&#x27;s ledger needs the permission"
# The order's own pages: each shown exactly to whom the API shows the order.
ORDER_PAGES = {"orders_order_changelist", "orders_order_change", "orders_order_history", "orders_order_stuck"}
# The lists' actions, by the staff action whose rights each needs (a re-queue drives a saga on).
LIST_ACTIONS = {
    "cancel_orders": "cancel",
    "retry_sagas": "retry_saga",
    "retry_compensations": "retry_compensation",
    "requeue": "retry_saga",
}


class World:
    """Two orders of one customer, charged and shipped, where every staff action applies to one:
    ``running`` (paid, its saga stuck: cancel, retry saga) and ``failed`` (needs attention)."""

    def __init__(self) -> None:
        product = ProductFactory(sku="MUG-1", price=Decimal("12.50"))
        customer = UserFactory(username=CUSTOMER)
        self.running = self._order(customer, product, Status.PAID)
        self.failed = self._order(customer, product, Status.NEEDS_ATTENTION)
        self.payment = Payment.objects.create(
            order_id=self.running.pk, status="succeeded", amount=Decimal("12.50"), currency="USD",
            provider_reference=PAYMENT_REFERENCE,
        )  # fmt: skip
        self.transaction = ProviderTransaction.objects.create(
            kind="charge", status="succeeded", amount=Decimal("12.50"), currency="USD", reference=CHARGE_REFERENCE,
            idempotency_key=IDEMPOTENCY_KEY, token="tok_visa", order_ref=str(self.running.pk),
        )  # fmt: skip
        self.shipment = Shipment.objects.create(
            order_id=self.running.pk, status="created", carrier="simulated", tracking_number=TRACKING
        )
        self.carrier_shipment = CarrierShipment.objects.create(
            idempotency_key=f"ship-{self.running.pk}", tracking_number=TRACKING, postal_code="12345"
        )
        # the running order's first message could not be published, and its email not sent
        self.parked_message = OutboxMessage.objects.filter(shard=str(self.running.pk)).earliest("id")
        self.parked_message.parked_at, self.parked_message.last_error = timezone.now(), "EncodeError"
        self.parked_message.save(update_fields=["parked_at", "last_error"])
        email = OutboxMessage.objects.get(shard=str(self.running.pk), name="notifications.handle_event")
        consumer, event = email.message["args"][:2]
        self.parked_event = InboxEntry.objects.create(
            consumer=consumer, event_id=event["id"], event_name=event["name"], saga_id=str(self.running.pk),
            parked=True, error="SMTPServerDisconnected", event=event,
        )  # fmt: skip

    @staticmethod
    def _order(customer: Any, product: Any, status: Status) -> Order:
        order = order_place(
            user=customer, items=[OrderItem(product.sku, 1)], shipping_address=address(), payment_token="tok_visa"
        )
        Order.objects.filter(pk=order.pk).update(status=status, progressed_at=timezone.now() - timedelta(hours=1))
        return order

    def object_of(self, model: type[Model], action: str | None) -> Any:
        if model is Order:
            return self.failed if action == "retry_compensation" else self.running
        records: dict[type[Model], Model] = {
            Payment: self.payment,
            ProviderTransaction: self.transaction,
            Shipment: self.shipment,
            CarrierShipment: self.carrier_shipment,
            OutboxMessage: self.parked_message,
            InboxEntry: self.parked_event,
        }
        return records[model]

    def state(self) -> tuple[Any, ...]:
        """What any change would show: the orders' statuses, their journals, every record, the outbox."""
        return (
            tuple(Order.objects.order_by("pk").values_list("status", flat=True)),
            OrderEvent.objects.count(),
            tuple(Payment.objects.order_by("pk").values_list("status", "refunded_amount")),
            ProviderTransaction.objects.count(),
            tuple(Shipment.objects.order_by("pk").values_list("status", flat=True)),
            tuple(CarrierShipment.objects.order_by("pk").values_list("status", flat=True)),
            tuple(OutboxMessage.objects.order_by("pk").values_list("parked_at", "sent_at")),
            tuple(InboxEntry.objects.order_by("pk").values_list("parked", flat=True)),
        )


PARAMETER = re.compile(r"<(?:\w+:)?(\w+)>")


def fill(route: str, values: dict[str, str]) -> str:
    return PARAMETER.sub(lambda parameter: values[parameter.group(1)], route)


def walked() -> Iterator[tuple[type[Model], Any]]:
    """(model, its ModelAdmin) for the three apps' models and every other the orders app declares."""
    for model, model_admin in admin.site._registry.items():
        if model._meta.app_label in APPS or type(model_admin).__module__.split(".")[0] in APPS:
            yield model, model_admin


def admin_requests(world: World) -> Iterator[tuple[type[Model], str, str | None, str]]:
    """(model, URL pattern's name, staff action or None, URL) for every URL pattern the admin site
    declares for the walked models, custom ones included, filled with the world's objects."""
    for model, model_admin in walked():
        prefix = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
        for pattern in model_admin.get_urls():
            assert isinstance(pattern, URLPattern)
            route = str(pattern.pattern)
            names = PARAMETER.findall(route)
            assert set(names) <= {"object_id", "action"}, f"{route}: teach the walk what to put in {names}"
            for action in STAFF_ACTIONS if "action" in names else [None]:
                values = {"object_id": str(world.object_of(model, action).pk), "action": str(action)}
                yield model, pattern.name or "redirect", action, prefix + fill(route, values)


def list_actions(superuser: Any) -> Iterator[tuple[type[Model], str]]:
    """(model, action) for every action the walked lists offer to someone holding every right."""
    request = RequestFactory().get("/")
    request.user = superuser
    for model, model_admin in walked():
        for name in model_admin.get_actions(request):
            assert name in LIST_ACTIONS, f"{name}: teach the walk which rights it needs"
            yield model, name


def rolled_back(world: World, call: Any) -> tuple[Any, bool]:
    """``call()``'s answer, and whether it changed anything; every change undone afterwards."""
    with transaction.atomic():
        before = world.state()
        answer = call()
        changed = world.state() != before
        transaction.set_rollback(True)
    return answer, changed


@pytest.mark.parametrize("who", WHO)
def test_no_admin_url_shows_or_does_more_than_the_api(who):
    world = World()
    superuser = StaffFactory()
    user = superuser if who == "superuser" else StaffMemberFactory(permissions=[] if who == "staff" else who.split("+"))
    browser, api = Client(), APIClient()
    browser.force_login(user)
    api.force_authenticate(user)

    # what the API gives this user
    sees_order = api.get(f"/api/orders/{world.running.pk}/").status_code == 200
    reads_ledger = api.get(f"/api/payments/transactions/?order={world.running.pk}").status_code == 200
    cancel, _ = rolled_back(world, lambda: api.post(f"/api/orders/{world.running.pk}/cancel/"))
    api_for = dict.fromkeys([Order, Payment, Shipment, CarrierShipment, *OPERATIONS], sees_order)
    api_for[ProviderTransaction] = reads_ledger

    def may(action: str) -> bool:
        return sees_order and bool(user.has_perm(f"orders.{STAFF_ACTIONS[action].permission}"))

    assert (cancel.status_code == 202) == may("cancel"), "the API's cancel and the walk's rule differ"

    wrong: list[str] = []
    requests = list(admin_requests(world))
    named = {name for _, name, _, _ in requests}
    assert {"orders_order_act", "orders_order_note", "orders_order_stuck", "orders_order_history"} <= named

    def look(url: str, html: str) -> None:
        for marker in LEDGER_MARKERS:
            if marker in html and not reads_ledger:
                wrong.append(f"GET {url} shows the ledger's {marker!r}; the ledger API answers 403")
        for marker in ORDER_MARKERS:
            if marker in html and not sees_order:
                wrong.append(f"GET {url} shows the order's {marker!r}; GET /api/orders/<id>/ answers 404")

    for index in ["/admin/", *(f"/admin/{app}/" for app in {model._meta.app_label for model, _ in walked()})]:
        response = browser.get(index)
        look(index, response.content.decode() if response.status_code == 200 else "")

    for model, name, action, url in requests:
        # --- seeing ---
        response = browser.get(url)
        shown = response.status_code == 200
        html = response.content.decode() if shown else ""
        look(url, html)
        if shown and not api_for[model]:
            wrong.append(f"GET {url} answers 200; the API shows this user no {model.__name__}")
        if name == "orders_order_act" and shown != may(str(action)):
            wrong.append(f"GET {url} answers {response.status_code}; the API would let them act: {may(str(action))}")
        if name in ORDER_PAGES and shown != sees_order:
            wrong.append(f"GET {url} answers {response.status_code}; the API shows the order: {sees_order}")
        if name == "orders_order_change" and shown:
            if reads_ledger and not all(marker in html for marker in LEDGER_MARKERS):
                wrong.append(f"GET {url} leaves out the ledger, which the API shows this user")
            if (WITHHELD in html) == reads_ledger:
                wrong.append(f"GET {url}: the ledger is withheld: {WITHHELD in html}; the API's: {reads_ledger}")

        # --- acting ---
        body = {"text": "a note", "confirmed": "yes"}
        response, changed = rolled_back(world, lambda url=url, body=body: browser.post(url, body))
        expected = may(str(action)) if name == "orders_order_act" else sees_order and name == "orders_order_note"
        if changed != expected:
            wrong.append(f"POST {url} ({response.status_code}) changed something: {changed}; expected {expected}")

    for model, action_name in list_actions(superuser):
        action = LIST_ACTIONS[action_name]
        url = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
        body = {"action": action_name, "_selected_action": [str(world.object_of(model, action).pk)], "confirmed": "yes"}
        response, changed = rolled_back(world, lambda url=url, body=body: browser.post(url, body))
        if changed != (may(action) and user.has_perm(f"{model._meta.app_label}.view_{model._meta.model_name}")):
            wrong.append(f"POST {url} action={action_name} ({response.status_code}) changed something: {changed}")

    assert not wrong, f"{who}:\n" + "\n".join(wrong)
