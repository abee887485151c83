"""The order saga's steps and compensations, as the step runtime knows them.

What each step means for the order: the status it runs in, the status it moves the order to,
and the cancellation reason when it fails. The participants name their step and nothing more.
"""

from orders.models import Reason, Status
from sagas.plan import Compensation, ForwardStep, declare

# Run once per line (``reserve_stock:<sku>``); the last line reserved moves the order on.
RESERVE_STOCK = ForwardStep(
    "reserve_stock",
    service="inventory",
    runs_in=Status.PENDING,
    advances_to=Status.RESERVED,
    refused_as=Reason.OUT_OF_STOCK,
    gives_up_as=Reason.OUT_OF_STOCK,
    local=True,
    per_line=True,
)
CHARGE_PAYMENT = ForwardStep(
    "charge_payment",
    service="payments",
    runs_in=Status.RESERVED,
    advances_to=Status.PAID,
    refused_as=Reason.PAYMENT_DECLINED,
    gives_up_as=Reason.PAYMENT_FAILED,
)
# A shipment handed to the carrier completes the order (contract: ``completed``).
CREATE_SHIPMENT = ForwardStep(
    "create_shipment",
    service="shipping",
    runs_in=Status.PAID,
    advances_to=Status.COMPLETED,
    refused_as=Reason.SHIPPING_FAILED,
    gives_up_as=Reason.SHIPPING_FAILED,
)

RELEASE_STOCK = Compensation("release_stock", service="inventory", undoes=RESERVE_STOCK)
REFUND_PAYMENT = Compensation("refund_payment", service="payments", undoes=CHARGE_PAYMENT)
CANCEL_SHIPMENT = Compensation("cancel_shipment", service="shipping", undoes=CREATE_SHIPMENT)

# The compensations in the order the orchestrator runs them: the reverse of the steps.
COMPENSATIONS = (CANCEL_SHIPMENT, REFUND_PAYMENT, RELEASE_STOCK)

declare(RESERVE_STOCK, CHARGE_PAYMENT, CREATE_SHIPMENT, *COMPENSATIONS)
