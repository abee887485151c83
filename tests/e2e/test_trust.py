"""Issue 12 in a real browser, on a laptop and on a phone: catalog, account, checkout, order page, admin.

No Celery worker runs here: orders are put in the states under test directly, and the saga's
first messages are not sent (``quiet_saga``), so these pages are checked on their own.
"""

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.utils import timezone
from playwright.sync_api import expect

from orders.models import Order, Status
from payments.models import Payment
from sagas.models import SagaStep
from shop.models import Product
from tests import factories
from tests.factories import PASSWORD, CategoryFactory, ProductFactory, StaffFactory, UserFactory, with_image

DEVICES = ["laptop", "phone"]


@pytest.fixture(params=DEVICES)
def device(request):
    """The same test on a laptop viewport (1280x900) and a phone one (375x740)."""
    return request.getfixturevalue("page" if request.param == "laptop" else "phone")


@pytest.fixture
def quiet_saga(monkeypatch):
    """Placing or cancelling an order sends no message: no worker runs in these tests."""
    monkeypatch.setattr("orders.coordination.saga_start", lambda *args, **kwargs: None)
    monkeypatch.setattr("orders.coordination.compensation_start", lambda *args, **kwargs: None)


def fits_the_screen(page):
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def log_in(page, user, *, admin=False) -> None:
    page.goto("/admin/login/" if admin else "/accounts/login/")
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).not_to_have_url(re.compile("/login/"))


def place(user, *products, **address_overrides) -> Order:
    return factories.place(user, *products, token="tok_refund_fails", **address_overrides)


def test_catalog_with_pictures_categories_sorting_and_the_stock_filter(device, live_server, problems, shot):
    # given a catalog on two shelves, with pictures, one product sold out
    kitchen = CategoryFactory(name="Kitchen", slug="kitchen")
    desk = CategoryFactory(name="Desk", slug="desk")
    for name, price, stock, shelf in [
        ("Enamel camp mug", "12.50", 120, kitchen),
        ("Steel bottle", "27.50", 70, kitchen),
        ("Espresso cups", "21.00", 0, kitchen),
        ("Brass pen", "32.00", 25, desk),
        ("Desk lamp", "89.00", 8, desk),
    ]:
        with_image(ProductFactory(name=name, price=Decimal(price), stock=stock, category=shelf))

    # when a visitor opens the catalog
    device.goto("/")
    device.wait_for_load_state("networkidle")

    # then every card shows its picture, and the cards of a row line up
    pictures = device.locator("img.product-thumb")
    expect(pictures).to_have_count(5)
    for index in range(5):
        pictures.nth(index).scroll_into_view_if_needed()
        expect(pictures.nth(index)).to_have_js_property("complete", True)
        assert pictures.nth(index).evaluate("img => img.naturalWidth") == 480
    cards = device.locator(".product-card")
    tops = [cards.nth(i).bounding_box()["y"] for i in range(2)]
    if device.viewport_size["width"] > 720:
        assert tops[0] == tops[1]  # the first card used to sit 16 px above the others
    shot(device, "catalog-with-images")
    assert fits_the_screen(device)

    # when they open a category, sort by price (highest first) and keep what is in stock
    device.get_by_role("navigation", name="Categories").get_by_role("link", name="Kitchen").click()
    expect(device).to_have_url(re.compile("/categories/kitchen/$"))
    device.get_by_label("Sort by").select_option("-price")
    device.get_by_label("In stock only").check()
    device.get_by_role("button", name="Apply").click()

    # then the kitchen's products in stock are listed, dearest first, and the choices are kept
    expect(device.locator(".product-card h2")).to_have_text(["Steel bottle", "Enamel camp mug"])
    expect(device.get_by_label("Sort by")).to_have_value("-price")
    expect(device.get_by_label("In stock only")).to_be_checked()
    shot(device, "category-sorted-in-stock")
    assert fits_the_screen(device)

    # and a product's page shows its photo and its shelf
    device.get_by_role("link", name="Steel bottle").click()
    photo = device.get_by_role("img", name="Steel bottle")
    expect(photo).to_be_visible()
    assert photo.evaluate("img => img.naturalWidth") == 1200
    expect(device.locator(".breadcrumb").get_by_role("link", name="Kitchen")).to_be_visible()
    shot(device, "product-with-photo")
    assert fits_the_screen(device)
    problems.assert_none()


def test_account_page_password_change_and_reset_by_email(
    device, live_server, problems, shot, quiet_saga, settings, run_outbox, no_relay
):
    # given a customer with a past order, on a shop whose emails link to it
    settings.SITE_URL = live_server.url
    customer = UserFactory(username="ada", email="ada@example.com")
    place(customer, ProductFactory(), city="Berlin", postal_code="10115", country="DE")

    # when they open their account
    log_in(device, customer)
    device.get_by_role("link", name="Account").click()

    # then they see their details and last address, and change their password
    expect(device.get_by_role("heading", name="Your account")).to_be_visible()
    expect(device.get_by_test_id("account-details")).to_contain_text("ada@example.com")
    expect(device.get_by_text("10115 BERLIN")).to_be_visible()  # as the German post writes it
    shot(device, "account")
    assert fits_the_screen(device)
    device.get_by_label("Old password").fill(PASSWORD)
    device.get_by_label(re.compile(r"^New password:?$")).fill("analytical-engine-1843")
    device.get_by_label("New password confirmation").fill("analytical-engine-1843")
    device.get_by_role("button", name="Change password").click()
    expect(device.get_by_text("Your password was changed.")).to_be_visible()

    # when, signed out, they forget it and ask for a reset
    device.get_by_role("button", name=re.compile("Log out")).click()
    device.goto("/accounts/login/")
    device.get_by_role("link", name="Forgot your password?").click()
    device.get_by_label("Email").fill("ada@example.com")
    shot(device, "password-reset")
    device.get_by_role("button", name="Send the reset link").click()
    expect(device.get_by_role("heading", name="Check your email")).to_be_visible()

    # then the email (sent by a worker) has a link that lets them choose a new password
    run_outbox("accounts.password_reset_email")
    assert len(mail.outbox) == 1
    link = re.search(r"https?://\S+/accounts/reset/\S+/", mail.outbox[0].body).group(0)
    device.goto(link)
    device.get_by_label(re.compile(r"^New password:?$")).fill("difference-engine-1822")
    device.get_by_label("New password confirmation").fill("difference-engine-1822")
    device.get_by_role("button", name="Set my password").click()
    expect(device.get_by_role("heading", name="Your password is changed")).to_be_visible()
    customer.refresh_from_db()
    assert customer.check_password("difference-engine-1822")
    problems.assert_none()


def test_checkout_names_the_short_line_and_keeps_the_cart(device, live_server, problems, shot, quiet_saga):
    # given a returning customer with 5 prints in the cart, of which only 3 are left by now
    customer = UserFactory()
    place(customer, ProductFactory(), city="Berlin", postal_code="10115", country="DE")
    limited = ProductFactory(name="Limited print", stock=10)
    log_in(device, customer)
    device.goto(f"/products/{limited.sku}/")
    device.get_by_label("Quantity").fill("5")
    device.get_by_role("button", name="Add to cart").click()
    expect(device.get_by_test_id("cart-link")).to_contain_text("5")
    Product.objects.filter(pk=limited.pk).update(stock=3)

    # when they check out
    device.get_by_role("link", name="Checkout").click()

    # then the address of their last order is filled in, and the summary lines up with the form
    expect(device.get_by_label("City")).to_have_value("Berlin")
    expect(device.get_by_label("Country")).to_have_value("DE")
    if device.viewport_size["width"] > 720:
        form_top = device.locator(".checkout-form").bounding_box()["y"]
        assert device.locator(".summary").bounding_box()["y"] == form_top  # was 16 px lower
    device.get_by_role("button", name=re.compile("Place order")).click()

    # and placing it names the short line; no order is placed and the cart keeps its 5
    expect(device.get_by_test_id("checkout-problems")).to_contain_text("Limited print: you asked for 5, only 3 left.")
    expect(device).to_have_url(re.compile("/checkout/$"))
    expect(device.get_by_test_id("cart-link")).to_contain_text("5")
    shot(device, "checkout-short-line")
    assert fits_the_screen(device)
    assert Order.objects.filter(user=customer).count() == 1
    problems.assert_none()


def test_order_page_speaks_plainly_and_folds_the_timeline(device, live_server, problems, shot, quiet_saga):
    # given an order whose refund kept failing (needs attention)
    customer = UserFactory()
    order = place(
        customer,
        ProductFactory(name="Desk lamp", price=Decimal("89.00")),
        city="Berlin",
        postal_code="10115",
        country="DE",
    )
    SagaStep.objects.filter(saga_id=order.pk).update(
        status="succeeded", attempts=1, started_at=timezone.now(), finished_at=timezone.now()
    )
    SagaStep.objects.filter(saga_id=order.pk).filter(name="create_shipment").update(
        status="failed", error="AddressRejected: no such street"
    )
    SagaStep.objects.create(
        saga_id=order.pk, name="refund_payment", kind="compensation", position=101, status="failed", attempts=5,
        error="RefundFailed: ProviderUnavailable (attempt 5)",
    )  # fmt: skip
    Payment.objects.create(order_id=order.pk, status="refund_failed", amount=order.total, currency="USD")
    Order.objects.filter(pk=order.pk).update(status=Status.NEEDS_ATTENTION, cancellation_reason="shipping_failed")
    log_in(device, customer)

    # when they open it
    device.goto(f"/orders/{order.pk}/")

    # then it says, in plain words, what happens to their money, with no saga internals showing
    expect(device.get_by_test_id("status-headline")).to_have_text("Your order is cancelled; our staff are on it")
    expect(device.get_by_test_id("next-steps")).to_contain_text("We could not refund your payment of $89.00")
    expect(device.get_by_test_id("next-steps")).to_contain_text("Our staff have been told")
    expect(device.get_by_text("10115 BERLIN")).to_be_visible()
    expect(device.get_by_test_id("placed-at")).to_contain_text("UTC")
    expect(device.get_by_text(re.compile("RefundFailed"))).not_to_be_visible()
    shot(device, "order-needs-attention")

    # and the technical timeline is there, folded, and opens on demand
    device.get_by_text("Technical timeline").click()
    expect(device.get_by_text("RefundFailed: ProviderUnavailable (attempt 5)")).to_be_visible()
    shot(device, "order-timeline-unfolded")
    assert fits_the_screen(device)
    problems.assert_none()


def test_the_opened_timeline_stays_open_while_the_page_updates_and_cancel_asks_first(
    device, live_server, problems, shot, quiet_saga
):
    # given a running order
    customer = UserFactory()
    order = place(customer, ProductFactory(name="Brass pen"))
    log_in(device, customer)
    device.goto(f"/orders/{order.pk}/")
    expect(device.get_by_test_id("status-headline")).to_have_text("We have your order")

    # when the customer opens the technical timeline while the page polls for updates
    device.get_by_text("Technical timeline").click()
    with device.expect_response(re.compile("/live/$")):
        pass
    with device.expect_response(re.compile("/live/$")):
        pass

    # then it stays open
    expect(device.get_by_test_id("technical-timeline")).to_have_js_property("open", True)
    expect(device.get_by_text("placed the order")).to_be_visible()

    # when they cancel, a confirmation page asks first
    device.get_by_role("link", name="Cancel order").click()
    expect(device.get_by_role("heading", name=re.compile("Cancel order #"))).to_be_visible()
    shot(device, "cancel-confirmation")
    assert Order.objects.get(pk=order.pk).status == Status.PENDING
    device.get_by_role("button", name="Yes, cancel my order").click()

    # then the order is being cancelled
    expect(device.get_by_test_id("status-headline")).to_have_text("We are cancelling your order")
    assert Order.objects.get(pk=order.pk).status == Status.COMPENSATING
    problems.assert_none()


def test_my_orders_shows_status_and_total(device, live_server, problems, shot, quiet_saga):
    customer = UserFactory()
    place(customer, ProductFactory(price=Decimal("1234.50")))
    log_in(device, customer)

    device.goto("/orders/")

    width = device.viewport_size["width"]
    for cell in (device.locator(".orders-table .badge").first, device.get_by_text("$1234.50")):
        expect(cell).to_be_visible()
        box = cell.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= width  # on screen, not cut off
    shot(device, "my-orders")
    assert fits_the_screen(device)
    problems.assert_none()


def test_admin_order_page_for_staff(device, live_server, problems, shot, quiet_saga):
    # given an order that needs attention, and a staff member
    staff = StaffFactory(username="support")
    order = place(UserFactory(), ProductFactory(name="Desk lamp"), city="Berlin", postal_code="10115", country="DE")
    Order.objects.filter(pk=order.pk).update(
        status=Status.NEEDS_ATTENTION, cancellation_reason="shipping_failed",
        progressed_at=timezone.now() - timedelta(hours=1),
    )  # fmt: skip
    place(UserFactory(), ProductFactory())  # another order, not to be found
    short = str(order.pk)[:8]
    log_in(device, staff, admin=True)

    # when they search for the number the customer quoted
    device.goto("/admin/orders/order/")
    device.locator("#searchbar").fill(f"#{short}")
    device.locator("#changelist-search").get_by_role("button", name="Search").click()
    expect(device.locator("#result_list tbody tr")).to_have_count(1)
    device.locator("#result_list tbody tr").get_by_role("link", name=f"#{str(order.pk)[:8]}").click()

    # then the page offers only what applies, says what it does, and shows the address formatted
    tools = device.locator(".object-tools")
    expect(tools.get_by_role("link", name="Retry compensation")).to_be_visible()
    expect(tools.get_by_role("link", name="Retry saga")).to_have_count(0)
    expect(tools.get_by_role("link", name="Cancel and compensate")).to_have_count(0)
    expect(device.get_by_text("Runs the undo steps that gave up")).to_be_visible()
    expect(device.locator("address")).to_contain_text("10115 BERLIN")

    # when they add a note
    device.get_by_label("Add a note").fill("Customer phoned; refunding by hand.")
    device.get_by_role("button", name="Add note").click()

    # then it is in the timeline with their name
    expect(device.get_by_text("Note added to the timeline.")).to_be_visible()
    row = device.locator("tr", has_text="Staff note: Customer phoned; refunding by hand.")
    expect(row).to_contain_text("support")
    shot(device, "admin-order")
    problems.assert_none()
