"""A Python client generated from the live schema works unmodified (contract §3).

As a new user would: ``openapi-python-client generate --url …/api/schema/`` against a running
server, import the package, and use it for the whole flow, on a real worker. A schema that
stops generating cleanly (a warning is a failure), a module that does not import, a field the
client cannot parse or a status it does not expect fails this test. The client also tells
errors apart by their ``code``, members of its generated enums.
"""

import contextlib
import importlib
import io
import pkgutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from django.core.management import call_command

from core.errors import BAD_REQUEST_CODES, ERROR_CODES
from orders.models import Order, Status
from tests.factories import PASSWORD, ProductFactory, StaffFactory, UserFactory
from tests.provider import payment_token

PACKAGE = "shop_client"
TERMINAL = {"completed", "cancelled", "needs_attention"}


@pytest.fixture
def generated_client(live_server, tmp_path: Path) -> Iterator[ModuleType]:
    config = tmp_path / "config.yaml"
    # No post-generation hooks: they would run ruff from PATH; the code is used as generated.
    config.write_text(f"post_hooks: []\npackage_name_override: {PACKAGE}\n")
    result = subprocess.run(
        [
            str(Path(sys.executable).with_name("openapi-python-client")), "generate",
            "--url", f"{live_server.url}/api/schema/?format=json",
            "--output-path", str(tmp_path / PACKAGE), "--meta", "none",
            "--config", str(config), "--fail-on-warning",
        ],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Warning" not in result.stdout + result.stderr, result.stdout + result.stderr

    sys.path.insert(0, str(tmp_path))
    try:
        package = importlib.import_module(PACKAGE)
        modules = [
            importlib.import_module(info.name) for info in pkgutil.walk_packages(package.__path__, f"{PACKAGE}.")
        ]
        assert len(modules) > 30  # every operation and every model imported
        yield package
    finally:
        sys.path.remove(str(tmp_path))
        for name in [name for name in sys.modules if name == PACKAGE or name.startswith(f"{PACKAGE}.")]:
            del sys.modules[name]


def use(name: str) -> Any:
    return importlib.import_module(f"{PACKAGE}.{name}")


def follow(order_id: Any, client: Any, timeout: float = 60) -> Any:
    """What a client does after placing an order: GET it until its status is terminal."""
    retrieve = use("api.orders.orders_retrieve")
    deadline = time.monotonic() + timeout
    while True:
        order = retrieve.sync(client=client, id=order_id)
        if order.status.value in TERMINAL:
            return order
        assert time.monotonic() < deadline, f"order still {order.status.value} after {timeout}s"
        time.sleep(0.2)


@pytest.fixture
def connect(live_server, generated_client) -> Iterator[Any]:
    """Clients of the generated package for the live server, each closed at the end: an open
    keep-alive connection would keep a server thread, and its database connection, alive."""
    with contextlib.ExitStack() as clients:

        def client(token: str | None = None) -> Any:
            options = {"base_url": live_server.url, "raise_on_unexpected_status": True}
            if token is None:
                return clients.enter_context(generated_client.Client(**options))
            return clients.enter_context(generated_client.AuthenticatedClient(token=token, prefix="Token", **options))

        yield client


@pytest.mark.saga
def test_a_generated_client_drives_the_whole_flow_unmodified(saga, connect):
    call_command("seed_demo", stdout=io.StringIO())  # the demo catalog, as on `make run`
    models = use("models")
    anonymous = connect()

    # register, then log in for a token
    registered = use("api.auth.auth_register").sync(
        client=anonymous,
        body=models.RegisterRequest(username="ada", email="ada@example.com", password="analytical-engine-1843"),
    )
    assert registered.username == "ada" and registered.token
    token = use("api.auth.auth_token").sync(
        client=anonymous, body=models.LoginRequest(username="ada", password="analytical-engine-1843")
    )
    ada = connect(token.token)

    # the catalog, in stock, dearest first
    products_list = use("api.products.products_list")
    page = products_list.sync(client=anonymous, in_stock=True, ordering=models.ProductsListOrdering("-price"))
    prices = [float(product.price) for product in page.results]
    assert prices == sorted(prices, reverse=True)
    assert all(product.stock > 0 for product in page.results)
    assert "CUP-015" not in {product.sku for product in page.results}  # out of stock
    assert page.count == 14 and page.next_ is None and page.previous is None  # `next` is a builtin

    # place an order with an Idempotency-Key
    body = models.OrderCreateRequest(
        items=[models.OrderItemRequest(sku="MUG-001", quantity=2), models.OrderItemRequest(sku="TEE-002", quantity=1)],
        shipping_address=models.AddressRequest(
            name="Ada Lovelace",
            line1="12 Analytical Row",
            city="London",
            postal_code="N1 9GU",
            country=models.CountryEnum.GB,
        ),
        payment_token=payment_token("tok_visa"),
    )
    orders_create = use("api.orders.orders_create")
    placed = orders_create.sync_detailed(client=ada, body=body, idempotency_key="checkout-1")
    assert placed.status_code == 201
    order = placed.parsed
    assert order.status == models.OrderStatusEnum.PENDING and order.total == "49.00"
    assert placed.headers["Location"].endswith(f"/api/orders/{order.id}/")
    assert "Idempotent-Replayed" not in placed.headers

    # follow it to its end
    done = follow(order.id, ada)
    assert done.status == models.OrderStatusEnum.COMPLETED
    assert done.cancellation_reason is None
    assert done.payment.status == models.PaymentStatusEnum.SUCCEEDED and done.payment.amount == "49.00"
    assert done.shipment.status == models.ShipmentStatusEnum.CREATED and done.shipment.tracking_number
    assert {step.status for step in done.steps} == {models.StepStatusEnum.SUCCEEDED}
    assert done.shipping_address.country == "GB"
    listed = use("api.orders.orders_list").sync(client=ada, status=models.OrdersListStatus.COMPLETED)
    assert [o.id for o in listed.results] == [order.id]

    # its journal: every line numbered, each naming the service that acted
    orders_journal = use("api.orders.orders_journal")
    entries = orders_journal.sync(client=ada, id=order.id)
    assert [entry.seq for entry in entries] == list(range(1, len(entries) + 1))
    assert entries[0].service == models.JournalServiceEnum.ORDERS and entries[0].kind == models.JournalKindEnum.ACTION
    statuses = [entry.name for entry in entries if entry.kind == models.JournalKindEnum.STATUS]
    assert statuses == ["reserved", "paid", "completed"]
    assert orders_journal.sync_detailed(client=anonymous, id=order.id).status_code == 401

    # a replay of the same key answers the first answer and creates nothing
    replay = orders_create.sync_detailed(client=ada, body=body, idempotency_key="checkout-1")
    assert replay.status_code == 201
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.parsed.id == order.id
    assert use("api.orders.orders_list").sync(client=ada).count == 1

    # a completed order cannot be cancelled
    orders_cancel = use("api.orders.orders_cancel")
    refused = orders_cancel.sync_detailed(client=ada, id=order.id)
    assert refused.status_code == 409 and "completed" in refused.parsed.detail
    assert refused.parsed.code == models.ErrorCodeEnum.ORDER_NOT_CANCELLABLE

    # a running order can: placed while no worker runs, so it is still pending when cancelled
    saga.stop()
    running = orders_create.sync(client=ada, body=body)
    cancelling = orders_cancel.sync_detailed(client=ada, id=running.id)
    assert cancelling.status_code == 202
    assert cancelling.parsed.status == models.OrderStatusEnum.COMPENSATING
    saga.start()
    cancelled = follow(running.id, ada)
    assert cancelled.status == models.OrderStatusEnum.CANCELLED
    assert cancelled.cancellation_reason == models.CancellationReasonEnum.CUSTOMER_REQUEST

    # staff read the payment provider's ledger; a customer may not
    staff = StaffFactory()
    staff_token = use("api.auth.auth_token").sync(
        client=anonymous, body=models.LoginRequest(username=staff.username, password=PASSWORD)
    )
    staff_client = connect(staff_token.token)
    ledger = use("api.payments.payments_transactions_list")
    charges = ledger.sync(client=staff_client, order=order.id).results
    assert [(t.kind, t.status, t.amount) for t in charges] == [
        (models.TransactionKindEnum.CHARGE, models.TransactionStatusEnum.SUCCEEDED, "49.00")
    ]
    assert ledger.sync_detailed(client=ada, order=order.id).status_code == 403

    # logging out revokes the token it is made with
    assert use("api.auth.auth_logout").sync_detailed(client=ada).status_code == 204
    assert use("api.orders.orders_list").sync_detailed(client=ada).status_code == 401


def test_a_generated_client_reads_every_error_code(transactional_db, no_relay, connect):
    # given the generated package: every code the API answers is a member of its enums
    models = use("models")
    assert {code.value for code in models.ErrorCodeEnum} == set(ERROR_CODES)
    assert {code.value for code in models.ValidationErrorCodeEnum} == set(BAD_REQUEST_CODES)
    customer = UserFactory()
    token = use("api.auth.auth_token").sync(
        client=connect(), body=models.LoginRequest(username=customer.username, password=PASSWORD)
    )
    client = connect(token.token)
    orders_create = use("api.orders.orders_create")
    product = ProductFactory(sku="MUG-001")

    def order(sku: str, quantity: int = 1) -> Any:
        return models.OrderCreateRequest(
            items=[models.OrderItemRequest(sku=sku, quantity=quantity)],
            shipping_address=models.AddressRequest(
                name="Ada Lovelace", line1="12 Analytical Row", city="London", postal_code="N1 9GU",
                country=models.CountryEnum.GB,
            ),
            payment_token=payment_token("tok_visa"),
        )  # fmt: skip

    # a 400 names its code, and each field's by path: an unknown SKU is not a quantity out of range
    unknown = orders_create.sync_detailed(client=client, body=order("NOPE-1"))
    assert unknown.status_code == 400
    assert isinstance(unknown.parsed, models.ValidationError)
    assert unknown.parsed.code == models.ValidationErrorCodeEnum.VALIDATION_ERROR
    assert [(e.code, e.detail) for e in unknown.parsed.errors["items"]] == [("unknown_sku", "Unknown SKU: NOPE-1.")]
    assert unknown.parsed["items"] == ["Unknown SKU: NOPE-1."]  # the field's messages, as before
    too_many = orders_create.sync_detailed(client=client, body=order(product.sku, quantity=101))
    assert [e.code for e in too_many.parsed.errors["items[0].quantity"]] == ["max_value"]

    # the statuses that have two meanings are told apart by their code
    placed = orders_create.sync_detailed(client=client, body=order(product.sku), idempotency_key="k-1")
    assert placed.status_code == 201
    reused = orders_create.sync_detailed(client=client, body=order(product.sku, 2), idempotency_key="k-1")
    assert (reused.status_code, reused.parsed.code) == (422, models.ErrorCodeEnum.IDEMPOTENCY_KEY_REUSED)
    Order.objects.filter(pk=placed.parsed.id).update(status=Status.COMPLETED)
    refused = use("api.orders.orders_cancel").sync_detailed(client=client, id=placed.parsed.id)
    assert refused.status_code == 409
    assert isinstance(refused.parsed, models.Error)
    assert refused.parsed.code == models.ErrorCodeEnum.ORDER_NOT_CANCELLABLE
    assert refused.parsed.detail == "An order that is completed cannot be cancelled."
    anonymous = use("api.orders.orders_list").sync_detailed(client=connect())
    assert (anonymous.status_code, anonymous.parsed.code) == (401, models.ErrorCodeEnum.NOT_AUTHENTICATED)
