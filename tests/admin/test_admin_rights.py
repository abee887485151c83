"""The admin keeps the API's rights (contract §3, issue 33): the provider's ledger needs
``view_providertransaction`` on every page that could show it, and an action on an order needs
seeing the order (``view_order``) as well as the action's own permission."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from orders.models import Order, OrderEvent, Status
from payments.models import Payment, ProviderTransaction
from tests.factories import ProductFactory, StaffFactory, StaffMemberFactory

pytestmark = pytest.mark.django_db

CHARGE_REFERENCE = "ch_ledger_only_7f3a"
IDEMPOTENCY_KEY = "charge-key-ledger-only-51c2"
PAYMENT_REFERENCE = "pi_ledger_only_90be"
LEDGER_MARKERS = (CHARGE_REFERENCE, IDEMPOTENCY_KEY, PAYMENT_REFERENCE)


def staff_member(who: str):
    return StaffFactory() if who == "superuser" else StaffMemberFactory(permissions=who.split("+"))


def browser(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def api_status(user, url: str) -> int:
    client = APIClient()
    client.force_authenticate(user)
    return client.get(url).status_code


@pytest.fixture
def order(customer, place_order):
    return place_order(customer, ProductFactory(sku="MUG-1", price=Decimal("12.50")), quantity=2)


@pytest.fixture
def paid(order):
    """The order charged: our payment record and the provider's own transaction."""
    Payment.objects.create(
        order_id=order.pk, status="succeeded", amount=order.total, currency="USD", provider_reference=PAYMENT_REFERENCE
    )
    ProviderTransaction.objects.create(
        kind="charge", status="succeeded", amount=order.total, currency="USD", reference=CHARGE_REFERENCE,
        idempotency_key=IDEMPOTENCY_KEY, token="tok_visa", order_ref=str(order.pk),
    )  # fmt: skip
    return order


# --- finding 1: the payment ledger without its permission -----------------------------------------


@pytest.mark.parametrize(
    ("who", "ledger"),
    [
        ("orders.view_order", False),
        ("orders.view_order+payments.view_payment", False),
        ("orders.view_order+payments.view_providertransaction", True),
        ("superuser", True),
    ],
)
def test_the_order_page_shows_the_ledger_only_to_whom_the_api_shows_it(paid, who, ledger):
    user = staff_member(who)

    html = browser(user).get(f"/admin/orders/order/{paid.pk}/change/").content.decode()

    # the API and the page agree on who reads the provider's ledger
    assert (api_status(user, f"/api/payments/transactions/?order={paid.pk}") == 200) == ledger
    for marker in LEDGER_MARKERS:
        assert (marker in html) == ledger, marker
    assert ("Withheld: the payment provider&#x27;s ledger needs the permission" in html) == (not ledger)
    # what the API shows with the order is there either way: the payment's status and amount
    assert "succeeded: 25.00 USD" in html


@pytest.mark.parametrize(
    ("who", "ledger"),
    [
        ("orders.view_order+payments.view_payment", False),
        ("orders.view_order+payments.view_payment+payments.view_providertransaction", True),
    ],
)
def test_the_payment_record_shows_the_providers_reference_only_with_the_ledger_right(paid, who, ledger):
    client = browser(staff_member(who))
    payment = Payment.objects.get(order_id=paid.pk)

    page = client.get(f"/admin/payments/payment/{payment.pk}/change/")
    found = client.get("/admin/payments/payment/", {"q": PAYMENT_REFERENCE})

    assert page.status_code == 200
    assert (PAYMENT_REFERENCE in page.content.decode()) == ledger
    assert "25.00" in page.content.decode()
    # nor can a search by reference tell which references exist
    assert (f"/admin/payments/payment/{payment.pk}/change/" in found.content.decode()) == ledger


@pytest.mark.parametrize("who", ["payments.view_payment", "shipping.view_shipment", "orders.change_order"])
def test_a_part_of_an_order_is_not_shown_to_whom_may_not_see_the_order(paid, who):
    # a payment or a shipment belongs to its order; "change" grants no view where nothing changes
    user = staff_member(who)
    client = browser(user)

    assert api_status(user, f"/api/orders/{paid.pk}/") == 404
    assert client.get("/admin/orders/order/").status_code == 403
    assert client.get(f"/admin/orders/order/{paid.pk}/change/").status_code == 403
    assert client.get("/admin/payments/payment/").status_code == 403
    assert client.get("/admin/shipping/shipment/").status_code == 403


def test_the_order_page_shows_lines_and_journal_to_whom_may_see_the_order(order):
    # the API gives them with the order: so does the page, with no permission on lines or journal
    html = browser(staff_member("orders.view_order")).get(f"/admin/orders/order/{order.pk}/change/").content.decode()

    assert 'id="lines-group"' in html and "MUG-1" in html
    assert 'id="events-group"' in html and "Order placed" in html


# --- finding 4: an admin action without the right to see the order ------------------------------


ACTION_APPLIES = {
    "cancel": (Status.PENDING, False),
    "retry_saga": (Status.PAID, True),
    "retry_compensation": (Status.NEEDS_ATTENTION, True),
}
PERMISSION = {"cancel": "cancel_order", "retry_saga": "retry_saga", "retry_compensation": "retry_compensation"}


def ready_for(order, action: str) -> None:
    """The order in a state where ``action`` applies (a stuck one for the retries)."""
    status, stuck = ACTION_APPLIES[action]
    progressed = timezone.now() - timedelta(hours=1) if stuck else timezone.now()
    Order.objects.filter(pk=order.pk).update(status=status, progressed_at=progressed)


def as_it_stands(order) -> tuple[str, int]:
    order.refresh_from_db()
    return order.status, OrderEvent.objects.filter(order=order).count()


@pytest.mark.parametrize("action", list(ACTION_APPLIES))
def test_an_action_without_the_right_to_see_the_order_is_refused_and_changes_nothing(order, customer, action):
    ready_for(order, action)
    before = as_it_stands(order)
    user = staff_member(f"orders.{PERMISSION[action]}")
    client = browser(user)
    url = f"/admin/orders/order/{order.pk}/act/{action}/"

    confirmation = client.get(url)
    done = client.post(url)

    # the API does not show them the order at all
    assert api_status(user, f"/api/orders/{order.pk}/") == 404
    assert confirmation.status_code == 403
    assert customer.username not in confirmation.content.decode()
    assert done.status_code == 403
    assert as_it_stands(order) == before


@pytest.mark.parametrize("action", list(ACTION_APPLIES))
def test_an_action_with_both_rights_acts(order, action):
    ready_for(order, action)
    before = as_it_stands(order)
    client = browser(staff_member(f"orders.view_order+orders.{PERMISSION[action]}"))

    assert client.get(f"/admin/orders/order/{order.pk}/act/{action}/").status_code == 200
    assert client.post(f"/admin/orders/order/{order.pk}/act/{action}/").status_code == 302
    assert as_it_stands(order) != before


def test_the_list_actions_and_notes_need_the_right_to_see_the_order_too(order):
    before = as_it_stands(order)
    client = browser(staff_member("orders.cancel_order"))

    listed = client.post(
        "/admin/orders/order/", {"action": "cancel_orders", "_selected_action": [str(order.pk)], "confirmed": "yes"}
    )
    noted = client.post(f"/admin/orders/order/{order.pk}/note/", {"text": "seen it"})

    assert listed.status_code == 403
    assert noted.status_code == 403
    assert as_it_stands(order) == before


def test_a_refusal_says_nothing_about_which_orders_exist(order):
    client = browser(staff_member("orders.cancel_order"))

    there = client.get(f"/admin/orders/order/{order.pk}/act/cancel/")
    not_there = client.get("/admin/orders/order/00000000-0000-4000-8000-000000000000/act/cancel/")

    assert there.status_code == not_there.status_code == 403
