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
from tests.factories import ProductFactory, order_body
from tests.orders.test_saga import place
from tests.sagas import ROOT, wait_for_terminal, wait_until_settled


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
def test_a_declined_card_is_logged_as_json_info_lines_with_the_order_and_no_error(special_worker, api, coordination):
    # given a worker logging JSON
    worker = special_worker(env={"LOG_FORMAT": "json"})
    mug = ProductFactory(price=Decimal("12.50"), stock=10)

    # when a customer's card is declined
    order_id = place(api, order_body(mug, token="tok_decline"))
    assert wait_for_terminal([order_id])[order_id].status == Status.CANCELLED
    wait_until_settled()  # the customer's email too

    # then every line about the order is one JSON object naming the order, step, attempt, service
    log = worker.log_path.read_text()
    about_the_order = [line for line in log.splitlines() if order_id in line]
    assert about_the_order
    for line in about_the_order:
        entry = json.loads(line)
        assert entry["order_id"] == order_id, line
        assert {"step", "attempt", "service"} <= entry.keys(), line
    # the decline is told once, at INFO, by the step that was refused
    refusals = [e for e in map(json.loads, about_the_order) if "refused" in e["message"]]
    assert [(e["level"], e["step"], e["service"], e["attempt"]) for e in refusals] == [
        ("INFO", "charge_payment", "payments", 1)
    ]
    # and nothing in the worker's log is an error, or a traceback
    entries = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    assert entries and not [e for e in entries if e["level"] in ("ERROR", "CRITICAL")]
    assert "Traceback" not in log
