import uuid
from decimal import Decimal

from payments import selectors
from payments.providers import ProviderUnavailable, SimulatedPaymentProvider
from tests import provider as test_provider
from tests.factories import order_body


@test_provider.FORGED_LEDGER
def test_staff_see_the_providers_ledger_for_one_order(api, staff_api, product):
    # given an order whose charge and refund the provider recorded
    order_id = api.post("/api/orders/", order_body(product), format="json").json()["id"]
    provider = SimulatedPaymentProvider()
    charge = provider.charge(
        amount=Decimal("10.00"), currency="USD", token="tok_visa", idempotency_key="c", order_ref=order_id
    )
    provider.refund(charge_reference=charge.reference, amount=Decimal("10.00"), idempotency_key="r")

    # when staff ask for its transactions
    data = staff_api.get(f"/api/payments/transactions/?order={order_id}").json()

    # then they get the provider's own record, paginated
    assert data["count"] == 2
    assert [(t["kind"], t["amount"], t["status"], t["idempotency_key"]) for t in data["results"]] == [
        ("charge", "10.00", "succeeded", "c"),
        ("refund", "10.00", "succeeded", "r"),
    ]
    assert data["results"][0]["reference"].startswith("ch_")


def test_customers_and_anonymous_clients_cannot_read_payments(api, anonymous, product):
    order_id = api.post("/api/orders/", order_body(product), format="json").json()["id"]
    assert api.get(f"/api/payments/transactions/?order={order_id}").status_code == 403
    assert anonymous.get(f"/api/payments/transactions/?order={order_id}").status_code == 401


def test_the_order_parameter_is_required_and_must_be_a_uuid(staff_api):
    assert staff_api.get("/api/payments/transactions/").status_code == 400
    assert staff_api.get("/api/payments/transactions/?order=42").status_code == 400


def test_a_provider_out_of_reach_is_a_503_with_its_code(staff_api, monkeypatch):
    # given a remote provider (Stripe, say) that cannot be reached
    class Unreachable:
        def transactions(self, *, order_ref: str) -> list[object]:
            raise ProviderUnavailable("Stripe did not answer refunds.list: APIConnectionError")

    monkeypatch.setattr(selectors, "get_payment_provider", Unreachable)

    # when staff ask for an order's ledger
    response = staff_api.get(f"/api/payments/transactions/?order={uuid.uuid4()}")

    # then they are told to try again, in the API's error shape, and nothing of the error leaks
    assert response.status_code == 503
    assert response.json() == {
        "detail": "The payment provider's ledger cannot be read now; try again later.",
        "code": "service_unavailable",
    }
