"""A shopper and a support agent, in a real browser, against a real Celery worker."""

import re
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from orders.events import order_context
from orders.models import Coordination, Order, OrderEvent, Status
from orders.services import OrderItem, order_place
from shop.models import Product
from shop.tasks import reserve_stock
from tests.factories import PASSWORD, ProductFactory, StaffFactory, UserFactory, address
from tests.worker import wait_for_terminal

pytestmark = pytest.mark.saga

SAGA_TIMEOUT_MS = 30_000  # contract §4: every saga settles within 30 s


def fill_checkout(page, *, token: str, postal_code: str = "N1 9GU") -> None:
    page.get_by_label("Full name").fill("Ada Lovelace")
    page.get_by_label(re.compile(r"^Address:?$")).fill("12 Analytical Row")
    page.get_by_label("Postal code").fill(postal_code)
    page.get_by_label("City").fill("London")
    page.get_by_label("Country").select_option("GB")
    page.get_by_label(re.compile(f"{token}: ")).check()


def test_a_visitor_shops_signs_up_and_watches_the_saga_live(saga, page, problems, shot):
    # given a catalog
    mug = ProductFactory(name="Enamel camp mug", price=Decimal("12.50"), stock=20)
    tee = ProductFactory(name="Organic cotton tee", price=Decimal("24.00"), stock=20)
    ProductFactory(name="Espresso cups", stock=0)

    # when a visitor browses and searches the catalog
    page.goto("/")
    expect(page.get_by_role("heading", name="Catalog")).to_be_visible()
    shot(page, "01-catalog")
    page.get_by_label("Search products").fill("mug")
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_role("link", name="Organic cotton tee")).to_have_count(0)

    # and adds two products to the cart
    page.get_by_role("link", name="Enamel camp mug").click()
    page.get_by_label("Quantity").fill("2")
    shot(page, "02-product")
    page.get_by_role("button", name="Add to cart").click()
    expect(page).to_have_url(re.compile("/cart/$"))
    page.goto(f"/products/{tee.sku}/")
    page.get_by_role("button", name="Add to cart").click()
    expect(page.get_by_test_id("cart-total")).to_have_text("$49.00")
    shot(page, "03-cart")

    # and goes to checkout, which asks them to log in; they sign up instead
    page.get_by_role("link", name="Checkout").click()
    expect(page).to_have_url(re.compile(r"/accounts/login/\?next=/checkout/"))
    shot(page, "04-login")
    page.get_by_role("link", name="Create an account").click()
    page.get_by_label("Username").fill("ada")
    page.get_by_label("Email").fill("ada@example.com")
    page.get_by_label(re.compile(r"^Password:?$")).fill("short")
    page.get_by_label("Password again").fill("short")
    page.get_by_role("button", name="Sign up").click()
    expect(page.get_by_text("This password is too short")).to_be_visible()  # the rules are enforced
    shot(page, "05-signup-error")
    page.get_by_label(re.compile(r"^Password:?$")).fill("analytical-engine-1843")
    page.get_by_label("Password again").fill("analytical-engine-1843")
    page.get_by_role("button", name="Sign up").click()

    # then the cart survived the sign-up, and a missing field is pointed out at checkout
    expect(page).to_have_url(re.compile("/checkout/$"))
    expect(page.get_by_text(re.compile(r"^2 \S Enamel camp mug$"))).to_be_visible()
    page.get_by_role("button", name=re.compile("Place order")).click()
    expect(page.get_by_text("Please correct the fields marked below")).to_be_visible()
    shot(page, "06-checkout-errors")
    fill_checkout(page, token="tok_flaky")
    shot(page, "07-checkout")
    page.get_by_role("button", name=re.compile("Place order")).click()

    # and the order page follows the saga to "completed" without reloading
    expect(page).to_have_url(re.compile(r"/orders/[0-9a-f-]{36}/$"))
    page.evaluate("window.__sameDocument = 'kept'")
    navigations = []
    page.on("framenavigated", lambda frame: navigations.append(frame.url) if frame == page.main_frame else None)
    shot(page, "08-order-running")
    expect(page.get_by_test_id("order-status")).to_have_text("Shipped", timeout=SAGA_TIMEOUT_MS)
    assert page.evaluate("window.__sameDocument") == "kept"
    assert navigations == []
    expect(page.get_by_test_id("tracking-number")).not_to_be_empty()
    charge = page.locator("li.step", has_text="Charge payment")
    expect(charge).to_have_attribute("data-state", "done")
    expect(charge).to_contain_text("3 attempts")  # tok_flaky: two transient failures, then success
    shot(page, "09-order-completed")
    order = Order.objects.get(user__username="ada")
    assert order.status == Status.COMPLETED and order.total == Decimal("49.00")
    assert Product.objects.get(pk=mug.pk).stock == 18

    # when they order again, to an address the carrier rejects
    page.goto(f"/products/{mug.sku}/")
    page.get_by_role("button", name="Add to cart").click()
    page.get_by_role("link", name="Checkout").click()
    fill_checkout(page, token="tok_visa", postal_code="00000")
    page.get_by_role("button", name=re.compile("Place order")).click()

    # then the page shows the saga compensating: refunded, stock released
    expect(page.get_by_test_id("order-status")).to_have_text("Cancelled", timeout=SAGA_TIMEOUT_MS)
    expect(page.get_by_test_id("status-reason")).to_have_text("The carrier could not accept the delivery address.")
    expect(page.locator("li.step", has_text="Hand to the carrier")).to_have_attribute("data-state", "failed")
    expect(page.locator("li.step", has_text="Charge payment")).to_have_attribute("data-state", "compensated")
    expect(page.locator("li.step", has_text="Refund payment")).to_have_attribute("data-state", "done")
    expect(page.locator("li.step", has_text="Release stock")).to_have_attribute("data-state", "done")
    shot(page, "10-order-compensated")
    assert Product.objects.get(pk=mug.pk).stock == 18

    page.goto("/orders/")
    expect(page.get_by_role("row")).to_have_count(3)  # header + 2 orders
    shot(page, "11-my-orders")
    problems.assert_none()


def test_staff_cancel_an_order_from_the_admin_and_the_stock_comes_back(saga, page, problems, shot):
    # given an order whose stock is reserved, held there while the worker is stopped
    staff = StaffFactory(username="support")
    lamp = ProductFactory(name="Desk lamp", stock=10)
    saga.stop()
    order = order_place(
        user=UserFactory(),
        items=[OrderItem(sku=lamp.sku, quantity=3)],
        shipping_address=address(),
        payment_token="tok_visa",
        coordination_mode=Coordination.ORCHESTRATION,  # its first step is run here, as a command
    )
    reserve_stock.apply(args=(str(order.pk), order_context(order, list(order.lines.all()))))
    assert Order.objects.get(pk=order.pk).status == Status.RESERVED
    assert Product.objects.get(pk=lamp.pk).stock == 7

    # when a staff member finds it in the admin and cancels it
    page.goto("/admin/")
    page.get_by_label("Username").fill(staff.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.goto("/admin/orders/order/")
    page.locator("#searchbar").fill(lamp.sku)  # the list search, not the sidebar filter
    page.get_by_role("button", name="Search").click()
    shot(page, "01-admin-orders")
    page.get_by_role("link", name=f"#{str(order.pk)[:8]}").click()
    shot(page, "02-admin-order")
    page.get_by_role("link", name="Cancel and compensate").first.click()
    shot(page, "03-admin-confirm")
    page.get_by_role("button", name="Yes, cancel and compensate").click()
    expect(page.get_by_text("cancel and compensate requested")).to_be_visible()
    saga.start()

    # then the order is cancelled, its stock is back, and the timeline names the staff member
    wait_for_terminal([order.pk])
    order.refresh_from_db()
    assert (order.status, order.cancellation_reason) == (Status.CANCELLED, "staff_request")
    assert Product.objects.get(pk=lamp.pk).stock == 10
    assert OrderEvent.objects.filter(order=order, actor="support", to_status="compensating").exists()
    page.reload()
    expect(page.get_by_text("support").first).to_be_visible()
    shot(page, "04-admin-order-cancelled")
    problems.assert_none()


def test_the_storefront_works_on_a_phone(saga, phone, problems, shot):
    # given a signed-in customer with a product in the catalog
    product = ProductFactory(name="Merino socks", price=Decimal("18.00"))
    customer = UserFactory()

    # when they use the shop on a phone-sized screen
    phone.goto("/accounts/login/")
    phone.get_by_label("Username").fill(customer.username)
    phone.get_by_label("Password").fill(PASSWORD)
    phone.get_by_role("button", name="Log in").click()
    for name, url in [("catalog", "/"), ("product", f"/products/{product.sku}/")]:
        phone.goto(url)
        shot(phone, name)
        # then nothing is wider than the screen
        assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), url
    phone.get_by_role("button", name="Add to cart").click()
    shot(phone, "cart")
    assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    phone.get_by_role("link", name="Checkout").click()
    fill_checkout(phone, token="tok_visa")
    shot(phone, "checkout")
    assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    phone.get_by_role("button", name=re.compile("Place order")).click()
    expect(phone.get_by_test_id("order-status")).to_have_text("Shipped", timeout=SAGA_TIMEOUT_MS)
    shot(phone, "order")
    assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    problems.assert_none()


@pytest.mark.parametrize("url", ["/api/docs/", "/admin/login/", "/accounts/signup/", "/cart/", "/healthz"])
def test_other_pages_render_without_console_errors_or_csp_violations(saga, page, problems, shot, url):
    page.goto(url)
    page.wait_for_load_state("networkidle")
    shot(page, "page")
    problems.assert_none()
    if url == "/api/docs/":
        expect(page.get_by_role("heading", name=re.compile("Shop API"))).to_be_visible()
        expect(page.get_by_text("/api/orders/").first).to_be_visible()
