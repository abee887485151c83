"""/api/schema/ says what the server does (contract §3): what a generated client relies on."""

import pytest

from core.errors import BAD_REQUEST_CODES, ERROR_CODES, STATUS_OF
from orders.api import OrderCreateInput
from orders.journal import JournalService
from orders.models import OrderEvent, Reason, Status
from payments.models import Payment, ProviderTransaction
from sagas.models import SagaStep
from shipping.models import Shipment
from shop.management.commands.seed_demo import CATALOG
from tests.factories import ProductFactory


@pytest.fixture
def schema(anonymous, db):
    response = anonymous.get("/api/schema/?format=json")
    assert response.status_code == 200
    return response.json()


def operations(schema):
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            yield f"{method.upper()} {path}", operation


def component(schema, ref: str):
    return schema["components"]["schemas"][ref.rsplit("/", 1)[-1]]


def test_the_schema_is_json_unless_yaml_is_asked_for(anonymous, db):
    response = anonymous.get("/api/schema/")
    assert response["Content-Type"].startswith("application/vnd.oai.openapi+json")
    assert response.json()["openapi"].startswith("3.")
    assert anonymous.get("/api/schema/?format=yaml").content.startswith(b"openapi: 3.")


def test_request_bodies_are_json_only(schema):
    bodies = {name: set(op["requestBody"]["content"]) for name, op in operations(schema) if "requestBody" in op}
    assert len(bodies) == 6  # register, token, place an order, review one, add and change a product
    assert all(types == {"application/json"} for types in bodies.values()), bodies


def test_enumerations_list_exactly_what_the_server_sends(schema):
    enums = {name: body["enum"] for name, body in schema["components"]["schemas"].items() if "enum" in body}
    assert enums["OrderStatusEnum"] == Status.values
    assert enums["CancellationReasonEnum"] == Reason.values
    assert enums["StepStatusEnum"] == SagaStep.Status.values
    assert enums["PaymentStatusEnum"] == Payment.Status.values
    assert enums["ShipmentStatusEnum"] == Shipment.Status.values
    assert enums["TransactionKindEnum"] == ProviderTransaction.Kind.values
    assert enums["TransactionStatusEnum"] == ProviderTransaction.Status.values
    assert enums["JournalServiceEnum"] == JournalService.values
    assert enums["JournalKindEnum"] == OrderEvent.Kind.values
    assert enums["ErrorCodeEnum"] == ERROR_CODES
    assert enums["ValidationErrorCodeEnum"] == BAD_REQUEST_CODES
    assert not [name for name, values in enums.items() if "" in values or None in values]


def test_every_field_of_an_answer_is_required_and_null_only_where_the_server_sends_null(schema):
    order = component(schema, "Order")
    assert set(order["required"]) == set(order["properties"])
    nullable = {name for name, prop in order["properties"].items() if prop.get("nullable")}
    assert nullable == {"cancellation_reason", "payment", "shipment"}
    answers = ("OrderItem", "Address", "Payment", "Shipment", "Step", "Product", "Transaction", "Registered")
    for name in (*answers, "JournalEntry"):
        body = component(schema, name)
        assert set(body["required"]) == set(body["properties"]), name
    step = component(schema, "Step")
    assert {name for name, prop in step["properties"].items() if prop.get("nullable")} == {"started_at", "finished_at"}
    paginated = component(schema, "PaginatedOrderList")
    assert set(paginated["required"]) == {"count", "next", "previous", "results"}


def test_the_journal_is_one_whole_list_of_entries(schema):
    operation = schema["paths"]["/api/orders/{id}/journal/"]["get"]
    body = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert body == {"type": "array", "items": {"$ref": "#/components/schemas/JournalEntry"}}
    assert operation["operationId"] == "orders_journal"
    assert [p["name"] for p in operation.get("parameters", [])] == ["id"]  # no filter, no page
    assert {"401", "404"} <= set(operation["responses"])
    entry = component(schema, "JournalEntry")
    assert set(entry["properties"]) == {"seq", "at", "service", "kind", "name", "detail", "trace_id"}
    assert "trace" in entry["properties"]["trace_id"]["description"]


def test_the_shipping_address_has_a_schema_both_ways(schema):
    answer = component(schema, component(schema, "Order")["properties"]["shipping_address"]["allOf"][0]["$ref"])
    assert set(answer["properties"]) == {"name", "line1", "line2", "city", "postal_code", "country"}
    request = component(schema, component(schema, "OrderCreateRequest")["properties"]["shipping_address"]["$ref"])
    assert set(request["required"]) == {"name", "line1", "city", "postal_code", "country"}
    items = component(schema, "OrderCreateRequest")["properties"]["items"]
    assert (items["minItems"], items["maxItems"]) == (1, 50)
    quantity = component(schema, "OrderItemRequest")["properties"]["quantity"]
    assert (quantity["minimum"], quantity["maximum"]) == (1, 100)


def test_every_error_status_has_its_body(schema):
    for name, operation in operations(schema):
        errors = {code: r for code, r in operation["responses"].items() if code.startswith(("4", "5"))}
        assert "400" in errors, name
        for code, response in errors.items():
            ref = response["content"]["application/json"]["schema"]["$ref"]
            assert ref.endswith("/ValidationError" if code == "400" else "/Error"), (name, code)
    error = component(schema, "Error")
    assert error["required"] == ["code", "detail"]
    assert error["properties"]["code"]["allOf"] == [{"$ref": "#/components/schemas/ErrorCodeEnum"}]
    invalid = component(schema, "ValidationError")
    assert invalid["required"] == ["code", "detail", "errors"]
    assert invalid["properties"]["code"] == {"$ref": "#/components/schemas/ValidationErrorCodeEnum"}
    assert invalid["properties"]["errors"]["additionalProperties"]["items"] == {
        "$ref": "#/components/schemas/FieldError"
    }
    assert component(schema, "FieldError")["required"] == ["code", "detail"]
    create = schema["paths"]["/api/orders/"]["post"]["responses"]
    assert {"201", "400", "401", "403", "409", "413", "415", "422", "429", "503"} <= set(create)
    cancel = schema["paths"]["/api/orders/{id}/cancel/"]["post"]["responses"]
    assert {"202", "401", "404", "409"} <= set(cancel)
    examples = cancel["409"]["content"]["application/json"]["examples"]
    assert [example["value"]["code"] for example in examples.values()] == ["order_not_cancellable"]
    assert "429" not in schema["paths"]["/api/orders/"]["get"]["responses"]
    assert "403" in schema["paths"]["/api/payments/transactions/"]["get"]["responses"]
    assert "401" not in schema["paths"]["/api/auth/token/"]["post"]["responses"]


def test_the_docs_list_every_error_code_with_its_status(schema):
    intro = schema["info"]["description"]
    for code, status in STATUS_OF.items():
        assert f"| `{code}` | `{status}` |" in intro, code


def test_response_headers_are_declared(schema):
    created = schema["paths"]["/api/orders/"]["post"]["responses"]["201"]["headers"]
    assert created["Location"]["required"] is True
    assert created["Idempotent-Replayed"]["schema"]["enum"] == ["true"]
    for name, operation in operations(schema):
        if "429" in operation["responses"]:
            assert "Retry-After" in operation["responses"]["429"]["headers"], name
    assert {name for name, op in operations(schema) if "429" in op["responses"]} == {
        "POST /api/auth/register/",
        "POST /api/auth/token/",
        "POST /api/orders/",
    }


def test_the_examples_are_real_requests(schema):
    # the order examples name the demo catalog's SKUs and a test token, and are valid requests
    examples = schema["paths"]["/api/orders/"]["post"]["requestBody"]["content"]["application/json"]["examples"]
    demo_skus = {sku for sku, *_ in CATALOG}
    assert examples
    for example in examples.values():
        body = example["value"]
        assert {item["sku"] for item in body["items"]} <= demo_skus
        assert body["payment_token"].startswith("tok_")
        assert OrderCreateInput(data=body).is_valid(), body
    assert any(example["value"]["payment_token"] == "tok_visa" for example in examples.values())


def test_the_docs_explain_statuses_test_values_idempotency_and_polling(schema):
    intro = schema["info"]["description"]
    for word in [*Status.values, *Reason.values, "tok_visa", "tok_decline", "tok_flaky", "tok_timeout", "tok_down"]:
        assert f"`{word}`" in intro, word
    assert "`00000`" in intro and "`99999`" in intro
    assert "Idempotency-Key" in intro and "Idempotent-Replayed" in intro
    create = schema["paths"]["/api/orders/"]["post"]["description"]
    assert "Location" in create and "terminal" in create
    assert "terminal" in schema["paths"]["/api/orders/{id}/"]["get"]["description"]


@pytest.mark.parametrize(
    ("url", "field"),
    [
        ("/api/products/?in_stock=maybe", "in_stock"),
        ("/api/products/?ordering=bogus", "ordering"),
        ("/api/products/?ordering=stock", "ordering"),
    ],
)
def test_bad_filter_values_are_a_400_naming_the_parameter(anonymous, db, url, field):
    response = anonymous.get(url)
    assert response.status_code == 400
    assert list(response.json()["errors"]) == [field]


def test_in_stock_reads_true_and_false(anonymous, db):
    ProductFactory(sku="IN-1", stock=2), ProductFactory(sku="OUT-1", stock=0)

    def skus(query: str) -> list[str]:
        return [p["sku"] for p in anonymous.get(f"/api/products/?{query}").json()["results"]]

    assert skus("in_stock=true") == skus("in_stock=1") == ["IN-1"]
    assert skus("in_stock=false") == skus("in_stock=0") == ["OUT-1"]
    assert sorted(skus("in_stock=")) == ["IN-1", "OUT-1"]


def test_a_bad_status_filter_is_a_400_naming_it(api):
    response = api.get("/api/orders/?status=bogus")
    assert response.status_code == 400
    assert response.json()["errors"] == {"status": [{"code": "invalid_choice", "detail": response.json()["status"][0]}]}
