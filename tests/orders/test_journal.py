"""GET /api/orders/<id>/journal/ (contract §3): who did what to an order, in both coordination modes."""

from datetime import datetime

import pytest
from django.test import Client
from rest_framework.test import APIClient

from accounts.services import user_token
from orders.journal import JournalService
from orders.models import OrderEvent
from orders.sequence import command_target
from orders.staff import order_note_add
from tests import provider
from tests.factories import ProductFactory, StaffMemberFactory, UserFactory, order_body, post_order
from tests.web.conftest import place_order  # noqa: F401  (the same fixture: an order, no saga run)
from tests.worker import wait_for_terminal


@pytest.fixture
def order(customer, place_order):  # noqa: F811
    return place_order(customer, ProductFactory(price="12.50"), quantity=2)


def journal(client: APIClient, order_id: object) -> list[dict[str, object]]:
    response = client.get(f"/api/orders/{order_id}/journal/")
    assert response.status_code == 200, response.content
    body = response.json()
    assert isinstance(body, list)  # the whole journal, not a page of it
    return body


def client_of(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {user_token(user=user)}")
    return client


def test_a_new_orders_journal_says_it_was_placed_and_announced(api, order):
    entries = journal(api, order.pk)

    assert [e["seq"] for e in entries] == [1, 2, 3]
    assert [(e["service"], e["kind"], e["name"]) for e in entries] == [
        ("orders", "action", ""),
        ("orders", "command", "inventory.reserve_stock"),
        ("orders", "event", "order.placed"),
    ]
    assert entries[0]["detail"] == "Order placed (orchestration)"
    assert set(entries[0]) == {"seq", "at", "service", "kind", "name", "detail", "trace_id"}
    assert entries[0]["trace_id"] == ""  # nothing is traced without OTEL_* (tests/telemetry)
    datetime.fromisoformat(str(entries[0]["at"]))


def test_another_customers_journal_is_a_404_and_anonymous_is_a_401(anonymous, order):
    stranger = client_of(UserFactory())

    assert stranger.get(f"/api/orders/{order.pk}/journal/").status_code == 404
    assert anonymous.get(f"/api/orders/{order.pk}/journal/").status_code == 401


def test_the_customer_does_not_see_staff_notes_and_staff_who_see_every_order_do(api, order):
    # given a staff note between two lines of the journal
    order_note_add(order_id=order.pk, actor="support", text="Customer phoned about the refund.")
    OrderEvent.objects.create(order=order, service="payments", kind="retry", name="charge_payment", message="again")
    clerk = client_of(StaffMemberFactory(permissions=["orders.view_order"]))

    # when the customer and a clerk read it
    mine, theirs = journal(api, order.pk), journal(clerk, order.pk)

    # then the note is the staff's only, and each reader's lines are numbered 1..n
    assert "Customer phoned" not in str(mine)
    assert [e["seq"] for e in mine] == [1, 2, 3, 4]
    assert mine[-1]["kind"] == "retry"
    note = theirs[3]
    assert (note["service"], note["kind"]) == ("staff", "action")
    assert note["detail"] == "Staff note: Customer phoned about the refund."
    assert [e["seq"] for e in theirs] == [1, 2, 3, 4, 5]


def test_staff_without_view_order_read_only_their_own_journals(order):
    clerk = client_of(StaffMemberFactory())

    assert clerk.get(f"/api/orders/{order.pk}/journal/").status_code == 404


def test_the_journal_ignores_the_order_lists_filter_and_pages(api, order):
    response = api.get(f"/api/orders/{order.pk}/journal/?status=completed&page=9")

    assert response.status_code == 200
    assert len(response.json()) == 3


# --- the real saga, in both modes ---------------------------------------------------------------


def lines(entries, kind: str) -> list[tuple[object, object]]:
    return [(e["service"], e["name"]) for e in entries if e["kind"] == kind]


@pytest.mark.saga
def test_the_journal_tells_who_did_what_in_each_coordination_mode(saga, coordination, api):
    # given a product, an order that completes and one whose card is declined
    product = ProductFactory(stock=10)
    paid = post_order(api, order_body(product, token="tok_visa"))
    declined = post_order(api, order_body(product, token="tok_decline"))
    wait_for_terminal([paid, declined])

    # when the customer reads both journals
    ok, refused = journal(api, paid), journal(api, declined)

    # then every line is numbered in order, names a known service, and time never goes back
    for entries in (ok, refused):
        assert [e["seq"] for e in entries] == list(range(1, len(entries) + 1))
        assert {e["service"] for e in entries} <= set(JournalService.values)
        times = [datetime.fromisoformat(str(e["at"])) for e in entries]
        assert times == sorted(times)
        assert entries[0]["detail"] == f"Order placed ({coordination})"
    # the orders service moved the statuses, in both modes
    assert lines(ok, "status") == [("orders", "reserved"), ("orders", "paid"), ("orders", "completed")]
    # (choreographed, the decline can turn the order back before the orders service has heard
    # that the stock was reserved: then it never reads "reserved", and that is right)
    turned_back = [("orders", "compensating"), ("orders", "cancelled")]
    assert lines(refused, "status") in ([("orders", "reserved"), *turned_back], turned_back)
    if coordination == "orchestration":
        assert lines(refused, "status")[0] == ("orders", "reserved")
    # in both modes each step's participant names itself for its step (orchestrated, in its step
    # line; choreographed, in the event it announces), and the orders service's status lines
    # name whose success they follow
    workers = {"inventory", "risk", "payments", "shipping"}
    assert {e["service"] for e in ok} == {"orders", "notifications", *workers}
    assert {e["service"] for e in refused} >= {"orders", *workers}
    status_detail = {e["name"]: e["detail"] for e in ok if e["kind"] == "status"}
    assert str(status_detail["reserved"]).endswith("(inventory)")
    assert str(status_detail["completed"]).endswith("(shipping)")
    if coordination == "orchestration":
        # each step's participant writes down its success, the orchestrator the next command
        # (the provider's successful calls are step lines of their own, named after the call: a
        # Stripe write and its request id; the simulated provider writes none)
        calls = [e for e in ok if e["kind"] == "step" and str(e["name"]).startswith("stripe.")]
        assert {(e["service"], e["name"]) for e in calls} == (
            {("payments", "stripe.payment_intents.create"), ("payments", "stripe.payment_intents.confirm")}
            if provider.STRIPE
            else set()
        )
        ok = [e for e in ok if e not in calls]
        refused = [e for e in refused if not str(e["name"]).startswith("stripe.")]
        assert [(e["service"], e["name"], e["detail"]) for e in ok if e["kind"] == "step"] == [
            ("inventory", "reserve_stock", "succeeded for every line"),
            ("risk", "screen_order", "succeeded"),
            ("payments", "charge_payment", "succeeded"),
            ("shipping", "create_shipment", "succeeded"),
        ]
        assert [(e["service"], e["name"]) for e in refused if e["kind"] == "step"] == [
            ("inventory", "reserve_stock"),
            ("risk", "screen_order"),
            ("payments", "charge_payment"),
        ]
        assert str(next(e for e in refused if e["name"] == "charge_payment")["detail"]).startswith("failed")
        # the orchestrator sends commands to each service's task; nobody announces a step
        commands = lines(ok, "command") + lines(refused, "command")
        assert {service for service, _ in commands} == {"orders"}
        sent = {str(name) for _, name in commands}
        assert {
            "payments.charge_payment",
            "shipping.create_shipment",
            "payments.refund_payment",
            "inventory.release_stock",
        } <= sent
        assert {command_target(name) for name in sent} >= {"inventory", "payments", "shipping"}
        assert not [e for e in ok + refused if e["kind"] == "event" and e["service"] != "orders"]
    else:
        # nobody commands: each service announces what it did, and the undo of what it had done
        assert not lines(ok, "command") and not lines(refused, "command")
        announced = set(lines(ok, "event"))
        assert {("inventory", "stock.reserved"), ("payments", "payment.charged")} <= announced
        assert ("shipping", "shipment.created") in announced
        assert {
            ("inventory", "stock.reserved"),
            ("payments", "payment.declined"),
            ("inventory", "stock.released"),
            ("payments", "payment.refunded"),
            ("shipping", "shipment.cancelled"),
        } <= set(lines(refused, "event"))
    # what each service undid is on the declined order's journal, under its own name
    assert sorted(lines(refused, "compensation")) == [
        ("inventory", "release_stock"),
        ("payments", "refund_payment"),
        ("shipping", "cancel_shipment"),
    ]


@pytest.mark.saga
def test_a_staff_cancel_is_in_the_journal_under_staff(saga, coordination, api, staff_api):
    # given an order placed while no worker runs, so it is still pending
    saga.stop()
    order_id = post_order(api, order_body(ProductFactory(stock=10)))

    # when staff cancel it through the API and the saga runs
    assert staff_api.post(f"/api/orders/{order_id}/cancel/").status_code == 202
    saga.start()
    assert wait_for_terminal([order_id])[order_id].status == "cancelled"

    # then its journal, as the customer reads it, says staff cancelled it
    entries = journal(api, order_id)
    cancel = next(e for e in entries if e["kind"] == "status" and e["name"] == "compensating")
    assert (cancel["service"], cancel["detail"]) == ("staff", "Cancelled")
    assert [e["name"] for e in entries if e["kind"] == "event"][-1] == "order.cancelled"


@pytest.mark.saga
def test_the_order_page_and_the_admin_name_the_service_that_did_each_step(saga, coordination, customer, api, staff):
    # given an order that completed and one whose card was declined, in either mode
    product = ProductFactory(stock=10)
    paid = post_order(api, order_body(product, token="tok_visa"))
    declined = post_order(api, order_body(product, token="tok_decline"))
    wait_for_terminal([paid, declined])
    shopper, admin = Client(), Client()
    shopper.force_login(customer)
    admin.force_login(staff)

    # when the customer opens the order pages and staff the admin's
    orders = (paid, declined)
    page = {order: shopper.get(f"/orders/{order}/").content.decode() for order in orders}
    staff_page = {order: admin.get(f"/admin/orders/order/{order}/change/").content.decode() for order in orders}

    # then the history names who did each step, the same words in both modes
    def did(who: str, what: str) -> str:
        return f'<strong class="journal-service">{who}</strong> {what}'

    for words in [
        did("Inventory", "set your items aside"),
        did("Risk", "checked your order"),
        did("Payments", "took the payment"),
        did("Shipping", "booked the carrier"),
        did("Orders", "handed the parcel to the carrier"),
    ]:
        assert words in page[paid], words
    for words in [
        did("Inventory", "set your items aside"),
        did("Inventory", "put your items back on the shelf"),
        did("Orders", "cancelled the order"),
    ]:
        assert words in page[declined], words
    # and the admin draws a lane for each of them, with its work on its own lane
    for order in orders:
        for service in ("orders", "inventory", "risk", "payments", "shipping"):
            assert f'<g class="lane" data-service="{service}">' in staff_page[order], (order, service)
    undo = 'class="mark mark--compensation" data-kind="compensation" data-service="{}"'
    for service in ("inventory", "payments", "shipping"):
        assert undo.format(service) in staff_page[declined], service
