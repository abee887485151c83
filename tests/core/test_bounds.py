"""No request makes unbounded work: search terms, order lines, the session cart (contract §3)."""

from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from orders.models import Order
from shop.cart import MAX_LINES
from tests.factories import ProductFactory, order_body


def test_a_search_with_a_thousand_terms_is_answered_and_bounded(anonymous, db):
    ProductFactory(name="Enamel mug")
    terms = " ".join(f"t{i}" for i in range(1000))
    with CaptureQueriesContext(connection) as queries:
        response = anonymous.get("/api/products/", {"search": f"mug {terms}"})
    assert response.status_code in (200, 400)
    likes = sum(query["sql"].upper().count("LIKE") for query in queries.captured_queries)
    assert likes <= 2 * 2 * 10  # name and description, count and page, ten terms at most


def test_a_search_term_of_ten_thousand_characters_is_no_error(anonymous, db):
    assert anonymous.get("/api/products/", {"search": "m" * 10_000}).status_code in (200, 400)


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
