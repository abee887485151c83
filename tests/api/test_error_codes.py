"""Every API error carries a stable ``code`` beside its ``detail`` (issue 32, item 4).

One real request per code of ``core.errors.ErrorCode``, and the codes of a ``400``'s fields,
each where a client meets it.
"""

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from rest_framework import exceptions
from rest_framework.test import APIClient

from core.errors import STATUS_OF, ErrorCode
from core.idempotency import idempotency_claim, request_fingerprint
from orders.api import AddressInput
from orders.models import Order, Status
from shop.models import Product
from shop.services import product_update
from tests.factories import ProductFactory, StaffMemberFactory, order_body, post_order


@dataclass
class Given:
    api: APIClient  # the customer's, with a token
    anonymous: APIClient
    raw: Client  # the customer's, answering a server error as a client would get it
    customer: Any
    product: Product
    settings: Any
    monkeypatch: pytest.MonkeyPatch


@pytest.fixture
def given(api, anonymous, customer, product, settings, monkeypatch) -> Given:
    raw = Client(raise_request_exception=False)
    raw.force_login(customer)
    return Given(api, anonymous, raw, customer, product, settings, monkeypatch)


def _place(g: Given, body: dict[str, Any] | None = None, **headers: str) -> Any:
    body = order_body(g.product) if body is None else body
    return g.api.post("/api/orders/", body, format="json", headers=headers)


def _authentication_failed(g: Given) -> Any:
    g.anonymous.credentials(HTTP_AUTHORIZATION="Token not-a-token")
    return g.anonymous.get("/api/orders/")


def _order_not_cancellable(g: Given) -> Any:
    order_id = post_order(g.api, order_body(g.product))
    Order.objects.filter(pk=order_id).update(status=Status.COMPLETED)
    return g.api.post(f"/api/orders/{order_id}/cancel/")


def _order_not_in_review(g: Given) -> Any:
    order_id = post_order(g.api, order_body(g.product))  # pending: its screening has not even run
    staff: Any = StaffMemberFactory(permissions=["orders.view_order", "risk.review_order"])
    reviewer = APIClient()
    reviewer.force_authenticate(staff)
    return reviewer.post(f"/api/orders/{order_id}/review/", {"decision": "approve"}, format="json")


def _idempotency_request_in_flight(g: Given) -> Any:
    body = order_body(g.product)
    # the first request with the key has claimed it and is still running
    idempotency_claim(user=g.customer, scope="orders.create", key="k-1", fingerprint=request_fingerprint(body))
    return _place(g, body, **{"Idempotency-Key": "k-1"})


def _idempotency_key_reused(g: Given) -> Any:
    assert _place(g, order_body(g.product, quantity=1), **{"Idempotency-Key": "k-1"}).status_code == 201
    return _place(g, order_body(g.product, quantity=2), **{"Idempotency-Key": "k-1"})


def _payload_too_large(g: Given) -> Any:
    g.settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1_000
    return _place(g, order_body(g.product) | {"payment_token": "tok_" + "x" * 2_000})


def _throttled(g: Given) -> Any:
    g.settings.RATE_LIMITS = True
    from django.core.cache import cache

    cache.clear()
    for _ in range(30):  # the order_create limit, counted whatever the answer
        assert _place(g, {}).status_code == 400
    return _place(g, {})


def _server_error(g: Given) -> Any:
    def broken(**kwargs: Any) -> Any:
        raise RuntimeError("a bug")

    g.monkeypatch.setattr("orders.selectors.order_list", broken)
    return g.raw.get("/api/orders/")


class BrokerDown(exceptions.APIException):
    """A library's exception: a status, and a code that is not one of the API's."""

    status_code = 503
    default_detail = "The broker is down."
    default_code = "broker_down"


def _service_unavailable(g: Given) -> Any:
    def down(**kwargs: Any) -> Any:
        raise BrokerDown()

    g.monkeypatch.setattr("orders.selectors.order_list", down)
    return g.api.get("/api/orders/")


CASES: dict[ErrorCode, Callable[[Given], Any]] = {
    ErrorCode.VALIDATION_ERROR: lambda g: _place(g, {"items": [{"sku": "NOPE-1", "quantity": 1}]}),
    ErrorCode.PARSE_ERROR: lambda g: g.api.post("/api/orders/", "{", content_type="application/json"),
    ErrorCode.BAD_REQUEST: lambda g: g.anonymous.get("/api/products/?search=%00"),
    ErrorCode.NOT_AUTHENTICATED: lambda g: g.anonymous.get("/api/orders/"),
    ErrorCode.AUTHENTICATION_FAILED: _authentication_failed,
    ErrorCode.PERMISSION_DENIED: lambda g: g.api.patch(f"/api/products/{g.product.sku}/", {"price": "1.00"}),
    ErrorCode.NOT_FOUND: lambda g: g.api.get(f"/api/orders/{uuid.uuid4()}/"),
    ErrorCode.METHOD_NOT_ALLOWED: lambda g: g.api.delete(f"/api/orders/{uuid.uuid4()}/"),
    ErrorCode.NOT_ACCEPTABLE: lambda g: g.anonymous.get("/api/products/", HTTP_ACCEPT="text/html"),
    ErrorCode.ORDER_NOT_CANCELLABLE: _order_not_cancellable,
    ErrorCode.ORDER_NOT_IN_REVIEW: _order_not_in_review,
    ErrorCode.IDEMPOTENCY_REQUEST_IN_FLIGHT: _idempotency_request_in_flight,
    ErrorCode.PAYLOAD_TOO_LARGE: _payload_too_large,
    ErrorCode.UNSUPPORTED_MEDIA_TYPE: lambda g: g.api.post("/api/orders/", {"items": "1"}, format="multipart"),
    ErrorCode.IDEMPOTENCY_KEY_REUSED: _idempotency_key_reused,
    ErrorCode.THROTTLED: _throttled,
    ErrorCode.SERVER_ERROR: _server_error,
    ErrorCode.SERVICE_UNAVAILABLE: _service_unavailable,
}


def test_every_code_has_its_case():
    assert set(CASES) == set(ErrorCode)


@pytest.mark.parametrize("code", list(CASES), ids=str)
def test_each_error_answers_its_status_and_code(given, code):
    response = CASES[code](given)
    assert response.status_code == STATUS_OF[code], response.content
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["code"] == code, body
    assert isinstance(body["detail"], str) and body["detail"]
    assert ("errors" in body) == (response.status_code == 400)


def test_a_401_and_a_429_keep_their_headers(given):
    assert "WWW-Authenticate" in _authentication_failed(given)
    assert int(_throttled(given)["Retry-After"]) > 0


def test_a_locked_out_login_is_throttled_too(anonymous, customer, rate_limits):
    # given a client failing to log in (django-axes counts the failures, outside DRF's throttles)
    body = {"username": customer.username, "password": "wrong"}
    answers = [anonymous.post("/api/auth/token/", body, format="json") for _ in range(10)]
    # then the failure that locks it out says so with the same code as a throttle
    assert [answer.status_code for answer in answers] == [400] * 9 + [429]
    assert answers[-1].json()["code"] == ErrorCode.THROTTLED
    assert {answer.json()["code"] for answer in answers[:-1]} == {ErrorCode.VALIDATION_ERROR}


def field_codes(response: Any) -> dict[str, list[str]]:
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] == ErrorCode.VALIDATION_ERROR
    return {path: [error["code"] for error in errors] for path, errors in body["errors"].items()}


def test_a_400_keeps_each_fields_messages_beside_their_codes(api, product):
    # given an order of a SKU the catalog does not have
    body = order_body(product) | {"items": [{"sku": "NOPE-1", "quantity": 1}]}
    response = api.post("/api/orders/", body, format="json")
    # then the body names the problem by code and in words, where it always did too
    assert response.json() == {
        "detail": "Invalid input.",
        "code": "validation_error",
        "errors": {"items": [{"code": "unknown_sku", "detail": "Unknown SKU: NOPE-1."}]},
        "items": ["Unknown SKU: NOPE-1."],
    }
    assert not Order.objects.exists()


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda p: {"items": [{"sku": "NOPE-1", "quantity": 1}]}, {"items": ["unknown_sku"]}),
        (lambda p: {"items": [{"sku": p.sku, "quantity": 1}] * 2}, {"items": ["duplicate_sku"]}),
        (
            lambda p: {"items": [{"sku": p.sku, "quantity": 1}, {"sku": "X", "quantity": 101}]},
            {"items[1].quantity": ["max_value"]},
        ),
        (lambda p: {"items": [{"sku": p.sku, "quantity": 0}]}, {"items[0].quantity": ["min_value"]}),
        (lambda p: {"items": [{"quantity": 1}]}, {"items[0].sku": ["required"]}),
        (lambda p: {"items": []}, {"items.non_field_errors": ["empty"]}),  # DRF's list-level error
        (lambda p: {"payment_token": "tok_4111111111111111"}, {"payment_token": ["card_number"]}),
        (lambda p: {"coordination": "telepathy"}, {"coordination": ["invalid_choice"]}),
    ],
    ids=["unknown-sku", "duplicate-sku", "quantity-too-big", "quantity-zero", "no-sku", "no-items", "card", "mode"],
)
def test_an_orders_field_errors_carry_their_codes(api, product, change, expected):
    response = api.post("/api/orders/", order_body(product) | change(product), format="json")
    assert field_codes(response) == expected


def test_an_address_field_is_named_by_its_path(api, product):
    body = order_body(product)
    del body["shipping_address"]["postal_code"]
    body["shipping_address"]["country"] = "XX"
    assert field_codes(api.post("/api/orders/", body, format="json")) == {
        "shipping_address.postal_code": ["required"],
        "shipping_address.country": ["invalid_choice"],
    }


def test_an_order_over_the_shops_maximum_is_order_total_too_large(api):
    dear = ProductFactory(price=Decimal("20000.00"), stock=200)
    response = api.post("/api/orders/", order_body(dear, quantity=100), format="json")
    assert field_codes(response) == {"items": ["order_total_too_large"]}


def test_a_new_checks_own_code_reaches_the_client_untouched(api, product, monkeypatch):
    # given a check added to a field, raising a code of its own (as a postal code check would)
    def validate_postal_code(self: Any, value: str) -> str:
        if value == "12345":
            raise ValidationError("No such postal code in GB.", code="invalid_postal_code")
        return value

    monkeypatch.setattr(AddressInput, "validate_postal_code", validate_postal_code, raising=False)
    # then a request it refuses names that code, nothing else having changed
    response = api.post("/api/orders/", order_body(product, postal_code="12345"), format="json")
    assert field_codes(response) == {"shipping_address.postal_code": ["invalid_postal_code"]}
    assert response.json()["shipping_address"] == {"postal_code": ["No such postal code in GB."]}


def test_a_bad_idempotency_key_is_a_field_error(api, product):
    response = api.post("/api/orders/", order_body(product), format="json", headers={"Idempotency-Key": "k" * 256})
    assert field_codes(response) == {"Idempotency-Key": ["invalid"]}


def test_a_wrong_password_is_invalid_credentials(anonymous, customer):
    body = {"username": customer.username, "password": "wrong"}
    assert field_codes(anonymous.post("/api/auth/token/", body, format="json")) == {
        "non_field_errors": ["invalid_credentials"]
    }


def test_a_bad_filter_names_its_parameter_and_code(anonymous, db):
    assert field_codes(anonymous.get("/api/products/?in_stock=maybe")) == {"in_stock": ["invalid"]}
    assert field_codes(anonymous.get("/api/products/?ordering=stock")) == {"ordering": ["invalid_choice"]}


def test_stock_reserved_meanwhile_is_insufficient_stock(staff_api, db):
    # given staff who saw 5 units while 3 of them were reserved meanwhile
    product = ProductFactory(stock=2)
    # when they set the stock to 0 from what they saw
    with pytest.raises(ValidationError) as refused:
        product_update(product=product, changes={"stock": 0}, stock_seen=5)
    # then it would go negative: refused, with a code the API's handler passes on
    assert [error.code for error in refused.value.error_dict["stock"]] == ["insufficient_stock"]
    assert Product.objects.get(pk=product.pk).stock == 2
