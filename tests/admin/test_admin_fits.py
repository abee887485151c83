"""The admin at 1280 px: the short number in the list, the shop first, the diagram whole (issue 31, item 7)."""

import re
from decimal import Decimal

import pytest

from orders.models import Order, OrderEvent, Status
from tests.factories import ProductFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def order(customer, place_order):
    return place_order(customer, ProductFactory(name="Enamel mug", price=Decimal("12.50")), quantity=2)


def test_the_order_list_shows_the_short_number_not_the_whole_id(admin_client_, order):
    html = admin_client_.get("/admin/orders/order/").content.decode()

    short = str(order.pk).replace("-", "")[:8]
    assert f'<a href="/admin/orders/order/{order.pk}/change/">#{short}</a>' in html
    assert f">{order.pk}<" not in html  # the 36 characters that wrapped over 4-5 lines
    assert "/static/css/admin-orders.css" in html  # one line per cell


def test_the_shops_own_models_come_first_on_the_index(admin_client_):
    html = admin_client_.get("/admin/").content.decode()

    apps = re.findall(r'<div class="app-([a-z_]+) module', html)
    assert apps[:5] == ["orders", "risk", "shop", "payments", "shipping"]
    assert apps.index("orders") < apps.index("axes") < apps.index("knox")


def test_the_stuck_view_names_the_orders_waiting_for_staff_beside_its_count(admin_client_, order):
    # given no saga running, and one order that ended waiting for staff
    Order.objects.filter(pk=order.pk).update(status=Status.NEEDS_ATTENTION)

    html = admin_client_.get("/admin/orders/order/stuck/").content.decode()

    assert "Needs Attention: 1" in html
    assert "Nothing is stuck" not in html
    assert "1 order ended in <em>needs attention</em>" in html


def test_the_sequence_diagram_keeps_its_labels_whole_and_scales_to_its_column(admin_client_, order):
    long = "a staff member re-queued the parked compensation after the provider came back"
    OrderEvent.objects.create(order=order, service="staff", kind="action", actor_kind="staff", message=long)

    html = admin_client_.get(f"/admin/orders/order/{order.pk}/change/").content.decode()

    assert f">{long}</text>" in html
    assert "/static/css/admin-orders.css" in html
