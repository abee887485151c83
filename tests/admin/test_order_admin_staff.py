"""The order admin for staff: actions only where they apply, the address, the short number, notes."""

from datetime import timedelta
from decimal import Decimal
from unittest import mock

import pytest
from django.test import Client
from django.utils import timezone

from orders.models import Order, OrderEvent, Status
from tests.factories import ProductFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_browser(staff) -> Client:
    client = Client()
    client.force_login(staff)
    return client


@pytest.fixture
def order(customer, place_order):
    return place_order(
        customer, ProductFactory(sku="MUG-1", price=Decimal("12.50")), country="DE", city="Berlin", postal_code="10115"
    )


def set_state(order, status, *, stuck=False):
    progressed = timezone.now() - timedelta(hours=1) if stuck else timezone.now()
    Order.objects.filter(pk=order.pk).update(status=status, progressed_at=progressed)


def action_links(client, order) -> set[str]:
    html = client.get(f"/admin/orders/order/{order.pk}/change/").content.decode()
    return {name for name in ("cancel", "retry_saga", "retry_compensation") if f"/act/{name}/" in html}


@pytest.mark.parametrize(
    ("status", "stuck", "offered"),
    [
        (Status.PENDING, False, {"cancel"}),
        (Status.PAID, True, {"cancel", "retry_saga"}),
        (Status.COMPENSATING, False, set()),
        (Status.COMPENSATING, True, {"retry_saga"}),
        (Status.NEEDS_ATTENTION, True, {"retry_compensation"}),
        (Status.COMPLETED, True, set()),
        (Status.CANCELLED, True, set()),
    ],
)
def test_the_order_page_offers_only_the_actions_that_apply(staff_browser, order, status, stuck, offered):
    set_state(order, status, stuck=stuck)

    assert action_links(staff_browser, order) == offered


def test_each_offered_action_says_what_it_will_do(staff_browser, order):
    set_state(order, Status.NEEDS_ATTENTION)

    html = staff_browser.get(f"/admin/orders/order/{order.pk}/change/").content.decode()

    assert "Runs the undo steps that gave up (such as a failed refund) once more." in html


def test_an_order_with_nothing_to_do_says_so(staff_browser, order):
    set_state(order, Status.COMPLETED)

    html = staff_browser.get(f"/admin/orders/order/{order.pk}/change/").content.decode()

    assert "No action applies to this order as it stands" in html


def test_retry_saga_never_reruns_the_compensation_of_an_order_that_needs_attention(staff_browser, order):
    # given an order whose compensation gave up
    set_state(order, Status.NEEDS_ATTENTION, stuck=True)

    # when a staff member forces "Retry saga" on it (an old page, a crafted POST)
    with mock.patch("orders.coordination.compensation_start") as compensation_start:
        response = staff_browser.post(f"/admin/orders/order/{order.pk}/act/retry_saga/", follow=True)

    # then nothing runs, the order still needs attention, and the page says what to use instead
    assert "Retry compensation" in response.content.decode()
    assert Order.objects.get(pk=order.pk).status == Status.NEEDS_ATTENTION
    compensation_start.assert_not_called()
    assert not OrderEvent.objects.filter(order=order, message="Compensation retried").exists()


def test_retry_saga_of_a_moving_saga_is_refused_with_why(staff_browser, order):
    response = staff_browser.post(f"/admin/orders/order/{order.pk}/act/retry_saga/", follow=True)

    assert "still moving" in response.content.decode()
    assert not OrderEvent.objects.filter(order=order, message="Saga retried").exists()


def test_the_list_confirmation_separates_the_orders_an_action_skips(staff_browser, order, place_order):
    # given one stuck order and one that ended
    ended = place_order(UserFactory(), ProductFactory())
    set_state(order, Status.PAID, stuck=True)
    set_state(ended, Status.COMPLETED)

    response = staff_browser.post(
        "/admin/orders/order/", {"action": "retry_sagas", "_selected_action": [str(order.pk), str(ended.pk)]}
    )

    html = response.content.decode()
    skipped = html[html.index('data-testid="skipped"') :]
    assert f"#{str(ended.pk)[:8]} · completed: The saga of a completed order has ended." in skipped
    assert f'value="{order.pk}"' in html and f'value="{ended.pk}"' not in html


def test_filtered_to_a_status_the_list_offers_only_its_actions(staff_browser, order):
    attention = staff_browser.get("/admin/orders/order/", {"status__exact": "needs_attention"}).content.decode()
    completed = staff_browser.get("/admin/orders/order/", {"status__exact": "completed"}).content.decode()

    assert 'value="retry_compensations"' in attention
    assert 'value="cancel_orders"' not in attention and 'value="retry_sagas"' not in attention
    assert 'value="retry_compensations"' not in completed and 'value="cancel_orders"' not in completed


def test_the_address_is_written_as_its_country_writes_it(staff_browser, order):
    html = staff_browser.get(f"/admin/orders/order/{order.pk}/change/").content.decode()

    assert "<address>Ada Lovelace<br>12 Analytical Row<br>10115 BERLIN<br>GERMANY</address>" in html
    assert '"line1"' not in html  # no raw JSON


@pytest.mark.parametrize("form", ["#{}", "{}", "#{upper}"])
def test_orders_are_found_by_the_short_number_customers_see(staff_browser, order, place_order, form):
    other = place_order(UserFactory(), ProductFactory())
    short = str(order.pk)[:8]

    html = staff_browser.get("/admin/orders/order/", {"q": form.format(short, upper=short.upper())}).content.decode()

    assert str(order.pk) in html
    assert str(other.pk) not in html
    assert f"#{short}" in html  # the number column


def test_a_staff_note_is_recorded_with_who_and_when_and_shown_in_the_timeline(staff_browser, staff, order):
    response = staff_browser.post(
        f"/admin/orders/order/{order.pk}/note/", {"text": "  Customer phoned: refund by hand.  "}, follow=True
    )

    note = OrderEvent.objects.get(order=order, actor=staff.username)
    assert note.message == "Staff note: Customer phoned: refund by hand."
    html = response.content.decode()
    assert note.created_at.strftime("%Y-%m-%d %H:%M:%S UTC") in html  # when, in the shop's zone
    assert "Note added to the timeline." in html
    assert "Staff note: Customer phoned: refund by hand." in html
    assert Order.objects.get(pk=order.pk).status == Status.PENDING  # a note changes nothing else


def test_an_empty_note_is_refused(staff_browser, staff, order):
    response = staff_browser.post(f"/admin/orders/order/{order.pk}/note/", {"text": "   "}, follow=True)

    assert "A note needs some text" in response.content.decode()
    assert not OrderEvent.objects.filter(order=order, actor=staff.username).exists()


def test_notes_need_post_and_a_staff_member_who_sees_orders(order, customer):
    shopper = Client()
    shopper.force_login(customer)

    assert shopper.post(f"/admin/orders/order/{order.pk}/note/", {"text": "hi"}).status_code == 302  # to login
    assert not OrderEvent.objects.filter(order=order, message__startswith="Staff note").exists()
