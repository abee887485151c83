"""Issue 31 in a real browser at 1280 and 390 px: words true for the order, the cart after a
declined card, add to cart capped, the phone layout, the shop's pages and an admin that fits.

Writes the screenshot set of the main pages to artifacts/e2e/ (not committed). No Celery worker
runs: orders are put in the states under test directly (``quiet_saga``).
"""

import importlib
import re
import uuid
from decimal import Decimal

import pytest
from django.apps import apps as django_apps
from playwright.sync_api import expect

from events.registry import Event
from orders.models import Order, OrderEvent, Status
from orders.services import order_cancel
from payments.models import Payment
from shop.handlers import restore_cart
from shop.models import Product, StockReservation
from tests.e2e.conftest import _open_page
from tests.e2e.test_trust import fits_the_screen, log_in, place, quiet_saga  # noqa: F401  (fixture)
from tests.factories import ProductFactory, StaffFactory, UserFactory

WIDTHS = {"1280": {"width": 1280, "height": 900}, "390": {"width": 390, "height": 844}}
INTERNAL = re.compile(r"orchestration|choreography|compensating|reserve_stock|charge_payment", re.IGNORECASE)


@pytest.fixture(params=list(WIDTHS))
def screen(request, browser, live_server, problems):
    options = {"viewport": WIDTHS[request.param]}
    if request.param == "390":
        options |= {"is_mobile": True, "has_touch": True}
    page = _open_page(browser, live_server.url, problems, **options)
    yield page
    page.context.close()


@pytest.fixture
def shop_pages():
    """The pages the data migration wrote: a live server's database is emptied between tests."""
    migration = importlib.import_module("core.migrations.0006_shop_pages")
    migration.create_pages(django_apps, None)


def declined_order(customer, *products):
    """An order as the saga leaves a declined card: cancelled, nothing charged, the cart restored."""
    order = place(customer, *products, quantity=2, postal_code="N1 9GU", city="London", country="GB")
    for line in order.lines.all():
        StockReservation.objects.create(
            order_id=order.pk,
            line_id=line.pk,
            product=Product.objects.get(sku=line.sku),
            quantity=line.quantity,
            status="released",
        )
    Order.objects.filter(pk=order.pk).update(status=Status.CANCELLED, cancellation_reason="payment_declined")
    Payment.objects.create(order_id=order.pk, status="declined", amount=order.total, currency="USD")
    event = Event(
        id=str(uuid.uuid4()),
        name="order.cancelled",
        saga_id=str(order.pk),
        mode="orchestration",
        publisher="orders",
        data={"reason": "payment_declined"},
        context={"order_id": str(order.pk), "user_id": customer.pk},
    )
    restore_cart(event)
    return order


@pytest.mark.usefixtures("quiet_saga", "shop_pages")
def test_the_main_pages_in_customer_words_and_fitting_the_screen(screen, live_server, problems, shot):
    # given a catalog, a customer whose card was declined, and an order a member of staff cancelled
    products = [ProductFactory(name=f"Enamel mug {i}", price=Decimal("12.50"), stock=10) for i in range(4)]
    lamp = ProductFactory(name="Desk lamp", stock=3)
    customer = UserFactory()
    order = declined_order(customer, products[0])
    staff_cancelled = place(customer, products[1])
    order_cancel(order_id=staff_cancelled.pk, actor="alice_support", reason="staff_request")
    log_in(screen, customer)

    # the catalog: two products a row on a phone
    screen.goto("/")
    cards = screen.locator(".product-card")
    first, second = cards.nth(0).bounding_box(), cards.nth(1).bounding_box()
    if screen.viewport_size["width"] <= 400:
        assert abs(first["y"] - second["y"]) < 2  # side by side
    assert fits_the_screen(screen)
    shot(screen, "01-catalog")

    # add to cart says what it did, never more than there is
    screen.goto(f"/products/{lamp.sku}/")
    screen.get_by_label("Quantity").fill("5")
    screen.get_by_role("button", name="Add to cart").click()
    expect(screen.get_by_text("Only 3 Desk lamp left: we added 3, so your cart holds all 3.")).to_be_visible()
    shot(screen, "02-cart")

    # the declined order: its page says so, offers another card, and names nothing internal
    screen.goto(f"/orders/{order.pk}/")
    expect(screen.get_by_test_id("order-status")).to_have_text("Cancelled")
    expect(screen.get_by_test_id("status-reason")).to_have_text("Your card issuer declined the payment.")
    assert not INTERNAL.search(screen.locator("main").inner_text())
    shot(screen, "03-order-declined")
    screen.get_by_test_id("technical-timeline").locator("summary").click()
    assert not INTERNAL.search(screen.locator("main").inner_text())

    # the staff member's name never reaches the customer
    screen.goto(f"/orders/{staff_cancelled.pk}/")
    screen.get_by_test_id("technical-timeline").locator("summary").click()
    expect(screen.get_by_text("Our staff cancelled this order.")).to_be_visible()
    assert "alice_support" not in screen.content()

    # my orders: status, reason, units and products
    screen.goto("/orders/")
    expect(screen.get_by_text("Your card issuer declined the payment.").first).to_be_visible()
    assert fits_the_screen(screen)
    shot(screen, "04-my-orders")

    # try another payment method: the checkout, address filled in, the summary before the button
    screen.goto(f"/orders/{order.pk}/")
    screen.get_by_test_id("retry-payment").click()
    expect(screen.get_by_label("Postal code")).to_have_value("N1 9GU")
    summary = screen.locator(".summary").bounding_box()
    button = screen.get_by_role("button", name=re.compile("Place order")).bounding_box()
    if screen.viewport_size["width"] <= 400:
        assert summary["y"] < button["y"]
    expect(screen.locator(".summary")).to_contain_text("Enamel mug 0")
    assert fits_the_screen(screen)
    shot(screen, "05-checkout-retry")

    # the shop's pages, from the footer
    screen.get_by_role("link", name="Shipping and returns").click()
    expect(screen.get_by_role("heading", name="Shipping and returns", level=1)).to_be_visible()
    shot(screen, "06-shipping-and-returns")
    problems.assert_none()


@pytest.mark.usefixtures("quiet_saga")
def test_the_admin_order_list_and_page_fit_1280_px(page, live_server, problems, shot):
    # given an order with a long journal in every lane
    customer = UserFactory(username="a_customer_with_a_long_name")
    order = place(customer, ProductFactory(name="Enamel mug"))
    for service, kind, name in [
        ("inventory", "event", "stock.reserved"),
        ("payments", "event", "payment.declined"),
        ("notifications", "action", "email.sent"),
    ]:
        OrderEvent.objects.create(order=order, service=service, kind=kind, name=name, message=f"{name} detail")
    order_cancel(order_id=order.pk, actor="support", reason="staff_request")
    staff = StaffFactory()
    log_in(page, staff, admin=True)

    # the list: the short number, each column on one line, nothing off screen
    page.goto("/admin/orders/order/")
    link = page.get_by_role("link", name=f"#{str(order.pk)[:8]}")
    expect(link).to_be_visible()
    assert fits_the_screen(page)
    row = page.locator("#result_list tbody tr").first.bounding_box()
    assert row["height"] < 60  # one line, not a UUID wrapped over 4-5
    shot(page, "01-admin-orders")

    # the page: every lane of the diagram inside the window
    link.click()
    diagram = page.locator("svg.sequence-diagram")
    box = diagram.bounding_box()
    assert box["x"] + box["width"] <= page.viewport_size["width"]
    assert fits_the_screen(page)  # the journal's columns too
    for lane in ("Orders", "Inventory", "Payments", "Notifications", "Staff"):
        expect(diagram.locator(".lane", has_text=lane)).to_have_count(1)
    shot(page, "02-admin-order")
    problems.assert_none()
