"""The saga declared once (``orders/plan.py``): everything both modes need follows from it."""

import ast
from pathlib import Path

import pytest
from django.conf import settings

from config.celery import app
from events import registry
from events.registry import CHOREOGRAPHY
from orders.models import FORWARD_STATUSES, Status
from orders.plan import FORWARD_PATH, ORDER_SAGA
from orders.saga import order_saga
from orders.services import OrderItem, order_place
from orders.transitions import ALLOWED_TRANSITIONS
from sagas.hops import compensation_canvas
from sagas.plan import SagaPlan, Step, Undo
from tests.factories import ProductFactory, address

ROOT = Path(__file__).resolve().parents[2]


def test_each_step_and_compensation_is_a_command_of_its_participant_on_its_queue():
    app.loader.import_default_modules()
    for item in (*ORDER_SAGA.steps, *ORDER_SAGA.compensations):
        assert item.task == f"{item.service}.{item.name}"  # one name: the step's, with its service
        assert item.task in app.tasks, f"no Celery task {item.task}"
        assert item.service in settings.SHOP_QUEUES
    assert ORDER_SAGA.finish_task in app.tasks


def test_choreography_is_wired_in_the_order_of_the_steps():
    heard = {(s.consumer, s.event) for s in registry.subscriptions() if CHOREOGRAPHY in s.modes and s.step}
    previous = ORDER_SAGA.starts_with
    for step in ORDER_SAGA.steps:
        consumers = {consumer for consumer, event in heard if event == previous}
        assert any(c.startswith(f"{step.service}.") for c in consumers), f"nobody runs {step.name} on {previous}"
        previous = step.succeeded
    for undo in ORDER_SAGA.compensations:
        for event in ORDER_SAGA.turning_back:
            assert any(c.startswith(f"{undo.service}.") and e == event for c, e in heard), (undo.name, event)


def test_a_step_added_to_a_plan_rewires_who_hears_what():
    first = Step("a", service="x", succeeded="x.done", refused="x.refused", undo=Undo("undo_a", announces="x.undone"))
    last = Step("c", service="z", succeeded="z.done", failed="z.failed")
    added = Step("b", service="y", succeeded="y.done", refused="y.refused")
    before = SagaPlan("o", "o.placed", "o.redriven", "o.compensating", "o.finish", steps=(first, last))
    after = SagaPlan("o", "o.placed", "o.redriven", "o.compensating", "o.finish", steps=(first, added, last))
    assert before.heard_by(last) == ("x.done", "o.redriven")
    assert after.heard_by(added) == ("x.done", "o.redriven")
    assert after.heard_by(last) == ("y.done", "o.redriven")
    assert "y.refused" in after.turning_back and "y.refused" not in before.turning_back
    assert after.step_names(["s1"]) == ["a", "b", "c"]
    assert [c.name for c in after.compensations] == ["undo_a"]


def test_the_canvas_and_the_compensations_follow_the_plan(db, customer):
    product, other = ProductFactory(), ProductFactory()
    order = order_place(
        user=customer,
        items=[OrderItem(product.sku, 1), OrderItem(other.sku, 2)],
        shipping_address=address(),
        payment_token="tok_visa",
    )
    canvas = order_saga(order, list(order.lines.order_by("id")), fresh=True)
    assert canvas is not None
    # a chord: every line's command at once, then the rest of the steps as a chain
    header, body = canvas.tasks, canvas.body
    assert [c.task for c in header] == ["inventory.reserve_stock"] * 2
    rest = (
        [body.task, *(c["task"] for c in body.options.get("link", []))]
        if not hasattr(body, "tasks")
        else [c.task for c in body.tasks]
    )
    assert rest == [s.task for s in ORDER_SAGA.steps[1:]]
    undo = compensation_canvas(ORDER_SAGA, str(order.pk)).tasks
    assert [c.task for c in undo] == [*(c.task for c in ORDER_SAGA.compensations), ORDER_SAGA.finish_task]
    assert [c.undoes.name for c in ORDER_SAGA.compensations] == [s.name for s in reversed(ORDER_SAGA.steps) if s.undo]


def test_the_status_machine_follows_the_plan():
    # forward: each status the plan shows customers, in order, and back to undo from any of them
    assert FORWARD_PATH == (Status.PENDING, Status.RESERVED, Status.IN_REVIEW, Status.PAID, Status.COMPLETED)
    assert set(FORWARD_PATH[:-1]) == set(FORWARD_STATUSES)
    assert ALLOWED_TRANSITIONS[Status.RESERVED] == {Status.IN_REVIEW, Status.PAID, Status.COMPENSATING}
    assert ALLOWED_TRANSITIONS[Status.IN_REVIEW] == {Status.PAID, Status.COMPENSATING}
    for status in FORWARD_PATH[:-1]:
        assert Status.COMPENSATING in ALLOWED_TRANSITIONS[status]


def test_the_order_of_the_steps_is_written_once():
    # no module outside the plan lists the steps in order (the names may appear one at a time)
    names = [step.name for step in ORDER_SAGA.steps]
    offenders = []
    for path in ROOT.glob("*/*.py"):
        if path.parts[-2] in (".venv", "tests", "bench") or path.name == "plan.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Tuple | ast.List):
                values = [e.value for e in node.elts if isinstance(e, ast.Constant)]
                if sum(name in values for name in names) >= 2:
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not offenders


@pytest.mark.parametrize("step", ORDER_SAGA.steps, ids=lambda step: step.name)
def test_every_step_has_a_reason_to_fail_with(step):
    assert step.refused_as or step.gives_up_as
