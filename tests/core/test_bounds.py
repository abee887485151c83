"""No request makes unbounded work or overflows a column: search terms, order lines, the session
cart, money (contract §3)."""

from decimal import Decimal
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from core.bounds import integer_column_max
from core.models import IdempotencyRecord
from orders.models import Order, OrderLine
from orders.services import OrderItem, order_place
from outbox.models import OutboxMessage
from shop.cart import MAX_LINES
from shop.models import Product
from shop.services import product_update
from tests.factories import ProductFactory, order_body


def test_a_search_with_a_thousand_terms_is_answered_and_bounded(anonymous, db):
    ProductFactory(name="Enamel mug")
    terms = " ".join(f"t{i}" for i in range(1000))
    with CaptureQueriesContext(connection) as queries:
        response = anonymous.get("/api/products/", {"search": f"mug {terms}"})
    # the terms past the tenth are ignored: an answer, not a refusal
    assert response.status_code == 200
    assert response.json()["count"] == 0  # every term must match, and "t0" does not
    likes = sum(query["sql"].upper().count("LIKE") for query in queries.captured_queries)
    assert likes <= 2 * 2 * 10  # name and description, count and page, ten terms at most


def test_a_search_term_of_ten_thousand_characters_is_no_error(anonymous, db):
    ProductFactory(name="m" * 150)
    # the term is cut to its first hundred characters: an answer, and it finds the product
    response = anonymous.get("/api/products/", {"search": "m" * 10_000})
    assert response.status_code == 200
    assert response.json()["count"] == 1


def test_an_order_has_at_most_fifty_lines(api, db):
    products = [ProductFactory() for _ in range(51)]
    too_many = api.post("/api/orders/", order_body(*products), format="json")
    assert too_many.status_code == 400
    assert "items" in too_many.json()
    assert not Order.objects.exists()
    assert api.post("/api/orders/", order_body(*products[:50]), format="json").status_code == 201


def test_the_cart_keeps_only_catalog_skus(client, db):
    response = client.post(f"/cart/{'X' * 2000}/update/", {"quantity": 3}, follow=True)
    assert response.status_code == 200
    assert "not in your cart" in response.content.decode()
    assert client.session.get("cart", {}) == {}


def test_the_cart_holds_as_many_lines_as_one_order(db):
    browser = Client()
    products = [ProductFactory() for _ in range(MAX_LINES + 1)]
    for product in products[:MAX_LINES]:
        browser.post(f"/products/{product.sku}/", {"quantity": 1})
    response = browser.post(f"/products/{products[-1].sku}/", {"quantity": 1}, follow=True)
    assert "Your cart is full" in response.content.decode()
    assert len(browser.session["cart"]) == MAX_LINES
    # more of a product already in the cart is fine
    browser.post(f"/products/{products[0].sku}/", {"quantity": 2})
    assert browser.session["cart"][products[0].sku] == 3


# --- money: ORDER_MAX_TOTAL and what the columns hold (issue 34, finding 4) ----------------------

LARGEST_PRICE = Decimal("9999999999.99")  # what a product's price (and an order's total) holds


def nothing_written() -> bool:
    return not (Order.objects.exists() or OrderLine.objects.exists() or OutboxMessage.objects.exists())


def items_body(*lines: tuple[Product, int]) -> dict[str, Any]:
    return order_body(*(product for product, _ in lines)) | {
        "items": [{"sku": product.sku, "quantity": quantity} for product, quantity in lines]
    }


@pytest.mark.parametrize("limit", [Decimal("1000000.00"), LARGEST_PRICE])
@pytest.mark.parametrize("key", [None, "big-order"])
def test_an_order_of_exactly_order_max_total_is_placed_and_one_cent_more_is_a_400(api, settings, limit, key):
    # given the shop takes orders up to ``limit``, and products that add up to it
    settings.ORDER_MAX_TOTAL = limit
    dear, cent = ProductFactory(price=limit - Decimal("0.01"), stock=5), ProductFactory(price="0.01", stock=5)
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}

    # when the order costs one cent more than the limit
    too_much = api.post("/api/orders/", items_body((dear, 1), (cent, 2)), format="json", **headers)

    # then it is refused, in the contract's error shape, and nothing is written
    assert too_much.status_code == 400
    assert [(path, [e["code"] for e in errors]) for path, errors in too_much.json()["errors"].items()] == [
        ("items", ["order_total_too_large"])
    ]
    assert f"at most {limit:,.2f} USD" in too_much.json()["items"][0]
    assert nothing_written()

    # when it costs exactly the limit (with the same key: the refusal freed it)
    placed = api.post("/api/orders/", items_body((dear, 1), (cent, 1)), format="json", **headers)

    # then it is placed
    assert placed.status_code == 201, placed.json()
    assert Decimal(placed.json()["total"]) == limit
    assert Order.objects.get().total == limit


@pytest.mark.parametrize("key", [None, "largest"])
def test_the_dearest_product_at_the_most_units_a_line_takes_is_a_400_not_a_500(api, key):
    # given a product at the largest price the catalog holds
    dearest = ProductFactory(price=LARGEST_PRICE, stock=1000)
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}

    # when a customer orders 100 of it and 100 of another: far more than an order's total holds
    body = items_body((dearest, 100), (ProductFactory(price=LARGEST_PRICE), 100))
    response = api.post("/api/orders/", body, format="json", **headers)

    # then the answer says why, and nothing is written
    assert response.status_code == 400
    assert "one order may cost at most 1,000,000.00 USD" in response.json()["items"][0]
    assert nothing_written()
    assert not IdempotencyRecord.objects.exists()


def test_order_place_refuses_quantities_the_api_would_refuse(customer):
    product = ProductFactory()
    for quantity in (0, 101, 2**31):
        with pytest.raises(ValidationError, match="order 1 to 100 units"):
            order_place(
                user=customer, items=[OrderItem(product.sku, quantity)], shipping_address={}, payment_token="tok_visa"
            )
    assert nothing_written()


@pytest.mark.parametrize(
    ("configured", "error"),
    [("10000000000.00", "orders.E002"), ("0", "orders.E001"), ("12.345", "orders.E001"), ("NaN", "orders.E001")],
)
def test_the_system_check_refuses_an_order_max_total_the_database_cannot_hold(settings, configured, error):
    settings.ORDER_MAX_TOTAL = Decimal(configured)
    with pytest.raises(SystemCheckError, match=f"{error}.*ORDER_MAX_TOTAL"):
        call_command("check")


def test_the_system_check_takes_the_largest_total_the_database_holds(settings):
    settings.ORDER_MAX_TOTAL = LARGEST_PRICE
    call_command("check")  # raises SystemCheckError on any error


@pytest.mark.parametrize("price", ["10000000000.00", "99999999999.99", "1e20", "0.001"])
def test_a_price_the_column_cannot_hold_is_a_400_on_create_and_update(staff_api, price):
    ProductFactory(sku="P-1", price="10.00")
    body = {"sku": "P-2", "name": "Gold bar", "price": price, "stock": 1}

    created = staff_api.post("/api/products/", body, format="json")
    updated = staff_api.patch("/api/products/P-1/", {"price": price}, format="json")

    assert (created.status_code, updated.status_code) == (400, 400)
    assert "price" in created.json() and "price" in updated.json()
    assert list(Product.objects.values_list("sku", "price")) == [("P-1", Decimal("10.00"))]


def test_the_largest_price_the_column_holds_is_accepted(staff_api):
    body = {"sku": "P-2", "name": "Gold bar", "price": str(LARGEST_PRICE), "stock": 1}
    assert staff_api.post("/api/products/", body, format="json").status_code == 201
    assert Product.objects.get(sku="P-2").price == LARGEST_PRICE


def test_a_price_the_column_cannot_hold_is_a_form_error_in_the_admin(staff):
    product = ProductFactory(price="10.00", stock=5)
    browser = Client()
    browser.force_login(staff)
    form = {"sku": product.sku, "name": product.name, "description": "", "price": "10000000000.00",
            "currency": "USD", "stock_0": "5", "stock_1": "5", "category": "", "_save": "Save"}  # fmt: skip

    response = browser.post(f"/admin/shop/product/{product.pk}/change/", form)

    assert response.status_code == 200  # the form again, not a redirect
    assert "Ensure that there are no more than 12 digits in total." in response.content.decode()
    product.refresh_from_db()
    assert product.price == Decimal("10.00")


@pytest.mark.parametrize("beyond", [1, 2**64])
def test_stock_beyond_what_the_column_holds_is_a_form_error_in_the_admin(staff, beyond):
    # given a product with 5 units, and one being added
    product = ProductFactory(stock=5)
    stock = integer_column_max(Product, "stock") + beyond
    browser = Client()
    browser.force_login(staff)
    form = {"sku": product.sku, "name": product.name, "description": "", "price": "10.00", "currency": "USD",
            "stock_0": str(stock), "stock_1": "5", "category": "", "_save": "Save"}  # fmt: skip

    # when staff type a count larger than the database holds
    changed = browser.post(f"/admin/shop/product/{product.pk}/change/", form)
    added = browser.post("/admin/shop/product/add/", form | {"sku": "NEW-1", "stock_1": "0"})

    # then both forms come back with the error, and nothing changed
    assert (changed.status_code, added.status_code) == (200, 200)
    assert "Ensure this value is less than or equal to" in changed.content.decode()
    assert "Ensure this value is less than or equal to" in added.content.decode()
    assert list(Product.objects.values_list("sku", "stock")) == [(product.sku, 5)]


def test_a_stock_change_that_would_overflow_after_releases_is_refused(staff):
    # given a product at the most the column holds but one unit, seen by staff before a release
    most = integer_column_max(Product, "stock")
    product = ProductFactory(stock=most - 1)

    # when staff add one unit, while a release gave one back meanwhile
    Product.objects.filter(pk=product.pk).update(stock=most)
    with pytest.raises(ValidationError, match="Stock can be at most"):
        product_update(product=product, changes={"stock": most}, stock_seen=most - 1)

    # then the stock stays as the release left it
    assert Product.objects.get(pk=product.pk).stock == most
