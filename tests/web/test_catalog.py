from decimal import Decimal

import pytest

from shop.models import Product
from tests.factories import ProductFactory

pytestmark = pytest.mark.django_db


def test_catalog_lists_products_with_price_and_availability(client):
    # given products in stock, nearly gone and sold out
    ProductFactory(name="Enamel mug", price=Decimal("12.50"), stock=50)
    ProductFactory(name="Desk lamp", stock=3)
    ProductFactory(name="Espresso cups", stock=0)

    # when a visitor opens the catalog
    response = client.get("/")

    # then each product shows its price and availability
    html = response.content.decode()
    assert response.status_code == 200
    assert "Enamel mug" in html and "$12.50" in html
    assert "In stock" in html
    assert "Only 3 left" in html
    assert "Out of stock" in html


def test_search_narrows_the_catalog_by_name_or_description(client):
    # given two products
    ProductFactory(name="Enamel mug", description="For coffee")
    ProductFactory(name="Merino socks", description="Warm feet")

    # when searching by a word of the description
    response = client.get("/", {"q": "coffee"})

    # then only the matching product is listed
    html = response.content.decode()
    assert "Enamel mug" in html
    assert "Merino socks" not in html


def test_search_without_matches_says_so(client):
    ProductFactory(name="Enamel mug")

    response = client.get("/", {"q": "zeppelin"})

    assert "No products match" in response.content.decode()


def test_catalog_is_paginated(client):
    # given more products than fit on a page
    for i in range(15):
        ProductFactory(name=f"Item {i:02d}")

    # when the second page is opened
    first, second = client.get("/"), client.get("/", {"page": 2})

    # then the pages split the catalog and link to each other
    assert "Item 00" in first.content.decode() and "Item 14" not in first.content.decode()
    assert "Item 14" in second.content.decode()
    assert "Page 2 of 2" in second.content.decode()


def test_a_page_number_out_of_range_shows_the_last_page(client):
    ProductFactory(name="Only item")

    response = client.get("/", {"page": 99})

    assert response.status_code == 200
    assert "Only item" in response.content.decode()


def test_product_page_shows_the_add_to_cart_form(client, product):
    response = client.get(f"/products/{product.sku}/")

    html = response.content.decode()
    assert response.status_code == 200
    assert product.name in html
    assert 'name="quantity"' in html and "Add to cart" in html


def test_a_sold_out_product_cannot_be_added(client):
    product = ProductFactory(stock=0)

    html = client.get(f"/products/{product.sku}/").content.decode()

    assert "sold out" in html
    assert "Add to cart" not in html


def test_an_unknown_product_is_404(client):
    assert client.get("/products/NOPE/").status_code == 404


def test_adding_to_cart_redirects_to_the_cart(client, product):
    # when a visitor adds 2 units
    response = client.post(f"/products/{product.sku}/", {"quantity": 2})

    # then the cart holds them, priced from the catalog
    assert response.status_code == 302 and response["Location"] == "/cart/"
    cart = client.get("/cart/").content.decode()
    assert product.name in cart and 'value="2"' in cart and "$20.00" in cart


@pytest.mark.parametrize("quantity", ["0", "101", "abc", ""])
def test_adding_an_invalid_quantity_shows_the_error(client, product, quantity):
    response = client.post(f"/products/{product.sku}/", {"quantity": quantity})

    assert response.status_code == 200  # the form again, with its errors
    assert 'class="errorlist' in response.content.decode()
    assert client.session.get("cart", {}) == {}


def test_stock_is_not_taken_by_adding_to_cart(client, product):
    client.post(f"/products/{product.sku}/", {"quantity": 5})

    assert Product.objects.get(pk=product.pk).stock == 100
