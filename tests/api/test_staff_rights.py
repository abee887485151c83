"""Staff rights in the API are Django's model permissions; ``is_staff`` alone grants nothing.

Each right, granted and refused, for a customer, a staff member without permissions, a staff
member with exactly one permission, and a superuser (contract §3).
"""

from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from orders.models import Order, Status
from orders.services import OrderItem, order_place
from shop.models import Product
from tests.factories import ProductFactory, StaffFactory, StaffMemberFactory, UserFactory, address

PERMISSIONS = [
    "shop.add_product",
    "shop.change_product",
    "orders.view_order",
    "orders.cancel_order",
    "payments.view_providertransaction",
]


def make_user(who: str):
    if who == "customer":
        return UserFactory()
    if who == "staff":
        return StaffMemberFactory()
    if who == "superuser":
        return StaffFactory()
    return StaffMemberFactory(permissions=who.split("+"))


def client_of(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def someone_elses_order(product: Product) -> Order:
    return order_place(
        user=UserFactory.create(),
        items=[OrderItem(product.sku, 1)],
        shipping_address=address(),
        payment_token="tok_visa",
    )


@pytest.fixture
def mug(db):
    return ProductFactory(sku="MUG-1", price=Decimal("12.50"), stock=10)


WHO = ["customer", "staff", *PERMISSIONS, "superuser"]


@pytest.mark.parametrize("who", WHO)
def test_creating_a_product_needs_add_product(who, db):
    client = client_of(make_user(who))
    response = client.post(
        "/api/products/", {"sku": "NEW-1", "name": "New", "price": "5.00", "stock": 1}, format="json"
    )
    allowed = who in {"shop.add_product", "superuser"}
    assert response.status_code == (201 if allowed else 403)
    assert Product.objects.filter(sku="NEW-1").exists() == allowed


@pytest.mark.parametrize("who", WHO)
def test_changing_a_product_needs_change_product(who, mug):
    client = client_of(make_user(who))
    response = client.patch(f"/api/products/{mug.sku}/", {"price": "0.01"}, format="json")
    allowed = who in {"shop.change_product", "superuser"}
    assert response.status_code == (200 if allowed else 403)
    mug.refresh_from_db()
    assert mug.price == (Decimal("0.01") if allowed else Decimal("12.50"))


@pytest.mark.parametrize("who", WHO)
def test_everyone_reads_the_catalog(who, mug):
    assert client_of(make_user(who)).get(f"/api/products/{mug.sku}/").status_code == 200


@pytest.mark.parametrize("who", WHO)
def test_seeing_every_order_needs_view_order_otherwise_one_sees_ones_own(who, mug):
    user = make_user(who)
    theirs = someone_elses_order(mug)
    mine = order_place(user=user, items=[OrderItem(mug.sku, 1)], shipping_address=address(), payment_token="tok_visa")
    client = client_of(user)

    listed = {order["id"] for order in client.get("/api/orders/").json()["results"]}
    other = client.get(f"/api/orders/{theirs.pk}/")

    if who in {"orders.view_order", "superuser"}:
        assert listed == {str(mine.pk), str(theirs.pk)}
        assert other.status_code == 200
        assert other.json()["shipping_address"]["line1"] == address()["line1"]
    else:
        assert listed == {str(mine.pk)}
        assert other.status_code == 404
    assert client.get(f"/api/orders/{mine.pk}/").status_code == 200


@pytest.mark.parametrize(
    ("who", "expected"),
    [
        ("customer", 404),
        ("staff", 404),
        ("orders.cancel_order", 404),  # cannot see it: not found, as for a customer
        ("orders.view_order", 403),  # sees it, may not cancel it
        ("orders.view_order+orders.cancel_order", 202),
        ("superuser", 202),
    ],
)
def test_cancelling_another_customers_order_needs_cancel_order(who, expected, mug):
    theirs = someone_elses_order(mug)
    response = client_of(make_user(who)).post(f"/api/orders/{theirs.pk}/cancel/")
    assert response.status_code == expected
    theirs.refresh_from_db()
    assert theirs.status == (Status.COMPENSATING if expected == 202 else Status.PENDING)


@pytest.mark.parametrize("who", ["customer", "staff", "superuser"])
def test_everyone_cancels_their_own_order(who, mug):
    user = make_user(who)
    mine = order_place(user=user, items=[OrderItem(mug.sku, 1)], shipping_address=address(), payment_token="tok_visa")
    assert client_of(user).post(f"/api/orders/{mine.pk}/cancel/").status_code == 202
    mine.refresh_from_db()
    assert (mine.status, mine.cancellation_reason) == (Status.COMPENSATING, "customer_request")


@pytest.mark.parametrize("who", WHO)
def test_the_payment_ledger_needs_view_providertransaction(who, mug):
    theirs = someone_elses_order(mug)
    response = client_of(make_user(who)).get(f"/api/payments/transactions/?order={theirs.pk}")
    allowed = who in {"payments.view_providertransaction", "superuser"}
    assert response.status_code == (200 if allowed else 403)


def test_the_ledger_refuses_before_it_validates(db):
    # a staff member without the right learns nothing, not even which parameters are wrong
    assert client_of(StaffMemberFactory()).get("/api/payments/transactions/").status_code == 403


def test_an_anonymous_caller_is_asked_to_authenticate(mug):
    anonymous = APIClient()
    assert anonymous.post("/api/products/", {"sku": "X"}, format="json").status_code == 401
    assert anonymous.get(f"/api/payments/transactions/?order={someone_elses_order(mug).pk}").status_code == 401
