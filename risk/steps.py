"""The risk service's part of the order saga: screening the order, as a step of the runtime.

The orchestrator's command (``risk/tasks.py``) and the choreography's subscription
(``risk/handlers.py``) both call this: the rule lives once, the wiring differs. A held order's
step is ``held`` until a person decides; the decision runs it again (``risk/services.py``).
"""

from typing import Any

from risk import services
from sagas.hops import Hops
from sagas.runtime import run_step

SCREEN_ORDER = services.SCREEN_ORDER


def screen(*, order_id: str, context: dict[str, Any], hops: Hops) -> None:
    run_step(
        saga_id=order_id,
        step_name=SCREEN_ORDER,
        hops=hops,
        action=lambda: _screened(order_id, context),
        refusals=(services.OrderRejected, services.ReviewExpired),
    )


def _screened(order_id: str, context: dict[str, Any]) -> dict[str, Any]:
    services.screening_run(order_id=order_id, total=context["total"], address=context["shipping_address"])
    return {}
