"""No password reset token, API token or session id in the request spans, the access log, the
web's log lines or the order journal."""

import io
import logging
from collections.abc import Iterator
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.contrib.auth.tokens import default_token_generator
from django.test import Client
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.django import DjangoInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from rest_framework.test import APIClient

from accounts.services import user_token
from orders.models import OrderEvent
from telemetry.tracing import django_instrument
from tests.factories import ProductFactory, order_body
from tests.telemetry import collector as otlp

SANITIZE = "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SANITIZE_FIELDS"


@pytest.fixture
def exported(monkeypatch) -> Iterator[otlp.Collector]:
    """This process's requests traced as ``OTEL_*`` traces them, exported over OTLP/HTTP to the
    suite's collector, with the secret-bearing headers asked for too."""
    monkeypatch.setenv("OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_REQUEST", "Authorization,Cookie,User-Agent")
    monkeypatch.setenv(SANITIZE, "")
    monkeypatch.delenv(SANITIZE)  # the shop's default list applies (restored as it was afterwards)
    for collector in otlp.serve():
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{collector.url}/v1/traces")))
        django_instrument(tracer_provider=provider)
        try:
            yield collector
        finally:
            DjangoInstrumentor().uninstrument()
            provider.shutdown()


def test_no_reset_token_api_token_or_session_id_in_any_exported_span_attribute(exported, customer, db):
    # given a customer signed in in a browser, with an API token and a password reset link
    browser = Client()
    browser.force_login(customer)
    session_id = browser.cookies["sessionid"].value
    api_token = user_token(user=customer)
    uidb64 = urlsafe_base64_encode(force_bytes(customer.pk))
    reset_token = default_token_generator.make_token(customer)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {api_token}")

    # when the browser follows the reset link, and the API is called with the token (in its
    # header, and a careless client also in the query)
    reset_link, orders_url = f"/accounts/reset/{uidb64}/{reset_token}/", f"/api/orders/?access_token={api_token}"
    assert browser.get(reset_link, RAW_URI=reset_link).status_code == 302  # RAW_URI: as gunicorn sets it
    assert browser.get("/account/").status_code == 200
    assert api.get(orders_url, RAW_URI=orders_url).status_code == 200
    assert api.post("/api/orders/", order_body(ProductFactory()), format="json").status_code == 201

    # then the spans arrive at the collector without any of the three secrets
    spans = exported.wait_for(lambda spans: len(spans) >= 4)
    values = [str(value) for span in spans for value in span.attributes.values()]
    for secret in (reset_token, api_token, session_id):
        assert not [value for value in values if secret in value], secret
    # and still say which URL was asked for
    targets = {span.attributes.get("http.target") for span in spans}
    assert {f"/accounts/reset/{uidb64}/[redacted]/", "/api/orders/?access_token=[redacted]"} <= targets
    # the headers asked for are there, their values redacted
    (order_span,) = [s for s in spans if s.attributes.get("http.method") == "POST"]
    assert "[REDACTED]" in str(order_span.attributes["http.request.header.authorization"])
    # and the order's journal has none of them either
    journal = " ".join(str(line) for line in OrderEvent.objects.values())
    assert journal and api_token not in journal and session_id not in journal


def access_line(log_format: str, *, uri: str, headers: dict[str, str], referer: str = "-") -> str:
    """The line gunicorn's access log writes for one request, with the shop's gunicorn settings."""
    from gunicorn.config import Config

    from config import gunicorn as gunicorn_settings

    config = Config()
    config.set("access_log_format", log_format)
    logger = gunicorn_settings.logger_class(config)
    path, _, query = uri.partition("?")
    environ = {
        "REQUEST_METHOD": "GET",
        "RAW_URI": uri,
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_REFERER": referer,
        **{f"HTTP_{name.upper().replace('-', '_')}": value for name, value in headers.items()},
    }
    request = SimpleNamespace(headers=[(name.upper(), value) for name, value in headers.items()])
    response = SimpleNamespace(status="302 Found", sent=0, headers=[("Set-Cookie", "sessionid=s3ss10n; HttpOnly")])
    atoms = logger.atoms_wrapper_class(logger.atoms(response, request, environ, timedelta(milliseconds=12)))
    return str(config.access_log_format % atoms)


def test_the_access_log_keeps_the_request_and_loses_its_secrets():
    # given gunicorn's default (combined) format, and one that names every secret-bearing atom
    everything = '%(r)s %(U)s %(q)s "%(f)s" %({authorization}i)s %({cookie}i)s %({set-cookie}o)s %({http_cookie}e)s'

    for log_format in ('%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"', everything):
        # when a reset link is followed with a session and an API token
        line = access_line(
            log_format,
            uri="/accounts/reset/MQ/cy8x1b-0a1b2c3d4e5f/?token=t0ken",
            headers={"Authorization": "Token 4p1t0k3n", "Cookie": "sessionid=s3ss10n", "User-Agent": "curl"},
            referer="https://shop.example/accounts/verify/MQ/v3r1fy-0a1b/",
        )

        # then the line says what was asked, and none of the secrets
        assert "GET /accounts/reset/MQ/[redacted]/?token=[redacted] HTTP/1.1" in line
        for secret in ("cy8x1b-0a1b2c3d4e5f", "t0ken", "4p1t0k3n", "s3ss10n", "v3r1fy-0a1b"):
            assert secret not in line, (secret, line)


@pytest.mark.parametrize("logger_name", ["django.server", "django.request"])
def test_the_webs_request_log_lines_lose_the_reset_token(logger_name):
    # given the console handler every log line of the web goes through (runserver's django.server
    # and django.request's warnings alike)
    handler = next(h for h in logging.getLogger("django.server").handlers if isinstance(h, logging.StreamHandler))
    logger = logging.getLogger(logger_name)
    buffer = io.StringIO()
    # Set, not ``setStream``: that flushes the stream it replaces, which may be a stream pytest
    # captured for an earlier test and has closed since.
    previous, was_disabled = handler.stream, logger.disabled
    handler.stream, logger.disabled = buffer, False  # another test may have configured logging again, disabling it
    try:
        # when a request line names a reset link
        logger.warning('"%s" %s %s', "GET /accounts/reset/MQ/cy8x1b-0a1b2c/ HTTP/1.1", 404, 0)
    finally:
        handler.stream, logger.disabled = previous, was_disabled

    # then the line is written, without the token
    assert '"GET /accounts/reset/MQ/[redacted]/ HTTP/1.1" 404' in buffer.getvalue()
    assert "cy8x1b-0a1b2c" not in buffer.getvalue()
