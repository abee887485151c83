from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.utils import timezone

from orders.models import Order, OrderEvent, Status
from payments.models import ProviderTransaction
from tests.factories import ProductFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client_(staff) -> Client:
    client = Client()
    client.force_login(staff)
    return client


def support_agent(*codenames):
    """A staff user who may view orders, plus the given order permissions."""
    user = UserFactory(is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="orders", codename__in=["view_order", *codenames])
    )
    client = Client()
    client.force_login(user)
    return user, client


@pytest.fixture
def order(customer, place_order):
    return place_order(customer, ProductFactory(sku="MUG-1", name="Enamel mug", price=Decimal("12.50")), quantity=2)


def test_order_list_shows_the_columns_staff_need(admin_client_, order, customer):
    html = admin_client_.get("/admin/orders/order/").content.decode()

    assert str(order.pk) in html
    assert customer.username in html
    assert "pending" in html and "25.00" in html
    for column in ("Customer", "Status", "Cancellation reason", "Total", "Created at"):
        assert column in html


@pytest.mark.parametrize("term", ["customer", "email", "sku", "id"])
def test_orders_can_be_found_by_id_customer_email_and_sku(admin_client_, place_order, order, customer, term):
    # given another customer's order too
    other = place_order(UserFactory(username="someone"), ProductFactory(sku="TEE-9"))
    query = {"customer": customer.username, "email": customer.email, "sku": "MUG-1", "id": str(order.pk)}[term]

    html = admin_client_.get("/admin/orders/order/", {"q": query}).content.decode()

    assert str(order.pk) in html
    assert str(other.pk) not in html


def test_a_search_that_is_not_an_id_finds_no_order_and_says_so(admin_client_, order):
    response = admin_client_.get("/admin/orders/order/", {"q": "not-a-uuid"})

    assert response.status_code == 200
    html = response.content.decode()
    assert str(order.pk) not in html
    assert "0 results" in html


@pytest.mark.parametrize(
    "query",
    [
        {"status__exact": "pending"},
        {"cancellation_reason__exact": "out_of_stock"},
        {"created_at__gte": "2000-01-01 00:00:00+00:00"},
    ],
)
def test_orders_can_be_filtered(admin_client_, order, query):
    response = admin_client_.get("/admin/orders/order/", query)

    assert response.status_code == 200
    assert (str(order.pk) in response.content.decode()) == ("cancellation_reason__exact" not in query)


def test_order_page_shows_lines_steps_events_payment_and_the_provider_ledger(admin_client_, order):
    ProviderTransaction.objects.create(
        kind="charge", status="succeeded", amount=order.total, currency="USD", reference="ch_test123",
        idempotency_key=f"order:{order.pk}:charge", token="tok_visa", order_ref=str(order.pk),
    )  # fmt: skip

    html = admin_client_.get(f"/admin/orders/order/{order.pk}/change/").content.decode()

    assert "MUG-1" in html  # line
    assert "reserve_stock:MUG-1" in html and "charge_payment" in html  # saga timeline
    assert "Order placed" in html  # events
    assert "ch_test123" in html  # the provider's own ledger
    # a pending order that is moving: only cancelling applies
    assert f"/admin/orders/order/{order.pk}/act/cancel/" in html
    assert "/act/retry_saga/" not in html and "/act/retry_compensation/" not in html


def test_order_page_draws_the_run_as_a_sequence_diagram_with_a_lane_per_service(admin_client_, order):
    # given an orchestrated order whose charge was sent and then failed at the payment service
    OrderEvent.objects.create(order=order, service="orders", kind="command", name="payments.charge")
    OrderEvent.objects.create(order=order, service="payments", kind="step", name="charge_payment", message="failed")

    html = admin_client_.get(f"/admin/orders/order/{order.pk}/change/").content.decode()

    # then the page carries the drawing: the lanes that appear, the command as an arrow
    assert '<svg xmlns="http://www.w3.org/2000/svg" class="sequence-diagram"' in html
    assert 'data-coordination="orchestration"' in html
    assert '<g class="lane" data-service="orders">' in html and '<g class="lane" data-service="payments">' in html
    assert 'data-service="shipping"' not in html
    assert 'data-kind="command" data-from="orders" data-to="payments" data-name="payments.charge"' in html
    assert 'class="mark mark--step" data-kind="step" data-service="payments"' in html


def test_orders_are_read_only_in_the_admin(admin_client_, order):
    assert admin_client_.get("/admin/orders/order/add/").status_code == 403
    assert admin_client_.post(f"/admin/orders/order/{order.pk}/delete/").status_code == 403
    admin_client_.post(f"/admin/orders/order/{order.pk}/change/", {"status": "completed"})
    assert Order.objects.get(pk=order.pk).status == Status.PENDING


def test_non_staff_cannot_open_the_admin(shopper_admin_denied):
    assert shopper_admin_denied.status_code == 302
    assert "/admin/login/" in shopper_admin_denied["Location"]


@pytest.fixture
def shopper_admin_denied(customer):
    client = Client()
    client.force_login(customer)
    return client.get("/admin/orders/order/")


# --- actions from the list, with their confirmation step ---------------------------------------


def make_stuck(order):
    """The order's saga has made no progress for longer than the sweeper waits."""
    Order.objects.filter(pk=order.pk).update(progressed_at=timezone.now() - timedelta(hours=1))


def test_cancel_action_asks_for_confirmation_first(admin_client_, order):
    response = admin_client_.post(
        "/admin/orders/order/", {"action": "cancel_orders", "_selected_action": [str(order.pk)]}
    )

    assert response.status_code == 200
    assert "are you sure?" in response.content.decode()
    assert Order.objects.get(pk=order.pk).status == Status.PENDING


def test_confirmed_cancel_compensates_and_is_audited_with_the_staff_name(admin_client_, staff, order):
    response = admin_client_.post(
        "/admin/orders/order/",
        {"action": "cancel_orders", "_selected_action": [str(order.pk)], "confirmed": "yes"},
        follow=True,
    )

    order.refresh_from_db()
    assert (order.status, order.cancellation_reason) == (Status.COMPENSATING, "staff_request")
    assert OrderEvent.objects.filter(order=order, to_status="compensating", actor=staff.username).exists()
    assert "cancel and compensate requested" in response.content.decode()


def test_cancelling_a_completed_order_is_an_error_message_not_a_crash(admin_client_, order):
    Order.objects.filter(pk=order.pk).update(status=Status.COMPLETED)

    response = admin_client_.post(
        "/admin/orders/order/",
        {"action": "cancel_orders", "_selected_action": [str(order.pk)], "confirmed": "yes"},
        follow=True,
    )

    assert response.status_code == 200
    assert "cannot be cancelled" in response.content.decode()
    assert Order.objects.get(pk=order.pk).status == Status.COMPLETED


def test_retry_saga_is_audited(admin_client_, staff, order):
    make_stuck(order)

    admin_client_.post(
        "/admin/orders/order/", {"action": "retry_sagas", "_selected_action": [str(order.pk)], "confirmed": "yes"}
    )

    assert OrderEvent.objects.filter(order=order, message="Saga retried", actor=staff.username).exists()


def test_retry_saga_of_a_finished_order_is_refused(admin_client_, order):
    Order.objects.filter(pk=order.pk).update(status=Status.CANCELLED)

    response = admin_client_.post(
        "/admin/orders/order/",
        {"action": "retry_sagas", "_selected_action": [str(order.pk)], "confirmed": "yes"},
        follow=True,
    )

    assert "has ended" in response.content.decode()


def test_retry_compensation_of_an_order_that_needs_attention(admin_client_, staff, order):
    Order.objects.filter(pk=order.pk).update(status=Status.NEEDS_ATTENTION, cancellation_reason="shipping_failed")

    admin_client_.post(
        "/admin/orders/order/",
        {"action": "retry_compensations", "_selected_action": [str(order.pk)], "confirmed": "yes"},
    )

    assert Order.objects.get(pk=order.pk).status == Status.COMPENSATING
    assert OrderEvent.objects.filter(order=order, message="Compensation retried", actor=staff.username).exists()


def test_retry_compensation_of_a_running_order_is_refused(admin_client_, order):
    response = admin_client_.post(
        "/admin/orders/order/",
        {"action": "retry_compensations", "_selected_action": [str(order.pk)], "confirmed": "yes"},
        follow=True,
    )

    assert "Only an order that needs attention" in response.content.decode()
    assert Order.objects.get(pk=order.pk).status == Status.PENDING


# --- the same actions from an order's page -----------------------------------------------------


def test_order_page_action_confirms_then_acts(admin_client_, staff, order):
    url = f"/admin/orders/order/{order.pk}/act/cancel/"

    confirm = admin_client_.get(url)
    assert confirm.status_code == 200 and "are you sure?" in confirm.content.decode()
    assert Order.objects.get(pk=order.pk).status == Status.PENDING

    done = admin_client_.post(url)
    assert done.status_code == 302 and done["Location"] == f"/admin/orders/order/{order.pk}/change/"
    assert Order.objects.get(pk=order.pk).status == Status.COMPENSATING


def test_an_unknown_action_or_order_is_404(admin_client_, order):
    assert admin_client_.get(f"/admin/orders/order/{order.pk}/act/explode/").status_code == 404
    assert admin_client_.get("/admin/orders/order/00000000-0000-0000-0000-000000000000/act/cancel/").status_code in (
        302,
        404,
    )


# --- permissions -------------------------------------------------------------------------------


def test_staff_without_the_permission_do_not_get_the_action(order):
    _, client = support_agent()  # may view orders, nothing more

    changelist = client.get("/admin/orders/order/").content.decode()
    page = client.get(f"/admin/orders/order/{order.pk}/change/").content.decode()
    forced = client.post(f"/admin/orders/order/{order.pk}/act/cancel/")
    listed = client.post(
        "/admin/orders/order/", {"action": "cancel_orders", "_selected_action": [str(order.pk)], "confirmed": "yes"}
    )

    assert "cancel_orders" not in changelist
    assert "Cancel and compensate" not in page
    assert forced.status_code == 403
    assert listed.status_code in (200, 302)
    assert Order.objects.get(pk=order.pk).status == Status.PENDING


def test_staff_with_only_the_cancel_permission_can_cancel_but_not_retry(order):
    user, client = support_agent("cancel_order")

    assert client.get(f"/admin/orders/order/{order.pk}/act/retry_saga/").status_code == 403
    client.post(f"/admin/orders/order/{order.pk}/act/cancel/")

    assert Order.objects.get(pk=order.pk).status == Status.COMPENSATING
    assert OrderEvent.objects.filter(order=order, actor=user.username).exists()
