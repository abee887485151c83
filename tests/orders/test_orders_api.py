"""POST/GET /api/orders/: validation, ownership, idempotency keys, cancel rules."""

from decimal import Decimal
from uuid import uuid4

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from core.models import IdempotencyRecord
from orders.models import Order, Status
from tests.factories import ProductFactory, UserFactory, order_body


@pytest.fixture
def mug(db):
    return ProductFactory(sku="MUG-1", price=Decimal("12.50"), stock=10)


def test_placing_an_order_prices_it_from_the_catalog_and_answers_201_with_location(api, mug):
    # when a customer sends a price, a total, a status and a user of their own choosing
    body = order_body(mug, quantity=3) | {"total": "0.01", "status": "completed", "user": 999}
    body["items"][0]["price"] = "0.01"
    response = api.post("/api/orders/", body, format="json")

    # then the catalog decides the price and the order starts pending
    assert response.status_code == 201
    data = response.json()
    assert response["Location"].endswith(f"/api/orders/{data['id']}/")
    assert data["status"] == "pending"
    assert data["total"] == "37.50"
    assert data["items"] == [
        {"sku": "MUG-1", "name": mug.name, "quantity": 3, "unit_price": "12.50", "line_total": "37.50"}
    ]
    assert data["payment"] is None and data["shipment"] is None
    assert [s["name"] for s in data["steps"]] == [
        "reserve_stock:MUG-1",
        "screen_order",
        "charge_payment",
        "create_shipment",
    ]
    assert Order.objects.get().user.username != "999"


def test_the_201_body_is_the_order_as_a_get_reads_it_and_is_built_without_reading_it_back(api, mug):
    # given a second product, so the order has lines in a given order
    tee = ProductFactory(sku="TEE-2", price=Decimal("20.00"), stock=5)

    # when an order is placed
    with CaptureQueriesContext(connection) as placing:
        response = api.post("/api/orders/", order_body(mug, tee, quantity=2), format="json")

    # then the request read only the caller's token and the catalog
    selects = [q["sql"] for q in placing.captured_queries if q["sql"].startswith("SELECT")]
    assert len(selects) == 2, selects
    # and its body is what GET /api/orders/<id>/ answers
    assert response.status_code == 201
    assert response.json() == api.get(f"/api/orders/{response.json()['id']}/").json()


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda b: b.update(items=[]), "items"),
        (lambda b: b["items"].append(dict(b["items"][0])), "items"),
        (lambda b: b["items"][0].update(sku="NOPE-404"), "items"),
        (lambda b: b["items"][0].update(quantity=0), "items"),
        (lambda b: b["items"][0].update(quantity=101), "items"),
        (lambda b: b["items"][0].update(quantity="many"), "items"),
        (lambda b: b["shipping_address"].pop("city"), "shipping_address"),
        (lambda b: b["shipping_address"].update(country="XX"), "shipping_address"),
        (lambda b: b.update(shipping_address="nowhere"), "shipping_address"),
        (lambda b: b.update(payment_token="4242424242424242"), "payment_token"),
        (lambda b: b.pop("payment_token"), "payment_token"),
        (lambda b: b.update(items={"sku": "MUG-1"}), "items"),
    ],
)
def test_bad_order_input_is_a_400_naming_the_field_and_creates_nothing(api, mug, mutate, field):
    body = order_body(mug)
    mutate(body)
    response = api.post("/api/orders/", body, format="json")
    assert response.status_code == 400
    assert field in response.json()
    assert not Order.objects.exists()


@pytest.mark.parametrize(
    "raw", [b"{not json", b"[]", b'"text"', b"null", b'{"items": null}', b'{"items": [null]}', b"\xff\xfe"]
)
def test_malformed_bodies_get_a_400_never_a_500(api, mug, raw):
    response = api.post("/api/orders/", raw, content_type="application/json")
    assert response.status_code == 400
    assert response["Content-Type"].startswith("application/json")
    assert not Order.objects.exists()


def test_orders_need_authentication(anonymous, mug):
    assert anonymous.post("/api/orders/", order_body(mug), format="json").status_code == 401
    assert anonymous.get("/api/orders/").status_code == 401


def test_customers_see_only_their_own_orders_and_staff_see_all(api, staff_api, mug):
    mine = api.post("/api/orders/", order_body(mug), format="json").json()["id"]
    other_user = UserFactory()
    from orders.services import OrderItem, order_place

    theirs = order_place(user=other_user, items=[OrderItem("MUG-1", 1)], shipping_address={}, payment_token="tok_visa")

    listed = api.get("/api/orders/").json()
    assert listed["count"] == 1 and listed["results"][0]["id"] == mine
    assert set(listed) == {"count", "next", "previous", "results"}
    assert api.get(f"/api/orders/{theirs.pk}/").status_code == 404
    assert api.post(f"/api/orders/{theirs.pk}/cancel/").status_code == 404
    assert api.get(f"/api/orders/{uuid4()}/").status_code == 404
    assert staff_api.get("/api/orders/").json()["count"] == 2


def test_orders_are_listed_newest_first_and_filter_by_status(api, mug):
    first = api.post("/api/orders/", order_body(mug), format="json").json()["id"]
    second = api.post("/api/orders/", order_body(mug), format="json").json()["id"]
    Order.objects.filter(pk=first).update(status=Status.CANCELLED)

    assert [o["id"] for o in api.get("/api/orders/").json()["results"]] == [second, first]
    assert [o["id"] for o in api.get("/api/orders/?status=cancelled").json()["results"]] == [first]
    assert api.get("/api/orders/?status=bogus").status_code == 400


def test_an_idempotency_key_replays_the_first_answer_and_creates_nothing_more(api, mug):
    body = order_body(mug, quantity=2)
    first = api.post("/api/orders/", body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    replay = api.post("/api/orders/", body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")

    assert first.status_code == replay.status_code == 201
    assert replay.json() == first.json()
    assert replay["Idempotent-Replayed"] == "true"
    assert replay["Location"] == first["Location"]
    assert "Idempotent-Replayed" not in first
    assert Order.objects.count() == 1


def test_the_same_key_with_another_body_is_a_422(api, mug):
    api.post("/api/orders/", order_body(mug, quantity=2), format="json", HTTP_IDEMPOTENCY_KEY="k-2")
    response = api.post("/api/orders/", order_body(mug, quantity=3), format="json", HTTP_IDEMPOTENCY_KEY="k-2")
    assert response.status_code == 422
    assert Order.objects.count() == 1


def test_a_replay_while_the_first_request_is_in_flight_is_a_409(api, customer, mug):
    # given the first request has claimed the key and not answered yet
    from core.idempotency import idempotency_claim, request_fingerprint

    body = order_body(mug)
    idempotency_claim(user=customer, scope="orders.create", key="k-3", fingerprint=request_fingerprint(body))
    # when the same request comes again, then it is told to wait
    response = api.post("/api/orders/", body, format="json", HTTP_IDEMPOTENCY_KEY="k-3")
    assert response.status_code == 409
    assert not Order.objects.exists()


def test_keys_are_scoped_per_user_and_a_refused_request_frees_its_key(api, mug):
    other = UserFactory()
    from rest_framework.test import APIClient

    other_api = APIClient()
    other_api.force_authenticate(other)
    assert (
        other_api.post("/api/orders/", order_body(mug), format="json", HTTP_IDEMPOTENCY_KEY="shared").status_code == 201
    )
    bad = order_body(mug) | {"payment_token": "card"}
    assert api.post("/api/orders/", bad, format="json", HTTP_IDEMPOTENCY_KEY="shared").status_code == 400
    assert api.post("/api/orders/", order_body(mug), format="json", HTTP_IDEMPOTENCY_KEY="shared").status_code == 201
    assert Order.objects.count() == 2
    assert IdempotencyRecord.objects.count() == 2


def test_an_empty_or_overlong_idempotency_key_is_a_400(api, mug):
    assert api.post("/api/orders/", order_body(mug), format="json", HTTP_IDEMPOTENCY_KEY="x" * 256).status_code == 400
    assert api.post("/api/orders/", order_body(mug), format="json", HTTP_IDEMPOTENCY_KEY="").status_code == 400
    assert not Order.objects.exists()


def test_cancel_conflicts_with_finished_orders(api, mug):
    order_id = api.post("/api/orders/", order_body(mug), format="json").json()["id"]
    Order.objects.filter(pk=order_id).update(status=Status.COMPLETED)
    assert api.post(f"/api/orders/{order_id}/cancel/").status_code == 409
    Order.objects.filter(pk=order_id).update(status=Status.NEEDS_ATTENTION)
    assert api.post(f"/api/orders/{order_id}/cancel/").status_code == 409


def test_cancel_moves_a_running_order_to_compensating_on_customer_request(api, mug):
    order_id = api.post("/api/orders/", order_body(mug), format="json").json()["id"]
    response = api.post(f"/api/orders/{order_id}/cancel/")
    assert response.status_code == 202
    assert (response.json()["status"], response.json()["cancellation_reason"]) == ("compensating", "customer_request")
