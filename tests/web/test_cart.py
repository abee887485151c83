from decimal import Decimal

import pytest

from tests.factories import PASSWORD, ProductFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def mug():
    return ProductFactory(name="Enamel mug", price=Decimal("12.50"))


@pytest.fixture
def tee():
    return ProductFactory(name="Cotton tee", price=Decimal("24.00"))


def test_an_empty_cart_invites_to_shop(client):
    response = client.get("/cart/")

    assert "Your cart is empty" in response.content.decode()


def test_cart_total_is_computed_from_the_catalog(client, mug, tee):
    # given two products in the cart
    client.post(f"/products/{mug.sku}/", {"quantity": 2})
    client.post(f"/products/{tee.sku}/", {"quantity": 1})

    # when the price changes in the catalog
    tee.price = Decimal("20.00")
    tee.save()

    # then the cart shows the current price: 2 x 12.50 + 20.00
    html = client.get("/cart/").content.decode()
    assert "$45.00" in html


def test_adding_the_same_product_twice_adds_up(client, mug):
    client.post(f"/products/{mug.sku}/", {"quantity": 2})
    client.post(f"/products/{mug.sku}/", {"quantity": 3})

    assert client.session["cart"] == {mug.sku: 5}


def test_a_line_never_goes_above_100_units(client, mug):
    client.post(f"/products/{mug.sku}/", {"quantity": 90})
    client.post(f"/products/{mug.sku}/", {"quantity": 90})

    assert client.session["cart"] == {mug.sku: 100}


def test_changing_a_quantity(client, mug):
    client.post(f"/products/{mug.sku}/", {"quantity": 1})

    response = client.post(f"/cart/{mug.sku}/update/", {"quantity": 4})

    assert response.status_code == 302
    assert client.session["cart"] == {mug.sku: 4}


def test_quantity_zero_removes_the_line(client, mug, tee):
    client.post(f"/products/{mug.sku}/", {"quantity": 1})
    client.post(f"/products/{tee.sku}/", {"quantity": 1})

    client.post(f"/cart/{mug.sku}/update/", {"quantity": 0})

    assert client.session["cart"] == {tee.sku: 1}


def test_an_invalid_quantity_leaves_the_cart_alone(client, mug):
    client.post(f"/products/{mug.sku}/", {"quantity": 2})

    response = client.post(f"/cart/{mug.sku}/update/", {"quantity": -3}, follow=True)

    assert "Choose a quantity from 0 to 100" in response.content.decode()
    assert client.session["cart"] == {mug.sku: 2}


def test_removing_a_line(client, mug, tee):
    client.post(f"/products/{mug.sku}/", {"quantity": 1})
    client.post(f"/products/{tee.sku}/", {"quantity": 1})

    response = client.post(f"/cart/{mug.sku}/remove/", follow=True)

    html = response.content.decode()
    assert f"/products/{mug.sku}/" not in html and f"/products/{tee.sku}/" in html
    assert client.session["cart"] == {tee.sku: 1}


def test_cart_changes_need_post(client, mug):
    assert client.get(f"/cart/{mug.sku}/remove/").status_code == 405
    assert client.get(f"/cart/{mug.sku}/update/").status_code == 405


def test_a_product_gone_from_the_catalog_drops_out_of_the_cart(client, mug, tee):
    client.post(f"/products/{mug.sku}/", {"quantity": 1})
    client.post(f"/products/{tee.sku}/", {"quantity": 1})
    tee.delete()

    client.get("/cart/")  # the "added" messages are shown once
    html = client.get("/cart/").content.decode()

    assert "Cotton tee" not in html and "$12.50" in html


def test_the_cart_survives_login(client, customer, mug):
    # given a visitor who filled a cart before logging in
    client.post(f"/products/{mug.sku}/", {"quantity": 3})

    # when they log in
    response = client.post("/accounts/login/", {"username": customer.username, "password": PASSWORD})

    # then the cart is still there
    assert response.status_code == 302
    assert client.session["cart"] == {mug.sku: 3}


def test_the_header_counts_the_items_in_the_cart(client, mug):
    client.post(f"/products/{mug.sku}/", {"quantity": 3})

    html = client.get("/").content.decode()

    assert 'aria-label="3 items"' in html


def test_add_to_cart_caps_at_the_stock_and_says_so(client):
    # given a product with 3 left
    lamp = ProductFactory(name="Desk lamp", stock=3)

    # when a shopper asks for 5, then for 1 more
    first = client.post(f"/products/{lamp.sku}/", {"quantity": 5}, follow=True).content.decode()
    second = client.post(f"/products/{lamp.sku}/", {"quantity": 1}, follow=True).content.decode()

    # then the cart holds the 3 there are, and the page never claims more was added
    assert client.session["cart"] == {lamp.sku: 3}
    assert "Only 3 Desk lamp left: we added 3, so your cart holds all 3." in first
    assert "quantity 5" not in first
    assert "Your cart already holds all 3 Desk lamp we have: nothing more was added." in second
