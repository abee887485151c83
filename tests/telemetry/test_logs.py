"""Log lines an operator can grep: the order, step, attempt and service on every line about an
order; a declined card is an outcome (INFO), not an error; JSON with ``LOG_FORMAT=json``."""

import json
import logging
import subprocess
import sys
from decimal import Decimal

import pytest

from orders.models import Status
from telemetry.context import log_context
from telemetry.logs import ContextFilter, JsonFormatter, TextFormatter
from tests.factories import ProductFactory, order_body, post_order
from tests.worker import ROOT, wait_for_terminal, wait_until_settled


def a_record(message: str, *args: object, level: int = logging.INFO) -> logging.LogRecord:
    record = logging.LogRecord("shop.test", level, __file__, 1, message, args, None)
    assert ContextFilter().filter(record)
    return record


def test_a_line_written_inside_a_step_carries_its_order_step_attempt_and_service():
    # when a line is logged inside a step's context
    with log_context(saga_id="0b0e", step="charge_payment", service="payments"), log_context(attempt=2):
        record = a_record("charge_payment of %s refused: %s", "0b0e", "PaymentDeclined: card declined")

    # then the text line ends with its fields, and the JSON line has them at its top level
    text = TextFormatter().format(record)
    assert text.endswith(
        "charge_payment of 0b0e refused: PaymentDeclined: card declined "
        "[order_id=0b0e step=charge_payment service=payments attempt=2]"
    )
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "charge_payment of 0b0e refused: PaymentDeclined: card declined"
    assert (line["level"], line["logger"]) == ("INFO", "shop.test")
    assert {k: line[k] for k in ("order_id", "step", "attempt", "service")} == {
        "order_id": "0b0e",
        "step": "charge_payment",
        "attempt": 2,
        "service": "payments",
    }
    assert "telemetry_keys" not in line


def test_a_line_outside_any_operation_has_no_fields():
    record = a_record("Outbox relay started")
    assert TextFormatter().format(record).endswith("shop.test: Outbox relay started")
    assert "order_id" not in json.loads(JsonFormatter().format(record))


@pytest.mark.parametrize(
    ("variable", "value", "error"),
    [
        ("LOG_FORMAT", "xml", "LOG_FORMAT must be one of text, json"),
        ("OTEL_TRACES_URL", "http://jaeger:16686/trace/", "OTEL_TRACES_URL must contain {trace_id}"),
    ],
)
def test_a_bad_setting_is_a_clear_error_at_start(variable, value, error):
    run = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "config.settings.local", variable: value},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode != 0
    assert error in run.stderr


@pytest.mark.saga
@pytest.mark.parametrize(
    ("token", "postal_code", "status", "told"),
    [
        # a declined card: one line, by the step that was refused
        ("tok_decline", "N1 9GU", Status.CANCELLED, [("INFO", "charge_payment", 1, "refused: PaymentDeclined")]),
        # a rejected address, the same
        ("tok_visa", "00000", Status.CANCELLED, [("INFO", "create_shipment", 1, "refused: AddressRejected")]),
        # a provider down twice: two routine retries, then the charge goes through
        (
            "tok_flaky",
            "N1 9GU",
            Status.COMPLETED,
            [
                ("INFO", "charge_payment", 1, "retrying: ProviderUnavailable"),
                ("INFO", "charge_payment", 2, "retrying: ProviderUnavailable"),
            ],
        ),
    ],
)
def test_an_orders_outcomes_are_json_lines_naming_it_with_no_error(
    special_worker, api, coordination, token, postal_code, status, told
):
    # given a worker logging JSON
    worker = special_worker(env={"LOG_FORMAT": "json"})
    mug = ProductFactory(price=Decimal("12.50"), stock=10)

    # when a customer's order meets a refusal or a provider's hiccup
    order_id = post_order(api, order_body(mug, token=token, postal_code=postal_code))
    assert wait_for_terminal([order_id])[order_id].status == status
    wait_until_settled()  # the customer's email too

    # then every line about the order is one JSON object naming the order, step, attempt, service
    log = worker.log_path.read_text()
    about_the_order = [line for line in log.splitlines() if order_id in line]
    assert about_the_order
    for line in about_the_order:
        entry = json.loads(line)
        assert entry["order_id"] == order_id, line
        assert {"step", "attempt", "service"} <= entry.keys(), line
    # what happened is told at INFO, by the step it happened to, with its attempt
    outcomes = [e for e in map(json.loads, about_the_order) if f" of {order_id} " in e["message"]]
    assert [(e["level"], e["step"], e["attempt"]) for e in outcomes] == [t[:3] for t in told]
    for entry, (*_, words) in zip(outcomes, told, strict=True):
        assert words in entry["message"]
    # and nothing in the worker's log is an error, or a traceback
    entries = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    errors = [e for e in entries if e["level"] in ("ERROR", "CRITICAL")]
    assert entries and not errors, "\n".join(f"{e['message']}\n{e.get('exc_info', '')}" for e in errors)
    assert "Traceback" not in log
