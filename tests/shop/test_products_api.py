from decimal import Decimal

import pytest

from shop.models import Product
from tests.factories import ProductFactory


@pytest.fixture
def catalog(db):
    return [
        ProductFactory(sku="A-1", name="Apple mug", price=Decimal("9.00"), stock=3, description="stoneware"),
        ProductFactory(sku="B-2", name="Brass pen", price=Decimal("32.00"), stock=0),
        ProductFactory(sku="C-3", name="Canvas tote", price=Decimal("16.50"), stock=7, description="holds a mug"),
    ]


def test_products_are_public_paginated_with_decimal_prices(anonymous, catalog):
    data = anonymous.get("/api/products/").json()
    assert set(data) == {"count", "next", "previous", "results"}
    assert data["count"] == 3
    assert data["results"][0] == {
        "sku": "A-1",
        "name": "Apple mug",
        "description": "stoneware",
        "price": "9.00",
        "currency": "USD",
        "stock": 3,
    }


def test_search_filter_and_ordering(anonymous, catalog):
    def skus(query: str) -> list[str]:
        return [p["sku"] for p in anonymous.get(f"/api/products/{query}").json()["results"]]

    assert skus("?search=mug") == ["A-1", "C-3"]  # name or description
    assert skus("?in_stock=true") == ["A-1", "C-3"]
    assert skus("?ordering=-price") == ["B-2", "C-3", "A-1"]
    assert skus("?ordering=name") == ["A-1", "B-2", "C-3"]


def test_pages_of_products_with_the_same_name_never_repeat_or_skip_one(anonymous, db):
    # given more products of one name than a page holds, created in reverse SKU order
    skus = [f"SAME-{n:02d}" for n in range(25)]
    for sku in reversed(skus):
        ProductFactory(sku=sku, name="Same mug")

    # when the client walks the pages
    first = anonymous.get("/api/products/").json()
    second = anonymous.get(first["next"]).json()

    # then the SKU breaks the tie: every product once, in a fixed order
    assert [p["sku"] for p in first["results"] + second["results"]] == skus


def test_product_detail_by_sku(anonymous, catalog):
    assert anonymous.get("/api/products/B-2/").json()["price"] == "32.00"
    assert anonymous.get("/api/products/NOPE/").status_code == 404


def test_only_staff_write_products(api, staff_api, anonymous, catalog):
    new = {"sku": "D-4", "name": "Desk lamp", "price": "89.00", "stock": 5}
    assert anonymous.post("/api/products/", new, format="json").status_code == 401
    assert api.post("/api/products/", new, format="json").status_code == 403
    assert api.patch("/api/products/A-1/", {"price": "0.01"}, format="json").status_code == 403
    assert staff_api.post("/api/products/", new, format="json").status_code == 201
    assert staff_api.patch("/api/products/A-1/", {"stock": 9}, format="json").json()["stock"] == 9
    assert Product.objects.get(sku="A-1").price == Decimal("9.00")


@pytest.mark.parametrize(
    "bad",
    [{"price": "-1.00"}, {"price": "abc"}, {"stock": -1}, {"sku": "has space"}, {"sku": "A-1"}],
)
def test_invalid_products_are_refused(staff_api, catalog, bad):
    body = {"sku": "E-5", "name": "Thing", "price": "1.00", "stock": 1} | bad
    assert staff_api.post("/api/products/", body, format="json").status_code == 400
    assert Product.objects.count() == 3
