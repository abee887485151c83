"""An ``Idempotency-Key`` whose first request runs longer than ``IDEMPOTENCY_IN_FLIGHT_SECONDS``
(issue 34, finding 5): its replay takes the claim over, and whichever finishes first, the key
places one order, nobody gets a 500, and both clients end up with that order."""

import threading
from datetime import timedelta
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import F
from rest_framework.test import APIClient

from core.api import Conflict
from core.idempotency import (
    StoredResponse,
    idempotency_claim,
    idempotency_complete,
    idempotency_release,
    idempotency_run,
    request_fingerprint,
)
from core.models import IdempotencyRecord
from orders import coordination
from orders.models import Order, OrderLine
from orders.services import OrderItem, order_place
from outbox.models import OutboxMessage
from tests.factories import order_body

SCOPE = "orders.create"  # the API's scope, so that its replays meet the claims made here


@pytest.fixture
def body(product) -> dict[str, Any]:
    return order_body(product, quantity=2)


def first_claim(customer, body, key="slow") -> IdempotencyRecord:
    """The first request has claimed its key, and then runs for two seconds (past the window)."""
    claim = idempotency_claim(user=customer, scope=SCOPE, key=key, fingerprint=request_fingerprint(body))
    assert isinstance(claim, IdempotencyRecord)
    IdempotencyRecord.objects.filter(pk=claim.pk).update(created_at=F("created_at") - timedelta(seconds=2))
    return claim


def place(customer, body):
    """The work of a request: the order, as the API places it."""

    def handler() -> StoredResponse:
        order = order_place(
            user=customer,
            items=[OrderItem(**item) for item in body["items"]],
            shipping_address=body["shipping_address"],
            payment_token=body["payment_token"],
        )
        return StoredResponse(201, {"id": str(order.pk)}, {})

    return handler


def written() -> tuple[int, int, int]:
    return Order.objects.count(), OrderLine.objects.count(), OutboxMessage.objects.count()


@pytest.fixture(autouse=True)
def _short_window(settings):
    settings.IDEMPOTENCY_IN_FLIGHT_SECONDS = 1


def test_a_slow_request_whose_replay_placed_the_order_answers_with_that_order(api, customer, body):
    # given a first request still running after the window, and its client's replay placing the order
    claim = first_claim(customer, body)
    replay = api.post("/api/orders/", body, format="json", HTTP_IDEMPOTENCY_KEY="slow")
    assert replay.status_code == 201
    one_order = written()

    # when the first request finishes its own work
    answer, replayed = idempotency_run(claim=claim, handler=place(customer, body))

    # then it placed nothing and answers with the replay's order
    assert written() == one_order and one_order[0] == 1
    assert (answer.status, answer.body, replayed) == (201, replay.json(), True)
    # and another replay still gets that answer
    again = api.post("/api/orders/", body, format="json", HTTP_IDEMPOTENCY_KEY="slow")
    assert (again.status_code, again.json(), again["Idempotent-Replayed"]) == (201, replay.json(), "true")


def test_a_slow_request_whose_replay_still_runs_is_a_409_and_the_replay_places_the_one_order(api, customer, body):
    # given the first request's replay took its claim over and is running too
    first = first_claim(customer, body)
    second = idempotency_claim(user=customer, scope=SCOPE, key="slow", fingerprint=request_fingerprint(body))
    assert isinstance(second, IdempotencyRecord)

    # when the first finishes before the replay, it is told to ask again, and has placed nothing
    with pytest.raises(Conflict, match="took over"):
        idempotency_run(claim=first, handler=place(customer, body))
    assert written() == (0, 0, 0)

    # when the replay finishes, it places the order
    answer, replayed = idempotency_run(claim=second, handler=place(customer, body))
    assert (answer.status, replayed) == (201, False)

    # then the first client's retry gets that order
    retry = api.post("/api/orders/", body, format="json", HTTP_IDEMPOTENCY_KEY="slow")
    assert (retry.status_code, retry.json()["id"]) == (201, answer.body["id"])
    assert Order.objects.count() == 1


def test_a_request_taken_over_cannot_store_its_answer_nor_free_the_replays_key(customer, body):
    # given a claim taken over by a replay
    first = first_claim(customer, body)
    second = idempotency_claim(user=customer, scope=SCOPE, key="slow", fingerprint=request_fingerprint(body))
    assert isinstance(second, IdempotencyRecord)

    # when the first request is refused (bad input) or tries to store an answer
    idempotency_release(record=first)
    assert not idempotency_complete(record=first, status=201, body={"id": "first"}, headers={})

    # then the replay still holds the key, and its answer is the one remembered
    assert idempotency_complete(record=second, status=201, body={"id": "second"}, headers={})
    stored = idempotency_claim(user=customer, scope=SCOPE, key="slow", fingerprint=request_fingerprint(body))
    assert stored == StoredResponse(201, {"id": "second"}, {})


def test_a_handler_refused_after_losing_its_claim_leaves_the_replays_claim(customer, body):
    first = first_claim(customer, body)
    idempotency_claim(user=customer, scope=SCOPE, key="slow", fingerprint=request_fingerprint(body))

    def refused() -> StoredResponse:
        raise ValidationError({"items": ["Unknown SKU: X."]})

    with pytest.raises(ValidationError):
        idempotency_run(claim=first, handler=refused)
    assert IdempotencyRecord.objects.get().generation == first.generation + 1


def test_a_claim_past_the_window_is_not_taken_over_by_another_body(api, customer, body, product):
    # given a slow first request
    claim = first_claim(customer, body)

    # when the same key comes with another body after the window
    other = api.post("/api/orders/", order_body(product, quantity=5), format="json", HTTP_IDEMPOTENCY_KEY="slow")

    # then it is refused as a misuse of the key, and the first request places its order
    assert other.status_code == 422
    answer, replayed = idempotency_run(claim=claim, handler=place(customer, body))
    assert (answer.status, replayed) == (201, False)
    assert Order.objects.get().lines.get().quantity == 2


@pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite runs one writing transaction at a time")
@pytest.mark.django_db(transaction=True)
def test_a_replay_while_the_first_request_is_between_its_writes_places_one_order(customer, body, monkeypatch):
    # given a first request that has written its order and stalls before starting the saga
    stalled, go_on = threading.Event(), threading.Event()
    saga_start = coordination.saga_start

    def stalling_saga_start(order: Order, lines: Any) -> None:
        if threading.current_thread().name == "first":
            stalled.set()
            assert go_on.wait(30)
        saga_start(order, lines)

    monkeypatch.setattr(coordination, "saga_start", stalling_saga_start)
    answers: dict[str, Any] = {}

    def post(name: str) -> None:
        client = APIClient(raise_request_exception=False)  # a 500 is an answer like any other
        client.force_authenticate(customer)
        try:
            answers[name] = client.post("/api/orders/", body, format="json", HTTP_IDEMPOTENCY_KEY="slow")
        finally:
            connection.close()

    first = threading.Thread(target=post, args=("first",), name="first")
    first.start()
    assert stalled.wait(30)
    IdempotencyRecord.objects.update(created_at=F("created_at") - timedelta(seconds=2))

    # when its client's replay comes after the window, and then the first request goes on
    post("replay")
    go_on.set()
    first.join(30)

    # then both answers are the replay's order, the one order there is
    first_answer, replay = answers["first"], answers["replay"]
    assert (first_answer.status_code, replay.status_code) == (201, 201)
    assert first_answer.json()["id"] == replay.json()["id"] == str(Order.objects.get().pk)
    assert first_answer["Idempotent-Replayed"] == "true"
