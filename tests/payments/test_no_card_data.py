"""Card data is never stored nor logged: only provider tokens and references."""

import logging
import re

import pytest
from django.core.management import call_command

from orders.models import Order
from tests.factories import ProductFactory, order_body
from tests.worker import wait_for_terminal

CARD_NUMBERS = ["4242424242424242", "4111 1111 1111 1111", "5555-5555-5555-4444"]
# 13 to 19 digits in one run, or in groups of four split by spaces or dashes, standing alone:
# not inside a hex token or a UUID, nor a MIME boundary (``===============8657024422578438084==``,
# in the customer's emails that the console backend writes into the worker's log).
DIGIT_RUN = re.compile(r"(?<![0-9A-Za-z=-])(?:\d{13,19}|\d{4}(?:[ -]\d{4}){3}\d{0,3})(?![0-9A-Za-z-])")


def luhn_valid(digits: str) -> bool:
    total = 0
    for i, d in enumerate(int(c) for c in reversed(digits)):
        total += d if i % 2 == 0 else (d * 2 - 9 if d * 2 > 9 else d * 2)
    return total % 10 == 0


def card_numbers_in(text: str) -> list[str]:
    found = []
    for match in DIGIT_RUN.finditer(text):
        digits = re.sub(r"\D", "", match.group())
        if 13 <= len(digits) <= 19 and luhn_valid(digits):
            found.append(digits)
    return found


def test_the_detector_finds_what_it_must():
    assert card_numbers_in("paid with 4111 1111 1111 1111 ok") == ["4111111111111111"]
    assert card_numbers_in("order 123456789012 total 10") == []
    assert card_numbers_in("token a4111111111111111f") == []
    assert card_numbers_in("id 41111111-1111-1111-1111-111111111111") == []
    assert card_numbers_in('boundary="===============4111111111111111=="') == []


@pytest.mark.saga
def test_card_numbers_are_refused_and_no_card_number_is_stored_or_logged(saga, api, caplog, tmp_path):
    caplog.set_level(logging.DEBUG)
    product = ProductFactory(stock=10)

    # when a client sends card numbers instead of a token, they are refused and not echoed
    for number in CARD_NUMBERS:
        response = api.post("/api/orders/", order_body(product, token=number), format="json")
        assert response.status_code == 400
        assert number not in response.content.decode()
    assert not Order.objects.exists()

    # and orders paid with tokens run their sagas to the end
    ids = [
        api.post("/api/orders/", order_body(product, token=t), format="json").json()["id"]
        for t in ("tok_visa", "tok_decline")
    ]
    wait_for_terminal(ids)

    # then no card number is anywhere in the database, the logs or the worker's log
    dump = tmp_path / "dump.json"
    call_command("dumpdata", output=str(dump), verbosity=0)
    assert card_numbers_in(dump.read_text()) == []
    assert card_numbers_in(caplog.text) == []
    assert card_numbers_in(saga.log_path.read_text()) == []
