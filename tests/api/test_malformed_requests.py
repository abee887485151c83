"""Every answer under /api/ is JSON and none is a 500, whatever the request (contract §3)."""

import io
import json
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from orders.models import Order
from tests.factories import ProductFactory, order_body


@pytest.fixture
def raw(customer) -> Client:
    """A plain Django client that reports a server error as the 500 a real client would get."""
    client = Client(raise_request_exception=False)
    client.force_login(customer)
    return client


def assert_json_error(response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert isinstance(body, dict)
    assert body
    return body


def test_a_deeply_nested_body_is_a_400(api, product):
    for depth in (50, 100_000):
        body = "[" * depth + "]" * depth
        response = api.post("/api/orders/", body, content_type="application/json")
        assert "nested" in assert_json_error(response, 400)["detail"]
    assert not Order.objects.exists()


def test_a_body_over_the_upload_limit_is_a_413(api, product, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    body = '{"payment_token": "' + "x" * 20_000 + '"}'
    response = api.post("/api/orders/", body, content_type="application/json")
    assert "too large" in assert_json_error(response, 413)["detail"]


def chunked(body: bytes) -> dict[str, Any]:
    """The WSGI environment of a body sent without a Content-Length, as gunicorn dechunks one."""
    return {"CONTENT_LENGTH": "", "wsgi.input": io.BytesIO(body), "wsgi.input_terminated": True}


def test_a_body_over_the_limit_without_a_content_length_is_a_413(api, product, settings):
    # given a body whose size is only known once it is read (chunked transfer)
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    body = json.dumps(order_body(product) | {"payment_token": "x" * 20_000}).encode()
    # when it is posted
    response = api.generic("POST", "/api/orders/", content_type="application/json", **chunked(body))
    # then it is refused as too large, and nothing is created
    assert "too large" in assert_json_error(response, 413)["detail"]
    assert not Order.objects.exists()


def test_a_body_within_the_limit_without_a_content_length_is_read(api, product, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    body = json.dumps(order_body(product)).encode()
    response = api.generic("POST", "/api/orders/", content_type="application/json", **chunked(body))
    assert response.status_code == 201, response.content
    assert [item["sku"] for item in response.json()["items"]] == [product.sku]


def test_a_body_longer_than_its_content_length_is_cut_there(api, product):
    # given a Content-Length that ends the body inside its JSON
    body = ('{"payment_token": "' + "x" * 20_000 + '"}').encode()
    response = api.generic("POST", "/api/orders/", body, content_type="application/json", CONTENT_LENGTH="100")
    # then what was declared is read, which is not JSON
    assert "JSON parse error" in assert_json_error(response, 400)["detail"]
    assert not Order.objects.exists()


@pytest.mark.parametrize("character", ["\x00", "\x01", "\x1b", "\x7f", "\x85"])
def test_control_characters_in_a_body_are_a_400_and_never_reach_the_database(api, product, character):
    body = order_body(product) | {"payment_token": f"tok_visa{character}"}
    body["shipping_address"]["city"] = f"Lon{character}don"
    with CaptureQueriesContext(connection) as queries:
        response = api.post("/api/orders/", body, format="json")
    assert "control character" in assert_json_error(response, 400)["detail"]
    assert not [q for q in queries.captured_queries if "orders_order" in q["sql"]]
    # a control character in a key is refused too
    response = api.post("/api/orders/", {f"items{character}": []}, format="json")
    assert_json_error(response, 400)


def test_tabs_and_line_breaks_in_body_text_are_fine(staff_api, product):
    response = staff_api.patch(
        f"/api/products/{product.sku}/", {"description": "Line one.\r\nLine two:\tindented."}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["description"] == "Line one.\r\nLine two:\tindented."


@pytest.mark.parametrize(
    "url",
    [
        "/api/products/?search=%00",
        "/api/products/?search=mug%0Acup",
        "/api/products/?search%00=mug",
        "/api/orders/?status=pending%1b",
        "/api/products/SKU%00/",
        "/api/orders/%00/",
        "/api/products/%7F/",
    ],
)
def test_control_characters_in_a_path_or_query_are_a_400_before_any_database_query(anonymous, db, url):
    with CaptureQueriesContext(connection) as queries:
        response = anonymous.get(url)
    assert "control character" in assert_json_error(response, 400)["detail"]
    assert queries.captured_queries == []


def test_text_beyond_ascii_in_a_query_is_not_a_control_character(anonymous, db):
    # given products whose names hold "…" and "é"
    ProductFactory(sku="ELLIPSIS", name="Wait for it…")
    ProductFactory(sku="CAFE", name="Café cup")
    # "…" is E2 80 A6 in UTF-8: read as ISO-8859-1, as WSGI passes it, 0x80 would look like a control
    for url, sku in (("/api/products/?search=%E2%80%A6", "ELLIPSIS"), ("/api/products/?search=caf%C3%A9", "CAFE")):
        response = anonymous.get(url)
        # then the search is run on the text as sent, and finds its product
        assert response.status_code == 200, response.content
        assert [product["sku"] for product in response.json()["results"]] == [sku]


def test_a_control_character_in_a_header_is_a_400(api, product):
    response = api.post("/api/orders/", order_body(product), format="json", headers={"Idempotency-Key": "key\x00one"})
    assert "Idempotency-Key" in assert_json_error(response, 400)["detail"]
    assert not Order.objects.exists()


@pytest.mark.parametrize(
    "url", ["/api/nothing-here/", "/api/products/has.a.dot/", "/api/orders/not-a-uuid/", "/api/orders/x/y/z/"]
)
def test_unknown_api_urls_are_a_json_404(api, db, url):
    assert assert_json_error(api.get(url), 404) == {"detail": "Not found.", "code": "not_found"}
    assert assert_json_error(api.post(url.replace("orders", "nothing"), {}, format="json"), 404)


def test_pages_outside_the_api_keep_their_html_404(client, db):
    page = client.get("/no-such-page/")
    assert page.status_code == 404
    assert page["Content-Type"].startswith("text/html")


def test_a_form_or_multipart_body_is_a_415(api, product):
    response = api.post("/api/orders/", {"payment_token": "tok_visa"}, format="multipart")
    assert "Unsupported media type" in assert_json_error(response, 415)["detail"]
    response = api.post("/api/orders/", "items=1", content_type="application/x-www-form-urlencoded")
    assert_json_error(response, 415)


def test_a_browser_session_with_its_csrf_token_places_orders_in_json(customer, product):
    # given a browser signed in on the site, with CSRF checks on as in production
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(customer)
    browser.get("/")  # the shop's pages set the CSRF cookie
    token = browser.cookies["csrftoken"].value

    # when its script posts JSON with the CSRF header, the order is placed
    response = browser.post(
        "/api/orders/", order_body(product), content_type="application/json", headers={"X-CSRFToken": token}
    )
    assert response.status_code == 201, response.content
    # and without the header it is a JSON 403
    response = browser.post("/api/orders/", order_body(product), content_type="application/json")
    assert "CSRF" in assert_json_error(response, 403)["detail"]


def test_an_unhandled_error_under_the_api_is_a_json_500(raw, monkeypatch):
    def broken(**kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr("orders.selectors.order_list", broken)
    assert assert_json_error(raw.get("/api/orders/"), 500) == {
        "detail": "A server error occurred.",
        "code": "server_error",
    }


def test_a_suspicious_request_is_a_json_400(anonymous, db, settings):
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 5
    query = "&".join(f"f{i}=1" for i in range(10))
    assert_json_error(anonymous.get(f"/api/products/?{query}"), 400)
    response = anonymous.get("/api/products/", HTTP_HOST="evil.example.com")
    assert_json_error(response, 400)


def test_answers_are_json_even_when_a_browser_asks_for_html(anonymous, product):
    response = anonymous.get("/api/products/", HTTP_ACCEPT="text/html,application/xhtml+xml,*/*;q=0.8")
    assert response["Content-Type"] == "application/json"
    assert response.json()["count"] == 1
