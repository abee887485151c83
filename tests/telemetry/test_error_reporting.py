"""Errors reach Sentry only when SENTRY_DSN asks, and without secrets or personal data: a local
HTTP server stands in for Sentry and the test reads the envelopes the SDK sends it."""

import gzip
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import sentry_sdk
from celery import shared_task
from django.http import HttpRequest, HttpResponse
from django.test import Client
from django.urls import path

from telemetry.errors import error_reporting_setup
from tests.notifications.test_order_emails_saga import free_port

PASSWORD = "hunter2-correct-horse"
API_TOKEN = "5f0e6b2c9a7d4e1f8b3c"
EMAIL = "ada.lovelace@example.org"
STREET = "12 Analytical Engine Lane"
PAYMENT_TOKEN = "tok_visa_4242"
SESSION = "s3ss10nc00k1e"
SECRETS = (PASSWORD, API_TOKEN, EMAIL, STREET, PAYMENT_TOKEN, SESSION, "Analytical")


class CheckoutExploded(Exception):
    pass


def exploding_view(request: HttpRequest) -> HttpResponse:
    body = json.loads(request.body)  # a local variable the report's frames would show
    raise CheckoutExploded(f"could not charge {body['payment_token']} for {body['email']}")


urlpatterns = [path("explode/", exploding_view)]


@shared_task(name="tests.exploding_task")
def exploding_task(email: str, payment_token: str) -> None:
    raise CheckoutExploded(f"task failed for {email} paying with {payment_token}")


class FakeSentry(ThreadingHTTPServer):
    """Keeps every event of every envelope posted to it."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.raw: list[bytes] = []
        super().__init__(("127.0.0.1", free_port()), _EnvelopeHandler)


class _EnvelopeHandler(BaseHTTPRequestHandler):
    server: FakeSentry

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        self.server.raw.append(body)
        lines = body.split(b"\n")
        # an envelope: its header line, then (item header, item payload) pairs
        for header, payload in zip(lines[1::2], lines[2::2], strict=False):
            if json.loads(header).get("type") == "event":
                self.server.events.append(json.loads(payload))
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def sentry() -> Iterator[FakeSentry]:
    server = FakeSentry()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    assert error_reporting_setup(dsn=f"http://public@127.0.0.1:{server.server_port}/1", environment="test")
    try:
        yield server
    finally:
        sentry_sdk.get_client().close()
        sentry_sdk.init()  # no DSN: reporting off again for the tests after this one
        server.shutdown()
        server.server_close()


def assert_scrubbed(server: FakeSentry) -> None:
    sent = b"".join(server.raw).decode()
    leaked = [secret for secret in SECRETS if secret in sent]
    assert leaked == [], f"{leaked} reached Sentry"


def test_without_a_dsn_nothing_is_reported():
    assert error_reporting_setup(dsn="", environment="test") is False
    assert sentry_sdk.get_client().transport is None  # the settings of this run set no SENTRY_DSN


def test_a_view_error_reaches_sentry_without_secrets_or_personal_data(sentry, settings, db):
    settings.ROOT_URLCONF = __name__
    browser = Client(raise_request_exception=False, HTTP_AUTHORIZATION=f"Token {API_TOKEN}")
    browser.cookies["sessionid"] = SESSION
    body = {
        "username": "ada",
        "password": PASSWORD,
        "email": EMAIL,
        "payment_token": PAYMENT_TOKEN,
        "shipping_address": {"name": "Ada", "line1": STREET, "city": "London", "postal_code": "N1 9GU"},
    }

    response = browser.post("/explode/", json.dumps(body), content_type="application/json")
    sentry_sdk.flush(timeout=10)

    assert response.status_code == 500
    [event] = sentry.events
    assert event["exception"]["values"][-1]["type"] == "CheckoutExploded"
    assert event["request"]["data"]["username"] == "ada"  # the body arrives, its secrets masked
    assert event["environment"] == "test"
    assert_scrubbed(sentry)


def test_a_task_error_reaches_sentry_without_secrets_or_personal_data(sentry):
    result = exploding_task.apply(kwargs={"email": EMAIL, "payment_token": PAYMENT_TOKEN})
    sentry_sdk.flush(timeout=10)

    assert result.failed()
    [event] = sentry.events
    assert event["exception"]["values"][-1]["type"] == "CheckoutExploded"
    assert_scrubbed(sentry)
